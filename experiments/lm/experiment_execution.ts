/**
 * How an LM experiment executes its runs in this process (parallel subprocesses or in-process, threads per run),
 * and the execution itself with progress lines and a `failed.json` per failed run (removed when the run later
 * succeeds). Shared by the whole run and the shards.
 *
 * @module
 */
import { join } from "node:path";
import { writeJsonAtomic } from "../common/io.ts";
import { canRunSubprocesses } from "../common/subprocess.ts";
import { type JobResult, type RunJob, runJobs } from "./experiment_jobs.ts";
import { FAILED_FILE } from "./experiment_plan.ts";
import { progressPrinter } from "./experiment_progress.ts";
import type { LmExperimentConfig } from "./experiment_schema.ts";

/** What `runLmExperiment` returns (null for `--help`). */
export interface LmExperimentResult {
  /** The output folder. */
  out: string;
  /** The parsed config. */
  config: LmExperimentConfig;
  /** The runs this invocation was responsible for (a shard's only), with whether each succeeded. */
  runs: { name: string; ok: boolean; skipped: boolean }[];
  /** The markdown report ("" for a shard, which writes none). */
  report: string;
}

/** Logical cores of this machine. */
export function cores(): number {
  const n = (globalThis.navigator as { hardwareConcurrency?: number } | undefined)?.hardwareConcurrency ?? 1;
  return Math.max(1, Math.floor(n));
}

/** How runs execute in this process: parallel subprocesses, or in-process one at a time. */
export interface Execution {
  /** Runs at a time. */
  parallel: number;
  /** Whether the runs run in this process. */
  inProcess: boolean;
  /** Matmul threads per run when the config leaves them to the runner. */
  autoThreads: number;
}

/** The execution for `runs` runs with `--jobs` (default one per core). */
export function execution(jobs: number | undefined, runs: number): Execution {
  const subprocesses = canRunSubprocesses();
  const wanted = Math.max(1, Math.min(jobs ?? cores(), runs));
  const inProcess = wanted === 1 || !subprocesses;
  const parallel = inProcess ? 1 : wanted;
  // One run per core when the jobs fill the machine; otherwise share the spare cores among the runs' matmuls.
  return { parallel, inProcess, autoThreads: Math.max(1, Math.floor(cores() / parallel)) };
}

/** The words of the setup table's execution row. */
export function executionWords(x: Execution, threads: number): string {
  return `${x.inProcess ? "in-process, sequential" : `${x.parallel} parallel subprocesses`}, ` +
    `${threads} matmul thread(s) per run`;
}

/**
 * Runs `todo` with progress lines; a failed run's error is also written to its folder's `failed.json` (so that
 * `--aggregate-only`, possibly on another machine, can name it).
 */
export async function executeJobs(
  todo: RunJob[],
  x: Execution,
  resume: boolean,
  dataCacheDir: string,
  log: (line: string) => void,
): Promise<JobResult[]> {
  const results = await runJobs(todo, {
    resume,
    dataCacheDir,
    jobs: x.parallel,
    inProcess: x.inProcess,
    ...progressPrinter(todo, log),
  });
  for (const [i, r] of results.entries()) {
    const file = join(todo[i].dir, FAILED_FILE);
    if (!r.ok) await writeJsonAtomic(file, { error: r.error ?? "failed" });
    else {
      await Deno.remove(file).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
    }
  }
  return results;
}
