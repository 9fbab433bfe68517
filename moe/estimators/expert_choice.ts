/**
 * Expert-choice routing (Zhou et al. 2022, arXiv 2202.09368; ESTIMATORS.md §12), registry name `expert-choice`:
 * the experts choose the tokens. `S = softmax(z)` over experts, [N, E]; each expert takes the `C` tokens of largest
 * `S[:, e]` (ties to the lowest token index), `C = min(N, ceil(capacityFactor · N · K / E))`; a token gets 0…E
 * experts, and its gates are the `S` values of the experts that took it (not renormalised). The routing lists
 * K = E slots per token (slot e = expert e) and marks the pairs no expert took inactive (`Routing.active`), so
 * the layer's dispatch gives them no row. Load is balanced by construction (every expert takes exactly C tokens),
 * so no balance loss is needed. The gradient is plain autograd through `S` at the taken pairs; the choice gets
 * none.
 *
 * **Causality.** The choice looks across every token of the forward call (batch × sequence flattened), so in a
 * decoder a token's experts depend on other sequences and on LATER positions of its own: information from the
 * future leaks into training. The paper targets encoders and does not say what a decoder should do. Made here:
 *
 * - training uses expert choice over the whole forward call, as the paper (the leak is a property of the method,
 *   reported, not hidden: a causal LM trained this way sees through other tokens' routing);
 * - evaluation (`evaluation: "topk"`, the default) routes each token on its own to its K experts of largest `S`,
 *   with the gates `S` (token choice, causal and independent of the batch), so validation losses are honest
 *   causal-LM losses; `evaluation: "expert-choice"` keeps the training rule (batch-dependent, non-causal).
 *
 * Other open choices: `probs` (for the balance loss, if one is set anyway) is `S`; the layer's own
 * `capacityFactor` should stay undefined (the expert capacity is this estimator's option).
 *
 * @example
 * ```ts
 * import { createEstimator, Generator, GeneratorDraws, tensor } from "@moegrad/moegrad";
 * const r = createEstimator("expert-choice", { topK: 1 }).route(tensor([[2, 0], [1, 0], [0, 3], [0, 1]]), {
 *   training: true,
 *   draws: new GeneratorDraws(new Generator(0)),
 * });
 * // C = 2: expert 0 takes tokens 0 and 1, expert 1 tokens 2 and 3.
 * console.log(await r.active!.data()); // [1, 0, 1, 0, 0, 1, 0, 1]
 * ```
 *
 * @module
 */
import { z } from "../../deps.ts";
import type { Tensor } from "../../core/tensor.ts";
import { OpError } from "../../core/errors.ts";
import { noGrad } from "../../core/autograd.ts";
import { arange } from "../../core/ops/creation.ts";
import { oneHot } from "../../core/ops/index.ts";
import type { Estimator, RouteOptions, Routing } from "./estimator.ts";
import { allowing, schemaDefaults } from "./options.ts";
import { defineEstimator, type EstimatorDescriptor, LOGITS_ONLY, topKOption } from "./descriptor.ts";

/** The options of {@link ExpertChoiceEstimator} (and of the registry name `expert-choice`). */
export const expertChoiceOptionsSchema = z.strictObject({
  topK: allowing(
    z.int().min(1).default(1).describe("Mean experts per token K in C = ceil(capacityFactor·N·K/E) (default 1)."),
    "an integer ≥ 1",
  ),
  capacityFactor: allowing(
    z.number().positive().default(1).describe("Capacity factor in C = ceil(capacityFactor·N·K/E) (default 1)."),
    "a finite number > 0",
  ),
  evaluation: allowing(
    z.enum(["topk", "expert-choice"]).default("topk").describe(
      'Evaluation routing: "topk" (default; each token its K experts of largest S, causal) or "expert-choice".',
    ),
    '"topk" or "expert-choice"',
  ),
}).describe("Options of the `expert-choice` estimator (ExpertChoiceEstimator, Zhou et al. 2022).");

const DEFAULTS = schemaDefaults(expertChoiceOptionsSchema);

/** Options of {@link ExpertChoiceEstimator} (defaults in `expertChoiceOptionsSchema`). */
export interface ExpertChoiceOptions {
  /** Mean experts per token K in the capacity (default 1). */
  topK?: number;
  /** Capacity factor (default 1). */
  capacityFactor?: number;
  /** Evaluation routing (default `"topk"`, see the module docs). */
  evaluation?: "topk" | "expert-choice";
}

/** Expert-choice routing (see the module docs). */
export class ExpertChoiceEstimator implements Estimator {
  /** Registry name. */
  readonly name = "expert-choice";
  /** Mean experts per token K (in training a token gets 0…E; its routing lists E slots). */
  readonly topK: number;
  /** Sparse: E·C pairs run. */
  readonly dense = false;
  /** Capacity factor of `C`. */
  readonly capacityFactor: number;
  /** Evaluation routing. */
  readonly evaluation: "topk" | "expert-choice";

  /** See {@link ExpertChoiceOptions}. */
  constructor(options: ExpertChoiceOptions = {}) {
    this.topK = options.topK ?? DEFAULTS.topK;
    this.capacityFactor = options.capacityFactor ?? DEFAULTS.capacityFactor;
    this.evaluation = options.evaluation ?? DEFAULTS.evaluation;
  }

  /** Tokens per expert `C = min(N, ceil(capacityFactor · N · K / E))` for N tokens and E experts. */
  capacity(numTokens: number, numExperts: number): number {
    return Math.min(numTokens, Math.ceil(this.capacityFactor * numTokens * this.topK / numExperts));
  }

  /** Routes logits `z` [N, E]: expert choice in training, per `evaluation` otherwise. */
  route(logits: Tensor, options: RouteOptions): Routing {
    if (logits.rank !== 2) {
      throw new OpError("ExpertChoiceEstimator", `logits must be [N, E], got rank ${logits.rank}`);
    }
    const [n, e] = logits.shape;
    if (this.topK > e) {
      throw new OpError("ExpertChoiceEstimator", `topK = ${this.topK} exceeds the number of experts ${e}`);
    }
    const probs = logits.softmax(-1);
    if (!options.training && this.evaluation === "topk") {
      const { values, indices } = probs.topk(this.topK);
      return { experts: indices, gates: values, probs };
    }
    const c = this.capacity(n, e);
    const active = noGrad(() => {
      const taken = probs.detach().transpose(0, 1).topk(c).indices; // [E, C] tokens per expert
      return oneHot(taken, n, "i32").sum(1).transpose(0, 1).gt(0); // [N, E]
    });
    const experts = arange(0, e, 1, { dtype: "i32", device: logits.device }).reshape(1, e).expand(n, e);
    const gates = probs.mul(active.astype(probs.dtype));
    return { experts, gates, probs, active, maxPerExpert: c };
  }
}

/** The registry entry `expert-choice`. */
export const expertChoiceDescriptor: EstimatorDescriptor<
  Required<ExpertChoiceOptions>,
  ExpertChoiceEstimator,
  "expert-choice"
> = defineEstimator({
  name: "expert-choice",
  summary: "Expert choice: each expert takes its top-C tokens by softmax (0…E experts per token), plain autograd",
  options: expertChoiceOptionsSchema,
  create: (options) => new ExpertChoiceEstimator(options),
  routing: "sparse",
  topK: topKOption("any"),
  expertsPerToken: "variable",
  needs: LOGITS_ONLY,
  capacity: "its own: each expert takes exactly C = ceil(capacityFactor·N·K/E) tokens; leave the layer's undefined",
  // The one-token harness cannot express a choice made across tokens.
  objective: () => null,
  sweep: null,
  references: [],
});
