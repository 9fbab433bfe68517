/**
 * Elementwise functions of two (or three, for `where`) tensors with NumPy broadcasting. A plain number
 * operand takes the other operand's dtype and device. Mixed dtypes are an error (cast explicitly): silent
 * promotion hides f32/f64 mix-ups in gradient checks.
 *
 * @module
 */
import { record1 } from "../autograd.ts";
import { run1 } from "../engine.ts";
import { broadcastShapes } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import type { BinaryOp } from "../../kernels/registry.ts";
import { assertDTypeIn, assertTensor, binaryOperands } from "./operand.ts";
import { sumTo } from "./reduce.ts";
import { log } from "./unary.ts";

const NUMERIC = ["f32", "f64", "i32"] as const;

function arith(op: string, kop: BinaryOp, a: Tensor | number, b: Tensor | number): [Tensor, Tensor, Tensor] {
  const [ta, tb] = binaryOperands(op, a, b);
  assertDTypeIn(op, ta, NUMERIC);
  const shape = broadcastShapes(op, ta.shape, tb.shape);
  return [ta, tb, run1(op, "binary", [ta, tb], { shape, dtype: ta.dtype }, { op: kop })];
}

function compare(op: string, kop: BinaryOp, a: Tensor | number, b: Tensor | number): Tensor {
  const [ta, tb] = binaryOperands(op, a, b);
  const shape = broadcastShapes(op, ta.shape, tb.shape);
  return run1(op, "binary", [ta, tb], { shape, dtype: "bool" }, { op: kop });
}

/**
 * a + b.
 *
 * @example
 * ```ts
 * import { add, tensor } from "@moegrad/moegrad";
 * console.log(await add(tensor([[1], [2]]), tensor([10, 20, 30])).array()); // [[11,21,31],[12,22,32]]
 * ```
 */
export function add(a: Tensor | number, b: Tensor | number): Tensor {
  const [ta, tb, out] = arith("add", "add", a, b);
  return record1("add", [ta, tb], out, (g) => [sumTo(g, ta.shape), sumTo(g, tb.shape)]);
}

/** a − b. */
export function sub(a: Tensor | number, b: Tensor | number): Tensor {
  const [ta, tb, out] = arith("sub", "sub", a, b);
  return record1("sub", [ta, tb], out, (g) => [sumTo(g, ta.shape), sumTo(g.neg(), tb.shape)]);
}

/** a · b. */
export function mul(a: Tensor | number, b: Tensor | number): Tensor {
  const [ta, tb, out] = arith("mul", "mul", a, b);
  return record1("mul", [ta, tb], out, (g) => [
    ta.requiresGrad ? sumTo(mul(g, tb), ta.shape) : null,
    tb.requiresGrad ? sumTo(mul(g, ta), tb.shape) : null,
  ]);
}

/** a / b (float dtypes; integer division is not defined here: cast first). */
export function div(a: Tensor | number, b: Tensor | number): Tensor {
  const [ta, tb] = binaryOperands("div", a, b);
  assertDTypeIn("div", ta, ["f32", "f64"]);
  const [, , out] = arith("div", "div", ta, tb);
  return record1("div", [ta, tb], out, (g) => [
    ta.requiresGrad ? sumTo(div(g, tb), ta.shape) : null,
    tb.requiresGrad ? sumTo(mul(g, out).div(tb).neg(), tb.shape) : null,
  ]);
}

/**
 * a ** b (float dtypes). The gradient with respect to b is taken as 0 where a = 0 and b ≥ 0, as in
 * PyTorch (elsewhere below 0 it is NaN, the log of a negative number); the gradient with respect to a is
 * 0 where b = 0 (a⁰ is constant, even at a = 0 where b·a^(b−1) would be 0·∞), also as in PyTorch.
 */
export function pow(a: Tensor | number, b: Tensor | number): Tensor {
  const [ta, tb] = binaryOperands("pow", a, b);
  assertDTypeIn("pow", ta, ["f32", "f64"]);
  const [, , out] = arith("pow", "pow", ta, tb);
  return record1("pow", [ta, tb], out, (g) => [
    ta.requiresGrad ? sumTo(mul(g, where(tb.eq(0), 0, tb.mul(pow(ta, sub(tb, 1))))), ta.shape) : null,
    tb.requiresGrad ? sumTo(where(ta.eq(0).logicalAnd(tb.ge(0)), 0, mul(g, out.mul(log(ta)))), tb.shape) : null,
  ]);
}

function extremum(op: "maximum" | "minimum", a: Tensor | number, b: Tensor | number): Tensor {
  const [ta, tb, out] = arith(op, op, a, b);
  // Ties split the gradient evenly, as PyTorch does.
  return record1(op, [ta, tb], out, (g) => {
    const aWins = op === "maximum" ? ta.gt(tb) : ta.lt(tb);
    const tie = ta.eq(tb);
    const half = g.mul(0.5);
    const ga = where(aWins, g, where(tie, half, 0));
    const gb = where(aWins, 0, where(tie, half, g));
    return [sumTo(ga, ta.shape), sumTo(gb, tb.shape)];
  });
}

/** Elementwise maximum (ties share the gradient). */
export function maximum(a: Tensor | number, b: Tensor | number): Tensor {
  return extremum("maximum", a, b);
}

/** Elementwise minimum (ties share the gradient). */
export function minimum(a: Tensor | number, b: Tensor | number): Tensor {
  return extremum("minimum", a, b);
}

/** a == b (bool). */
export function eq(a: Tensor | number, b: Tensor | number): Tensor {
  return compare("eq", "eq", a, b);
}
/** a != b (bool). */
export function ne(a: Tensor | number, b: Tensor | number): Tensor {
  return compare("ne", "ne", a, b);
}
/** a < b (bool). */
export function lt(a: Tensor | number, b: Tensor | number): Tensor {
  return compare("lt", "lt", a, b);
}
/** a <= b (bool). */
export function le(a: Tensor | number, b: Tensor | number): Tensor {
  return compare("le", "le", a, b);
}
/** a > b (bool). */
export function gt(a: Tensor | number, b: Tensor | number): Tensor {
  return compare("gt", "gt", a, b);
}
/** a >= b (bool). */
export function ge(a: Tensor | number, b: Tensor | number): Tensor {
  return compare("ge", "ge", a, b);
}

function logical(op: string, kop: BinaryOp, a: Tensor, b: Tensor): Tensor {
  assertTensor(op, a);
  assertTensor(op, b, "other");
  assertDTypeIn(op, a, ["bool"]);
  assertDTypeIn(op, b, ["bool"], "other");
  return compare(op, kop, a, b);
}

/** Elementwise AND of bool tensors. */
export function logicalAnd(a: Tensor, b: Tensor): Tensor {
  return logical("logicalAnd", "and", a, b);
}
/** Elementwise OR of bool tensors. */
export function logicalOr(a: Tensor, b: Tensor): Tensor {
  return logical("logicalOr", "or", a, b);
}

/**
 * `cond ? a : b` elementwise, all broadcast together; `cond` is bool, `a` and `b` share a dtype (a number
 * takes the other's). Gradients flow to the branch that was taken.
 *
 * @example
 * ```ts
 * import { tensor, where } from "@moegrad/moegrad";
 * const x = tensor([-1, 2, -3]);
 * console.log(await where(x.gt(0), x, 0).data()); // [0, 2, 0]
 * ```
 */
export function where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  assertTensor("where", cond, "cond");
  assertDTypeIn("where", cond, ["bool"], "cond");
  const [ta, tb] = binaryOperands("where", a, b);
  const shape = broadcastShapes("where", cond.shape, ta.shape, tb.shape);
  const out = run1("where", "where", [cond, ta, tb], { shape, dtype: ta.dtype }, {});
  return record1("where", [ta, tb], out, (g) => [
    ta.requiresGrad ? sumTo(where(cond, g, 0), ta.shape) : null,
    tb.requiresGrad ? sumTo(where(cond, 0, g), tb.shape) : null,
  ]);
}

/**
 * Clamps `x` into [min, max]; either bound may be undefined. The gradient passes where
 * min ≤ x ≤ max (PyTorch's convention at the bounds).
 */
export function clamp(x: Tensor, min?: number, max?: number): Tensor {
  assertTensor("clamp", x);
  if (min !== undefined && max !== undefined && min > max) {
    throw new RangeError(`clamp: min (${min}) is greater than max (${max})`);
  }
  let y = x;
  if (min !== undefined) y = where(y.lt(min), min, y);
  if (max !== undefined) y = where(y.gt(max), max, y);
  return y;
}
