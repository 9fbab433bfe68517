/**
 * The fused CPU path of {@link clipGradNorm} for f32 gradients: one pass per gradient for its sum of
 * squares, with no temporary tensors, then an in-place scaling pass (both in kernels/cpu/sum_squares.ts,
 * on WebAssembly SIMD where enabled). It reproduces the op path (`g.square().sum()` per gradient — same
 * order of summation —, f32 adds across gradients, `sqrt`, `minimum(maxNorm / (total + eps), 1)`,
 * `g.mul(scale)`) bit for bit.
 *
 * @module
 */
import { full, keep, type Tensor } from "../../core/mod.ts";
import { activeRecorder } from "../../core/profile.ts";
import { scaleF32, sumsOfSquaresF32 } from "../../kernels/cpu/sum_squares.ts";

/**
 * The global norm of the f32 CPU gradients `grads` (at least one) and the clip coefficient, as host f32
 * values, bit for bit as `opGlobalNorm` (_grad_norm.ts) computes them: total = √(Σ Σ g²), scale = min(1,
 * maxNorm / (total + eps)), NaN propagating as `minimum` does.
 */
export function fusedGlobalNorm(grads: readonly Tensor[], maxNorm: number, eps: number): {
  total: number;
  scale: number;
} {
  const f = Math.fround;
  const sums = sumsOfSquaresF32(grads.map((g) => g.storage.buf as Float32Array), grads.map((g) => g.shape));
  // Combined in the parameters' order, whatever thread computed each sum.
  let sumSq = 0;
  sums.forEach((s, i) => sumSq = i === 0 ? s : f(sumSq + s));
  const total = f(Math.sqrt(sumSq));
  const q = f(f(maxNorm) / f(total + f(eps)));
  return { total, scale: q !== q ? NaN : q < 1 ? q : 1 };
}

/**
 * Clips the f32 CPU gradients of `params` (all with a `.grad`) as {@link clipGradNorm} does and returns the
 * norm. Call it under `noGrad` inside a `scope`. A gradient whose storage nothing else views is scaled in
 * place; one that shares storage (e.g. add's backward hands one gradient to both inputs) gets a new tensor,
 * as on the op path, so each is scaled once.
 * With scale exactly 1 nothing is written (g·1 = g; scale 1 implies a finite norm, hence finite gradients).
 */
export function fusedClipGradNorm(params: readonly Tensor[], maxNorm: number, eps: number): Tensor {
  const rec = activeRecorder();
  const t0 = rec ? performance.now() : 0;
  const { total, scale } = fusedGlobalNorm(params.map((p) => p.grad!), maxNorm, eps);
  if (scale !== 1) {
    // Old gradient → scaled one, so a tensor that is the gradient of two parameters is scaled once.
    const done = new Map<Tensor, Tensor>();
    for (const p of params) {
      const g = p.grad!;
      let out = done.get(g);
      if (!out) {
        if (g.storage.lease.refs === 1) {
          scaleF32(g.storage.buf as Float32Array, g.size, scale);
          out = g;
        } else {
          out = keep(g.mul(scale));
          g.dispose();
        }
        done.set(g, out);
      }
      p.grad = out;
    }
  }
  if (rec) rec.record("clipGradNorm", "fused-cpu", performance.now() - t0);
  return full([], total, { dtype: "f32", device: params[0].device });
}
