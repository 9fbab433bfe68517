/**
 * CPU order-statistics kernels on the last axis: stable sort and topk (ties → lowest index, NaN largest).
 *
 * @module
 */
import type { KernelFamily } from "../registry.ts";
import type { CpuBuffer } from "./buffer.ts";

/** Compares two entries of a row by value only, with NaN greater than every number. */
function compareValues(src: CpuBuffer, base: number) {
  return (i: number, j: number): number => {
    const a = src[base + i], b = src[base + j];
    const an = a !== a, bn = b !== b;
    if (an || bn) return an === bn ? 0 : an ? 1 : -1;
    return a < b ? -1 : a > b ? 1 : 0;
  };
}

/** The stable sorting permutation of one row; equal values keep index order in both directions. */
function sortedRow(src: CpuBuffer, base: number, n: number, descending: boolean): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  const cmp = compareValues(src, base);
  order.sort(descending ? (i, j) => cmp(j, i) || i - j : (i, j) => cmp(i, j) || i - j);
  return order;
}

/** The sorting family of the CPU backend. */
export const sortKernels: KernelFamily<CpuBuffer, "topk" | "sort"> = {
  sort([x], [values, indices], { descending }) {
    const n = x.shape[x.shape.length - 1] ?? 1, rows = n === 0 ? 0 : x.buf.length / n;
    for (let r = 0; r < rows; r++) {
      const order = sortedRow(x.buf, r * n, n, descending);
      for (let i = 0; i < n; i++) {
        values.buf[r * n + i] = x.buf[r * n + order[i]];
        indices.buf[r * n + i] = order[i];
      }
    }
  },
  topk([x], [values, indices], { k, largest }) {
    const n = x.shape[x.shape.length - 1], rows = n === 0 ? 0 : x.buf.length / n;
    for (let r = 0; r < rows; r++) {
      const order = sortedRow(x.buf, r * n, n, largest);
      for (let i = 0; i < k; i++) {
        values.buf[r * k + i] = x.buf[r * n + order[i]];
        indices.buf[r * k + i] = order[i];
      }
    }
  },
};
