/**
 * The two LM experiments — their arms, schemas and presets:
 *
 * - {@link switchVsSparseMixer} (`deno task exp:switch-vs-sparsemixer`): the SparseMixer paper's question — does
 *   SparseMixer make a Switch Transformer converge faster than Switch routing? A decoder-only Switch Transformer
 *   LM (MoE FFN in every other layer, as in the paper's fairseq setup) on SOTU with BPE, evaluated on held-out
 *   SOTU and on Moby Dick.
 * - {@link grinTop2} (`deno task exp:grin-top2`): GRIN's setting — 16 GLU experts, top-2, dropless, global load
 *   balancing — comparing GShard/Mixtral `topk` with `sparsemixer-v2` and v2*.
 *
 * Presets: `smoke` (a few steps, for the test suite), `quick` (the default; the comparison on a 2-core CPU in
 * ≤ 20 minutes for switch-vs-sparsemixer), `paper` (larger, every arm; for a GPU or a long CPU run).
 *
 * @module
 */
import { z } from "../../deps.ts";
import type { ExperimentDefinition } from "../common/config.ts";
import { type ArmSpec, type LmExperiment, type LmExperimentConfig, lmExperimentShape } from "./experiment_schema.ts";

// ---------------------------------------------------------------------------------------------------------------
// Null controls (ESTIMATORS.md §12), arms of every LM experiment

/** The null-control arms, in report order (after the learned arms). */
export const CONTROL_ARMS = ["random", "hash", "frozen"] as const;

/**
 * The null-control arms of an experiment whose learned baseline is `frozenBase` (that arm's spec, run with its
 * router frozen at init). `random` and `hash` ignore the router (K from the model's `topK`, gates 1/K, no ω, no
 * ε); their balance loss is a constant. The issue asks for "a fixed random assignment" and the spec for experts
 * "redrawn each step": `hash` is the first (each token id's experts fixed once, by a seeded hash — Roller et
 * al.'s random hash), `random` the second (no token information at all), so both are here.
 */
function controlArms(frozenBase: ArmSpec, baseName: string): Record<typeof CONTROL_ARMS[number], ArmSpec> {
  return {
    "random": {
      estimator: "random",
      outputScale: false,
      usesJitter: false,
      control: "random",
      description: "Null control: every token gets uniformly random experts, redrawn at every step (and at every " +
        "evaluation); gates 1/K. Routing carries no information about the token.",
    },
    "hash": {
      estimator: "hash",
      outputScale: false,
      usesJitter: false,
      control: "hash",
      description: "Null control (Hash Layers, Roller et al. 2021): each token id's experts are a fixed seeded " +
        "hash of the id — a fixed random assignment of the vocabulary; gates 1/K.",
    },
    "frozen": {
      ...frozenBase,
      frozenRouter: true,
      control: "frozen",
      description: `Null control: \`${baseName}\` with its router frozen at the initial weights (no gradient, ` +
        "never updated); everything else trains.",
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Switch vs SparseMixer (SparseMixer v1, Liu, Gao & Chen 2023)

/** Arms of switch-vs-sparsemixer, in report order (the baseline first). */
export const SWITCH_ARMS = ["switch", "sparsemixer", "switch-omega", "sparsemixer-1st", ...CONTROL_ARMS] as const;

/** The paper's baseline arm (also the `frozen` control's router, frozen). */
const switchBaseline: ArmSpec = {
  estimator: "switch",
  outputScale: false,
  estimatorOptions: { variant: "logits" },
  description: "Switch routing as in the SparseMixer repo's SwitchGate: multiplicative jitter on the logits, " +
    "argmax, gate = softmax probability (gating-proxy gradient), no ω — the paper's baseline.",
};

/**
 * The arms. In the SparseMixer reference code (`microsoft/SparseMixer`) the SparseMixer router multiplies the
 * MoE output by a learnable ω ∈ R^d (init 1) and the Switch router does not (ESTIMATORS.md §3.4, §4.2), so the
 * paper's comparison is `switch` (no ω) vs `sparsemixer` (with ω); `switch-omega` is the ablation reviewers asked
 * for (does ω alone explain the gain?) and `sparsemixer-1st` is the repo's first-order variant (with ω). Then
 * the null controls ({@link CONTROL_ARMS}; `frozen` is `switch` with a frozen router).
 */
export const switchArms: Record<typeof SWITCH_ARMS[number], ArmSpec> = {
  "switch": switchBaseline,
  "sparsemixer": {
    estimator: "sparsemixer",
    outputScale: true,
    description: "SparseMixer v1: sample from the masked softmax, mid-point ODE gradient (Euler on argmax samples), " +
      "with the learnable output scale ω as in the reference code — the paper's method.",
  },
  "switch-omega": {
    estimator: "switch",
    outputScale: true,
    estimatorOptions: { variant: "logits" },
    description: "Ablation: Switch routing plus SparseMixer's learnable output scale ω, to test whether ω alone " +
      "explains SparseMixer's gain.",
  },
  "sparsemixer-1st": {
    estimator: "sparsemixer-1st",
    outputScale: true,
    description: "Ablation: SparseMixer's first-order (Euler) variant from the repo's `variants` branch, with ω.",
  },
  ...controlArms(switchBaseline, "switch"),
};

const switchSchema = z.strictObject(lmExperimentShape(SWITCH_ARMS, "switch")).describe(
  "Switch vs SparseMixer on a decoder-only Switch Transformer LM.",
);

/** The config of switch-vs-sparsemixer. */
export type SwitchVsSparseMixerConfig = z.output<typeof switchSchema>;

// The paper's NMT recipe (ESTIMATORS.md §8.1) scaled down: 4 experts (the script's default), MoE every other
// layer, ε = 0.1, balance α = 0.01, Adam β = (0.9, 0.98), dropless. A cosine schedule instead of inverse-sqrt,
// because the runs are far too short for an 8000-step warm-up.
const switchModel = (dim: number, layers: number, heads: number) => ({
  dim,
  layers,
  heads,
  moeEvery: 2,
  experts: 4,
  expert: "ffn" as const,
  hidden: null,
  topK: 1,
  capacityFactor: null,
  balance: { coef: 0.01, form: "switch" as const, scope: "local" as const },
  zLossCoef: 0,
  routerBias: false,
  dropout: 0,
  rope: true,
  norm: "layer" as const,
  tieEmbeddings: true,
});

const optim = (lr: number, warmupSteps: number) => ({
  lr,
  betas: [0.9, 0.98] as [number, number],
  eps: 1e-8,
  weightDecay: 0.01,
  warmupSteps,
  schedule: "cosine" as const,
  minLr: lr / 10,
  clipNorm: 1,
});

const data = (
  vocabSize: number,
  seqLen: number,
  batchSize: number,
  evalBatches: number,
  maxDocuments: number | null,
) => ({
  corpus: "sotu" as const,
  vocabSize,
  seqLen,
  batchSize,
  validFraction: 0.05,
  splitSeed: 0,
  maxDocuments,
  evalBatches,
  ood: true,
});

const smokeCommon = {
  seeds: 2,
  device: "cpu" as const,
  steps: 4,
  logEvery: 2,
  evalEvery: 2,
  checkpointEvery: 2,
  threads: null,
  targetLoss: "auto" as const,
  targetFraction: 0.8,
  data: data(300, 16, 4, 1, 3),
  optim: optim(3e-3, 1),
};

const switchPresets: Record<string, SwitchVsSparseMixerConfig> = {
  smoke: {
    ...smokeCommon,
    arms: ["switch", "sparsemixer", ...CONTROL_ARMS],
    jitterEps: 0.1,
    model: { ...switchModel(16, 2, 2) },
  },
  // Re-sized after issue 14's kernels (measured on the idle 2-vCPU development machine, AMD EPYC Zen 5, two runs in
  // parallel with one thread each): a step of the d = 128 model takes ~0.18 s (d = 64: ~0.10 s), an evaluation
  // (6 valid + 6 out-of-domain batches) about four steps' worth, the null controls ~0.75 of a learned arm. With
  // 2 learned arms + 3 controls × 3 seeds: ≈ (6 × 700 × 0.19 s + 9 × 0.75 × 700 × 0.19 s) / 2 ≈ 15 minutes. The model
  // is 2× wider than before issue 14 (4× the expert parameters); 700 steps × 512 tokens ≈ 10% of an epoch.
  // `--arms=switch,sparsemixer` drops the controls (~6 minutes).
  quick: {
    seeds: 3,
    device: "auto",
    arms: ["switch", "sparsemixer", ...CONTROL_ARMS],
    steps: 700,
    logEvery: 10,
    evalEvery: 50,
    checkpointEvery: 100,
    threads: null,
    jitterEps: 0.1,
    targetLoss: "auto",
    targetFraction: 0.8,
    model: switchModel(128, 4, 4),
    data: data(1024, 64, 8, 6, null),
    optim: optim(3e-3, 50),
  },
  paper: {
    seeds: 5,
    device: "auto",
    arms: [...SWITCH_ARMS],
    steps: 5000,
    logEvery: 25,
    evalEvery: 250,
    checkpointEvery: 250,
    threads: null,
    jitterEps: 0.1,
    targetLoss: "auto",
    targetFraction: 0.8,
    model: switchModel(256, 6, 8),
    data: data(8000, 256, 32, 16, null),
    optim: optim(1e-3, 400),
  },
};

/** `deno task exp:switch-vs-sparsemixer`. */
export const switchVsSparseMixer: LmExperiment = {
  definition: {
    name: "switch-vs-sparsemixer",
    description: "Does SparseMixer make a Switch Transformer converge faster than Switch routing? A decoder-only " +
      "Switch Transformer LM (MoE FFN in every other layer) trained on SOTU with BPE, evaluated in eval mode on " +
      "held-out SOTU and on Moby Dick (out of domain), every arm over several seeds.",
    schema: switchSchema,
    presets: switchPresets,
    defaultPreset: "quick",
  } satisfies ExperimentDefinition<typeof switchSchema>,
  baseline: "switch",
  // The abstract's claim (ESTIMATORS.md §8.1), translated into the primary endpoint by the power section.
  claimedEffect: {
    kind: "speedup",
    factor: 2,
    source: "SparseMixer abstract: up to 2× faster convergence than Switch (ESTIMATORS.md §8.1)",
  },
  // The paper's claim is about validation quality: final held-out loss, paired by seed (arms share seeds).
  primary: { endpoint: "finalValidLoss", test: "paired-t" },
  arms: switchArms,
  title: "Switch vs SparseMixer: does SparseMixer make a Switch Transformer converge faster?",
  question: "The SparseMixer paper (Liu, Gao & Chen 2023) claims that its gradient estimator for the routing " +
    "decision speeds up Switch Transformer training up to 2×. This experiment trains a small decoder-only Switch " +
    "Transformer language model (MoE FFN in every other layer, as in the paper's fairseq setup) on the State of " +
    "the Union addresses and compares the arms over several seeds: validation loss on held-out addresses, " +
    "out-of-domain loss on Moby Dick, steps to a target validation loss, and routing behaviour.",
  notes: [
    "In the reference code ω (a learnable d-vector on the MoE output, init 1) belongs to the SparseMixer router " +
    "only, so `switch` vs `sparsemixer` is the paper's comparison; `switch-omega` isolates ω (ESTIMATORS.md §3.4).",
    "Both routers use ε = `jitterEps` (Switch: logit jitter U[1−ε, 1+ε]; SparseMixer: candidate mask width) and the " +
    "same Switch load-balancing loss coefficient; their balance loss reads their own probabilities (full softmax " +
    "of the jittered logits vs the masked softmax), as in the reference code.",
    "SparseMixer's training forward is perturbed (0.5× gate on mid-point samples, sampling), so all comparisons " +
    "use eval-mode losses on fixed evaluation batches; training losses are shown for completeness only.",
  ],
};

// ---------------------------------------------------------------------------------------------------------------
// GRIN top-2 (SparseMixer-v2, Liu et al. 2024)

/** Arms of grin-top2, in report order (the baseline first). */
export const GRIN_ARMS = ["topk", "sparsemixer-v2", "sparsemixer-v2-heun", ...CONTROL_ARMS] as const;

/** GRIN's baseline: GShard/Mixtral top-2 (renormalised, gating-proxy gradient); no arm has ω. */
const topkBaseline: ArmSpec = {
  estimator: "topk",
  outputScale: false,
  usesJitter: false,
  estimatorOptions: { renormalize: true },
  description: "GShard/Mixtral top-2: the two largest softmax probabilities, renormalised, gating-proxy gradient " +
    "(GRIN's baseline).",
};

/** The arms, then the null controls ({@link CONTROL_ARMS}; `frozen` is `topk` with a frozen router). */
export const grinArms: Record<typeof GRIN_ARMS[number], ArmSpec> = {
  "topk": topkBaseline,
  "sparsemixer-v2": {
    estimator: "sparsemixer-v2",
    outputScale: false,
    description: "SparseMixer-v2 as released with GRIN: top-2 by sampling without replacement from the masked " +
      "softmax, Heun/Euler mix (coin 1/4, scale 0.3333).",
  },
  "sparsemixer-v2-heun": {
    estimator: "sparsemixer-v2-heun",
    outputScale: false,
    description: "v2* of GRIN App. A: Heun's third-order rule, Bern(5/8) coin.",
  },
  ...controlArms(topkBaseline, "topk"),
};

const grinSchema = z.strictObject(lmExperimentShape(GRIN_ARMS, "topk")).describe(
  "GShard top-2 vs SparseMixer-v2 on a GRIN-style 16-expert top-2 GLU MoE LM.",
);

/** The config of grin-top2. */
export type GrinTop2Config = z.output<typeof grinSchema>;

// GRIN's layout (ESTIMATORS.md §5.5): every layer MoE, 16 SwiGLU experts, top-2, no capacity (dropless), global
// load balancing (f pooled over the optimizer step), ε = 0.01 (transformers' router_jitter_noise).
const grinModel = (dim: number, layers: number, heads: number, hidden: number) => ({
  dim,
  layers,
  heads,
  moeEvery: 1,
  experts: 16,
  expert: "glu" as const,
  hidden,
  topK: 2,
  capacityFactor: null,
  balance: { coef: 0.01, form: "topk" as const, scope: "global" as const },
  zLossCoef: 0,
  routerBias: false,
  dropout: 0,
  rope: true,
  norm: "rms" as const,
  tieEmbeddings: true,
});

const grinPresets: Record<string, GrinTop2Config> = {
  smoke: {
    ...smokeCommon,
    arms: ["topk", "sparsemixer-v2", ...CONTROL_ARMS],
    jitterEps: 0.01,
    model: grinModel(16, 1, 2, 16),
  },
  // Measured like switch-vs-sparsemixer's quick preset (loaded machine, one thread per run): ~0.5 s wall per
  // step with two runs in parallel, i.e. about 9 runs × 600 steps in ~15-20 minutes on an idle 2-core machine.
  // With the three null controls (issue 15) it is 18 runs, twice that; `--arms=topk,sparsemixer-v2,sparsemixer-v2-heun`
  // gives the old timing.
  quick: {
    seeds: 3,
    device: "auto",
    arms: [...GRIN_ARMS],
    steps: 600,
    logEvery: 10,
    evalEvery: 50,
    checkpointEvery: 100,
    threads: null,
    jitterEps: 0.01,
    targetLoss: "auto",
    targetFraction: 0.8,
    model: grinModel(64, 2, 4, 64),
    data: data(1024, 64, 8, 6, null),
    optim: optim(3e-3, 50),
  },
  paper: {
    seeds: 5,
    device: "auto",
    arms: [...GRIN_ARMS],
    steps: 5000,
    logEvery: 25,
    evalEvery: 250,
    checkpointEvery: 250,
    threads: null,
    jitterEps: 0.01,
    targetLoss: "auto",
    targetFraction: 0.8,
    model: grinModel(256, 6, 8, 512),
    data: data(8000, 256, 32, 16, null),
    optim: optim(1e-3, 400),
  },
};

/** `deno task exp:grin-top2`. */
export const grinTop2: LmExperiment = {
  definition: {
    name: "grin-top2",
    description: "GRIN's setting: 16 GLU experts, top-2, dropless, global load balancing; GShard/Mixtral top-k vs " +
      "SparseMixer-v2 and v2* on a decoder-only LM trained on SOTU, evaluated on held-out SOTU and Moby Dick.",
    schema: grinSchema,
    presets: grinPresets,
    defaultPreset: "quick",
  } satisfies ExperimentDefinition<typeof grinSchema>,
  baseline: "topk",
  primary: { endpoint: "finalValidLoss", test: "paired-t" },
  // GRIN's controlled comparison (ESTIMATORS.md §8.2) is an MMLU curve with no number for loss or speed.
  claimedEffect: null,
  arms: grinArms,
  title: "GRIN top-2: does SparseMixer-v2 beat GShard/Mixtral top-2 routing?",
  question: "GRIN (Liu et al. 2024) reports that SparseMixer-v2 overtakes conventional top-2 routing (GShard) " +
    "after the early phase of training, with 16 experts, top-2, no token dropping and a global load-balancing " +
    "loss. This experiment trains a small decoder-only LM with that MoE layout on the State of the Union " +
    "addresses and compares the arms over several seeds, in eval mode, on held-out addresses and on Moby Dick.",
  notes: [
    "Every layer is a MoE layer with 16 SwiGLU experts and top-2 routing, dropless; the balance loss is the top-k " +
    "form with f pooled over the whole optimizer step (GRIN's global balance).",
    "SparseMixer-v2's training forward is perturbed (0.3333× gates on Heun samples), so comparisons use eval-mode " +
    "losses on fixed evaluation batches.",
  ],
};

/** Compile-time check that the presets are complete experiment configs. */
const _check: LmExperimentConfig[] = [...Object.values(switchPresets), ...Object.values(grinPresets)];
void _check;
