/**
 * Executing the runs of `exp:routing-recovery`: in this process one after the other ({@link runInProcess}), or
 * split over `jobs` worker subprocesses (`worker.ts`), each running one shard (`i/jobs`) of the runs that are
 * still missing, into the same output folder (one atomically written file per run, see `store.ts`). A worker
 * stops when this process ends, even by SIGKILL (its stdin pipe closes).
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { setCpuOptions } from "../../core/mod.ts";
import { onShutdown } from "../common/shutdown.ts";
import { formatDuration } from "../common/progress.ts";
import type { RoutingRecoveryConfig } from "./config.ts";
import { type PlannedRun, runSpec } from "./plan.ts";
import { type RunRecord, writeFailed, writeRun } from "./store.ts";
import { trainRun } from "./train.ts";

/** Trains one planned run and writes its file (a failure writes a `.failed.json`); returns whether it finished. */
export async function executeRun(config: RoutingRecoveryConfig, out: string, run: PlannedRun): Promise<boolean> {
  const t0 = performance.now();
  try {
    const metrics = await trainRun(runSpec(config, run.cell, run.arm, run.seed));
    // A diverged run is a failed run: a NaN must never reach a mean.
    const bad = metrics.heldLoss.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new Error(`diverged: held-out loss ${metrics.heldLoss[bad]} at step ${metrics.step[bad]}`);
    const record: RunRecord = {
      kind: "run",
      id: run.id,
      cell: run.cell.id,
      arm: run.arm.name,
      estimator: run.arm.estimator,
      role: run.arm.role,
      seed: run.seed,
      k: run.arm.k,
      experts: run.cell.experts,
      clusters: run.cell.experts * run.cell.clustersPerExpert,
      noise: run.cell.noise,
      ...metrics,
      seconds: (performance.now() - t0) / 1000,
    };
    await writeRun(out, run, record);
    return true;
  } catch (e) {
    await writeFailed(out, run, e instanceof Error ? e.stack ?? e.message : String(e));
    return false;
  }
}

/** One progress line for a finished run. */
export function runLine(run: PlannedRun, done: number, total: number, ok: boolean, elapsed: number): string {
  const eta = done > 0 ? (elapsed / done) * (total - done) : NaN;
  return `[${done}/${total}] ${run.id} ${ok ? "done" : "FAILED"} elapsed ${formatDuration(elapsed)} ETA ${
    formatDuration(eta)
  }`;
}

/** Runs `runs` here, in order, with one matmul thread (the model is tiny); returns the ids that failed. */
export async function runInProcess(
  config: RoutingRecoveryConfig,
  out: string,
  runs: readonly PlannedRun[],
  log: (line: string) => void,
): Promise<string[]> {
  setCpuOptions({ threads: 1 });
  const failed: string[] = [];
  const t0 = performance.now();
  for (let i = 0; i < runs.length; i++) {
    const ok = await executeRun(config, out, runs[i]);
    if (!ok) failed.push(runs[i].id);
    log(runLine(runs[i], i + 1, runs.length, ok, (performance.now() - t0) / 1000));
  }
  return failed;
}

const WORKER = fileURLToPath(new URL("./worker.ts", import.meta.url));

/**
 * Runs the folder's missing runs in `jobs` worker subprocesses (shard i/jobs each, of the runs the worker finds
 * missing in `out`; the config is read from `out/config.json`). Returns the exit code of each worker; a worker's
 * output lines are passed to `log` (prefixed with its shard).
 */
export async function runWorkers(out: string, jobs: number, log: (line: string) => void): Promise<number[]> {
  const one = async (i: number): Promise<number> => {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "--allow-sys=cpus",
        WORKER,
        "--out",
        out,
        "--shard",
        `${i}/${jobs}`,
        "--exit-with-parent",
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const unregister = onShutdown(async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* already exited */ }
      await child.status;
    });
    const relay = async (stream: ReadableStream<Uint8Array>) => {
      let buf = "";
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trimEnd();
          buf = buf.slice(nl + 1);
          if (line) log(`[worker ${i}/${jobs}] ${line}`);
        }
      }
      if (buf.trim()) log(`[worker ${i}/${jobs}] ${buf.trim()}`);
    };
    const relays = Promise.all([relay(child.stdout), relay(child.stderr)]);
    const status = await child.status;
    unregister();
    await child.stdin.close().catch(() => {});
    await relays;
    return status.code;
  };
  return await Promise.all(Array.from({ length: jobs }, (_, i) => one(i + 1)));
}
