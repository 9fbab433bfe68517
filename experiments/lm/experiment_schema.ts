/**
 * The config schema shared by the LM experiments (switch-vs-sparsemixer, grin-top2) and its mapping onto the
 * runner's per-run {@link RunConfig}: an experiment config is the base fields (`seeds`, `device`), the arms to
 * compare, the schedule, the runner's own `model` / `data` / `optim` sections minus the routing fields that the
 * arms decide (estimator, its options, ω), the router's ε, and how the target loss for "steps to target" is
 * chosen. Reusing the runner's sections keeps one definition (and one description) of every model field.
 *
 * @module
 */
import { z } from "../../deps.ts";
import { baseConfigShape, type ExperimentDefinition } from "../common/config.ts";
import { parseRunConfig, type RunConfig, runConfigSchema, type RunEstimator } from "./run_config.ts";
import type { PrimaryTest } from "./verdicts.ts";

// The runner's sections, without their `.default()` wrappers (the presets spell every field out).
const runShape = runConfigSchema.shape;
const runModel = runShape.model.unwrap();

/** What an arm sets in the model config: the estimator, its options (ε is added from the config) and ω. */
export interface ArmSpec {
  /** The routing estimator of the arm. */
  estimator: RunEstimator;
  /** Learnable output scale ω on the MoE output. */
  outputScale: boolean;
  /** Whether the estimator takes the config's `jitterEps` (default true; `topk` has no ε). */
  usesJitter?: boolean;
  /** Extra estimator options besides `jitterEps` and K (e.g. `{ renormalize: true }`). */
  estimatorOptions?: Record<string, unknown>;
  /** Keep the routers at their initial weights (the `frozen` null control; default false). */
  frozenRouter?: boolean;
  /**
   * Which null control the arm is (ESTIMATORS.md §12), or absent for a learned router: the report compares every
   * learned arm with every control.
   */
  control?: NullControl;
  /** One line for the report saying what the arm is and why it is in the comparison. */
  description: string;
}

/** The null controls: uniformly random experts, a hash of the token id, a router frozen at init. */
export type NullControl = "random" | "hash" | "frozen";

// The model fields an experiment config has: the runner's, minus what the arms decide.
const experimentModelSchema = runModel.omit({
  estimator: true,
  estimatorOptions: true,
  outputScale: true,
  frozenRouter: true,
})
  .describe("The decoder-only MoE language model (the routing estimator, its options and ω come from the arm).");

// The target loss of "steps to target": a number (nats), or "auto" (see `chooseTarget` in aggregate.ts: the
// highest of the arms' mean validation losses at `targetFraction` of training).
const targetLossSchema = z.union([z.literal("auto"), z.number().gt(0)]);

/** Builds the zod shape of an LM experiment whose arms are `armNames`. */
export function lmExperimentShape<A extends readonly [string, ...string[]]>(armNames: A, baseline: A[number]) {
  return {
    ...baseConfigShape,
    arms: z.array(z.enum(armNames)).min(1).refine((a) => new Set(a).size === a.length, {
      message: "a list of distinct arms",
    }).describe(
      `Arms to compare (${armNames.join(", ")}); each runs every seed. Comparisons are against ${baseline}.`,
    ),
    steps: runShape.steps.unwrap().describe("Training steps (optimizer updates) per run."),
    logEvery: runShape.logEvery.unwrap().describe("Write a train record (loss, routing metrics) every N steps."),
    evalEvery: runShape.evalEvery.unwrap().describe(
      "Evaluate on the held-out SOTU split and on Moby Dick (eval mode, fixed batches) every N steps and at the end.",
    ),
    checkpointEvery: runShape.checkpointEvery.unwrap().describe(
      "Checkpoint every N steps (a multiple of logEvery) and at the end; --resume continues from the newest.",
    ),
    threads: z.int().min(1).max(64).nullable().describe(
      "CPU matmul threads per run; null = automatic (1 when the parallel jobs fill the cores, else cores / jobs).",
    ),
    jitterEps: z.number().min(0).describe(
      "Router ε of the arms that take one: Switch's logit-jitter half-width, SparseMixer's (v1, v2) " +
        "candidate-mask width (topk has none).",
    ),
    targetLoss: targetLossSchema.describe(
      'Validation loss (nats) for "steps to target", or "auto": the highest of the learned arms\' (not the null ' +
        "controls') mean validation " +
        "losses at targetFraction of training (the loss the slowest arm reaches there; fixed before knowing which " +
        "arm is faster).",
    ),
    targetFraction: z.number().gt(0).max(1).describe(
      'Fraction of training at which "auto" reads the arms\' mean validation curves (e.g. 0.8).',
    ),
    model: experimentModelSchema,
    data: runShape.data.unwrap(),
    optim: runShape.optim.unwrap(),
  };
}

/**
 * The schema of an LM experiment, with its arms widened to `string` (every experiment's
 * `z.strictObject(lmExperimentShape(ARMS, baseline))` is one of these).
 */
export type LmExperimentSchema = z.ZodObject<
  ReturnType<typeof lmExperimentShape<readonly [string, ...string[]]>>,
  z.core.$strict
>;

/**
 * The config of an LM experiment (what {@link lmExperimentShape} parses to); each field is documented by its
 * schema's `.describe()`.
 */
export type LmExperimentConfig = z.output<LmExperimentSchema>;

/** An LM experiment: its CLI definition plus what the runner and the report need to know about the arms. */
export interface LmExperiment {
  /** Name, description, schema and presets (what the command line parses). */
  definition: ExperimentDefinition<LmExperimentSchema>;
  /** Arm compared against (its steps-to-target is the speed-up's numerator). */
  baseline: string;
  /** Every selectable arm. */
  arms: Record<string, ArmSpec>;
  /** Report title. */
  title: string;
  /** The question, one paragraph for the report. */
  question: string;
  /** Notes for the report's method section (markdown). */
  notes: string[];
  /** The one primary test the headline verdict comes from, declared before any run. */
  primary: PrimaryTest;
  /**
   * The effect the papers claim, for the power section ("seeds needed to detect it"), or null when the papers give
   * no number that translates into the primary endpoint (the report then says so).
   */
  claimedEffect: ClaimedEffect | null;
}

/**
 * A claimed effect, as the paper states it: a speed-up factor to the same loss (translated into a difference of
 * the final validation loss from the baseline's own curve, see `claimedEffectNats` in `aggregate_controls.ts`), or a
 * loss difference in nats.
 */
export type ClaimedEffect =
  | { kind: "speedup"; factor: number; source: string }
  | { kind: "nats"; nats: number; source: string };

/** The arms of `exp` that are null controls, in `arms`' order. */
export function controlArms(exp: LmExperiment, arms: readonly string[]): string[] {
  return arms.filter((a) => exp.arms[a]?.control !== undefined);
}

/**
 * The runner config of one (arm, seed): the experiment's sections plus the arm's routing. `threads` is the
 * resolved thread count (see {@link LmExperimentConfig.threads}). Cross-field rules (heads divide dim, …) are
 * checked here, by the runner's schema: a violation throws its `RunConfigError`, naming the field path, which is
 * the same path in the experiment config.
 */
export function toRunConfig(
  exp: LmExperiment,
  config: LmExperimentConfig,
  arm: string,
  seed: number,
  threads: number,
): RunConfig {
  const spec = exp.arms[arm];
  if (!spec) throw new Error(`unknown arm ${JSON.stringify(arm)} (allowed: ${Object.keys(exp.arms).join(", ")})`);
  return parseRunConfig({
    seed,
    device: config.device,
    threads,
    steps: config.steps,
    logEvery: config.logEvery,
    evalEvery: config.evalEvery,
    checkpointEvery: config.checkpointEvery,
    data: config.data,
    model: {
      ...config.model,
      estimator: spec.estimator,
      outputScale: spec.outputScale,
      frozenRouter: spec.frozenRouter ?? false,
      estimatorOptions: {
        ...(spec.usesJitter === false ? {} : { jitterEps: config.jitterEps }),
        ...spec.estimatorOptions,
      },
    },
    optim: config.optim,
  });
}
