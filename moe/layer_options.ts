/**
 * The options of `MoELayer`: ONE zod schema ({@link moeLayerOptionsSchema}: strict, every field described,
 * defaults filled in) that the constructor parses, the plain public interfaces {@link MoELayerOptions} and
 * {@link BalanceLossConfig} (checked at compile time to be exactly what the schema accepts, so the API shows no
 * zod types), and the layer's estimator rules ({@link layerEstimator}).
 *
 * A rejected option is ONE `RangeError` whose message names every bad field, what it allows and the value
 * given (the formatter of the estimator options, `describeOptionIssues`):
 *
 * - `MoELayer: padding must be "auto", "max-load" or "static", got "tight"`
 * - `MoELayer: activation must be "gelu" or "relu" for "ffn" experts, got "silu"`
 * - `MoELayer: unknown option "capacity" (allowed: numExperts, hidden, …)`
 *
 * @module
 */
import { z } from "../deps.ts";
import { Device } from "../core/device.ts";
import type { FloatDType } from "../core/dtype.ts";
import { Generator } from "../core/random/generator.ts";
import type { Estimator } from "./estimators/estimator.ts";
import { allowing, describeOptionIssues, type Same } from "./estimators/options.ts";
import { createEstimator, estimatorDescriptor, parseEstimatorOptions } from "./estimators/registry.ts";
import { EXPERT_ACTIVATIONS, type ExpertActivation, type ExpertKind } from "./experts.ts";
import type { DispatchMode, DispatchPadding } from "./dispatch.ts";
import { LOSS_FREE_RATE } from "./loss_free_balance.ts";

/** `"a", "b" or "c"`. */
function orList(values: readonly string[]): string {
  const quoted = values.map((v) => JSON.stringify(v));
  return quoted.length === 1 ? quoted[0] : `${quoted.slice(0, -1).join(", ")} or ${quoted.at(-1)}`;
}

/** One of `values` (described by `description`; wrap it for a default). */
const oneOf = <const V extends readonly [string, ...string[]]>(values: V, description: string) =>
  allowing(z.enum(values).describe(description), orList(values));

/** Whether `v` implements {@link Estimator} (the fields the layer reads, and `route`). */
function isEstimator(v: unknown): v is Estimator {
  if (typeof v !== "object" || v === null) return false;
  const e = v as Record<string, unknown>;
  return typeof e.route === "function" && typeof e.name === "string" && typeof e.topK === "number" &&
    typeof e.dense === "boolean";
}

/** The schema of {@link BalanceLossConfig}. */
export const balanceLossSchema = z.strictObject({
  coef: allowing(z.number().describe("Loss coefficient α (0 disables the loss)."), "a finite number"),
  form: oneOf(["switch", "topk"], '"switch" (top-1; 1 at uniform routing) or "topk" (K at uniform routing).'),
  scope: oneOf(
    ["local", "global"],
    '"local" (default): this forward\'s f; "global": f from the counts accumulated since the last reset.',
  ).default("local"),
}).describe("Load-balancing loss of the layer: `coef · E · Σ_i f_i · P̄_i` (see BalanceLossConfig).");

/** The schema of {@link LossFreeBalanceConfig}. */
export const lossFreeBalanceSchema = z.strictObject({
  rate: allowing(
    z.number().positive().default(LOSS_FREE_RATE).describe("Bias update rate u per optimizer step (default 1e-3)."),
    "a finite number > 0",
  ),
}).describe("Loss-free balancing: a per-expert selection bias updated by MoELayer.updateExpertBias().");

/** The schema of {@link MoELayerOptions}: strict, every field described, the defaults filled in. */
export const moeLayerOptionsSchema = z.strictObject({
  numExperts: allowing(z.int().min(1).describe("Number of experts E."), "an integer ≥ 1"),
  hidden: allowing(
    z.int().min(1).optional().describe('Expert hidden width (ignored by "linear"; default 4·d).'),
    "an integer ≥ 1",
  ),
  expert: oneOf(
    ["ffn", "glu", "linear"],
    'Expert architecture: "ffn" (default; MLP with biases), "glu" (gated, no biases), "linear" (one d×d matrix).',
  ).default("ffn"),
  activation: oneOf(
    ["gelu", "relu", "silu"],
    'Expert nonlinearity: ffn "gelu" (default) / "relu"; glu "silu" (default) / "gelu"; ignored by "linear".',
  ).optional(),
  estimator: allowing(
    z.union([z.string(), z.custom<Estimator>(isEstimator)]).default("topk").describe(
      'An estimator instance or registry name (default "topk").',
    ),
    "a registry name or an Estimator",
  ),
  estimatorOptions: allowing(
    z.record(z.string(), z.unknown()).optional().describe("Options for a registry name (see createEstimator)."),
    "an object",
  ),
  sharedExperts: allowing(
    z.int().min(0).default(0).describe(
      "Shared experts N_s (DeepSeekMoE): always active, each of the routed experts' width, added to the output.",
    ),
    "an integer ≥ 0",
  ),
  fineGrained: allowing(
    z.int().min(1).default(1).describe(
      "Fine-grained factor m (DeepSeekMoE): E·m experts of hidden h/m and K → m·K, same compute (default 1).",
    ),
    "an integer ≥ 1",
  ),
  routerBias: allowing(z.boolean().default(false).describe("Router bias (default false)."), "true or false"),
  frozenRouter: allowing(
    z.boolean().default(false).describe(
      "Keep the router at its initial weights: no gradient, never updated (the `frozen` null control; default false).",
    ),
    "true or false",
  ),
  outputScale: allowing(
    z.boolean().default(false).describe(
      "SparseMixer's learnable output scale ω ∈ R^d (init 1), `y ⊙ ω` (default false).",
    ),
    "true or false",
  ),
  capacityFactor: allowing(
    z.number().positive().optional().describe(
      "Undefined: dropless. Otherwise capacity `ceil(capacityFactor · N · K / E)` per expert.",
    ),
    "a finite number > 0",
  ),
  balanceLoss: allowing(
    balanceLossSchema.optional().describe("Load-balancing loss stored by forward and returned by auxLoss()."),
    "an object { coef, form, scope? }",
  ),
  lossFreeBalance: allowing(
    lossFreeBalanceSchema.optional().describe(
      "Auxiliary-loss-free balancing (Wang et al. 2024): a per-expert bias added to the scores for selection only.",
    ),
    "an object { rate? }",
  ),
  zLossCoef: allowing(
    z.number().default(0).describe("Router z-loss coefficient (default 0: none)."),
    "a finite number",
  ),
  device: allowing(
    z.union([z.string(), z.instanceof(Device)]).optional().describe("Device of the weights (default: the default)."),
    "a Device or a device name",
  ),
  dtype: oneOf(["f32", "f64"], "Weights dtype (default f32).").optional(),
  generator: allowing(
    z.instanceof(Generator).default(() => new Generator(0)).describe(
      "Weight init stream, also the default draw source of the estimator (default: a fresh Generator(0)).",
    ),
    "a Generator",
  ),
  dispatch: oneOf(
    ["grouped", "padded"],
    'How the experts get their rows: "grouped" (default; an exact grouped GEMM over the rows sorted by expert) ' +
      'or "padded" (a padded [E, C, d] batch, for comparison).',
  ).default("grouped"),
  padding: oneOf(
    ["auto", "max-load", "static"],
    'Padded dispatch only: buffer rows per expert "max-load", "static", or "auto" (default: max-load where reads ' +
      "are free).",
  ).default("auto"),
}).superRefine((o, ctx) => {
  const allowed = EXPERT_ACTIVATIONS[o.expert];
  if (o.expert !== "linear" && o.activation !== undefined && !allowed.includes(o.activation)) {
    ctx.addIssue({ code: "custom", path: ["activation"], message: `${orList(allowed)} for "${o.expert}" experts` });
  }
}).describe("Options of MoELayer.");

/** {@link MoELayerOptions} parsed: the schema's defaults filled in. */
export type ParsedMoELayerOptions = z.output<typeof moeLayerOptionsSchema>;

/**
 * Load-balancing loss settings of `MoELayer`: `coef · E · Σ_i f_i · P̄_i`, with `P̄_i` the mean router
 * probability of expert i over this forward's tokens (the only path of the gradient) and `f_i` the fraction of
 * hard assignments `counts_i / N` (every (token, slot) pair routed to i counts; N = tokens, not slots).
 *
 * Normalisation (before `coef`): `form: "switch"` (top-1 only) is the Switch Transformer loss, 1 at perfectly
 * uniform routing; `form: "topk"` is the Mixtral/transformers top-k formula (f sums the K slots), K at perfectly
 * uniform routing (so it equals the switch form when K = 1).
 *
 * `scope: "local"` (default) uses this forward's `f`. `scope: "global"` balances over the whole optimizer step,
 * as a loss whose `f` is all-reduced over micro-batches / data-parallel ranks (GRIN, ESTIMATORS.md §5.5): the
 * layer owns a `BalanceStats` (`MoELayer.balanceStats`); every training forward adds its hard assignments to it
 * and then uses `f = accumulated counts / accumulated tokens` (P̄ still from the current micro-batch). Call
 * `MoELayer.resetBalanceStats` once per optimizer step (before its first micro-batch), or the counts keep
 * accumulating across steps. In evaluation the counts are not updated and the local `f` is used. For data
 * parallelism, all-reduce the stats' counts across ranks yourself (e.g. `add()` the other ranks' assignments)
 * before the loss is needed.
 *
 * This is the global-batch balance loss of Qiu et al. 2025 (arXiv 2501.11873, ESTIMATORS.md §12): `f` counted over
 * the global batch instead of each micro-batch, `P̄` local. The choice made here for sequential micro-batches
 * (gradient accumulation on one device): micro-batch j uses the counts of micro-batches 1…j of the step, so the
 * last micro-batch's `f` is the global batch's and earlier ones see a growing part of it (no micro-batch waits for
 * later ones' routing); with every micro-batch routed before any loss is taken (data parallelism with the counts
 * all-reduced first) every `f` is the global one.
 */
export interface BalanceLossConfig {
  /** Loss coefficient α (0 disables the loss). */
  coef: number;
  /** `"switch"` (top-1; 1 at uniform routing) or `"topk"` (K at uniform routing). */
  form: "switch" | "topk";
  /** `"local"` (default): this forward's f; `"global"`: f from the counts accumulated since the last reset. */
  scope?: "local" | "global";
}

/**
 * Auxiliary-loss-free balancing of `MoELayer` (Wang et al. 2024; `moe/loss_free_balance.ts`): the layer keeps a
 * per-expert bias `b` (buffer `expertBias`, in the state dict) added to the scores for the choice of experts only,
 * and `MoELayer.updateExpertBias()`, called after each optimizer step, moves it by `rate · sign(mean load − load)`
 * and re-centres it to mean 0. Needs an estimator that accepts a selection bias (`topk`, `sigmoid-topk`).
 */
export interface LossFreeBalanceConfig {
  /** Bias update rate u per optimizer step (default 1e-3). */
  rate?: number;
}

/** Options of `MoELayer` (defaults and checks: {@link moeLayerOptionsSchema}). */
export interface MoELayerOptions {
  /** Number of experts E. */
  numExperts: number;
  /** Expert hidden width (ignored by `"linear"`; default 4·d). */
  hidden?: number;
  /** Expert architecture (default `"ffn"`). */
  expert?: ExpertKind;
  /** Expert nonlinearity: ffn `"gelu"` (default) / `"relu"`; glu `"silu"` (default) / `"gelu"`. */
  activation?: ExpertActivation;
  /** An estimator instance or registry name (default `"topk"`). */
  estimator?: Estimator | string;
  /** Options for a registry name (see `createEstimator`). */
  estimatorOptions?: Record<string, unknown>;
  /**
   * Shared experts N_s (DeepSeekMoE, arXiv 2401.06066; default 0): experts every token uses with weight 1, added to
   * the routed output (before ω). Each has the routed experts' architecture and width (after `fineGrained`). Their
   * weights are the child `shared` (state-dict keys `shared.w1`, …), drawn after the routed experts'.
   */
  sharedExperts?: number;
  /**
   * Fine-grained expert segmentation factor m (DeepSeekMoE; default 1): the layer has `numExperts · m` experts of
   * hidden width `hidden / m` (must divide; not for `"linear"` experts) and the estimator routes each token to
   * `m · K` of them (its `topK` option multiplied), so the expert FLOPs per token and the expert weight matrices'
   * parameters stay those of E experts of width h with K per token. `MoELayer.numExperts` and `.hidden` report
   * the segmented values.
   */
  fineGrained?: number;
  /** Router bias (default false). */
  routerBias?: boolean;
  /**
   * Keep the router at its initial weights (default false): its parameters are registered (saved, loaded) but
   * do not require gradients, so no optimizer updates them — the `frozen` null control of ESTIMATORS.md §12,
   * with any estimator. Gradients still flow through the logits to the layer input.
   */
  frozenRouter?: boolean;
  /** SparseMixer's learnable output scale ω ∈ R^d (init 1), applied as `y ⊙ ω` (default false). */
  outputScale?: boolean;
  /** Undefined: dropless. Otherwise capacity `ceil(capacityFactor · N · K / E)` per expert. */
  capacityFactor?: number;
  /** Load-balancing loss stored by `forward` and returned by `auxLoss()` (see {@link BalanceLossConfig} for the
   * normalisation — 1 at uniform routing for switch top-1, K for top-k — and the local / global scope). */
  balanceLoss?: BalanceLossConfig;
  /** Auxiliary-loss-free balancing: a per-expert selection bias (see {@link LossFreeBalanceConfig}). */
  lossFreeBalance?: LossFreeBalanceConfig;
  /** Router z-loss coefficient (default none). */
  zLossCoef?: number;
  /** Device of the weights. */
  device?: Device | string;
  /** Weights dtype (default f32). */
  dtype?: FloatDType;
  /** Weight init stream, also the default draw source of the estimator (default: a fresh `Generator(0)`). */
  generator?: Generator;
  /**
   * How the experts get their rows (`moe/dispatch.ts`): `"grouped"` (default, every device) runs them as an exact
   * grouped GEMM over the rows sorted by expert, with per-expert offsets computed on the device (no padding, no
   * host read); `"padded"` scatters the rows into a padded `[E, C, d]` buffer and runs one batched matmul chain
   * (kept for comparison). Same results either way: bit for bit in f64; in f32 to the last bits of the expert
   * biases' gradients.
   */
  dispatch?: DispatchMode;
  /**
   * Padded dispatch only (ignored by `"grouped"`): rows per expert in the buffer. `"max-load"` reads the
   * per-expert counts and pads only to the busiest expert (no extra FLOPs beyond the imbalance; a host read),
   * `"static"` uses the capacity `C` without reading anything (sync-free). Default `"auto"`: max-load on devices
   * that read synchronously (CPU), static elsewhere. Results agree either way (bit for bit in f64, to f32
   * rounding in f32).
   */
  padding?: DispatchPadding;
}

// The public interfaces are plain TypeScript (the API exposes no zod types); this fails `deno check` when a field
// is added to one and not to the schema, or typed differently.
const _optionInterfacesMatchSchemas: [
  Same<MoELayerOptions, z.input<typeof moeLayerOptionsSchema>>,
  Same<BalanceLossConfig, z.input<typeof balanceLossSchema>>,
  Same<LossFreeBalanceConfig, z.input<typeof lossFreeBalanceSchema>>,
] = [true, true, true];
void _optionInterfacesMatchSchemas;

/**
 * Validates `options` and fills in the schema's defaults; throws ONE `RangeError` naming every bad field (see
 * the module docs).
 */
export function parseMoELayerOptions(options: MoELayerOptions): ParsedMoELayerOptions {
  const parsed = moeLayerOptionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new RangeError(`MoELayer: ${describeOptionIssues({ schema: moeLayerOptionsSchema }, parsed.error, options)}`);
  }
  return parsed.data;
}

/**
 * The layer's estimator, built from the parsed options (a registry name with `estimatorOptions`, or an
 * instance). A dense estimator built for a number of experts must be built for the layer's.
 */
export function layerEstimator(options: ParsedMoELayerOptions, numExperts: number): Estimator {
  const est = options.estimator;
  const estimator = typeof est === "string" ? createEstimator(est, fineGrainedOptions(options, est)) : est;
  if (options.fineGrained > 1 && typeof est !== "string") {
    throw new TypeError("MoELayer: fineGrained needs an estimator given by registry name (its topK is multiplied)");
  }
  if (estimator.dense && estimator.topK !== 0 && estimator.topK !== numExperts) {
    throw new TypeError(
      `MoELayer: the dense estimator "${estimator.name}" was built for ${estimator.topK} experts, the layer has ${numExperts}`,
    );
  }
  if (options.lossFreeBalance && !estimator.acceptsSelectionBias) {
    throw new TypeError(
      `MoELayer: lossFreeBalance needs an estimator that accepts a selection bias (topk, sigmoid-topk), got "${estimator.name}"`,
    );
  }
  return estimator;
}

/**
 * The estimator options with `topK` multiplied by the fine-grained factor m (DeepSeekMoE: K → m·K); unchanged
 * when m = 1. An estimator whose K is not its `topK` option cannot be segmented.
 */
function fineGrainedOptions(options: ParsedMoELayerOptions, name: string): Record<string, unknown> | undefined {
  const m = options.fineGrained;
  if (m === 1) return options.estimatorOptions;
  if (estimatorDescriptor(name).topK.option !== "topK") {
    throw new TypeError(`MoELayer: fineGrained needs an estimator whose K is its topK option, "${name}" fixes K`);
  }
  const k = (parseEstimatorOptions(name, options.estimatorOptions) as { topK: number }).topK;
  return { ...options.estimatorOptions, topK: m * k };
}

/**
 * The expert count and hidden width of the layer after fine-grained segmentation by m: `numExperts · m` experts of
 * `hidden / m` (`hidden` is the unsegmented width, default 4·d).
 */
export function segmentedExperts(options: ParsedMoELayerOptions, dim: number): { numExperts: number; hidden: number } {
  const m = options.fineGrained;
  const hidden = options.expert === "linear" ? dim : options.hidden ?? 4 * dim;
  if (m === 1) return { numExperts: options.numExperts, hidden };
  if (options.expert === "linear") throw new RangeError('MoELayer: fineGrained cannot split "linear" experts');
  if (hidden % m !== 0) {
    throw new RangeError(`MoELayer: fineGrained ${m} must divide the expert hidden width ${hidden}`);
  }
  return { numExperts: options.numExperts * m, hidden: hidden / m };
}
