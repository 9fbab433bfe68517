/**
 * Reductions: sum, mean, max, min over any axes; argmax/argmin; and `sumTo`, the adjoint of broadcasting
 * that every broadcasting VJP uses.
 *
 * @module
 */
import { record1 } from "../autograd.ts";
import { run1 } from "../engine.ts";
import { fmtShape, OpError } from "../errors.ts";
import { normAxes, normAxis, type Shape, shapesEqual } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import type { ReduceOp } from "../../kernels/registry.ts";
import { assertDTypeIn, assertFloat, assertTensor } from "./operand.ts";
import { expand, reshape } from "./layout.ts";

function keptShape(shape: Shape, axes: readonly number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

function droppedShape(shape: Shape, axes: readonly number[]): number[] {
  return shape.filter((_, i) => !axes.includes(i));
}

/** Runs the one-axis reduce kernel over each axis in turn (keeping dims), without recording. */
function reduceRaw(op: string, kop: ReduceOp, x: Tensor, axes: readonly number[]): Tensor {
  const dtype = kop === "sum" && !(x.dtype === "f32" || x.dtype === "f64") ? "i32" : x.dtype;
  if (axes.length === 0) return dtype === x.dtype ? x._alias() : x.astype(dtype);
  let y = x;
  for (const axis of axes) {
    if (kop !== "sum" && y.shape[axis] === 0) {
      throw new OpError(op, `cannot take the ${kop} over axis ${axis} of size 0 (shape ${fmtShape(x.shape)})`);
    }
    const shape = y.shape.map((d, i) => (i === axis ? 1 : d));
    y = run1(op, "reduce", [y], { shape, dtype }, { op: kop, axis });
  }
  return y;
}

/** Reshapes a reduced gradient back to the input's rank and broadcasts it over the reduced axes. */
function spread(g: Tensor, x: Tensor, axes: readonly number[]): Tensor {
  return expand(reshape(g, keptShape(x.shape, axes)), x.shape);
}

/**
 * Sum over `axis` (an axis, a list, or all when omitted). Bool and i32 sums give i32.
 *
 * @example
 * ```ts
 * import { tensor } from "@moegrad/moegrad";
 * const x = tensor([[1, 2], [3, 4]]);
 * console.log(await x.sum().item(), await x.sum(0).data(), x.sum(1, true).shape); // 10 [4, 6] [2, 1]
 * ```
 */
export function sum(x: Tensor, axis?: number | readonly number[], keepdim = false): Tensor {
  assertTensor("sum", x);
  const axes = normAxes("sum", axis, x.shape);
  const kept = reduceRaw("sum", "sum", x, axes);
  const out = keepdim ? kept : reshape(kept, droppedShape(x.shape, axes));
  return record1("sum", [x], out, (g) => [spread(g, x, axes)]);
}

/** Mean over `axis` (float dtypes). */
export function mean(x: Tensor, axis?: number | readonly number[], keepdim = false): Tensor {
  assertTensor("mean", x);
  assertFloat("mean", x);
  const axes = normAxes("mean", axis, x.shape);
  const count = axes.reduce((p, a) => p * x.shape[a], 1);
  return sum(x, axes, keepdim).div(count);
}

function extremum(
  op: "max" | "min",
  x: Tensor,
  axis: number | readonly number[] | undefined,
  keepdim: boolean,
): Tensor {
  assertTensor(op, x);
  assertDTypeIn(op, x, ["f32", "f64", "i32"]);
  const axes = normAxes(op, axis, x.shape);
  const kept = reduceRaw(op, op, x, axes);
  const out = keepdim ? kept : reshape(kept, droppedShape(x.shape, axes));
  // Like torch.amax: the gradient is shared evenly among the entries that attain the extremum.
  return record1(op, [x], out, (g) => {
    const hit = x.eq(spread(kept.detach(), x, axes)).astype(x.dtype);
    const count = sum(hit, axes, true);
    return [spread(g, x, axes).mul(hit).div(expand(count, x.shape))];
  });
}

/** Maximum over `axis` (all axes when omitted). Values only; ties share the gradient (torch.amax). */
export function max(x: Tensor, axis?: number | readonly number[], keepdim = false): Tensor {
  return extremum("max", x, axis, keepdim);
}

/** Minimum over `axis` (all axes when omitted); ties share the gradient (torch.amin). */
export function min(x: Tensor, axis?: number | readonly number[], keepdim = false): Tensor {
  return extremum("min", x, axis, keepdim);
}

function argReduce(op: "argmax" | "argmin", x: Tensor, axis: number | undefined, keepdim: boolean): Tensor {
  assertTensor(op, x);
  assertDTypeIn(op, x, ["f32", "f64", "i32"]);
  const src = axis === undefined ? reshape(x, [x.size]) : x;
  const ax = axis === undefined ? 0 : normAxis(op, axis, x.shape);
  if (src.shape[ax] === 0) throw new OpError(op, `cannot reduce an empty axis (shape ${fmtShape(x.shape)})`);
  const shape = src.shape.map((d, i) => (i === ax ? 1 : d));
  const out = run1(op, "argReduce", [src], { shape, dtype: "i32" }, { op, axis: ax });
  if (axis === undefined) return reshape(out, []);
  return keepdim ? out : reshape(out, droppedShape(src.shape, [ax]));
}

/** Index (i32) of the maximum along `axis`, or in the flattened tensor when omitted. Ties → lowest index; NaN wins. */
export function argmax(x: Tensor, axis?: number, keepdim = false): Tensor {
  return argReduce("argmax", x, axis, keepdim);
}

/** Index (i32) of the minimum along `axis`; ties → lowest index. */
export function argmin(x: Tensor, axis?: number, keepdim = false): Tensor {
  return argReduce("argmin", x, axis, keepdim);
}

/**
 * Sums `x` down to `shape`, the shape it was broadcast from (the adjoint of broadcasting): leading axes
 * are summed away and axes where `shape` has 1 are summed with keepdim.
 */
export function sumTo(x: Tensor, shape: Shape): Tensor {
  assertTensor("sumTo", x);
  if (shapesEqual(x.shape, shape)) return x;
  const lead = x.rank - shape.length;
  if (lead < 0 || shape.some((d, i) => d !== 1 && d !== x.shape[lead + i])) {
    throw new OpError("sumTo", `cannot sum shape ${fmtShape(x.shape)} down to ${fmtShape(shape)}`);
  }
  const axes: number[] = [];
  for (let i = 0; i < x.rank; i++) if (i < lead || (shape[i - lead] === 1 && x.shape[i] !== 1)) axes.push(i);
  return reshape(sum(x, axes, true), shape);
}
