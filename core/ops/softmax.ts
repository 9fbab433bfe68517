/**
 * softmax, logSoftmax and logsumexp, numerically stable and with PyTorch's handling of −∞: masked entries
 * (−∞) get probability 0 and gradient 0; a row that is entirely −∞ gives NaN (softmax) like PyTorch, and
 * logsumexp gives −∞ for it.
 *
 * @module
 */
import { noGrad, record1 } from "../autograd.ts";
import { run1 } from "../engine.ts";
import { normAxes, normAxis } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import { assertFloat, assertTensor } from "./operand.ts";
import { mul, sub, where } from "./binary.ts";
import { exp, log } from "./unary.ts";
import { expand, reshape } from "./layout.ts";
import { max, sum } from "./reduce.ts";
import { full } from "./creation.ts";

/**
 * Softmax along `axis` (default −1).
 *
 * @example
 * ```ts
 * import { softmax, tensor } from "@moegrad/moegrad";
 * // A −∞ logit (a masked expert) gets probability exactly 0.
 * console.log(await softmax(tensor([1, 1, -Infinity])).data()); // [0.5, 0.5, 0]
 * ```
 */
export function softmax(x: Tensor, axis = -1): Tensor {
  assertTensor("softmax", x);
  assertFloat("softmax", x);
  const a = normAxis("softmax", axis, x.shape);
  const y = run1("softmax", "softmax", [x], { shape: x.shape, dtype: x.dtype }, { axis: a, log: false });
  // J(y)ᵀg = y ⊙ (g − Σ g ⊙ y)
  return record1("softmax", [x], y, (g) => [mul(y, sub(g, sum(mul(g, y), a, true)))]);
}

/** log(softmax(x)) along `axis`, computed directly (stable for very negative logits). */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  assertTensor("logSoftmax", x);
  assertFloat("logSoftmax", x);
  const a = normAxis("logSoftmax", axis, x.shape);
  const y = run1("logSoftmax", "softmax", [x], { shape: x.shape, dtype: x.dtype }, { axis: a, log: true });
  return record1("logSoftmax", [x], y, (g) => [sub(g, mul(exp(y), sum(g, a, true)))]);
}

/**
 * log Σ exp(x) over `axis` (all axes when omitted), shifted by the max for stability; rows that are all −∞
 * give −∞ (and +∞ entries give +∞), as in PyTorch.
 */
export function logsumexp(x: Tensor, axis?: number | readonly number[], keepdim = false): Tensor {
  assertTensor("logsumexp", x);
  assertFloat("logsumexp", x);
  const axes = normAxes("logsumexp", axis, x.shape);
  const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const lseKept = noGrad(() => {
    // An empty reduced axis sums to 0, so its log is −∞ (as in PyTorch); max would reject it.
    const empty = axes.some((a) => x.shape[a] === 0);
    const m = empty ? full(kept, -Infinity, { dtype: x.dtype, device: x.device }) : max(x, axes, true);
    const shift = where(m.abs().eq(Infinity), 0, m);
    return log(sum(exp(sub(x, expand(shift, x.shape))), axes, true)).add(shift);
  });
  const out = keepdim ? lseKept : reshape(lseKept, x.shape.filter((_, i) => !axes.includes(i)));
  return record1("logsumexp", [x], out, (g) => [
    mul(expand(reshape(g, kept), x.shape), exp(sub(x, expand(reshape(out, kept), x.shape)))),
  ]);
}
