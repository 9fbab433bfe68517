/**
 * The in-place Adam/AdamW update on f32 arrays: the parameter and its two moments are overwritten in their
 * own storage, so a step allocates nothing. Two implementations give the same bits: WebAssembly SIMD
 * (`wasm/adam.ts`, used when the CPU option `wasm` is on and SIMD validates) and the plain-TypeScript loop
 * below. Both evaluate, per element and with every intermediate rounded to f32,
 *
 * ```text
 * g ← g·c                         (gradient clipping folded in, when the clip coefficient c ≠ 1)
 * g ← g + p·λ                     (L2 weight decay, Adam)
 * base ← p·(1 − η·λ), else p      (decoupled weight decay, AdamW)
 * m ← m·β₁ + g·(1 − β₁)
 * v ← v·β₂ + (g·g)·(1 − β₂)
 * p ← base − (m / (√v / √(1 − β₂ᵗ) + ε)) · (η / (1 − β₁ᵗ))
 * ```
 *
 * — the op-by-op update of `nn/optim/adam.ts` operation for operation (each op stores an f32 tensor, so each
 * rounds once): IEEE f32 `+ − × ÷ √` are correctly rounded, and a double-precision result rounded to f32
 * with `Math.fround` is the correctly rounded f32 result for these operations, so the SIMD lanes and the
 * scalar loop agree bit for bit. No fused multiply-add anywhere: it would skip a rounding.
 *
 * @module
 */
import { liveCpuOptions } from "./config.ts";
import type { TypedArray } from "../../core/dtype.ts";
import { adamInPlace, sharedWasmAdam } from "./wasm/adam.ts";
import { runParallel, threadMinimums } from "./threads/pool.ts";
import { MAX_ARGS, MAX_BUFS } from "./threads/layout.ts";

/** How the weight decay λ enters an Adam update. */
export type AdamDecay = "none" | "decoupled" | "l2";

/**
 * The per-step scalars of one Adam update, already rounded to f32 (`Math.fround`) as the op path rounds a
 * scalar operand to the tensor's dtype.
 */
export interface AdamScalars {
  /** Whether and how the weight decay applies. */
  decay: AdamDecay;
  /** λ (used by `"l2"`). */
  wd: number;
  /** 1 − η·λ (used by `"decoupled"`). */
  shrink: number;
  /** β₁. */
  b1: number;
  /** 1 − β₁. */
  c1: number;
  /** β₂. */
  b2: number;
  /** 1 − β₂. */
  c2: number;
  /** √(1 − β₂ᵗ). */
  bc2: number;
  /** ε. */
  eps: number;
  /** η / (1 − β₁ᵗ). */
  step: number;
  /**
   * The gradient-clipping coefficient c, an f32 value: each gradient element is first rounded as
   * f32(g·c), exactly as `clipGradNorm` scales a gradient. Absent or 1: no scaling (g·1 = g, so this is
   * only a saved pass).
   */
  gscale?: number;
}

/** Updates the first `n` elements of `p`, `m` and `v` in place from the gradient `g` with the scalars `s`. */
export type AdamUpdate = (
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  n: number,
  s: AdamScalars,
) => void;

/**
 * Updates `p`, `m` and `v` (the first `n` elements of each) in place from the gradient `g`: on WebAssembly
 * SIMD when the `wasm` option is on and available, else with {@link adamStepJs}; the bits are the same.
 * Returns which ran (`"wasm-simd"` or `"js"`, the kernel name a profile shows).
 */
export const adamStep: (...args: Parameters<AdamUpdate>) => "wasm-simd" | "js" = (p, g, m, v, n, s) =>
  adamSteps([{ p, g, m, v, n, s }]);

/** One array's update for {@link adamSteps}: the arguments of {@link adamStep}. */
export interface AdamArrays {
  p: Float32Array;
  g: Float32Array;
  m: Float32Array;
  v: Float32Array;
  n: number;
  s: AdamScalars;
}

/** Parameters one job of {@link adamSteps} updates at most: four buffers each. */
const PER_JOB = Math.floor(MAX_BUFS / 4);
/** Numbers per parameter in such a job's arguments: its first unit, unit size, n and the ten scalars. */
const ARGS_PER = 13;

/**
 * {@link adamStep} for many arrays, with the same bits: with `threads` > 1 and enough elements in all, the
 * updates are batched into a few pool jobs (up to eight arrays each, every array cut into units), so the
 * Workers are woken a few times per optimizer step instead of once per parameter, and the small arrays run in
 * parallel too; else (or where the pool cannot take a job) one by one on the calling thread. Every update must
 * use the same weight-decay mode. Returns which kernel ran.
 */
export function adamSteps(updates: readonly AdamArrays[]): "wasm-simd" | "js" {
  const wasm = liveCpuOptions.wasm && sharedWasmAdam() !== undefined;
  const threads = liveCpuOptions.threads;
  const total = updates.reduce((sum, u) => sum + u.n, 0);
  const done = new Uint8Array(updates.length);
  if (threads > 1 && total >= threadMinimums.adam && updates.length > 0) {
    const decay = updates[0].s.decay;
    if (updates.some((u) => u.s.decay !== decay)) throw new Error("adamSteps: the updates mix weight-decay modes");
    const desc: AdamDesc = { wasm, decay };
    for (let at = 0; at < updates.length; at += PER_JOB) {
      const batch = updates.slice(at, at + PER_JOB);
      // Units of about an eighth of a thread's share of the job: large arrays are cut, small ones are one unit,
      // and the last unit claimed is short (a job of a few large arrays cut per array would leave one thread
      // running a whole array's update while the other waits).
      const jobTotal = batch.reduce((sum, u) => sum + u.n, 0);
      const size = Math.max(ADAM_UNIT_MIN, Math.ceil(jobTotal / (8 * threads) / 16) * 16);
      const args: number[] = [];
      let units = 0;
      for (const { n, s } of batch) {
        args.push(units, size, n, s.wd, s.shrink, s.b1, s.c1, s.b2, s.c2, s.bc2, s.eps, s.step, s.gscale ?? 1);
        units += Math.ceil(n / size);
      }
      const views = batch.flatMap((u) => [u.p, u.g, u.m, u.v]);
      if (
        args.length <= MAX_ARGS &&
        runParallel("adam", `${wasm}|${decay}`, desc, adamUnit, views, args, units, threads)
      ) done.fill(1, at, at + batch.length);
    }
  }
  let kernel: "wasm-simd" | "js" = wasm ? "wasm-simd" : "js";
  updates.forEach((u, i) => {
    if (!done[i]) kernel = adamRange(wasm, u.p, u.g, u.m, u.v, u.n, u.s);
  });
  return kernel;
}

/**
 * Unit `unit` of a batched update ({@link adamSteps}): `views` = [p, g, m, v] of each array in turn, `args` =
 * per array its first unit, unit size, n and scalars ({@link ARGS_PER} numbers). Updates one element range of
 * one array in place.
 */
export function adamUnit(desc: AdamDesc, views: readonly TypedArray[], args: ArrayLike<number>, unit: number): void {
  let q = views.length / 4 - 1;
  while (args[q * ARGS_PER] > unit) q--;
  // Integers as small integers (see intArg in threads/layout.ts: double bounds slow the loops down).
  const a = q * ARGS_PER, size = args[a + 1] | 0, n = args[a + 2] | 0;
  const from = (unit - args[a]) * size | 0, to = Math.min(n, from + size);
  const [wd, shrink, b1, c1, b2, c2, bc2, eps, step, gscale] = Array.from({ length: 10 }, (_, i) => args[a + 3 + i]);
  const s: AdamScalars = { decay: desc.decay, wd, shrink, b1, c1, b2, c2, bc2, eps, step, gscale };
  const part = (k: number) => (views[4 * q + k] as Float32Array).subarray(from, to);
  adamRange(desc.wasm, part(0), part(1), part(2), part(3), to - from, s);
}

/** Updates the first `n` elements (see {@link adamStep}); `wasm`: on the WebAssembly kernel. */
function adamRange(
  wasm: boolean,
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  n: number,
  s: AdamScalars,
): "wasm-simd" | "js" {
  const kernel = wasm ? sharedWasmAdam() : undefined;
  if (!kernel) {
    adamStepJs(p, g, m, v, n, s);
    return "js";
  }
  // Where the arrays live in the tensor heap, in place; else chunk by chunk through the module's memory.
  if (!adamInPlace(p, g, m, v, n, s, adamStepJs)) kernel.update(p, g, m, v, n, s);
  return "wasm-simd";
}

/** Elements per unit of a threaded update at least (a unit is a few wasm chunks). */
const ADAM_UNIT_MIN = 4096;

/** What a Worker needs to run a share of an Adam update. */
interface AdamDesc {
  wasm: boolean;
  decay: AdamDecay;
}

/** The plain-TypeScript in-place update (the fallback without WebAssembly SIMD; see the module docs). */
export const adamStepJs: AdamUpdate = (p, g, m, v, n, s) => {
  const f = Math.fround;
  const { wd, shrink, b1, c1, b2, c2, bc2, eps, step } = s;
  const l2 = s.decay === "l2", decoupled = s.decay === "decoupled";
  const gs = s.gscale ?? 1, clip = gs !== 1;
  for (let i = 0; i < n; i++) {
    const pi = p[i];
    const g0 = clip ? f(g[i] * gs) : g[i];
    const gi = l2 ? f(g0 + f(pi * wd)) : g0;
    const base = decoupled ? f(pi * shrink) : pi;
    const mi = f(f(m[i] * b1) + f(gi * c1));
    const vi = f(f(v[i] * b2) + f(f(gi * gi) * c2));
    m[i] = mi;
    v[i] = vi;
    p[i] = f(base - f(f(mi / f(f(f(Math.sqrt(vi)) / bc2) + eps)) * step));
  }
};
