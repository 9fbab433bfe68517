/**
 * Fast paths of the CPU layout and reduction kernels (used when `fastKernels` is on; `layout.ts` and
 * `reduce.ts` keep the reference loops): strided gathers/scatters without an index array per element
 * (dims are collapsed, the inner run is copied in one loop, or with `TypedArray.set` when contiguous), and
 * sums over a non-last axis that stream whole rows instead of striding down columns. Every element is
 * computed exactly as in the reference, so results are bit-identical.
 *
 * @module
 */
import type { Shape } from "../../core/shape.ts";
import type { CpuBuffer } from "./buffer.ts";

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

/** out[idx] = src[offset + Σ idx_k·strides_k] (the `strided` kernel). */
export function fastStrided(src: CpuBuffer, dst: CpuBuffer, shape: Shape, offset: number, strides: readonly number[]) {
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
  forEachStridedRun(shape, strides, offset, (o, s, n, step) => {
    if (step === 1 && n >= 16) dst.set(src.subarray(o, o + n), s);
    else for (let j = 0; j < n; j++) dst[s + j * step] = src[o + j];
  });
}

/**
 * Sum over the middle of [outer, n, inner] with inner > 1: rows are added into a double accumulator in the
 * reference's order (i = 0…n−1 for every output), then stored once, so the result is bit-identical. The
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
