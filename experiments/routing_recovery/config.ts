/**
 * The config schema and presets of `exp:routing-recovery`: the grid of cells (experts E, clusters per expert m,
 * input noise σ, experts per token k), the task and model widths, training (steps, batch, AdamW), evaluation
 * (held-out size, cadence, target loss), the arms (registered estimators) and the primary test declared before
 * the run (metric, baseline arm, the effect size the power analysis is asked about).
 *
 * @module
 */
import { z } from "../../deps.ts";
import { baseConfigShape, type ExperimentDefinition } from "../common/config.ts";
import { estimatorDescriptors } from "../../moe/mod.ts";

/**
 * The metrics a primary test can be declared on (final values, see `recovery.ts` and `train.ts`): recovery of the
 * routing the layer uses (`nmi`, `accuracy`), recovery of the argmax of the router's probabilities (`nmiArgmax`,
 * `accuracyArgmax`: free of the sampling the dense estimators do in evaluation), and the held-out loss.
 */
export const PRIMARY_METRICS = ["nmi", "accuracy", "heldLoss", "nmiArgmax", "accuracyArgmax"] as const;

/** A primary metric name. */
export type PrimaryMetric = typeof PRIMARY_METRICS[number];

function registered(): string[] {
  return estimatorDescriptors().map((d) => d.name);
}

/**
 * The arms beyond the registered estimators: `frozen`, the cell's baseline estimator with its router frozen at
 * its initial weights (a null control), and `oracle`, the `hash` router keyed on the true cluster so that cluster
 * c goes to expert c mod E (a reference: the routing the task rewards, given from step 0). See `plan.ts`.
 */
export const EXTRA_ARMS = ["frozen", "oracle"] as const;

/** The estimator names of an `estimators` field: `"all"` (every registered one) or a comma-separated list. */
export function estimatorNames(field: string): string[] {
  if (field.trim() === "all") return registered();
  return [...new Set(field.split(",").map((s) => s.trim()).filter((s) => s !== ""))];
}

/** The baseline arms of a `primary.baseline` field, in fallback order. */
export function baselineNames(field: string): string[] {
  return field.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

/** The config schema of `exp:routing-recovery`. */
export const routingRecoverySchema = z.strictObject({
  ...baseConfigShape,
  // The model is tiny (a few hundred weights): the CPU is the right device, and runs stay bit-identical there.
  device: z.enum(["auto", "cpu"]).describe('Compute device: "cpu", or "auto" (the same here: the model is tiny).'),
  experts: z.array(z.int().min(2).max(64)).min(1).describe("Numbers of experts E in the grid."),
  clustersPerExpert: z.array(z.int().min(1).max(16)).min(1).describe(
    "Clusters per expert m in the grid: the task has C = m·E latent clusters.",
  ),
  noise: z.array(z.number().min(0)).min(1).describe(
    "Input noise σ around the cluster means (means ~ N(0, I_d); larger σ: clusters overlap) in the grid.",
  ),
  topK: z.array(z.int().min(1).max(8)).min(1).describe(
    "Experts per token k in the grid: set on the estimators with a topK option, top-1 estimators run at k = 1 " +
      "only, dense estimators (K = E) in the cells of the smallest k only.",
  ),
  dim: z.int().min(2).max(64).describe("Input and output width d."),
  targetNoise: z.number().min(0).describe("Target noise τ (y = A_c x + τη); the loss floor of perfect routing is τ²."),
  estimators: z.string().min(1).describe(
    'Arms: "all" (every registered estimator the layer can train with) or a comma-separated list of registry names.',
  ),
  extraArms: z.array(z.enum(EXTRA_ARMS)).default([...EXTRA_ARMS]).describe(
    'Arms beyond the registered estimators: "frozen" (the cell\'s baseline with its router frozen at init, a null ' +
      'control) and "oracle" (hash routing on the true cluster: cluster c → expert c mod E, a reference); [] for none.',
  ),
  model: z.strictObject({
    expert: z.enum(["linear", "ffn"]).describe(
      'Expert architecture: "linear" (one d×d map: exactly one cluster\'s target) or "ffn".',
    ),
    hidden: z.int().min(1).max(1024).describe('Hidden width of "ffn" experts (ignored by "linear").'),
    balanceCoef: z.number().min(0).describe(
      'Load-balancing loss coefficient α (the layer\'s "topk" form: K at uniform routing); 0: none.',
    ),
  }).describe("The model: one MoELayer, y = MoE(x)."),
  optim: z.strictObject({
    lr: z.number().positive().describe("AdamW learning rate (constant)."),
    weightDecay: z.number().min(0).describe("AdamW weight decay."),
  }).describe("The optimizer."),
  steps: z.int().min(1).describe("Training steps per run (a fresh batch each step)."),
  batchSize: z.int().min(1).describe("Samples per training batch."),
  evalEvery: z.int().min(1).describe("Evaluate the held-out loss and recovery every this many steps (and at the end)."),
  heldOut: z.int().min(16).describe("Size of the fixed held-out set (loss and routing recovery)."),
  targetLoss: z.number().positive().describe("Held-out MSE whose first crossing is reported as steps to target."),
  primary: z.strictObject({
    metric: z.enum(PRIMARY_METRICS).describe(
      'The primary metric (final value): "nmi" (normalised MI), "accuracy" (best assignment), "heldLoss", or ' +
        '"nmiArgmax" / "accuracyArgmax" (recovery of the argmax of the router probabilities).',
    ),
    baseline: z.string().min(1).describe(
      "The baseline arm every other arm is compared with (paired by seed); a comma-separated list is a fallback " +
        "order: a cell's baseline is the first listed arm that runs in it (e.g. switch,topk for the k = 2 cells).",
    ),
    effect: z.number().positive().describe(
      "The effect size (in the primary metric's units) the power analysis reports the seeds needed for.",
    ),
  }).describe("The primary test, declared before the run: paired two-sided t-test by seed, α = 0.05."),
}).superRefine((c, ctx) => {
  const known = registered();
  const names = estimatorNames(c.estimators);
  const unknown = names.filter((n) => !known.includes(n));
  if (names.length === 0 || unknown.length > 0) {
    ctx.addIssue({
      code: "custom",
      path: ["estimators"],
      message: `"all" or a comma-separated list of ${known.join(", ")}`,
    });
  }
  const baselines = baselineNames(c.primary.baseline);
  if (baselines.length === 0 || baselines.some((b) => !known.includes(b))) {
    ctx.addIssue({
      code: "custom",
      path: ["primary", "baseline"],
      message: `one of (or a comma-separated fallback list of) ${known.join(", ")}`,
    });
  }
});

/** A resolved `exp:routing-recovery` config. */
export type RoutingRecoveryConfig = z.output<typeof routingRecoverySchema>;

const common = {
  device: "auto" as const,
  targetNoise: 0,
  estimators: "all",
  extraArms: [...EXTRA_ARMS],
  model: { expert: "linear" as const, hidden: 16, balanceCoef: 0.01 },
  optim: { lr: 0.01, weightDecay: 0 },
  primary: { metric: "nmi" as const, baseline: "switch", effect: 0.1 },
};

/** The experiment definition (schema and presets). */
export const routingRecoveryDefinition: ExperimentDefinition<typeof routingRecoverySchema> = {
  name: "routing-recovery",
  description: "Which routers learn the known optimal routing? A regression task with C latent clusters, each " +
    "with its own linear target, learned by one MoELayer per registered estimator; reports loss, routing " +
    "recovery (mutual information, best-assignment accuracy) and steps to a target loss, with paired intervals " +
    "and the power of the declared primary test.",
  schema: routingRecoverySchema,
  presets: {
    smoke: {
      ...common,
      seeds: 2,
      device: "cpu",
      experts: [4],
      clustersPerExpert: [1],
      noise: [0.5],
      topK: [1],
      dim: 6,
      estimators: "topk,switch,straight-through,random,hash",
      steps: 40,
      batchSize: 64,
      evalEvery: 20,
      heldOut: 256,
      targetLoss: 0.5,
    },
    quick: {
      ...common,
      seeds: 8,
      experts: [4],
      clustersPerExpert: [1],
      noise: [0.5],
      topK: [1],
      dim: 8,
      steps: 600,
      batchSize: 128,
      evalEvery: 25,
      heldOut: 1024,
      targetLoss: 0.1,
    },
    paper: {
      ...common,
      primary: { ...common.primary, baseline: "switch,topk" },
      seeds: 10,
      experts: [4, 8],
      clustersPerExpert: [1, 2],
      noise: [0.25, 0.5, 1],
      topK: [1, 2],
      dim: 8,
      steps: 1000,
      batchSize: 128,
      evalEvery: 50,
      heldOut: 2048,
      targetLoss: 0.1,
    },
  },
  defaultPreset: "quick",
};
