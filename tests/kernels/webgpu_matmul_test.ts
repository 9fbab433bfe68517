/**
 * WebGPU matmul against the CPU `matmulReference` (run in f64 on the same f32 inputs): both kernels (forced),
 * their scalar paths (vec4 off), the tiled kernel's two tile depths and the automatic choice, on edge shapes,
 * all four transpose combinations and batch broadcasting. Every case of one configuration is encoded first
 * and read back together, so a configuration costs about one GPU round trip.
 */
import assert from "node:assert/strict";
import { matmulReference } from "../../kernels/cpu/matmul.ts";
import {
  chooseMatmulVariant,
  type MatmulConfig,
  matmulKernels,
  matmulShaderSource,
} from "../../kernels/webgpu/matmul.ts";
import type { GpuBuffer, WebGpuRuntime } from "../../kernels/webgpu/runtime.ts";
import type { TensorRef } from "../../kernels/registry.ts";
import { gpuOut, gpuRef, gpuTest } from "../helpers/webgpu.ts";
import { rngSigned as rng } from "../helpers/host_rng.ts";
import type { MatmulCase } from "../helpers/matmul_case.ts";

/** An f32 case (the dtype is fixed here). */
type Case = Omit<MatmulCase, "dtype">;

/** A case with its inputs and its f64 reference (computed once, shared by every configuration). */
interface Prepared {
  c: Case;
  a: Float32Array;
  b: Float32Array;
  expected: Float64Array;
  /** Σ_p |a_ip|·|b_pj|: the scale of the rounding error. */
  scale: Float64Array;
}

/** Tolerance per unit of (1 + Σ|a||b|): f32 dot products of these lengths (≤ 300) sit far below it. */
const TOL = 2e-5;

const TRANSPOSES: [boolean, boolean][] = [[false, false], [true, false], [false, true], [true, true]];

/** [m, k, n]: the brief's shapes plus K = 0, odd/aligned mixes and shapes just past a 64-tile. */
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 37, 29],
  [1, 64, 128],
  [29, 37, 1],
  [128, 64, 1],
  [7, 13, 5],
  [4, 8, 12],
  [33, 65, 17],
  [64, 64, 64],
  [65, 63, 66],
  [100, 37, 129],
  [128, 256, 96],
  [12, 300, 20],
  [5, 0, 7],
  [8, 0, 4],
];
/** Batched shapes, each run with (Ba, Bb) = (3, 3), (1, 3), (3, 1). */
const BATCH_SHAPES: [number, number, number][] = [[1, 9, 7], [7, 13, 5], [33, 65, 17], [64, 32, 68], [70, 40, 36]];

function cases(): Case[] {
  const out: Case[] = [];
  for (const [m, k, n] of SHAPES) {
    for (const [transA, transB] of TRANSPOSES) out.push({ ba: 1, bb: 1, m, k, n, transA, transB });
  }
  for (const [ba, bb] of [[3, 3], [1, 3], [3, 1]]) {
    for (const [m, k, n] of BATCH_SHAPES) {
      for (const [transA, transB] of TRANSPOSES) out.push({ ba, bb, m, k, n, transA, transB });
    }
  }
  return out;
}

function prepare(c: Case, seed: number): Prepared {
  const { ba, bb, m, k, n, transA, transB } = c;
  const batch = Math.max(ba, bb);
  const next = rng(seed);
  const a = new Float32Array(ba * m * k).map(next), b = new Float32Array(bb * k * n).map(next);
  const a64 = Float64Array.from(a), b64 = Float64Array.from(b);
  const absA = a64.map(Math.abs), absB = b64.map(Math.abs);
  const expected = new Float64Array(batch * m * n), scale = new Float64Array(batch * m * n);
  for (let t = 0; t < batch; t++) {
    const aOff = ba === 1 ? 0 : t * m * k, bOff = bb === 1 ? 0 : t * k * n;
    matmulReference(a64, aOff, b64, bOff, expected, t * m * n, m, k, n, transA, transB);
    matmulReference(absA, aOff, absB, bOff, scale, t * m * n, m, k, n, transA, transB);
  }
  return { c, a, b, expected, scale };
}

let prepared: Prepared[] | null = null;
function allCases(): Prepared[] {
  return prepared ??= cases().map((c, i) => prepare(c, 1 + i));
}

function refs(rt: WebGpuRuntime, p: Prepared): [TensorRef<GpuBuffer>, TensorRef<GpuBuffer>, TensorRef<GpuBuffer>] {
  const { ba, bb, m, k, n, transA, transB } = p.c;
  const batch = Math.max(ba, bb);
  const a = gpuRef(rt, p.a, [ba, transA ? k : m, transA ? m : k], "f32");
  const b = gpuRef(rt, p.b, [bb, transB ? n : k, transB ? k : n], "f32");
  // Pre-filled with NaN, so an element the kernel fails to write is caught.
  const out = gpuRef(rt, new Float32Array(batch * m * n).fill(NaN), [batch, m, n], "f32");
  return [a, b, out];
}

/** Runs every case with the given transposes under `config`, reads all outputs at once, compares them. */
async function checkAll(
  rt: WebGpuRuntime,
  config: MatmulConfig,
  [transA, transB]: [boolean, boolean],
): Promise<number> {
  const kernels = matmulKernels(rt, config);
  const all = allCases().filter((p) => p.c.transA === transA && p.c.transB === transB);
  const launched = all.map((p) => {
    const [a, b, out] = refs(rt, p);
    kernels.matmul([a, b], [out], { transA: p.c.transA, transB: p.c.transB });
    return { p, a, b, out };
  });
  const results = await Promise.all(launched.map(({ out, p }) => rt.read(out.buf, "f32", p.expected.length)));
  for (const { a, b, out } of launched) for (const r of [a, b, out]) rt.free(r.buf);
  launched.forEach(({ p }, ci) => {
    const got = results[ci];
    for (let i = 0; i < got.length; i++) {
      const err = Math.abs(got[i] - p.expected[i]);
      if (!(err <= TOL * (1 + p.scale[i]))) {
        assert.fail(
          `${JSON.stringify(config)} ${JSON.stringify(p.c)}: element ${i} is ${got[i]}, reference ${
            p.expected[i]
          } (error ${err}, scale ${p.scale[i]})`,
        );
      }
    }
  });
  return all.length;
}

const CONFIGS: [string, MatmulConfig][] = [
  ["register kernel, vec4 where aligned", { variant: "register" }],
  ["register kernel, scalar paths", { variant: "register", vec4: false }],
  ["tiled kernel (BK 16), vec4 where aligned", { variant: "tiled" }],
  ["tiled kernel (BK 16), scalar paths", { variant: "tiled", vec4: false }],
  ["tiled kernel (BK 32), vec4 where aligned", { variant: "tiled", tileK: 32 }],
  ["tiled kernel (BK 32), scalar paths", { variant: "tiled", tileK: 32, vec4: false }],
  ["automatic choice", {}],
];

// One test per transpose pair: each compiles its own few specialisations. On llvmpipe over GL a tiled pipeline
// takes 3–16 s to compile (Mesa compiles the workgroup tiles' zero-fill that the WGSL translation adds), so all
// four pairs of a BK 32 config in one test would run past the WebGPU test bound there.
for (const [name, config] of CONFIGS) {
  for (const trans of TRANSPOSES) {
    const which = `${trans[0] ? "Aᵀ" : "A"}·${trans[1] ? "Bᵀ" : "B"}`;
    gpuTest(`matmul, ${name}, ${which}: matches matmulReference on edge shapes and batch broadcasting`, async (rt) => {
      const n = await checkAll(rt, config, trans);
      assert.ok(n > 25);
    });
  }
}

gpuTest("matmul: results are bit-identical across runs (fixed summation order, no atomics)", async (rt) => {
  const runs: Float32Array[] = [];
  const shapes: [number, number, number][] = [[100, 37, 129], [128, 256, 96]];
  const launched: { out: TensorRef<GpuBuffer>; size: number }[] = [];
  for (const variant of ["register", "tiled"] as const) {
    const kernels = matmulKernels(rt, { variant });
    for (const [m, k, n] of shapes) {
      const p = prepare({ ba: 1, bb: 1, m, k, n, transA: false, transB: true }, 99);
      for (let rep = 0; rep < 2; rep++) {
        const [a, b, out] = refs(rt, p);
        kernels.matmul([a, b], [out], { transA: false, transB: true });
        launched.push({ out, size: m * n });
      }
    }
  }
  for (const r of await Promise.all(launched.map(({ out, size }) => rt.read(out.buf, "f32", size)))) {
    runs.push(r as Float32Array);
  }
  for (let i = 0; i < runs.length; i += 2) assert.deepEqual(runs[i], runs[i + 1]);
});

gpuTest("matmul: grids past 65535 workgroups (split over x and y) cover every batch once", async (rt) => {
  // 66000 batches of 2×2·2×2 (one register workgroup each), b shared: the runtime splits the grid into
  // 65535 × 2 and the workgroups past the end must do nothing. (The tiled kernel has the same guard; 66000
  // of its 256-thread workgroups take ~20 s on llvmpipe, so it is not run here.)
  const batch = 66000;
  const p = prepare({ ba: batch, bb: 1, m: 2, k: 2, n: 2, transA: false, transB: true }, 5);
  const [a, b, out] = refs(rt, p);
  matmulKernels(rt, { variant: "register" }).matmul([a, b], [out], { transA: false, transB: true });
  const got = await rt.read(out.buf, "f32", batch * 4);
  for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - p.expected[i]) <= TOL * (1 + p.scale[i]), `${i}`);
  for (const r of [a, b, out]) rt.free(r.buf);
});

gpuTest("matmul: zero-sized outputs launch nothing", (rt) => {
  const kernels = matmulKernels(rt);
  const before = rt.stats.dispatches;
  for (const [m, n, batch] of [[0, 4, 2], [3, 0, 2], [3, 4, 0]]) {
    const a = gpuOut(rt, [batch, m, 5], "f32"), b = gpuOut(rt, [batch, 5, n], "f32");
    kernels.matmul([a, b], [gpuOut(rt, [batch, m, n], "f32")], { transA: false, transB: false });
  }
  assert.equal(rt.stats.dispatches, before);
});

gpuTest("matmul: shapes share pipelines; only the specialisation changes the shader", async (rt) => {
  const kernels = matmulKernels(rt, { variant: "register" });
  const run = (m: number, k: number, n: number) => {
    const a = gpuOut(rt, [1, m, k], "f32"), b = gpuOut(rt, [1, k, n], "f32"), out = gpuOut(rt, [1, m, n], "f32");
    kernels.matmul([a, b], [out], { transA: false, transB: false });
    return out;
  };
  run(8, 8, 8);
  const before = rt.stats.pipelines;
  const out = run(12, 16, 20); // same specialisation (all aligned), other shape
  assert.equal(rt.stats.pipelines, before);
  await rt.read(out.buf, "f32", 1);
  const src = (m: number, k: number, n: number, transA = false, config: MatmulConfig = {}) =>
    matmulShaderSource(
      gpuOut(rt, [1, m, k], "f32"),
      gpuOut(rt, [1, k, n], "f32"),
      gpuOut(rt, [1, m, n], "f32"),
      transA,
      false,
      config,
    );
  assert.equal(src(8, 8, 8).source, src(40, 4, 12).source);
  assert.notEqual(src(8, 8, 8).source, src(8, 8, 8, true).source);
  assert.notEqual(src(8, 8, 8).source, src(8, 8, 8, false, { vec4: false }).source);
  assert.notEqual(src(8, 8, 8).source, src(8, 8, 9).source);
});

Deno.test("webgpu matmul: the automatic choice", () => {
  assert.equal(chooseMatmulVariant(1, 1, 4096, 4096), "register"); // matrix-vector
  assert.equal(chooseMatmulVariant(1, 4096, 4096, 1), "register");
  assert.equal(chooseMatmulVariant(1, 64, 64, 64), "register"); // one tile
  assert.equal(chooseMatmulVariant(1, 512, 16, 512), "register"); // short K
  assert.equal(chooseMatmulVariant(1, 256, 256, 256), "tiled");
  assert.equal(chooseMatmulVariant(8, 64, 64, 64), "tiled"); // batched tiles
  assert.equal(chooseMatmulVariant(1, 2048, 2048, 2048, true), "register"); // software adapter
});

gpuTest("matmul: f64 is rejected", (rt) => {
  const kernels = matmulKernels(rt);
  const t = (shape: number[]) => ({ buf: rt.alloc(64), shape, dtype: "f64" as const });
  assert.throws(
    () => kernels.matmul([t([1, 2, 2]), t([1, 2, 2])], [t([1, 2, 2])], { transA: false, transB: false }),
    /f64/,
  );
});
