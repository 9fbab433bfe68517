/**
 * Order statistics: topk, sort, argsort. The kernels work on the last axis; other axes are moved there and
 * back. Gradients of the values scatter back to the chosen positions.
 *
 * @module
 */
import { record1 } from "../autograd.ts";
import { runKernel } from "../engine.ts";
import { fmtShape, OpError } from "../errors.ts";
import { normAxis } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import { assertDTypeIn, assertTensor } from "./operand.ts";
import { transpose } from "./layout.ts";
import { zerosLike } from "./creation.ts";
import { scatterAdd } from "./index.ts";

/** Values and their i32 indices along the axis. */
export interface ValuesIndices {
  /** The selected or sorted values (differentiable). */
  values: Tensor;
  /** Their positions along the axis in the input (i32). */
  indices: Tensor;
}

/** Options of {@link topk}. */
export interface TopkOptions {
  /** Axis to select along (default −1). */
  axis?: number;
  /** Largest (default) or smallest entries. */
  largest?: boolean;
}

/** Options of {@link sort} and {@link argsort}. */
export interface SortOptions {
  /** Axis to sort along (default −1). */
  axis?: number;
  /** Descending order (default false). Sorting is stable either way. */
  descending?: boolean;
}

function onLastAxis(x: Tensor, axis: number, fn: (t: Tensor) => [Tensor, Tensor]): ValuesIndices {
  const last = x.rank - 1;
  if (axis === last) {
    const [values, indices] = fn(x);
    return { values, indices };
  }
  const [values, indices] = fn(transpose(x, axis, last));
  return { values: transpose(values, axis, last), indices: transpose(indices, axis, last) };
}

function withGrad(op: "topk" | "sort", x: Tensor, axis: number, values: Tensor, indices: Tensor): Tensor {
  return record1(op, [x], values, (g) => [scatterAdd(zerosLike(x), axis, indices, g)]);
}

/**
 * The `k` largest (or smallest) entries along `axis`, in order, with their indices. Ties go to the lowest
 * index; NaN counts as the largest value.
 *
 * @example
 * ```ts
 * import { tensor, topk } from "@moegrad/moegrad";
 * const { values, indices } = topk(tensor([[0.1, 0.5, 0.5, 0.2]]), 2);
 * console.log(await values.data(), await indices.data()); // [0.5, 0.5] [1, 2]
 * ```
 */
export function topk(x: Tensor, k: number, options: TopkOptions = {}): ValuesIndices {
  assertTensor("topk", x);
  assertDTypeIn("topk", x, ["f32", "f64", "i32"]);
  if (x.rank === 0) throw new OpError("topk", "needs at least one dimension");
  const axis = normAxis("topk", options.axis ?? -1, x.shape);
  if (!Number.isInteger(k) || k < 0 || k > x.shape[axis]) {
    throw new OpError("topk", `k = ${k} is out of range for axis ${axis} of shape ${fmtShape(x.shape)}`);
  }
  const largest = options.largest ?? true;
  const r = onLastAxis(x, axis, (t) => {
    const shape = [...t.shape.slice(0, -1), k];
    return runKernel("topk", "topk", [t], [{ shape, dtype: t.dtype }, { shape, dtype: "i32" }], { k, largest });
  });
  const values = r.values.detach();
  return { values: withGrad("topk", x, axis, values, r.indices), indices: r.indices };
}

/**
 * Sorts along `axis` (stable; NaN last in ascending order) and returns the values and the permutation.
 *
 * @example
 * ```ts
 * import { sort, tensor } from "@moegrad/moegrad";
 * console.log(await sort(tensor([3, 1, 2]), { descending: true }).indices.data()); // [0, 2, 1]
 * ```
 */
export function sort(x: Tensor, options: SortOptions = {}): ValuesIndices {
  assertTensor("sort", x);
  assertDTypeIn("sort", x, ["f32", "f64", "i32"]);
  if (x.rank === 0) throw new OpError("sort", "needs at least one dimension");
  const axis = normAxis("sort", options.axis ?? -1, x.shape);
  const descending = options.descending ?? false;
  const r = onLastAxis(x, axis, (t) => {
    const shape = t.shape;
    return runKernel("sort", "sort", [t], [{ shape, dtype: t.dtype }, { shape, dtype: "i32" }], { descending });
  });
  const values = r.values.detach();
  return { values: withGrad("sort", x, axis, values, r.indices), indices: r.indices };
}

/** The stable sorting permutation along `axis` (i32). */
export function argsort(x: Tensor, options: SortOptions = {}): Tensor {
  return sort(x, options).indices;
}
