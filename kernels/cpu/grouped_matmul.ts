/**
 * CPU kernels of the grouped matmul (`groupedMatmul`: rows of x times their group's matrix) and of its weight
 * gradient (`groupedOuter`: per group, the sum of the outer products of two row blocks). See the registry for
 * the contracts.
 *
 * Each non-empty group is one product on the CPU's matmul kernels (the same `matmulBlocked` and WebAssembly
 * SIMD kernel as `matmul`, see `./matmul.ts`), reading and writing the group's rows in place: no padding, no
 * copy of the rows. On the WebAssembly kernel every group's product goes into ONE job of the Worker pool
 * (`./wasm/plan.ts`): its units are blocks of any group's result, so threads move from one group to the
 * next without a barrier between groups, a small group is one unit that one thread runs while the others
 * run other groups, and the pool is woken once per call instead of once per group (the calls used to be one
 * per group, each split over every thread: two threads then gained ≈ 1.55× on the benchmark's expert
 * products, against ≈ 1.8× for its dense matmuls of the same size).
 *
 * Bits: which kernel runs is decided ONCE per call, from the largest group, exactly as a batched matmul over a
 * buffer padded to the largest group would decide it, and a group of one row runs as a two-row product (a
 * one-row product would take `matmulBlocked`'s matrix–vector path, which sums in another order). Since both
 * kernels sum every output over K strictly in order, whatever the number of rows, a row's result depends only
 * on its own values and its group's matrix: the grouped product gives the bits of that padded batched product
 * (which is what makes the MoE dispatch's grouped path equal its padded path bit for bit in f64).
 *
 * A native BLAS, when the dense matmul would use one (`useBlasMatmul`, only with `--allow-ffi` and a library),
 * takes precedence, decided once per call from the largest group's shape: one gemm per group on its rows in
 * place (`./blas_grouped.ts`), with the library's rounding, so the bit-for-bit property above is the built-in
 * kernels' only.
 *
 * {@link groupedMatmulReference} and {@link groupedOuterReference} are the plain loops the fast paths are
 * tested against (and run for non-float buffers).
 *
 * @module
 */
import { OpError } from "../../core/errors.ts";
import type { KernelFamily } from "../registry.ts";
import type { CpuBuffer } from "./buffer.ts";
import { blasGroupedMatmul, blasGroupedOuter } from "./blas_grouped.ts";
import { useBlasMatmul } from "./blas_matmul.ts";
import { liveCpuOptions } from "./config.ts";
import { type FloatBuffer, matmulBlocked } from "./matmul_blocked.ts";
import { matmulReference, matmulThreads, useWasmMatmul, WASM_MAX_BYTES, wasmItemBytes } from "./matmul.ts";
import { type MatmulOperand, type MatmulProduct, sharedWasmMatmul, type WasmMatmul } from "./wasm/matmul.ts";

/**
 * The offsets as numbers, checked: G + 1 nondecreasing values within [0, rows]. An error names the op and the
 * offsets (the CPU reads them anyway; on WebGPU they are clamped instead, see the known gaps).
 */
function checkedOffsets(op: string, offsets: CpuBuffer, groups: number, rows: number): Int32Array {
  const off = Int32Array.from(offsets.subarray(0, groups + 1) as ArrayLike<number>);
  for (let g = 0; g <= groups; g++) {
    const lo = g === 0 ? 0 : off[g - 1];
    if (!(off[g] >= lo && off[g] <= rows)) {
      const shown = off.length > 12 ? `${Array.from(off.subarray(0, 12)).join(", ")}, …` : Array.from(off).join(", ");
      throw new OpError(op, `offsets must be nondecreasing within [0, ${rows}], got [${shown}]`);
    }
  }
  return off;
}

/** The most rows any group has. */
function largestGroup(off: Int32Array): number {
  let most = 0;
  for (let g = 0; g + 1 < off.length; g++) most = Math.max(most, off[g + 1] - off[g]);
  return most;
}

/**
 * out[oOff…] (M×N) = op(a[aOff…]) · op(b[bOff…]) for one group: the signature of `matmulReference` (op(a) is M×K,
 * or K×M read transposed if transA; op(b) K×N, or N×K read transposed if transB).
 */
type GroupProduct = typeof matmulReference;

const isFloat = (x: CpuBuffer): x is FloatBuffer => x instanceof Float32Array || x instanceof Float64Array;

/**
 * The groups' products on the WebAssembly kernel: `products[i]` = `lhs[i]` · `rhs[i]`ᵀ, as one job of the
 * pool (several when their working set would pass what one call may use), over as many threads as give each
 * at least `THREADS_MIN_FLOPS` multiply-adds of the whole call (see {@link matmulThreads}).
 */
function wasmGroups(wasm: WasmMatmul, lhs: MatmulOperand[], rhs: MatmulOperand[], products: MatmulProduct[]): void {
  let macs = 0;
  for (const p of products) macs += lhs[p.a].rows * lhs[p.a].k * rhs[p.b].rows;
  const threads = matmulThreads(macs, liveCpuOptions.threads);
  let first = 0, bytes = 0;
  for (let i = 0; i <= products.length; i++) {
    const p = products[i];
    const size = p ? wasmItemBytes(lhs[p.a].rows, lhs[p.a].k, rhs[p.b].rows) : Infinity;
    if (i > first && bytes + size > WASM_MAX_BYTES) {
      wasm.products({ lhs, rhs, products: products.slice(first, i) }, threads);
      first = i;
      bytes = 0;
    }
    bytes += size;
  }
}

/**
 * One group's product on `matmulBlocked`. When other groups have more rows (`oneRowAsTwo`), a one-row product runs
 * as two copies of the row, so it takes the packed path every other group takes (see the module docs).
 */
function blockedProduct(oneRowAsTwo: boolean): GroupProduct {
  return (a, aOff, b, bOff, out, oOff, m, k, n, transA, transB) => {
    const [fa, fb, fo] = [a as FloatBuffer, b as FloatBuffer, out as FloatBuffer];
    if (m === 1 && oneRowAsTwo && !transA) {
      const pair = new (fa.constructor as Float64ArrayConstructor)(2 * k);
      pair.set(fa.subarray(aOff, aOff + k), 0);
      pair.set(fa.subarray(aOff, aOff + k), k);
      const res = new (fo.constructor as Float64ArrayConstructor)(2 * n);
      matmulBlocked(pair, 0, fb.subarray(bOff), 0, res, 1, 2, k, n, false, transB);
      fo.set(res.subarray(0, n), oOff);
      return;
    }
    matmulBlocked(fa.subarray(aOff), 0, fb.subarray(bOff), 0, fo.subarray(oOff), 1, m, k, n, transA, transB);
  };
}

/**
 * The WebAssembly kernel when the grouped products should run on it: f32 buffers and the largest group's
 * shape (`m`×`k`×`n`) one the matmul kernel would send there as a batched product.
 */
function wasmFor(a: CpuBuffer, b: CpuBuffer, out: CpuBuffer, m: number, k: number, n: number): WasmMatmul | undefined {
  const f32 = a instanceof Float32Array && b instanceof Float32Array && out instanceof Float32Array;
  return f32 && liveCpuOptions.wasm && useWasmMatmul(m, k, n) ? sharedWasmMatmul() : undefined;
}

/**
 * Whether the grouped products should run on the BLAS: one float type for all three buffers and the largest
 * group's shape (`m`×`k`×`n`) one the dense matmul would send there.
 */
function blasFor(a: CpuBuffer, b: CpuBuffer, out: CpuBuffer, m: number, k: number, n: number): out is FloatBuffer {
  return isFloat(out) && a.constructor === out.constructor && b.constructor === out.constructor &&
    useBlasMatmul(m, k, n);
}

/** The product every group of one call uses off the WebAssembly kernel (see the module docs). */
function otherProduct(a: CpuBuffer, b: CpuBuffer, out: CpuBuffer, oneRowAsTwo: boolean): GroupProduct {
  return isFloat(a) && isFloat(b) && isFloat(out) ? blockedProduct(oneRowAsTwo) : matmulReference;
}

/** The grouped family of the CPU backend. */
export const groupedMatmulKernels: KernelFamily<CpuBuffer, "groupedMatmul" | "groupedOuter"> = {
  groupedMatmul([x, w, offsets], [out], { transB }) {
    const [rows, k] = x.shape, groups = w.shape[0], n = out.shape[1];
    const off = checkedOffsets("groupedMatmul", offsets.buf, groups, rows);
    // Rows outside every group are zero.
    out.buf.fill(0, 0, off[0] * n);
    out.buf.fill(0, off[groups] * n, rows * n);
    const most = largestGroup(off);
    if (blasFor(x.buf, w.buf, out.buf, most, k, n)) {
      if (blasGroupedMatmul(x.buf as typeof out.buf, w.buf as typeof out.buf, off, out.buf, k, n, transB)) return;
    }
    const wasm = wasmFor(x.buf, w.buf, out.buf, most, k, n);
    if (wasm) {
      // Group g: rows off[g]…off[g + 1] of x times w[g] ([K, N], or [N, K] read transposed).
      const lhs: MatmulOperand[] = [], rhs: MatmulOperand[] = [], products: MatmulProduct[] = [];
      for (let g = 0; g < groups; g++) {
        const lo = off[g], m = off[g + 1] - lo;
        if (m === 0) continue;
        lhs.push({ data: x.buf as Float32Array, offset: lo * k, rows: m, k, rs: k, cs: 1 });
        rhs.push({
          data: w.buf as Float32Array,
          offset: g * k * n,
          rows: n,
          k,
          rs: transB ? k : 1,
          cs: transB ? 1 : n,
        });
        products.push({ a: lhs.length - 1, b: rhs.length - 1, out: out.buf as Float32Array, outOff: lo * n });
      }
      wasmGroups(wasm, lhs, rhs, products);
      return;
    }
    const product = otherProduct(x.buf, w.buf, out.buf, most > 1);
    for (let g = 0; g < groups; g++) {
      const lo = off[g], m = off[g + 1] - lo;
      if (m > 0) product(x.buf, lo * k, w.buf, g * k * n, out.buf, lo * n, m, k, n, false, transB);
    }
  },
  groupedOuter([a, b, offsets], [out]) {
    const [rows, m] = a.shape, n = b.shape[1], groups = out.shape[0];
    const off = checkedOffsets("groupedOuter", offsets.buf, groups, rows);
    for (let g = 0; g < groups; g++) if (off[g + 1] === off[g]) out.buf.fill(0, g * m * n, (g + 1) * m * n);
    // out[g] = A_gᵀ·B_g: the group's rows of a read as a K×M operand (transA), K = the group's row count.
    const most = largestGroup(off);
    if (blasFor(a.buf, b.buf, out.buf, m, most, n)) {
      if (blasGroupedOuter(a.buf as typeof out.buf, b.buf as typeof out.buf, off, out.buf, m, n)) return;
    }
    const wasm = wasmFor(a.buf, b.buf, out.buf, m, most, n);
    if (wasm) {
      // op(A) = A_gᵀ (M × K_g) and op(B)ᵀ = B_gᵀ (N × K_g): both read down the group's rows.
      const lhs: MatmulOperand[] = [], rhs: MatmulOperand[] = [], products: MatmulProduct[] = [];
      for (let g = 0; g < groups; g++) {
        const lo = off[g], rowsG = off[g + 1] - lo;
        if (rowsG === 0) continue;
        lhs.push({ data: a.buf as Float32Array, offset: lo * m, rows: m, k: rowsG, rs: 1, cs: m });
        rhs.push({ data: b.buf as Float32Array, offset: lo * n, rows: n, k: rowsG, rs: 1, cs: n });
        products.push({ a: lhs.length - 1, b: rhs.length - 1, out: out.buf as Float32Array, outOff: g * m * n });
      }
      wasmGroups(wasm, lhs, rhs, products);
      return;
    }
    const product = otherProduct(a.buf, b.buf, out.buf, false);
    for (let g = 0; g < groups; g++) {
      const lo = off[g], rowsG = off[g + 1] - lo;
      if (rowsG > 0) product(a.buf, lo * m, b.buf, lo * n, out.buf, g * m * n, m, rowsG, n, true, false);
    }
  },
};

/**
 * The plain loop of `groupedMatmul` (see the registry), for tests: out [R, N] from x [R, K], w [G, K, N]
 * ([G, N, K] if transB) and the G + 1 offsets, summing over k in order in doubles (rounded once when stored).
 */
export function groupedMatmulReference(
  x: CpuBuffer,
  w: CpuBuffer,
  offsets: ArrayLike<number>,
  out: CpuBuffer,
  rows: number,
  k: number,
  n: number,
  transB: boolean,
): void {
  out.fill(0, 0, rows * n);
  for (let g = 0; g + 1 < offsets.length; g++) {
    for (let r = offsets[g]; r < offsets[g + 1]; r++) {
      for (let j = 0; j < n; j++) {
        let acc = 0;
        for (let p = 0; p < k; p++) acc += x[r * k + p] * w[g * k * n + (transB ? j * k + p : p * n + j)];
        out[r * n + j] = acc;
      }
    }
  }
}

/**
 * The plain loop of `groupedOuter` (see the registry), for tests: out [G, M, N] from a [R, M], b [R, N], summing
 * over each group's rows in order in doubles.
 */
export function groupedOuterReference(
  a: CpuBuffer,
  b: CpuBuffer,
  offsets: ArrayLike<number>,
  out: CpuBuffer,
  m: number,
  n: number,
): void {
  const groups = offsets.length - 1;
  out.fill(0, 0, groups * m * n);
  for (let g = 0; g < groups; g++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let acc = 0;
        for (let r = offsets[g]; r < offsets[g + 1]; r++) acc += a[r * m + i] * b[r * n + j];
        out[(g * m + i) * n + j] = acc;
      }
    }
  }
}
