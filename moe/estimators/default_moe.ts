/**
 * Default MoE (Panda et al. 2025, ESTIMATORS.md §7.4) as a registry estimator, `default-moe`: top-K softmax
 * selection (the `topk` estimator's forward, not renormalised by default) plus a term the layer adds from the
 * experts' outputs: every expert a token did NOT activate contributes its default vector `Ê_i`, an EMA of that
 * expert's outputs kept as the layer's buffer `defaultVectors`, so the router gets a dense gradient. The
 * estimator declares that need (`outputTerm`); the term itself is {@link DefaultMoe} (`moe/default_moe.ts`).
 *
 * @example
 * ```ts
 * import { Generator, MoELayer, randn } from "@moegrad/moegrad";
 * const moe = new MoELayer(4, {
 *   numExperts: 3,
 *   estimator: "default-moe",
 *   estimatorOptions: { topK: 1, beta: 0.9 },
 *   generator: new Generator(0),
 * });
 * moe.forward(randn([6, 4])); // training: updates Ê from the experts' outputs
 * console.log(moe.defaultVectors!.shape); // [3, 4]
 * ```
 *
 * @module
 */
import type { Tensor } from "../../core/tensor.ts";
import type { FloatDType } from "../../core/dtype.ts";
import type { Device } from "../../core/device.ts";
import type { Estimator, ExpertOutputTerm, RouteOptions, Routing } from "./estimator.ts";
import { TopKEstimator } from "./topk.ts";
import { defaultMoeOptionsSchema, schemaDefaults } from "./options.ts";
import { defineEstimator, type EstimatorDescriptor, LOGITS_ONLY, topKOption } from "./descriptor.ts";
import { DefaultMoe } from "../default_moe.ts";

const DEFAULTS = schemaDefaults(defaultMoeOptionsSchema);

/** Options of {@link DefaultMoeEstimator} (validated, with their defaults, by `defaultMoeOptionsSchema`). */
export interface DefaultMoeEstimatorOptions {
  /** Experts per token (default 1). */
  topK?: number;
  /** Renormalise the K selected probabilities (default false). */
  renormalize?: boolean;
  /** EMA factor β ∈ [0, 1) of the default vectors (default 0.9). */
  beta?: number;
}

/** Default MoE: top-K selection, and the default vectors' term from the experts' outputs (module docs). */
export class DefaultMoeEstimator implements Estimator {
  /** Registry name. */
  readonly name = "default-moe";
  /** Experts per token. */
  readonly topK: number;
  /** Sparse: K experts run per token (the others contribute their default vectors). */
  readonly dense = false;
  /** Whether the K selected probabilities are renormalised. */
  readonly renormalize: boolean;
  /** EMA factor β of the default vectors. */
  readonly beta: number;
  readonly #select: TopKEstimator;

  /** See {@link DefaultMoeEstimatorOptions}. */
  constructor(options: DefaultMoeEstimatorOptions = {}) {
    this.topK = options.topK ?? DEFAULTS.topK;
    this.renormalize = options.renormalize ?? DEFAULTS.renormalize;
    this.beta = options.beta ?? DEFAULTS.beta;
    if (!(this.beta >= 0 && this.beta < 1)) {
      throw new RangeError(`default-moe: beta must be in [0, 1), got ${this.beta}`);
    }
    this.#select = new TopKEstimator({ topK: this.topK, renormalize: this.renormalize });
  }

  /** The top-K selection (see `TopKEstimator`). */
  route(logits: Tensor, options: RouteOptions): Routing {
    return this.#select.route(logits, options);
  }

  /** The default vectors' term, with zero-initialised `Ê` [E, d] (the layer's buffer `defaultVectors`). */
  outputTerm(numExperts: number, dim: number, like: { dtype: FloatDType; device: Device }): ExpertOutputTerm {
    return new DefaultMoe(numExperts, dim, this.beta, like);
  }
}

/** The registry entry `default-moe`. */
export const defaultMoeDescriptor: EstimatorDescriptor<
  Required<DefaultMoeEstimatorOptions>,
  DefaultMoeEstimator,
  "default-moe"
> = defineEstimator({
  name: "default-moe",
  summary: "Default MoE: top-K, inactive experts contribute an EMA of their outputs (dense router gradient)",
  options: defaultMoeOptionsSchema,
  create: (options) => new DefaultMoeEstimator(options),
  routing: "sparse",
  topK: topKOption("any"),
  needs: { ...LOGITS_ONLY, expertOutputs: true },
  capacity: "a pair past its expert's capacity is dropped (gate × 0) and counts as inactive: it gets the default term",
  // The default vectors are layer state, which the one-token harness does not have.
  objective: () => null,
  sweep: null,
  references: [],
});
