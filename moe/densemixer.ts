/**
 * DenseMixer (Yao et al. 2025, github yaof20/DenseMixer; ESTIMATORS.md §12): the term of the layer output that
 * gives the router a dense straight-through gradient while the forward stays the sparse top-K one. In training the
 * layer output is
 *
 * `y = stopgrad(y_sparse) + (y_dense − stopgrad(y_dense))`, `y_sparse = Σ_{i∈TopK} g_i E_i(x)`,
 * `y_dense = Σ_i w_i E_i(x)` over ALL experts,
 *
 * with the gradient reaching each `E_i(x)` masked to the tokens that chose expert i. So the value is `y_sparse`,
 * the experts' weights and `x` get exactly the sparse top-K gradient (`g_i = w_i` at the chosen experts), and the
 * router gets `Σ_i (∂w_i/∂z) E_i(x)` over every expert.
 *
 * How the layer computes it: the ordinary sparse combine (gates with gradient) plus this module's term
 * `(D − stopgrad(D)) − (S − stopgrad(S))`, `D = Σ_i w_i · stopgrad(E_i(x))` over all experts (run under `noGrad`,
 * so the dense forward records no tape) and `S = Σ_{kept pairs} g · stopgrad(row)` the sparse gate term. Both
 * differences are exactly 0 in value, so the forward is the sparse layer's, bit for bit; in the gradient the
 * `S` part cancels the sparse combine's gating-proxy gradient of the gates exactly (same products, opposite sign)
 * and the `D` part adds the dense one. In evaluation the term is 0 and no dense forward runs.
 *
 * Choices left open by the method, made here: the dense weights `w` are the full softmax; with renormalisation
 * the chosen entries are divided by their sum and the others by the same sum held constant (the repo's OLMoE
 * code); a capacity-dropped pair contributes nothing to the forward and to the experts' gradient (as in `topk`),
 * but its expert still enters the router's dense gradient.
 *
 * @example
 * ```ts
 * import { Generator, MoELayer, randn } from "@moegrad/moegrad";
 * const moe = new MoELayer(4, {
 *   numExperts: 3,
 *   estimator: "densemixer",
 *   estimatorOptions: { topK: 1 },
 *   generator: new Generator(0),
 * });
 * moe.forward(randn([6, 4])).sum().backward(); // every expert ran; the router's gradient is dense
 * console.log(moe.router.weight.grad!.shape); // [4, 3]
 * ```
 *
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import { noGrad } from "../core/autograd.ts";
import { zeros } from "../core/ops/creation.ts";
import { Module } from "../nn/module.ts";
import type { ExpertOutputTerm, Routing } from "./estimators/estimator.ts";
import { combinePairs, type DispatchPlan } from "./dispatch.ts";

/** `t − stopgrad(t)`: exactly 0 in value, `t`'s gradient in the backward. */
function gradientOnly(t: Tensor): Tensor {
  return t.sub(t.detach());
}

/** DenseMixer's term of the layer output (module docs); no state. */
export class DenseMixerTerm extends Module implements ExpertOutputTerm {
  /**
   * In training, `(D − sg(D)) − (S − sg(S))` [N, d] for the routing's dense weights (`routing.extra.denseWeights`
   * [N, E]); in evaluation zeros.
   */
  terms(rows: Tensor, routing: Routing, plan: DispatchPlan, training: boolean, allExperts: () => Tensor): Tensor {
    const w = routing.extra?.denseWeights;
    if (!training || !w) return zeros([plan.numTokens, rows.shape[1]], { dtype: rows.dtype, device: rows.device });
    const outputs = noGrad(allExperts); // [E, N, d], no tape: the experts learn through the sparse pairs only
    const dense = w.transpose(0, 1).unsqueeze(2).mul(outputs).sum(0);
    const sparse = combinePairs(rows.detach(), routing.gates, plan);
    return gradientOnly(dense).sub(gradientOnly(sparse));
  }
}
