/**
 * CPU matmul: batched, with transpose flags and batch-1 broadcasting (see the registry). The kernel runs
 * the packed, register-blocked {@link matmulBlocked} for f32/f64, except that f32 products big enough to
 * pay for packing (see {@link useWasmMatmul}) go to the WebAssembly SIMD kernel of `./wasm/matmul.ts`, the
 * whole batch in one call, spread over up to `liveCpuOptions.threads` threads (Workers sharing the module's
 * memory) with at least {@link THREADS_MIN_FLOPS} multiply-adds per thread (see {@link matmulThreads});
 * {@link matmulReference} is
 * the plain i-k-j loop kept as the reference both are tested against.
 *
 * Rounding: matmulBlocked sums f32 operands in f64 and rounds once; the WebAssembly kernel rounds each step
 * to f32 (with a fused multiply-add where relaxed SIMD and the CPU have one, else product and sum
 * separately, as matmulReference does for f32 buffers). All sum over K strictly in order, so results are
 * deterministic run to run, and the WebAssembly kernel's do not depend on the thread count.
 *
 * @module
 */
import type { KernelFamily } from "../registry.ts";
import type { CpuBuffer } from "./buffer.ts";
import { type FloatBuffer, matmulBlocked } from "./matmul_blocked.ts";
import { sharedWasmMatmul } from "./wasm/matmul.ts";
import { liveCpuOptions } from "./config.ts";
import { blasMatmul, useBlasMatmul } from "./blas_matmul.ts";

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
 * Smallest M·N·K that goes to the WebAssembly kernel. Measured (x64, Deno 2.9.6, single product, plain and
 * both-transposed, against matmulBlocked): at M·N·K = 1024 the two are even (0.9–1.4×; the kernel's fixed
 * cost per call is under 1 µs), at 4096 the WebAssembly kernel is about 2.8× faster, at 2^15 about 4×, at
 * 2^18 about 7× and at 2^21 about 8×.
 */
export const WASM_MIN_FLOPS = 1024;
/** Largest working set (bytes) one WebAssembly call is given; a single product past it runs matmulBlocked. */
export const WASM_MAX_BYTES = 2 ** 30;

/**
 * Fewest multiply-adds per thread when the WebAssembly kernel splits a job (see {@link matmulThreads}): waking
 * a Worker costs tens of microseconds, and the calling thread copies every operand in and every result out
 * alone, so a job of about 0.1 ms of work (2^20 multiply-adds) gains nothing from a second thread. Measured in
 * the training step (2-vCPU VM, `bench/matmul_threads.ts`): the router's 2^20 products ran 0.38× and 0.94×
 * as fast on two threads as on one, while every product of 2^24 and more gained.
 */
export const THREADS_MIN_FLOPS = 2 ** 20;

/**
 * Threads for a WebAssembly matmul job of `macs` multiply-adds when `threads` are allowed: as many as give
 * each at least {@link THREADS_MIN_FLOPS} (so two threads need 2^21), at least 1.
 */
export function matmulThreads(macs: number, threads: number): number {
  return Math.max(1, Math.min(threads, Math.floor(macs / THREADS_MIN_FLOPS)));
}

/**
 * Whether an f32 product of this shape runs on the WebAssembly SIMD kernel: M·N·K ≥ {@link WASM_MIN_FLOPS},
 * M ≥ 4 and N ≥ 8 (one full register tile; skinnier products are vector-like and matmulBlocked's
 * unpacked matvec or 4×4 tile is as fast), and a packed working set under 1 GiB.
 */
export function useWasmMatmul(m: number, k: number, n: number): boolean {
  if (m < 4 || n < 8 || m * n * k < WASM_MIN_FLOPS) return false;
  return wasmItemBytes(m, k, n) <= WASM_MAX_BYTES;
}

/** An over-estimate of the bytes one batch item takes in wasm memory (A and B as given and packed, C). */
export function wasmItemBytes(m: number, k: number, n: number): number {
  const mp = m + 8, np = n + 16;
  return (m * k + k * n + mp * k + np * k + mp * np) * 4 + 256;
}

/**
 * The batch on the WebAssembly kernel: in chunks of whole batch items that fit {@link WASM_MAX_BYTES},
 * each over `liveCpuOptions.threads` threads if it is big enough. False if WebAssembly SIMD is unavailable.
 */
function wasmBatched(
  a: Float32Array,
  aStride: number,
  b: Float32Array,
  bStride: number,
  out: Float32Array,
  batch: number,
  m: number,
  k: number,
  n: number,
  transA: boolean,
  transB: boolean,
): boolean {
  const wasm = sharedWasmMatmul();
  if (!wasm) return false;
  const chunk = Math.max(1, Math.floor(WASM_MAX_BYTES / wasmItemBytes(m, k, n)));
  for (let t0 = 0; t0 < batch; t0 += chunk) {
    const items = Math.min(chunk, batch - t0);
    const threads = matmulThreads(items * m * n * k, liveCpuOptions.threads);
    wasm.matmulBatched({
      a: t0 * aStride === 0 ? a : a.subarray(t0 * aStride),
      aStride,
      b: t0 * bStride === 0 ? b : b.subarray(t0 * bStride),
      bStride,
      out: out.subarray(t0 * m * n, (t0 + items) * m * n),
      batch: items,
      m,
      k,
      n,
      transA,
      transB,
      threads,
    });
  }
  return true;
}

/** The matmul family of the CPU backend. */
export const matmulKernels: KernelFamily<CpuBuffer, "matmul"> = {
  matmul([a, b], [out], { transA, transB }) {
    const [batch, m, n] = out.shape;
    const k = transA ? a.shape[1] : a.shape[2];
    const aStride = a.shape[0] === 1 ? 0 : m * k, bStride = b.shape[0] === 1 ? 0 : k * n;
    const [ab, bb, ob] = [a.buf, b.buf, out.buf];
    const float = (x: CpuBuffer): x is FloatBuffer => x instanceof Float32Array || x instanceof Float64Array;
    // A native BLAS (only with --allow-ffi and a library; see blas_matmul.ts) takes precedence when chosen.
    const sameFloat = float(ab) && ab.constructor === bb.constructor && ab.constructor === ob.constructor;
    if (sameFloat && useBlasMatmul(m, k, n)) {
      if (blasMatmul(ab, aStride, bb as typeof ab, bStride, ob as typeof ab, batch, m, k, n, transA, transB)) return;
    }
    if (
      ab instanceof Float32Array && bb instanceof Float32Array && ob instanceof Float32Array && liveCpuOptions.wasm &&
      useWasmMatmul(m, k, n)
    ) {
      if (wasmBatched(ab, aStride, bb, bStride, ob, batch, m, k, n, transA, transB)) return;
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
