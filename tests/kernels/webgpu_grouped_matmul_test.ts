/**
 * The WebGPU grouped kernels against the CPU's plain loops (`kernels/cpu/grouped_matmul.ts`) on shapes with many
 * 32-row tiles and several column tiles: groups longer than a tile, one-row and empty groups, rows before the
 * first and after the last group, both layouts of w; and out-of-order offsets, which the GPU clamps.
 */
import assert from "node:assert/strict";
import { groupedMatmulReference, groupedOuterReference } from "../../kernels/cpu/grouped_matmul.ts";
import { groupedMatmulKernels } from "../../kernels/webgpu/grouped_matmul.ts";
import { gpuOut, gpuRef, gpuTest } from "../helpers/webgpu.ts";
import { rngSigned } from "../helpers/host_rng.ts";

function random(size: number, seed: number): Float32Array {
  const next = rngSigned(seed);
  return Float32Array.from({ length: size }, next);
}

function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(got[i] - want[i]) <= 1e-4 * (1 + Math.abs(want[i])), `${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

/** [rows R, K, N, offsets]. */
const CASES: [number, number, number, number[]][] = [
  [150, 21, 70, [3, 3, 70, 71, 71, 140]],
  [64, 8, 33, [0, 32, 64]],
  [40, 5, 4, [0, 0, 0, 40]],
  [7, 3, 2, [7, 7]],
];

gpuTest("grouped kernels: groupedMatmul (both layouts) and groupedOuter match the CPU loops", async (rt) => {
  const kernels = groupedMatmulKernels(rt);
  for (const [c, [rows, k, n, offsets]] of CASES.entries()) {
    const g = offsets.length - 1;
    const x = random(rows * k, 10 + c), w = random(g * k * n, 20 + c), b = random(rows * n, 30 + c);
    const off = gpuRef(rt, Int32Array.from(offsets), [g + 1], "i32");
    for (const transB of [false, true]) {
      const out = gpuOut(rt, [rows, n], "f32");
      kernels.groupedMatmul(
        [gpuRef(rt, x, [rows, k], "f32"), gpuRef(rt, w, transB ? [g, n, k] : [g, k, n], "f32"), off],
        [out],
        { transB },
      );
      const want = new Float64Array(rows * n);
      groupedMatmulReference(x, w, offsets, want, rows, k, n, transB);
      assertClose(await rt.read(out.buf, "f32", rows * n), want, `case ${c} groupedMatmul transB ${transB}`);
    }
    const outer = gpuOut(rt, [g, k, n], "f32");
    kernels.groupedOuter([gpuRef(rt, x, [rows, k], "f32"), gpuRef(rt, b, [rows, n], "f32"), off], [outer], {});
    const want = new Float64Array(g * k * n);
    groupedOuterReference(x, b, offsets, want, k, n);
    assertClose(await rt.read(outer.buf, "f32", g * k * n), want, `case ${c} groupedOuter`);
  }
});

gpuTest("grouped kernels: out-of-order offsets are clamped into range (the CPU raises instead)", async (rt) => {
  const kernels = groupedMatmulKernels(rt);
  const [rows, k, n] = [10, 3, 4];
  const x = random(rows * k, 1), w = random(2 * k * n, 2);
  // [5, 2, 99] reads as [5, 5, 10]: rows 0–4 before the first group (zero), group 0 empty, group 1 rows 5–9.
  const out = gpuOut(rt, [rows, n], "f32");
  kernels.groupedMatmul(
    [
      gpuRef(rt, x, [rows, k], "f32"),
      gpuRef(rt, w, [2, k, n], "f32"),
      gpuRef(rt, Int32Array.from([5, 2, 99]), [3], "i32"),
    ],
    [out],
    { transB: false },
  );
  const want = new Float64Array(rows * n);
  groupedMatmulReference(x, w, [5, 5, 10], want, rows, k, n, false);
  assertClose(await rt.read(out.buf, "f32", rows * n), want, "clamped offsets");
});
