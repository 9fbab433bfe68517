/**
 * Top-K selection by biased scores with gates from the unbiased ones (loss-free balancing, Wang et al. 2024,
 * arXiv 2408.15664): `sel = topk(s + b)` and `values = s[sel]`. Without a bias it is `s.topk(K)` itself, so the
 * estimators that use it keep their results bit for bit when no bias is given.
 *
 * @module
 */
import type { Tensor } from "../../core/tensor.ts";
import { noGrad } from "../../core/autograd.ts";

/**
 * The K experts of each row of `scores` [N, E] ranked by `scores + bias` (bias [E], no gradient; ties to the
 * lowest index) and their UNBIASED scores, in that order: `values` carries the gradient of `scores` at the
 * chosen entries, the choice itself none.
 */
export function biasedTopK(scores: Tensor, k: number, bias?: Tensor): { values: Tensor; indices: Tensor } {
  if (!bias) return scores.topk(k);
  const e = scores.shape[1];
  if (bias.rank !== 1 || bias.shape[0] !== e) {
    throw new RangeError(`selection bias must be [${e}], got [${bias.shape.join(", ")}]`);
  }
  const indices = noGrad(() => scores.detach().add(bias).topk(k).indices);
  return { values: scores.gather(1, indices), indices };
}
