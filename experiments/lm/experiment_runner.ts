/**
 * The driver shared by the LM experiments' entry points: command line → config → data (tokenized once) →
 * arms × seeds runs (parallel subprocesses, or sequential in-process) with progress lines → aggregation →
 * `report.md`, plots and `summary.json`. Three modes:
 *
 * - **whole** (default): claims `--out`, runs every run, writes the report;
 * - **shard** (`--shard i/n`): runs only shard i of n of the (arm, seed) runs into a folder other shards may be
 *   writing at once, and writes no report (`experiment_shards.ts`);
 * - **aggregate only** (`--aggregate-only --out DIR`): the report of whatever finished in DIR, naming what is
 *   missing (`experiment_shards.ts`).
 *
 * Output folder (`--out`, default `results/<experiment>/<preset>`):
 * `config.json` (experiment, preset, command, resolved config), `env.json` (a shard: `env.shard-<i>-of-<n>.json`),
 * `runs/<arm>-seed<s>/` (one per run, see `run.ts`; a failed run also holds `failed.json` with its error),
 * `plots/*.svg`, `report.md`, `summary.json`. The tokenized data is cached in `results/cache/lm-data` (shared by
 * every experiment and preset with the same data settings).
 *
 * Safety: an `--out` that already holds runs is refused unless `--resume` (continue them) or `--force` (move the
 * folder aside to `<out>.replaced-<time>`, never delete) is given; `--out` (whole mode) and every run folder are
 * locked while written (`.lock`, see `common/lock.ts`); workers stop when this process ends, even by SIGKILL
 * (their stdin pipe closes, see `experiment_jobs.ts`).
 *
 * @module
 */
import { join } from "node:path";
export type { LmExperimentResult } from "./experiment_execution.ts";
import { formatConfigHelp, parseExperimentCli } from "../common/config.ts";
import { environmentInfo, writeJsonAtomic } from "../common/io.ts";
import { claimOutFolder } from "../common/out_folder.ts";
import { formatDuration } from "../common/progress.ts";
import { aggregateOnlyOut, shardHelp, splitShardFlags } from "../common/shard_cli.ts";
import { DEFAULT_DATA_CACHE_DIR, prepareLmData } from "./data.ts";
import { canRunSubprocesses } from "../common/subprocess.ts";
import type { LmExperiment } from "./experiment_schema.ts";
import { describeRuns, isDone, listRunDirs, planJobs } from "./experiment_plan.ts";
import { cores, executeJobs, execution, executionWords, type LmExperimentResult } from "./experiment_execution.ts";
import { incompleteError, reportFolder } from "./experiment_report.ts";
import { aggregateLmOnly, runLmShard, storedKind } from "./experiment_shards.ts";
import { ensureStoredConfig } from "../common/stored_config.ts";

/** Options of {@link runLmExperiment} (for tests and embedding; the CLI needs none). */
export interface LmExperimentOptions {
  /** Where progress and messages go (default `console.log`). */
  log?: (line: string) => void;
  /** The data cache folder (default `results/cache/lm-data`). */
  dataCacheDir?: string;
  /** The command shown in the report (default: reconstructed from `argv`, without `--shard`). */
  command?: string;
}

/**
 * Runs an LM experiment from its command-line arguments (see the module docs). Throws a ConfigError for a bad
 * command line or config, and a UserError listing the unfinished runs after writing the report of the others.
 */
export async function runLmExperiment(
  exp: LmExperiment,
  argv: string[],
  options: LmExperimentOptions = {},
): Promise<LmExperimentResult | null> {
  const log = options.log ?? ((line: string) => console.log(line));
  const dataCacheDir = options.dataCacheDir ?? DEFAULT_DATA_CACHE_DIR;
  // The LM experiments run arms × seeds in parallel subprocesses, so they take --jobs.
  const def = { ...exp.definition, parallelJobs: true };
  const own = splitShardFlags(argv);
  if (own.aggregateOnly) return await aggregateLmOnly(exp, aggregateOnlyOut(own.rest), dataCacheDir, log);
  const { config, cli } = parseExperimentCli(def, own.rest);
  if (cli.help) {
    log(formatConfigHelp(def) + "\n" + shardHelp("(arm, seed)"));
    return null;
  }
  const out = cli.out;
  const command = options.command ??
    `deno task exp:${def.name}${own.rest.length ? " " + own.rest.join(" ") : ""}`;
  const stored = { experiment: def.name, preset: cli.preset, command, config, baseline: exp.baseline };
  if (own.shard) return await runLmShard(exp, config, cli, own.shard, stored, dataCacheDir, log);

  const x = execution(cli.jobs, config.arms.length * config.seeds);
  // Every run config is validated before anything runs.
  const jobList = await planJobs(exp, config, out, x.autoThreads, cli.resume);

  // Claim --out before writing: refuse to replace finished runs silently, lock it against a second writer.
  const outLock = await claimOutFolder(out, {
    resume: cli.resume,
    force: cli.force,
    holds: describeRuns,
    lockedParts: async (o) => (await listRunDirs(o)).map((name) => join(o, "runs", name)),
    log,
  });
  try {
    // --resume continues the folder's runs, so its config must be theirs (a sharded sweep's folder included).
    if (cli.resume) await ensureStoredConfig(out, stored, storedKind(exp), "--resume");
    else await writeJsonAtomic(join(out, "config.json"), stored);
    await writeJsonAtomic(join(out, "env.json"), {
      ...environmentInfo({ name: config.device }),
      jobs: x.parallel,
      mode: x.inProcess ? "in-process, sequential" : "subprocesses",
    });

    const t0 = performance.now();
    const data = await prepareLmData(jobList[0].config, dataCacheDir);
    log(
      `${def.name} (${cli.preset}): ${config.arms.join(", ")} × ${config.seeds} seeds = ${jobList.length} runs of ` +
        `${config.steps} steps; vocab ${data.vocabSize}, ${data.train.length.toLocaleString("en-US")} train tokens; ` +
        `${x.inProcess ? "in-process, one run at a time" : `${x.parallel} parallel subprocesses`}, ` +
        `${jobList[0].config.threads} thread(s) per run; out ${out}` +
        (!canRunSubprocesses() && (cli.jobs ?? cores()) > 1 ? " (no --allow-run: running in-process)" : ""),
    );

    const skipped = new Set<string>();
    if (cli.resume) {
      for (const j of jobList) if (await isDone(j.dir)) skipped.add(j.name);
      if (skipped.size) log(`--resume: ${skipped.size} completed run(s) skipped`);
    }
    const todo = jobList.filter((j) => !skipped.has(j.name));
    const results = await executeJobs(todo, x, cli.resume, dataCacheDir, log);
    const failed = results.filter((r) => !r.ok);

    const { agg, report } = await reportFolder(exp, config, out, jobList, data, {
      preset: cli.preset,
      command,
      execution: executionWords(x, jobList[0].config.threads),
    }, Object.fromEntries(failed.map((f) => [f.name, f.error ?? "failed"])));
    log(`done in ${formatDuration((performance.now() - t0) / 1000)}; report: ${join(out, "report.md")}`);
    for (const c of agg.comparisons) log(`  ${c.verdict.primary}`);
    // Any unfinished run (failed now, or left unfinished earlier) fails the command, after the honest report:
    // each failure in full in the log, then one error line.
    for (const f of failed) log(`--- ${f.name} failed:\n${f.error}`);
    const err = incompleteError(agg, out, "continue them with --resume");
    if (err) throw err;
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
