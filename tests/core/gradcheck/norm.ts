/**
 * Gradcheck rows of layerNorm: x, weight and bias against central differences, with every combination of
 * weight and bias, over 1-D to 3-D inputs, and its second derivatives (the VJP under `createGraph`).
 *
 * @module
 */
import { layerNorm, type Tensor } from "../../../mod.ts";
import { gradcheck, gradgradcheck, randnF64 } from "../../helpers/gradcheck.ts";
import type { GradcheckFamily, GradcheckRow } from "./row.ts";

/** [case, x shape, weight?, bias?, eps]. */
const CASES: [string, number[], boolean, boolean, number][] = [
  ["weight and bias, [3, 5]", [3, 5], true, true, 1e-5],
  ["weight only, [2, 3, 4]", [2, 3, 4], true, false, 1e-5],
  ["bias only, [4, 6]", [4, 6], false, true, 1e-5],
  ["neither, [3, 7], eps 0.5", [3, 7], false, false, 0.5],
  ["1-D input [6]", [6], true, true, 1e-5],
  ["rows of 2, [5, 2]", [5, 2], true, true, 1e-5],
];

/** layerNorm against central differences in every input it takes. */
export const LAYER_NORM_ROWS: GradcheckFamily = {
  test: "gradcheck: layerNorm",
  rows: CASES.map(([name, shape, hasWeight, hasBias, eps], k): GradcheckRow => ({
    ops: ["layerNorm"],
    name,
    run: () => {
      const d = shape[shape.length - 1];
      const x = randnF64(shape, 1500 + k, 1.5).add(0.7);
      const params = [hasWeight ? randnF64([d], 1510 + k) : null, hasBias ? randnF64([d], 1520 + k) : null];
      const given = params.filter((p): p is Tensor => p !== null);
      const fn = (v: Tensor, ...ps: Tensor[]) => {
        const [weight, bias] = hasWeight ? [ps[0], ps[1] ?? null] : [null, ps[0] ?? null];
        return layerNorm(v, { weight, bias, eps });
      };
      gradcheck(fn, [x, ...given], { name: `layerNorm ${name}` });
      gradgradcheck((...xs: Tensor[]) => fn(xs[0], ...xs.slice(1)).sin().sum(), [x, ...given], { via: "gradients" });
    },
  })),
};
