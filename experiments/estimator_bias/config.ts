/**
 * The config schema and presets of `exp:estimator-bias`: the grid (numbers of experts, logit scales, downstream
 * functions, estimators, top-K, ε and temperature values), the number of Monte-Carlo draws per measurement and
 * the number of seeds (random problem instances) averaged per cell.
 *
 * @module
 */
import { z } from "../../deps.ts";
import { baseConfigShape, type ExperimentDefinition } from "../common/config.ts";
import { estimatorDescriptors } from "../../moe/mod.ts";

/** The registered estimators the grid can measure (a descriptor with a sweep), in report order. */
const ESTIMATOR_CHOICES = estimatorDescriptors().filter((d) => d.sweep !== null).map((d) => d.name) as [
  string,
  ...string[],
];

/** Those that also run at K = 2. */
const TOP2_CHOICES = estimatorDescriptors().filter((d) => d.sweep !== null && d.topK.allows(2, 2)).map((d) => d.name);

/** The downstream functions f (see `problems.ts`). */
export const FUNCTION_CHOICES = ["linear", "quadratic", "tanh"] as const;

/** The config schema of `exp:estimator-bias`. */
export const estimatorBiasSchema = z.strictObject({
  ...baseConfigShape,
  // Narrower than the base shape: the grid computes in f64, which WebGPU lacks, so --help must not offer it.
  device: z.enum(["auto", "cpu"]).describe(
    'Compute device: "cpu", or "auto" (the same here: the grid computes in f64 on the CPU, which WebGPU lacks).',
  ),
  experts: z.array(z.int().min(2).max(64)).min(1).describe("Numbers of experts E in the grid (each 2 … 64)."),
  dim: z.int().min(1).max(64).describe("Width d of the expert outputs h_i ∈ R^d."),
  hidden: z.int().min(1).max(256).describe("Hidden width r of the tanh downstream function f(v) = cᵀ tanh(Uv + b)."),
  logitScales: z.array(z.number().positive()).min(1).describe(
    "Standard deviations σ of the router logits z ~ N(0, σ²) (larger σ: peakier routing).",
  ),
  functions: z.array(z.enum(FUNCTION_CHOICES)).min(1).describe(
    'Downstream functions f: "linear" (wᵀv), "quadratic" (½vᵀAv + wᵀv) and "tanh" (cᵀ tanh(Uv + b)).',
  ),
  estimators: z.array(z.enum(ESTIMATOR_CHOICES)).min(1).describe("Registry estimators to measure."),
  topK: z.array(z.literal([1, 2])).min(1).describe(
    `Experts per token; 2 applies only to the estimators that support it (${TOP2_CHOICES.join(", ")}).`,
  ),
  eps: z.array(z.number().min(0)).min(1).describe(
    "ε grid of the sparse estimators: SparseMixer mask width ε (all SparseMixer variants) and Switch's jitter ε.",
  ),
  taus: z.array(z.number().positive()).min(1).describe(
    "Temperature grid τ of straight-through, st-gumbel and reinmax (reinmax needs τ ≥ 1; smaller values are skipped).",
  ),
  draws: z.int().min(2).max(1_000_000).describe("Monte-Carlo draws M per seed and cell."),
});

/** A resolved `exp:estimator-bias` config. */
export type EstimatorBiasConfig = z.output<typeof estimatorBiasSchema>;

const ALL_ESTIMATORS = [...ESTIMATOR_CHOICES];
const ALL_FUNCTIONS = [...FUNCTION_CHOICES];

/** The experiment definition (schema and presets). */
export const estimatorBiasDefinition: ExperimentDefinition<typeof estimatorBiasSchema> = {
  name: "estimator-bias",
  description: "Exact bias and variance of every routing estimator's gradient against the enumerated true " +
    "gradient of its expected loss, over a grid of E, ε / temperature, logit scales and downstream functions.",
  schema: estimatorBiasSchema,
  presets: {
    smoke: {
      seeds: 2,
      device: "cpu",
      experts: [4],
      dim: 3,
      hidden: 4,
      logitScales: [1],
      functions: ["linear", "tanh"],
      estimators: ["switch", "sparsemixer", "sparsemixer-v2", "topk", "st-gumbel"],
      topK: [1, 2],
      eps: [1],
      taus: [1],
      draws: 200,
    },
    quick: {
      seeds: 8,
      device: "auto",
      experts: [4, 8, 16],
      dim: 4,
      hidden: 8,
      logitScales: [1],
      functions: ALL_FUNCTIONS,
      estimators: ALL_ESTIMATORS,
      topK: [1, 2],
      eps: [0.1, 0.3, 1],
      taus: [0.5, 1, 2],
      draws: 4000,
    },
    paper: {
      seeds: 10,
      device: "auto",
      experts: [4, 8, 16, 32],
      dim: 8,
      hidden: 16,
      logitScales: [0.5, 1, 2, 4],
      functions: ALL_FUNCTIONS,
      estimators: ALL_ESTIMATORS,
      topK: [1, 2],
      eps: [0.01, 0.03, 0.1, 0.3, 1, 3],
      taus: [0.25, 0.5, 1, 2, 4],
      draws: 20000,
    },
  },
  defaultPreset: "quick",
};
