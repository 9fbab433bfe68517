/**
 * CPU layout kernels: strided gather (permute / broadcast / slice), its scatter inverse, and concat.
 *
 * @module
 */
import type { KernelFamily } from "../registry.ts";
import { aroundAxis, type CpuBuffer, stridedOffsets } from "./buffer.ts";
import { liveCpuOptions } from "./config.ts";
import { fastStrided, fastStridedScatter } from "./fast_layout.ts";
import { rowsPerUnit, runParallel, threadMinimums } from "./threads/pool.ts";
import { intArg } from "./threads/layout.ts";
import type { Shape } from "../../core/shape.ts";

/**
 * The fast gather, split over the kernel Workers when large: each unit copies a block of the output's
 * first axis longer than 1 (a copy: the same bits on any thread). Returns false when it ran nothing.
 */
function stridedThreaded(src: CpuBuffer, dst: CpuBuffer, shape: Shape, offset: number, strides: readonly number[]) {
  const threads = liveCpuOptions.threads;
  if (threads < 2 || dst.length < threadMinimums.gather) return false;
  const axis = shape.findIndex((d) => d > 1);
  if (axis < 0) return false;
  const per = rowsPerUnit(shape[axis], threads), units = Math.ceil(shape[axis] / per);
  const args = [offset, axis, per, shape.length, ...shape, ...strides];
  return runParallel("strided", "", null, stridedUnit, [src, dst], args, units, threads);
}

/**
 * Unit `unit` of a threaded gather: `views` = [src, dst], `args` = [offset, split axis, rows per unit,
 * rank, shape…, strides…]; copies rows [unit·per, …) of the split axis (the axes before it have length 1).
 */
export function stridedUnit(_desc: null, views: readonly CpuBuffer[], args: ArrayLike<number>, unit: number): void {
  const axis = intArg(args, 1), per = intArg(args, 2), rank = intArg(args, 3);
  const shape = Array.from({ length: rank }, (_, i) => intArg(args, 4 + i));
  const strides = Array.from({ length: rank }, (_, i) => intArg(args, 4 + rank + i));
  const r0 = unit * per, rows = Math.min(shape[axis], r0 + per) - r0;
  let inner = 1;
  for (let d = axis + 1; d < rank; d++) inner *= shape[d];
  shape[axis] = rows;
  const out = views[1].subarray(r0 * inner, (r0 + rows) * inner);
  fastStrided(views[0], out, shape, intArg(args, 0) + r0 * strides[axis], strides);
}

/** The layout family of the CPU backend. */
export const layoutKernels: KernelFamily<CpuBuffer, "strided" | "stridedScatter" | "concat"> = {
  strided([x], [out], { offset, strides }) {
    if (liveCpuOptions.fastKernels) {
      if (stridedThreaded(x.buf, out.buf, out.shape, offset, strides)) return;
      return fastStrided(x.buf, out.buf, out.shape, offset, strides);
    }
    const [idx] = stridedOffsets(out.shape, [strides], [offset]);
    const src = x.buf, dst = out.buf;
    for (let i = 0; i < dst.length; i++) dst[i] = src[idx[i]];
  },
  stridedScatter([base, src], [out], { offset, strides }) {
    out.buf.set(base.buf);
    if (liveCpuOptions.fastKernels) return fastStridedScatter(src.buf, out.buf, src.shape, offset, strides);
    const [idx] = stridedOffsets(src.shape, [strides], [offset]);
    const s = src.buf, dst = out.buf;
    for (let i = 0; i < s.length; i++) dst[idx[i]] = s[i];
  },
  concat(inputs, [out], { axis }) {
    const [outer, total, inner] = aroundAxis(out.shape, axis);
    const dst = out.buf;
    let start = 0;
    for (const t of inputs) {
      const n = t.shape[axis] * inner, src = t.buf;
      for (let o = 0; o < outer; o++) dst.set(src.subarray(o * n, (o + 1) * n), o * total * inner + start * inner);
      start += t.shape[axis];
    }
  },
};
