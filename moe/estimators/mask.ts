/**
 * Shared building blocks of the SparseMixer family (ESTIMATORS.md §2.1–§2.2): the relative "jitter" mask,
 * the masked softmax, and Gumbel-max sampling.
 *
 * **Code vs paper**: GRIN's Eq. 2 keeps expert i when `z* − z_i ≤ r·(|z_i| + |z*|)`; the released code keeps it
 * when `z* − z_i ≤ 2ε·max(|z_i|, z*)`. The two agree only to first order. We implement the code's form, which
 * the vectors and the released models use. Note the mask is scale-invariant but not shift-invariant (a router
 * bias changes the candidate set).
 *
 * @module
 */
import type { Tensor } from "../../core/tensor.ts";
import { noGrad } from "../../core/autograd.ts";
import { oneHot } from "../../core/ops/index.ts";
import { OpError } from "../../core/errors.ts";

/**
 * The relative jitter mask in the reference code's form (ESTIMATORS.md §2.1), computed without gradient:
 *
 * ```
 * factor   = max(|z|, r)          (r itself, not |r|)
 * excluded = (r − z) / factor > 2ε
 * ```
 *
 * `ref` is the per-row reference value `r` ([N, 1]); it defaults to the row max of `z`. `0/0` (z = r = 0)
 * gives NaN, and `NaN > 2ε` is false, so such entries are kept; the row's reference value is always kept.
 * Returns a bool tensor shaped like `z`, true where the expert is excluded.
 */
export function jitterMask(z: Tensor, eps: number, ref?: Tensor): Tensor {
  if (z.rank !== 2) throw new OpError("jitterMask", `logits must be [N, E], got rank ${z.rank}`);
  return noGrad(() => {
    const zz = z.detach();
    const r = ref ? ref.detach() : zz.max(-1, true);
    const factor = zz.abs().maximum(r);
    return r.sub(zz).div(factor).gt(2 * eps);
  });
}

/**
 * `z` with −∞ where `excluded` is true (differentiable in `z` at the kept entries; excluded entries get a
 * zero gradient). Never mutates `z`.
 */
export function maskLogits(z: Tensor, excluded: Tensor): Tensor {
  return z.where(excluded.logicalNot(), -Infinity);
}

/** softmax(`z` with −∞ on `excluded`), row-wise; differentiable in `z` (ordinary autograd). */
export function maskedSoftmax(z: Tensor, excluded: Tensor, temperature = 1): Tensor {
  const masked = maskLogits(z, excluded);
  return (temperature === 1 ? masked : masked.div(temperature)).softmax(-1);
}

/**
 * Gumbel-max sampling (ESTIMATORS.md §2.2): `argmax_i(z̃_i − log E_i)` with `E ~ Exp(1)` ([N, E]), ties to
 * the lowest index. `maskedLogits` may hold −∞ (excluded experts), which never win, even where `E = 0`.
 * Returns i32 [N, 1]. No gradient.
 */
export function gumbelArgmax(maskedLogits: Tensor, exponentials: Tensor): Tensor {
  return noGrad(() => {
    const z = maskedLogits.detach();
    const keys = z.sub(exponentials.log());
    return keys.where(z.ne(-Infinity), -Infinity).argmax(-1, true);
  });
}

/** One-hot rows (dtype of `like`) of i32 indices [N, 1] → [N, E]. */
export function oneHotLike(index: Tensor, numExperts: number, like: Tensor): Tensor {
  return oneHot(index.reshape([index.shape[0]]), numExperts, like.dtype);
}
