/**
 * The records of a run's `metrics.jsonl` and the per-step routing statistics behind them.
 *
 * Each training step leaves, per MoE layer, one small vector on the device (`[load_0..load_{E−1}, entropy,
 * candidates, sampled≠argmax, unused, dropped, router entropy]`, built from the layer's `lastMetrics` without a host sync);
 * they are read back and averaged only when a train record is written, so the GPU is synced once per
 * `logEvery` steps.
 *
 * @module
 */
import { concat, noGrad, softmax, stack, type Tensor, zeros } from "../../core/mod.ts";
import type { MoELayer } from "../../moe/layer.ts";
import type { EvalRoutingRecord } from "./eval_routing.ts";
import { loadCv, maxVio } from "./routing_diagnostics.ts";

/** Routing statistics of one MoE layer, averaged over the steps since the previous train record. */
export interface RoutingRecord {
  /** Index of the decoder layer. */
  layer: number;
  /** Fraction of the (token, slot) assignments per expert (sums to 1). */
  load: number[];
  /** Mean entropy (nats) of the estimator's routing probabilities (SparseMixer: its masked softmax). */
  entropy: number;
  /** Mean entropy (nats) of the full softmax of the router logits: comparable across estimators. */
  routerEntropy: number;
  /** Fraction of tokens with ≥ 2 candidate experts (SparseMixer's mask); null for routers without one. */
  candidateFraction: number | null;
  /** Fraction of tokens whose routed expert is not the argmax; null for deterministic routers. */
  sampledNeArgmax: number | null;
  /** Experts that received no assignment (mean over steps). */
  unusedExperts: number;
  /** Fraction of assignments dropped by the capacity limit; null when dropless. */
  droppedFraction: number | null;
  /** MaxVio of each step's batch (`max load / mean load − 1`), averaged over the steps (`routing_diagnostics.ts`). */
  maxVio: number;
  /** Coefficient of variation of each step's per-expert loads, averaged over the steps. */
  loadCv: number;
}

/** A `kind: "train"` record. */
export interface TrainRecord {
  /** Record type. */
  kind: "train";
  /** Optimizer updates done. */
  step: number;
  /** Mean total loss (LM + auxiliary) over the steps since the previous record. */
  loss: number;
  /** Mean language-model cross-entropy (nats/token) over those steps. */
  lmLoss: number;
  /** Mean auxiliary loss (balance + z) over those steps. */
  auxLoss: number;
  /** Learning rate of this step's update. */
  lr: number;
  /** Training tokens seen so far. */
  tokens: number;
  /** Training throughput over those steps (timing: not reproducible). */
  tokensPerSec: number;
  /** Mean wall time per step over those steps (timing: not reproducible). */
  msPerStep: number;
  /** Per MoE layer. */
  routing: RoutingRecord[];
}

/** A `kind: "eval"` record (eval mode, fixed batches). */
export interface EvalRecord {
  /** Record type. */
  kind: "eval";
  /** Optimizer updates done. */
  step: number;
  /** `"valid"` (held-out SOTU) or `"ood"` (Moby Dick). */
  split: "valid" | "ood";
  /** Mean cross-entropy (nats/token). */
  loss: number;
  /** `exp(loss)`. */
  ppl: number;
  /** Tokens scored. */
  tokens: number;
  /** Valid split only: MI between token id and expert per MoE layer, eval mode (`eval_routing.ts`). */
  routing?: EvalRoutingRecord[];
}

/** One line of `metrics.jsonl`. */
export type MetricsRecord = TrainRecord | EvalRecord;

/** The fields of a train record that are wall-clock timings (excluded from reproducibility checks). */
export const TIMING_FIELDS: readonly string[] = ["tokensPerSec", "msPerStep"];

/** Which optional statistics a layer's estimator reports (fixed for a run). */
export interface RoutingShape {
  /** Number of experts. */
  experts: number;
  /** The estimator reports candidate counts. */
  candidates: boolean;
  /** The estimator reports sampled ≠ argmax. */
  sampled: boolean;
  /** The layer has a capacity (can drop). */
  capacity: boolean;
}

/** The layer's statistics of its latest forward as one vector (see the module docs); null before a forward. */
export function routingVector(layer: MoELayer): { vector: Tensor; shape: RoutingShape } | null {
  const m = layer.lastMetrics;
  if (!m) return null;
  return noGrad(() => {
    const z = zeros([], { dtype: m.load.dtype, device: m.load.device });
    const p = softmax(layer.lastLogits!.detach(), -1);
    const routerEntropy = p.mul(p.clamp(1e-30).log()).sum(-1).mean().neg().astype(m.load.dtype);
    const tail = stack([
      m.gateEntropy,
      m.multiCandidate ?? z,
      m.sampledNotArgmax ?? z,
      m.unusedExperts,
      m.droppedFraction,
      routerEntropy,
    ]);
    return {
      vector: concat([m.load, tail]),
      shape: {
        experts: layer.numExperts,
        candidates: m.multiCandidate !== undefined,
        sampled: m.sampledNotArgmax !== undefined,
        capacity: layer.capacityFactor !== undefined,
      },
    };
  });
}

/** Averages host copies of {@link routingVector} vectors (one per step) into a {@link RoutingRecord}. */
export function averageRouting(layerIndex: number, shape: RoutingShape, vectors: Float32Array[]): RoutingRecord {
  const n = vectors.length;
  const len = shape.experts + 6;
  const mean = new Float64Array(len);
  for (const v of vectors) for (let i = 0; i < len; i++) mean[i] += v[i] / n;
  const e = shape.experts;
  // Per-batch balance, from each step's own loads (the interval mean would hide a batch's imbalance).
  const perStep = (f: (load: readonly number[]) => number) =>
    vectors.reduce((sum, v) => sum + f(Array.from(v.subarray(0, e))), 0) / n;
  return {
    layer: layerIndex,
    load: Array.from(mean.subarray(0, e)),
    entropy: mean[e],
    routerEntropy: mean[e + 5],
    candidateFraction: shape.candidates ? mean[e + 1] : null,
    sampledNeArgmax: shape.sampled ? mean[e + 2] : null,
    unusedExperts: mean[e + 3],
    droppedFraction: shape.capacity ? mean[e + 4] : null,
    maxVio: perStep(maxVio),
    loadCv: perStep(loadCv),
  };
}

/** A record without its timing fields (for reproducibility comparisons). */
export function withoutTiming(record: MetricsRecord): Record<string, unknown> {
  const out: Record<string, unknown> = { ...record };
  for (const k of TIMING_FIELDS) delete out[k];
  return out;
}
