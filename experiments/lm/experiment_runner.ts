/**
 * The driver shared by the LM experiments' entry points: command line → config → data (tokenized once) →
 * arms × seeds runs (parallel subprocesses, or sequential in-process) with progress lines → aggregation →
 * `report.md`, plots and `summary.json`.
 *
 * Output folder (`--out`, default `results/<experiment>/<preset>`):
 * `config.json` (experiment, preset, command, resolved config), `env.json`, `runs/<arm>-seed<s>/` (one per run,
 * see `run.ts`), `plots/*.svg`, `report.md`, `summary.json`. The tokenized data is cached in
 * `results/cache/lm-data` (shared by every experiment and preset with the same data settings).
 *
 * Safety: an `--out` that already holds runs is refused unless `--resume` (continue them) or `--force` (move the
 * folder aside to `<out>.replaced-<time>`, never delete) is given; `--out` and every run folder are locked while
 * written (`.lock`, see `common/lock.ts`); workers stop when this process ends, even by SIGKILL (their stdin
 * pipe closes, see `experiment_jobs.ts`).
 *
 * @module
 */
import { join } from "node:path";
import { ConfigError, formatConfigHelp, parseExperimentCli } from "../common/config.ts";
import { environmentInfo, writeJsonAtomic } from "../common/io.ts";
import { UserError } from "../common/errors.ts";
import { claimOutFolder } from "../common/out_folder.ts";
import { formatDuration, formatProgress } from "../common/progress.ts";
import { aggregateRuns, loadRunData } from "./aggregate.ts";
import { DEFAULT_DATA_CACHE_DIR, prepareLmData } from "./data.ts";
import { type JobProgress, type RunJob, runJobs } from "./experiment_jobs.ts";
import { canRunSubprocesses } from "../common/subprocess.ts";
import { controlArms, type LmExperiment, type LmExperimentConfig, toRunConfig } from "./experiment_schema.ts";
import { writeReport } from "./report.ts";
import { RunConfigError } from "./run_config.ts";

/** Options of {@link runLmExperiment} (for tests and embedding; the CLI needs none). */
export interface LmExperimentOptions {
  /** Where progress and messages go (default `console.log`). */
  log?: (line: string) => void;
  /** The data cache folder (default `results/cache/lm-data`). */
  dataCacheDir?: string;
  /** The command shown in the report (default: reconstructed from `argv`). */
  command?: string;
}

/** What {@link runLmExperiment} returns (null for `--help`). */
export interface LmExperimentResult {
  /** The output folder. */
  out: string;
  /** The parsed config. */
  config: LmExperimentConfig;
  /** The runs, with whether each succeeded. */
  runs: { name: string; ok: boolean; skipped: boolean }[];
  /** The markdown report. */
  report: string;
}

function cores(): number {
  const n = (globalThis.navigator as { hardwareConcurrency?: number } | undefined)?.hardwareConcurrency ?? 1;
  return Math.max(1, Math.floor(n));
}

async function isDone(dir: string): Promise<boolean> {
  try {
    return JSON.parse(await Deno.readTextFile(join(dir, "final.json"))).done === true;
  } catch {
    return false;
  }
}

/** The run folders under `out/runs` (names only; none when the folder does not exist). */
async function listRunDirs(out: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(join(out, "runs"))) if (e.isDirectory) names.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return names.sort();
}

/** What an output folder holds, for the refusal to overwrite it ("6 runs (4 finished)"); null for no runs. */
async function describeRuns(out: string): Promise<string | null> {
  const names = await listRunDirs(out);
  if (!names.length) return null;
  let finished = 0;
  for (const name of names) if (await isDone(join(out, "runs", name))) finished++;
  return `${names.length} run${names.length === 1 ? "" : "s"} (${finished} finished)`;
}

/** The thread count a run was started with (so that `--resume` with another `--jobs` keeps the same config). */
async function storedThreads(dir: string): Promise<number | null> {
  try {
    const t = JSON.parse(await Deno.readTextFile(join(dir, "config.json"))).threads;
    return Number.isInteger(t) ? t : null;
  } catch {
    return null;
  }
}

/**
 * Runs an LM experiment from its command-line arguments (see the module docs). Throws {@link ConfigError} for
 * a bad command line or config, and an `Error` listing the failed runs after writing the report of the others.
 */
export async function runLmExperiment(
  exp: LmExperiment,
  argv: string[],
  options: LmExperimentOptions = {},
): Promise<LmExperimentResult | null> {
  const log = options.log ?? ((line: string) => console.log(line));
  // The LM experiments run arms × seeds in parallel subprocesses, so they take --jobs.
  const def = { ...exp.definition, parallelJobs: true };
  const { config, cli } = parseExperimentCli(def, argv);
  if (cli.help) {
    log(formatConfigHelp(def));
    return null;
  }
  const out = cli.out;
  const command = options.command ?? `deno task exp:${def.name}${argv.length ? " " + argv.join(" ") : ""}`;
  const dataCacheDir = options.dataCacheDir ?? DEFAULT_DATA_CACHE_DIR;

  const runsWanted = config.arms.length * config.seeds;
  const subprocesses = canRunSubprocesses();
  const jobs = Math.max(1, Math.min(cli.jobs ?? cores(), runsWanted));
  const inProcess = jobs === 1 || !subprocesses;
  const parallel = inProcess ? 1 : jobs;
  // One run per core when the jobs fill the machine; otherwise share the spare cores among the runs' matmuls.
  const autoThreads = Math.max(1, Math.floor(cores() / parallel));

  // Expand arms × seeds; every run config is validated before anything runs.
  const jobList: RunJob[] = [];
  for (const arm of config.arms) {
    for (let seed = 0; seed < config.seeds; seed++) {
      const name = `${arm}-seed${seed}`;
      const dir = join(out, "runs", name);
      const threads = config.threads ?? (cli.resume ? (await storedThreads(dir)) ?? autoThreads : autoThreads);
      try {
        jobList.push({ name, arm, seed, dir, config: toRunConfig(exp, config, arm, seed, threads) });
      } catch (e) {
        if (e instanceof RunConfigError) {
          throw new ConfigError(e.message.replace("invalid run config", "invalid config"));
        }
        throw e;
      }
    }
  }

  // Claim --out before writing: refuse to replace finished runs silently, lock it against a second writer.
  const outLock = await claimOutFolder(out, {
    resume: cli.resume,
    force: cli.force,
    holds: describeRuns,
    lockedParts: async (o) => (await listRunDirs(o)).map((name) => join(o, "runs", name)),
    log,
  });
  try {
    await writeJsonAtomic(join(out, "config.json"), {
      experiment: def.name,
      preset: cli.preset,
      command,
      config,
      baseline: exp.baseline,
    });
    await writeJsonAtomic(join(out, "env.json"), {
      ...environmentInfo({ name: config.device }),
      jobs: parallel,
      mode: inProcess ? "in-process, sequential" : "subprocesses",
    });

    const t0 = performance.now();
    const data = await prepareLmData(jobList[0].config, dataCacheDir);
    log(
      `${def.name} (${cli.preset}): ${config.arms.join(", ")} × ${config.seeds} seeds = ${jobList.length} runs of ` +
        `${config.steps} steps; vocab ${data.vocabSize}, ${data.train.length.toLocaleString("en-US")} train tokens; ` +
        `${inProcess ? "in-process, one run at a time" : `${parallel} parallel subprocesses`}, ` +
        `${jobList[0].config.threads} thread(s) per run; out ${out}` +
        (!subprocesses && jobs > 1 ? " (no --allow-run: running in-process)" : ""),
    );

    const skipped = new Set<string>();
    if (cli.resume) {
      for (const j of jobList) if (await isDone(j.dir)) skipped.add(j.name);
      if (skipped.size) log(`--resume: ${skipped.size} completed run(s) skipped`);
    }
    const todo = jobList.filter((j) => !skipped.has(j.name));

    // Overall ETA: steps still to do over the step rate of this invocation (all parallel runs together).
    const startStep = new Map<string, number>();
    const current = new Map<string, number>();
    const runStart = new Map<string, number>();
    const seenOutput = new Set<string>();
    const totalSteps = todo.reduce((s, j) => s + j.config.steps, 0);
    const onProgress = (p: JobProgress) => {
      if (!startStep.has(p.name)) {
        startStep.set(p.name, p.note?.startsWith("resumed") ? p.step : 0);
      }
      current.set(p.name, p.step);
      let done = 0, fresh = 0;
      for (const [n, s] of current) {
        done += s;
        fresh += s - (startStep.get(n) ?? 0);
      }
      const elapsed = (performance.now() - t0) / 1000;
      const rate = fresh / elapsed;
      const eta = rate > 0 ? (totalSteps - done) / rate : NaN;
      const overall = `| all ${(100 * done / Math.max(1, totalSteps)).toFixed(0)}% ETA ${formatDuration(eta)}`;
      if (p.note) {
        log(`[${p.name}] step ${p.step}/${p.steps} ${p.note} ${overall}`);
        return;
      }
      const line = formatProgress({
        label: p.name,
        step: p.step,
        steps: p.steps,
        loss: p.loss,
        tokensPerSec: p.tokensPerSec,
        elapsedSec: p.elapsedSec ?? (performance.now() - runStart.get(p.name)!) / 1000,
      });
      log(`${line} ${overall}`);
    };

    const results = await runJobs(todo, {
      resume: cli.resume,
      dataCacheDir,
      jobs: parallel,
      inProcess,
      onProgress,
      onStart: (name) => runStart.set(name, performance.now()),
      // Identical stray lines (e.g. every subprocess's WebGPU probe warning) are printed once.
      onOutput: (name, line) => {
        if (seenOutput.has(line)) return;
        seenOutput.add(line);
        log(`[${name}] ${line}`);
      },
    });
    const failed = results.filter((r) => !r.ok);

    const runData = await Promise.all(jobList.map((j) => loadRunData(j.dir, j.arm, j.seed)));
    const agg = aggregateRuns(runData, {
      arms: config.arms,
      baseline: exp.baseline,
      steps: config.steps,
      targetLoss: config.targetLoss,
      targetFraction: config.targetFraction,
      primary: exp.primary,
      errors: Object.fromEntries(failed.map((f) => [f.name, f.error ?? "failed"])),
      controls: controlArms(exp, config.arms),
      claimedEffect: exp.claimedEffect,
    });
    const report = await writeReport(out, agg, {
      experiment: def.name,
      title: exp.title,
      question: exp.question,
      preset: cli.preset,
      command,
      armDescriptions: Object.fromEntries(Object.entries(exp.arms).map(([k, v]) => [k, v.description])),
      setup: setupRows(config, data, jobList[0].config.threads, parallel, inProcess),
      notes: exp.notes,
    });
    log(`done in ${formatDuration((performance.now() - t0) / 1000)}; report: ${join(out, "report.md")}`);
    for (const c of agg.comparisons) log(`  ${c.verdict.primary}`);
    // Any unfinished run (failed now, or left unfinished earlier) fails the command, after the honest report:
    // each failure in full in the log, then one error line.
    if (failed.length || agg.incomplete.length) {
      for (const f of failed) log(`--- ${f.name} failed:\n${f.error}`);
      throw new UserError(
        `${agg.incomplete.length} run(s) did not finish and are left out of the report: ` +
          agg.incomplete.map((r) => `${r.arm}-seed${r.seed} (step ${r.lastStep}/${r.steps})`).join(", "),
        { hint: `see ${join(out, "report.md")}; continue them with --resume` },
      );
    }
    return {
      out,
      config,
      runs: jobList.map((j) => ({ name: j.name, ok: true, skipped: skipped.has(j.name) })),
      report,
    };
  } finally {
    outLock.release();
  }
}

function setupRows(
  c: LmExperimentConfig,
  data: {
    vocabSize: number;
    train: Int32Array;
    valid: Int32Array;
    ood: Int32Array | null;
    unigram: { valid: number; ood: number | null };
  },
  threads: number,
  jobs: number,
  inProcess: boolean,
): [string, string][] {
  const m = c.model;
  const moeLayers = Array.from({ length: m.layers }, (_, i) => i).filter((i) => i % m.moeEvery === 0);
  return [
    [
      "model",
      `decoder-only, d = ${m.dim}, ${m.layers} layers, ${m.heads} heads, ${m.norm} norm, ` +
      `${m.rope ? "RoPE" : "learned positions"}, ${
        m.tieEmbeddings ? "tied" : "untied"
      } embeddings, dropout ${m.dropout}`,
    ],
    [
      "MoE",
      `layers ${moeLayers.join(", ")}: ${m.experts} ${m.expert} experts (hidden ${m.hidden ?? 4 * m.dim}), ` +
      `top-${m.topK}, ${m.capacityFactor === null ? "dropless" : `capacity factor ${m.capacityFactor}`}, ` +
      `balance ${m.balance.form}/${m.balance.scope} α = ${m.balance.coef}, z-loss ${m.zLossCoef}, ε = ${c.jitterEps}`,
    ],
    [
      "data",
      `SOTU, BPE vocab ${data.vocabSize} (trained on the train split), ${c.data.batchSize} × ` +
      `${c.data.seqLen} tokens per step; ${data.train.length.toLocaleString("en-US")} train / ` +
      `${data.valid.length.toLocaleString("en-US")} valid tokens (held-out documents, ${c.data.validFraction * 100}%)` +
      (data.ood ? `; Moby Dick ${data.ood.length.toLocaleString("en-US")} tokens (out of domain)` : ""),
    ],
    [
      "evaluation",
      `every ${c.evalEvery} steps and at the end, eval mode, ${c.data.evalBatches} fixed batches per ` +
      `split; unigram loss (a floor to beat): valid ${data.unigram.valid.toFixed(3)}` +
      (data.unigram.ood !== null ? `, OOD ${data.unigram.ood.toFixed(3)}` : ""),
    ],
    [
      "optimizer",
      `AdamW lr ${c.optim.lr}, β = (${c.optim.betas.join(", ")}), wd ${c.optim.weightDecay}, ` +
      `${c.optim.warmupSteps} warm-up steps, ${c.optim.schedule} to ` +
      `${Number(c.optim.minLr.toPrecision(4))}, clip ${c.optim.clipNorm}`,
    ],
    [
      "steps",
      `${c.steps} per run, ${c.seeds} seeds per arm (seeds 0…${c.seeds - 1}; the same seed gives every ` +
      `arm the same initial weights and batches)`,
    ],
    [
      "execution",
      `device ${c.device}, ${inProcess ? "in-process, sequential" : `${jobs} parallel subprocesses`}, ` +
      `${threads} matmul thread(s) per run`,
    ],
  ];
}
