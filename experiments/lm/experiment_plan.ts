/**
 * The runs of an LM experiment in their canonical order — arms in the config's order, seeds 0 … N−1 within each
 * arm — each with its run folder `runs/<arm>-seed<s>` and its validated run config. `--shard i/n` takes the runs
 * at positions i − 1 modulo n of this list (`common/shard.ts`), so the shards depend only on the config.
 *
 * @module
 */
import { join } from "node:path";
import { ConfigError } from "../common/config.ts";
import type { RunJob } from "./experiment_jobs.ts";
import { type LmExperiment, type LmExperimentConfig, toRunConfig } from "./experiment_schema.ts";
import { RunConfigError } from "./run_config.ts";
import { runName } from "./completion.ts";

/** Whether the run in `dir` has completed (its `final.json` says done). */
export async function isDone(dir: string): Promise<boolean> {
  try {
    return JSON.parse(await Deno.readTextFile(join(dir, "final.json"))).done === true;
  } catch {
    return false;
  }
}

/** The run folders under `out/runs` (names only; none when the folder does not exist). */
export async function listRunDirs(out: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(join(out, "runs"))) if (e.isDirectory) names.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return names.sort();
}

/** What an output folder holds, for the refusal to overwrite it ("6 runs (4 finished)"); null for no runs. */
export async function describeRuns(out: string): Promise<string | null> {
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
 * Every run of `config` in canonical order (see the module docs). A run's matmul threads are the config's
 * `threads`, else (with `resume`) the count it was started with, else `autoThreads`. Every run config is validated
 * here, before anything runs: a bad one is a ConfigError.
 */
export async function planJobs(
  exp: LmExperiment,
  config: LmExperimentConfig,
  out: string,
  autoThreads: number,
  resume: boolean,
): Promise<RunJob[]> {
  const jobs: RunJob[] = [];
  for (const arm of config.arms) {
    for (let seed = 0; seed < config.seeds; seed++) {
      const name = runName(arm, seed);
      const dir = join(out, "runs", name);
      const threads = config.threads ?? (resume ? (await storedThreads(dir)) ?? autoThreads : autoThreads);
      try {
        jobs.push({ name, arm, seed, dir, config: toRunConfig(exp, config, arm, seed, threads) });
      } catch (e) {
        if (e instanceof RunConfigError) {
          throw new ConfigError(e.message.replace("invalid run config", "invalid config"));
        }
        throw e;
      }
    }
  }
  return jobs;
}

/** The file in a run folder that records why the run failed (read only while the run is unfinished). */
export const FAILED_FILE = "failed.json";

/** The error a run folder records for its failure, or undefined. */
export async function readFailure(dir: string): Promise<string | undefined> {
  try {
    const e = JSON.parse(await Deno.readTextFile(join(dir, FAILED_FILE))).error;
    return typeof e === "string" ? e : undefined;
  } catch {
    return undefined;
  }
}
