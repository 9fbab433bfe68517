/**
 * The progress lines of an LM experiment's runs: one line per report of a run, plus an overall ETA (steps still to
 * do over the step rate of this invocation, all parallel runs together; a resumed run's earlier steps do not count
 * towards the rate).
 *
 * @module
 */
import { formatDuration, formatProgress } from "../common/progress.ts";
import type { JobProgress, RunJob } from "./experiment_jobs.ts";

/** The callbacks that print progress for `todo` (pass them to `runJobs`). */
export function progressPrinter(todo: readonly RunJob[], log: (line: string) => void): {
  onProgress(p: JobProgress): void;
  onStart(name: string): void;
  onOutput(name: string, line: string): void;
} {
  const t0 = performance.now();
  const startStep = new Map<string, number>();
  const current = new Map<string, number>();
  const runStart = new Map<string, number>();
  const seenOutput = new Set<string>();
  const totalSteps = todo.reduce((s, j) => s + j.config.steps, 0);
  return {
    onProgress(p) {
      if (!startStep.has(p.name)) startStep.set(p.name, p.note?.startsWith("resumed") ? p.step : 0);
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
    },
    onStart: (name) => void runStart.set(name, performance.now()),
    // Identical stray lines (e.g. every subprocess's WebGPU probe warning) are printed once.
    onOutput(name, line) {
      if (seenOutput.has(line)) return;
      seenOutput.add(line);
      log(`[${name}] ${line}`);
    },
  };
}
