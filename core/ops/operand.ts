/**
 * Argument checks shared by the ops: operand coercion (numbers become tensors of the other operand's dtype
 * and device) and dtype guards whose messages name the op.
 *
 * @module
 */
import { type DType, isFloat } from "../dtype.ts";
import { fmtShape, OpError } from "../errors.ts";
import { Tensor } from "../tensor.ts";
import { full } from "./creation.ts";

/** Throws unless `x` is a Tensor. */
export function assertTensor(op: string, x: unknown, name = "input"): asserts x is Tensor {
  if (!(x instanceof Tensor)) throw new OpError(op, `${name} must be a Tensor, got ${typeof x}`);
}

/** Turns a number into a scalar tensor with `like`'s dtype and device; checks a Tensor operand. */
export function asOperand(op: string, x: Tensor | number | boolean, like: Tensor): Tensor {
  if (x instanceof Tensor) return x;
  if (typeof x === "boolean") return full([], x ? 1 : 0, { dtype: "bool", device: like.device });
  if (typeof x !== "number") throw new OpError(op, `operand must be a Tensor or a number, got ${typeof x}`);
  return full([], x, { dtype: like.dtype, device: like.device });
}

/** Coerces a binary op's operands: at least one must be a Tensor; dtypes must match. */
export function binaryOperands(op: string, a: Tensor | number, b: Tensor | number): [Tensor, Tensor] {
  if (!(a instanceof Tensor) && !(b instanceof Tensor)) {
    throw new OpError(op, "at least one operand must be a Tensor");
  }
  const ta = a instanceof Tensor ? a : asOperand(op, a, b as Tensor);
  const tb = b instanceof Tensor ? b : asOperand(op, b, ta);
  if (ta.dtype !== tb.dtype) {
    throw new OpError(
      op,
      `dtypes differ: ${ta.dtype} ${fmtShape(ta.shape)} and ${tb.dtype} ${fmtShape(tb.shape)}; cast one with astype()`,
    );
  }
  return [ta, tb];
}

/** Throws unless `x` has a float dtype. */
export function assertFloat(op: string, x: Tensor): void {
  if (!isFloat(x.dtype)) {
    throw new OpError(op, `expected a float tensor (f32 or f64), got ${x.dtype} ${fmtShape(x.shape)}`);
  }
}

/** Throws unless `x` has one of `dtypes`. */
export function assertDTypeIn(op: string, x: Tensor, dtypes: readonly DType[], name = "input"): void {
  if (!dtypes.includes(x.dtype)) {
    throw new OpError(op, `${name} must have dtype ${dtypes.join(" or ")}, got ${x.dtype} ${fmtShape(x.shape)}`);
  }
}
