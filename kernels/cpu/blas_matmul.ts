/**
 * The CPU matmul on a native BLAS (`cblas_sgemm` / `cblas_dgemm` through Deno FFI, see `blas_library.ts`):
 * which products go there ({@link useBlasMatmul}) and how a batch maps onto gemm calls ({@link blasMatmul}).
 *
 * Rounding: the library's own (OpenBLAS sums each output over K in blocks with fused multiply-adds, in f32
 * for f32), so results differ in the last bits from the built-in kernels and may differ between machines
 * (OpenBLAS picks its kernel for the CPU at load time) and between thread counts (OpenBLAS 0.3.21 runs
 * small single-threaded products on another kernel); they repeat run to run for a fixed thread count. The
 * tests bound the difference from the reference by the worst-case error of a dot product.
 *
 * @module
 */
import { blasHandle } from "./blas_library.ts";
import { liveCpuOptions } from "./config.ts";

/** CBLAS enum values (cblas.h): row-major storage, no transpose, transpose. */
const ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112;

/** Largest value an `int` argument of the LP64 CBLAS interface holds. */
const MAX_INT = 2 ** 31 - 1;

/**
 * Smallest M·N·K that goes to the BLAS under `matmul: "auto"`. An FFI call costs about 0.3 µs; measured
 * (x64 with AVX-512, OpenBLAS 0.3.21, one thread, against the built-in kernels): the BLAS is already ahead
 * at 2×4×4 for f32 and f64 (2–6×), 4–8× at 16³–64³ and 4× (f32) / 10× (f64) at 128³, while a 1×1×1
 * product is faster in TypeScript. (`matmul: "blas"` sends every product, so the tests reach the edges.)
 */
export const BLAS_MIN_FLOPS = 32;

/**
 * Whether an f32 or f64 product of this shape runs on the BLAS under the current options (see
 * `CpuOptions.matmul`): `blas` sends every product; `auto` those of at least {@link BLAS_MIN_FLOPS}
 * multiply-adds when `wasm` is on and a library was detected (detecting it on the first such call).
 */
export function useBlasMatmul(m: number, k: number, n: number): boolean {
  const choice = liveCpuOptions.matmul;
  if (choice === "wasm") return false;
  if (choice === "auto" && (!liveCpuOptions.wasm || m * n * k < BLAS_MIN_FLOPS)) return false;
  return blasHandle() !== null;
}

/** The thread count last given to the library, so it is set only when `cpuOptions().threads` changes. */
let threadsSet = 0;

/**
 * One row-major gemm, C = op(A)·op(B) (M×N, K summed), on arrays that start at the operands' first
 * element; the leading dimensions are those of the arrays as stored (A: K if not transposed else M, and so
 * on), so a block of rows of a larger matrix is a view with the whole matrix's leading dimension.
 */
export type BlasGemmCall<A extends Float32Array | Float64Array> = (
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  a: A,
  lda: number,
  b: A,
  ldb: number,
  c: A,
  ldc: number,
) => void;

/**
 * The library's gemm for `out`'s dtype, its thread count first brought in line with `cpuOptions().threads`;
 * null when no library is loaded or `elements` (the largest operand or result, in elements) exceeds the CBLAS
 * `int` range. The caller handles empty products (M, N or K zero) itself: the library's leading-dimension
 * checks reject K = 0 operands.
 */
export function blasGemm<A extends Float32Array | Float64Array>(out: A, elements: number): BlasGemmCall<A> | null {
  const lib = blasHandle();
  if (!lib || elements > MAX_INT) return null;
  if (lib.setThreads && threadsSet !== liveCpuOptions.threads) {
    lib.setThreads(liveCpuOptions.threads);
    threadsSet = liveCpuOptions.threads;
  }
  const gemm = (out instanceof Float32Array ? lib.sgemm : lib.dgemm) as (...args: unknown[]) => void;
  return (transA, transB, m, n, k, a, lda, b, ldb, c, ldc) =>
    gemm(ROW_MAJOR, transA ? TRANS : NO_TRANS, transB ? TRANS : NO_TRANS, m, n, k, 1, a, lda, b, ldb, 0, c, ldc);
}

/**
 * out[t] = op(a[t])·op(b[t]) for t < batch through the BLAS: one gemm per batch item, or a single gemm
 * over [batch·M, K] when b is shared (stride 0) and a is not transposed, since then the items' rows are
 * contiguous. Strides are in elements (0: one operand for every item). Returns false, leaving `out`
 * untouched, when no library is loaded or a size exceeds the CBLAS `int` range (the caller falls back).
 */
export function blasMatmul<A extends Float32Array | Float64Array>(
  a: A,
  aStride: number,
  b: A,
  bStride: number,
  out: A,
  batch: number,
  m: number,
  k: number,
  n: number,
  transA: boolean,
  transB: boolean,
): boolean {
  const gemm = blasGemm(out, Math.max(batch * m * k, batch * k * n, batch * m * n));
  if (!gemm) return false;
  if (batch * m * n === 0) return true;
  if (k === 0) {
    // An empty sum; BLAS would also write zeros, but its leading-dimension checks reject K = 0 operands.
    out.fill(0, 0, batch * m * n);
    return true;
  }
  const lda = transA ? m : k, ldb = transB ? k : n;
  if (bStride === 0 && !transA && aStride !== 0) {
    gemm(false, transB, batch * m, n, k, a, lda, b, ldb, out, n);
    return true;
  }
  const item = (x: A, off: number) => (off === 0 ? x : x.subarray(off) as A);
  for (let t = 0; t < batch; t++) {
    gemm(transA, transB, m, n, k, item(a, t * aStride), lda, item(b, t * bStride), ldb, item(out, t * m * n), n);
  }
  return true;
}
