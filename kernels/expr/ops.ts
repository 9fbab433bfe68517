/**
 * The one definition of every elementwise op of the kernel registry (`unary`, `binary`, `where`), as
 * expressions of the IR (`ir.ts`). The CPU reference loops, the CPU fast loops, the WebAssembly SIMD
 * kernels and the WGSL kernels are all rendered from these; a fused op composes them.
 *
 * Each definition spells out the exact arithmetic of the reference (operand order included: `0.5 * x * y`
 * is `(0.5·x)·y`), because the CPU renderings must stay bit-identical to the kernels they replaced.
 *
 * @module
 */
import type { DType } from "../../core/dtype.ts";
import { isFloat } from "../../core/dtype.ts";
import type { BinaryOp, UnaryOp } from "../registry.ts";
import {
  add,
  binary,
  div,
  type ElementwiseProgram,
  eq,
  erf,
  exp,
  type Expr,
  ge,
  gt,
  input,
  isnan,
  lit,
  lt,
  mul,
  neg,
  program,
  select,
  sqrt,
  tanh,
  unary,
} from "./ir.ts";

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** 1/(1+e⁻ˣ) for x ≥ 0, eˣ/(1+eˣ) below: no overflow for large |x|. */
export function sigmoidExpr(x: Expr): Expr {
  const e = exp(x);
  return select(ge(x, 0), div(1, add(1, exp(neg(x)))), div(e, add(1, e)));
}

/** Exact GELU x·Φ(x) = ½x(1 + erf(x/√2)). */
export function geluExpr(x: Expr): Expr {
  return mul(mul(0.5, x), add(1, erf(mul(x, Math.SQRT1_2))));
}

/** GELU with the tanh approximation: ½x(1 + tanh(√(2/π)(x + 0.044715x³))). */
export function geluTanhExpr(x: Expr): Expr {
  return mul(mul(0.5, x), add(1, tanh(mul(SQRT_2_OVER_PI, add(x, mul(mul(mul(0.044715, x), x), x))))));
}

/** SiLU x·σ(x). */
export function siluExpr(x: Expr): Expr {
  return mul(x, sigmoidExpr(x));
}

/** max(x, 0), NaN for NaN. */
export function reluExpr(x: Expr): Expr {
  return select(gt(x, 0), x, select(isnan(x), lit(NaN, x.type), lit(0, x.type)));
}

/** The expression of unary op `op` applied to `x`. */
export function unaryExpr(op: UnaryOp, x: Expr): Expr {
  const t = x.type;
  switch (op) {
    case "neg":
    case "abs":
    case "sqrt":
    case "exp":
    case "log":
    case "tanh":
    case "erf":
    case "sin":
    case "cos":
    case "isnan":
    case "not":
      return unary(op, x);
    case "sign":
      // +1, −1, 0 (also for −0) and, for floats, NaN for NaN.
      return select(
        gt(x, 0),
        lit(1, t),
        select(lt(x, 0), lit(-1, t), isFloat(t) ? select(eq(x, 0), lit(0, t), lit(NaN, t)) : lit(0, t)),
      );
    case "rsqrt":
      return div(1, sqrt(x));
    case "sigmoid":
      return sigmoidExpr(x);
    case "relu":
      return reluExpr(x);
    case "gelu":
      return geluExpr(x);
    case "gelu_tanh":
      return geluTanhExpr(x);
    case "silu":
      return siluExpr(x);
  }
}

/** The expression of binary op `op` on `a` and `b`. */
export function binaryExpr(op: BinaryOp, a: Expr, b: Expr): Expr {
  switch (op) {
    case "add":
    case "sub":
    case "mul":
    case "div":
    case "pow":
    case "eq":
    case "ne":
    case "lt":
    case "le":
    case "gt":
    case "ge":
    case "and":
    case "or":
      return binary(op, a, b);
    case "maximum":
    case "minimum": {
      // NaN propagates, as in torch.maximum/minimum; otherwise a if it wins strictly, else b.
      const pick = select(op === "maximum" ? gt(a, b) : lt(a, b), a, b);
      return isFloat(a.type) ? select(binary("or", isnan(a), isnan(b)), NaN, pick) : pick;
    }
  }
}

/** The dtype unary op `op` gives for an input of `dtype`. */
export function unaryOutType(op: UnaryOp, dtype: DType): DType {
  return op === "not" || op === "isnan" ? "bool" : dtype;
}

/** The dtype binary op `op` gives for inputs of `dtype`. */
export function binaryOutType(op: BinaryOp, dtype: DType): DType {
  return binary(op === "maximum" || op === "minimum" ? "add" : op, input(0, dtype), input(1, dtype)).type;
}

const cache = new Map<string, ElementwiseProgram>();

/** The program cached under `key`, built by `build` the first time (programs are built once per op and dtype). */
export function cached(key: string, build: () => ElementwiseProgram): ElementwiseProgram {
  let p = cache.get(key);
  if (!p) cache.set(key, p = build());
  return p;
}

/** The program of unary op `op` on an input of `dtype` (built once, then cached). */
export function unaryProgram(op: UnaryOp, dtype: DType): ElementwiseProgram {
  return cached(`u:${op}:${dtype}`, () => program([dtype], unaryExpr(op, input(0, dtype))));
}

/** The program of binary op `op` on two inputs of `dtype`. */
export function binaryProgram(op: BinaryOp, dtype: DType): ElementwiseProgram {
  return cached(`b:${op}:${dtype}`, () => program([dtype, dtype], binaryExpr(op, input(0, dtype), input(1, dtype))));
}

/** The program of `where`: cond (bool) ? a : b, a and b of `dtype`. */
export function whereProgram(dtype: DType): ElementwiseProgram {
  return cached(
    `w:${dtype}`,
    () => program(["bool", dtype, dtype], select(input(0, "bool"), input(1, dtype), input(2, dtype))),
  );
}
