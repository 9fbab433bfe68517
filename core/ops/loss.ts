/**
 * Losses. `crossEntropy` is one fused kernel per direction (`kernels/cpu/cross_entropy.ts`,
 * `kernels/webgpu/cross_entropy.ts`): per row the max, logsumexp and loss forward, and softmax − one-hot scaled
 * by the upstream gradient backward, instead of logSoftmax, gather, where and their VJPs. Only the reduction over
 * rows (sum, and the count of kept targets for the mean) runs as separate ops.
 *
 * @module
 */
import { fmtShape, OpError } from "../errors.ts";
import { shapesEqual } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import { isGradEnabled, record1 } from "../autograd.ts";
import { run1, runKernel } from "../engine.ts";
import { assertDTypeIn, assertFloat, assertTensor } from "./operand.ts";
import { where } from "./binary.ts";
import { oneHot } from "./index.ts";
import { unsqueeze } from "./layout.ts";
import { sum } from "./reduce.ts";
import { softmax } from "./softmax.ts";

/** Options of {@link crossEntropy}. */
export interface CrossEntropyOptions {
  /** Targets equal to this are ignored (no loss, no gradient, not counted in the mean). Default −100. */
  ignoreIndex?: number;
  /** Label smoothing ε ∈ [0, 1]: the target is (1−ε)·one-hot + ε/C (PyTorch's definition). Default 0. */
  labelSmoothing?: number;
  /** `"mean"` over non-ignored targets (default), `"sum"`, or `"none"` (per-target losses, 0 where ignored). */
  reduction?: "mean" | "sum" | "none";
}

/**
 * Cross-entropy between `logits` [..., C] and i32 class `targets` [...], like `torch.nn.functional.cross_entropy`
 * with classes on the last axis.
 *
 * @example
 * ```ts
 * import { crossEntropy, tensor } from "@moegrad/moegrad";
 * const logits = tensor([[2, 0, 0], [0, 0, 0]]);
 * const targets = tensor([0, -100], { dtype: "i32" }); // the second row is ignored
 * console.log(await crossEntropy(logits, targets).item()); // −log(e²/(e²+2)) ≈ 0.2395
 * ```
 */
export function crossEntropy(logits: Tensor, targets: Tensor, options: CrossEntropyOptions = {}): Tensor {
  assertTensor("crossEntropy", logits, "logits");
  assertTensor("crossEntropy", targets, "targets");
  assertFloat("crossEntropy", logits);
  assertDTypeIn("crossEntropy", targets, ["i32"], "targets");
  const { ignoreIndex = -100, labelSmoothing = 0, reduction = "mean" } = options;
  if (logits.rank < 1 || !shapesEqual(logits.shape.slice(0, -1), targets.shape)) {
    throw new OpError(
      "crossEntropy",
      `logits ${fmtShape(logits.shape)} must be targets ${fmtShape(targets.shape)} plus a class axis`,
    );
  }
  if (!Number.isInteger(ignoreIndex) || Math.abs(ignoreIndex) > 2 ** 31 - 1) {
    throw new OpError("crossEntropy", `ignoreIndex must be an i32 integer, got ${ignoreIndex}`);
  }
  if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) {
    throw new OpError("crossEntropy", `labelSmoothing must be in [0, 1], got ${labelSmoothing}`);
  }
  if (!["mean", "sum", "none"].includes(reduction)) {
    throw new OpError("crossEntropy", `reduction must be "mean", "sum" or "none", got ${JSON.stringify(reduction)}`);
  }
  const attrs = { ignoreIndex, labelSmoothing };
  const rows = { shape: targets.shape, dtype: logits.dtype };
  const [loss, lse] = runKernel("crossEntropy", "crossEntropy", [logits, targets], [rows, rows], attrs);
  record1("crossEntropy", [logits], loss, (g) => [
    isGradEnabled()
      ? composedBackward(logits, targets, g, attrs)
      : run1("crossEntropy", "crossEntropyBackward", [logits, targets, lse, g], {
        shape: logits.shape,
        dtype: logits.dtype,
      }, attrs),
  ]);
  if (!loss.requiresGrad) lse.dispose(); // not recorded: nothing will read it
  if (reduction === "none") return loss;
  if (reduction === "sum") return sum(loss);
  return sum(loss).div(sum(targets.ne(ignoreIndex).astype(logits.dtype)));
}

/**
 * The backward written with differentiable ops (for `createGraph`, so gradients of any order work): the
 * kernel's formula (softmax − (1 − ε)·onehot − ε/C)·g, zero in ignored rows.
 */
function composedBackward(
  logits: Tensor,
  targets: Tensor,
  g: Tensor,
  { ignoreIndex, labelSmoothing: eps }: { ignoreIndex: number; labelSmoothing: number },
): Tensor {
  const c = logits.shape[logits.rank - 1];
  const keep = targets.ne(ignoreIndex);
  const hot = oneHot(where(keep, targets, 0), c, logits.dtype);
  const d = softmax(logits, -1).sub(hot.mul(1 - eps)).sub(eps / c);
  return d.mul(unsqueeze(where(keep, g, 0), -1));
}
