/**
 * What the registry knows about an estimator: ONE descriptor per registry name, next to the estimator's class,
 * holding everything the rest of the library would otherwise decide by switching on the name: its options
 * schema and factory, whether it is dense or sparse, how K is chosen, what the MoE layer must give it besides
 * the logits, what capacity dropping means for it, the exact objective the exact-gradient harness compares it
 * with, the parameter the estimator-bias grid sweeps, and the reference routers of `vectors/` it replays.
 *
 * Adding an estimator = one file (the class and its descriptor) + one line in `registry.ts`'s
 * `BUILTIN_ESTIMATORS` (or a {@link registerEstimator} call for one defined outside the library).
 *
 * @module
 */
import { z } from "../../deps.ts";
import type { Estimator } from "./estimator.ts";
import type { Objective } from "../exact_objectives.ts";

/** How K (experts per token) is chosen. */
export interface TopKRule {
  /**
   * The registry option that sets K (`"topK"`), or null when K is fixed: 1 for a top-1 sparse estimator, E
   * (every expert) for a dense one.
   */
  readonly option: "topK" | null;
  /** Whether K = `k` is allowed (with E experts). */
  allows(k: number, numExperts: number): boolean;
  /** The allowed K in words, for error messages ("1 or 2"). */
  readonly words: string;
}

/** What the MoE layer must give the estimator besides the router logits. */
export interface LayerNeeds {
  /** The router input `x` (before the router matmul): the estimator implements {@link Estimator.routerInput}. */
  readonly routerInput: boolean;
  /**
   * The experts' outputs and state kept by the layer across calls: the estimator implements
   * {@link Estimator.outputTerm}, whose state the layer owns as buffers.
   */
  readonly expertOutputs: boolean;
  /**
   * The token ids (`RouteOptions.tokenIds`, from `MoELayer.forward(x, { tokenIds })`): the `hash` null control
   * routes by them. Absent = false.
   */
  readonly tokenIds?: boolean;
}

/** The parameter the estimator-bias grid sweeps for this estimator (`exp:estimator-bias`). */
export type BiasSweep =
  | {
    /** The jitter / mask width ε (config `eps`). */
    readonly param: "eps";
    /** The registry options for ε at K. */
    options(eps: number, k: number): Record<string, unknown>;
  }
  | {
    /** The backward temperature τ (config `taus`). */
    readonly param: "tau";
    /** The smallest τ the estimator accepts (τ below it are skipped). */
    readonly min: number;
    /** The registry options for τ at K. */
    options(tau: number, k: number): Record<string, unknown>;
  }
  | {
    /** Nothing to sweep: one cell per K. */
    readonly param: "none";
    /** The registry options at K. */
    options(k: number): Record<string, unknown>;
  };

/** The arguments a `layer_*` reference vector gives its router (its `params`). */
export interface VectorRouterParams {
  /** E (`params.num_experts`). */
  numExperts: number;
  /** K (`params.top_k`). */
  topK: number;
  /** `params.jitter_eps`, or undefined when absent or null (the reference default then applies). */
  jitterEps?: number;
  /** `params.tau`, or undefined (default 1). */
  tau?: number;
  /** `params.renormalize`, or undefined (default true). */
  renormalize?: boolean;
}

/** A reference router of `vectors/` (a `params.router_object`) that this estimator replays. */
export interface VectorReference {
  /** The `params.router_object` values that name it. */
  readonly objects: readonly string[];
  /** The `top_k` it supports, in words (for the error message). */
  readonly topKWords: string;
  /** Whether it supports `topK` with E experts. */
  supports(topK: number, numExperts: number): boolean;
  /** The registry options for these arguments (`supports` already checked). */
  options(p: VectorRouterParams): Record<string, unknown>;
  /**
   * `"gates"`: the file's multiplier is the routing's gates [N, K]; `"omega"`: the SparseMixer v1 family's
   * `gate ⊗ ω` [N, d] with the layer's learnable output scale ω (ones).
   */
  readonly multiplier: "gates" | "omega";
  /** Looser tolerance than the dtype's, when the reference computes in lower precision (at least this). */
  readonly tol?: { atol: number; rtol: number };
}

/**
 * What the registry needs of an options schema: a zod object schema (`z.strictObject({...})`, every field
 * described, defaults filled in) satisfies it. `O` is the parsed options.
 */
export interface OptionsSchema<O extends object = Record<string, unknown>> {
  /** The fields. */
  readonly shape: Readonly<Record<string, unknown>>;
  /** Validates and fills in defaults. */
  safeParse(input: unknown): { success: true; data: O } | { success: false; error: unknown };
}

/**
 * The layouts of the per-estimator reference vector files (`vectors/README.md`): which params, inputs, outputs
 * and gradients a file holds, and so how it is replayed (`moe/vectors/replay.ts`).
 *
 * - `"switch-gate"`: the repo's SwitchGate (multiplier, repo balance loss);
 * - `"masked-top1-omega"`: SparseMixer v1 / -1st / -inf (multiplier `gate ⊗ ω`);
 * - `"v2-routing"`: GRIN's `sparsemixerv2_routing` (top-1 or top-2, with the PhiMoE copy);
 * - `"multinomial-dense"`: straight-through / ReinMax (a multinomial sample with its logged index);
 * - `"gumbel-dense"`: ST-Gumbel-softmax (one-hot sample and soft sample);
 * - `"topk-formula"`: the formula-only file (top-k weights, balance losses, z-loss).
 */
export type VectorFileFormat =
  | "switch-gate"
  | "masked-top1-omega"
  | "v2-routing"
  | "multinomial-dense"
  | "gumbel-dense"
  | "topk-formula";

/** A per-estimator reference vector file this estimator replays. */
export interface VectorFile {
  /** Matches the file's `estimator` description. */
  readonly pattern: RegExp;
  /** The file's layout. */
  readonly format: VectorFileFormat;
  /** Looser tolerance than the dtype's, when the reference computes in lower precision (at least this). */
  readonly tol?: { atol: number; rtol: number };
}

/** One registry entry. `O` is its parsed options, `E` the class it builds, `N` its name. */
export interface EstimatorDescriptor<
  O extends object = Record<string, unknown>,
  E extends Estimator = Estimator,
  N extends string = string,
> {
  /** The registry name, e.g. `"sparsemixer"`. */
  readonly name: N;
  /** One line for listings and docs ("SparseMixer v1, mid-point; top-1"). */
  readonly summary: string;
  /** The options schema: strict, every field described, defaults filled in. */
  readonly options: OptionsSchema<O>;
  /** Former option names (former → current), rejected with a message naming the current one. */
  readonly renamedOptions?: Readonly<Record<string, string>>;
  /** Builds the estimator from parsed options (use `createEstimator` to validate first). */
  create(options: O): E;
  /** `"sparse"`: K experts run per token; `"dense"`: every expert runs, weighted by a one-hot-valued row. */
  readonly routing: "sparse" | "dense";
  /** How K is chosen. */
  readonly topK: TopKRule;
  /**
   * `"k"` (default): every token gets K experts; `"variable"`: a token gets 0…E (expert choice), its routing
   * lists K = E slots and marks the unused ones in `Routing.active`.
   */
  readonly expertsPerToken?: "k" | "variable";
  /** What the layer must give it besides the logits. */
  readonly needs: LayerNeeds;
  /**
   * True for a null control (`random`, `hash`: `null_controls.ts`): its routing ignores the router, so no
   * gradient reaches the logits. Absent = false (a learned router).
   */
  readonly nullControl?: boolean;
  /** What capacity dropping means for it, in words (shown in the docs). */
  readonly capacity: string;
  /**
   * The exact objective whose gradient its expected gradient is compared with (the exact-gradient harness,
   * `estimatorBias` and `exp:estimator-bias`), for a built instance; null when the one-token harness cannot
   * express it (for instance an estimator that needs the layer's state).
   */
  objective(estimator: E): Objective | null;
  /** What `exp:estimator-bias` sweeps for it (null: not in that grid). */
  readonly sweep: BiasSweep | null;
  /** The reference routers of `vectors/` it replays inside a `layer_*` case (may be empty). */
  readonly references: readonly VectorReference[];
  /** The per-estimator reference vector files it replays (none when absent). */
  readonly vectorFiles?: readonly VectorFile[];
}

/**
 * Declares a descriptor with its types inferred (`create` and `objective` see the schema's output and the
 * built class).
 */
export function defineEstimator<O extends object, E extends Estimator, const N extends string>(
  descriptor: EstimatorDescriptor<O, E, N>,
): EstimatorDescriptor<O, E, N> {
  return Object.freeze(descriptor);
}

/** K fixed at 1 (a top-1 sparse estimator). */
export const TOP1: TopKRule = Object.freeze({ option: null, allows: (k: number) => k === 1, words: "1" });

/** K fixed at E (a dense estimator: every expert). */
export const EVERY_EXPERT: TopKRule = Object.freeze({
  option: null,
  allows: (k: number, e: number) => k === e,
  words: "num_experts (every expert)",
});

/** K set by the `topK` option, any value in `allowed` (and ≤ E). */
export function topKOption(allowed: readonly number[] | "any"): TopKRule {
  return Object.freeze({
    option: "topK" as const,
    allows: (k: number, e: number) =>
      Number.isInteger(k) && k >= 1 && k <= e && (allowed === "any" || allowed.includes(k)),
    words: allowed === "any" ? "1 to num_experts" : allowed.join(" or "),
  });
}

/** Nothing beyond the logits. */
export const LOGITS_ONLY: LayerNeeds = Object.freeze({ routerInput: false, expertOutputs: false });

/** Capacity dropping of a sparse estimator. */
export const DROPS_SLOTS =
  "a (token, slot) pair past its expert's capacity is dropped: its gate is multiplied by 0 (the residual carries the token)";

/** The schema of an estimator without options. */
export const NO_OPTIONS: OptionsSchema<Record<never, never>> = z.strictObject({}).describe("No options.");
