/**
 * Gradcheck rows of the fused attention ops: rotaryEmbedding (x and both tables, forward and inverse, leading
 * axes broadcast over the tables) and scaledMaskedSoftmax (no mask, causal, a broadcast mask with a fully masked
 * row, causal with a mask), first derivatives by central differences and second derivatives through the VJPs.
 *
 * @module
 */
import { rotaryEmbedding, scaledMaskedSoftmax, type Tensor, tensor } from "../../../mod.ts";
import { gradcheck, gradgradcheck, randnF64 } from "../../helpers/gradcheck.ts";
import type { GradcheckFamily } from "./row.ts";

/** [x shape, inverse]. */
const ROPE_CASES: [number[], boolean][] = [[[3, 4], false], [[2, 3, 6], false], [[2, 2, 3, 2], true]];

/** [case, scores shape, mask (row-major bools, its shape) or null, causal]. */
const SOFTMAX_CASES: [string, number[], [boolean[], number[]] | null, boolean][] = [
  ["no mask [2, 3, 4]", [2, 3, 4], null, false],
  ["causal [2, 4, 4]", [2, 4, 4], null, true],
  // Row 1 of batch 1 has no allowed key (its output and gradient are 0).
  [
    "mask [2, 2, 1, 3] over [2, 2, 3, 3]",
    [2, 2, 3, 3],
    [[true, false, true, false, false, false], [2, 1, 1, 3]],
    false,
  ],
  ["causal and a mask [3, 3]", [2, 3, 3], [[false, true, true, true, false, true, true, true, true], [3, 3]], true],
];

/** rotaryEmbedding and scaledMaskedSoftmax against central differences, and their second derivatives. */
export const ATTENTION_ROWS: GradcheckFamily = {
  test: "gradcheck: fused attention ops (rotaryEmbedding, scaledMaskedSoftmax)",
  rows: [
    {
      ops: ["rotaryEmbedding"],
      name: "rotaryEmbedding: x, cos and sin",
      run: () => {
        for (const [k, [shape, inverse]] of ROPE_CASES.entries()) {
          const t = shape[shape.length - 2], h = shape[shape.length - 1] / 2;
          const [x, cos, sin] = [randnF64(shape, 900 + k), randnF64([t, h], 910 + k), randnF64([t, h], 920 + k)];
          const fn = (v: Tensor, c: Tensor, s: Tensor) => rotaryEmbedding(v, c, s, { inverse });
          gradcheck(fn, [x, cos, sin], { name: `rotaryEmbedding [${shape}] inverse ${inverse}` });
          gradgradcheck((v, c, s) => fn(v, c, s).square().sum(), [x, cos, sin], { via: "gradients" });
        }
      },
    },
    {
      ops: ["scaledMaskedSoftmax"],
      name: "scaledMaskedSoftmax: masks, causal, a fully masked row",
      run: () => {
        for (const [k, [name, shape, m, causal]] of SOFTMAX_CASES.entries()) {
          const mask = m ? tensor(m[0], { shape: m[1], dtype: "bool" }) : null;
          const x = randnF64(shape, 930 + k, 1.5);
          const fn = (v: Tensor) => scaledMaskedSoftmax(v, { scale: 0.7, mask, causal });
          gradcheck(fn, [x], { name: `scaledMaskedSoftmax ${name}` });
          gradgradcheck((v: Tensor) => fn(v).sin().sum(), [x], { via: "gradients" });
        }
      },
    },
  ],
};
