/**
 * Whether a run finished, so that a report never mixes a run that stopped early into its statistics (a step-300
 * evaluation compared with a step-1000 one is not a comparison). A run is finished only when its `final.json`
 * says it is done at the configured number of steps and its final validation evaluation (at that step) exists.
 *
 * @module
 */
import type { RunData } from "./aggregate.ts";

/** The name of a run's folder and of its job (`<arm>-seed<s>`). */
export function runName(arm: string, seed: number): string {
  return `${arm}-seed${seed}`;
}

/** A run left out of every statistic, and why. */
export interface IncompleteRun {
  /** Arm. */
  arm: string;
  /** Seed. */
  seed: number;
  /** The last step the run logged (train or eval record; 0 when it logged nothing). */
  lastStep: number;
  /** The configured number of steps. */
  steps: number;
  /** Why it does not count as finished. */
  reason: string;
  /** The first line of the run's error, when the runner reported one. */
  error?: string;
}

/** The last step a run logged. */
export function lastStep(run: RunData): number {
  let last = 0;
  for (const r of run.train) last = Math.max(last, r.step);
  for (const r of run.evals) last = Math.max(last, r.step);
  return last;
}

/** The run's final evaluation record of `split` at exactly step `steps`, if any. */
export function finalEvalAt(run: RunData, split: "valid" | "ood", steps: number) {
  return run.evals.filter((e) => e.split === split && e.step === steps).at(-1);
}

/** Null when the run finished `steps` steps; otherwise the reason it did not. */
export function unfinishedReason(run: RunData, steps: number): string | null {
  const f = run.final;
  if (!f && run.train.length === 0 && run.evals.length === 0) {
    return "no records (not started, or stopped before its first record)";
  }
  if (!f) return "no final.json (stopped before the end)";
  if (f.done !== true) return "final.json does not say done";
  if (f.steps !== steps) return `final.json reports ${f.steps} steps, the config ${steps}`;
  const valid = finalEvalAt(run, "valid", steps);
  if (!valid || !Number.isFinite(valid.loss)) return `no validation evaluation at step ${steps}`;
  return null;
}

/**
 * Splits runs into the finished ones and the others (with arm, seed, last step, reason and, from `errors` keyed
 * by {@link runName}, the first line of the error).
 */
export function partitionRuns(
  runs: RunData[],
  steps: number,
  errors: Record<string, string | undefined> = {},
): { finished: RunData[]; incomplete: IncompleteRun[] } {
  const finished: RunData[] = [];
  const incomplete: IncompleteRun[] = [];
  for (const run of runs) {
    const reason = unfinishedReason(run, steps);
    const error = errors[runName(run.arm, run.seed)];
    if (reason === null && error === undefined) {
      finished.push(run);
      continue;
    }
    const firstLine = error?.split("\n").map((l) => l.trim()).find((l) => l.length > 0);
    incomplete.push({
      arm: run.arm,
      seed: run.seed,
      lastStep: lastStep(run),
      steps,
      reason: reason ?? "the runner reported an error",
      ...(firstLine ? { error: firstLine.length > 200 ? firstLine.slice(0, 199) + "…" : firstLine } : {}),
    });
  }
  return { finished, incomplete };
}
