/**
 * Fast paths of the CPU layout and reduction kernels (used when `fastKernels` is on; `layout.ts` and
 * `reduce.ts` keep the reference loops): strided gathers/scatters without an index array per element
 * (dims are collapsed, the inner run is copied in one loop, or with `TypedArray.set` when contiguous; where
 * both arrays live in the tensor memory, all the contiguous runs in one WebAssembly call, `wasm/strided.ts`), and
 * sums over a non-last axis that stream whole rows instead of striding down columns. Every element is
 * computed exactly as in the reference, so results are bit-identical.
 *
 * @module
 */
import type { Shape } from "../../core/shape.ts";
import type { CpuBuffer } from "./buffer.ts";
import { liveCpuOptions } from "./config.ts";
import { copyRunsInPlace } from "./wasm/strided.ts";

/** Collapses `shape` with one stride list: dims d, d+1 merge when strides[d] = strides[d+1]·shape[d+1]. */
function collapse(shape: Shape, strides: readonly number[]): { shape: number[]; strides: number[] } {
  const s: number[] = [], st: number[] = [];
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = s.length - 1;
    if (last >= 0 && st[last] === strides[d] * shape[d]) {
      s[last] *= shape[d];
      st[last] = strides[d];
    } else {
      s.push(shape[d]);
      st.push(strides[d]);
    }
  }
  if (s.length === 0) return { shape: [1], strides: [0] };
  return { shape: s, strides: st };
}

/**
 * Visits the strided positions of a dense `shape` in row-major order by inner runs: `run(dense, strided, n,
 * step)` for every run of n elements starting at dense offset `dense` and strided offset `strided`.
 */
function forEachStridedRun(
  shape: Shape,
  strides: readonly number[],
  offset: number,
  run: (dense: number, strided: number, n: number, step: number) => void,
): void {
  const c = collapse(shape, strides);
  const rank = c.shape.length, n = c.shape[rank - 1], step = c.strides[rank - 1];
  let outer = 1;
  for (let d = 0; d < rank - 1; d++) outer *= c.shape[d];
  if (n === 0 || outer === 0 || shape.some((d) => d === 0)) return;
  const idx = new Array<number>(rank).fill(0);
  let at = offset;
  for (let r = 0, o = 0; r < outer; r++, o += n) {
    run(o, at, n, step);
    for (let d = rank - 2; d >= 0; d--) {
      at += c.strides[d];
      if (++idx[d] < c.shape[d]) break;
      at -= c.strides[d] * c.shape[d];
      idx[d] = 0;
    }
  }
}

/**
 * Runs of at least this many contiguous elements go to the WebAssembly copy where both arrays live in the tensor
 * memory (`wasm/strided.ts`); shorter runs gain little over the loops below.
 */
const WASM_MIN_RUN = 4;

/**
 * The WebAssembly copy of `kind` when the option is on, the inner run is contiguous and long enough and both
 * arrays are in the tensor memory; false when it did not run.
 */
function wasmRuns(
  kind: "gather" | "scatter",
  dense: CpuBuffer,
  strided: CpuBuffer,
  shape: Shape,
  offset: number,
  strides: readonly number[],
): boolean {
  if (!liveCpuOptions.wasm || shape.some((d) => d === 0)) return false;
  const c = collapse(shape, strides), rank = c.shape.length;
  if (c.strides[rank - 1] !== 1 || c.shape[rank - 1] < WASM_MIN_RUN) return false;
  return copyRunsInPlace(kind, dense, strided, offset, c.shape.slice(0, -1), c.strides.slice(0, -1), c.shape[rank - 1]);
}

/** out[idx] = src[offset + Σ idx_k·strides_k] (the `strided` kernel). */
export function fastStrided(src: CpuBuffer, dst: CpuBuffer, shape: Shape, offset: number, strides: readonly number[]) {
  if (wasmRuns("gather", dst, src, shape, offset, strides)) return;
  forEachStridedRun(shape, strides, offset, (o, s, n, step) => {
    if (step === 1 && n >= 16) dst.set(src.subarray(s, s + n), o);
    else if (step === 1) { for (let j = 0; j < n; j++) dst[o + j] = src[s + j]; }
    else if (step === 0) dst.fill(src[s], o, o + n);
    else for (let j = 0; j < n; j++) dst[o + j] = src[s + j * step];
  });
}

/** dst[offset + Σ idx_k·strides_k] = src[idx] (the scatter half of `stridedScatter`; dst already holds base). */
export function fastStridedScatter(
  src: CpuBuffer,
  dst: CpuBuffer,
  shape: Shape,
  offset: number,
  strides: readonly number[],
): void {
  // A broadcast (stride-0) scatter writes one place several times: the last write wins, as in the reference.
  if (wasmRuns("scatter", src, dst, shape, offset, strides)) return;
  forEachStridedRun(shape, strides, offset, (o, s, n, step) => {
    if (step === 1 && n >= 16) dst.set(src.subarray(o, o + n), s);
    else for (let j = 0; j < n; j++) dst[s + j * step] = src[o + j];
  });
}

/** Up to this many rows, a middle-axis sum walks the columns (no accumulator array; see fastSumMiddle). */
export const FEW_ROWS = 8;

/**
 * Sum over the middle of [outer, n, inner] with inner > 1: every output adds its n values in the
 * reference's order (i = 0…n−1) in double precision and is stored once, so the result is bit-identical.
 * Few rows (n ≤ {@link FEW_ROWS}): one column at a time, its n values read down the rows (n streams the
 * prefetcher follows). More rows: the rows are streamed into a double accumulator, one row at a time. The
 * optional bounds restrict it to outer rows [o0, o1) and columns [j0, j1) (a thread's share: every output
 * is still summed whole, in the same order).
 */
export function fastSumMiddle(
  src: CpuBuffer,
  dst: CpuBuffer,
  outer: number,
  n: number,
  inner: number,
  o0 = 0,
  o1 = outer,
  j0 = 0,
  j1 = inner,
): void {
  if (n <= FEW_ROWS) {
    for (let o = o0; o < o1; o++) {
      const base = o * n * inner, ob = o * inner;
      // Two to four rows written out (the reference's sum from 0, in order; 0 + x turns −0 into +0 as it does):
      // a loop of n ≤ 4 adds per column cost ≈ 4× the adds (measured, [4, 32768]: 172 against 42 µs).
      const r1 = base + inner, r2 = r1 + inner, r3 = r2 + inner;
      if (n === 2) {
        for (let j = j0; j < j1; j++) dst[ob + j] = (0 + src[base + j]) + src[r1 + j];
        continue;
      }
      if (n === 3) {
        for (let j = j0; j < j1; j++) dst[ob + j] = ((0 + src[base + j]) + src[r1 + j]) + src[r2 + j];
        continue;
      }
      if (n === 4) {
        for (let j = j0; j < j1; j++) dst[ob + j] = (((0 + src[base + j]) + src[r1 + j]) + src[r2 + j]) + src[r3 + j];
        continue;
      }
      for (let j = j0; j < j1; j++) {
        let a = 0;
        for (let i = 0; i < n; i++) a += src[base + i * inner + j];
        dst[ob + j] = a;
      }
    }
    return;
  }
  const w = j1 - j0, acc = new Float64Array(w);
  for (let o = o0; o < o1; o++) {
    acc.fill(0);
    for (let i = 0; i < n; i++) {
      const base = (o * n + i) * inner + j0;
      for (let j = 0; j < w; j++) acc[j] += src[base + j];
    }
    const ob = o * inner + j0;
    for (let j = 0; j < w; j++) dst[ob + j] = acc[j];
  }
}

/**
 * Sum over the last axis of [outer, n]: each row is added in order (i = 0…n−1) in double, as in the
 * reference, so the result is bit-identical — but four rows at a time, whose four independent chains of
 * additions overlap (one chain is bound by the latency of an addition, not by the loads). The optional bounds
 * restrict it to rows [o0, o1) (a thread's share).
 */
export function fastSumLast(src: CpuBuffer, dst: CpuBuffer, outer: number, n: number, o0 = 0, o1 = outer): void {
  let o = o0;
  for (; o + 4 <= o1; o += 4) {
    const b0 = o * n, b1 = b0 + n, b2 = b1 + n, b3 = b2 + n;
    let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (let i = 0; i < n; i++) {
      a0 += src[b0 + i];
      a1 += src[b1 + i];
      a2 += src[b2 + i];
      a3 += src[b3 + i];
    }
    dst[o] = a0;
    dst[o + 1] = a1;
    dst[o + 2] = a2;
    dst[o + 3] = a3;
  }
  for (; o < o1; o++) {
    let a = 0;
    for (let i = 0; i < n; i++) a += src[o * n + i];
    dst[o] = a;
  }
}
