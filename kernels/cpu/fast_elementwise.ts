/**
 * Fast paths of the CPU elementwise kernels (used when `fastKernels` is on; `elementwise.ts` keeps the
 * plain reference loops). Two ideas:
 *
 * - Broadcasting without index arrays: the output's dims are collapsed wherever every operand stays
 *   contiguous (or stays broadcast), which leaves an inner run with operand strides 0 or 1 and at most a
 *   few outer dims walked by an odometer. `[N,d] op [d]`, `[N,d] op [N,1]`, scalars and bias adds like
 *   `[E,M,h] + [E,1,h]` all become long contiguous runs.
 * - One loop per hot op (add, sub, mul, div, exp, …) instead of calling a closure per element: a closure
 *   call site that sees every op is megamorphic and is never inlined.
 *
 * Every fast path computes each element with the same double-precision expression as the reference and
 * stores it into the same typed array, so results are bit-identical to the reference.
 *
 * @module
 */
import { broadcastStrides } from "../../core/shape.ts";
import type { Shape } from "../../core/shape.ts";
import type { BinaryOp, UnaryOp } from "../registry.ts";
import type { CpuBuffer } from "./buffer.ts";
import { fastErf, fastGelu } from "./fast_math.ts";

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

/** Calls `run(outOffset, offsets…, n)` for every inner run of `plan` (an odometer over the outer dims). */
function forEachRun(plan: RunPlan, run: (o: number, i0: number, i1: number, i2: number) => void): void {
  const { shape, strides } = plan;
  const rank = shape.length, n = shape[rank - 1];
  const s0 = strides[0], s1 = strides[1] ?? s0, s2 = strides[2] ?? s0;
  let outer = 1;
  for (let d = 0; d < rank - 1; d++) outer *= shape[d];
  if (n === 0 || outer === 0) return;
  const idx = new Array<number>(rank).fill(0);
  let i0 = 0, i1 = 0, i2 = 0;
  for (let r = 0, o = 0; r < outer; r++, o += n) {
    run(o, i0, i1, i2);
    for (let d = rank - 2; d >= 0; d--) {
      i0 += s0[d];
      i1 += s1[d];
      i2 += s2[d];
      if (++idx[d] < shape[d]) break;
      i0 -= s0[d] * shape[d];
      i1 -= s1[d] * shape[d];
      i2 -= s2[d] * shape[d];
      idx[d] = 0;
    }
  }
}

type F2 = (a: number, b: number) => number;

/** One inner run of a binary op: o[oo + j] = f(x[xo + j·xs], y[yo + j·ys]) with xs, ys ∈ {0, 1}. */
function runBinary(
  op: BinaryOp,
  f: F2,
  o: CpuBuffer,
  oo: number,
  x: CpuBuffer,
  xo: number,
  xs: number,
  y: CpuBuffer,
  yo: number,
  ys: number,
  n: number,
): void {
  if (xs === 1 && ys === 1) {
    switch (op) {
      case "add":
        for (let j = 0; j < n; j++) o[oo + j] = x[xo + j] + y[yo + j];
        return;
      case "sub":
        for (let j = 0; j < n; j++) o[oo + j] = x[xo + j] - y[yo + j];
        return;
      case "mul":
        for (let j = 0; j < n; j++) o[oo + j] = x[xo + j] * y[yo + j];
        return;
      case "div":
        for (let j = 0; j < n; j++) o[oo + j] = x[xo + j] / y[yo + j];
        return;
    }
    for (let j = 0; j < n; j++) o[oo + j] = f(x[xo + j], y[yo + j]);
    return;
  }
  if (xs === 1 && ys === 0) {
    const s = y[yo];
    switch (op) {
      case "add":
        for (let j = 0; j < n; j++) o[oo + j] = x[xo + j] + s;
        return;
      case "sub":
        for (let j = 0; j < n; j++) o[oo + j] = x[xo + j] - s;
        return;
      case "mul":
        for (let j = 0; j < n; j++) o[oo + j] = x[xo + j] * s;
        return;
      case "div":
        for (let j = 0; j < n; j++) o[oo + j] = x[xo + j] / s;
        return;
    }
    for (let j = 0; j < n; j++) o[oo + j] = f(x[xo + j], s);
    return;
  }
  if (xs === 0 && ys === 1) {
    const s = x[xo];
    switch (op) {
      case "add":
        for (let j = 0; j < n; j++) o[oo + j] = s + y[yo + j];
        return;
      case "sub":
        for (let j = 0; j < n; j++) o[oo + j] = s - y[yo + j];
        return;
      case "mul":
        for (let j = 0; j < n; j++) o[oo + j] = s * y[yo + j];
        return;
      case "div":
        for (let j = 0; j < n; j++) o[oo + j] = s / y[yo + j];
        return;
    }
    for (let j = 0; j < n; j++) o[oo + j] = f(s, y[yo + j]);
    return;
  }
  // Both broadcast along the run (or, never for dense inputs, other strides): the general form.
  for (let j = 0; j < n; j++) o[oo + j] = f(x[xo + j * xs], y[yo + j * ys]);
}

/** Fast binary: `out = f(a, b)` with broadcasting; bit-identical to the reference. */
export function fastBinary(
  op: BinaryOp,
  f: F2,
  a: { buf: CpuBuffer; shape: Shape },
  b: { buf: CpuBuffer; shape: Shape },
  out: { buf: CpuBuffer; shape: Shape },
): void {
  const plan = planRuns([a.shape, b.shape], out.shape);
  const r = plan.shape.length - 1, n = plan.shape[r];
  const xs = plan.strides[0][r], ys = plan.strides[1][r];
  const x = a.buf, y = b.buf, o = out.buf;
  if (r === 0) {
    runBinary(op, f, o, 0, x, 0, xs, y, 0, ys, n);
    return;
  }
  forEachRun(plan, (oo, xo, yo) => runBinary(op, f, o, oo, x, xo, xs, y, yo, ys, n));
}

/** Fast where: `out = c ? a : b` with broadcasting, without index arrays. */
export function fastWhere(
  c: { buf: CpuBuffer; shape: Shape },
  a: { buf: CpuBuffer; shape: Shape },
  b: { buf: CpuBuffer; shape: Shape },
  out: { buf: CpuBuffer; shape: Shape },
): void {
  const plan = planRuns([c.shape, a.shape, b.shape], out.shape);
  const r = plan.shape.length - 1, n = plan.shape[r];
  const cs = plan.strides[0][r], as = plan.strides[1][r], bs = plan.strides[2][r];
  const cb = c.buf, ab = a.buf, bb = b.buf, o = out.buf;
  forEachRun(plan, (oo, co, ao, bo) => {
    if (cs === 1 && as === 1 && bs === 1) {
      for (let j = 0; j < n; j++) o[oo + j] = cb[co + j] ? ab[ao + j] : bb[bo + j];
    } else if (cs === 1 && as === 0 && bs === 1) {
      const s = ab[ao];
      for (let j = 0; j < n; j++) o[oo + j] = cb[co + j] ? s : bb[bo + j];
    } else if (cs === 1 && as === 1 && bs === 0) {
      const s = bb[bo];
      for (let j = 0; j < n; j++) o[oo + j] = cb[co + j] ? ab[ao + j] : s;
    } else {
      for (let j = 0; j < n; j++) o[oo + j] = cb[co + j * cs] ? ab[ao + j * as] : bb[bo + j * bs];
    }
  });
}

/**
 * Fast unary: one loop per common op; returns false for the ops it leaves to the reference loop. The
 * expressions are the reference's (`Math.exp`, `1 / Math.sqrt`, …), so results are bit-identical, except
 * erf and exact GELU into f32, which use the table-driven {@link fastErf} (equal after rounding to f32
 * but for rare last-bit ties; f64 keeps the reference series).
 */
export function fastUnary(op: UnaryOp, src: CpuBuffer, dst: CpuBuffer): boolean {
  const n = dst.length;
  switch (op) {
    case "neg":
      for (let i = 0; i < n; i++) dst[i] = -src[i];
      return true;
    case "exp":
      for (let i = 0; i < n; i++) dst[i] = Math.exp(src[i]);
      return true;
    case "log":
      for (let i = 0; i < n; i++) dst[i] = Math.log(src[i]);
      return true;
    case "sqrt":
      for (let i = 0; i < n; i++) dst[i] = Math.sqrt(src[i]);
      return true;
    case "rsqrt":
      for (let i = 0; i < n; i++) dst[i] = 1 / Math.sqrt(src[i]);
      return true;
    case "abs":
      for (let i = 0; i < n; i++) dst[i] = Math.abs(src[i]);
      return true;
    case "tanh":
      for (let i = 0; i < n; i++) dst[i] = Math.tanh(src[i]);
      return true;
    case "erf":
      if (!(dst instanceof Float32Array)) return false;
      for (let i = 0; i < n; i++) dst[i] = fastErf(src[i]);
      return true;
    case "gelu":
      if (!(dst instanceof Float32Array)) return false;
      for (let i = 0; i < n; i++) dst[i] = fastGelu(src[i]);
      return true;
    case "relu":
      for (let i = 0; i < n; i++) {
        const x = src[i];
        dst[i] = x > 0 ? x : x === x ? 0 : NaN;
      }
      return true;
  }
  return false;
}
