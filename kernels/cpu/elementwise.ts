/**
 * CPU elementwise kernels: fill, random, cast, unary, binary and where (with NumPy broadcasting).
 *
 * @module
 */
import { broadcastStrides, shapesEqual, sizeOf } from "../../core/shape.ts";
import { fillRandom } from "../../core/random/philox.ts";
import type { BinaryOp, KernelFamily, TensorRef, UnaryOp } from "../registry.ts";
import { type CpuBuffer, stridedOffsets } from "./buffer.ts";
import { erf, gelu, geluTanh, sigmoid } from "./math.ts";
import { liveCpuOptions } from "./config.ts";
import { fastBinary, fastUnary, fastWhere } from "./fast_elementwise.ts";

type F1 = (x: number) => number;
type F2 = (a: number, b: number) => number;

const UNARY: Record<UnaryOp, F1> = {
  neg: (x) => -x,
  abs: Math.abs,
  sign: (x) => (x > 0 ? 1 : x < 0 ? -1 : x === 0 ? 0 : NaN),
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  tanh: Math.tanh,
  sigmoid,
  relu: (x) => (x > 0 ? x : x === x ? 0 : NaN),
  gelu,
  gelu_tanh: geluTanh,
  silu: (x) => x * sigmoid(x),
  erf,
  sin: Math.sin,
  cos: Math.cos,
  not: (x) => (x ? 0 : 1),
  isnan: (x) => (x !== x ? 1 : 0),
};

const BINARY: Record<BinaryOp, F2> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: Math.pow,
  // NaN propagates, as in torch.maximum/minimum.
  maximum: (a, b) => (a !== a || b !== b ? NaN : a > b ? a : b),
  minimum: (a, b) => (a !== a || b !== b ? NaN : a < b ? a : b),
  eq: (a, b) => (a === b ? 1 : 0),
  ne: (a, b) => (a !== b ? 1 : 0),
  lt: (a, b) => (a < b ? 1 : 0),
  le: (a, b) => (a <= b ? 1 : 0),
  gt: (a, b) => (a > b ? 1 : 0),
  ge: (a, b) => (a >= b ? 1 : 0),
  and: (a, b) => (a && b ? 1 : 0),
  or: (a, b) => (a || b ? 1 : 0),
};

function map2(a: TensorRef<CpuBuffer>, b: TensorRef<CpuBuffer>, out: TensorRef<CpuBuffer>, f: F2): void {
  const x = a.buf, y = b.buf, o = out.buf, n = o.length;
  if (shapesEqual(a.shape, out.shape) && shapesEqual(b.shape, out.shape)) {
    for (let i = 0; i < n; i++) o[i] = f(x[i], y[i]);
  } else if (sizeOf(b.shape) === 1 && shapesEqual(a.shape, out.shape)) {
    const s = y[0];
    for (let i = 0; i < n; i++) o[i] = f(x[i], s);
  } else if (sizeOf(a.shape) === 1 && shapesEqual(b.shape, out.shape)) {
    const s = x[0];
    for (let i = 0; i < n; i++) o[i] = f(s, y[i]);
  } else {
    const [ia, ib] = stridedOffsets(out.shape, [
      broadcastStrides(a.shape, out.shape),
      broadcastStrides(b.shape, out.shape),
    ], [0, 0]);
    for (let i = 0; i < n; i++) o[i] = f(x[ia[i]], y[ib[i]]);
  }
}

/** The elementwise family of the CPU backend. */
export const elementwiseKernels: KernelFamily<CpuBuffer, "fill" | "random" | "cast" | "unary" | "binary" | "where"> = {
  fill(_inputs, [out], { value }) {
    out.buf.fill(value);
  },
  random(_inputs, [out], { dist, key, counter, loc, scale }) {
    fillRandom(out.buf, dist, key, counter, loc, scale);
  },
  cast([x], [out]) {
    const src = x.buf, dst = out.buf;
    if (out.dtype === "bool") { for (let i = 0; i < dst.length; i++) dst[i] = src[i] !== 0 ? 1 : 0; }
    else if (out.dtype === "i32") { for (let i = 0; i < dst.length; i++) dst[i] = Math.trunc(src[i]); }
    else dst.set(src);
  },
  unary([x], [out], { op }) {
    if (liveCpuOptions.fastKernels && fastUnary(op, x.buf, out.buf)) return;
    const f = UNARY[op], src = x.buf, dst = out.buf;
    for (let i = 0; i < dst.length; i++) dst[i] = f(src[i]);
  },
  binary([a, b], [out], { op }) {
    if (liveCpuOptions.fastKernels) fastBinary(op, BINARY[op], a, b, out);
    else map2(a, b, out, BINARY[op]);
  },
  where([c, a, b], [out]) {
    if (liveCpuOptions.fastKernels) {
      fastWhere(c, a, b, out);
      return;
    }
    const [ic, ia, ib] = stridedOffsets(
      out.shape,
      [c, a, b].map((t) => broadcastStrides(t.shape, out.shape)),
      [0, 0, 0],
    );
    const o = out.buf, cb = c.buf, ab = a.buf, bb = b.buf;
    for (let i = 0; i < o.length; i++) o[i] = cb[ic[i]] ? ab[ia[i]] : bb[ib[i]];
  },
};
