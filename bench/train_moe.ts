/**
 * The training step the benchmark measures: a small MoE decoder LM (default 4 layers, d = 256, 4 heads,
 * RoPE, a top-1 MoE FFN with 8 experts in every layer, sequence 128, batch 4) on the CPU in f32 with
 * cross-entropy, backward, gradient clipping and AdamW. Everything is seeded, so two trainers built with
 * the same config compute the same numbers.
 *
 * `deno run --allow-read --allow-env bench/train_moe.ts [--steps N] [--plain] [--dispatch grouped|padded]
 * [--matmul auto|wasm|blas] [--threads N]` profiles a few steps and prints the per-op table (used while optimising
 * the kernels); with `--allow-ffi` the default `auto` runs the matmuls on a native BLAS if one is found (see
 * `kernels/cpu/blas_matmul.ts`); `--threads` sets the CPU backend's threads (matmuls, and the large elementwise, softmax, sum and AdamW kernels; default: one per core).
 */
import { parseArgs } from "node:util";
import { kernelPool } from "../kernels/cpu/threads/pool.ts";
import {
  crossEntropy,
  formatProfile,
  Generator,
  type MatmulChoice,
  profilePhase,
  randint,
  scope,
  startProfile,
  stopProfile,
  type Tensor,
} from "../core/mod.ts";
import { DecoderLM } from "../nn/mod.ts";
import { AdamW } from "../nn/optim/mod.ts";
import { type DispatchMode, MoELayer } from "../moe/mod.ts";
import { median } from "../experiments/common/stats.ts";

/** Model and batch of the measured step. */
export interface TrainConfig {
  vocab: number;
  dim: number;
  layers: number;
  heads: number;
  experts: number;
  estimator: string;
  batch: number;
  seq: number;
  /** The MoE layers' dispatch (default: the layer's, `"grouped"`). */
  dispatch?: DispatchMode;
}

/** The configuration of the table: 4 layers, d = 256, 8 experts, top-1, sequence 128. */
export const DEFAULT_TRAIN: TrainConfig = {
  vocab: 256,
  dim: 256,
  layers: 4,
  heads: 4,
  experts: 8,
  estimator: "sparsemixer",
  batch: 4,
  seq: 128,
};

/** A seeded model, optimizer and batch, with `step()` = forward, loss, backward, clip, AdamW step. */
export interface Trainer {
  /** One training step; returns the loss (read synchronously: this is the CPU). */
  step(): number;
  /** Tokens per step (batch · seq). */
  tokens: number;
  /** The model's MoE layers (their `lastRouting` is the latest step's). */
  moeLayers: readonly MoELayer[];
  /** Number of trainable scalars (what the PyTorch comparison checks it matches). */
  parameters: number;
}

/** Builds the model and one fixed batch (the same batch every step: the data pipeline is not measured). */
export function makeTrainer(config: TrainConfig = DEFAULT_TRAIN): Trainer {
  const gen = new Generator(1234);
  const moeLayers: MoELayer[] = [];
  const lm = new DecoderLM(config.vocab, config.dim, config.layers, config.heads, {
    rope: true,
    generator: gen,
    maxLen: config.seq,
    ffnFactory: () => {
      const layer = new MoELayer(config.dim, {
        numExperts: config.experts,
        estimator: config.estimator,
        generator: gen,
        balanceLoss: { coef: 0.01, form: "switch" },
        dispatch: config.dispatch,
      });
      moeLayers.push(layer);
      return layer;
    },
  });
  lm.train();
  // Clipping to norm 1 inside the step: the same bits as clipGradNorm(lm.parameters(), 1) before it (what
  // bench/torch_step.py does), without a pass that writes scaled gradients.
  const opt = new AdamW(lm.namedParameters(), { lr: 1e-3, weightDecay: 0.01, maxGradNorm: 1.0 });
  const ids = randint(0, config.vocab, [config.batch, config.seq + 1], { generator: gen, dtype: "i32" });
  const inputs = ids.narrow(1, 0, config.seq), targets = ids.narrow(1, 1, config.seq);
  return {
    tokens: config.batch * config.seq,
    moeLayers,
    parameters: lm.parameters().reduce((n, p) => n + p.size, 0),
    step(): number {
      return scope(() => {
        const loss = profilePhase("forward", () => {
          const logits = lm.forward(inputs);
          let l: Tensor = crossEntropy(logits.reshape(-1, config.vocab), targets.reshape(-1));
          const aux = lm.auxLoss();
          if (aux) l = l.add(aux);
          return l;
        });
        profilePhase("backward", () => {
          opt.zeroGrad();
          loss.backward();
        });
        profilePhase("optimizer", () => opt.step());
        return loss.dataSync()[0];
      });
    },
  };
}

/**
 * Runs `warmup` untimed steps, then `repeats` timed ones: the wall time (ms) of each timed step, and the loss of
 * every step run (warm-up included), in order.
 */
export function stepTimes(trainer: Trainer, warmup: number, repeats: number): { ms: number[]; losses: number[] } {
  const losses: number[] = [];
  for (let i = 0; i < warmup; i++) losses.push(trainer.step());
  const ms: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    losses.push(trainer.step());
    ms.push(performance.now() - t0);
  }
  return { ms, losses };
}

/** Median wall time of `repeats` steps after `warmup` steps, and tokens/s from it. */
export function timeSteps(trainer: Trainer, warmup: number, repeats: number): { ms: number; tokensPerS: number } {
  const m = median(stepTimes(trainer, warmup, repeats).ms);
  return { ms: m, tokensPerS: trainer.tokens / (m / 1000) };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      steps: { type: "string", default: "2" },
      plain: { type: "boolean", default: false },
      matmul: { type: "string", default: "auto" },
      batch: { type: "string" },
      by: { type: "string", default: "op,kernel" },
      dispatch: { type: "string" },
      threads: { type: "string" },
    },
  });
  if (values.dispatch !== undefined && values.dispatch !== "grouped" && values.dispatch !== "padded") {
    throw new Error(`--dispatch must be grouped or padded, got ${values.dispatch}`);
  }
  const { setCpuOptions } = await import("../core/mod.ts");
  setCpuOptions({ matmul: values.matmul as MatmulChoice });
  if (values.plain) setCpuOptions({ wasm: false, threads: 1, fastKernels: false });
  if (values.threads !== undefined) setCpuOptions({ threads: Number(values.threads) });
  const config: TrainConfig = {
    ...DEFAULT_TRAIN,
    batch: values.batch ? Number(values.batch) : DEFAULT_TRAIN.batch,
    dispatch: values.dispatch as DispatchMode | undefined,
  };
  const trainer = makeTrainer(config);
  const t0 = performance.now();
  const first = trainer.step();
  console.log(`warm-up step: ${(performance.now() - t0).toFixed(0)} ms, loss ${first.toFixed(4)}`);
  const steps = Number(values.steps);
  const pool = kernelPool(), before = pool?.stats;
  startProfile();
  for (let i = 0; i < steps; i++) trainer.step();
  const table = stopProfile();
  const after = pool?.stats;
  const by = values.by.split(",") as ("phase" | "op" | "kernel")[];
  console.log(
    `${steps} steps, ${(table.wallMs / steps).toFixed(0)} ms/step, ${
      (trainer.tokens / (table.wallMs / steps / 1000)).toFixed(0)
    } tokens/s`,
  );
  console.log(formatProfile(table, { top: 30, per: steps, by }));
  if (before && after && pool!.size > 0) {
    // Where threads > 1: how busy the Workers were (the rest of the step, they waited for the calling thread).
    const per = (x: number) => (x / steps).toFixed(1);
    console.log(
      `Workers (${pool!.size}): ${per(after.busyMs - before.busyMs)} ms/step in jobs, woken for ${
        per(after.rings - before.rings)
      } jobs/step, fell asleep ${per(after.sleeps - before.sleeps)} times/step`,
    );
  }
}
