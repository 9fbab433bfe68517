/**
 * CPU layer normalisation over the last axis, forward and backward, one row at a time.
 *
 * Numerics (the registry's `layerNorm`): mean = Σx / D, var = Σ(x − mean)² / D — the biased variance, two passes,
 * with eps inside the square root as PyTorch — and rstd = 1 / √(var + eps). Sums run in double (JavaScript
 * numbers) whatever the dtype; mean and rstd are stored in the output dtype and the normalisation uses the
 * stored values, so the backward (which reads them) sees exactly what the forward used.
 *
 * Each kernel has a reference loop, written as the formulas read, and a fast path
 * (`cpuOptions().fastKernels`): the forward's without per-element branches on weight and bias, the backward's
 * accumulating dweight and dbias in the same pass over the row as dx (row-major, into double accumulators)
 * instead of a second, column-strided pass. Both paths do the same operations in the same order (every column
 * sums its rows from the first), so they agree bit for bit (`tests/kernels/fused_norm_ce_test.ts`).
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

/** The forward with one branch-free inner loop per combination of weight and bias, on rows [r0, r1). */
function forwardFast({ x, w, b, y, mean, rstd, d, eps }: Forward, r0 = 0, r1 = mean.length): void {
  for (let r = r0, base = r0 * d; r < r1; r++, base += d) {
    rowStats(x, base, d, eps, mean, rstd, r);
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
    rowDx(o, r, base);
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
    const r1 = Math.min(o.mean.length, (unit + 1) * per);
    for (let r = unit * per; r < r1; r++) rowDx(o, r, r * d);
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
