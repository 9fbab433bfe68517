/**
 * Attention's scaled, masked softmax as one fused op: `softmax(where(mask, x·scale, −∞))` with rows whose
 * every key is masked set to 0 — one kernel forward and one backward, instead of the mul, where, softmax and
 * where of the composed chain and their backward (mul, sum, sub, mul, where, mul). On the CPU both directions
 * give the chain's bits (see `kernels/cpu/masked_softmax.ts`). The causal mask is an attribute (no mask tensor
 * is built or read for it); any bool mask that broadcasts to the scores can be given as well.
 *
 * Higher-order gradients: the backward kernel has no VJP of its own; under `createGraph` the VJP is written with
 * public ops instead (the same formula), so gradients of any order still work.
 *
 * @module
 */
import { isGradEnabled, record } from "../autograd.ts";
import { run1 } from "../engine.ts";
import { fmtShape, OpError } from "../errors.ts";
import { broadcastShapes, shapesEqual } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import { assertDTypeIn, assertFloat, assertTensor } from "./operand.ts";
import { arange } from "./creation.ts";
import { logicalAnd, where } from "./binary.ts";

/** Options of {@link scaledMaskedSoftmax}. */
export interface MaskedSoftmaxOptions {
  /** Multiplies the scores before the softmax (default 1). */
  scale?: number;
  /** Bool mask that broadcasts to the scores' shape: true where a query may attend to a key (default none). */
  mask?: Tensor | null;
  /** Also mask key j > query i, i the index along axis −2 (default false). */
  causal?: boolean;
}

/**
 * softmax(x·scale) along the last axis of scores x `[…, Tq, Tk]`, with masked keys at −∞ (weight exactly 0)
 * and rows that have no allowed key all 0 (not NaN) — PyTorch's attention masking, like Megatron's
 * `scaled_masked_softmax`. A key is allowed where `mask` is true and, with `causal`, where j ≤ i. One kernel
 * forward and one backward; `scaledDotProductAttention` calls it.
 *
 * @example
 * ```ts
 * import { scaledMaskedSoftmax, tensor } from "@moegrad/moegrad";
 * const p = scaledMaskedSoftmax(tensor([[1, 5], [2, 2]]), { scale: 0.5, causal: true });
 * console.log(await p.data()); // [1, 0, 0.5, 0.5]
 * ```
 */
export function scaledMaskedSoftmax(x: Tensor, options: MaskedSoftmaxOptions = {}): Tensor {
  const op = "scaledMaskedSoftmax";
  assertTensor(op, x);
  assertFloat(op, x);
  const { scale = 1, mask = null, causal = false } = options;
  if (!Number.isFinite(scale)) throw new OpError(op, `scale must be a finite number, got ${scale}`);
  if (x.rank < (causal ? 2 : 1)) {
    throw new OpError(
      op,
      `scores must be [..., Tq, Tk]${causal ? " for causal masking" : ""}, got ${fmtShape(x.shape)}`,
    );
  }
  if (mask) {
    assertTensor(op, mask, "mask");
    assertDTypeIn(op, mask, ["bool"], "mask");
    if (!shapesEqual(broadcastShapes(op, x.shape, mask.shape), x.shape)) {
      throw new OpError(op, `mask ${fmtShape(mask.shape)} must broadcast to the scores' shape ${fmtShape(x.shape)}`);
    }
  }
  const attrs = { scale, causal, hasMask: mask !== null };
  const spec = { shape: x.shape, dtype: x.dtype };
  const y = run1(op, "maskedSoftmax", mask ? [x, mask] : [x], spec, attrs);
  record(op, [x], [y], ([g]) => {
    if (!x.requiresGrad) return [null];
    if (isGradEnabled()) return [composedBackward(g, y, allowedKeys(x, mask, causal), scale)];
    return [run1(op, "maskedSoftmaxBackward", mask ? [g, y, mask] : [g, y], spec, attrs)];
  });
  return y;
}

/** The allowed keys as one bool tensor (null when every key is allowed). */
function allowedKeys(x: Tensor, mask: Tensor | null, causal: boolean): Tensor | null {
  if (!causal) return mask;
  const [tq, tk] = x.shape.slice(-2), device = x.device;
  const lower = arange(0, tk, 1, { device }).reshape(1, tk).le(arange(0, tq, 1, { device }).reshape(tq, 1));
  return mask ? logicalAnd(mask, lower) : lower;
}

/** The backward kernel's formula with differentiable ops (for `createGraph`); y is 0 in rows with no key. */
function composedBackward(g: Tensor, y: Tensor, allowed: Tensor | null, scale: number): Tensor {
  const d = y.mul(g.sub(g.mul(y).sum(-1, true)));
  return (allowed ? where(allowed, d, 0) : d).mul(scale);
}
