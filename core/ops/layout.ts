/**
 * Layout ops: reshape (zero-copy), permute/transpose, expand, slice, concat/stack/split. Permutes, broadcasts
 * and slices are one `strided` kernel with different strides; their VJPs are each other's adjoints.
 *
 * @module
 */
import { record, record1 } from "../autograd.ts";
import { run1 } from "../engine.ts";
import { fmtShape, OpError } from "../errors.ts";
import { broadcastStrides, inferReshape, normAxis, type Shape, shapesEqual, stridesOf } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import { assertTensor } from "./operand.ts";
import { zerosLike } from "./creation.ts";
import { sumTo } from "./reduce.ts";

/**
 * The same elements in a new shape (one size may be −1). Zero-copy: the result shares storage.
 *
 * @example
 * ```ts
 * import { arange } from "@moegrad/moegrad";
 * console.log(arange(6).reshape(2, -1).shape); // [2, 3]
 * ```
 */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  assertTensor("reshape", x);
  const out = x._alias(inferReshape("reshape", x.shape, shape));
  return record1("reshape", [x], out, (g) => [reshape(g, x.shape)]);
}

/** Flattens axes `start..end` (inclusive) into one. */
export function flatten(x: Tensor, start = 0, end = -1): Tensor {
  assertTensor("flatten", x);
  if (x.rank === 0) return reshape(x, [1]);
  const s = normAxis("flatten", start, x.shape), e = normAxis("flatten", end, x.shape);
  if (s > e) {
    throw new OpError("flatten", `start axis ${start} comes after end axis ${end} for shape ${fmtShape(x.shape)}`);
  }
  const mid = x.shape.slice(s, e + 1).reduce((p, d) => p * d, 1);
  return reshape(x, [...x.shape.slice(0, s), mid, ...x.shape.slice(e + 1)]);
}

/** Removes size-1 axes: all of them, or only `axis` (which must have size 1). */
export function squeeze(x: Tensor, axis?: number): Tensor {
  assertTensor("squeeze", x);
  if (axis === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const a = normAxis("squeeze", axis, x.shape);
  if (x.shape[a] !== 1) {
    throw new OpError("squeeze", `axis ${axis} has size ${x.shape[a]}, not 1 (shape ${fmtShape(x.shape)})`);
  }
  return reshape(x, x.shape.filter((_, i) => i !== a));
}

/** Inserts a size-1 axis at `axis` (−1 appends). */
export function unsqueeze(x: Tensor, axis: number): Tensor {
  assertTensor("unsqueeze", x);
  const a = normAxis("unsqueeze", axis, x.shape, 1);
  return reshape(x, [...x.shape.slice(0, a), 1, ...x.shape.slice(a)]);
}

function strided(op: string, x: Tensor, shape: Shape, offset: number, strides: readonly number[]): Tensor {
  return run1(op, "strided", [x], { shape, dtype: x.dtype }, { offset, strides });
}

/**
 * Reorders axes: output axis i is input axis `dims[i]`.
 *
 * @example
 * ```ts
 * import { zeros } from "@moegrad/moegrad";
 * console.log(zeros([2, 3, 4]).permute(2, 0, 1).shape); // [4, 2, 3]
 * ```
 */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  assertTensor("permute", x);
  if (dims.length !== x.rank) {
    throw new OpError(
      "permute",
      `got ${dims.length} dims [${dims.join(", ")}] for a tensor of shape ${fmtShape(x.shape)}`,
    );
  }
  const d = dims.map((a) => normAxis("permute", a, x.shape));
  if (new Set(d).size !== d.length) throw new OpError("permute", `dims [${dims.join(", ")}] are not a permutation`);
  const src = stridesOf(x.shape);
  const out = strided("permute", x, d.map((a) => x.shape[a]), 0, d.map((a) => src[a]));
  const inverse = new Array<number>(d.length);
  d.forEach((a, i) => (inverse[a] = i));
  return record1("permute", [x], out, (g) => [permute(g, inverse)]);
}

/** Swaps axes `dim0` and `dim1` (default: the last two). */
export function transpose(x: Tensor, dim0 = -2, dim1 = -1): Tensor {
  assertTensor("transpose", x);
  const a = normAxis("transpose", dim0, x.shape), b = normAxis("transpose", dim1, x.shape);
  const dims = x.shape.map((_, i) => i);
  [dims[a], dims[b]] = [dims[b], dims[a]];
  return permute(x, dims);
}

/**
 * Broadcasts `x` to `shape` (NumPy rules; −1 keeps an existing size). Materialises the result.
 */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  assertTensor("expand", x);
  const lead = shape.length - x.rank;
  if (lead < 0) {
    throw new OpError("expand", `cannot expand shape ${fmtShape(x.shape)} to fewer dims ${fmtShape(shape)}`);
  }
  const target = shape.map((d, i) => (d === -1 && i >= lead ? x.shape[i - lead] : d));
  if (!target.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new OpError(
      "expand",
      `invalid target ${fmtShape(shape)} for shape ${fmtShape(x.shape)} (sizes ≥ 0; -1 only for existing dims)`,
    );
  }
  x.shape.forEach((d, i) => {
    if (d !== 1 && d !== target[lead + i]) {
      throw new OpError("expand", `cannot expand shape ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
    }
  });
  if (shapesEqual(target, x.shape)) return reshape(x, target);
  const out = strided("expand", x, target, 0, broadcastStrides(x.shape, target));
  return record1("expand", [x], out, (g) => [sumTo(g, x.shape)]);
}

interface SliceSpec {
  axis: number;
  shape: number[];
  offset: number;
  strides: number[];
}

function sliceSpec(
  op: string,
  shape: Shape,
  axis: number,
  start: number,
  end: number | undefined,
  step: number,
): SliceSpec {
  const a = normAxis(op, axis, shape);
  const n = shape[a];
  if (!Number.isInteger(step) || step < 1) throw new OpError(op, `step must be a positive integer, got ${step}`);
  if (!Number.isInteger(start) || (end !== undefined && !Number.isInteger(end))) {
    throw new OpError(op, `start and end must be integers, got ${start} and ${end}`);
  }
  const clampIdx = (i: number) => Math.min(Math.max(i < 0 ? i + n : i, 0), n);
  const s = clampIdx(start), e = end === undefined ? n : clampIdx(end);
  const len = e > s ? Math.ceil((e - s) / step) : 0;
  const src = stridesOf(shape);
  return {
    axis: a,
    shape: shape.map((d, i) => (i === a ? len : d)),
    offset: s * src[a],
    strides: src.map((st, i) => (i === a ? st * step : st)),
  };
}

/**
 * Elements `start, start+step, …` before `end` along `axis`. Indices follow Python: negative counts from
 * the end, out-of-range bounds are clipped.
 *
 * @example
 * ```ts
 * import { arange } from "@moegrad/moegrad";
 * console.log(await arange(10).slice(0, 1, -1, 3).data()); // [1, 4, 7]
 * ```
 */
export function slice(x: Tensor, axis: number, start: number, end?: number, step = 1): Tensor {
  assertTensor("slice", x);
  const spec = sliceSpec("slice", x.shape, axis, start, end, step);
  const out = strided("slice", x, spec.shape, spec.offset, spec.strides);
  return record1("slice", [x], out, (g) => [sliceScatter(zerosLike(x), g, axis, start, end, step)]);
}

/** `length` elements from `start` along `axis` (torch.narrow); the range must lie inside the axis. */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  assertTensor("narrow", x);
  const a = normAxis("narrow", axis, x.shape);
  if (start < 0 || length < 0 || start + length > x.shape[a]) {
    throw new OpError(
      "narrow",
      `range [${start}, ${start + length}) is outside axis ${axis} of shape ${fmtShape(x.shape)}`,
    );
  }
  return slice(x, a, start, start + length);
}

/**
 * `base` with the slice `(axis, start, end, step)` replaced by `src` (torch.slice_scatter); differentiable in
 * both.
 */
export function sliceScatter(base: Tensor, src: Tensor, axis: number, start: number, end?: number, step = 1): Tensor {
  assertTensor("sliceScatter", base);
  assertTensor("sliceScatter", src, "src");
  const spec = sliceSpec("sliceScatter", base.shape, axis, start, end, step);
  if (!shapesEqual(spec.shape, src.shape) || src.dtype !== base.dtype) {
    throw new OpError(
      "sliceScatter",
      `src is ${src.dtype} ${fmtShape(src.shape)} but the slice of ${base.dtype} ${fmtShape(base.shape)} is ${
        fmtShape(spec.shape)
      }`,
    );
  }
  const out = run1("sliceScatter", "stridedScatter", [base, src], { shape: base.shape, dtype: base.dtype }, {
    offset: spec.offset,
    strides: spec.strides,
  });
  return record1("sliceScatter", [base, src], out, (g) => [
    base.requiresGrad ? sliceScatter(g, zerosLike(src), axis, start, end, step) : null,
    src.requiresGrad ? slice(g, axis, start, end, step) : null,
  ]);
}

/**
 * Joins tensors along an existing `axis`; all other sizes and the dtype must match.
 *
 * @example
 * ```ts
 * import { concat, ones, zeros } from "@moegrad/moegrad";
 * console.log(concat([zeros([2, 1]), ones([2, 3])], 1).shape); // [2, 4]
 * ```
 */
export function concat(tensors: readonly Tensor[], axis = 0): Tensor {
  if (!tensors?.length) throw new OpError("concat", "needs a non-empty list of tensors");
  tensors.forEach((t, i) => assertTensor("concat", t, `tensor ${i}`));
  const first = tensors[0];
  const a = normAxis("concat", axis, first.shape);
  for (const t of tensors) {
    const ok = t.rank === first.rank && t.dtype === first.dtype &&
      t.shape.every((d, i) => i === a || d === first.shape[i]);
    if (!ok) {
      throw new OpError(
        "concat",
        `tensors ${tensors.map((u) => `${u.dtype} ${fmtShape(u.shape)}`).join(", ")} do not match outside axis ${axis}`,
      );
    }
  }
  const shape = first.shape.map((d, i) => (i === a ? tensors.reduce((p, t) => p + t.shape[a], 0) : d));
  const out = run1("concat", "concat", tensors, { shape, dtype: first.dtype }, { axis: a });
  record("concat", tensors, [out], ([g]) => {
    let start = 0;
    return tensors.map((t) => {
      const piece = t.requiresGrad ? slice(g, a, start, start + t.shape[a]) : null;
      start += t.shape[a];
      return piece;
    });
  });
  return out;
}

/** Stacks equally shaped tensors along a new `axis`. */
export function stack(tensors: readonly Tensor[], axis = 0): Tensor {
  if (!tensors?.length) throw new OpError("stack", "needs a non-empty list of tensors");
  tensors.forEach((t, i) => assertTensor("stack", t, `tensor ${i}`));
  const first = tensors[0];
  for (const t of tensors) {
    if (!shapesEqual(t.shape, first.shape)) {
      throw new OpError("stack", `tensors must share a shape, got ${tensors.map((u) => fmtShape(u.shape)).join(", ")}`);
    }
  }
  const a = normAxis("stack", axis, first.shape, 1);
  return concat(tensors.map((t) => unsqueeze(t, a)), a);
}

/** Splits along `axis` into pieces of the listed sizes, or of `size` each (the last may be smaller). */
export function split(x: Tensor, sizes: number | readonly number[], axis = 0): Tensor[] {
  assertTensor("split", x);
  const a = normAxis("split", axis, x.shape);
  const n = x.shape[a];
  let list: number[];
  if (typeof sizes === "number") {
    if (!Number.isInteger(sizes) || sizes < 1) {
      throw new OpError("split", `size must be a positive integer, got ${sizes}`);
    }
    list = [];
    for (let s = 0; s < n; s += sizes) list.push(Math.min(sizes, n - s));
  } else {
    list = [...sizes];
    if (list.reduce((p, s) => p + s, 0) !== n || list.some((s) => !Number.isInteger(s) || s < 0)) {
      throw new OpError(
        "split",
        `sizes [${list.join(", ")}] do not add up to ${n} (axis ${axis} of shape ${fmtShape(x.shape)})`,
      );
    }
  }
  let start = 0;
  return list.map((s) => {
    const piece = slice(x, a, start, start + s);
    start += s;
    return piece;
  });
}
