/**
 * Gradient clipping by the global L2 norm, like `torch.nn.utils.clip_grad_norm_`.
 *
 * @module
 */
import { keep, noGrad, scope, Tensor, zeros } from "../../core/mod.ts";
import { checkGradGroup, opGlobalNorm } from "./_grad_norm.ts";
import { checkNumber, checkOptionKeys } from "./_check.ts";
import { namedParams, type ParamsInput } from "./optimizer.ts";
import { fusedCpuF32 } from "./_fused.ts";
import { fusedClipGradNorm } from "./fused_clip.ts";

/** Options of {@link clipGradNorm}. */
export interface ClipGradNormOptions {
  /** Added to the norm before dividing (default 1e-6, as PyTorch). */
  eps?: number;
}

/**
 * Scales the gradients of `params` so that their global L2 norm is at most `maxNorm`, like
 * `torch.nn.utils.clip_grad_norm_`, and returns the norm before clipping as a scalar tensor:
 *
 * ```text
 * total = √(Σ over parameters with a .grad of Σ g²)
 * scale = min(1, maxNorm / (total + eps))
 * g ← g · scale   (every gradient; a no-op when scale = 1)
 * ```
 *
 * Everything runs on the gradients' device: nothing is read back, so there is no GPU sync (read the
 * returned norm only when you need it). Non-finite norms propagate into the gradients, as in PyTorch. On the
 * op path each `.grad` is replaced by a new tensor (the old one is disposed, so do not hold on to it):
 * gradients of different parameters may share storage, which rules out scaling them in place blindly. The
 * fused CPU path (f32 gradients, `fastKernels` on) computes the norm in one pass per gradient and scales a
 * gradient in place when nothing else views its storage (else it too gets a new tensor), with the same bits.
 * Parameters without a gradient are skipped; with none at all the norm is a zero scalar. All gradients must
 * share one dtype and device.
 *
 * @example
 * ```ts
 * import { tensor } from "@moegrad/moegrad";
 * import { clipGradNorm } from "./mod.ts";
 * const w = tensor([3, 4]).requiresGrad_();
 * w.mul(tensor([3, 4])).sum().backward(); // grad [3, 4], norm 5
 * const norm = clipGradNorm([w], 1);
 * console.log(await norm.item(), await w.grad!.data()); // 5, ≈ [0.6, 0.8]
 * ```
 */
export function clipGradNorm(params: ParamsInput | Tensor, maxNorm: number, options: ClipGradNormOptions = {}): Tensor {
  const owner = "clipGradNorm";
  checkNumber(owner, "maxNorm", maxNorm, { min: 0, allowInfinity: true });
  checkOptionKeys(owner, options, ["eps"]);
  const eps = checkNumber(owner, "eps", options.eps ?? 1e-6, { min: 0 });
  const named = namedParams(owner, params instanceof Tensor ? [params] : params);
  const withGrad = named.filter(([, p]) => p.grad !== null);
  if (withGrad.length === 0) {
    const like = named[0]?.[1];
    return zeros([], like ? { dtype: like.dtype, device: like.device } : {});
  }
  checkGradGroup(owner, withGrad);
  const first = withGrad[0][1].grad!;
  if (fusedCpuF32(first, first)) {
    // One pass per gradient, in place (see fused_clip.ts); bit-identical to the ops below.
    return noGrad(() => scope(() => fusedClipGradNorm(withGrad.map(([, p]) => p), maxNorm, eps)));
  }
  return noGrad(() =>
    scope(() => {
      const { total, scale } = opGlobalNorm(withGrad.map(([, p]) => p.grad!), maxNorm, eps);
      // Old gradient → scaled one, so a tensor that is the gradient of two parameters is scaled once.
      const done = new Map<Tensor, Tensor>();
      for (const [, p] of withGrad) {
        const old = p.grad!;
        let scaled = done.get(old);
        if (!scaled) {
          done.set(old, scaled = keep(old.mul(scale)));
          old.dispose();
        }
        p.grad = scaled;
      }
      return total;
    })
  );
}
