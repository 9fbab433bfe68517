/**
 * The run files of `exp:routing-recovery`: one file per run, `runs/<cell>/<arm>-seed<s>.json` (a finished run's
 * {@link RunRecord}) or `….failed.json` (a run that threw, with the error), each written atomically (temporary
 * file, fsync, rename). Several processes can therefore write one output folder at once (shards on other
 * machines, parallel workers): they never write the same file, and a reader sees a run whole or not at all. A
 * run killed midway leaves no file and runs again (runs take seconds, so they keep no checkpoints).
 *
 * @module
 */
import { joinPath, writeJsonAtomic } from "../common/io.ts";
import type { ArmRole, PlannedRun } from "./plan.ts";
import type { RunMetrics } from "./train.ts";

/** A finished run (its file, and a line of `metrics.jsonl`). */
export interface RunRecord extends RunMetrics {
  /** Record kind. */
  kind: "run";
  /** Run id. */
  id: string;
  /** Cell id. */
  cell: string;
  /** Arm name (a registry name, or `frozen` / `oracle`). */
  arm: string;
  /** The registry estimator it ran. */
  estimator: string;
  /** Learned, control or reference (`plan.ts`). */
  role: ArmRole;
  /** Seed. */
  seed: number;
  /** Experts per token of the arm. */
  k: number;
  /** Experts E. */
  experts: number;
  /** Clusters C. */
  clusters: number;
  /** Input noise σ. */
  noise: number;
  /** Wall seconds of the run (the only field that differs between identical runs). */
  seconds: number;
}

/** A run that threw. */
export interface FailedRecord {
  /** Record kind. */
  kind: "failed";
  /** Run id. */
  id: string;
  /** The error (message and stack). */
  error: string;
}

/** The file of a finished run. */
export function runFile(out: string, run: PlannedRun): string {
  return joinPath(out, "runs", run.cell.id, `${run.arm.name}-seed${run.seed}.json`);
}

/** The file of a failed run. */
export function failedFile(out: string, run: PlannedRun): string {
  return runFile(out, run).replace(/\.json$/, ".failed.json");
}

async function readJson<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new Error(`${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The record of a finished run, or null. */
export function readRun(out: string, run: PlannedRun): Promise<RunRecord | null> {
  return readJson<RunRecord>(runFile(out, run));
}

/** The record of a failed run, or null. */
export function readFailed(out: string, run: PlannedRun): Promise<FailedRecord | null> {
  return readJson<FailedRecord>(failedFile(out, run));
}

/** Writes a finished run (and removes an earlier failure record of it). */
export async function writeRun(out: string, run: PlannedRun, record: RunRecord): Promise<void> {
  await writeJsonAtomic(runFile(out, run), record);
  await Deno.remove(failedFile(out, run)).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
}

/** Writes a failed run. */
export async function writeFailed(out: string, run: PlannedRun, error: string): Promise<void> {
  const record: FailedRecord = { kind: "failed", id: run.id, error };
  await writeJsonAtomic(failedFile(out, run), record);
}

/** How many run files (finished or failed) `out/runs` holds, whatever config wrote them. */
export async function countRunFiles(out: string): Promise<{ finished: number; failed: number }> {
  let finished = 0, failed = 0;
  const walk = async (dir: string) => {
    try {
      for await (const e of Deno.readDir(dir)) {
        if (e.isDirectory) await walk(joinPath(dir, e.name));
        else if (e.name.endsWith(".failed.json")) failed++;
        else if (e.name.endsWith(".json")) finished++;
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  };
  await walk(joinPath(out, "runs"));
  return { finished, failed };
}
