/**
 * GShard / Mixtral top-k softmax routing (ESTIMATORS.md §7.1): `p = softmax(z)`, `(w, idx) = topk(p, K)`,
 * optionally `w ← w / Σ w`. The gradient is ordinary autograd through `p` at the selected indices (the
 * "gating proxy"); the choice of experts itself gets no gradient. With loss-free balancing
 * (`RouteOptions.selectionBias`, `moe/loss_free_balance.ts`) the choice is `topk(p + b)` and the gates stay `p`'s.
 *
 * @module
 */
import type { Tensor } from "../../core/tensor.ts";
import { OpError } from "../../core/errors.ts";
import type { Estimator, RouteOptions, Routing } from "./estimator.ts";
import { biasedTopK } from "./biased_topk.ts";
import { schemaDefaults, topKOptionsSchema } from "./options.ts";
import { defineEstimator, DROPS_SLOTS, type EstimatorDescriptor, LOGITS_ONLY, topKOption } from "./descriptor.ts";

/** The defaults of {@link TopKOptions}, from its schema (`options.ts`). */
const DEFAULTS = schemaDefaults(topKOptionsSchema);

/**
 * Options of {@link TopKEstimator} (defaults in `topKOptionsSchema`, `options.ts`; the constructor requires
 * `topK`, whose default 1 applies to `createEstimator("topk")`).
 */
export interface TopKOptions {
  /** Experts per token (K ≥ 1); named `topK` like every estimator's (formerly `k`, now rejected). */
  topK: number;
  /** Divide the K selected probabilities by their sum (Mixtral; default true). */
  renormalize?: boolean;
}

/**
 * Top-k softmax routing. Deterministic (no draws, same in training and evaluation); `probs` is the full
 * softmax, `gates` the selected (renormalised) probabilities in descending order, ties to the lowest index.
 *
 * @example
 * ```ts
 * import { tensor } from "@moegrad/moegrad";
 * import { TopKEstimator } from "./topk.ts";
 * import { GeneratorDraws } from "./estimator.ts";
 * import { Generator } from "../../core/random/generator.ts";
 * const r = new TopKEstimator({ topK: 2 }).route(tensor([[1, 3, 2, 0]]), {
 *   training: true,
 *   draws: new GeneratorDraws(new Generator(0)),
 * });
 * console.log(await r.experts.data()); // [1, 2]
 * ```
 */
export class TopKEstimator implements Estimator {
  /** Registry name. */
  readonly name = "topk";
  /** Experts per token. */
  readonly topK: number;
  /** Sparse: only the K selected experts run. */
  readonly dense = false;
  /** Loss-free balancing may bias the choice (`RouteOptions.selectionBias`): `topk(p + b)`, gates from `p`. */
  readonly acceptsSelectionBias = true;
  /** Whether the gates are renormalised over the K selected experts. */
  readonly renormalize: boolean;

  /** See {@link TopKOptions}. */
  constructor(options: TopKOptions) {
    if (Object.hasOwn(options, "k")) {
      throw new OpError("TopKEstimator", `option "k" was renamed to "topK"`);
    }
    if (!Number.isInteger(options.topK) || options.topK < 1) {
      throw new OpError("TopKEstimator", `topK must be a positive integer, got ${options.topK}`);
    }
    this.topK = options.topK;
    this.renormalize = options.renormalize ?? DEFAULTS.renormalize;
  }

  /** Routes logits `z` [N, E] (E ≥ K). */
  route(logits: Tensor, options?: RouteOptions): Routing {
    if (logits.rank !== 2) throw new OpError("TopKEstimator", `logits must be [N, E], got rank ${logits.rank}`);
    const e = logits.shape[1];
    if (this.topK > e) throw new OpError("TopKEstimator", `topK = ${this.topK} exceeds the number of experts ${e}`);
    const probs = logits.softmax(-1);
    const { values, indices } = biasedTopK(probs, this.topK, options?.selectionBias);
    const gates = this.renormalize ? values.div(values.sum(-1, true)) : values;
    return { experts: indices, gates, probs };
  }
}

/** The registry entry `topk`. */
export const topKDescriptor: EstimatorDescriptor<Required<TopKOptions>, TopKEstimator, "topk"> = defineEstimator({
  name: "topk",
  summary: "GShard / Mixtral top-K softmax (deterministic; renormalised by default), plain autograd",
  options: topKOptionsSchema,
  renamedOptions: { k: "topK" },
  create: (options) => new TopKEstimator(options),
  routing: "sparse",
  topK: topKOption("any"),
  needs: LOGITS_ONLY,
  capacity: DROPS_SLOTS,
  // Unrenormalised top-1 is GShard top-1 = Switch without jitter; otherwise the renormalised top-K loss.
  objective: (est) =>
    est.topK === 1 && !est.renormalize
      ? { kind: "argmax" }
      : { kind: "topk", k: est.topK, renormalize: est.renormalize },
  sweep: { param: "none", options: (k) => ({ topK: k, renormalize: k > 1 }) },
  vectorFiles: [{ pattern: /^FORMULA-ONLY\b/, format: "topk-formula" }],
  references: [{
    // The formula-only Mixtral/GShard top-k softmax (no reference repository).
    objects: ["topk", "topk_softmax", "MixtralSparseMoeBlock"],
    topKWords: "1 to num_experts",
    supports: (k, e) => k >= 1 && k <= e,
    options: (p) => ({ topK: p.topK, renormalize: p.renormalize ?? true }),
    multiplier: "gates",
  }],
});
