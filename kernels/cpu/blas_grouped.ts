/**
 * The grouped matmul (`groupedMatmul`) and its weight gradient (`groupedOuter`) on a native BLAS: one
 * `cblas_?gemm` per non-empty group, on the group's rows where they lie (a block of rows of a row-major matrix
 * is a view of it with the whole matrix's leading dimension), so nothing is copied or padded. The backward
 * products are the same two ops (`groupedMatmul` with `transB`, `groupedOuter`), so they come here too.
 *
 * Which calls come here is decided in `grouped_matmul.ts`, once per call from the largest group's shape, by
 * the dense matmul's rule (`useBlasMatmul`). Rounding is the library's (see `blas_matmul.ts`): a row's bits
 * may depend on how many rows its group has (OpenBLAS picks kernels by shape), so, unlike the built-in
 * kernels, the grouped product need not give the bits of a batched product over groups padded to the largest.
 *
 * @module
 */
import { blasGemm } from "./blas_matmul.ts";

type Float = Float32Array | Float64Array;

/**
 * out rows off[g]…off[g+1] (N wide) = x rows off[g]…off[g+1] (K wide) · w[g] (K×N, or N×K read transposed if
 * `transB`), for the G = off.length − 1 groups. Rows outside every group are left to the caller. Returns false,
 * writing nothing, when no library is loaded or a size exceeds the CBLAS `int` range.
 */
export function blasGroupedMatmul<A extends Float>(
  x: A,
  w: A,
  off: Int32Array,
  out: A,
  k: number,
  n: number,
  transB: boolean,
): boolean {
  const gemm = blasGemm(out, Math.max(x.length, w.length, out.length));
  if (!gemm) return false;
  for (let g = 0; g + 1 < off.length; g++) {
    const lo = off[g], m = off[g + 1] - lo;
    if (m === 0 || n === 0) continue;
    // K = 0: an empty sum, which the library's leading-dimension checks would reject.
    if (k === 0) out.fill(0, lo * n, (lo + m) * n);
    else {
      const [xg, wg, outG] = [x.subarray(lo * k) as A, w.subarray(g * k * n) as A, out.subarray(lo * n) as A];
      gemm(false, transB, m, n, k, xg, k, wg, transB ? k : n, outG, n);
    }
  }
  return true;
}

/**
 * out[g] (M×N) = a[rows of g]ᵀ · b[rows of g] for every group with rows: the group's rows of a ([rows, M]) read
 * as the transposed left operand, its rows of b ([rows, N]) as the right one, K = the group's row count. Empty
 * groups are left to the caller. Returns false, writing nothing, when no library is loaded or a size exceeds
 * the CBLAS `int` range.
 */
export function blasGroupedOuter<A extends Float>(
  a: A,
  b: A,
  off: Int32Array,
  out: A,
  m: number,
  n: number,
): boolean {
  const gemm = blasGemm(out, Math.max(a.length, b.length, out.length));
  if (!gemm) return false;
  if (m === 0 || n === 0) return true;
  for (let g = 0; g + 1 < off.length; g++) {
    const lo = off[g], rows = off[g + 1] - lo;
    if (rows === 0) continue;
    const [ag, bg, outG] = [a.subarray(lo * m) as A, b.subarray(lo * n) as A, out.subarray(g * m * n) as A];
    gemm(true, false, m, n, rows, ag, m, bg, n, outG, n);
  }
  return true;
}
