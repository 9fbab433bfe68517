/**
 * WebGPU layout kernels: `strided` (permute / broadcast / slice in one gather), `stridedScatter` (its
 * inverse: a copy of the base, then the strided positions overwritten) and `concat` (inputs copied into
 * the output in chunks that fit the per-stage storage-buffer limit).
 *
 * Offsets and strides travel as i32 bit patterns, so negative strides work too. Out-of-range positions
 * (which the op layer never produces) are guarded: `strided` writes 0 for a position outside the input,
 * `stridedScatter` skips a position outside the output.
 *
 * @module
 */
import type { Shape } from "../../core/shape.ts";
import { sizeOf, stridesOf } from "../../core/shape.ts";
import type { KernelFamily } from "../registry.ts";
import type { GpuBuffer, WebGpuRuntime } from "./runtime.ts";
import { wgslType } from "./runtime.ts";
import { coordWalkWgsl, MAIN_1D, WG } from "./wgsl.ts";

/**
 * Drops size-1 axes and merges neighbours that are contiguous with each other under `strides`, so the
 * shader walks as few axes as possible. Returns the reduced shape and strides (same element order).
 */
export function coalesce(shape: Shape, strides: readonly number[]): { shape: number[]; strides: number[] } {
  const s: number[] = [], st: number[] = [];
  for (let k = 0; k < shape.length; k++) {
    if (shape[k] === 1) continue;
    const last = s.length - 1;
    if (last >= 0 && st[last] === strides[k] * shape[k]) {
      s[last] *= shape[k];
      st[last] = strides[k];
    } else {
      s.push(shape[k]);
      st.push(strides[k]);
    }
  }
  return { shape: s, strides: st };
}

/**
 * The strided offset of thread `i`: params = [n, limit, rank, offset, shape[rank], strides[rank]] (offset
 * and strides are i32 bit patterns). Leaves `src: i32` in scope.
 */
const STRIDED_INDEX = coordWalkWgsl({
  rank: "params[2]",
  shapeAt: 4,
  before: "var src = i32p(3u);",
  body: "src += i32(c) * i32p(4u + rank + k);",
});

function stridedParams(n: number, limit: number, shape: Shape, offset: number, strides: readonly number[]): number[] {
  const c = coalesce(shape, strides);
  return [n, limit, c.shape.length, offset >>> 0, ...c.shape, ...c.strides.map((s) => s >>> 0)];
}

/** A plain copy of `n` elements of `type` from `src` into `dst` (also the first step of the scatters). */
export function copyBuffer(rt: WebGpuRuntime, type: string, src: GpuBuffer, dst: GpuBuffer, n: number): void {
  rt.dispatch({
    shader: `${MAIN_1D} if (i >= params[0]) { return; } out0[i] = in0[i]; }`,
    inputTypes: [type],
    outputTypes: [type],
    inputs: [src],
    outputs: [dst],
    params: [n],
    workgroups: Math.ceil(n / WG),
  });
}

/**
 * One dispatch of a concat chunk of `m` inputs: thread per element of the chunk's slab
 * (outer × chunkWidth × inner). params = [n, chunkWidth·inner, total·inner, start·inner, m boundaries
 * (cumulative widths·inner within the chunk, m of them)].
 */
function concatShader(m: number): string {
  const branches: string[] = [];
  for (let j = 0; j < m; j++) {
    const lo = j === 0 ? "0u" : `params[${4 + j - 1}]`;
    const width = j === 0 ? "params[4]" : `(params[${4 + j}] - params[${4 + j - 1}])`;
    const body = `let q = r - ${lo}; out0[dst] = in${j}[o * ${width} + q];`;
    branches.push(j === m - 1 ? `{ ${body} }` : `if (r < params[${4 + j}]) { ${body} }`);
  }
  return `${MAIN_1D}
  if (i >= params[0]) { return; }
  let o = i / params[1];
  let r = i % params[1];
  let dst = o * params[2] + params[3] + r;
  ${branches.join(" else ")}
}`;
}

/** The layout family of the WebGPU backend. */
export function layoutKernels(rt: WebGpuRuntime): KernelFamily<GpuBuffer, "strided" | "stridedScatter" | "concat"> {
  return {
    strided([x], [out], { offset, strides }) {
      const type = wgslType(out.dtype);
      const n = sizeOf(out.shape);
      rt.dispatch({
        shader: `${MAIN_1D} if (i >= params[0]) { return; } ${STRIDED_INDEX}
  // Positions outside the input (never produced by the op layer) read as 0 instead of out of bounds.
  if (src < 0 || u32(src) >= params[1]) { out0[i] = ${type}(0); return; }
  out0[i] = in0[u32(src)]; }`,
        inputTypes: [type],
        outputTypes: [type],
        inputs: [x.buf],
        outputs: [out.buf],
        params: stridedParams(n, sizeOf(x.shape), out.shape, offset, strides),
        workgroups: Math.ceil(n / WG),
      });
    },
    stridedScatter([base, src], [out], { offset, strides }) {
      const type = wgslType(out.dtype);
      const n = sizeOf(out.shape);
      copyBuffer(rt, type, base.buf, out.buf, n);
      // Strided positions of a valid view are distinct, so one thread per src element writes without races.
      const m = sizeOf(src.shape);
      rt.dispatch({
        shader: `${MAIN_1D} if (i >= params[0]) { return; } ${STRIDED_INDEX}
  // Positions outside the output (never produced by the op layer) are skipped.
  if (src < 0 || u32(src) >= params[1]) { return; }
  out0[u32(src)] = in0[i]; }`,
        inputTypes: [type],
        outputTypes: [type],
        inputs: [src.buf],
        outputs: [out.buf],
        params: stridedParams(m, n, src.shape, offset, strides),
        workgroups: Math.ceil(m / WG),
      });
    },
    concat(inputs, [out], { axis }) {
      const type = wgslType(out.dtype);
      const outer = out.shape.slice(0, axis).reduce((p, d) => p * d, 1);
      const inner = stridesOf(out.shape)[axis];
      const total = out.shape[axis];
      // params + inputs + the output must fit the per-stage storage-buffer limit.
      const perChunk = Math.max(1, Math.min(6, rt.device.limits.maxStorageBuffersPerShaderStage - 2));
      let start = 0;
      for (let c = 0; c < inputs.length; c += perChunk) {
        const chunk = inputs.slice(c, c + perChunk).filter((t) => t.shape[axis] > 0);
        const chunkStart = start;
        for (const t of inputs.slice(c, c + perChunk)) start += t.shape[axis];
        if (chunk.length === 0) continue;
        const bounds: number[] = [];
        let w = 0;
        for (const t of chunk) bounds.push(w += t.shape[axis] * inner);
        const n = outer * w;
        rt.dispatch({
          shader: concatShader(chunk.length),
          inputTypes: chunk.map(() => type),
          outputTypes: [type],
          inputs: chunk.map((t) => t.buf),
          outputs: [out.buf],
          params: [n, w, total * inner, chunkStart * inner, ...bounds],
          workgroups: Math.ceil(n / WG),
        });
      }
    },
  };
}
