/**
 * Fused elementwise ops: one kernel for a chain a transformer step repeats (programs in
 * `kernels/expr/fused.ts`). `biasAct(x, b, act)` is `act(x + b)`; `actGrad(x, g, act, b?)` is
 * g ⊙ act′(x [+ b]), the backward of both `biasAct` and the activations themselves (gelu's, silu's and
 * relu's VJPs call it). On the CPU each gives the unfused chain's results bit for bit (see the programs);
 * on WebGPU, the same f32 arithmetic in one dispatch.
 *
 * Their VJPs are written with public ops, so they are differentiable again (second derivatives).
 *
 * @module
 */
import { record } from "../autograd.ts";
import { run1 } from "../engine.ts";
import { OpError } from "../errors.ts";
import { broadcastShapes, shapesEqual } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import { actGradProgram, biasActProgram, FUSED_ACTIVATIONS, type FusedActivation } from "../../kernels/expr/fused.ts";
import { assertFloat, assertTensor, binaryOperands } from "./operand.ts";
import { add, mul, sub } from "./binary.ts";
import { sumTo } from "./reduce.ts";
import { exp, sigmoid, tanh } from "./unary.ts";

export type { FusedActivation } from "../../kernels/expr/fused.ts";

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const A = 0.044715;

function checkAct(op: string, act: unknown): asserts act is FusedActivation {
  if (!FUSED_ACTIVATIONS.includes(act as FusedActivation)) {
    throw new OpError(op, `act must be one of ${FUSED_ACTIVATIONS.join(", ")}, got ${JSON.stringify(act)}`);
  }
}

/** Checks that `b` broadcasts to `x`'s shape without changing it. */
function checkBias(op: string, x: Tensor, b: Tensor): void {
  if (!shapesEqual(broadcastShapes(op, x.shape, b.shape), x.shape)) {
    throw new OpError(op, `bias of shape [${b.shape.join(", ")}] must broadcast to x's shape [${x.shape.join(", ")}]`);
  }
}

/**
 * act(x + b) in one kernel, for a layer's bias add and activation (`act` is "gelu", "gelu_tanh", "silu" or
 * "relu"); `b` broadcasts to x's shape. Equal, bit for bit on the CPU, to `act(add(x, b))`.
 *
 * @example
 * ```ts
 * import { biasAct, tensor } from "@moegrad/moegrad";
 * console.log(await biasAct(tensor([[-1, 0], [1, 2]]), tensor([1, -1]), "relu").data()); // [0, 0, 2, 1]
 * ```
 */
export function biasAct(x: Tensor, b: Tensor | number, act: FusedActivation): Tensor {
  assertTensor("biasAct", x);
  checkAct("biasAct", act);
  const [tx, tb] = binaryOperands("biasAct", x, b);
  assertFloat("biasAct", tx);
  checkBias("biasAct", tx, tb);
  const out = run1("biasAct", "elementwise", [tx, tb], { shape: tx.shape, dtype: tx.dtype }, {
    program: biasActProgram(act, tx.dtype),
  });
  record("biasAct", [tx, tb], [out], ([g]) => {
    const dz = actGrad(tx, g, act, tb);
    return [tx.requiresGrad ? dz : null, tb.requiresGrad ? sumTo(dz, tb.shape) : null];
  });
  return out;
}

/** act″(z) ⊙ g: the derivative of g ⊙ act′(z) with respect to z, written with differentiable ops. */
function actSecond(act: FusedActivation, z: Tensor, g: Tensor): Tensor | null {
  switch (act) {
    case "gelu": {
      // act′ = Φ(z) + zφ(z), act″ = φ(z)(2 − z²)
      const z2 = z.mul(z);
      return g.mul(exp(z2.mul(-0.5)).mul(INV_SQRT_2PI)).mul(sub(2, z2));
    }
    case "gelu_tanh": {
      // act′ = ½(1 + t) + ½z(1 − t²)u′ with u = k(z + Az³), t = tanh u; act″ = (1 − t²)(u′ − z·t·u′² + ½z·u″)
      const z2 = z.mul(z);
      const t = tanh(z.add(z2.mul(z).mul(A)).mul(SQRT_2_OVER_PI));
      const du = add(1, z2.mul(3 * A)).mul(SQRT_2_OVER_PI);
      const d2u = z.mul(6 * A * SQRT_2_OVER_PI);
      const inner = du.sub(z.mul(t).mul(du).mul(du)).add(z.mul(d2u).mul(0.5));
      return g.mul(sub(1, t.mul(t))).mul(inner);
    }
    case "silu": {
      // act′ = s(1 + z(1 − s)), act″ = s(1 − s)(2 + z(1 − 2s))
      const s = sigmoid(z);
      return g.mul(s.mul(sub(1, s))).mul(add(2, z.mul(sub(1, s.mul(2)))));
    }
    case "relu":
      return null; // piecewise linear: act″ = 0 where it exists
  }
}

/**
 * g ⊙ act′(x) — or g ⊙ act′(x + b) with a bias `b` broadcast to x's shape — in one kernel: the backward of
 * an activation (and of {@link biasAct}). `g` has x's shape. Equal, bit for bit on the CPU, to the chain of
 * ops the activations' VJPs were written with.
 *
 * @example
 * ```ts
 * import { actGrad, tensor } from "@moegrad/moegrad";
 * console.log(await actGrad(tensor([-1, 2]), tensor([5, 5]), "relu").data()); // [0, 5]
 * ```
 */
export function actGrad(x: Tensor, g: Tensor, act: FusedActivation, b?: Tensor): Tensor {
  assertTensor("actGrad", x);
  assertTensor("actGrad", g, "g");
  checkAct("actGrad", act);
  assertFloat("actGrad", x);
  const [, tg] = binaryOperands("actGrad", x, g);
  if (!shapesEqual(tg.shape, x.shape)) {
    throw new OpError("actGrad", `g of shape [${tg.shape.join(", ")}] must have x's shape [${x.shape.join(", ")}]`);
  }
  const inputs = b === undefined ? [x, tg] : [x, tg, binaryOperands("actGrad", x, b)[1]];
  if (inputs[2]) checkBias("actGrad", x, inputs[2]);
  const out = run1("actGrad", "elementwise", inputs, { shape: x.shape, dtype: x.dtype }, {
    program: actGradProgram(act, x.dtype, inputs.length === 3),
  });
  record("actGrad", inputs, [out], ([gg]) => {
    const tb = inputs[2];
    const z = tb ? add(x, tb) : x;
    const dz = x.requiresGrad || tb?.requiresGrad ? actSecond(act, z, mul(gg, tg)) : null;
    const dg = tg.requiresGrad ? actGrad(x, gg, act, tb) : null;
    return [x.requiresGrad ? dz : null, dg, tb?.requiresGrad && dz ? sumTo(dz, tb.shape) : null];
  });
  return out;
}
