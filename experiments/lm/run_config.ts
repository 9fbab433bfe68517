/**
 * The configuration of ONE language-model training run ({@link runConfigSchema}): seed, device, data, model,
 * optimizer, schedule of logging / evaluation / checkpoints. Every experiment that trains a MoE language model
 * (switch-vs-sparsemixer, grin-top2) resolves its own config into one of these per (arm, seed) and hands it to
 * `runLm` (or to the `run_one.ts` subprocess as JSON).
 *
 * Every field has a default, so `parseRunConfig({})` is a valid (small) run; the schema is strict, so a typo in
 * a field name is an error that names it.
 *
 * @example
 * ```ts
 * import { parseRunConfig } from "./run_config.ts";
 * const config = parseRunConfig({ seed: 3, model: { estimator: "sparsemixer", outputScale: true } });
 * console.log(config.model.experts, config.model.moeEvery, config.optim.schedule); // 8 2 "cosine"
 * ```
 *
 * @module
 */
import { z } from "../../deps.ts";
import { estimatorDescriptor, estimatorDescriptors, parseEstimatorOptions } from "../../moe/estimators/registry.ts";

/**
 * The routing estimators a run may use: the sparse ones of the registry (see `docs/ESTIMATORS.md`), the null
 * controls `random` and `hash` included.
 */
export const RUN_ESTIMATORS: readonly [string, ...string[]] = estimatorDescriptors().filter((d) =>
  d.routing === "sparse"
).map((d) => d.name) as [string, ...string[]];

/** One of {@link RUN_ESTIMATORS}. */
export type RunEstimator = string;

const int = (min: number, def: number, what: string) => z.int().min(min).default(def).describe(what);
const num = (min: number, def: number, what: string) => z.number().min(min).default(def).describe(what);

const dataSchema = z.strictObject({
  corpus: z.literal("sotu").default("sotu").describe('Training corpus: "sotu" (State of the Union addresses).'),
  vocabSize: int(258, 2048, "BPE vocabulary size (256 bytes + the <eos> token + merges), trained on the train split."),
  seqLen: int(2, 128, "Tokens per training / evaluation sequence (T)."),
  batchSize: int(1, 8, "Sequences per training step (B); evaluation batches use the same B."),
  validFraction: z.number().gt(0).lt(1).default(0.05).describe(
    "Fraction of the SOTU documents held out for validation (split by document).",
  ),
  splitSeed: int(0, 0, "Seed of the document split (the same for every run of an experiment)."),
  maxDocuments: z.int().min(3).nullable().default(null).describe(
    "Use only the most recent N addresses (for smoke tests); null = all 233.",
  ),
  evalBatches: int(1, 8, "Fixed evaluation batches per split (windows evenly spaced over the split's tokens)."),
  ood: z.boolean().default(true).describe("Also evaluate on Moby Dick (out of domain)."),
}).describe("Data: corpus, tokenizer, split, batches.");

const balanceSchema = z.strictObject({
  coef: num(0, 0.01, "Load-balancing loss coefficient α (0 = off; the SparseMixer example uses 0.01)."),
  form: z.enum(["switch", "topk"]).default("switch").describe(
    'Balance loss normalisation: "switch" (top-1; 1 at uniform routing) or "topk" (K at uniform routing).',
  ),
  scope: z.enum(["local", "global"]).default("local").describe(
    '"local": this batch\'s routing counts; "global": counts pooled over the optimizer step (GRIN).',
  ),
}).describe("Load-balancing auxiliary loss.");

const modelSchema = z.strictObject({
  dim: int(1, 128, "Model width d."),
  layers: int(1, 4, "Number of decoder layers."),
  heads: int(1, 4, "Attention heads (must divide dim)."),
  moeEvery: int(1, 2, "MoE FFN in layers i with i % moeEvery == 0 (2 = every other layer, the paper's layout)."),
  experts: int(1, 8, "Number of experts E per MoE layer."),
  expert: z.enum(["ffn", "glu"]).default("ffn").describe('Expert kind: "ffn" (GELU MLP) or "glu" (SwiGLU).'),
  hidden: z.int().min(1).nullable().default(null).describe("Expert hidden width (null = 4·dim)."),
  topK: int(1, 1, "Experts per token K (switch and sparsemixer v1 variants: 1)."),
  estimator: z.enum(RUN_ESTIMATORS).default("switch").describe(`Routing estimator: ${RUN_ESTIMATORS.join(", ")}.`),
  estimatorOptions: z.record(z.string(), z.unknown()).default({}).describe(
    "Estimator options (e.g. { jitterEps }); K comes from topK.",
  ),
  outputScale: z.boolean().default(false).describe("Learnable output scale ω of the MoE layer (SparseMixer's)."),
  capacityFactor: z.number().gt(0).nullable().default(null).describe("Expert capacity factor; null = dropless."),
  balance: balanceSchema.default({ coef: 0.01, form: "switch", scope: "local" }),
  zLossCoef: num(0, 0, "Router z-loss coefficient (0 = off)."),
  routerBias: z.boolean().default(false).describe("Bias in the router's linear layer."),
  frozenRouter: z.boolean().default(false).describe(
    "Keep the routers at their initial weights (no gradient, never updated): the `frozen` null control.",
  ),
  dropout: z.number().min(0).lt(1).default(0).describe("Dropout on embeddings, attention weights and residuals."),
  rope: z.boolean().default(true).describe("Rotary position embeddings (false = learned positions)."),
  norm: z.enum(["layer", "rms"]).default("layer").describe('Norm layers: "layer" or "rms".'),
  tieEmbeddings: z.boolean().default(true).describe("Share the token embedding with the output projection."),
}).describe("The decoder-only Switch Transformer LM.");

const optimSchema = z.strictObject({
  lr: z.number().gt(0).default(1e-3).describe("Peak learning rate of AdamW."),
  betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([0.9, 0.98]).describe(
    "AdamW (β₁, β₂) (the SparseMixer example uses 0.9, 0.98).",
  ),
  eps: z.number().min(0).default(1e-8).describe("AdamW ε."),
  weightDecay: num(0, 0.01, "AdamW decoupled weight decay."),
  warmupSteps: int(0, 50, "Linear warm-up steps."),
  schedule: z.enum(["cosine", "linear", "inverse-sqrt", "constant"]).default("cosine").describe(
    'After warm-up: "cosine" / "linear" decay to minLr at the last step, "inverse-sqrt" (fairseq), "constant".',
  ),
  minLr: num(0, 0, "Final learning rate of the cosine / linear schedules."),
  clipNorm: num(0, 1, "Clip the global gradient norm to this (0 = no clipping)."),
}).describe("Optimizer (AdamW) and learning-rate schedule.");

/** The schema of one run's config (strict; every field `.describe()`d and defaulted). */
export const runConfigSchema = z.strictObject({
  seed: int(0, 0, "Seed of this run: weights, data order, dropout and estimator draws."),
  device: z.enum(["auto", "cpu", "webgpu"]).default("cpu").describe('Device: "auto", "cpu" or "webgpu".'),
  threads: int(1, 1, "CPU worker threads for this run's matmuls (1 = one run per core)."),
  steps: int(1, 600, "Training steps (optimizer updates)."),
  logEvery: int(1, 10, "Write a train record every N steps (loss and routing averaged over them)."),
  evalEvery: int(1, 50, "Evaluate (eval mode, fixed batches) every N steps and at the last step."),
  checkpointEvery: int(1, 100, "Checkpoint every N steps (a multiple of logEvery) and at the last step."),
  data: dataSchema.default(() => dataSchema.parse({})),
  model: modelSchema.default(() => modelSchema.parse({})),
  optim: optimSchema.default(() => optimSchema.parse({})),
}).superRefine((c, ctx) => {
  const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: "custom", path, message });
  if (c.checkpointEvery % c.logEvery !== 0) {
    issue(["checkpointEvery"], `must be a multiple of logEvery (${c.logEvery}), got ${c.checkpointEvery}`);
  }
  const m = c.model;
  if (m.dim % m.heads !== 0) issue(["model", "heads"], `must divide model.dim (${m.dim}), got ${m.heads}`);
  if (m.rope && m.dim % m.heads === 0 && (m.dim / m.heads) % 2 !== 0) {
    issue(["model", "heads"], `RoPE needs an even head width dim/heads`);
  }
  if (m.topK > m.experts) issue(["model", "topK"], `must be ≤ model.experts (${m.experts}), got ${m.topK}`);
  if (m.balance.form === "switch" && m.topK !== 1) {
    issue(["model", "balance", "form"], `"switch" needs topK = 1 (got topK ${m.topK}); use "topk"`);
  }
  if (c.optim.schedule !== "constant" && c.optim.schedule !== "inverse-sqrt" && c.optim.warmupSteps >= c.steps) {
    issue(["optim", "warmupSteps"], `must be < steps (${c.steps}) for the ${c.optim.schedule} schedule`);
  }
  if (c.optim.schedule === "inverse-sqrt" && c.optim.warmupSteps < 1) {
    issue(["optim", "warmupSteps"], "must be ≥ 1 for the inverse-sqrt schedule");
  }
  try {
    estimatorOptionsFor(m);
  } catch (e) {
    issue(["model", "estimatorOptions"], (e as Error).message);
  }
});

/** A resolved run config (all defaults filled in). */
export type RunConfig = z.output<typeof runConfigSchema>;
/** What a run config may be written as (every field optional). */
export type RunConfigInput = z.input<typeof runConfigSchema>;
/** The model part of a {@link RunConfig}. */
export type RunModelConfig = RunConfig["model"];
/** The data part of a {@link RunConfig}. */
export type RunDataConfig = RunConfig["data"];

/** A run config that does not parse; the message lists every bad field path with what is allowed. */
export class RunConfigError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "RunConfigError";
  }
}

/** Validates `value` and fills in the defaults; throws a {@link RunConfigError} naming each bad field. */
export function parseRunConfig(value: unknown): RunConfig {
  const r = runConfigSchema.safeParse(value);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => {
    const path = i.path.length ? i.path.join(".") : "(root)";
    const got = "input" in i && i.input !== undefined ? ` (got ${JSON.stringify(i.input)})` : "";
    return `  ${path}: ${i.message}${got}`;
  });
  throw new RunConfigError(`invalid run config:\n${lines.join("\n")}`);
}

/**
 * The estimator options a model config implies: `estimatorOptions` plus K as the option the estimator's
 * descriptor names for it (`topK`; none for a top-1 estimator), validated by the estimator's schema. K ≠ 1 for a top-1
 * estimator, or an explicit K that contradicts `topK`, is an error.
 */
export function estimatorOptionsFor(model: RunModelConfig): Record<string, unknown> {
  const opts: Record<string, unknown> = { ...model.estimatorOptions };
  const kName = estimatorDescriptor(model.estimator).topK.option;
  if (kName === null) {
    if (model.topK !== 1) throw new Error(`estimator "${model.estimator}" is top-1; model.topK must be 1`);
  } else {
    if (kName in opts && opts[kName] !== model.topK) {
      throw new Error(`estimatorOptions.${kName} (${opts[kName]}) contradicts model.topK (${model.topK})`);
    }
    opts[kName] = model.topK;
  }
  return parseEstimatorOptions(model.estimator, opts);
}
