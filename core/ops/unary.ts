/**
 * Elementwise functions of one tensor. Each VJP is written with public ops, so it is itself differentiable.
 *
 * @module
 */
import { record1 } from "../autograd.ts";
import { run1 } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import type { UnaryOp } from "../../kernels/registry.ts";
import { assertDTypeIn, assertFloat, assertTensor } from "./operand.ts";
import { mul, sub } from "./binary.ts";
import { actGrad } from "./fused.ts";

function unary(op: string, kernelOp: UnaryOp, x: Tensor, float = true): Tensor {
  assertTensor(op, x);
  if (float) assertFloat(op, x);
  else assertDTypeIn(op, x, ["f32", "f64", "i32"]);
  return run1(op, "unary", [x], { shape: x.shape, dtype: x.dtype }, { op: kernelOp });
}

/** −x (any numeric dtype). */
export function neg(x: Tensor): Tensor {
  return record1("neg", [x], unary("neg", "neg", x, false), (g) => [neg(g)]);
}

/** |x| (any numeric dtype); the gradient at 0 is 0, as in PyTorch. */
export function abs(x: Tensor): Tensor {
  return record1("abs", [x], unary("abs", "abs", x, false), (g) => [mul(g, sign(x))]);
}

/** −1, 0 or +1 (not differentiable: its gradient is 0). */
export function sign(x: Tensor): Tensor {
  return unary("sign", "sign", x, false);
}

/** eˣ. */
export function exp(x: Tensor): Tensor {
  const y = unary("exp", "exp", x);
  return record1("exp", [x], y, (g) => [mul(g, y)]);
}

/** Natural logarithm (−∞ at 0, NaN below). */
export function log(x: Tensor): Tensor {
  return record1("log", [x], unary("log", "log", x), (g) => [g.div(x)]);
}

/** √x. */
export function sqrt(x: Tensor): Tensor {
  const y = unary("sqrt", "sqrt", x);
  return record1("sqrt", [x], y, (g) => [g.div(y.mul(2))]);
}

/** 1/√x. */
export function rsqrt(x: Tensor): Tensor {
  const y = unary("rsqrt", "rsqrt", x);
  return record1("rsqrt", [x], y, (g) => [mul(g, y.mul(y).mul(y).mul(-0.5))]);
}

/** Hyperbolic tangent. */
export function tanh(x: Tensor): Tensor {
  const y = unary("tanh", "tanh", x);
  return record1("tanh", [x], y, (g) => [mul(g, sub(1, y.mul(y)))]);
}

/** Logistic sigmoid 1/(1+e⁻ˣ). */
export function sigmoid(x: Tensor): Tensor {
  const y = unary("sigmoid", "sigmoid", x);
  return record1("sigmoid", [x], y, (g) => [mul(g, y.mul(sub(1, y)))]);
}

/** max(x, 0); the gradient at 0 is 0. */
export function relu(x: Tensor): Tensor {
  return record1("relu", [x], unary("relu", "relu", x), (g) => [actGrad(x, g, "relu")]);
}

/**
 * GELU: x·Φ(x) exactly (`"none"`, via erf) or with the tanh approximation (`"tanh"`), as in PyTorch.
 *
 * @example
 * ```ts
 * import { gelu, tensor } from "@moegrad/moegrad";
 * console.log(await gelu(tensor([-1, 0, 1])).data());
 * ```
 */
export function gelu(x: Tensor, approximate: "none" | "tanh" = "none"): Tensor {
  if (approximate === "tanh") {
    return record1("gelu", [x], unary("gelu", "gelu_tanh", x), (g) => [actGrad(x, g, "gelu_tanh")]);
  }
  if (approximate !== "none") throw new TypeError(`gelu: approximate must be "none" or "tanh", got ${approximate}`);
  // The backward is one fused kernel (core/ops/fused.ts): g·(Φ(x) + x·φ(x)).
  return record1("gelu", [x], unary("gelu", "gelu", x), (g) => [actGrad(x, g, "gelu")]);
}

/** SiLU / swish: x·σ(x). */
export function silu(x: Tensor): Tensor {
  return record1("silu", [x], unary("silu", "silu", x), (g) => [actGrad(x, g, "silu")]);
}

/** The error function erf(x). */
export function erf(x: Tensor): Tensor {
  return record1("erf", [x], unary("erf", "erf", x), (g) => [mul(g, exp(x.mul(x).neg()).mul(2 / Math.sqrt(Math.PI)))]);
}

/** Sine. */
export function sin(x: Tensor): Tensor {
  return record1("sin", [x], unary("sin", "sin", x), (g) => [mul(g, cos(x))]);
}

/** Cosine. */
export function cos(x: Tensor): Tensor {
  return record1("cos", [x], unary("cos", "cos", x), (g) => [mul(g, sin(x)).neg()]);
}

/** Elementwise NOT of a bool tensor. */
export function logicalNot(x: Tensor): Tensor {
  assertTensor("logicalNot", x);
  assertDTypeIn("logicalNot", x, ["bool"]);
  return run1("logicalNot", "unary", [x], { shape: x.shape, dtype: "bool" }, { op: "not" });
}

/** True where `x` is NaN (bool). */
export function isnan(x: Tensor): Tensor {
  assertTensor("isnan", x);
  assertFloat("isnan", x);
  return run1("isnan", "unary", [x], { shape: x.shape, dtype: "bool" }, { op: "isnan" });
}
