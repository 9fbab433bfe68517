/**
 * One training run of a MoE language model ({@link runLm}): the unit the LM experiments repeat over arms and
 * seeds, usually in a subprocess (`run_one.ts`).
 *
 * ## Files (in the run directory)
 * - `config.json`: the resolved {@link RunConfig}; `env.json`: `environmentInfo` of the machine and device.
 * - `metrics.jsonl`: in step order, a `train` record every `logEvery` steps (losses and routing statistics
 *   averaged over those steps, learning rate, tokens, throughput) and, every `evalEvery` steps and at the last
 *   step, an `eval` record per split (`valid`, and `ood` when enabled) — see `run_metrics.ts`.
 * - `routing_snapshots.jsonl`: at every evaluation, the eval-mode experts of every MoE layer on the first
 *   validation batch (`eval_routing.ts`), for the report's router saturation.
 * - `ckpt/step-NNNNNN.safetensors`: every `checkpointEvery` steps and at the last; the newest two are kept.
 * - `final.json`: written (atomically) when the run completes.
 *
 * ## Reproducibility
 * Every random number comes from the run's seeded generators (see `run_model.ts`); the data position is the
 * data generator's counter. A checkpoint stores the model, the AdamW state, the three generator states and the
 * config, so `resume: true` restores the newest checkpoint, cuts `metrics.jsonl` back to its step and continues
 * exactly as the uninterrupted run would have: every record field except the timings (`tokensPerSec`,
 * `msPerStep`) is bit-identical. Evaluation runs in `eval()` mode on fixed batches and restores the estimator
 * stream afterwards, so it never changes the training trajectory and does not depend on the estimators' draws.
 *
 * @module
 */
import { crossEntropy, keep, noGrad, scope, setCpuOptions, stack, type Tensor, zeros } from "../../core/mod.ts";
import { selectDevice } from "../../kernels/select.ts";
import {
  AdamW,
  applySchedule,
  constantLr,
  inverseSqrtLr,
  type LrSchedule,
  warmupCosineLr,
  warmupLinearLr,
} from "../../nn/optim/mod.ts";
import {
  CheckpointError,
  checkpointPath,
  listCheckpoints,
  loadCheckpoint,
  saveCheckpoint,
} from "../../nn/checkpoint/mod.ts";
import type { JsonValue } from "../../nn/checkpoint/checkpoint.ts";
import { type Batch, sampleBatch } from "../../nn/data/mod.ts";
import { acquireLock } from "../common/lock.ts";
import { median } from "../common/stats.ts";
import { appendJsonl, environmentInfo, readJsonl, writeJsonAtomic, writeJsonlAtomic } from "../common/io.ts";
import { parseRunConfig, type RunConfig } from "./run_config.ts";
import { DEFAULT_DATA_CACHE_DIR, makeEvalBatches, prepareLmData } from "./data.ts";
import { buildLmModel, runGenerators } from "./run_model.ts";
import { EvalRoutingProbe, type RoutingSnapshot } from "./eval_routing.ts";
import {
  averageRouting,
  type EvalRecord,
  type MetricsRecord,
  type RoutingShape,
  routingVector,
  type TrainRecord,
} from "./run_metrics.ts";

/** What {@link runLm} reports to `onProgress`. */
export type RunProgress =
  | {
    kind: "train";
    step: number;
    steps: number;
    loss: number;
    lr: number;
    tokensPerSec: number;
    /** Wall seconds of the training loop so far, evaluation included (all segments of a resumed run). */
    elapsedSec: number;
  }
  | { kind: "eval"; step: number; steps: number; split: "valid" | "ood"; loss: number; ppl: number }
  | { kind: "resume"; step: number; steps: number; checkpoint: string };

/** Options of {@link runLm}. */
export interface RunLmOptions {
  /** Continue from the newest checkpoint in the run directory (a fresh start when there is none). */
  resume: boolean;
  /** Called after every train record, eval record and resume. */
  onProgress?(p: RunProgress): void;
  /** Test hook that simulates a kill: return after this step's records and checkpoint, without `final.json`. */
  stopAfterStep?: number;
  /** Where the tokenized data is cached (default {@link DEFAULT_DATA_CACHE_DIR}). */
  dataCacheDir?: string;
  /** Warnings (a damaged checkpoint set aside, a stale lock taken over); default `console.warn`. */
  onWarning?(message: string): void;
}

/** An evaluation result. */
export interface EvalResult {
  /** Mean cross-entropy (nats/token). */
  loss: number;
  /** `exp(loss)`. */
  ppl: number;
  /** Tokens scored. */
  tokens: number;
}

/** `final.json`, also what {@link runLm} returns for a completed run. */
export interface RunSummary {
  /** True for a completed run (false only for a run stopped by `stopAfterStep`, which writes no file). */
  done: boolean;
  /** Training steps done. */
  steps: number;
  /** Evaluation at the last step. */
  finalEval: { valid: EvalResult; ood: EvalResult | null };
  /** Training seconds, all segments of a resumed run together (evaluation and checkpoints excluded). */
  totalSeconds: number;
  /** Seconds spent evaluating (all segments). */
  evalSeconds: number;
  /** Wall seconds of the training loop: training, evaluation, records and checkpoints (all segments). */
  wallSeconds: number;
  /** Median of the train records' `msPerStep`. */
  msPerStepMedian: number;
  /** Median of the train records' `tokensPerSec`. */
  tokensPerSecMedian: number;
}

/** Metadata a checkpoint carries besides the model and optimizer (its `config` entry). */
interface CheckpointMeta {
  run: RunConfig;
  generators: { moe: { seed: number; offset: number }; data: { seed: number; offset: number } };
  trainSeconds: number;
  evalSeconds: number;
  wallSeconds: number;
  lastEval: { valid: EvalResult; ood: EvalResult | null } | null;
}

const KEEP_CHECKPOINTS = 2;

function join(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

async function removeIfExists(path: string): Promise<void> {
  await Deno.remove(path, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
}

function makeSchedule(config: RunConfig): LrSchedule {
  const o = config.optim;
  switch (o.schedule) {
    case "cosine":
      return warmupCosineLr({ peak: o.lr, warmupSteps: o.warmupSteps, totalSteps: config.steps, minLr: o.minLr });
    case "linear":
      return warmupLinearLr({ peak: o.lr, warmupSteps: o.warmupSteps, totalSteps: config.steps, endLr: o.minLr });
    case "inverse-sqrt":
      return inverseSqrtLr({ peak: o.lr, warmupSteps: o.warmupSteps });
    case "constant": {
      const flat = constantLr(o.lr);
      return (step) => step < o.warmupSteps ? o.lr * step / o.warmupSteps : flat(step);
    }
  }
}

/**
 * Trains one LM run in `runDir` (see the module docs for the files and the reproducibility guarantees) and
 * returns its summary. A run whose `final.json` already says `done` is not repeated when `resume` is set;
 * without `resume` the directory's earlier metrics, checkpoints and summary are removed first.
 *
 * The directory is locked (`.lock`, see `common/lock.ts`) while this writes it: a second process gets a
 * `LockedError` naming the pid instead of interleaving its metrics with ours.
 */
export async function runLm(input: RunConfig, runDir: string, opts: RunLmOptions): Promise<RunSummary> {
  const config = parseRunConfig(input);
  await Deno.mkdir(runDir, { recursive: true });
  const lock = acquireLock(runDir, opts.onWarning ?? console.warn);
  try {
    return await runLocked(config, runDir, opts);
  } finally {
    lock.release();
  }
}

async function runLocked(config: RunConfig, runDir: string, opts: RunLmOptions): Promise<RunSummary> {
  const finalPath = join(runDir, "final.json");
  const metricsPath = join(runDir, "metrics.jsonl");
  const snapshotsPath = join(runDir, "routing_snapshots.jsonl");
  const ckptDir = join(runDir, "ckpt");

  if (opts.resume) {
    const done = await readFinal(finalPath);
    if (done?.done) {
      const stored = JSON.parse(await Deno.readTextFile(join(runDir, "config.json")));
      if (JSON.stringify(stored) !== JSON.stringify(config)) {
        throw new Error(`runLm: ${runDir} holds a completed run of a different config; use another directory`);
      }
      return done;
    }
  } else {
    for (const p of [finalPath, metricsPath, snapshotsPath, ckptDir]) await removeIfExists(p);
  }

  setCpuOptions({ threads: config.threads });
  const device = await selectDevice(config.device, { quiet: true });
  const data = await prepareLmData(config, opts.dataCacheDir ?? DEFAULT_DATA_CACHE_DIR);
  await Deno.mkdir(ckptDir, { recursive: true });
  await writeJsonAtomic(join(runDir, "config.json"), config);
  await writeJsonAtomic(join(runDir, "env.json"), {
    ...environmentInfo(device),
    threads: config.threads,
  });

  const gens = runGenerators(config.seed);
  const { model, moeLayers, moeLayerIndices } = buildLmModel(config, data.vocabSize, gens);
  const params = model.namedParameters();
  const o = config.optim;
  // Clipping inside the step: the same bits as clipGradNorm(params, clipNorm) before it, one pass fewer.
  const optimizer = new AdamW(params, {
    lr: o.lr,
    betas: o.betas,
    eps: o.eps,
    weightDecay: o.weightDecay,
    maxGradNorm: o.clipNorm > 0 ? o.clipNorm : undefined,
  });
  const schedule = makeSchedule(config);

  let step = 0;
  let trainSeconds = 0, evalSeconds = 0, wallBefore = 0;
  let lastEval: CheckpointMeta["lastEval"] = null;
  if (opts.resume) {
    const restored = await restoreNewest(ckptDir, config, { model, optimizer, gens }, opts.onWarning ?? console.warn);
    if (restored) {
      step = restored.step;
      trainSeconds = restored.meta.trainSeconds;
      evalSeconds = restored.meta.evalSeconds;
      wallBefore = restored.meta.wallSeconds;
      lastEval = restored.meta.lastEval;
      const kept = (await readJsonl<MetricsRecord>(metricsPath)).filter((r) => r.step <= step);
      await writeJsonlAtomic(metricsPath, kept);
      const snapshots = (await readJsonl<RoutingSnapshot>(snapshotsPath)).filter((r) => r.step <= step);
      await writeJsonlAtomic(snapshotsPath, snapshots);
      opts.onProgress?.({ kind: "resume", step, steps: config.steps, checkpoint: restored.path });
    } else {
      await removeIfExists(metricsPath);
      await removeIfExists(snapshotsPath);
    }
  }

  const { seqLen: T, batchSize: B } = config.data;
  const evalSets: [("valid" | "ood"), Batch[]][] = [[
    "valid",
    makeEvalBatches(data.valid, config.data.evalBatches, B, T),
  ]];
  if (data.ood) evalSets.push(["ood", makeEvalBatches(data.ood, config.data.evalBatches, B, T)]);
  // The routing diagnostics of each evaluation read the validation batches' token ids once, here.
  const validIds = await Promise.all(evalSets[0][1].map((b) => b.input.data()));
  const probe = new EvalRoutingProbe(moeLayers, moeLayerIndices, validIds as ArrayLike<number>[]);

  const evaluate = async (): Promise<{ valid: EvalResult; ood: EvalResult | null }> => {
    model.eval();
    probe.reset();
    // Evaluation must leave the training trajectory untouched, even for an estimator that draws in eval mode.
    const moeState = gens.moe.getState();
    const out: { valid: EvalResult; ood: EvalResult | null } = { valid: null!, ood: null };
    try {
      for (const [split, batches] of evalSets) {
        let sum = 0, tokens = 0;
        for (const b of batches) {
          sum += await scope(async () => {
            const loss = noGrad(() => crossEntropy(model.forward(b.input), b.target, { reduction: "sum" })).item();
            if (split === "valid") await probe.add();
            return await loss;
          });
          tokens += b.target.size;
        }
        const loss = sum / tokens;
        out[split] = { loss, ppl: Math.exp(loss), tokens };
      }
    } finally {
      gens.moe.setState(moeState);
      model.train();
    }
    return out;
  };

  // Per-step device tensors, read back at the next train record.
  let pending: { scalars: Tensor; routing: Tensor[] }[] = [];
  let shapes: RoutingShape[] | null = null;
  let intervalMs = 0;
  let lr = 0;
  const stopAt = Math.min(config.steps, opts.stopAfterStep ?? Infinity);
  const loopStart = performance.now();
  const wallSeconds = () => wallBefore + (performance.now() - loopStart) / 1000;
  try {
    while (step < stopAt) {
      const t0 = performance.now();
      step++;
      for (const layer of moeLayers) layer.resetBalanceStats();
      const batch = sampleBatch(data.train, { batchSize: B, seqLen: T, generator: gens.data });
      const out = scope(() => {
        const lm = crossEntropy(model.forward(batch.input), batch.target);
        const aux = model.auxLoss();
        const total = aux ? lm.add(aux) : lm;
        total.backward();
        lr = applySchedule(optimizer, schedule, step - 1);
        optimizer.step();
        for (const layer of moeLayers) layer.updateExpertBias(); // loss-free balancing; no-op without it
        optimizer.zeroGrad();
        return noGrad(() => {
          const vecs = moeLayers.map((l) => routingVector(l)!);
          shapes ??= vecs.map((v) => v.shape);
          const zero = zeros([], { dtype: lm.dtype, device: lm.device });
          const scalars = stack([total.detach(), lm.detach(), aux ? aux.detach() : zero]);
          return { scalars: keep(scalars), routing: vecs.map((v) => keep(v.vector)) };
        });
      });
      batch.input.dispose();
      batch.target.dispose();
      pending.push(out);

      const isLog = step % config.logEvery === 0 || step === config.steps;
      if (isLog) {
        const record = await trainRecord(step, pending, shapes!, moeLayerIndices, lr, B * T);
        for (const p of pending) [p.scalars, ...p.routing].forEach((t) => t.dispose());
        const n = pending.length;
        pending = [];
        intervalMs += performance.now() - t0;
        trainSeconds += intervalMs / 1000;
        record.msPerStep = intervalMs / n;
        record.tokensPerSec = n * B * T / (intervalMs / 1000);
        intervalMs = 0;
        await appendJsonl(metricsPath, record);
        opts.onProgress?.({
          kind: "train",
          step,
          steps: config.steps,
          loss: record.lmLoss,
          lr,
          tokensPerSec: record.tokensPerSec,
          elapsedSec: wallSeconds(),
        });
      } else {
        intervalMs += performance.now() - t0;
      }

      if (step % config.evalEvery === 0 || step === config.steps) {
        const e0 = performance.now();
        lastEval = await evaluate();
        evalSeconds += (performance.now() - e0) / 1000;
        const diagnostics = probe.result(step);
        await appendJsonl(snapshotsPath, diagnostics.snapshot);
        for (const split of ["valid", "ood"] as const) {
          const r = lastEval[split];
          if (!r) continue;
          const rec: EvalRecord = { kind: "eval", step, split, loss: r.loss, ppl: r.ppl, tokens: r.tokens };
          if (split === "valid") rec.routing = diagnostics.routing;
          await appendJsonl(metricsPath, rec);
          opts.onProgress?.({ kind: "eval", step, steps: config.steps, split, loss: r.loss, ppl: r.ppl });
        }
      }

      if (step % config.checkpointEvery === 0 || step === config.steps) {
        const meta: CheckpointMeta = {
          run: config,
          generators: { moe: gens.moe.getState(), data: gens.data.getState() },
          trainSeconds,
          evalSeconds,
          wallSeconds: wallSeconds(),
          lastEval,
        };
        // In a scope: the state dicts hand out fresh aliases of the state tensors, which must not pile up.
        await scope(() =>
          saveCheckpoint(checkpointPath(ckptDir, step), {
            model,
            optimizer,
            generator: gens.model,
            step,
            config: meta as unknown as JsonValue,
          })
        );
        const all = await listCheckpoints(ckptDir);
        for (const old of all.slice(0, Math.max(0, all.length - KEEP_CHECKPOINTS))) await removeIfExists(old.path);
      }
    }
  } finally {
    for (const p of pending) [p.scalars, ...p.routing].forEach((t) => t.dispose());
    for (const [, batches] of evalSets) for (const b of batches) [b.input, b.target].forEach((t) => t.dispose());
  }

  const records = await readJsonl<MetricsRecord>(metricsPath);
  const train = records.filter((r): r is TrainRecord => r.kind === "train");
  const summary: RunSummary = {
    done: step === config.steps,
    steps: step,
    finalEval: lastEval ?? { valid: { loss: NaN, ppl: NaN, tokens: 0 }, ood: null },
    totalSeconds: trainSeconds,
    evalSeconds,
    wallSeconds: wallSeconds(),
    msPerStepMedian: median(train.map((r) => r.msPerStep)),
    tokensPerSecMedian: median(train.map((r) => r.tokensPerSec)),
  };
  if (summary.done) await writeJsonAtomic(finalPath, summary);
  optimizer.dispose();
  model.dispose();
  return summary;
}

async function readFinal(path: string): Promise<RunSummary | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as RunSummary;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof SyntaxError) return null;
    throw e;
  }
}

/** Reads the pending per-step tensors and averages them into a train record (timings filled in by the caller). */
async function trainRecord(
  step: number,
  pending: { scalars: Tensor; routing: Tensor[] }[],
  shapes: RoutingShape[],
  layerIndices: number[],
  lr: number,
  tokensPerStep: number,
): Promise<TrainRecord> {
  const n = pending.length;
  const sums = [0, 0, 0];
  const perLayer: Float32Array[][] = shapes.map(() => []);
  for (const p of pending) {
    const s = await p.scalars.data();
    for (let i = 0; i < 3; i++) sums[i] += s[i];
    for (let l = 0; l < p.routing.length; l++) perLayer[l].push((await p.routing[l].data()) as Float32Array);
  }
  return {
    kind: "train",
    step,
    loss: sums[0] / n,
    lmLoss: sums[1] / n,
    auxLoss: sums[2] / n,
    lr,
    tokens: step * tokensPerStep,
    tokensPerSec: 0,
    msPerStep: 0,
    routing: shapes.map((shape, l) => averageRouting(layerIndices[l], shape, perLayer[l])),
  };
}

/**
 * Loads the newest readable checkpoint of `dir` (falling back to older ones), or null when there is none. A
 * damaged checkpoint skipped on the way is reported to `warn` and renamed aside (`<name>.damaged-<time>`): the
 * resumed run writes that step's checkpoint again, which would otherwise overwrite the evidence. When no
 * checkpoint is readable nothing is moved and the error lists them all (the user decides, e.g. `--force`).
 */
async function restoreNewest(
  dir: string,
  config: RunConfig,
  target: {
    model: Parameters<typeof saveCheckpoint>[1]["model"];
    optimizer: AdamW;
    gens: ReturnType<typeof runGenerators>;
  },
  warn: (message: string) => void,
): Promise<{ step: number; path: string; meta: CheckpointMeta } | null> {
  const all = (await listCheckpoints(dir)).reverse();
  const errors: string[] = [];
  const damaged: { path: string; why: string }[] = [];
  for (const file of all) {
    try {
      const { step, config: stored } = await loadCheckpoint(file.path, {
        model: target.model,
        optimizer: target.optimizer,
        generator: target.gens.model,
      });
      const meta = stored as unknown as CheckpointMeta;
      if (JSON.stringify(meta.run) !== JSON.stringify(config)) {
        throw new Error(
          `runLm: the checkpoint ${file.path} was written by a different config; resume with the same config ` +
            `or start afresh without --resume`,
        );
      }
      target.gens.moe.setState(meta.generators.moe);
      target.gens.data.setState(meta.generators.data);
      const stamp = new Date().toISOString().replace(/[:.]/g, "-");
      for (const d of damaged) {
        const aside = `${d.path}.damaged-${stamp}`;
        await Deno.rename(d.path, aside);
        warn(`resume: skipped the damaged checkpoint ${d.path} (${d.why}); kept it as ${aside}`);
      }
      return { step, path: file.path, meta };
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      errors.push((e as Error).message); // a damaged file: try the previous checkpoint
      damaged.push({ path: file.path, why: (e as Error).message.replace(/\s+/g, " ") });
    }
  }
  if (errors.length) throw new Error(`runLm: no readable checkpoint in ${dir}:\n  ${errors.join("\n  ")}`);
  return null;
}
