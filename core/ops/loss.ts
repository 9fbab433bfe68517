/**
 * Losses.
 *
 * @module
 */
import { fmtShape, OpError } from "../errors.ts";
import { shapesEqual } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import { assertDTypeIn, assertFloat, assertTensor } from "./operand.ts";
import { where } from "./binary.ts";
import { gather } from "./index.ts";
import { squeeze, unsqueeze } from "./layout.ts";
import { mean, sum } from "./reduce.ts";
import { logSoftmax } from "./softmax.ts";

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
  if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) {
    throw new OpError("crossEntropy", `labelSmoothing must be in [0, 1], got ${labelSmoothing}`);
  }
  if (!["mean", "sum", "none"].includes(reduction)) {
    throw new OpError("crossEntropy", `reduction must be "mean", "sum" or "none", got ${JSON.stringify(reduction)}`);
  }
  const keep = targets.ne(ignoreIndex);
  const safeTargets = where(keep, targets, 0);
  const logp = logSoftmax(logits, -1);
  let picked: Tensor;
  try {
    picked = gather(logp, -1, unsqueeze(safeTargets, -1));
  } catch (e) {
    if (!(e instanceof OpError && e.op === "gather")) throw e;
    const c = logits.shape[logits.rank - 1];
    throw new OpError(
      "crossEntropy",
      `targets ${fmtShape(targets.shape)} hold a class outside [0, ${c}) for logits ${
        fmtShape(logits.shape)
      } (${e.message})`,
    );
  }
  let loss = squeeze(picked, -1).neg();
  if (labelSmoothing > 0) loss = loss.mul(1 - labelSmoothing).sub(mean(logp, -1).mul(labelSmoothing));
  loss = where(keep, loss, 0);
  if (reduction === "none") return loss;
  if (reduction === "sum") return sum(loss);
  return sum(loss).div(sum(keep.astype(logits.dtype)));
}
