/**
 * Default MoE (Panda et al. 2025, ESTIMATORS.md §7.4): the sparse top-K forward is kept, and every expert that a
 * token did NOT activate contributes its default vector `Ê_i` (buffer `defaultVectors` [E, d],
 * zero-initialised): `y = Σ_{i∈TopK} π_i E_i(x) + Σ_{i∉TopK} π_i Ê_i`, with `π = softmax(z)` over all E experts.
 * {@link DefaultMoe.terms} computes the second sum.
 *
 * `Ê` is a constant (no gradient), so `∂y/∂π_i = Ê_i` for inactive experts and the router gets a dense gradient.
 * In training, the forward first updates `Ê_i ← β Ê_i + (1−β)·mean_{x routed to i} E_i(x)` (plain mean over the
 * kept pairs of this call; experts with no kept pair keep their `Ê_i`; the paper's router-probability-weighted
 * variant is not implemented), then uses the new `Ê`; in evaluation `Ê` is read, not updated. A capacity-dropped
 * pair counts as inactive (its expert did not run on it), so it gets the default term.
 *
 * In `MoELayer` it is the term of the registry estimator `default-moe` (`DefaultMoeEstimator`,
 * `moe/estimators/default_moe.ts`): selection is top-K, NOT renormalised by default (the paper does not say, and
 * unrenormalised weights keep `Σ_i π_i = 1` over active + default terms; `renormalize: true` renormalises the active
 * weights while the default terms keep the raw `π_i`). The estimator declares that it needs the experts' outputs
 * (`Estimator.outputTerm`), and the layer adopts this module's buffer as its own `defaultVectors`.
 *
 * @example
 * ```ts
 * import { DefaultMoe } from "@moegrad/moegrad";
 * const term = new DefaultMoe(3, 4, 0.9, { dtype: "f64" });
 * console.log(term.beta, term.vectors.shape); // 0.9 [3, 4]
 * ```
 *
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import type { Device } from "../core/device.ts";
import type { FloatDType } from "../core/dtype.ts";
import { noGrad } from "../core/autograd.ts";
import { zeros } from "../core/ops/creation.ts";
import { Module } from "../nn/module.ts";
import type { Routing } from "./estimators/estimator.ts";
import type { DispatchPlan } from "./dispatch.ts";

/** Options of {@link DefaultMoe}. */
export interface DefaultMoeOptions {
  /** Device of the default vectors. */
  device?: Device | string;
  /** Their dtype (default f32). */
  dtype?: FloatDType;
}

/** Default MoE's state (the default vectors `Ê`, buffer `defaultVectors`) and its EMA factor β. */
export class DefaultMoe extends Module {
  /** EMA factor β ∈ [0, 1) of the default vectors. */
  readonly beta: number;
  /** The default vectors `Ê` [E, d] (the buffer `defaultVectors`; zero-initialised). */
  readonly vectors: Tensor;

  /** Zero default vectors for `numExperts` experts of width `dim`. */
  constructor(numExperts: number, dim: number, beta: number, options: DefaultMoeOptions = {}) {
    super();
    this.beta = beta;
    this.vectors = this.buffer("defaultVectors", zeros([numExperts, dim], options));
  }

  /**
   * `Σ_{i∉TopK} π_i Ê_i` [N, d] for a routing dispatched by `plan`, whose kept pairs' expert outputs are `rows`
   * [N·K, d] (sorted order); in training `Ê` is first updated from those outputs (see the module docs).
   */
  terms(rows: Tensor, routing: Routing, plan: DispatchPlan, training: boolean): Tensor {
    const { numExperts: e, numTokens: n } = plan;
    const ehat = this.vectors;
    const like = { dtype: rows.dtype, device: rows.device };
    // The product below uses a copy of Ê: a later forward's in-place EMA update must not change what this
    // call's backward reads.
    let used = ehat;
    const inactive = noGrad(() => {
      const sortedE = plan.sortedExperts;
      if (training) {
        const keep = plan.keep.unsqueeze(1);
        const sums = zeros([e, ehat.shape[1]], like).indexAdd(0, sortedE, rows.detach().mul(keep));
        const counts = zeros([e], like).indexAdd(0, sortedE, plan.keep).unsqueeze(1);
        const mean = sums.div(counts.maximum(1));
        const step = counts.gt(0).astype(rows.dtype).mul(1 - this.beta); // experts without tokens keep Ê
        used = ehat.add(mean.sub(ehat).mul(step));
        ehat.assign_(used);
      } else {
        used = ehat.clone();
      }
      const cell = plan.token.mul(e).add(sortedE);
      return zeros([n * e], like).indexAdd(0, cell, plan.keep).neg().add(1).reshape(n, e);
    });
    return routing.probs.mul(inactive).matmul(used);
  }
}
