/**
 * dtype conversion.
 *
 * @module
 */
import { assertDType, type DType, isFloat } from "../dtype.ts";
import { record1 } from "../autograd.ts";
import { run1 } from "../engine.ts";
import type { Tensor } from "../tensor.ts";

/**
 * Converts `x` to `dtype`: float → i32 truncates toward zero, anything → bool tests `≠ 0`. Float-to-float
 * casts are differentiable (the gradient is cast back).
 *
 * @example
 * ```ts
 * import { tensor } from "@moegrad/moegrad";
 * console.log(await tensor([1.7, -1.7, 0]).astype("i32").data()); // [1, -1, 0]
 * ```
 */
export function astype(x: Tensor, dtype: DType): Tensor {
  assertDType(dtype, "astype");
  if (x.dtype === dtype) return x;
  const out = run1("astype", "cast", [x], { shape: x.shape, dtype }, {});
  if (isFloat(x.dtype) && isFloat(dtype)) record1("astype", [x], out, (g) => [astype(g, x.dtype)]);
  return out;
}

/** A copy of `x` with its own storage; differentiable (identity gradient). */
export function copy(x: Tensor): Tensor {
  const out = run1("clone", "cast", [x], { shape: x.shape, dtype: x.dtype }, {});
  return isFloat(x.dtype) ? record1("clone", [x], out, (g) => [g]) : out;
}
