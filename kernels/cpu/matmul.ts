/**
 * CPU matmul: batched, with transpose flags and batch-1 broadcasting (see the registry). The kernel runs
 * the packed, register-blocked {@link matmulBlocked} for f32/f64, except that f32 products big enough to
 * pay for packing (see {@link useWasmMatmul}) go to the WebAssembly SIMD kernel of `./wasm/matmul.ts`;
 * {@link matmulReference} is the plain i-k-j loop kept as the reference both are tested against.
 *
 * Rounding: matmulBlocked sums f32 operands in f64 and rounds once; the WebAssembly kernel rounds every
 * product and partial sum to f32 (as matmulReference does for f32 buffers). Both sum over K strictly in
 * order, so either way results are deterministic run to run.
 *
 * @module
 */
import type { KernelFamily } from "../registry.ts";
import type { CpuBuffer } from "./buffer.ts";
import { type FloatBuffer, matmulBlocked } from "./matmul_blocked.ts";
import { sharedWasmMatmul } from "./wasm/matmul.ts";
import { liveCpuOptions } from "./config.ts";

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

/**
 * Smallest M·N·K that goes to the WebAssembly kernel. Measured (x64, Deno 2.9, single product, all four
 * transposes): at M·N·K = 512 the two are even (0.8–1.5×, e.g. 4×16×8 is faster in TypeScript: packing
 * and the copy out of wasm memory dominate); from 1024 the WebAssembly kernel is 1.1–2.6× faster, from
 * 4096 about 2–3×, and from 2^15 upward 3.5–6×.
 */
export const WASM_MIN_FLOPS = 1024;
/** Largest packed working set (bytes) the WebAssembly kernel is given; past it matmulBlocked runs. */
const WASM_MAX_BYTES = 2 ** 30;

/**
 * Whether an f32 product of this shape runs on the WebAssembly SIMD kernel: M·N·K ≥ {@link WASM_MIN_FLOPS},
 * M ≥ 4 and N ≥ 8 (one full register tile; skinnier products are vector-like and matmulBlocked's
 * unpacked matvec or 4×4 tile is as fast), and a packed working set under 1 GiB.
 */
export function useWasmMatmul(m: number, k: number, n: number): boolean {
  if (m < 4 || n < 8 || m * n * k < WASM_MIN_FLOPS) return false;
  const mp = m + 8, np = n + 16; // over-estimates of the padded sizes
  return (mp * k + np * k + mp * np) * 4 <= WASM_MAX_BYTES;
}

/** The matmul family of the CPU backend. */
export const matmulKernels: KernelFamily<CpuBuffer, "matmul"> = {
  matmul([a, b], [out], { transA, transB }) {
    const [batch, m, n] = out.shape;
    const k = transA ? a.shape[1] : a.shape[2];
    const aStride = a.shape[0] === 1 ? 0 : m * k, bStride = b.shape[0] === 1 ? 0 : k * n;
    const [ab, bb, ob] = [a.buf, b.buf, out.buf];
    const float = (x: CpuBuffer): x is FloatBuffer => x instanceof Float32Array || x instanceof Float64Array;
    if (
      ab instanceof Float32Array && bb instanceof Float32Array && ob instanceof Float32Array && liveCpuOptions.wasm &&
      useWasmMatmul(m, k, n)
    ) {
      const wasm = sharedWasmMatmul();
      if (wasm) {
        for (let t = 0; t < batch; t++) {
          wasm.matmul(ab, bb, ob, m, k, n, { transA, transB, aOff: t * aStride, bOff: t * bStride, outOff: t * m * n });
        }
        return;
      }
    }
    if (float(ab) && float(bb) && float(ob)) {
      matmulBlocked(ab, aStride, bb, bStride, ob, batch, m, k, n, transA, transB);
      return;
    }
    for (let t = 0; t < batch; t++) {
      matmulReference(a.buf, t * aStride, b.buf, t * bStride, out.buf, t * m * n, m, k, n, transA, transB);
    }
  },
};
