/**
 * Opt-in per-op profiler: while a profile is running, every kernel call made through `runKernel` /
 * `runKernelInto` is timed and accumulated under (phase, op, kernel). Off, the engine pays one null check
 * per call. Backward ops go through the same engine, so they are attributed by the op name their VJP
 * called (e.g. the `mul` inside softmax's VJP counts as `mul`); wrap code in {@link profilePhase} to
 * separate forward, backward and optimizer time.
 *
 * Timing is wall time on the calling thread (`performance.now()`): exact for the CPU backend, whose kernels
 * run synchronously; on WebGPU it measures only encoding, not GPU time.
 *
 * @example
 * ```ts
 * import { profile, formatProfile, randn } from "@moegrad/moegrad";
 * const { result, table } = profile(() => randn([64, 64]).matmul(randn([64, 64])).sum());
 * console.log(result.shape, table.rows.length > 0); // [] true
 * console.log(formatProfile(table, { top: 5 }));
 * ```
 *
 * @module
 */

/** One row of a profile: every call of one kernel by one op in one phase. */
export interface ProfileRow {
  /** The phase set by {@link profilePhase} ("" outside any phase). */
  phase: string;
  /** The op name passed to the engine (`"mul"`, `"softmax"`, `"permute"`, …). */
  op: string;
  /** The registry kernel that ran (`"binary"`, `"strided"`, …). */
  kernel: string;
  /** Number of calls. */
  calls: number;
  /** Total wall time of those calls, in milliseconds. */
  ms: number;
}

/** A finished profile: rows sorted by time (largest first) and the totals. */
export interface ProfileTable {
  /** The rows, largest `ms` first. */
  rows: ProfileRow[];
  /** Sum of `ms` over the rows (time inside kernels). */
  kernelMs: number;
  /** Wall time between start and stop, in milliseconds (kernels plus everything around them). */
  wallMs: number;
}

/** The recorder the engine calls; null when no profile runs (the engine checks this and nothing else). */
export interface KernelRecorder {
  /** Adds one call of `kernel` by `op` that took `ms`. */
  record(op: string, kernel: string, ms: number): void;
}

class Recorder implements KernelRecorder {
  readonly rows = new Map<string, ProfileRow>();
  readonly start = performance.now();
  phase = "";
  record(op: string, kernel: string, ms: number): void {
    const key = `${this.phase}\u0000${op}\u0000${kernel}`;
    let row = this.rows.get(key);
    if (!row) this.rows.set(key, row = { phase: this.phase, op, kernel, calls: 0, ms: 0 });
    row.calls++;
    row.ms += ms;
  }
}

let active: Recorder | null = null;

/** The running recorder, or null (read by `core/engine.ts` on every kernel call). */
export function activeRecorder(): KernelRecorder | null {
  return active;
}

/** Starts recording kernel times (an error if a profile is already running: profiles do not nest). */
export function startProfile(): void {
  if (active) throw new Error("startProfile: a profile is already running (call stopProfile first)");
  active = new Recorder();
}

/** Stops recording and returns the table (an error if no profile is running). */
export function stopProfile(): ProfileTable {
  const rec = active;
  if (!rec) throw new Error("stopProfile: no profile is running (call startProfile first)");
  active = null;
  const rows = [...rec.rows.values()].sort((a, b) => b.ms - a.ms);
  return { rows, kernelMs: rows.reduce((s, r) => s + r.ms, 0), wallMs: performance.now() - rec.start };
}

/** Whether a profile is running. */
export function isProfiling(): boolean {
  return active !== null;
}

/**
 * Runs `fn` with kernel calls attributed to `phase` (e.g. "forward", "backward", "optimizer"); restores the
 * previous phase afterwards. Without a running profile it just runs `fn`.
 */
export function profilePhase<T>(phase: string, fn: () => T): T {
  const rec = active;
  if (!rec) return fn();
  const prev = rec.phase;
  rec.phase = phase;
  try {
    return fn();
  } finally {
    rec.phase = prev;
  }
}

/** Runs `fn` under a fresh profile and returns its result with the table (synchronous `fn` only). */
export function profile<T>(fn: () => T): { result: T; table: ProfileTable } {
  startProfile();
  let result: T;
  try {
    result = fn();
  } catch (e) {
    stopProfile();
    throw e;
  }
  return { result, table: stopProfile() };
}

/** Options of {@link groupProfile} and {@link formatProfile}. */
export interface ProfileGroupOptions {
  /** Which fields make a row: any of "phase", "op", "kernel" (default ["op", "kernel"]). */
  by?: readonly ("phase" | "op" | "kernel")[];
}

/** Merges the rows of `table` that agree on the `by` fields (the others become ""), largest first. */
export function groupProfile(table: ProfileTable, options: ProfileGroupOptions = {}): ProfileTable {
  const by = new Set(options.by ?? ["op", "kernel"]);
  const merged = new Map<string, ProfileRow>();
  for (const r of table.rows) {
    const phase = by.has("phase") ? r.phase : "", op = by.has("op") ? r.op : "";
    const kernel = by.has("kernel") ? r.kernel : "";
    const key = `${phase}\u0000${op}\u0000${kernel}`;
    let row = merged.get(key);
    if (!row) merged.set(key, row = { phase, op, kernel, calls: 0, ms: 0 });
    row.calls += r.calls;
    row.ms += r.ms;
  }
  const rows = [...merged.values()].sort((a, b) => b.ms - a.ms);
  return { rows, kernelMs: table.kernelMs, wallMs: table.wallMs };
}

/** Options of {@link formatProfile}. */
export interface FormatProfileOptions extends ProfileGroupOptions {
  /** Only the largest `top` rows (default all); the rest are summed into one "(other)" row. */
  top?: number;
  /** Divide times and calls by this (e.g. the number of profiled steps; default 1). */
  per?: number;
}

/**
 * A Markdown table of a profile: op, kernel (and phase if grouped by it), calls, ms, % of the wall time,
 * plus rows for the time outside kernels (autograd bookkeeping, allocation, JS around the kernels).
 */
export function formatProfile(table: ProfileTable, options: FormatProfileOptions = {}): string {
  const by = options.by ?? ["op", "kernel"];
  const per = options.per ?? 1;
  const g = groupProfile(table, { by });
  const top = options.top ?? g.rows.length;
  const shown = g.rows.slice(0, top);
  const rest = g.rows.slice(top);
  const cols = [...by, "calls", "ms", "% of wall"];
  const lines = [`| ${cols.join(" | ")} |`, `| ${cols.map(() => "---").join(" | ")} |`];
  const pct = (ms: number) => table.wallMs > 0 ? (100 * ms / table.wallMs).toFixed(1) : "-";
  const line = (names: string[], calls: number | string, ms: number) =>
    `| ${[...names, String(calls), (ms / per).toFixed(2), pct(ms)].join(" | ")} |`;
  for (const r of shown) {
    const calls = Number.isInteger(r.calls / per) ? r.calls / per : (r.calls / per).toFixed(1);
    lines.push(line(by.map((f) => r[f] || "-"), calls, r.ms));
  }
  if (rest.length) {
    const ms = rest.reduce((s, r) => s + r.ms, 0), calls = rest.reduce((s, r) => s + r.calls, 0) / per;
    lines.push(line([`(${rest.length} others)`, ...by.slice(1).map(() => "")], Math.round(calls), ms));
  }
  lines.push(line(["(outside kernels)", ...by.slice(1).map(() => "")], "", table.wallMs - table.kernelMs));
  return lines.join("\n");
}
