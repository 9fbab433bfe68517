/**
 * The range each aggregated LM metric can take, so that confidence bands and intervals are kept inside it (see
 * `clampInterval` in `../common/stats.ts` for why clamping keeps the coverage). Routing ranges depend on the
 * number of experts E: the router entropy is at most ln E, the max/mean load ratio lies in [1, E] (the loads are
 * fractions summing to 1) and at most E − 1 experts can be unused while any token is routed.
 *
 * @module
 */
import type { ValueRange } from "../common/stats.ts";

/** Every metric the LM aggregation summarises with an interval. */
export type LmMetric =
  | "loss"
  | "ppl"
  | "routerEntropy"
  | "loadImbalance"
  | "fraction"
  | "unusedExperts"
  | "msPerStep"
  | "tokensPerSec";

/** The ranges of {@link LmMetric}s for a model with `experts` experts per MoE layer (NaN: E unknown). */
export function metricRanges(experts: number): Record<LmMetric, ValueRange> {
  const e = Number.isFinite(experts) && experts >= 1 ? experts : Infinity;
  return {
    loss: { min: 0, max: Infinity }, // cross-entropy in nats
    ppl: { min: 1, max: Infinity }, // exp(loss)
    routerEntropy: { min: 0, max: Math.log(e) },
    loadImbalance: { min: 1, max: e },
    fraction: { min: 0, max: 1 },
    unusedExperts: { min: 0, max: e - 1 },
    msPerStep: { min: 0, max: Infinity },
    tokensPerSec: { min: 0, max: Infinity },
  };
}
