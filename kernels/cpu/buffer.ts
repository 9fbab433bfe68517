/**
 * CPU storage: one typed array per tensor (Float32Array, Float64Array, Int32Array, Uint8Array for bool).
 *
 * @module
 */
import type { TypedArray } from "../../core/dtype.ts";
import type { Shape } from "../../core/shape.ts";

/** A CPU buffer. */
export type CpuBuffer = TypedArray;

/** Visits every index of `shape` in row-major order, passing the flat output index and the matching flat
 * index of each input read through `strides` (one stride list per input, aligned with `shape`). */
export function stridedOffsets(
  shape: Shape,
  strides: readonly (readonly number[])[],
  offsets: readonly number[],
): Int32Array[] {
  const n = shape.reduce((p, d) => p * d, 1);
  const out = strides.map(() => new Int32Array(n));
  const rank = shape.length;
  const idx = new Array<number>(rank).fill(0);
  const cur = [...offsets];
  for (let i = 0; i < n; i++) {
    for (let s = 0; s < strides.length; s++) out[s][i] = cur[s];
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      for (let s = 0; s < strides.length; s++) cur[s] += strides[s][d];
      if (idx[d] < shape[d]) break;
      for (let s = 0; s < strides.length; s++) cur[s] -= strides[s][d] * shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

/** Splits `shape` around `axis` into [outer, size, inner] for axis-wise kernels. */
export function aroundAxis(shape: Shape, axis: number): [number, number, number] {
  let outer = 1, inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i];
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
  return [outer, shape[axis], inner];
}
