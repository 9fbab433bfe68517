/**
 * CPU layer normalisation over the last axis, forward and backward, rows independent of each other.
 *
 * Numerics (the registry's `layerNorm`): mean = Σx / D, var = Σ(x − mean)² / D — the biased variance, two passes,
 * with eps inside the square root as PyTorch — and rstd = 1 / √(var + eps). Sums run in double (JavaScript
 * numbers) whatever the dtype; mean and rstd are stored in the output dtype and the normalisation uses the
 * stored values, so the backward (which reads them) sees exactly what the forward used.
 *
 * Each kernel has a reference loop, written as the formulas read, and a fast path
 * (`cpuOptions().fastKernels`): the forward's without per-element branches on weight and bias, the backward's
 * accumulating dweight and dbias in the same pass over the row as dx (row-major, into double accumulators)
 * instead of a second, column-strided pass, and both summing the rows' statistics several rows at a time (each
 * row's sums are one chain of dependent additions; interleaved, the chains of four rows forward and two backward
 * overlap: on [512, 256], 0.29–0.33 against 0.39–0.42 ms forward and 0.46–0.51 against 0.50–0.55 backward, one
 * thread, Zen 4). Both paths do the same operations in the same order (every row sums its elements, every column its
 * rows, from the first), so they agree bit for bit (`tests/kernels/fused_norm_ce_test.ts`).
 *
 * @module
 */
import type { TypedArray } from "../../core/dtype.ts";
import type { KernelFamily } from "../registry.ts";
import type { CpuBuffer } from "./buffer.ts";
import { liveCpuOptions } from "./config.ts";
import { rowsPerUnit, runParallel, threadMinimums } from "./threads/pool.ts";
import { intArg } from "./threads/layout.ts";

/** Computes row r's mean and rstd (the row is x[base, base + d)) and stores them, rounded to their dtype. */
function rowStats(x: TypedArray, base: number, d: number, eps: number, mean: TypedArray, rstd: TypedArray, r: number) {
  let s = 0;
  for (let j = 0; j < d; j++) s += x[base + j];
  const m = s / d;
  let v = 0;
  for (let j = 0; j < d; j++) {
    const c = x[base + j] - m;
    v += c * c;
  }
  mean[r] = m;
  rstd[r] = 1 / Math.sqrt(v / d + eps);
}

/** Operands of the forward: x, the weight and bias (or null), the outputs, the row length and eps. */
interface Forward {
  x: TypedArray;
  w: TypedArray | null;
  b: TypedArray | null;
  y: TypedArray;
  mean: TypedArray;
  rstd: TypedArray;
  d: number;
  eps: number;
}

/** The forward as the formula reads: a branch per element for weight and bias. */
function forwardReference({ x, w, b, y, mean, rstd, d, eps }: Forward): void {
  for (let r = 0, base = 0; r < mean.length; r++, base += d) {
    rowStats(x, base, d, eps, mean, rstd, r);
    const m = mean[r], s = rstd[r];
    for (let j = 0; j < d; j++) {
      let v = (x[base + j] - m) * s;
      if (w) v *= w[j];
      if (b) v += b[j];
      y[base + j] = v;
    }
  }
}

/**
 * The statistics of rows r … r + 3 (the rows at x[base …], d apart), each exactly as {@link rowStats} computes it:
 * every row's sums run over its elements in order, in its own accumulator. Why four at once: each sum is a chain
 * of dependent double additions, so one row at a time waits on the adder's latency for every element; four
 * independent chains run in the time of one (the row's bits do not change, only the interleaving).
 */
function rowStats4(x: TypedArray, base: number, d: number, eps: number, mean: TypedArray, rstd: TypedArray, r: number) {
  const b1 = base + d, b2 = b1 + d, b3 = b2 + d;
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (let j = 0; j < d; j++) {
    s0 += x[base + j];
    s1 += x[b1 + j];
    s2 += x[b2 + j];
    s3 += x[b3 + j];
  }
  const m0 = s0 / d, m1 = s1 / d, m2 = s2 / d, m3 = s3 / d;
  let v0 = 0, v1 = 0, v2 = 0, v3 = 0;
  for (let j = 0; j < d; j++) {
    const c0 = x[base + j] - m0, c1 = x[b1 + j] - m1, c2 = x[b2 + j] - m2, c3 = x[b3 + j] - m3;
    v0 += c0 * c0;
    v1 += c1 * c1;
    v2 += c2 * c2;
    v3 += c3 * c3;
  }
  mean[r] = m0;
  mean[r + 1] = m1;
  mean[r + 2] = m2;
  mean[r + 3] = m3;
  rstd[r] = 1 / Math.sqrt(v0 / d + eps);
  rstd[r + 1] = 1 / Math.sqrt(v1 / d + eps);
  rstd[r + 2] = 1 / Math.sqrt(v2 / d + eps);
  rstd[r + 3] = 1 / Math.sqrt(v3 / d + eps);
}

/**
 * The forward with one branch-free inner loop per combination of weight and bias, on rows [r0, r1): the
 * statistics four rows at a time ({@link rowStats4}; the rest one by one), then each row normalised.
 */
function forwardFast({ x, w, b, y, mean, rstd, d, eps }: Forward, r0 = 0, r1 = mean.length): void {
  for (let r = r0, base = r0 * d; r < r1; r++, base += d) {
    if ((r - r0) % 4 === 0) {
      if (r + 4 <= r1) rowStats4(x, base, d, eps, mean, rstd, r);
      else for (let q = r; q < r1; q++) rowStats(x, q * d, d, eps, mean, rstd, q);
    }
    const m = mean[r], s = rstd[r];
    if (w && b) { for (let j = 0; j < d; j++) y[base + j] = (x[base + j] - m) * s * w[j] + b[j]; }
    else if (w) { for (let j = 0; j < d; j++) y[base + j] = (x[base + j] - m) * s * w[j]; }
    else if (b) { for (let j = 0; j < d; j++) y[base + j] = (x[base + j] - m) * s + b[j]; }
    else for (let j = 0; j < d; j++) y[base + j] = (x[base + j] - m) * s;
  }
}

/** Operands of the backward: g, x, the saved statistics, the weight (or null) and the outputs. */
interface Backward {
  g: TypedArray;
  x: TypedArray;
  mean: TypedArray;
  rstd: TypedArray;
  w: TypedArray | null;
  dx: TypedArray;
  dw: TypedArray;
  db: TypedArray;
  d: number;
}

/** dx of one row: rstd·(ĝ − Σĝ/D − x̂·Σ(ĝ·x̂)/D) with ĝ = g·w and x̂ = (x − mean)·rstd. */
function rowDx(o: Backward, r: number, base: number): void {
  const { g, x, w, dx, d } = o, m = o.mean[r], s = o.rstd[r];
  let s1 = 0, s2 = 0;
  for (let j = 0; j < d; j++) {
    const gw = w ? g[base + j] * w[j] : g[base + j];
    s1 += gw;
    s2 += gw * ((x[base + j] - m) * s);
  }
  const a = s1 / d, c = s2 / d;
  for (let j = 0; j < d; j++) {
    const gw = w ? g[base + j] * w[j] : g[base + j];
    dx[base + j] = s * (gw - a - (x[base + j] - m) * s * c);
  }
}

/**
 * {@link rowDx} of rows r and r + 1 (at base and base + d), their sums interleaved: four independent chains of
 * additions instead of two (see {@link rowStats4}), each row's sums in its own order, so the same bits.
 */
function rowDx2(o: Backward, r: number, base: number): void {
  const { g, x, w, dx, d } = o, b1 = base + d;
  const m0 = o.mean[r], s0 = o.rstd[r], m1 = o.mean[r + 1], s1 = o.rstd[r + 1];
  let p0 = 0, q0 = 0, p1 = 0, q1 = 0;
  for (let j = 0; j < d; j++) {
    const g0 = w ? g[base + j] * w[j] : g[base + j], g1 = w ? g[b1 + j] * w[j] : g[b1 + j];
    p0 += g0;
    q0 += g0 * ((x[base + j] - m0) * s0);
    p1 += g1;
    q1 += g1 * ((x[b1 + j] - m1) * s1);
  }
  const a0 = p0 / d, c0 = q0 / d, a1 = p1 / d, c1 = q1 / d;
  for (let j = 0; j < d; j++) {
    const g0 = w ? g[base + j] * w[j] : g[base + j], g1 = w ? g[b1 + j] * w[j] : g[b1 + j];
    dx[base + j] = s0 * (g0 - a0 - (x[base + j] - m0) * s0 * c0);
    dx[b1 + j] = s1 * (g1 - a1 - (x[b1 + j] - m1) * s1 * c1);
  }
}

/** dx of rows [r0, r1): two at a time ({@link rowDx2}), the last one alone. */
function rowsDx(o: Backward, r0: number, r1: number): void {
  let r = r0;
  for (; r + 2 <= r1; r += 2) rowDx2(o, r, r * o.d);
  if (r < r1) rowDx(o, r, r * o.d);
}

/** dx row by row, then dweight and dbias column by column (each column's rows in order). */
function backwardReference(o: Backward): void {
  const { g, x, mean, rstd, dw, db, d } = o, rows = mean.length;
  for (let r = 0; r < rows; r++) rowDx(o, r, r * d);
  for (let j = 0; j < d; j++) {
    let sw = 0, sb = 0;
    for (let r = 0; r < rows; r++) {
      sw += g[r * d + j] * ((x[r * d + j] - mean[r]) * rstd[r]);
      sb += g[r * d + j];
    }
    dw[j] = sw;
    db[j] = sb;
  }
}

/**
 * dweight and dbias of columns [j0, j1): each column's rows in order from the first, into double
 * accumulators — the operations {@link backwardFast} does for those columns, so the same bits.
 */
function columnGrads(o: Backward, j0: number, j1: number): void {
  const { g, x, mean, rstd, dw, db, d } = o, rows = mean.length, w = j1 - j0;
  const aw = new Float64Array(w), ab = new Float64Array(w);
  for (let r = 0, base = j0; r < rows; r++, base += d) {
    const m = mean[r], s = rstd[r];
    for (let j = 0; j < w; j++) {
      aw[j] += g[base + j] * ((x[base + j] - m) * s);
      ab[j] += g[base + j];
    }
  }
  dw.set(aw, j0);
  db.set(ab, j0);
}

/** dx, dweight and dbias in one pass over the rows (double accumulators, row-major). */
function backwardFast(o: Backward): void {
  const { g, x, mean, rstd, dw, db, d } = o, rows = mean.length;
  const aw = new Float64Array(d), ab = new Float64Array(d);
  for (let r = 0, base = 0; r < rows; r++, base += d) {
    // dx two rows at a time (see rowDx2); the column sums still take the rows one by one, in order.
    if (r % 2 === 0) rowsDx(o, r, Math.min(rows, r + 2));
    const m = mean[r], s = rstd[r];
    for (let j = 0; j < d; j++) {
      aw[j] += g[base + j] * ((x[base + j] - m) * s);
      ab[j] += g[base + j];
    }
  }
  dw.set(aw);
  db.set(ab);
}

/** Which of the optional operands a threaded job passes (absent ones are stand-in views, never read). */
interface Present {
  w: boolean;
  b: boolean;
}

/**
 * Unit `unit` of a threaded forward (the fast path on a block of rows): `views` = [x, w, b, y, mean,
 * rstd], `args` = [d, eps, rows per unit].
 */
export function layerNormUnit(p: Present, v: readonly TypedArray[], args: ArrayLike<number>, unit: number): void {
  const o: Forward = {
    x: v[0],
    w: p.w ? v[1] : null,
    b: p.b ? v[2] : null,
    y: v[3],
    mean: v[4],
    rstd: v[5],
    d: intArg(args, 0),
    eps: args[1],
  };
  const per = intArg(args, 2), r0 = unit * per;
  forwardFast(o, r0, Math.min(o.mean.length, r0 + per));
}

/**
 * Unit `unit` of a threaded backward: `views` = [g, x, mean, rstd, w, dx, dw, db], `args` = [d, rows per
 * unit, row units, columns per unit]. The first units compute dx on blocks of rows, the rest dweight and
 * dbias on blocks of columns (each column summed over every row in order, as one thread sums it).
 */
export function layerNormBackwardUnit(
  p: Present,
  v: readonly TypedArray[],
  args: ArrayLike<number>,
  unit: number,
): void {
  const d = intArg(args, 0), per = intArg(args, 1), rowUnits = intArg(args, 2), cols = intArg(args, 3);
  const o: Backward = {
    g: v[0],
    x: v[1],
    mean: v[2],
    rstd: v[3],
    w: p.w ? v[4] : null,
    dx: v[5],
    dw: v[6],
    db: v[7],
    d,
  };
  if (unit < rowUnits) {
    rowsDx(o, unit * per, Math.min(o.mean.length, (unit + 1) * per));
  } else {
    const j0 = (unit - rowUnits) * cols;
    columnGrads(o, j0, Math.min(d, j0 + cols));
  }
}

/** Threads for a layer-norm job of `size` elements (1: run it here; the fast path only). */
function layerNormThreads(size: number): number {
  const t = liveCpuOptions.threads;
  return t > 1 && liveCpuOptions.fastKernels && size >= threadMinimums.rows ? t : 1;
}

/** The layer-norm family of the CPU backend. */
export const layerNormKernels: KernelFamily<CpuBuffer, "layerNorm" | "layerNormBackward"> = {
  layerNorm(inputs, [y, mean, rstd], { eps, hasWeight, hasBias }) {
    const x = inputs[0], d = x.shape[x.shape.length - 1];
    const w = hasWeight ? inputs[1].buf : null, b = hasBias ? inputs[hasWeight ? 2 : 1].buf : null;
    const o: Forward = { x: x.buf, w, b, y: y.buf, mean: mean.buf, rstd: rstd.buf, d, eps };
    const threads = layerNormThreads(x.buf.length), rows = mean.buf.length, per = rowsPerUnit(rows, threads);
    if (threads > 1) {
      const p: Present = { w: w !== null, b: b !== null }, views = [o.x, w ?? o.x, b ?? o.x, o.y, o.mean, o.rstd];
      const key = `${p.w}|${p.b}`;
      if (runParallel("layerNorm", key, p, layerNormUnit, views, [d, eps, per], Math.ceil(rows / per), threads)) return;
    }
    (liveCpuOptions.fastKernels ? forwardFast : forwardReference)(o);
  },
  layerNormBackward(inputs, [dx, dw, db], { hasWeight }) {
    const [g, x, mean, rstd] = inputs, d = x.shape[x.shape.length - 1];
    const o: Backward = {
      g: g.buf,
      x: x.buf,
      mean: mean.buf,
      rstd: rstd.buf,
      w: hasWeight ? inputs[4].buf : null,
      dx: dx.buf,
      dw: dw.buf,
      db: db.buf,
      d,
    };
    const threads = layerNormThreads(o.x.length), rows = o.mean.length, per = rowsPerUnit(rows, threads);
    if (threads > 1) {
      const rowUnits = Math.ceil(rows / per), cols = Math.max(16, Math.ceil(d / (2 * threads)));
      const views = [o.g, o.x, o.mean, o.rstd, o.w ?? o.g, o.dx, o.dw, o.db];
      const units = rowUnits + Math.ceil(d / cols);
      const p: Present = { w: o.w !== null, b: true };
      const args = [d, per, rowUnits, cols];
      if (runParallel("layerNormBackward", String(p.w), p, layerNormBackwardUnit, views, args, units, threads)) return;
    }
    (liveCpuOptions.fastKernels ? backwardFast : backwardReference)(o);
  },
};
