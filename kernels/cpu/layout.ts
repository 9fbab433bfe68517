/**
 * CPU layout kernels: strided gather (permute / broadcast / slice), its scatter inverse, and concat.
 *
 * @module
 */
import type { KernelFamily } from "../registry.ts";
import { aroundAxis, type CpuBuffer, stridedOffsets } from "./buffer.ts";
import { liveCpuOptions } from "./config.ts";
import { fastStrided, fastStridedScatter } from "./fast_layout.ts";

/** The layout family of the CPU backend. */
export const layoutKernels: KernelFamily<CpuBuffer, "strided" | "stridedScatter" | "concat"> = {
  strided([x], [out], { offset, strides }) {
    if (liveCpuOptions.fastKernels) return fastStrided(x.buf, out.buf, out.shape, offset, strides);
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
