/**
 * Sharded LM sweeps (`common/shard.ts`): `--shard i/n` runs only the (arm, seed) runs at positions i − 1 modulo n
 * of the canonical order (`experiment_plan.ts`) into a shared `--out`, and `--aggregate-only` builds the report
 * from whatever finished there.
 *
 * A shard takes no folder lock: each run has its own folder, locked while that run trains, and every file is
 * written atomically (or appended with a torn-line repair), so shards on several machines may write one folder at
 * once. `config.json` is written by the first shard and checked by every other: a shard started with another
 * config is refused, naming the fields that differ. A shard whose runs already exist is refused unless `--resume`
 * (which skips the finished ones and continues the others from their checkpoints); `--force` is refused. A shard
 * writes no report; a failed run leaves its error in `runs/<arm>-seed<s>/failed.json` for `--aggregate-only`.
 *
 * `--aggregate-only --out DIR` reads the config from `DIR/config.json`, reports the runs that finished and names
 * the others (not started, unfinished, failed); they count toward no result. It exits non-zero when any run is
 * missing, after writing the report.
 *
 * @module
 */
import { join } from "node:path";
import { type CliOptions, parseConfig } from "../common/config.ts";
import { UserError } from "../common/errors.ts";
import { assertUnlocked } from "../common/lock.ts";
import { formatDuration } from "../common/progress.ts";
import { openShardFolder, type Shard, shardItems, shardLabel, writeShardEnv } from "../common/shard.ts";
import {
  ensureStoredConfig,
  readStoredConfig,
  type StoredConfig,
  type StoredConfigKind,
} from "../common/stored_config.ts";
import { prepareLmData } from "./data.ts";
import type { LmExperiment, LmExperimentConfig } from "./experiment_schema.ts";
import { isDone, listRunDirs, planJobs } from "./experiment_plan.ts";
import { incompleteError, reportFolder } from "./experiment_report.ts";
import { executeJobs, execution, executionWords, type LmExperimentResult } from "./experiment_execution.ts";

/** How `config.json` of an LM experiment's folder is read and checked (`common/stored_config.ts`). */
export function storedKind(exp: LmExperiment): StoredConfigKind<LmExperimentConfig> {
  return {
    experiment: exp.definition.name,
    parse: (raw, where) => parseConfig(exp.definition.schema, raw, where),
  };
}

/** Runs shard `shard` of the experiment into `cli.out` (see the module docs). */
export async function runLmShard(
  exp: LmExperiment,
  config: LmExperimentConfig,
  cli: CliOptions,
  shard: Shard,
  stored: StoredConfig<LmExperimentConfig>,
  dataCacheDir: string,
  log: (line: string) => void,
): Promise<LmExperimentResult> {
  const out = cli.out;
  const label = shardLabel(shard);
  await openShardFolder(out, cli.force);
  await ensureStoredConfig(out, stored, storedKind(exp), `--shard ${label}`);
  const perShard = Math.ceil(config.arms.length * config.seeds / shard.count);
  const x = execution(cli.jobs, perShard);
  const mine = shardItems(await planJobs(exp, config, out, x.autoThreads, cli.resume), shard);
  const existing = new Set(await listRunDirs(out));
  const started = mine.filter((j) => existing.has(j.name));
  if (started.length && !cli.resume) {
    throw new UserError(
      `${out} already holds ${started.length} of the ${mine.length} runs of shard ${label}; pass --resume to ` +
        "continue them",
    );
  }
  // A run another process (this shard started twice) is still training is refused before anything runs.
  for (const j of started) assertUnlocked(j.dir);
  await writeShardEnv(out, shard, { name: config.device }, {
    jobs: x.parallel,
    mode: x.inProcess ? "in-process, sequential" : "subprocesses",
  });
  const t0 = performance.now();
  const skipped = new Set<string>();
  for (const j of started) if (await isDone(j.dir)) skipped.add(j.name);
  const todo = mine.filter((j) => !skipped.has(j.name));
  log(
    `${exp.definition.name} (${cli.preset}) shard ${label}: ${mine.length} of ${config.arms.length * config.seeds} ` +
      `runs, ${todo.length} to do${skipped.size ? ` (--resume: ${skipped.size} completed skipped)` : ""}; ` +
      `${executionWords(x, mine[0]?.config.threads ?? x.autoThreads)}; out ${out}`,
  );
  const results = todo.length ? await executeJobs(todo, x, cli.resume, dataCacheDir, log) : [];
  const failed = results.filter((r) => !r.ok);
  log(
    `shard ${label} done in ${formatDuration((performance.now() - t0) / 1000)}; when every shard has finished: ` +
      `--aggregate-only --out ${out}`,
  );
  if (failed.length) {
    for (const f of failed) log(`--- ${f.name} failed:\n${f.error}`);
    throw new UserError(`${failed.length} run(s) of shard ${label} failed: ${failed.map((f) => f.name).join(", ")}`, {
      hint: `each error is in ${join(out, "runs", "<run>", "failed.json")}; rerun the shard with --resume`,
    });
  }
  return {
    out,
    config,
    runs: mine.map((j) => ({ name: j.name, ok: true, skipped: skipped.has(j.name) })),
    report: "",
  };
}

/** `--aggregate-only`: the report of whatever finished in `out` (see the module docs). */
export async function aggregateLmOnly(
  exp: LmExperiment,
  out: string,
  dataCacheDir: string,
  log: (line: string) => void,
): Promise<LmExperimentResult> {
  const stored = await readStoredConfig(out, storedKind(exp));
  // A whole-mode process writing this folder will write its own report.
  assertUnlocked(out);
  const config = stored.config;
  // Run names and folders only (threads: each run's own, read from its folder).
  const jobs = await planJobs(exp, config, out, 1, true);
  const existing = new Set(await listRunDirs(out));
  const notStarted = jobs.filter((j) => !existing.has(j.name));
  const threads = [...new Set(jobs.filter((j) => existing.has(j.name)).map((j) => j.config.threads))]
    .sort((a, b) => a - b);
  const data = await prepareLmData(jobs[0].config, dataCacheDir);
  const { agg, report } = await reportFolder(exp, config, out, jobs, data, {
    preset: stored.preset,
    command: stored.command,
    execution: `run in shards (each shard's machine in env.shard-<i>-of-<n>.json), ` +
      `${threads.length ? threads.join(" or ") : "?"} matmul thread(s) per run`,
  }, Object.fromEntries(notStarted.map((j) => [j.name, "no run folder: its shard has not run (or not yet)"])));
  log(
    `${exp.definition.name}: report of ${jobs.length - agg.incomplete.length}/${jobs.length} runs ` +
      `(${notStarted.length} not started, ${agg.incomplete.length - notStarted.length} unfinished or failed): ` +
      join(out, "report.md"),
  );
  for (const c of agg.comparisons) log(`  ${c.verdict.primary}`);
  const err = incompleteError(agg, out, "run the missing shards (or rerun a shard with --resume)");
  if (err) throw err;
  return { out, config, runs: [], report };
}
