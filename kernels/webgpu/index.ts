/**
 * WebGPU indexing kernels: gather / scatterAdd along an axis, indexSelect / indexAdd with a 1-D index.
 *
 * The additions are destination-centric and use no atomics: every output element starts from the base and
 * adds the source entries that target it in increasing source order — the order of the CPU loops — so
 * results are deterministic run to run and f32 sums round exactly as on the CPU.
 *
 * Index range: a shader cannot throw, so out-of-range indices (negative or ≥ the axis size) never touch
 * memory out of bounds: `gather` and `indexSelect` write 0 for them, `scatterAdd` and `indexAdd` skip their
 * source entries. (The CPU kernels throw an OpError instead.)
 *
 * @module
 */
import { sizeOf, stridesOf } from "../../core/shape.ts";
import type { KernelFamily } from "../registry.ts";
import type { GpuBuffer, WebGpuRuntime } from "./runtime.ts";
import { wgslType } from "./runtime.ts";
import { copyBuffer } from "./layout.ts";
import { coordWalkWgsl, MAIN_1D, WG } from "./wgsl.ts";

/** End of a linked list in the indexAdd scratch buffer. */
const END = 0xffffffff;

/** gather: thread `i`'s offset `off` into x along every axis but `axis` (params as in `gather`). */
const GATHER_WALK = coordWalkWgsl({
  rank: "params[1]",
  shapeAt: 5,
  before: "let axis = params[2]; var off = 0u;",
  body: "if (k != axis) { off += c * params[5u + rank + k]; }",
});

/**
 * scatterAdd: thread `i`'s axis coordinate `v`, whether its other coordinates lie `inside` index's shape, and
 * the offset `off` of its index fiber (params as in `scatterAdd`).
 */
const SCATTER_WALK = coordWalkWgsl({
  rank: "params[1]",
  shapeAt: 4,
  before: "let axis = params[2]; var off = 0u; var v = 0u; var inside = true;",
  body: `if (k == axis) { v = c; } else {
      if (c >= params[4u + rank + k]) { inside = false; }
      off += c * params[4u + 2u * rank + k];
    }`,
});

/** The indexing family of the WebGPU backend. */
export function indexKernels(
  rt: WebGpuRuntime,
): KernelFamily<GpuBuffer, "gather" | "scatterAdd" | "indexSelect" | "indexAdd"> {
  return {
    gather([x, index], [out], { axis }) {
      const type = wgslType(out.dtype);
      const n = sizeOf(out.shape);
      const rank = x.shape.length;
      const xs = stridesOf(x.shape);
      // params = [n, rank, axis, size, n_x, index shape[rank], x strides[rank]]; the walk over index's
      // coordinates skips the axis, whose coordinate comes from the index value.
      rt.dispatch({
        shader: `${MAIN_1D}
  if (i >= params[0]) { return; }${GATHER_WALK}
  let v = in1[i];
  // Out-of-range index: 0 (the CPU kernel throws).
  if (v < 0 || u32(v) >= params[3]) { out0[i] = ${type}(0); return; }
  out0[i] = in0[off + u32(v) * params[5u + rank + axis]];
}`,
        inputTypes: [type, "i32"],
        outputTypes: [type],
        inputs: [x.buf, index.buf],
        outputs: [out.buf],
        params: [n, rank, axis, x.shape[axis], sizeOf(x.shape), ...index.shape, ...xs],
        workgroups: Math.ceil(n / WG),
      });
    },
    scatterAdd([x, index, src], [out], { axis }) {
      const type = wgslType(out.dtype);
      const n = sizeOf(out.shape);
      const rank = x.shape.length;
      const is = stridesOf(index.shape);
      // Thread per output element: its off-axis coordinates must lie inside index's shape, then it scans the
      // index fiber along the axis (in increasing order, as the CPU loop adds) for entries equal to its own
      // axis coordinate. params = [n, rank, axis, K, x shape[rank], index shape[rank], index strides[rank]].
      rt.dispatch({
        shader: `${MAIN_1D}
  if (i >= params[0]) { return; }${SCATTER_WALK}
  var acc = in0[i];
  if (inside) {
    let step = params[4u + 2u * rank + axis];
    // Out-of-range index values match no output element, so their entries are skipped.
    for (var j = 0u; j < params[3]; j++) {
      let p = off + j * step;
      if (in1[p] == i32(v)) { acc += in2[p]; }
    }
  }
  out0[i] = acc;
}`,
        inputTypes: [type, "i32", type],
        outputTypes: [type],
        inputs: [x.buf, index.buf, src.buf],
        outputs: [out.buf],
        params: [n, rank, axis, index.shape[axis], ...x.shape, ...index.shape, ...is],
        workgroups: Math.ceil(n / WG),
      });
    },
    indexSelect([x, index], [out], { axis }) {
      const type = wgslType(out.dtype);
      const n = sizeOf(out.shape);
      const inner = stridesOf(x.shape)[axis];
      const k = index.shape[0];
      // params = [n, k·inner, inner, size].
      rt.dispatch({
        shader: `${MAIN_1D}
  if (i >= params[0]) { return; }
  let o = i / params[1];
  let r = i % params[1];
  let v = in1[r / params[2]];
  // Out-of-range index: 0 (the CPU kernel throws).
  if (v < 0 || u32(v) >= params[3]) { out0[i] = ${type}(0); return; }
  out0[i] = in0[(o * params[3] + u32(v)) * params[2] + r % params[2]];
}`,
        inputTypes: [type, "i32"],
        outputTypes: [type],
        inputs: [x.buf, index.buf],
        outputs: [out.buf],
        params: [n, k * inner, inner, x.shape[axis]],
        workgroups: Math.ceil(n / WG),
      });
    },
    indexAdd([x, index, src], [out], { axis }) {
      const type = wgslType(out.dtype);
      const n = sizeOf(out.shape);
      const size = x.shape[axis];
      const inner = stridesOf(x.shape)[axis];
      const k = index.shape[0];
      if (n === 0) return;
      if (k === 0 || inner === 0) {
        copyBuffer(rt, type, x.buf, out.buf, n);
        return;
      }
      // Two passes over a scratch buffer of u32 linked lists: [head[size], next[k]]. Pass 1, a thread per
      // axis position v, links the entries j with index[j] = v in increasing j (so no thread scans the whole
      // index per output element); pass 2, a thread per output element, starts from the base and follows its
      // list — the CPU's order of additions. Out-of-range index values are on no list: skipped.
      const scratch = rt.alloc((size + k) * 4);
      rt.dispatch({
        shader: `${MAIN_1D}
  let nv = params[0];
  if (i >= nv) { return; }
  var prev = ${END}u;
  for (var j = 0u; j < params[1]; j++) {
    if (in0[j] == i32(i)) {
      if (prev == ${END}u) { out0[i] = j; } else { out0[nv + prev] = j; }
      prev = j;
    }
  }
  if (prev == ${END}u) { out0[i] = ${END}u; } else { out0[nv + prev] = ${END}u; }
}`,
        inputTypes: ["i32"],
        outputTypes: ["u32"],
        inputs: [index.buf],
        outputs: [scratch],
        params: [size, k],
        workgroups: Math.ceil(size / WG),
      });
      // params = [n, size·inner, inner, size, k].
      rt.dispatch({
        shader: `${MAIN_1D}
  if (i >= params[0]) { return; }
  let o = i / params[1];
  let r = i % params[1];
  let v = r / params[2];
  let t = r % params[2];
  let base = o * params[4] * params[2] + t;
  var acc = in0[i];
  var j = in1[v];
  while (j != ${END}u) {
    acc += in2[base + j * params[2]];
    j = in1[params[3] + j];
  }
  out0[i] = acc;
}`,
        inputTypes: [type, "u32", type],
        outputTypes: [type],
        inputs: [x.buf, scratch, src.buf],
        outputs: [out.buf],
        params: [n, size * inner, inner, size, k],
        workgroups: Math.ceil(n / WG),
      });
      rt.free(scratch);
    },
  };
}
