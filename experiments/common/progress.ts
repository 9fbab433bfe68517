/**
 * Progress lines for long runs: one line with step/steps, loss, tokens per second, elapsed time and ETA.
 *
 * @example
 * ```ts
 * import { formatDuration, formatProgress } from "./progress.ts";
 * console.log(formatDuration(3725)); // 1h02m
 * console.log(formatProgress({ label: "switch-seed0", step: 50, steps: 200, loss: 3.21, tokensPerSec: 12345, elapsedSec: 30 }));
 * // [switch-seed0] step 50/200 (25.0%) loss 3.21 12,345 tok/s elapsed 30s ETA 1m30s
 * ```
 *
 * @module
 */
import { fmt } from "./markdown.ts";

/** A duration for humans: "42s", "3m05s", "1h02m" ("—" when not finite or negative). */
export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return "—";
  const s = Math.round(sec);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** What {@link formatProgress} shows. */
export interface ProgressInfo {
  /** Which run (e.g. `switch-seed0`, or a grid cell). */
  label: string;
  /** Steps done. */
  step: number;
  /** Total steps. */
  steps: number;
  /** Current loss (omitted when undefined). */
  loss?: number;
  /** Throughput in tokens per second (omitted when undefined). */
  tokensPerSec?: number;
  /** Seconds since the run (or this process's share of it) started. */
  elapsedSec: number;
}

/**
 * One progress line: `[label] step 50/200 (25.0%) loss 3.21 12,345 tok/s elapsed 30s ETA 1m30s`. The ETA
 * extrapolates the elapsed time per step done so far.
 */
export function formatProgress(p: ProgressInfo): string {
  const parts = [`[${p.label}]`, `step ${p.step}/${p.steps}`];
  if (p.steps > 0) parts.push(`(${((100 * p.step) / p.steps).toFixed(1)}%)`);
  if (p.loss !== undefined) parts.push(`loss ${fmt(p.loss, 4)}`);
  if (p.tokensPerSec !== undefined) {
    parts.push(`${Number.isFinite(p.tokensPerSec) ? Math.round(p.tokensPerSec).toLocaleString("en-US") : "—"} tok/s`);
  }
  parts.push(`elapsed ${formatDuration(p.elapsedSec)}`);
  const eta = p.step > 0 ? (p.elapsedSec / p.step) * (p.steps - p.step) : NaN;
  parts.push(`ETA ${formatDuration(eta)}`);
  return parts.join(" ");
}
