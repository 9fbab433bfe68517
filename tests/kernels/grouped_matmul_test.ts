/**
 * The CPU grouped matmul kernels (`groupedMatmul`, `groupedOuter`) through their ops, against the plain loops of
 * `kernels/cpu/grouped_matmul.ts` in f32 and f64, on every grouping edge case (empty groups, one group holding
 * every row, G = 1, rows outside every group, zero rows, one-row groups, odd sizes), with the WebAssembly kernel
 * and threads on and off; plus the property the MoE dispatch relies on: each row's bits equal those of a
 * batched matmul over the groups padded to the largest one.
 */
import assert from "node:assert/strict";
import { cpuOptions, groupedMatmul, groupedOuter, matmul, OpError, setCpuOptions, tensor } from "../../mod.ts";
import type { Tensor } from "../../mod.ts";
import { groupedMatmulReference, groupedOuterReference } from "../../kernels/cpu/grouped_matmul.ts";
import { rngSigned } from "../helpers/host_rng.ts";

type Float = "f32" | "f64";

function random(dtype: Float, shape: number[], seed: number): Tensor {
  const next = rngSigned(seed);
  const size = shape.reduce((p, d) => p * d, 1);
  const data = dtype === "f32" ? new Float32Array(size) : new Float64Array(size);
  for (let i = 0; i < size; i++) data[i] = next();
  return tensor(data, { shape, dtype });
}

const i32 = (values: number[]) => tensor(values, { dtype: "i32" });

/** [name, rows R, K, N, offsets]. */
const GROUPINGS: [string, number, number, number, number[]][] = [
  ["three groups, one empty", 9, 5, 7, [0, 4, 4, 9]],
  ["all rows in one group of three", 6, 3, 4, [0, 0, 6, 6]],
  ["G = 1", 5, 4, 3, [0, 5]],
  ["rows outside every group", 11, 6, 5, [2, 5, 9]],
  ["zero rows", 0, 4, 3, [0, 0, 0]],
  ["one-row groups among bigger ones", 10, 7, 9, [0, 1, 6, 7, 10]],
  ["odd sizes, big enough for the WebAssembly kernel", 37, 19, 23, [0, 13, 13, 30, 31, 37]],
  ["every group empty", 4, 3, 2, [0, 0, 0]],
];

const TOL = { f32: 2e-5, f64: 1e-12 };

function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(got[i] - want[i]) <= tol * (1 + Math.abs(want[i])), `${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

/**
 * Every fast-path setting of the built-in kernels: the WebAssembly kernel on (one and two threads) and off
 * (`matmul: "wasm"`: with --allow-ffi and a native BLAS, `auto` would take the BLAS, whose bits these tests do not
 * claim; `blas_grouped_test.ts` covers it).
 */
const SETTINGS = [
  { wasm: true, threads: 1, matmul: "wasm" as const },
  { wasm: true, threads: 2, matmul: "wasm" as const },
  { wasm: false, threads: 1, matmul: "wasm" as const },
];

function withSettings(fn: (label: string) => void): void {
  const before = cpuOptions();
  try {
    for (const s of SETTINGS) {
      setCpuOptions(s);
      fn(`wasm ${s.wasm}, threads ${s.threads}`);
    }
  } finally {
    setCpuOptions(before);
  }
}

for (const dtype of ["f32", "f64"] as const) {
  for (const [name, rows, k, n, offsets] of GROUPINGS) {
    const g = offsets.length - 1;
    Deno.test(`groupedMatmul ${dtype}: ${name} equals the plain loop (both layouts of w)`, () => {
      const x = random(dtype, [rows, k], 1), w = random(dtype, [g, k, n], 2), wt = random(dtype, [g, n, k], 3);
      withSettings((label) => {
        for (const [weight, transB] of [[w, false], [wt, true]] as const) {
          const got = groupedMatmul(x, weight, i32(offsets), { transB });
          assert.deepEqual(got.shape, [rows, n]);
          const want = dtype === "f32" ? new Float32Array(rows * n) : new Float64Array(rows * n);
          groupedMatmulReference(x.dataSync(), weight.dataSync(), offsets, want, rows, k, n, transB);
          assertClose(got.dataSync(), want, TOL[dtype], `${label}, transB ${transB}`);
        }
      });
    });

    Deno.test(`groupedOuter ${dtype}: ${name} equals the plain loop`, () => {
      const a = random(dtype, [rows, k], 4), b = random(dtype, [rows, n], 5);
      withSettings((label) => {
        const got = groupedOuter(a, b, i32(offsets));
        assert.deepEqual(got.shape, [g, k, n]);
        const want = dtype === "f32" ? new Float32Array(g * k * n) : new Float64Array(g * k * n);
        groupedOuterReference(a.dataSync(), b.dataSync(), offsets, want, k, n);
        assertClose(got.dataSync(), want, TOL[dtype], label);
      });
    });
  }
}

/**
 * The groups copied into a buffer [G, C, K] padded with zero rows to the largest group C, and the product of
 * each group's rows through a batched matmul over it (what the padded MoE dispatch computes).
 */
function paddedProduct(x: Tensor, w: Tensor, offsets: number[], transB: boolean): number[][] {
  const [, k] = x.shape, g = offsets.length - 1;
  const c = Math.max(...offsets.slice(1).map((o, i) => o - offsets[i]));
  const xs = x.dataSync();
  const buf = new (xs.constructor as Float64ArrayConstructor)(g * c * k);
  for (let e = 0; e < g; e++) buf.set(xs.subarray(offsets[e] * k, offsets[e + 1] * k), e * c * k);
  const padded = tensor(buf, { shape: [g, c, k], dtype: x.dtype });
  const y = matmul(padded, transB ? w.transpose(1, 2) : w).dataSync();
  const n = y.length / (g * c);
  const rows: number[][] = [];
  for (let e = 0; e < g; e++) {
    for (let r = 0; r < offsets[e + 1] - offsets[e]; r++) {
      rows.push(Array.from(y.subarray((e * c + r) * n, (e * c + r + 1) * n)));
    }
  }
  return rows;
}

Deno.test("groupedMatmul: each row has the bits of a batched matmul over the groups padded to the largest", () => {
  // f32 shapes on both kernels (one group ≥ 4 rows and N ≥ 8 takes the WebAssembly kernel), one-row groups.
  for (const dtype of ["f32", "f64"] as const) {
    for (
      const [rows, k, n, offsets] of [[12, 6, 9, [0, 1, 8, 8, 12]], [7, 5, 3, [0, 1, 3, 7]], [40, 33, 17, [0, 1, 40]]]
    ) {
      const g = (offsets as number[]).length - 1;
      const x = random(dtype, [rows as number, k as number], 7);
      const w = random(dtype, [g, k as number, n as number], 8), wt = random(dtype, [g, n as number, k as number], 9);
      withSettings((label) => {
        for (const [weight, transB] of [[w, false], [wt, true]] as const) {
          const got = groupedMatmul(x, weight, i32(offsets as number[]), { transB }).dataSync();
          const want = paddedProduct(x, weight, offsets as number[], transB).flat();
          assert.deepEqual(Array.from(got), want, `${dtype} ${rows}×${k}×${n}, ${label}, transB ${transB}`);
        }
      });
    }
  }
});

Deno.test("groupedOuter: each group has the bits of the batched AᵀB over the zero-padded groups", () => {
  for (const dtype of ["f32", "f64"] as const) {
    const offsets = [0, 3, 3, 20, 21];
    const a = random(dtype, [21, 9], 9), b = random(dtype, [21, 12], 10);
    withSettings((label) => {
      const got = groupedOuter(a, b, i32(offsets)).dataSync();
      const c = 17, g = 4;
      const pad = (t: Tensor, width: number) => {
        const src = t.dataSync();
        const buf = new (src.constructor as Float64ArrayConstructor)(g * c * width);
        for (let e = 0; e < g; e++) buf.set(src.subarray(offsets[e] * width, offsets[e + 1] * width), e * c * width);
        return tensor(buf, { shape: [g, c, width], dtype });
      };
      const want = matmul(pad(a, 9).transpose(1, 2), pad(b, 12)).dataSync();
      assert.deepEqual(Array.from(got), Array.from(want), `${dtype}, ${label}`);
    });
  }
});

Deno.test("groupedMatmul / groupedOuter: bad offsets and shapes raise an OpError naming the op", () => {
  const x = random("f64", [4, 3], 1), w = random("f64", [2, 3, 5], 2);
  assert.throws(
    () => groupedMatmul(x, w, i32([0, 3, 2])),
    (e: Error) => e instanceof OpError && /nondecreasing/.test(e.message),
  );
  assert.throws(() => groupedMatmul(x, w, i32([0, 2, 5])), /within \[0, 4\]/);
  assert.throws(() => groupedMatmul(x, w, i32([-1, 2, 4])), /groupedMatmul/);
  assert.throws(() => groupedMatmul(x, w, i32([0, 4])), /offsets \[2\] do not fit/);
  assert.throws(() => groupedMatmul(x, w, i32([0, 2, 4]), { transB: true }), /transB/);
  assert.throws(() => groupedMatmul(x, w.astype("f32"), i32([0, 2, 4])), /dtypes differ/);
  assert.throws(() => groupedMatmul(x, w, tensor([0, 2, 4])), /offsets must have dtype i32/);
  assert.throws(() => groupedOuter(x, random("f64", [5, 2], 3), i32([0, 4])), /same rows/);
  assert.throws(
    () => groupedOuter(x, random("f64", [4, 2], 3), i32([0, 5])),
    /groupedOuter: offsets must be nondecreasing/,
  );
});
