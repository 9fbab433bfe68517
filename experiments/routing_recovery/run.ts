/**
 * Runs `exp:routing-recovery` into an output folder, in one of three modes:
 *
 * - **whole** (default): claims `--out` (refused when it holds runs, unless `--resume` continues them or
 *   `--force` moves the folder aside; locked while this process works), runs every missing run — in N worker
 *   subprocesses (`--jobs N`, default one per core; in this process with `--jobs 1` or without `--allow-run`) —
 *   then writes the report. Exits non-zero (a UserError)
 *   when a run failed or is missing, after writing the report of the others.
 * - **shard** (`--shard i/n`): runs only shard i of n (a disjoint, deterministic subset, see `plan.ts`) into a
 *   folder that other shards, on this machine or others, may be writing at the same time: no folder lock, one
 *   atomically written file per run, `config.json` written by the first shard and checked by the others. A shard
 *   whose own runs already exist is refused unless `--resume` (which skips them). It writes no report.
 * - **aggregate only** (`--aggregate-only`): builds the report from whatever finished in the folder (config from
 *   its `config.json`), and names the missing and failed runs; exits non-zero when some are.
 *
 * Files: `config.json`, `env.json` (a shard: `env.shard-<i>-of-<n>.json`), `runs/<cell>/<arm>-seed<s>.json`
 * (`store.ts`), `report.md`, `plots/*.svg`, `summary.json`, `metrics.jsonl` (`report.ts`), `timing.json` (whole
 * mode).
 *
 * @module
 */
import type { CliOptions } from "../common/config.ts";
import { ConfigError } from "../common/config.ts";
import { UserError } from "../common/errors.ts";
import { claimOutFolder } from "../common/out_folder.ts";
import { assertUnlocked } from "../common/lock.ts";
import { environmentInfo, joinPath, writeJsonAtomic, writeTextAtomic } from "../common/io.ts";
import { formatDuration } from "../common/progress.ts";
import type { RoutingRecoveryConfig } from "./config.ts";
import { type PlannedRun, planRuns, shardRuns } from "./plan.ts";
import { openShardFolder, type Shard, shardLabel, writeShardEnv } from "../common/shard.ts";
import { countRunFiles, readFailed, readRun, type RunRecord } from "./store.ts";
import { runInProcess, runWorkers } from "./execute.ts";
import { canRunSubprocesses } from "../common/subprocess.ts";
import { type Aggregate, aggregate } from "./aggregate.ts";
import { buildReport } from "./report.ts";
import { configPath, ensureStoredConfig, readStoredConfig, type StoredConfig } from "./outputs.ts";

/** The command-line options this experiment uses, plus its own two. */
export type RoutingRecoveryCli = Pick<CliOptions, "out" | "resume" | "preset"> & {
  force?: boolean;
  jobs?: number;
  /** Run only this shard. */
  shard?: Shard;
  /** The command shown in config.json. */
  command?: string;
};

/** What a run of the experiment returns. */
export interface RoutingRecoveryResult {
  /** The aggregate (null in shard mode). */
  aggregate: Aggregate | null;
  /** Runs trained by this call. */
  trained: number;
  /** Wall seconds of this call. */
  seconds: number;
}

function cores(): number {
  const n = (globalThis.navigator as { hardwareConcurrency?: number } | undefined)?.hardwareConcurrency ?? 1;
  return Math.max(1, Math.floor(n));
}

async function collect(out: string, planned: readonly PlannedRun[]) {
  const records = new Map<string, RunRecord>();
  const failed = new Map<string, string>();
  for (const r of planned) {
    const rec = await readRun(out, r);
    if (rec) records.set(r.id, rec);
    else {
      const f = await readFailed(out, r);
      if (f) failed.set(r.id, f.error);
    }
  }
  return { records, failed };
}

async function missingRuns(out: string, runs: readonly PlannedRun[]): Promise<PlannedRun[]> {
  const missing: PlannedRun[] = [];
  for (const r of runs) if (!(await readRun(out, r))) missing.push(r);
  return missing;
}

/** Aggregates the folder's runs and writes the report files; returns the aggregate. */
async function writeReport(out: string, config: RoutingRecoveryConfig, preset: string): Promise<Aggregate> {
  const { runs, skipped } = planRuns(config);
  const { records, failed } = await collect(out, runs);
  const agg = aggregate(config, runs, skipped, records, failed);
  for (const f of buildReport(config, agg, preset)) await writeTextAtomic(joinPath(out, f.path), f.text);
  return agg;
}

function incompleteError(agg: Aggregate, out: string): UserError | null {
  const failed = Object.keys(agg.failed);
  if (!failed.length && !agg.missing.length) return null;
  return new UserError(
    `${failed.length} run(s) failed and ${agg.missing.length} are missing; they are left out of the report` +
      (failed.length ? ` (failed: ${failed.slice(0, 5).join(", ")}${failed.length > 5 ? ", …" : ""})` : ""),
    { hint: `see ${joinPath(out, "report.md")}; continue with --resume (or run the missing shards)` },
  );
}

/** `--aggregate-only`: the report of whatever finished in `out`. */
export async function aggregateOnly(out: string, log: (line: string) => void = console.log): Promise<Aggregate> {
  const stored = await readStoredConfig(out);
  assertUnlocked(out);
  const agg = await writeReport(out, stored.config, stored.preset);
  log(
    `routing-recovery: report of ${agg.records.length}/${agg.planned} runs (${agg.missing.length} missing, ` +
      `${Object.keys(agg.failed).length} failed): ${joinPath(out, "report.md")}`,
  );
  const err = incompleteError(agg, out);
  if (err) throw err;
  return agg;
}

async function runShard(
  config: RoutingRecoveryConfig,
  cli: RoutingRecoveryCli,
  shard: Shard,
  log: (line: string) => void,
): Promise<RoutingRecoveryResult> {
  const t0 = performance.now();
  const out = cli.out;
  if ((cli.jobs ?? 1) > 1) throw new ConfigError("--jobs cannot be combined with --shard: use more shards instead");
  await openShardFolder(out, cli.force ?? false);
  await ensureStoredConfig(out, stored(config, cli), `--shard ${shardLabel(shard)}`);
  await writeShardEnv(out, shard, { name: "cpu", adapter: "none (tiny model on the CPU)" });
  const mine = shardRuns(planRuns(config).runs, shard);
  const todo = await missingRuns(out, mine);
  if (todo.length < mine.length && !cli.resume) {
    throw new UserError(
      `${out} already holds ${mine.length - todo.length} of the ${mine.length} runs of shard ` +
        `${shard.index}/${shard.count}; pass --resume to skip them`,
    );
  }
  log(
    `routing-recovery shard ${shard.index}/${shard.count}: ${todo.length} of its ${mine.length} runs to do; out ${out}`,
  );
  const failed = await runInProcess(config, out, todo, log);
  const seconds = (performance.now() - t0) / 1000;
  log(
    `shard ${shard.index}/${shard.count} done in ${formatDuration(seconds)}; when every shard has finished: ` +
      `--aggregate-only --out ${out}`,
  );
  if (failed.length) throw new UserError(`${failed.length} run(s) of this shard failed: ${failed.join(", ")}`);
  return { aggregate: null, trained: todo.length, seconds };
}

function stored(config: RoutingRecoveryConfig, cli: RoutingRecoveryCli): StoredConfig {
  return {
    experiment: "routing-recovery",
    preset: cli.preset,
    command: cli.command ?? "deno task exp:routing-recovery",
    config,
  };
}

/** Runs (or resumes, or runs one shard of) the experiment; see the module docs. */
export async function runRoutingRecovery(
  config: RoutingRecoveryConfig,
  cli: RoutingRecoveryCli,
  log: (line: string) => void = console.log,
): Promise<RoutingRecoveryResult> {
  if (cli.shard) return await runShard(config, cli, cli.shard, log);
  const t0 = performance.now();
  const out = cli.out;
  const lock = await claimOutFolder(out, {
    resume: cli.resume,
    force: cli.force ?? false,
    holds: async () => {
      const n = await countRunFiles(out);
      const total = n.finished + n.failed;
      return total > 0 ? `${total} run file(s) (${n.finished} finished)` : null;
    },
    log,
  });
  try {
    // Without --resume the folder holds no runs (claimOutFolder refused or moved them): its config is replaced.
    if (cli.resume) await ensureStoredConfig(out, stored(config, cli), "--resume");
    else await writeJsonAtomic(configPath(out), stored(config, cli));
    const { runs, skipped } = planRuns(config);
    const todo = await missingRuns(out, runs);
    const subprocesses = canRunSubprocesses();
    // Default: one worker per core, as the LM experiments do (--jobs 1 runs in this process).
    const jobs = Math.max(1, Math.min(cli.jobs ?? cores(), todo.length));
    const parallel = subprocesses && jobs > 1;
    await writeJsonAtomic(joinPath(out, "env.json"), {
      ...environmentInfo({ name: "cpu", adapter: "none (tiny model on the CPU)" }),
      jobs: parallel ? jobs : 1,
    });
    const arms = [...new Set(runs.map((r) => r.arm.name))];
    log(
      `routing-recovery (${cli.preset}): ${arms.length} arms × ${config.seeds} seeds over ` +
        `${new Set(runs.map((r) => r.cell.id)).size} cell(s) = ${runs.length} runs, ${todo.length} to do` +
        `${skipped.length ? ` (${skipped.length} estimator/cell pairs left out)` : ""}; ` +
        `${parallel ? `${jobs} worker processes` : "in-process"}; out ${out}` +
        (jobs > 1 && !subprocesses ? " (no --allow-run: running in-process)" : ""),
    );
    if (parallel) await runWorkers(out, jobs, log);
    else await runInProcess(config, out, todo, log);
    const agg = await writeReport(out, config, cli.preset);
    const seconds = (performance.now() - t0) / 1000;
    await writeJsonAtomic(joinPath(out, "timing.json"), {
      seconds,
      trainedRuns: todo.length,
      jobs: parallel ? jobs : 1,
      runSeconds: agg.records.reduce((s, r) => s + r.seconds, 0),
    });
    log(
      `routing-recovery: ${runs.length} runs (${todo.length} now) in ${formatDuration(seconds)}; report: ` +
        joinPath(out, "report.md"),
    );
    const err = incompleteError(agg, out);
    if (err) throw err;
    return { aggregate: agg, trained: todo.length, seconds };
  } finally {
    lock.release();
  }
}
