/**
 * Broadcasting without index arrays, for the CPU's fast elementwise loops: the output's dims are collapsed
 * wherever every operand stays contiguous (or stays broadcast), which leaves an inner run with operand
 * strides 0 or 1 and at most a few outer dims walked by an odometer. `[N,d] op [d]`, `[N,d] op [N,1]`,
 * scalars and bias adds like `[E,M,h] + [E,1,h]` all become long contiguous runs.
 *
 * @module
 */
import { broadcastStrides } from "../../core/shape.ts";
import type { Shape } from "../../core/shape.ts";

/**
 * A broadcast iteration plan: `shape` (collapsed, at least one dim) and per-operand strides aligned with it;
 * the last dim is the inner run.
 */
export interface RunPlan {
  /** Collapsed output dims; the last is the inner run. */
  shape: number[];
  /** Per operand, its strides over `shape` (0 where broadcast). */
  strides: number[][];
}

/**
 * Collapses the broadcast of `inputs` to `out` into as few dims as possible: dims d and d+1 merge when,
 * for every operand, stride[d] = stride[d+1]·shape[d+1] (both contiguous, or both broadcast). Size-1 dims
 * are dropped first.
 */
export function planRuns(inputs: readonly Shape[], out: Shape): RunPlan {
  const all = inputs.map((s) => broadcastStrides(s, out));
  const shape: number[] = [];
  const strides: number[][] = inputs.map(() => []);
  for (let d = 0; d < out.length; d++) {
    if (out[d] === 1) continue;
    const last = shape.length - 1;
    if (last >= 0 && all.every((s, k) => strides[k][last] === s[d] * out[d])) {
      shape[last] *= out[d];
      for (let k = 0; k < all.length; k++) strides[k][last] = all[k][d];
    } else {
      shape.push(out[d]);
      for (let k = 0; k < all.length; k++) strides[k].push(all[k][d]);
    }
  }
  if (shape.length === 0) {
    shape.push(1);
    for (const s of strides) s.push(0);
  }
  return { shape, strides };
}

/**
 * Calls `run(outOffset, offsets, n)` for every inner run of `plan` (an odometer over the outer dims);
 * `offsets[k]` is operand k's offset at the start of the run (the array is reused between calls).
 */
export function forEachRun(plan: RunPlan, run: (o: number, offsets: number[], n: number) => void): void {
  const { shape, strides } = plan;
  const rank = shape.length, n = shape[rank - 1], k = strides.length;
  let outer = 1;
  for (let d = 0; d < rank - 1; d++) outer *= shape[d];
  if (n === 0 || outer === 0) return;
  const offsets = new Array<number>(k).fill(0);
  if (rank === 1) {
    run(0, offsets, n);
    return;
  }
  const idx = new Array<number>(rank).fill(0);
  for (let r = 0, o = 0; r < outer; r++, o += n) {
    run(o, offsets, n);
    for (let d = rank - 2; d >= 0; d--) {
      for (let q = 0; q < k; q++) offsets[q] += strides[q][d];
      if (++idx[d] < shape[d]) break;
      for (let q = 0; q < k; q++) offsets[q] -= strides[q][d] * shape[d];
      idx[d] = 0;
    }
  }
}

/**
 * Like {@link forEachRun}, restricted to the output elements [from, to) (row-major): the runs that range
 * cuts are visited in part, with the offsets of their first element in it. How the threaded kernels give
 * each thread a contiguous share of the output.
 */
export function forEachRunIn(
  plan: RunPlan,
  from: number,
  to: number,
  run: (o: number, offsets: number[], n: number) => void,
): void {
  const { shape, strides } = plan;
  const rank = shape.length, n = shape[rank - 1], k = strides.length;
  if (n === 0 || from >= to) return;
  // The odometer position of the run holding `from`.
  let r = Math.floor(from / n), start = from - r * n;
  const idx = new Array<number>(rank).fill(0);
  const offsets = new Array<number>(k).fill(0);
  for (let d = rank - 2, rest = r; d >= 0; d--) {
    idx[d] = rest % shape[d];
    rest = Math.floor(rest / shape[d]);
    for (let q = 0; q < k; q++) offsets[q] += idx[d] * strides[q][d];
  }
  const here = new Array<number>(k);
  for (let o = r * n; o < to; r++, o += n, start = 0) {
    for (let q = 0; q < k; q++) here[q] = offsets[q] + start * strides[q][rank - 1];
    run(o + start, here, Math.min(n, to - o) - start);
    for (let d = rank - 2; d >= 0; d--) {
      for (let q = 0; q < k; q++) offsets[q] += strides[q][d];
      if (++idx[d] < shape[d]) break;
      for (let q = 0; q < k; q++) offsets[q] -= strides[q][d] * shape[d];
      idx[d] = 0;
    }
  }
}
