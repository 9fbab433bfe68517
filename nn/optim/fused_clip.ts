/**
 * The fused CPU path of {@link clipGradNorm} for f32 gradients: one pass per gradient for its sum of
 * squares, with no temporary tensors, then an in-place scaling pass. It reproduces the op path
 * (`g.square().sum()` per gradient, f32 adds across gradients, `sqrt`, `minimum(maxNorm / (total + eps), 1)`,
 * `g.mul(scale)`) bit for bit. The order of summation is the part to get right: `sum()` over all axes
 * reduces one axis at a time, first to last, each reduction summing in double precision in index order and
 * storing f32 — so a [r, c] gradient is summed down its columns into c doubles, rounded to f32, and those
 * are summed in turn. {@link sumOfSquaresF32} does the same stages, the first fused with the squaring and
 * the rest in a reused scratch array.
 *
 * @module
 */
import { full, keep, type Tensor } from "../../core/mod.ts";
import { activeRecorder } from "../../core/profile.ts";

/** Column sums of the reductions; grown on demand and reused, so a steady-state call allocates nothing. */
let scratch = new Float64Array(0);

/**
 * Σ g² over the f32 array `g` of shape `shape`, computed exactly as `g.square().sum()` computes it on the CPU
 * (the same f32 roundings, the same order of summation; see the module docs). Returns an f32 value.
 */
export function sumOfSquaresF32(g: Float32Array, shape: readonly number[]): number {
  const f = Math.fround;
  let n = 1;
  for (const d of shape) n *= d;
  if (shape.length === 0) return f(g[0] * g[0]); // sum() over no axes: the square itself
  if (n === 0) return 0;
  if (shape.length === 1) {
    let acc = 0;
    for (let i = 0; i < n; i++) acc += f(g[i] * g[i]);
    return f(acc);
  }
  // Axis 0, fused with the squaring: column sums in double, in row order, then rounded to f32.
  let len = n / shape[0];
  if (scratch.length < len) scratch = new Float64Array(len);
  const acc = scratch;
  acc.fill(0, 0, len);
  for (let base = 0; base < n; base += len) {
    for (let j = 0; j < len; j++) {
      const x = g[base + j];
      acc[j] += f(x * x);
    }
  }
  for (let j = 0; j < len; j++) acc[j] = f(acc[j]);
  // Axes 1, 2, …: each sums the rows of the previous result (in place: output j only overwrites input j,
  // which its own sum has already read, and later outputs read only indices ≥ j + 1).
  for (let axis = 1; axis < shape.length; axis++) {
    const d = shape[axis], inner = len / d;
    for (let j = 0; j < inner; j++) {
      let s = 0;
      for (let i = 0; i < d; i++) s += acc[i * inner + j];
      acc[j] = f(s);
    }
    len = inner;
  }
  return acc[0];
}

/**
 * Clips the f32 CPU gradients of `params` (all with a `.grad`) as {@link clipGradNorm} does and returns the
 * norm. Call it under `noGrad` inside a `scope`. A gradient whose storage nothing else views is scaled in place; one that shares storage (e.g. add's
 * backward hands one gradient to both inputs) gets a new tensor, as on the op path, so each is scaled once.
 * With scale exactly 1 nothing is written (g·1 = g; scale 1 implies a finite norm, hence finite gradients).
 */
export function fusedClipGradNorm(params: readonly Tensor[], maxNorm: number, eps: number): Tensor {
  const rec = activeRecorder();
  const t0 = rec ? performance.now() : 0;
  const f = Math.fround;
  let sumSq = 0;
  params.forEach((p, i) => {
    const g = p.grad!;
    const s = sumOfSquaresF32(g.storage.buf as Float32Array, g.shape);
    sumSq = i === 0 ? s : f(sumSq + s);
  });
  const total = f(Math.sqrt(sumSq));
  const q = f(f(maxNorm) / f(total + f(eps)));
  const scale = q !== q ? NaN : q < 1 ? q : 1; // minimum(q, 1), NaN propagating as the kernel does
  if (scale !== 1) {
    // Old gradient → scaled one, so a tensor that is the gradient of two parameters is scaled once.
    const done = new Map<Tensor, Tensor>();
    for (const p of params) {
      const g = p.grad!;
      let out = done.get(g);
      if (!out) {
        if (g.storage.lease.refs === 1) {
          const gb = g.storage.buf as Float32Array, n = g.size;
          for (let i = 0; i < n; i++) gb[i] = gb[i] * scale; // the f32 store rounds, like mul's kernel
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
