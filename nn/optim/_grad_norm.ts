/**
 * The global gradient norm shared by {@link clipGradNorm} and the optimizers' `maxGradNorm` option: the
 * check that the gradients form one group (one dtype, one device), and the op path's norm and clip
 * coefficient (the fused CPU path is `fusedGlobalNorm` in fused_clip.ts, with the same bits).
 *
 * @module
 */
import { div, minimum, type Tensor } from "../../core/mod.ts";

/**
 * Throws unless every gradient of `withGrad` (`[name, parameter]` pairs, each with a `.grad`) is alive and
 * shares the first one's dtype and device.
 */
export function checkGradGroup(owner: string, withGrad: readonly (readonly [string, Tensor])[]): void {
  if (withGrad.length === 0) return;
  const [firstName, firstParam] = withGrad[0];
  const first = firstParam.grad!;
  for (const [name, p] of withGrad) {
    const g = p.grad!;
    if (g.isDisposed) throw new Error(`${owner}: the gradient of "${name}" has been disposed`);
    if (g.dtype !== first.dtype || g.device !== first.device) {
      throw new TypeError(
        `${owner}: the gradients differ in dtype or device ("${firstName}": ${first.dtype} on ${first.device.name}, ` +
          `"${name}": ${g.dtype} on ${g.device.name}); clip each group separately`,
      );
    }
  }
}

/**
 * The op path's global norm of `grads` (at least one) and clip coefficient, as scalar tensors on their
 * device: total = √(Σ Σ g²) (each gradient's `square().sum()`, added in order), scale = min(1, maxNorm /
 * (total + eps)). Run it under `noGrad`.
 */
export function opGlobalNorm(grads: readonly Tensor[], maxNorm: number, eps: number): { total: Tensor; scale: Tensor } {
  let sumSq: Tensor | undefined;
  for (const g of grads) {
    const s = g.square().sum();
    sumSq = sumSq ? sumSq.add(s) : s;
  }
  const total = sumSq!.sqrt();
  return { total, scale: minimum(div(maxNorm, total.add(eps)), 1) };
}
