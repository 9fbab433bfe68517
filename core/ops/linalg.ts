/**
 * Matrix multiplication with NumPy/PyTorch semantics on top of one 3-D kernel with transpose flags (so
 * VJPs never materialise a transpose).
 *
 * @module
 */
import { record1 } from "../autograd.ts";
import { run1 } from "../engine.ts";
import { fmtShape, OpError } from "../errors.ts";
import { broadcastShapes, shapesEqual, sizeOf } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import { assertDTypeIn, assertTensor } from "./operand.ts";
import { expand, reshape, squeeze, unsqueeze } from "./layout.ts";
import { sum } from "./reduce.ts";

/**
 * The recorded 3-D product: a [Ba, M, K] (or [Ba, K, M] with transA) times b [Bb, K, N] (or [Bb, N, K]
 * with transB), where Ba, Bb ∈ {1, B}. Batch-1 operands are reused for every batch and their gradients
 * are summed over the batch.
 */
function mm3(a: Tensor, b: Tensor, transA: boolean, transB: boolean): Tensor {
  const [ba, m] = [a.shape[0], transA ? a.shape[2] : a.shape[1]];
  const [bb, n] = [b.shape[0], transB ? b.shape[1] : b.shape[2]];
  const batch = Math.max(ba, bb);
  const out = run1("matmul", "matmul", [a, b], { shape: [batch, m, n], dtype: a.dtype }, { transA, transB });
  return record1("matmul", [a, b], out, (g) => {
    const fold = (t: Tensor, want: number) => (t.shape[0] === want ? t : sum(t, 0, true));
    // d(op(A)·op(B)): each case written so the stored layout of A and B comes out directly.
    let ga: Tensor | null = null, gb: Tensor | null = null;
    if (a.requiresGrad) {
      ga = !transA ? mm3(g, b, false, !transB) : (transB ? mm3(b, g, true, true) : mm3(b, g, false, true));
      ga = fold(ga, ba);
    }
    if (b.requiresGrad) {
      gb = !transB ? mm3(a, g, !transA, false) : (transA ? mm3(g, a, true, true) : mm3(g, a, true, false));
      gb = fold(gb, bb);
    }
    return [ga, gb];
  });
}

/**
 * Matrix product like `torch.matmul`: 1-D operands are promoted (and the added axis removed), leading
 * batch dimensions broadcast. A weight without batch dimensions is applied to all rows in one product.
 *
 * @example
 * ```ts
 * import { matmul, randn } from "@moegrad/moegrad";
 * const x = randn([8, 16, 32]);  // [batch, tokens, d]
 * const w = randn([32, 64]);
 * console.log(matmul(x, w).shape); // [8, 16, 64]
 * ```
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  assertTensor("matmul", a);
  assertTensor("matmul", b, "other");
  assertDTypeIn("matmul", a, ["f32", "f64"]);
  if (a.dtype !== b.dtype) {
    throw new OpError("matmul", `dtypes differ: ${a.dtype} ${fmtShape(a.shape)} and ${b.dtype} ${fmtShape(b.shape)}`);
  }
  if (a.rank === 0 || b.rank === 0) {
    throw new OpError(
      "matmul",
      `both operands need at least one dimension, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`,
    );
  }
  const a2 = a.rank === 1 ? unsqueeze(a, 0) : a;
  const b2 = b.rank === 1 ? unsqueeze(b, -1) : b;
  const [m, k] = a2.shape.slice(-2);
  const [k2, n] = b2.shape.slice(-2);
  if (k !== k2) {
    throw new OpError("matmul", `inner dimensions differ: ${fmtShape(a.shape)} @ ${fmtShape(b.shape)} (${k} vs ${k2})`);
  }
  const batchA = a2.shape.slice(0, -2), batchB = b2.shape.slice(0, -2);
  const batch = broadcastShapes("matmul", batchA, batchB);
  const nb = sizeOf(batch);
  let out: Tensor;
  if (sizeOf(batchB) === 1) {
    // x @ W: fold every batch row of a into M.
    out = mm3(reshape(a2, [1, nb * m, k]), reshape(b2, [1, k, n]), false, false);
  } else if (sizeOf(batchA) === 1) {
    out = mm3(reshape(a2, [1, m, k]), reshape(b2, [nb, k, n]), false, false);
  } else {
    const ea = shapesEqual(batchA, batch) ? a2 : expand(a2, [...batch, m, k]);
    const eb = shapesEqual(batchB, batch) ? b2 : expand(b2, [...batch, k, n]);
    out = mm3(reshape(ea, [nb, m, k]), reshape(eb, [nb, k, n]), false, false);
  }
  let y = reshape(out, [...batch, m, n]);
  if (a.rank === 1) y = squeeze(y, -2);
  if (b.rank === 1) y = squeeze(y, -1);
  return y;
}
