/**
 * Routing metrics (ESTIMATORS.md §10.6), computed on the routing's device with no host sync: every result is
 * a tensor the caller reads (`await t.data()`) when it wants. All computed under `noGrad`. {@link routingMetrics}
 * needs only a routing; {@link moeLayerMetrics} adds a dispatch's dropping (what `MoELayer.lastMetrics` holds).
 *
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import { OpError } from "../core/errors.ts";
import { noGrad } from "../core/autograd.ts";
import { oneHot } from "../core/ops/index.ts";
import type { DispatchPlan } from "./dispatch.ts";

/** What {@link routingMetrics} returns (scalars are rank-0 tensors). */
export interface RoutingMetrics {
  /** Per-expert load [E]: the fraction of (token, slot) assignments routed to each expert (sums to 1). */
  load: Tensor;
  /** Mean over tokens of the entropy `−Σ_i p_i log p_i` of the router probabilities (nats). */
  gateEntropy: Tensor;
  /** Number of experts with load 0 (float scalar). */
  unusedExperts: Tensor;
  /** Share of the assignments held by the most loaded 20 % of the experts (at least one expert). */
  topShare: Tensor;
  /** Share of the assignments held by the least loaded 20 % of the experts (at least one expert). */
  bottomShare: Tensor;
  /** Fraction of tokens whose sample differs from the argmax (when the `sampledNotArgmax` stat is given). */
  sampledNotArgmax?: Tensor;
  /** Fraction of tokens with ≥ 2 candidate experts (when the `candidates` stat is given). */
  multiCandidate?: Tensor;
}

/** Inputs of {@link routingMetrics}: a routing's `experts`, `probs` and `stats` (a `Routing` fits). */
export interface RoutingLike {
  /** Chosen experts, i32 [N, K] (or [N]). */
  experts: Tensor;
  /** Router probabilities [N, E]. */
  probs: Tensor;
  /** `sampledNotArgmax` (bool [N]) and `candidates` (i32 [N]) are used when present. */
  stats?: Record<string, Tensor>;
}

/** How many experts make up the top / bottom 20 %: `max(1, round(0.2·E))`. */
export function fifthOf(numExperts: number): number {
  return Math.max(1, Math.round(0.2 * numExperts));
}

/**
 * Load, gate entropy, unused experts, top/bottom-20 % shares, and (given the stats) the fraction sampled ≠
 * argmax and the fraction with ≥ 2 candidates. Dense estimators list every expert in `experts`; pass their
 * sampled experts (e.g. `gates.argmax(-1)`) instead to measure their load.
 */
export function routingMetrics(routing: RoutingLike): RoutingMetrics {
  const { experts, probs, stats } = routing;
  if (probs.rank !== 2) throw new OpError("routingMetrics", `probs must be [N, E], got rank ${probs.rank}`);
  const e = probs.shape[1];
  const dtype = probs.dtype;
  return noGrad(() => {
    const flat = experts.reshape(-1);
    const counts = oneHot(flat, e, dtype).sum(0);
    const load = counts.div(Math.max(1, flat.size));
    const p = probs.detach();
    const gateEntropy = p.mul(p.clamp(1e-30).log()).sum(-1).mean().neg();
    const unusedExperts = load.eq(0).astype(dtype).sum();
    const m = fifthOf(e);
    const sorted = load.sort({ descending: true }).values;
    const topShare = sorted.slice(0, 0, m).sum();
    const bottomShare = sorted.slice(0, e - m, e).sum();
    const out: RoutingMetrics = { load, gateEntropy, unusedExperts, topShare, bottomShare };
    const sna = stats?.sampledNotArgmax;
    if (sna) out.sampledNotArgmax = sna.astype(dtype).mean();
    const cand = stats?.candidates;
    if (cand) out.multiCandidate = cand.ge(2).astype(dtype).mean();
    return out;
  });
}

/** {@link routingMetrics} plus the dispatch's dropping (scalars, no host sync). */
export interface MoELayerMetrics extends RoutingMetrics {
  /** Number of dropped (token, slot) pairs (float scalar). */
  dropped: Tensor;
  /** `dropped / (N·K)`. */
  droppedFraction: Tensor;
}

/**
 * The metrics of one MoE forward: {@link routingMetrics} of `routing` and the number and fraction of the pairs
 * that `plan` dropped.
 *
 * @example
 * ```ts
 * import { moeLayerMetrics, planDispatch, routingMetrics, softmax, tensor } from "@moegrad/moegrad";
 * const experts = tensor([[0], [0], [1]], { dtype: "i32" });
 * const probs = softmax(tensor([[2, 0], [1, 0], [0, 1]]));
 * const plan = planDispatch(experts, { numExperts: 2, capacity: 1, dtype: "f32", device: probs.device });
 * const m = moeLayerMetrics({ experts, probs }, plan);
 * console.log(await m.dropped.data(), await m.droppedFraction.data()); // Float32Array [1] Float32Array [0.333…]
 * ```
 */
export function moeLayerMetrics(routing: RoutingLike, plan: DispatchPlan): MoELayerMetrics {
  const nk = plan.numTokens * plan.topK;
  return {
    ...routingMetrics(routing),
    dropped: plan.dropped,
    droppedFraction: noGrad(() => plan.dropped.div(nk)),
  };
}
