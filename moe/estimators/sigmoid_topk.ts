/**
 * Sigmoid gate scores (DeepSeek-V3, arXiv 2412.19437 §2.1.2; ESTIMATORS.md §12), registry name `sigmoid-topk`:
 * `s_i = σ(z_i)` per expert (independent, not a softmax), the K experts of largest `s + b` are chosen (`b` the
 * loss-free balancing bias when the layer has one, `RouteOptions.selectionBias`; else 0), and the gates are
 * `g_i = routeScale · s_i / Σ_{j∈sel} s_j` (or `routeScale · s_i` with `renormalize: false`).
 *
 * The gradient is plain autograd through `s` at the chosen experts (the gating proxy, as `topk`); the choice gets
 * none, and `b` never reaches the gates. Choices the papers leave open, made here:
 *
 * - `probs` (what the balance loss reads) is `s / Σ_j s_j` over all E experts: DeepSeek-V3's normalisation for its
 *   complementary sequence-wise balance loss, so `MoELayer`'s `balanceLoss` works unchanged (V3 applies it per
 *   sequence with a tiny α; here its scope is the layer's `local` / `global`).
 * - V3's node-limited (group-limited) routing is not implemented: it is a communication device, not a routing
 *   rule, and the layer runs on one device.
 * - `routeScale` defaults to 1 (V3 uses 2.5 with 256 experts and K = 8; the scale only rescales the MoE branch).
 * - K defaults to 1, like `topk`; the selection is deterministic (no draws), the same in training and evaluation.
 *
 * @example
 * ```ts
 * import { createEstimator, Generator, GeneratorDraws, tensor } from "@moegrad/moegrad";
 * const r = createEstimator("sigmoid-topk", { topK: 2 }).route(tensor([[0, 2, 1, -1]]), {
 *   training: true,
 *   draws: new GeneratorDraws(new Generator(0)),
 * });
 * console.log(await r.experts.data()); // Int32Array [1, 2]: σ(2) / (σ(2) + σ(1)) and σ(1) / (σ(2) + σ(1))
 * ```
 *
 * @module
 */
import { z } from "../../deps.ts";
import type { Tensor } from "../../core/tensor.ts";
import { OpError } from "../../core/errors.ts";
import type { Estimator, RouteOptions, Routing } from "./estimator.ts";
import { allowing, schemaDefaults, topKOptionsSchema } from "./options.ts";
import { biasedTopK } from "./biased_topk.ts";
import { defineEstimator, DROPS_SLOTS, type EstimatorDescriptor, LOGITS_ONLY, topKOption } from "./descriptor.ts";

/** The options of {@link SigmoidTopKEstimator} (and of the registry name `sigmoid-topk`). */
export const sigmoidTopKOptionsSchema = topKOptionsSchema.extend({
  routeScale: allowing(
    z.number().positive().default(1).describe("Multiplier of every gate (DeepSeek-V3's route scale; default 1)."),
    "a finite number > 0",
  ),
}).describe("Options of the `sigmoid-topk` estimator (SigmoidTopKEstimator, DeepSeek-V3 sigmoid gates).");

const DEFAULTS = schemaDefaults(sigmoidTopKOptionsSchema);

/** Options of {@link SigmoidTopKEstimator} (defaults in `sigmoidTopKOptionsSchema`). */
export interface SigmoidTopKOptions {
  /** Experts per token (default 1). */
  topK?: number;
  /** Divide the K chosen scores by their sum (default true). */
  renormalize?: boolean;
  /** Multiplier of every gate (default 1). */
  routeScale?: number;
}

/** DeepSeek-V3 sigmoid routing (see the module docs). */
export class SigmoidTopKEstimator implements Estimator {
  /** Registry name. */
  readonly name = "sigmoid-topk";
  /** Experts per token. */
  readonly topK: number;
  /** Sparse: K experts run per token. */
  readonly dense = false;
  /** Loss-free balancing may bias the choice: `topk(s + b)`, gates from `s`. */
  readonly acceptsSelectionBias = true;
  /** Whether the chosen scores are divided by their sum. */
  readonly renormalize: boolean;
  /** Multiplier of every gate. */
  readonly routeScale: number;

  /** See {@link SigmoidTopKOptions}. */
  constructor(options: SigmoidTopKOptions = {}) {
    this.topK = options.topK ?? DEFAULTS.topK;
    this.renormalize = options.renormalize ?? DEFAULTS.renormalize;
    this.routeScale = options.routeScale ?? DEFAULTS.routeScale;
    if (!Number.isInteger(this.topK) || this.topK < 1) {
      throw new OpError("SigmoidTopKEstimator", `topK must be a positive integer, got ${this.topK}`);
    }
    if (!(this.routeScale > 0)) {
      throw new OpError("SigmoidTopKEstimator", `routeScale must be > 0, got ${this.routeScale}`);
    }
  }

  /** Routes logits `z` [N, E] (E ≥ K). */
  route(logits: Tensor, options?: RouteOptions): Routing {
    if (logits.rank !== 2) {
      throw new OpError("SigmoidTopKEstimator", `logits must be [N, E], got rank ${logits.rank}`);
    }
    const e = logits.shape[1];
    if (this.topK > e) {
      throw new OpError("SigmoidTopKEstimator", `topK = ${this.topK} exceeds the number of experts ${e}`);
    }
    const scores = logits.sigmoid();
    const { values, indices } = biasedTopK(scores, this.topK, options?.selectionBias);
    const gates = this.renormalize ? values.div(values.sum(-1, true)) : values;
    return {
      experts: indices,
      gates: this.routeScale === 1 ? gates : gates.mul(this.routeScale),
      probs: scores.div(scores.sum(-1, true)),
    };
  }
}

/** The registry entry `sigmoid-topk`. */
export const sigmoidTopKDescriptor: EstimatorDescriptor<
  Required<SigmoidTopKOptions>,
  SigmoidTopKEstimator,
  "sigmoid-topk"
> = defineEstimator({
  name: "sigmoid-topk",
  summary: "DeepSeek-V3 sigmoid scores: top-K of σ(z) (+ loss-free bias), gates σ renormalised, plain autograd",
  options: sigmoidTopKOptionsSchema,
  create: (options) => new SigmoidTopKEstimator(options),
  routing: "sparse",
  topK: topKOption("any"),
  needs: LOGITS_ONLY,
  capacity: DROPS_SLOTS,
  // The exact-gradient harness's objectives are softmax routings; sigmoid gates have none there.
  objective: () => null,
  sweep: null,
  references: [],
});
