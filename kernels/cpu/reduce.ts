/**
 * CPU kernels along one axis: reduce, argReduce, softmax and cumsum. Each views the tensor as
 * [outer, size, inner] around the axis.
 *
 * @module
 */
import type { KernelFamily } from "../registry.ts";
import { aroundAxis, type CpuBuffer } from "./buffer.ts";
import { liveCpuOptions } from "./config.ts";
import { fastSumLast, fastSumMiddle } from "./fast_layout.ts";
import { fastSoftmax } from "./fast_softmax.ts";
import { runParallel, threadMinimums } from "./threads/pool.ts";
import { intArg } from "./threads/layout.ts";

/** The axis-wise family of the CPU backend. */
export const reduceKernels: KernelFamily<CpuBuffer, "reduce" | "argReduce" | "softmax" | "cumsum"> = {
  reduce([x], [out], { op, axis }) {
    const [outer, n, inner] = aroundAxis(x.shape, axis);
    const src = x.buf, dst = out.buf, fast = liveCpuOptions.fastKernels;
    const threads = liveCpuOptions.threads;
    if (op === "sum" && fast && threads > 1 && src.length >= threadMinimums.sum) {
      const cut = cutRows(outer, inner > 1 ? inner : 1, threads);
      const desc: SumDesc = { middle: inner > 1 };
      if (
        runParallel("sum", String(desc.middle), desc, sumUnit, [src, dst], [outer, n, inner, ...cut], cut[2], threads)
      ) {
        return;
      }
    }
    if (op === "sum" && fast) {
      if (inner > 1) return fastSumMiddle(src, dst, outer, n, inner);
      if (outer >= 4) return fastSumLast(src, dst, outer, n);
    }
    reduceRows(op, src, dst, n, inner, 0, outer);
  },
  argReduce([x], [out], { op, axis }) {
    const [outer, n, inner] = aroundAxis(x.shape, axis);
    const src = x.buf, dst = out.buf, max = op === "argmax";
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) {
        const base = o * n * inner + j;
        let best = src[base], at = 0;
        for (let i = 1; i < n && best === best; i++) {
          const v = src[base + i * inner];
          if (v !== v || (max ? v > best : v < best)) {
            best = v;
            at = i;
          }
        }
        dst[o * inner + j] = at;
      }
    }
  },
  softmax([x], [out], { axis, log }) {
    const [outer, n, inner] = aroundAxis(x.shape, axis);
    const { threads, fastKernels: fast, wasm } = liveCpuOptions;
    const desc: SoftmaxDesc = { log, fast, wasm };
    if (threads > 1 && x.buf.length >= threadMinimums.softmax) {
      const cut = cutRows(outer, 1, threads);
      if (
        runParallel(
          "softmax",
          `${log}|${fast}|${wasm}`,
          desc,
          softmaxUnit,
          [x.buf, out.buf],
          [outer, n, inner, ...cut],
          cut[2],
          threads,
        )
      ) {
        return;
      }
    }
    softmaxRows(desc, x.buf, out.buf, outer, n, inner, 0, outer);
  },
  cumsum([x], [out], { axis, reverse }) {
    const [outer, n, inner] = aroundAxis(x.shape, axis);
    const src = x.buf, dst = out.buf;
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) {
        const base = o * n * inner + j;
        let acc = 0;
        for (let s = 0; s < n; s++) {
          const i = reverse ? n - 1 - s : s;
          acc += src[base + i * inner];
          dst[base + i * inner] = acc;
        }
      }
    }
  },
};

/** The reference reduction of outer rows [o0, o1) (see `reduce`). */
function reduceRows(
  op: "sum" | "max" | "min",
  src: CpuBuffer,
  dst: CpuBuffer,
  n: number,
  inner: number,
  o0: number,
  o1: number,
): void {
  for (let o = o0; o < o1; o++) {
    for (let j = 0; j < inner; j++) {
      const base = o * n * inner + j;
      let acc = op === "sum" ? 0 : src[base];
      if (op === "sum") { for (let i = 0; i < n; i++) acc += src[base + i * inner]; }
      else if (op === "max") {
        for (let i = 1; i < n && acc === acc; i++) {
          const v = src[base + i * inner];
          if (v > acc || v !== v) acc = v;
        }
      } else {
        for (let i = 1; i < n && acc === acc; i++) {
          const v = src[base + i * inner];
          if (v < acc || v !== v) acc = v;
        }
      }
      dst[o * inner + j] = acc;
    }
  }
}

/**
 * How a softmax runs: log or not, and the caller's kernel path (the f32 fast path of `fast_softmax.ts`, with
 * or without its SIMD exponentials) — passed to the Workers so that their shares take the same path.
 */
export interface SoftmaxDesc {
  log: boolean;
  fast: boolean;
  wasm: boolean;
}

/** Softmax (or log-softmax) of outer rows [o0, o1) (see `softmax`); `src` may be `dst` (each row reads before it writes). */
export function softmaxRows(
  desc: SoftmaxDesc,
  src: CpuBuffer,
  dst: CpuBuffer,
  outer: number,
  n: number,
  inner: number,
  o0: number,
  o1: number,
): void {
  const log = desc.log;
  if (desc.fast && src instanceof Float32Array && dst instanceof Float32Array) {
    return fastSoftmax(src, dst, outer, n, inner, log, desc.wasm, o0, o1);
  }
  for (let o = o0; o < o1; o++) {
    for (let j = 0; j < inner; j++) {
      const base = o * n * inner + j;
      let m = -Infinity;
      for (let i = 0; i < n; i++) m = Math.max(m, src[base + i * inner]);
      let total = 0;
      for (let i = 0; i < n; i++) total += Math.exp(src[base + i * inner] - m);
      if (log) {
        const lse = m + Math.log(total);
        for (let i = 0; i < n; i++) dst[base + i * inner] = src[base + i * inner] - lse;
      } else {
        for (let i = 0; i < n; i++) dst[base + i * inner] = Math.exp(src[base + i * inner] - m) / total;
      }
    }
  }
}

/**
 * How a threaded row job is cut: [rows per unit, column blocks per row, units], about four units per
 * thread; columns (of `inner`, at least 64 each) are cut only when there are too few rows.
 */
function cutRows(outer: number, inner: number, threads: number): [number, number, number] {
  const want = 4 * threads;
  const rows = Math.max(1, Math.floor(outer / want));
  const blocks = outer >= want ? 1 : Math.max(1, Math.min(Math.ceil(want / outer), Math.floor(inner / 64)));
  return [rows, blocks, Math.ceil(outer / rows) * blocks];
}

/** The outer rows [o0, o1) and columns [j0, j1) of unit `unit` (args: outer, n, inner, rows, blocks, units). */
function unitRows(args: ArrayLike<number>, unit: number): [number, number, number, number] {
  const outer = intArg(args, 0), inner = intArg(args, 2), rows = intArg(args, 3), blocks = intArg(args, 4);
  const r = Math.floor(unit / blocks), b = unit - r * blocks, width = Math.ceil(inner / blocks);
  return [r * rows, Math.min(outer, (r + 1) * rows), b * width, Math.min(inner, (b + 1) * width)];
}

/** What a Worker needs to run a share of a sum: whether it is the fast middle-axis sum. */
interface SumDesc {
  middle: boolean;
}

/** Unit `unit` of a threaded sum: `views` = [x, out]; see {@link cutRows}. */
export function sumUnit(desc: SumDesc, views: readonly CpuBuffer[], args: ArrayLike<number>, unit: number): void {
  const [o0, o1, j0, j1] = unitRows(args, unit);
  // A threaded sum is always the fast path (see `reduce`): the same loops as one thread, on a share of rows.
  const [outer, n, inner] = [intArg(args, 0), intArg(args, 1), intArg(args, 2)];
  if (desc.middle) fastSumMiddle(views[0], views[1], outer, n, inner, o0, o1, j0, j1);
  else fastSumLast(views[0], views[1], outer, n, o0, o1);
}

/** Unit `unit` of a threaded softmax: `views` = [x, out]; whole rows (see {@link cutRows}). */
export function softmaxUnit(
  desc: SoftmaxDesc,
  views: readonly CpuBuffer[],
  args: ArrayLike<number>,
  unit: number,
): void {
  const [o0, o1] = unitRows(args, unit);
  softmaxRows(desc, views[0], views[1], intArg(args, 0), intArg(args, 1), intArg(args, 2), o0, o1);
}
