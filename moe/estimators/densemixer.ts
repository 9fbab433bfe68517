/**
 * DenseMixer (Yao et al. 2025; ESTIMATORS.md §12) as a registry estimator, `densemixer`: top-K softmax selection
 * (the `topk` estimator's forward, renormalised by default) plus the dense weights `w` [N, E] in
 * `Routing.extra.denseWeights`, which the layer's output term ({@link DenseMixerTerm}, `moe/densemixer.ts`) uses
 * to give the router a straight-through gradient through EVERY expert's output while the forward stays sparse.
 * Training runs every expert on every token (E/K× the expert FLOPs of the forward); evaluation is sparse.
 *
 * @example
 * ```ts
 * import { createEstimator, Generator, GeneratorDraws, tensor } from "@moegrad/moegrad";
 * const r = createEstimator("densemixer", { topK: 2 }).route(tensor([[1, 3, 2, 0]]), {
 *   training: true,
 *   draws: new GeneratorDraws(new Generator(0)),
 * });
 * console.log(await r.experts.data(), r.extra!.denseWeights.shape); // Int32Array [1, 2] [1, 4]
 * ```
 *
 * @module
 */
import type { Tensor } from "../../core/tensor.ts";
import type { FloatDType } from "../../core/dtype.ts";
import type { Device } from "../../core/device.ts";
import { noGrad } from "../../core/autograd.ts";
import { oneHot } from "../../core/ops/index.ts";
import type { Estimator, ExpertOutputTerm, RouteOptions, Routing } from "./estimator.ts";
import { TopKEstimator } from "./topk.ts";
import { schemaDefaults, topKOptionsSchema } from "./options.ts";
import { defineEstimator, DROPS_SLOTS, type EstimatorDescriptor, LOGITS_ONLY, topKOption } from "./descriptor.ts";
import { DenseMixerTerm } from "../densemixer.ts";

/** The options of {@link DenseMixerEstimator} (and of the registry name `densemixer`): those of `topk`. */
export const denseMixerOptionsSchema = topKOptionsSchema.describe(
  "Options of the `densemixer` estimator (DenseMixerEstimator, Yao et al. 2025): those of `topk`.",
);

const DEFAULTS = schemaDefaults(denseMixerOptionsSchema);

/** Options of {@link DenseMixerEstimator} (defaults in `denseMixerOptionsSchema`). */
export interface DenseMixerOptions {
  /** Experts per token (default 1). */
  topK?: number;
  /** Renormalise the K selected probabilities (default true). */
  renormalize?: boolean;
}

/** DenseMixer: top-K selection and the dense weights of its straight-through router gradient (module docs). */
export class DenseMixerEstimator implements Estimator {
  /** Registry name. */
  readonly name = "densemixer";
  /** Experts per token. */
  readonly topK: number;
  /** Sparse forward (every expert runs in training, for the router's gradient only). */
  readonly dense = false;
  /** Loss-free balancing may bias the choice, as for `topk`. */
  readonly acceptsSelectionBias = true;
  /** Whether the K selected probabilities are renormalised. */
  readonly renormalize: boolean;
  readonly #select: TopKEstimator;

  /** See {@link DenseMixerOptions}. */
  constructor(options: DenseMixerOptions = {}) {
    this.topK = options.topK ?? DEFAULTS.topK;
    this.renormalize = options.renormalize ?? DEFAULTS.renormalize;
    this.#select = new TopKEstimator({ topK: this.topK, renormalize: this.renormalize });
  }

  /**
   * The top-K routing, with `extra.denseWeights` [N, E]: `p = softmax(z)`, or with renormalisation the chosen
   * entries divided by their sum `σ` and the others by `stopgrad(σ)`.
   */
  route(logits: Tensor, options: RouteOptions): Routing {
    const routing = this.#select.route(logits, options);
    const p = routing.probs;
    let w = p;
    if (this.renormalize) {
      const e = p.shape[1];
      const chosen = noGrad(() => oneHot(routing.experts, e, p.dtype).sum(1)); // [N, E] 0/1
      const sum = p.mul(chosen).sum(-1, true);
      w = p.mul(chosen).div(sum).add(p.mul(chosen.neg().add(1)).div(sum.detach()));
    }
    return { ...routing, extra: { ...routing.extra, denseWeights: w } };
  }

  /** DenseMixer's term (no state). */
  outputTerm(_numExperts: number, _dim: number, _like: { dtype: FloatDType; device: Device }): ExpertOutputTerm {
    return new DenseMixerTerm();
  }
}

/** The registry entry `densemixer`. */
export const denseMixerDescriptor: EstimatorDescriptor<
  Required<DenseMixerOptions>,
  DenseMixerEstimator,
  "densemixer"
> = defineEstimator({
  name: "densemixer",
  summary: "DenseMixer: top-K forward, every expert runs in training for a dense straight-through router gradient",
  options: denseMixerOptionsSchema,
  create: (options) => new DenseMixerEstimator(options),
  routing: "sparse",
  topK: topKOption("any"),
  needs: { ...LOGITS_ONLY, expertOutputs: true },
  capacity: `${DROPS_SLOTS}; the router's dense gradient still sees every expert`,
  // Its router gradient needs the experts' outputs, which the one-token harness does not have.
  objective: () => null,
  sweep: null,
  references: [],
});
