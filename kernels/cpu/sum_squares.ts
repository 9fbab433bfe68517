/**
 * The array passes of gradient clipping on f32 CPU buffers: Σ g² reduced exactly as `g.square().sum()`
 * reduces it, and the in-place scaling g ← g·s — on WebAssembly SIMD (`wasm/clip.ts`) when the `wasm`
 * option is on and available, else in plain TypeScript, with the same bits.
 *
 * The order of summation is the part to get right: `sum()` over all axes reduces one axis at a time, first
 * to last, each reduction summing in double precision in index order (from 0) and storing f32. So a [r, c]
 * gradient is summed down its columns into c doubles, rounded to f32, and those are summed in turn; a [d]
 * gradient is one sequential double sum; a rank-0 one is its square. {@link sumOfSquaresF32} runs the same
 * stages: the first fused with the squaring (one pass over g) — for a gradient in the tensor memory, the
 * first two, on SIMD —, the rest on the sums, in place.
 *
 * @module
 */
import { liveCpuOptions } from "./config.ts";
import type { TypedArray } from "../../core/dtype.ts";
import { sharedWasmClip } from "./wasm/clip.ts";
import { runParallel, threadMinimums } from "./threads/pool.ts";
import { MAX_ARGS, MAX_BUFS } from "./threads/layout.ts";

/** Column sums of the TypeScript path; grown on demand and reused, so a steady-state call allocates nothing. */
let scratch = new Float64Array(0);

/** The first reduction in TypeScript: acc[j] = Σᵢ f32(g[i·inner + j]²), in double, rows in order. */
function columnSumsJs(g: Float32Array, rows: number, inner: number): Float64Array {
  const f = Math.fround;
  if (scratch.length < inner) scratch = new Float64Array(inner);
  const acc = scratch;
  acc.fill(0, 0, inner);
  const n = rows * inner;
  for (let base = 0; base < n; base += inner) {
    for (let j = 0; j < inner; j++) {
      const x = g[base + j];
      acc[j] += f(x * x);
    }
  }
  return acc;
}

/**
 * Σ g² over the f32 array `g` of shape `shape`, computed exactly as `g.square().sum()` computes it on the CPU
 * (the same f32 roundings, the same order of summation; see the module docs). Returns an f32 value.
 */
export function sumOfSquaresF32(g: Float32Array, shape: readonly number[], useWasm = liveCpuOptions.wasm): number {
  const f = Math.fround;
  let n = 1;
  for (const d of shape) n *= d;
  if (shape.length === 0) return f(g[0] * g[0]); // sum() over no axes: the square itself
  if (n === 0) return 0;
  if (shape.length === 1) {
    let acc = 0;
    for (let i = 0; i < n; i++) acc += f(g[i] * g[i]);
    return f(acc);
  }
  // Axis 0, fused with the squaring, then rounded to f32 as the reduction stores it — and, where the
  // gradient is in the tensor memory, axis 1 too in the same pass (a rank-3 expert weight's axis-0 sums are
  // as large as a plane of it: summing them again in JavaScript took longer than the SIMD pass itself).
  const wasm = useWasm ? sharedWasmClip() : undefined;
  const rows = shape.length > 2 ? shape[1] : 1;
  let len = n / shape[0], axis = 1;
  let acc = wasm?.leadingSumsOfSquares(g, shape[0], rows, len / rows);
  if (acc) {
    len /= rows;
    axis = shape.length > 2 ? 2 : 1;
  } else {
    acc = wasm ? wasm.columnSumsOfSquares(g, shape[0], len) : columnSumsJs(g, shape[0], len);
  }
  for (let j = 0; j < len; j++) acc[j] = f(acc[j]);
  // The remaining axes: each sums the d rows of the previous result in order, in place into row 0: acc[j] ←
  // ((acc[j] + acc[inner + j]) + acc[2·inner + j]) + …, then rounded. That is the reduction's sum from 0,
  // since 0 + a = a for every value here (sums of squares are ≥ +0 or NaN, never −0). Row by row rather
  // than column by column: a column walk strides `inner` doubles per step, which for a large first
  // reduction (e.g. 2 MiB of sums for an [8, 256, 1024] expert weight) misses the cache at every add.
  for (; axis < shape.length; axis++) {
    const d = shape[axis], inner = len / d;
    for (let i = 1; i < d; i++) {
      const at = i * inner;
      for (let j = 0; j < inner; j++) acc[j] += acc[at + j];
    }
    for (let j = 0; j < inner; j++) acc[j] = f(acc[j]);
    len = inner;
  }
  return acc[0];
}

/** Gradients from this many elements go to the kernel Workers (smaller ones cost less than a unit's claim). */
const SUM_SQUARES_UNIT_MIN = 1 << 12;

/**
 * {@link sumOfSquaresF32} of every array of `gs` (shapes `shapes`), in order: the same values, bit for bit,
 * however many threads run. With `threads` > 1 and enough elements in all, the large arrays are shared out
 * whole to the kernel Workers (an array's sum is one thread's sequential loop, so its bits never depend on
 * the split), largest first so the last claims are short; the calling thread takes units too, then does
 * the small arrays itself.
 */
export function sumsOfSquaresF32(gs: readonly Float32Array[], shapes: readonly (readonly number[])[]): Float64Array {
  const out = new Float64Array(gs.length), useWasm = liveCpuOptions.wasm, threads = liveCpuOptions.threads;
  const done = new Uint8Array(gs.length);
  if (threads > 1 && gs.reduce((n, g) => n + g.length, 0) >= threadMinimums.sum) {
    const large = gs.map((_, i) => i).filter((i) => gs[i].length >= SUM_SQUARES_UNIT_MIN);
    large.sort((a, b) => gs[b].length - gs[a].length || a - b);
    const per = MAX_BUFS - 1;
    for (let at = 0; at < large.length; at += per) {
      const batch = large.slice(at, at + per);
      const result = new Float64Array(batch.length);
      const args = batch.map(() => 0);
      batch.forEach((i, u) => {
        args[u] = args.length;
        args.push(shapes[i].length, ...shapes[i]);
      });
      const views = [...batch.map((i) => gs[i]), result];
      if (
        args.length <= MAX_ARGS && batch.length > 1 &&
        runParallel("sumSquares", String(useWasm), { useWasm }, sumSquaresUnit, views, args, batch.length, threads)
      ) {
        batch.forEach((i, u) => {
          out[i] = result[u];
          done[i] = 1;
        });
      }
    }
  }
  gs.forEach((g, i) => {
    if (!done[i]) out[i] = sumOfSquaresF32(g, shapes[i], useWasm);
  });
  return out;
}

/**
 * Unit `unit` of a threaded {@link sumsOfSquaresF32}: `views` = [g₀, …, gₖ₋₁, out (f64, k)], `args` = [the
 * start of each array's shape in args, then per array its rank and dimensions]; out[unit] ← Σ g_unit².
 */
export function sumSquaresUnit(
  desc: { useWasm: boolean },
  views: readonly TypedArray[],
  args: ArrayLike<number>,
  unit: number,
): void {
  const at = args[unit], rank = args[at], shape: number[] = [];
  for (let d = 0; d < rank; d++) shape.push(args[at + 1 + d]);
  views[views.length - 1][unit] = sumOfSquaresF32(views[unit] as Float32Array, shape, desc.useWasm);
}

/**
 * g[i] ← f32(g[i]·s) for i < n, in place, as `mul`'s kernel rounds (`s` an f32 value). Large arrays are
 * split over the kernel Workers when `threads` > 1 (each element's product is the same on any thread).
 */
export function scaleF32(g: Float32Array, n: number, s: number): void {
  const threads = liveCpuOptions.threads;
  if (threads > 1 && n >= threadMinimums.adam) {
    const size = Math.max(4096, Math.ceil(n / (4 * threads) / 16) * 16);
    if (runParallel("scale", "", null, scaleUnit, [g], [size, n, s], Math.ceil(n / size), threads)) return;
  }
  scaleRange(g, n, s);
}

/** Unit `unit` of a threaded scaling: `views` = [g], `args` = [unit size, n, s]. */
export function scaleUnit(_desc: null, views: readonly TypedArray[], args: ArrayLike<number>, unit: number): void {
  const from = unit * args[0], to = Math.min(args[1], from + args[0]);
  scaleRange((views[0] as Float32Array).subarray(from, to), to - from, args[2]);
}

function scaleRange(g: Float32Array, n: number, s: number): void {
  const wasm = liveCpuOptions.wasm ? sharedWasmClip() : undefined;
  if (wasm) return wasm.scale(g, n, s);
  for (let i = 0; i < n; i++) g[i] = g[i] * s; // the f32 store rounds the exact double product
}
