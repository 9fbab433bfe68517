/**
 * The multi-threaded WebAssembly matmul: threaded vs single-threaded vs matmulReference, bit-identical
 * results for any thread count, a bounded Worker pool, and the single-thread fallback. No permissions
 * needed: the Workers are evaluated from a string.
 */
import assert from "node:assert/strict";
import { matmulKernels, matmulReference, matmulThreads } from "../../kernels/cpu/matmul.ts";
import { setCpuOptions } from "../../kernels/cpu/config.ts";
import type { TensorRef } from "../../internals.ts";
import { createWasmMatmul, sharedWasmMatmul } from "../../kernels/cpu/wasm/matmul.ts";
import { relaxedSimdSupported, sharedMemorySupported } from "../../kernels/cpu/wasm/emit.ts";
import { threadsSupported } from "../../kernels/cpu/threads/waiting.ts";
import { kernelPool } from "../../kernels/cpu/threads/pool.ts";
import { filled } from "../helpers/host_rng.ts";
import type { MatmulCase } from "../helpers/matmul_case.ts";

// These tests are about the built-in kernels: keep matmuls off a native BLAS even under --allow-ffi
// (blas_matmul_test.ts tests that path).
setCpuOptions({ matmul: "wasm" });

const canThread = sharedMemorySupported() && threadsSupported();
const ref = (buf: Float32Array, shape: number[]): TensorRef<Float32Array> => ({ buf, shape, dtype: "f32" });

/** An f32 case (the dtype is fixed here). */
type Case = Omit<MatmulCase, "dtype">;

/** Operands of a case (a: [ba, M, K] or [ba, K, M]; b: [bb, K, N] or [bb, N, K]). */
function operands(c: Case, seed: number): { a: Float32Array; b: Float32Array; batch: number } {
  return { a: filled(c.ba * c.m * c.k, seed), b: filled(c.bb * c.k * c.n, seed + 1), batch: Math.max(c.ba, c.bb) };
}

/** Through the registry kernel, with `threads` threads allowed. */
function viaKernel(c: Case, a: Float32Array, b: Float32Array, threads: number): Float32Array {
  const { ba, bb, m, k, n, transA, transB } = c;
  const batch = Math.max(ba, bb);
  const out = new Float32Array(batch * m * n).fill(NaN);
  const before = setCpuOptions({ threads });
  try {
    matmulKernels.matmul(
      [ref(a, [ba, transA ? k : m, transA ? m : k]), ref(b, [bb, transB ? n : k, transB ? k : n])],
      [ref(out, [batch, m, n])],
      { transA, transB },
    );
  } finally {
    setCpuOptions(before);
  }
  return out;
}

/** Compares with matmulReference within 1e-5·(1 + Σ|a||b|) per element (f32 rounding, fused or not). */
function checkAgainstReference(c: Case, a: Float32Array, b: Float32Array, out: Float32Array): void {
  const { ba, bb, m, k, n, transA, transB } = c;
  const batch = Math.max(ba, bb);
  const want = new Float32Array(batch * m * n), mag = new Float32Array(batch * m * n);
  const absA = Float32Array.from(a, Math.abs), absB = Float32Array.from(b, Math.abs);
  for (let t = 0; t < batch; t++) {
    const aOff = ba === 1 ? 0 : t * m * k, bOff = bb === 1 ? 0 : t * k * n;
    matmulReference(a, aOff, b, bOff, want, t * m * n, m, k, n, transA, transB);
    matmulReference(absA, aOff, absB, bOff, mag, t * m * n, m, k, n, transA, transB);
  }
  for (let i = 0; i < out.length; i++) {
    if (!(Math.abs(out[i] - want[i]) <= 1e-5 * (1 + mag[i]))) {
      assert.fail(`${JSON.stringify(c)} [${i}]: ${out[i]} vs reference ${want[i]}`);
    }
  }
}

/** Shapes the kernel really splits over three threads (see matmulThreads): odd sizes, row and column splits. */
const BIG: [number, number, number][] = [
  [131, 67, 385], // odd everywhere; split by rows
  [5, 211, 3011], // two row panels: split by columns
  [257, 33, 390], // shallow K
];

Deno.test("wasm threads: threaded kernel matches single-threaded bit for bit and the reference, all transposes", () => {
  let seed = 1;
  for (const [m, k, n] of BIG) {
    assert(matmulThreads(m * n * k, 3) === 3);
    for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      const c: Case = { ba: 1, bb: 1, m, k, n, transA, transB };
      const { a, b } = operands(c, seed += 2);
      const one = viaKernel(c, a, b, 1);
      checkAgainstReference(c, a, b, one);
      assert.deepStrictEqual(viaKernel(c, a, b, 3), one, `${JSON.stringify(c)}: 3 threads`);
    }
  }
  // The kernel's process-wide instance did start its Workers (where threads are possible at all).
  if (canThread) assert.equal(sharedWasmMatmul()?.workers, 2);
});

Deno.test("wasm threads: batches and batch-1 broadcasting, including an MoE expert product [E, C, d]×[E, d, h]", () => {
  let seed = 100;
  const cases: Case[] = [
    { ba: 8, bb: 8, m: 24, k: 64, n: 96, transA: false, transB: false }, // experts: E = 8, capacity 24
    { ba: 12, bb: 12, m: 9, k: 40, n: 72, transA: false, transB: true },
    { ba: 1, bb: 3, m: 70, k: 90, n: 130, transA: true, transB: false }, // A shared by every batch item
    { ba: 3, bb: 1, m: 70, k: 90, n: 130, transA: false, transB: true }, // B shared
    { ba: 2, bb: 2, m: 300, k: 20, n: 44, transA: true, transB: true }, // fewer items than threads
  ];
  for (const c of cases) {
    const { a, b } = operands(c, seed += 2);
    const one = viaKernel(c, a, b, 1);
    checkAgainstReference(c, a, b, one);
    for (const threads of [2, 4]) {
      assert.deepStrictEqual(viaKernel(c, a, b, threads), one, `${JSON.stringify(c)}: ${threads} threads`);
    }
  }
});

Deno.test("wasm threads: bit-identical across repeated runs and thread counts 1..4", () => {
  const c: Case = { ba: 1, bb: 1, m: 190, k: 300, n: 170, transA: false, transB: false };
  const { a, b } = operands(c, 7);
  const first = viaKernel(c, a, b, 1);
  for (let rep = 0; rep < 2; rep++) {
    for (const threads of [1, 2, 3, 4]) {
      assert.deepStrictEqual(viaKernel(c, a, b, threads), first, `run ${rep}, ${threads} threads`);
    }
  }
});

Deno.test("wasm threads: an instance with explicit thread counts agrees with one thread, Workers join", async () => {
  if (!canThread) return; // no shared memory or Atomics.wait here: every product runs on the calling thread
  const w = createWasmMatmul();
  const [m, k, n] = [256, 256, 256];
  const a = filled(m * k, 3), b = filled(k * n, 4);
  const one = new Float32Array(m * n), many = new Float32Array(m * n);
  w.matmul(a, b, one, m, k, n, { threads: 1 });
  assert.equal(w.workers, 0, "one thread must not start a Worker");
  // Workers start asynchronously and claim work only once they are up, so repeat until one has joined
  // (on a loaded machine the calling thread may finish the first products alone).
  const deadline = performance.now() + 15_000;
  do {
    many.fill(NaN);
    w.matmul(a, b, many, m, k, n, { threads: 2 });
    assert.deepStrictEqual(many, one);
  } while (w.workerUnits === 0 && performance.now() < deadline);
  assert(w.workerUnits > 0, "no Worker ever joined a product");
  // Where the kernel Workers can load the kernels (read permission), the products ran on them: one set of
  // Workers for every CPU kernel; else on a Worker of the instance's own.
  const canLoad = (await Deno.permissions.query({ name: "read" })).state === "granted";
  assert.equal(w.borrowing, canLoad);
  if (canLoad) assert.equal(w.workers, kernelPool()!.size);
  else assert.equal(w.workers, 1);
});

Deno.test("wasm threads: the pool stays bounded after many calls; threads = 1 never starts Workers", () => {
  const w = createWasmMatmul();
  const [m, k, n] = [64, 96, 80];
  const a = filled(m * k, 5), b = filled(k * n, 6);
  const want = new Float32Array(m * n), out = new Float32Array(m * n);
  w.matmul(a, b, want, m, k, n);
  for (let i = 0; i < 50; i++) w.matmul(a, b, out, m, k, n, { threads: 1 });
  assert.equal(w.workers, 0);
  assert.deepStrictEqual(out, want);
  for (let i = 0; i < 100; i++) {
    w.matmul(a, b, out, m, k, n, { threads: 1 + (i % 4) });
    assert.deepStrictEqual(out, want);
  }
  assert(w.workers <= 3, `${w.workers} Workers for at most 4 threads`);
  // The process-wide instance the kernel uses is bounded by the largest thread count asked for (4 above).
  const shared = sharedWasmMatmul();
  if (shared) assert(shared.workers <= 3, `${shared.workers} Workers in the kernel's pool`);
});

Deno.test("wasm threads: relaxed-SIMD multiply-add rounds once, the plain path twice", () => {
  // Row [1, a] · column [c, a] with a = 1 + 2^-12, c = -(1 + 2^-11): a² = 1 + 2^-11 + 2^-24 exactly.
  // Separate rounding: round(a²) = 1 + 2^-11, + c = 0. Fused: a² + c = 2^-24 exactly.
  const a = 1 + 2 ** -12, c = -(1 + 2 ** -11);
  const run = (fma: boolean) => {
    const w = createWasmMatmul({ fma });
    const out = new Float32Array(1);
    w.matmul(new Float32Array([1, a]), new Float32Array([c, a]), out, 1, 2, 1);
    return out[0];
  };
  assert.equal(run(false), 0);
  if (relaxedSimdSupported()) assert([0, 2 ** -24].includes(run(true)), `fused result ${run(true)}`);
});

Deno.test("wasm threads: an unshared memory (no SharedArrayBuffer) runs everything on the calling thread", () => {
  const plain = createWasmMatmul({ shared: false });
  assert.equal(plain.memory.buffer instanceof SharedArrayBuffer, false);
  const c: Case = { ba: 3, bb: 1, m: 37, k: 70, n: 45, transA: true, transB: false };
  const { a, b } = operands(c, 9);
  const out = new Float32Array(3 * 37 * 45), want = new Float32Array(3 * 37 * 45);
  plain.matmulBatched({
    a,
    aStride: 70 * 37,
    b,
    bStride: 0,
    out,
    batch: 3,
    m: 37,
    k: 70,
    n: 45,
    transA: true,
    threads: 4,
  });
  assert.equal(plain.workers, 0);
  checkAgainstReference(c, a, b, out);
  createWasmMatmul().matmulBatched({
    a,
    aStride: 70 * 37,
    b,
    bStride: 0,
    out: want,
    batch: 3,
    m: 37,
    k: 70,
    n: 45,
    transA: true,
    threads: 2,
  });
  assert.deepStrictEqual(out, want);
});
