/**
 * The fused, in-place Adam/AdamW update for f32 parameters on the CPU: one pass over the arrays instead of
 * ~12 elementwise ops (each of which would allocate and fill a full-size tensor), writing the parameter and
 * both moments into their existing storage, so a steady-state step allocates nothing. It reproduces the
 * op-by-op update of {@link Adam} bit for bit: every intermediate is rounded to f32 exactly where the
 * op-by-op path stores an f32 tensor, and each scalar enters as an f32 constant as `binaryOperands` makes
 * it (see kernels/cpu/adam.ts, which runs it on WebAssembly SIMD or in plain TypeScript). Used only when
 * the CPU backend's `fastKernels` option is on (the plain path runs the ops).
 *
 * @module
 */
import type { Tensor } from "../../core/mod.ts";
import { activeRecorder } from "../../core/profile.ts";
import { type AdamScalars, adamSteps } from "../../kernels/cpu/adam.ts";

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
  /** The clip coefficient (an f32 value) the gradient is scaled by first; 1: none. */
  gradScale: number;
}

/** The scalars as the ops see them: each host number rounded once to an f32 constant. */
function scalarsOf(a: FusedAdamArgs): AdamScalars {
  const f = Math.fround;
  return {
    decay: a.weightDecay === 0 ? "none" : a.decoupled ? "decoupled" : "l2",
    wd: f(a.weightDecay),
    shrink: f(1 - a.lr * a.weightDecay),
    b1: f(a.beta1),
    c1: f(1 - a.beta1),
    b2: f(a.beta2),
    c2: f(1 - a.beta2),
    bc2: f(a.bc2Sqrt),
    eps: f(a.eps),
    step: f(a.stepSize),
    gscale: a.gradScale,
  };
}

/** One parameter's fused update, queued for {@link fusedAdamUpdates}. */
export interface FusedAdamUpdate {
  p: Tensor;
  g: Tensor;
  m: Tensor;
  v: Tensor;
  args: FusedAdamArgs;
}

/**
 * Updates each entry's `p`, `m` and `v` in place from its gradient `g` (zero `m` and `v` on the first step give
 * the first step's update), as few kernel-pool jobs as the thread count and the pool's limits allow
 * (`adamSteps`), so a step's optimizer wakes the Workers a few times rather than once per parameter. The
 * entries must update distinct parameters, and each `m` and `v` must have storage of its own: nothing else may
 * read it expecting the old values. Callers check `fusedCpuF32` (_fused.ts) first.
 */
export function fusedAdamUpdates(updates: readonly FusedAdamUpdate[]): void {
  if (updates.length === 0) return;
  const rec = activeRecorder();
  const t0 = rec ? performance.now() : 0;
  const arrays = updates.map(({ p, g, m, v, args }) => ({
    p: p.storage.buf as Float32Array,
    g: g.storage.buf as Float32Array,
    m: m.storage.buf as Float32Array,
    v: v.storage.buf as Float32Array,
    n: p.size,
    s: scalarsOf(args),
  }));
  // One batch per weight-decay mode (a batch's jobs share one compiled unit).
  let kernel: "wasm-simd" | "js" = "js";
  for (const decay of new Set(arrays.map((a) => a.s.decay))) {
    kernel = adamSteps(arrays.filter((a) => a.s.decay === decay));
  }
  if (rec) rec.record("adamw", kernel, performance.now() - t0);
}
