/**
 * The side-by-side benchmark: moegrad's training step (`train_moe.ts`) against the same step in PyTorch
 * (`torch_step.py`), at d = 128, 256, 512 with one thread and two, interleaved in one invocation. `deno task
 * bench` runs it after the matmul and throughput tables; alone:
 *
 *     deno run --allow-read --allow-env --allow-ffi --allow-run --allow-sys=cpus bench/step_vs_torch.ts [--quick] [--dims=…] [--threads=…] [--rounds=N] [--warmup=N] [--repeats=N]
 *
 * Every measurement is a child process (one side, one d, one thread count; `step_protocol.ts`), so each side's
 * peak RSS is its own. For each d, every round runs each thread count's processes in turn (one thread first in
 * even rounds, two in odd ones) and within each the sides alternate (moegrad first in even rounds, PyTorch first
 * in odd ones), so that a drift in the machine's speed hits both sides and both thread counts: the ratios
 * compare steps measured in the same minutes. Without PyTorch only moegrad's columns are measured
 * and the report says how to install it; the project itself never needs PyTorch.
 *
 * moegrad runs twice per cell where the machine has a native BLAS (found by `detectBlas`, so this process needs
 * `--allow-ffi`): on its default kernels (a child without `--allow-ffi`: WebAssembly, what needs nothing
 * installed) and on the BLAS (a child with `--allow-ffi` and `matmul: "blas"`), each with its ratio to PyTorch.
 *
 * `--quick` (a smoke run) measures d = 128 only, one round of one timed step; `--dims=256,512` and `--threads=1`
 * pick the widths and thread counts (to split a full run into shorter invocations).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { median } from "../experiments/common/stats.ts";
import { DEFAULT_TRAIN } from "./train_moe.ts";
import type { StepReport, StepSizes } from "./step_protocol.ts";
import { probeTorch, runSide, type Side, type TorchProbe } from "./step_runner.ts";
import { detectBlas } from "../kernels/cpu/blas_library.ts";
import { formatComparison } from "./step_table.ts";
import { machine } from "./_machine.ts";
import { type Ceiling, fmaCeiling } from "./_fma_ceiling.ts";

/** What to measure. */
export interface ComparisonPlan {
  /** Model widths d. */
  dims: number[];
  /** Thread counts. */
  threads: number[];
  /** Processes per side per cell (the sides alternate between them). */
  rounds: number;
  /** Untimed steps in each process. */
  warmup: number;
  /** Timed steps in each process. */
  repeats: number;
  /** The sizes other than d (default: `train_moe.ts`'s). */
  base?: Omit<StepSizes, "dim">;
}

/**
 * The plan of `deno task bench` (and of `--quick`). Two warm-up steps: moegrad's second step is still about 1.5×
 * its later ones (V8 is still optimising), PyTorch's is not.
 */
export function defaultPlan(quick: boolean): ComparisonPlan {
  return quick
    ? { dims: [128], threads: [1, 2], rounds: 1, warmup: 1, repeats: 1 }
    : { dims: [128, 256, 512], threads: [1, 2], rounds: 2, warmup: 2, repeats: 2 };
}

/** One side of one cell, over its processes. */
export interface SideResult {
  /** Median of every timed step of every process, ms. */
  ms: number;
  /** Timed steps behind the median. */
  steps: number;
  /** Each process's median step, ms, in the order run (one process per round). */
  processMs: number[];
  /** Largest peak RSS of its processes, KiB. */
  peakRssKiB: number;
  /** Trainable scalars. */
  parameters: number;
  /** Loss of its first step (first process). */
  firstLoss: number;
  /** The first process's answer (runtime, BLAS). */
  report: StepReport;
}

/** One (d, threads) cell. */
export interface Cell {
  /** Model width. */
  dim: number;
  /** Threads. */
  threads: number;
  /** moegrad's side, on its default kernels (WebAssembly). */
  moegrad: SideResult;
  /** moegrad's side on the native BLAS (null when none was found). */
  moegradBlas: SideResult | null;
  /** PyTorch's side (null when it was not run). */
  torch: SideResult | null;
}

/** Everything the report needs. */
export interface Comparison {
  /** The plan measured. */
  plan: ComparisonPlan;
  /** The machine line. */
  machine: string;
  /** Whether PyTorch ran, and its version or why not. */
  torch: TorchProbe;
  /** Whether moegrad also ran on a native BLAS, and which or why not. */
  blas: BlasProbe;
  /** The cells, by d then threads. */
  cells: Cell[];
  /**
   * What two threads give vector-FMA-bound work on this machine (`_fma_ceiling.ts`), measured before the first
   * cell and after the last, when the plan has one thread and two; a string says why it was not measured.
   */
  ceiling?: { before: Ceiling; after: Ceiling } | string;
  /** Wall time of the whole comparison, s. */
  seconds: number;
}

/** Whether moegrad can run on a native BLAS: the library (as its child names it), or why not. */
export type BlasProbe = { ok: true; library: string } | { ok: false; reason: string };

/** Looks for a native BLAS as moegrad's matmul would (never throws; prints detection's line when it searched). */
export function probeBlas(): BlasProbe {
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    return { ok: false, reason: "the benchmark was run without --allow-ffi" };
  }
  try {
    const { library, message } = detectBlas();
    return library ? { ok: true, library: `${library.vendor} at ${library.path}` } : { ok: false, reason: message };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}

/** What each cell measures: the side, moegrad's matmul kernel when not the default, and its name in progress lines. */
const RUNS = {
  moegrad: { side: "moegrad", matmul: undefined, label: "moegrad" },
  moegradBlas: { side: "moegrad", matmul: "blas", label: "moegrad+BLAS" },
  torch: { side: "torch", matmul: undefined, label: "torch" },
} as const satisfies Record<string, { side: Side; matmul: "blas" | undefined; label: string }>;
type Run = keyof typeof RUNS;

function aggregate(reports: StepReport[]): SideResult {
  return {
    ms: median(reports.flatMap((r) => r.stepMs)),
    steps: reports.reduce((n, r) => n + r.stepMs.length, 0),
    processMs: reports.map((r) => median(r.stepMs)),
    peakRssKiB: Math.max(...reports.map((r) => r.peakRssKiB)),
    parameters: reports[0].parameters,
    firstLoss: reports[0].losses[0] ?? NaN,
    report: reports[0],
  };
}

/**
 * Measures `plan` (PyTorch too when {@link probeTorch} finds it, and moegrad on a native BLAS too when
 * {@link probeBlas} finds one). `progress` receives one line per child (the bench prints them on stderr). Throws
 * when the sides' parameter counts differ: then they are not the same model.
 */
export async function compareWithTorch(
  plan: ComparisonPlan,
  progress: (line: string) => void = () => {},
): Promise<Comparison> {
  const t0 = performance.now();
  const torch = await probeTorch();
  const blas = probeBlas();
  const runs: Run[] = [
    "moegrad",
    ...(blas.ok ? ["moegradBlas" as const] : []),
    ...(torch.ok ? ["torch" as const] : []),
  ];
  const base = plan.base ?? DEFAULT_TRAIN;
  const cells: Cell[] = [];
  // The machine's own two-thread ceiling moves with the host's load, so it is read on both sides of the cells.
  const wantCeiling = plan.threads.includes(1) && plan.threads.includes(2);
  const ceilingRounds = plan.rounds > 1 ? 5 : 2;
  const measureCeiling = () => fmaCeiling(ceilingRounds).catch((e: Error) => e.message);
  const before = wantCeiling ? await measureCeiling() : undefined;
  for (const dim of plan.dims) {
    const sizes: StepSizes = {
      vocab: base.vocab,
      dim,
      layers: base.layers,
      heads: base.heads,
      experts: base.experts,
      batch: base.batch,
      seq: base.seq,
    };
    // Every thread count's processes interleave too, round by round (the order reversed in odd rounds), so that
    // the two-threads-versus-one ratio compares steps measured in the same minutes, as the two sides are: this
    // machine's speed drifts over minutes, and cells measured one after the other put that drift into the ratio.
    const reports = new Map(
      plan.threads.map((t) => [t, { moegrad: [], moegradBlas: [], torch: [] } as Record<Run, StepReport[]>]),
    );
    for (let round = 0; round < plan.rounds; round++) {
      const order = round % 2 === 0 ? runs : [...runs].reverse();
      for (const threads of round % 2 === 0 ? plan.threads : [...plan.threads].reverse()) {
        for (const run of order) {
          const { side, matmul, label } = RUNS[run];
          const request = { sizes, threads, warmup: plan.warmup, repeats: plan.repeats, matmul };
          const r = await runSide(side, request, torch.python);
          progress(`d = ${dim}, ${threads} thread(s), ${label}: ${r.stepMs.map((ms) => ms.toFixed(0)).join(", ")} ms`);
          reports.get(threads)![run].push(r);
        }
      }
    }
    for (const threads of plan.threads) {
      const byRun = reports.get(threads)!;
      const measured = (run: Run) => byRun[run].length ? aggregate(byRun[run]) : null;
      const cell: Cell = {
        dim,
        threads,
        moegrad: aggregate(byRun.moegrad),
        moegradBlas: measured("moegradBlas"),
        torch: measured("torch"),
      };
      if (cell.torch && cell.torch.parameters !== cell.moegrad.parameters) {
        throw new Error(
          `d = ${dim}: moegrad has ${cell.moegrad.parameters} parameters, PyTorch ${cell.torch.parameters}: ` +
            "bench/torch_step.py no longer builds the same model as bench/train_moe.ts",
        );
      }
      cells.push(cell);
    }
  }
  const after = wantCeiling ? await measureCeiling() : undefined;
  const ceiling = before === undefined || after === undefined
    ? undefined
    : typeof before === "string" || typeof after === "string"
    ? `the matmul Workers failed: ${typeof before === "string" ? before : after}`
    : { before, after };
  return { plan, machine: await machine(), torch, blas, cells, ceiling, seconds: (performance.now() - t0) / 1000 };
}

/** Measures `plan` and prints the report, progress on stderr (used by `report.ts` and by this file's main). */
export async function printComparison(plan: ComparisonPlan): Promise<void> {
  const result = await compareWithTorch(plan, (line) => console.error(`  ${line}`));
  console.log(formatComparison(result));
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean", default: false },
      dims: { type: "string" },
      threads: { type: "string" },
      rounds: { type: "string" },
      warmup: { type: "string" },
      repeats: { type: "string" },
    },
  });
  const plan = defaultPlan(values.quick);
  if (values.dims) plan.dims = values.dims.split(",").map(Number);
  if (values.threads) plan.threads = values.threads.split(",").map(Number);
  // More processes and steps per cell than the default narrow the medians on a noisy machine (the run gets longer).
  for (const key of ["rounds", "warmup", "repeats"] as const) {
    const text = values[key];
    if (text === undefined) continue;
    const n = Number(text);
    if (!Number.isInteger(n) || n < (key === "warmup" ? 0 : 1) || n > 100) {
      throw new RangeError(`--${key} must be an integer in [${key === "warmup" ? 0 : 1}, 100], got ${text}`);
    }
    plan[key] = n;
  }
  if (!plan.dims.every((d) => Number.isInteger(d) && d > 0 && d % 8 === 0)) {
    throw new RangeError(`--dims must be multiples of 8 (4 heads, even head width), got ${values.dims}`);
  }
  if (!plan.threads.every((t) => Number.isInteger(t) && t >= 1 && t <= 64)) {
    throw new RangeError(`--threads must be integers in [1, 64], got ${values.threads}`);
  }
  await printComparison(plan);
}
