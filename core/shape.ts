/**
 * Shapes, row-major strides, axis normalisation and NumPy broadcasting.
 *
 * Tensors in moegrad are always dense and row-major; a view such as a transpose or a broadcast is
 * materialised by a kernel. That keeps every kernel (and especially every WGSL shader) free of stride
 * bookkeeping, at the price of a copy that the matmul kernel avoids with transpose flags.
 *
 * @module
 */
import { fmtShape, OpError } from "./errors.ts";

/** A tensor shape: a list of non-negative integer sizes, outermost first. */
export type Shape = readonly number[];

/** The number of elements of `shape` (1 for a scalar). */
export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major (C-contiguous) strides of `shape`, in elements. */
export function stridesOf(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

/** True if both shapes have the same rank and sizes. */
export function shapesEqual(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Throws unless `shape` is a list of non-negative integers. */
export function assertShape(op: string, shape: unknown): asserts shape is Shape {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new OpError(op, `shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
  }
}

/** Maps a possibly negative axis into `[0, rank)`, or throws naming the op and the shape. */
export function normAxis(op: string, axis: number, shape: Shape, extra = 0): number {
  const rank = shape.length + extra;
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw new OpError(op, `axis ${axis} is out of range for a tensor of shape ${fmtShape(shape)}`);
  }
  return axis < 0 ? axis + rank : axis;
}

/** Normalises `axes` (all axes when undefined), sorted ascending, rejecting repeats. */
export function normAxes(op: string, axes: number | readonly number[] | undefined, shape: Shape): number[] {
  if (axes === undefined) return shape.map((_, i) => i);
  const list = (typeof axes === "number" ? [axes] : [...axes]).map((a) => normAxis(op, a, shape));
  if (new Set(list).size !== list.length) {
    throw new OpError(op, `repeated axis in ${JSON.stringify(axes)} for shape ${fmtShape(shape)}`);
  }
  return list.sort((a, b) => a - b);
}

/** The NumPy broadcast of several shapes, or an error naming the op and every shape. */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i];
      if (d === out[o] || d === 1) continue;
      if (out[o] === 1) out[o] = d;
      else {
        throw new OpError(op, `shapes ${shapes.map(fmtShape).join(" and ")} are not broadcastable`);
      }
    }
  }
  return out;
}

/**
 * Strides that read a tensor of shape `from` as if it had the (broadcast) shape `to`: broadcast dimensions
 * get stride 0. `from` must broadcast to `to`.
 */
export function broadcastStrides(from: Shape, to: Shape): number[] {
  const src = stridesOf(from);
  const out = new Array<number>(to.length).fill(0);
  const lead = to.length - from.length;
  for (let i = 0; i < from.length; i++) out[lead + i] = from[i] === 1 ? 0 : src[i];
  return out;
}

/** Resolves one `-1` entry of a reshape target against `size` elements, or throws. */
export function inferReshape(op: string, from: Shape, to: readonly number[]): number[] {
  const size = sizeOf(from);
  const free = to.filter((d) => d === -1).length;
  if (free > 1 || !to.every((d) => d === -1 || (Number.isInteger(d) && d >= 0))) {
    throw new OpError(op, `invalid target shape ${fmtShape(to)} (at most one -1, other sizes ≥ 0)`);
  }
  const known = to.reduce((p, d) => (d === -1 ? p : p * d), 1);
  const out = to.map((d) => (d === -1 ? (known === 0 ? 0 : size / known) : d));
  if (sizeOf(out) !== size || !out.every(Number.isInteger)) {
    throw new OpError(op, `cannot reshape a tensor of shape ${fmtShape(from)} (${size} elements) to ${fmtShape(to)}`);
  }
  return out;
}
