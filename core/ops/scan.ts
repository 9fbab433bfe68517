/**
 * Scans: cumulative sums (MoE dispatch uses them to turn expert counts into offsets).
 *
 * @module
 */
import { record1 } from "../autograd.ts";
import { run1 } from "../engine.ts";
import { normAxis } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import { assertDTypeIn, assertTensor } from "./operand.ts";

/**
 * Inclusive cumulative sum along `axis` (`reverse` sums from the end). Bool input gives i32. The VJP of a
 * cumsum is the cumsum of the gradient in the opposite direction.
 *
 * @example
 * ```ts
 * import { cumsum, tensor } from "@moegrad/moegrad";
 * console.log(await cumsum(tensor([1, 2, 3]), 0).data()); // [1, 3, 6]
 * ```
 */
export function cumsum(x: Tensor, axis: number, reverse = false): Tensor {
  assertTensor("cumsum", x);
  assertDTypeIn("cumsum", x, ["f32", "f64", "i32", "bool"]);
  const a = normAxis("cumsum", axis, x.shape);
  const dtype = x.dtype === "bool" ? "i32" : x.dtype;
  const out = run1("cumsum", "cumsum", [x], { shape: x.shape, dtype }, { axis: a, reverse });
  return record1("cumsum", [x], out, (g) => [cumsum(g, a, !reverse)]);
}
