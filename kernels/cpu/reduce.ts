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

/** The axis-wise family of the CPU backend. */
export const reduceKernels: KernelFamily<CpuBuffer, "reduce" | "argReduce" | "softmax" | "cumsum"> = {
  reduce([x], [out], { op, axis }) {
    const [outer, n, inner] = aroundAxis(x.shape, axis);
    const src = x.buf, dst = out.buf;
    if (op === "sum" && liveCpuOptions.fastKernels) {
      if (inner > 1) return fastSumMiddle(src, dst, outer, n, inner);
      if (outer >= 4) return fastSumLast(src, dst, outer, n);
    }
    for (let o = 0; o < outer; o++) {
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
    const src = x.buf, dst = out.buf;
    if (liveCpuOptions.fastKernels && src instanceof Float32Array && dst instanceof Float32Array) {
      return fastSoftmax(src, dst, outer, n, inner, log, liveCpuOptions.wasm);
    }
    for (let o = 0; o < outer; o++) {
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
