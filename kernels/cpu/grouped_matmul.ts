/**
 * CPU kernels of the grouped matmul (`groupedMatmul`: rows of x times their group's matrix) and of its weight
 * gradient (`groupedOuter`: per group, the sum of the outer products of two row blocks). See the registry for
 * the contracts.
 *
 * Each non-empty group is one product on the CPU's matmul kernels (the same `matmulBlocked` and WebAssembly
 * SIMD kernel as `matmul`, see `./matmul.ts`), reading and writing the group's rows in place: no padding, no
 * copy of the rows. A large group's product is itself split over the Worker pool (by rows or columns), so the
 * groups run one after the other, each on every thread.
 *
 * Bits: which kernel runs is decided ONCE per call, from the largest group, exactly as a batched matmul over a
 * buffer padded to the largest group would decide it, and a group of one row runs as a two-row product (a
 * one-row product would take `matmulBlocked`'s matrix–vector path, which sums in another order). Since both
 * kernels sum every output over K strictly in order, whatever the number of rows, a row's result depends only
 * on its own values and its group's matrix: the grouped product gives the bits of that padded batched product
 * (which is what makes the MoE dispatch's grouped path equal its padded path bit for bit in f64).
 *
 * {@link groupedMatmulReference} and {@link groupedOuterReference} are the plain loops the fast paths are
 * tested against (and run for non-float buffers).
 *
 * @module
 */
import { OpError } from "../../core/errors.ts";
import type { KernelFamily } from "../registry.ts";
import type { CpuBuffer } from "./buffer.ts";
import { liveCpuOptions } from "./config.ts";
import { type FloatBuffer, matmulBlocked } from "./matmul_blocked.ts";
import { matmulReference, THREADS_MIN_FLOPS, useWasmMatmul } from "./matmul.ts";
import { sharedWasmMatmul, type WasmMatmul } from "./wasm/matmul.ts";

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

/** One group's product on the WebAssembly kernel, on every thread when it is big enough. */
function wasmProduct(wasm: WasmMatmul): GroupProduct {
  return (a, aOff, b, bOff, out, oOff, m, k, n, transA, transB) => {
    wasm.matmulBatched({
      a: (a as Float32Array).subarray(aOff, aOff + m * k),
      aStride: 0,
      b: (b as Float32Array).subarray(bOff, bOff + k * n),
      bStride: 0,
      out: (out as Float32Array).subarray(oOff, oOff + m * n),
      batch: 1,
      m,
      k,
      n,
      transA,
      transB,
      threads: m * n * k >= THREADS_MIN_FLOPS ? liveCpuOptions.threads : 1,
    });
  };
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
 * The product every group of one call uses, chosen from the largest group's shape (`m`×`k`×`n`) the way the
 * matmul kernel chooses for a batched product of that shape.
 */
function chooseProduct(
  a: CpuBuffer,
  b: CpuBuffer,
  out: CpuBuffer,
  m: number,
  k: number,
  n: number,
  oneRowAsTwo: boolean,
): GroupProduct {
  if (!isFloat(a) || !isFloat(b) || !isFloat(out)) return matmulReference;
  const f32 = a instanceof Float32Array && b instanceof Float32Array && out instanceof Float32Array;
  const wasm = f32 && liveCpuOptions.wasm && useWasmMatmul(m, k, n) ? sharedWasmMatmul() : undefined;
  return wasm ? wasmProduct(wasm) : blockedProduct(oneRowAsTwo);
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
    const product = chooseProduct(x.buf, w.buf, out.buf, most, k, n, most > 1);
    for (let g = 0; g < groups; g++) {
      const lo = off[g], m = off[g + 1] - lo;
      if (m > 0) product(x.buf, lo * k, w.buf, g * k * n, out.buf, lo * n, m, k, n, false, transB);
    }
  },
  groupedOuter([a, b, offsets], [out]) {
    const [rows, m] = a.shape, n = b.shape[1], groups = out.shape[0];
    const off = checkedOffsets("groupedOuter", offsets.buf, groups, rows);
    // out[g] = A_gᵀ·B_g: the group's rows of a read as a K×M operand (transA), K = the group's row count.
    const product = chooseProduct(a.buf, b.buf, out.buf, m, largestGroup(off), n, false);
    for (let g = 0; g < groups; g++) {
      const lo = off[g], rowsG = off[g + 1] - lo;
      if (rowsG === 0) out.buf.fill(0, g * m * n, (g + 1) * m * n);
      else product(a.buf, lo * m, b.buf, lo * n, out.buf, g * m * n, m, rowsG, n, true, false);
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
