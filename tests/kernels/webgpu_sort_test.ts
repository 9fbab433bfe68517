/**
 * WebGPU sort/topk against the CPU kernels: exact equality of values (bit patterns) and indices on seeded
 * inputs with many ties, NaN, ±∞, −0 and subnormals, every code path (packed rows in one workgroup, the
 * long-row global network with row batches, the small-k topk kernel, a grid split over x and y).
 */
import assert from "node:assert/strict";
import { allocArray, type DType, type TypedArray } from "../../core/dtype.ts";
import { cpuKernels } from "../../kernels/cpu/mod.ts";
import type { TensorRef } from "../../kernels/registry.ts";
import type { GpuBuffer, WebGpuRuntime } from "../../kernels/webgpu/runtime.ts";
import { SORT_TILE, type SortKernelOptions, sortKernels } from "../../kernels/webgpu/sort.ts";
import { gpuOut, gpuRef, gpuTest } from "../helpers/webgpu.ts";
import { rng01 as rng } from "../helpers/host_rng.ts";

const F32_SET = [0, -0, 1, -1, 2.5, -2.5, NaN, Infinity, -Infinity, 1e-40, -1e-40, 3e38, -3e38];
const I32_SET = [0, 1, -1, 2, -2, 7, 2147483647, -2147483648];

/** Mostly values from a small set (many ties), the rest spread out. */
function makeData(dtype: DType, size: number, seed: number): TypedArray {
  const r = rng(seed);
  const out = allocArray(dtype, size);
  const set = dtype === "i32" ? I32_SET : F32_SET;
  for (let i = 0; i < size; i++) {
    if (r() < 0.7) out[i] = set[Math.floor(r() * set.length)];
    else out[i] = dtype === "i32" ? Math.floor(r() * 2000) - 1000 : (r() - 0.5) * 200;
  }
  return out;
}

type Case =
  | { kernel: "sort"; dtype: DType; shape: number[]; descending: boolean }
  | { kernel: "topk"; dtype: DType; shape: number[]; k: number; largest: boolean };

function label(c: Case): string {
  const a = c.kernel === "sort" ? `descending=${c.descending}` : `k=${c.k} largest=${c.largest}`;
  return `${c.kernel} ${c.dtype} [${c.shape}] ${a}`;
}

function bits(a: TypedArray): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

function assertSame(name: string, got: TypedArray, want: TypedArray): void {
  assert.equal(got.length, want.length, `${name}: length`);
  const g = bits(got), w = bits(want);
  for (let i = 0; i < w.length; i++) {
    if (g[i] !== w[i]) assert.fail(`${name}: first mismatch at ${i}: got ${got[i]}, want ${want[i]}`);
  }
}

/** Encodes every case, reads all results in one batch, compares each with the CPU kernel. */
async function check(rt: WebGpuRuntime, cases: Case[], seed: number, options?: SortKernelOptions): Promise<void> {
  const gpu = sortKernels(rt, options);
  const runs = cases.map((c, ci) => {
    const size = c.shape.reduce((p, d) => p * d, 1);
    const data = makeData(c.dtype, size, seed * 1000 + ci);
    const n = c.shape[c.shape.length - 1];
    const outShape = c.kernel === "sort" ? c.shape : [...c.shape.slice(0, -1), c.k];
    const outSize = outShape.reduce((p, d) => p * d, 1);
    const x = gpuRef(rt, data, c.shape, c.dtype);
    // Outputs start as garbage, so an entry the kernel fails to write cannot pass by being zero.
    const v = gpuRef(rt, allocArray(c.dtype, outSize).fill(-12345), outShape, c.dtype);
    const ix = gpuRef(rt, allocArray("i32", outSize).fill(-12345), outShape, "i32");
    const cx = { buf: data, shape: c.shape, dtype: c.dtype };
    const cv = { buf: allocArray(c.dtype, outSize), shape: outShape, dtype: c.dtype };
    const ci32 = { buf: allocArray("i32", outSize), shape: outShape, dtype: "i32" as DType };
    if (c.kernel === "sort") {
      gpu.sort([x], [v, ix], { descending: c.descending });
      cpuKernels.sort([cx], [cv, ci32], { descending: c.descending });
    } else {
      gpu.topk([x], [v, ix], { k: c.k, largest: c.largest });
      cpuKernels.topk([cx], [cv, ci32], { k: c.k, largest: c.largest });
    }
    return { c, n, outSize, bufs: [x, v, ix] as TensorRef<GpuBuffer>[], want: [cv.buf, ci32.buf] };
  });
  const got = await Promise.all(
    runs.map((r) =>
      Promise.all([rt.read(r.bufs[1].buf, r.c.dtype, r.outSize), rt.read(r.bufs[2].buf, "i32", r.outSize)])
    ),
  );
  runs.forEach((r, i) => {
    assertSame(`${label(r.c)} values`, got[i][0], r.want[0]);
    assertSame(`${label(r.c)} indices`, got[i][1], r.want[1]);
    for (const b of r.bufs) rt.free(b.buf);
  });
}

const NS = [1, 2, 3, 7, 16, 100, 1000, 3000];
const rowsFor = (n: number) => n <= 16 ? 300 : n <= 100 ? 40 : n <= 1000 ? 6 : 3;
const DTYPES: DType[] = ["f32", "i32"];

gpuTest("sort matches the CPU (ties, NaN, ±inf, -0, subnormals; 1-D and 2-D; both directions)", async (rt) => {
  const cases: Case[] = [];
  for (const dtype of DTYPES) {
    for (const n of NS) {
      for (const descending of [false, true]) {
        cases.push({ kernel: "sort", dtype, shape: [n], descending });
        cases.push({ kernel: "sort", dtype, shape: [rowsFor(n), n], descending });
      }
    }
  }
  cases.push({ kernel: "sort", dtype: "f32", shape: [2, 3, 5], descending: true });
  await check(rt, cases, 1);
});

gpuTest("sort of long rows (global bitonic merge) matches the CPU", async (rt) => {
  const cases: Case[] = [];
  // The tile's own length is the longest row sorted in one workgroup; one more takes the global network.
  for (const n of [SORT_TILE, SORT_TILE + 1, 2048, 2049, 4096, 5000, 20000]) {
    for (const descending of [false, true]) cases.push({ kernel: "sort", dtype: "f32", shape: [2, n], descending });
  }
  cases.push({ kernel: "sort", dtype: "i32", shape: [3, 9000], descending: true });
  cases.push({ kernel: "sort", dtype: "i32", shape: [70000], descending: false });
  await check(rt, cases, 2);
});

gpuTest("long rows in several scratch batches match the CPU", async (rt) => {
  // 4096-entry padded rows with 2 rows per scratch buffer: 5 rows take 3 batches.
  const cases: Case[] = [
    { kernel: "sort", dtype: "f32", shape: [5, 3000], descending: false },
    { kernel: "sort", dtype: "i32", shape: [5, 3000], descending: true },
    { kernel: "topk", dtype: "f32", shape: [5, 3000], k: 100, largest: true },
  ];
  await check(rt, cases, 3, { maxScratchBytes: 2 * 4096 * 4 });
});

gpuTest("topk matches the CPU (k ∈ {0, 1, 2, 8, n}, largest and smallest)", async (rt) => {
  const cases: Case[] = [];
  for (const dtype of DTYPES) {
    for (const n of NS) {
      const ks = [...new Set([0, 1, 2, 8, n])].filter((k) => k <= n);
      for (const k of ks) {
        for (const largest of [true, false]) {
          cases.push({ kernel: "topk", dtype, shape: [rowsFor(n), n], k, largest });
          if (n >= 100) cases.push({ kernel: "topk", dtype, shape: [n], k, largest });
        }
      }
    }
  }
  // Small k over long rows with few rows takes the sort path.
  cases.push({ kernel: "topk", dtype: "f32", shape: [2, 10000], k: 8, largest: true });
  cases.push({ kernel: "topk", dtype: "i32", shape: [2, 10000], k: 3, largest: false });
  await check(rt, cases, 4);
});

gpuTest("topk over 70000 router rows (E = 8, 64, 256) matches the CPU", async (rt) => {
  const cases: Case[] = [
    { kernel: "topk", dtype: "f32", shape: [70000, 8], k: 2, largest: true },
    { kernel: "topk", dtype: "f32", shape: [70000, 64], k: 8, largest: true },
    { kernel: "topk", dtype: "f32", shape: [4000, 256], k: 8, largest: true },
    { kernel: "topk", dtype: "i32", shape: [70000, 16], k: 4, largest: false },
  ];
  await check(rt, cases, 5);
  // The small-k kernel is one launch.
  const before = rt.stats.dispatches;
  const x = gpuOut(rt, [100, 256], "f32"), v = gpuOut(rt, [100, 8], "f32"), i = gpuOut(rt, [100, 8], "i32");
  sortKernels(rt).topk([x], [v, i], { k: 8, largest: true });
  assert.equal(rt.stats.dispatches - before, 1);
  for (const b of [x, v, i]) rt.free(b.buf);
});

gpuTest("a grid split over x and y covers every row", async (rt) => {
  // 64 rows per workgroup: 65535 · 64 + 3 rows need a second row of workgroups.
  const rows = 65535 * 64 + 3;
  const data = new Float32Array(rows * 2);
  for (let r = 0; r < rows; r++) {
    data[2 * r] = r;
    data[2 * r + 1] = r - 0.5;
  }
  const x = gpuRef(rt, data, [rows, 2], "f32");
  const v = gpuOut(rt, [rows, 1], "f32"), ix = gpuOut(rt, [rows, 1], "i32");
  sortKernels(rt).topk([x], [v, ix], { k: 1, largest: false });
  const [gv, gi] = await Promise.all([rt.read(v.buf, "f32", rows), rt.read(ix.buf, "i32", rows)]);
  for (let r = 0; r < rows; r++) {
    if (gv[r] !== r - 0.5 || gi[r] !== 1) assert.fail(`row ${r}: got (${gv[r]}, ${gi[r]})`);
  }
  for (const b of [x, v, ix]) rt.free(b.buf);
});

gpuTest("empty inputs and k = 0 launch nothing", (rt) => {
  const gpu = sortKernels(rt);
  const before = rt.stats.dispatches;
  const run = (shape: number[], k: number) => {
    const out = [...shape.slice(0, -1), k];
    const x = gpuOut(rt, shape, "f32");
    const sv = gpuOut(rt, shape, "f32"), si = gpuOut(rt, shape, "i32");
    const tv = gpuOut(rt, out, "f32"), ti = gpuOut(rt, out, "i32");
    gpu.sort([x], [sv, si], { descending: false });
    gpu.topk([x], [tv, ti], { k, largest: true });
    for (const b of [x, sv, si, tv, ti]) rt.free(b.buf);
  };
  run([0, 5], 2);
  run([3, 0], 0);
  run([0], 0);
  const x = gpuOut(rt, [4, 6], "f32"), v = gpuOut(rt, [4, 0], "f32"), i = gpuOut(rt, [4, 0], "i32");
  gpu.topk([x], [v, i], { k: 0, largest: false });
  for (const b of [x, v, i]) rt.free(b.buf);
  assert.equal(rt.stats.dispatches, before);
});
