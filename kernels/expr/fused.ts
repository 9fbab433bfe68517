/**
 * Fused elementwise programs for the chains a transformer step repeats: a bias add followed by an
 * activation (`biasAct`), and an activation's backward, g ⊙ act′(x [+ b]) (`actGrad`) — one kernel each
 * instead of a chain of ops that each allocate and fill a full-size tensor.
 *
 * Each program is the unfused chain written out: the same operations in the same order, with a
 * {@link round} wherever the chain stored an intermediate tensor and every scalar rounded to the dtype as
 * `binaryOperands` makes it (an f32 scalar tensor holds `Math.fround(c)`). So on the CPU a fused program
 * gives the unfused chain's results bit for bit, on either kernel path: the derivative chains below are the
 * VJPs `core/ops/unary.ts` had, moved here as their one definition.
 *
 * @module
 */
import type { DType } from "../../core/dtype.ts";
import {
  add,
  type ElementwiseProgram,
  erf,
  exp,
  type Expr,
  gt,
  input,
  lit,
  mul,
  program,
  round,
  select,
  sub,
  tanh,
} from "./ir.ts";
import { cached, sigmoidExpr, unaryExpr } from "./ops.ts";

/** The activations with fused kernels. `gelu_tanh` is GELU's tanh approximation. */
export type FusedActivation = "gelu" | "gelu_tanh" | "silu" | "relu";

/** Every {@link FusedActivation}, for validation messages and tests. */
export const FUSED_ACTIVATIONS: readonly FusedActivation[] = ["gelu", "gelu_tanh", "silu", "relu"];

const INV_SQRT_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** A scalar as an op sees it: a tensor of `type`, so f32 scalars are rounded to f32. */
function scalar(c: number, type: DType): Expr {
  return lit(type === "f32" ? Math.fround(c) : c, type);
}

/**
 * g ⊙ act′(x), as the unfused VJP chain computed it (every intermediate an f32 tensor where the dtype is f32):
 * - gelu: ½(1 + erf(x/√2)) + x·e^(−x²/2)/√(2π);
 * - gelu_tanh: ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²), t = tanh(√(2/π)(x + 0.044715x³));
 * - silu: σ(x)(1 + x(1 − σ(x)));
 * - relu: g where x > 0, else 0.
 */
export function actGradExpr(act: FusedActivation, x: Expr, g: Expr): Expr {
  const t = x.type, r = round, c = (v: number) => scalar(v, t);
  switch (act) {
    case "gelu": {
      // cdf = (erf(x·(1/√2)) + 1)·0.5; pdf = exp(x·x·(−0.5))·(1/√(2π)); g·(cdf + x·pdf)
      const cdf = r(mul(r(add(r(erf(r(mul(x, c(INV_SQRT_2))))), c(1))), c(0.5)));
      const pdf = r(mul(r(exp(r(mul(r(mul(x, x)), c(-0.5))))), c(INV_SQRT_2PI)));
      return mul(g, r(add(cdf, r(mul(x, pdf)))));
    }
    case "gelu_tanh": {
      const x2 = r(mul(x, x));
      const th = r(tanh(r(mul(r(add(x, r(mul(r(mul(x2, x)), c(0.044715))))), c(SQRT_2_OVER_PI)))));
      const du = r(mul(r(add(c(1), r(mul(x2, c(3 * 0.044715))))), c(SQRT_2_OVER_PI)));
      const left = r(mul(r(add(th, c(1))), c(0.5)));
      const right = r(mul(r(mul(r(mul(x, c(0.5))), r(sub(c(1), r(mul(th, th)))))), du));
      return mul(g, r(add(left, right)));
    }
    case "silu": {
      const s = r(sigmoidExpr(x));
      return mul(g, r(mul(s, r(add(c(1), r(mul(x, r(sub(c(1), s)))))))));
    }
    case "relu":
      return select(gt(x, 0), g, lit(0, t));
  }
}

/** The program act(x + b) over inputs [x, b] of `dtype` (the sum rounded, as `add` stores it). */
export function biasActProgram(act: FusedActivation, dtype: DType): ElementwiseProgram {
  return cached(`biasAct:${act}:${dtype}`, () => {
    const x = input(0, dtype), b = input(1, dtype);
    return program([dtype, dtype], unaryExpr(act, round(add(x, b))));
  });
}

/**
 * The program g ⊙ act′(z) over inputs [x, g] — or [x, g, b] with `bias`, where z = x + b (rounded, as the
 * forward's `add` stored it).
 */
export function actGradProgram(act: FusedActivation, dtype: DType, bias: boolean): ElementwiseProgram {
  return cached(`actGrad:${act}:${dtype}:${bias}`, () => {
    const x = input(0, dtype), g = input(1, dtype);
    const z = bias ? round(add(x, input(2, dtype))) : x;
    return program(bias ? [dtype, dtype, dtype] : [dtype, dtype], actGradExpr(act, z, g));
  });
}
