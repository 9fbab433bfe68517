/**
 * The fused, in-place SGD update for f32 parameters on the CPU: one plain-TypeScript pass that writes the
 * parameter and the momentum buffer into their existing storage, instead of up to six elementwise ops each
 * allocating a full-size tensor. It reproduces {@link SGD}'s op-by-op update bit for bit: each intermediate
 * is rounded to f32 (`Math.fround`) where an op stores an f32 tensor, each scalar is an f32 constant as
 * `binaryOperands` makes it, and the first step copies d into the buffer as the ops do. (SGD's pass is a
 * few multiply-adds per element, memory-bound already, so it has no WebAssembly version.)
 *
 * @module
 */
import type { Tensor } from "../../core/mod.ts";
import { activeRecorder } from "../../core/profile.ts";

/** Hyperparameters of one SGD update (host numbers, as `SGD.updateParameter` has them). */
export interface FusedSgdArgs {
  lr: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  weightDecay: number;
  /** The parameter's first update with momentum: the buffer becomes a copy of d. */
  first: boolean;
  /** The clip coefficient (an f32 value) the gradient is scaled by first, f32(g·c); 1: none. */
  gradScale: number;
}

/**
 * Updates `p` (and the momentum buffer `buf`, when `momentum` ≠ 0) in place from the gradient `g`. `buf`
 * must have storage of its own; it is ignored without momentum. Callers check `fusedCpuF32` (_fused.ts).
 */
export function fusedSgdUpdate(p: Tensor, g: Tensor, buf: Tensor | undefined, a: FusedSgdArgs): void {
  const rec = activeRecorder();
  const t0 = rec ? performance.now() : 0;
  const f = Math.fround;
  const pb = p.storage.buf as Float32Array, gb = g.storage.buf as Float32Array;
  const bb = (buf?.storage.buf ?? pb) as Float32Array;
  const wd = f(a.weightDecay), mu = f(a.momentum), keep = f(1 - a.dampening), lr = f(a.lr);
  const l2 = a.weightDecay !== 0, heavy = a.momentum !== 0, first = a.first;
  const damped = a.dampening !== 0, nesterov = a.nesterov;
  const gs = a.gradScale, clip = gs !== 1;
  const n = p.size;
  for (let i = 0; i < n; i++) {
    const pi = pb[i];
    const gi = clip ? f(gb[i] * gs) : gb[i];
    let d = l2 ? f(gi + f(pi * wd)) : gi;
    if (heavy) {
      const b = first ? d : f(f(bb[i] * mu) + (damped ? f(d * keep) : d));
      bb[i] = b;
      d = nesterov ? f(d + f(b * mu)) : b;
    }
    pb[i] = f(pi - f(d * lr));
  }
  if (rec) rec.record("sgd", "fused-cpu", performance.now() - t0);
}
