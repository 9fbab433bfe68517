/**
 * A fused Adam/AdamW update for f32 parameters on the CPU: one pass over the arrays instead of ~12
 * elementwise ops, each of which allocates and fills a full-size tensor. It reproduces the op-by-op update
 * of {@link Adam} bit for bit: every intermediate is rounded to f32 (`Math.fround`) exactly where the
 * op-by-op path stores an f32 tensor, and each scalar enters as an f32 constant as `binaryOperands` makes
 * it. Used only when the CPU backend's `fastKernels` option is on (the plain path runs the ops).
 *
 * @module
 */
import type { Tensor } from "../../core/mod.ts";
import { cpuOptions } from "../../core/mod.ts";
import { emptyTensor } from "../../core/engine.ts";
import { activeRecorder } from "../../core/profile.ts";

/** Hyperparameters and step of one Adam/AdamW update (host numbers, as `Adam.updateParameter` has them). */
export interface FusedAdamArgs {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  decoupled: boolean;
  /** η / (1 − β₁ᵗ), in double precision. */
  stepSize: number;
  /** √(1 − β₂ᵗ), in double precision. */
  bc2Sqrt: number;
}

/** Whether the fused update applies: CPU, f32 parameter and gradient, fast kernels on. */
export function canFuseAdam(p: Tensor, g: Tensor): boolean {
  return p.device.name === "cpu" && p.dtype === "f32" && g.dtype === "f32" && cpuOptions().fastKernels;
}

/**
 * Updates `p` in place and returns the new (m, v) tensors; `m0`/`v0` undefined means zero state (the first
 * step). Callers check {@link canFuseAdam} first.
 */
export function fusedAdamUpdate(
  p: Tensor,
  g: Tensor,
  m0: Tensor | undefined,
  v0: Tensor | undefined,
  a: FusedAdamArgs,
): { m: Tensor; v: Tensor } {
  const rec = activeRecorder();
  const t0 = rec ? performance.now() : 0;
  const f = Math.fround;
  const spec = { shape: p.shape, dtype: p.dtype };
  const m = emptyTensor(p.device, spec), v = emptyTensor(p.device, spec);
  const pb = p.storage.buf as Float32Array, gb = g.storage.buf as Float32Array;
  const mb = m.storage.buf as Float32Array, vb = v.storage.buf as Float32Array;
  const mo = m0?.storage.buf as Float32Array | undefined, vo = v0?.storage.buf as Float32Array | undefined;
  // The scalars as the ops see them: f32 constants.
  const decay = f(1 - a.lr * a.weightDecay), wd = f(a.weightDecay);
  const b1 = f(a.beta1), c1 = f(1 - a.beta1), b2 = f(a.beta2), c2 = f(1 - a.beta2);
  const bc2 = f(a.bc2Sqrt), eps = f(a.eps), step = f(a.stepSize);
  const wdOn = a.weightDecay !== 0, decoupled = a.decoupled;
  const n = p.size;
  if (decoupled && mo && vo) {
    // The steady state of AdamW, without per-element branches.
    const decayed = wdOn ? decay : 1;
    for (let i = 0; i < n; i++) {
      const gi = gb[i];
      const base = wdOn ? f(pb[i] * decayed) : pb[i];
      const mi = f(f(mo[i] * b1) + f(gi * c1));
      const vi = f(f(vo[i] * b2) + f(f(gi * gi) * c2));
      mb[i] = mi;
      vb[i] = vi;
      pb[i] = f(base - f(f(mi / f(f(f(Math.sqrt(vi)) / bc2) + eps)) * step));
    }
  } else {
    for (let i = 0; i < n; i++) {
      const pi = pb[i];
      let gi = gb[i], base = pi;
      if (wdOn) {
        if (decoupled) base = f(pi * decay);
        else gi = f(gi + f(pi * wd));
      }
      const mi = f(f((mo ? mo[i] : 0) * b1) + f(gi * c1));
      const vi = f(f((vo ? vo[i] : 0) * b2) + f(f(f(gi * gi) * c2)));
      const denom = f(f(f(Math.sqrt(vi)) / bc2) + eps);
      mb[i] = mi;
      vb[i] = vi;
      pb[i] = f(base - f(f(mi / denom) * step));
    }
  }
  if (rec) rec.record("adamw", "fused-cpu", performance.now() - t0);
  return { m, v };
}
