/**
 * Gradcheck rows of the fused elementwise ops: biasAct (act(x + b), the bias broadcast) and actGrad
 * (g ⊙ act′(x [+ b])), first derivatives by central differences and second derivatives through their VJPs,
 * for every fused activation. relu is checked away from its kink (x + b ≠ 0).
 *
 * @module
 */
import { actGrad, biasAct, type FusedActivation, type Tensor } from "../../../mod.ts";
import { awayFrom, gradcheck, gradgradcheck, randnF64 } from "../../helpers/gradcheck.ts";
import type { GradcheckFamily, GradcheckRow } from "./row.ts";

const ACTS: FusedActivation[] = ["gelu", "gelu_tanh", "silu", "relu"];

/** [x shape, bias shape] pairs: a row bias, a per-expert bias [E, 1, h], a scalar bias. */
const SHAPES: [number[], number[]][] = [[[2, 3], [3]], [[2, 3, 4], [2, 1, 4]], [[3], []]];

/** x such that x + b stays away from relu's kink; b small. */
function inputs(act: FusedActivation, xs: number[], bs: number[], seed: number): [Tensor, Tensor] {
  const b = randnF64(bs, seed + 1, 0.1);
  const x = act === "relu" ? awayFrom(xs, seed, [0], 0.4) : randnF64(xs, seed, 1.5);
  return [x, b];
}

/** biasAct and actGrad against central differences, and their second derivatives. */
export const FUSED_ROWS: GradcheckFamily = {
  test: "gradcheck: fused elementwise ops (biasAct, actGrad)",
  rows: ACTS.flatMap((act, k): GradcheckRow[] => [
    {
      ops: ["biasAct"],
      name: `biasAct ${act}`,
      run: () => {
        for (const [j, [xs, bs]] of SHAPES.entries()) {
          const [x, b] = inputs(act, xs, bs, 500 + 10 * k + j);
          gradcheck((v, w) => biasAct(v, w, act), [x, b], { name: `biasAct ${act} [${xs}] + [${bs}]` });
          if (act !== "relu") gradgradcheck((v, w) => biasAct(v, w, act).square().sum(), [x, b], { via: "gradients" });
        }
      },
    },
    {
      ops: ["actGrad"],
      name: `actGrad ${act} (with and without a bias)`,
      run: () => {
        for (const [j, [xs, bs]] of SHAPES.entries()) {
          const [x, b] = inputs(act, xs, bs, 700 + 10 * k + j);
          const g = randnF64(xs, 800 + 10 * k + j);
          gradcheck((v, w) => actGrad(v, w, act), [x, g], { name: `actGrad ${act} [${xs}]` });
          gradcheck((v, w, c) => actGrad(v, w, act, c), [x, g, b], { name: `actGrad ${act} [${xs}] bias [${bs}]` });
        }
      },
    },
  ]),
};
