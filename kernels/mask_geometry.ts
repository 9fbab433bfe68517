/**
 * Where a broadcast mask's elements lie for each row of a tensor of rows: the `maskedSoftmax` kernels of every
 * backend read a bool mask of any shape that broadcasts to x [..., Tk] without expanding it. The geometry is a
 * flat list of numbers (so it travels as kernel arguments or WGSL params): [lead, ...sizes, ...strides, col]
 * with `lead` = x's rank − 1, `sizes` x's leading axes, `strides` the mask's element strides along them (0 where
 * the mask broadcasts) and `col` its stride along the last axis (0 or 1).
 *
 * @module
 */
import type { Shape } from "../core/shape.ts";

/** The geometry of a mask of shape `mask` read along the rows of x of shape `x` (see the module doc). */
export function maskGeometry(x: Shape, mask: Shape): number[] {
  const rank = x.length, lead = rank - 1;
  const aligned = [...new Array(rank - mask.length).fill(1), ...mask];
  const strides = new Array<number>(rank);
  for (let k = rank - 1, s = 1; k >= 0; k--) {
    strides[k] = aligned[k] === 1 ? 0 : s;
    s *= aligned[k];
  }
  return [lead, ...x.slice(0, lead), ...strides.slice(0, lead), strides[lead]];
}

/** The offset of row `r`'s first mask element, from a geometry `g` (see {@link maskGeometry}) at `at`. */
export function maskRowOffset(g: ArrayLike<number>, at: number, r: number): number {
  const lead = g[at];
  let rem = r, off = 0;
  for (let k = lead - 1; k >= 0; k--) {
    const size = g[at + 1 + k], c = rem % size;
    rem = (rem - c) / size;
    off += c * g[at + 1 + lead + k];
  }
  return off;
}
