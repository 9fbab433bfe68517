/**
 * CPU indexing kernels: gather / scatterAdd along an axis, indexSelect / indexAdd with a 1-D index.
 * Indices are bounds-checked; the error names the op, the index and the shape.
 *
 * @module
 */
import { fmtShape, OpError } from "../../core/errors.ts";
import type { Shape } from "../../core/shape.ts";
import { stridesOf } from "../../core/shape.ts";
import type { KernelFamily } from "../registry.ts";
import { aroundAxis, type CpuBuffer, stridedOffsets } from "./buffer.ts";
import { rowAdder } from "./wasm/elementwise.ts";
import { liveCpuOptions } from "./config.ts";

function checked(op: string, v: number, size: number, axis: number, shape: Shape): number {
  if (v < 0 || v >= size) {
    throw new OpError(
      op,
      `index ${v} is out of range for axis ${axis} of size ${size} (input shape ${fmtShape(shape)})`,
    );
  }
  return v;
}

/**
 * For every element of `index` (row-major): the flat offset into a tensor of shape `target` at the same
 * coordinates except along `axis`, where the coordinate is 0 (the caller adds index · stride).
 */
function baseOffsets(index: Shape, target: Shape, axis: number): { offs: Int32Array; stride: number } {
  const strides = stridesOf(target).map((s, i) => (i === axis ? 0 : s));
  const [offs] = stridedOffsets(index, [strides], [0]);
  return { offs, stride: stridesOf(target)[axis] };
}

/** The indexing family of the CPU backend. */
export const indexKernels: KernelFamily<CpuBuffer, "gather" | "scatterAdd" | "indexSelect" | "indexAdd"> = {
  gather([x, index], [out], { axis }) {
    const { offs, stride } = baseOffsets(index.shape, x.shape, axis);
    const size = x.shape[axis], src = x.buf, idx = index.buf, dst = out.buf;
    for (let i = 0; i < dst.length; i++) {
      dst[i] = src[offs[i] + checked("gather", idx[i], size, axis, x.shape) * stride];
    }
  },
  scatterAdd([x, index, src], [out], { axis }) {
    out.buf.set(x.buf);
    const { offs, stride } = baseOffsets(index.shape, x.shape, axis);
    const size = x.shape[axis], idx = index.buf, s = src.buf, dst = out.buf;
    for (let i = 0; i < s.length; i++) {
      dst[offs[i] + checked("scatterAdd", idx[i], size, axis, x.shape) * stride] += s[i];
    }
  },
  indexSelect([x, index], [out], { axis }) {
    const [outer, size, inner] = aroundAxis(x.shape, axis);
    const k = index.shape[0], idx = index.buf, src = x.buf, dst = out.buf;
    for (let j = 0; j < k; j++) {
      const v = checked("indexSelect", idx[j], size, axis, x.shape);
      for (let o = 0; o < outer; o++) {
        dst.set(src.subarray((o * size + v) * inner, (o * size + v + 1) * inner), (o * k + j) * inner);
      }
    }
  },
  indexAdd([x, index, src], [out], { axis }) {
    out.buf.set(x.buf);
    const [outer, size, inner] = aroundAxis(x.shape, axis);
    const k = index.shape[0], idx = index.buf, s = src.buf, dst = out.buf;
    // Rows of f32 tensors in the tensor memory are added on SIMD lanes in place (the same f32 sums, in the same
    // order: the JavaScript loop below reads a union of array types, ≈ 1 ns an element).
    const addRow = liveCpuOptions.wasm ? rowAdder(dst, s) : null;
    for (let j = 0; j < k; j++) {
      const v = checked("indexAdd", idx[j], size, axis, x.shape);
      for (let o = 0; o < outer; o++) {
        const d = (o * size + v) * inner, q = (o * k + j) * inner;
        if (addRow) addRow(d, q, inner);
        else for (let t = 0; t < inner; t++) dst[d + t] += s[q + t];
      }
    }
  },
};
