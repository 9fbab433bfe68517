/**
 * CPU matmul: batched, with transpose flags and batch-1 broadcasting (see the registry). The kernel runs
 * the packed, register-blocked {@link matmulBlocked} for f32/f64; {@link matmulReference} is the plain
 * i-k-j loop kept as the reference it is tested against.
 *
 * @module
 */
import type { KernelFamily } from "../registry.ts";
import type { CpuBuffer } from "./buffer.ts";
import { type FloatBuffer, matmulBlocked } from "./matmul_blocked.ts";

export { type FloatBuffer, matmulBlocked } from "./matmul_blocked.ts";

/**
 * out[M×N] = op(a)·op(b) for one batch, on flat arrays at the given offsets. `transA` reads a as [K, M],
 * `transB` reads b as [N, K].
 */
export function matmulReference(
  a: CpuBuffer,
  aOff: number,
  b: CpuBuffer,
  bOff: number,
  out: CpuBuffer,
  oOff: number,
  m: number,
  k: number,
  n: number,
  transA: boolean,
  transB: boolean,
): void {
  out.fill(0, oOff, oOff + m * n);
  // Materialise op(b) as [K, N] so the inner loop runs over contiguous memory.
  let bk: CpuBuffer = b, bkOff = bOff;
  if (transB) {
    bk = new (b.constructor as Float64ArrayConstructor)(k * n);
    bkOff = 0;
    for (let j = 0; j < n; j++) for (let p = 0; p < k; p++) bk[p * n + j] = b[bOff + j * k + p];
  }
  for (let i = 0; i < m; i++) {
    const row = oOff + i * n;
    for (let p = 0; p < k; p++) {
      const av = transA ? a[aOff + p * m + i] : a[aOff + i * k + p];
      const brow = bkOff + p * n;
      for (let j = 0; j < n; j++) out[row + j] += av * bk[brow + j];
    }
  }
}

/** The matmul family of the CPU backend. */
export const matmulKernels: KernelFamily<CpuBuffer, "matmul"> = {
  matmul([a, b], [out], { transA, transB }) {
    const [batch, m, n] = out.shape;
    const k = transA ? a.shape[1] : a.shape[2];
    const aStride = a.shape[0] === 1 ? 0 : m * k, bStride = b.shape[0] === 1 ? 0 : k * n;
    const [ab, bb, ob] = [a.buf, b.buf, out.buf];
    const float = (x: CpuBuffer): x is FloatBuffer => x instanceof Float32Array || x instanceof Float64Array;
    if (float(ab) && float(bb) && float(ob)) {
      matmulBlocked(ab, aStride, bb, bStride, ob, batch, m, k, n, transA, transB);
      return;
    }
    for (let t = 0; t < batch; t++) {
      matmulReference(a.buf, t * aStride, b.buf, t * bStride, out.buf, t * m * n, m, k, n, transA, transB);
    }
  },
};
