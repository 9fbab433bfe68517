/**
 * The array passes of gradient clipping on f32 CPU buffers: Σ g² reduced exactly as `g.square().sum()`
 * reduces it, and the in-place scaling g ← g·s — on WebAssembly SIMD (`wasm/clip.ts`) when the `wasm`
 * option is on and available, else in plain TypeScript, with the same bits.
 *
 * The order of summation is the part to get right: `sum()` over all axes reduces one axis at a time, first
 * to last, each reduction summing in double precision in index order (from 0) and storing f32. So a [r, c]
 * gradient is summed down its columns into c doubles, rounded to f32, and those are summed in turn; a [d]
 * gradient is one sequential double sum; a rank-0 one is its square. {@link sumOfSquaresF32} runs the same
 * stages: the first fused with the squaring (one pass over g), the rest on the column sums, in place.
 *
 * @module
 */
import { liveCpuOptions } from "./config.ts";
import type { TypedArray } from "../../core/dtype.ts";
import { sharedWasmClip } from "./wasm/clip.ts";
import { runParallel, threadMinimums } from "./threads/pool.ts";

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
export function sumOfSquaresF32(g: Float32Array, shape: readonly number[]): number {
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
  // Axis 0, fused with the squaring, then rounded to f32 as the reduction stores it.
  let len = n / shape[0];
  const wasm = liveCpuOptions.wasm ? sharedWasmClip() : undefined;
  const acc = wasm ? wasm.columnSumsOfSquares(g, shape[0], len) : columnSumsJs(g, shape[0], len);
  for (let j = 0; j < len; j++) acc[j] = f(acc[j]);
  // Axes 1, 2, …: each sums the rows of the previous result, in place (output j only overwrites input j,
  // which its own sum has already read; later outputs read only indices ≥ j + 1).
  for (let axis = 1; axis < shape.length; axis++) {
    const d = shape[axis], inner = len / d;
    for (let j = 0; j < inner; j++) {
      let s = 0;
      for (let i = 0; i < d; i++) s += acc[i * inner + j];
      acc[j] = f(s);
    }
    len = inner;
  }
  return acc[0];
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
