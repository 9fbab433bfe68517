import assert from "node:assert/strict";
import { matmulBlocked, matmulKernels, matmulReference, useWasmMatmul } from "../../kernels/cpu/matmul.ts";
import { sharedWasmMatmul } from "../../kernels/cpu/wasm/matmul.ts";
import { matmul, tensor } from "../../mod.ts";
import { rngSigned as rng } from "../helpers/host_rng.ts";
import { alloc, type MatmulCase, randomArray, ref } from "../helpers/matmul_case.ts";
import { setCpuOptions } from "../../kernels/cpu/config.ts";

// These tests are about the built-in kernels: keep matmuls off a native BLAS even under --allow-ffi
// (blas_matmul_test.ts tests that path).
setCpuOptions({ matmul: "wasm" });

type Case = MatmulCase;

/** Tolerance per unit of Σ|a||b| (the scale of the rounding error of a dot product). */
const TOL = { f32: 1e-5, f64: 1e-12 };

/**
 * Runs the registry kernel on one case (output pre-filled with NaN, so an element it fails to write is
 * caught) and compares each element with `matmulReference`, batch by batch.
 */
function checkCase(c: Case, seed: number): void {
  const { dtype, ba, bb, m, k, n, transA, transB } = c;
  const batch = Math.max(ba, bb);
  const next = rng(seed);
  const a = randomArray(dtype, ba * m * k, next), b = randomArray(dtype, bb * k * n, next);
  const out = alloc(dtype, batch * m * n).fill(NaN);
  matmulKernels.matmul(
    [ref(a, [ba, transA ? k : m, transA ? m : k], dtype), ref(b, [bb, transB ? n : k, transB ? k : n], dtype)],
    [ref(out, [batch, m, n], dtype)],
    { transA, transB },
  );
  const expected = alloc(dtype, batch * m * n);
  // Σ_p |a_ip|·|b_pj| in f64: the scale the rounding error is measured against.
  const scale = new Float64Array(batch * m * n);
  const absA = Float64Array.from(a, Math.abs), absB = Float64Array.from(b, Math.abs);
  for (let t = 0; t < batch; t++) {
    const aOff = ba === 1 ? 0 : t * m * k, bOff = bb === 1 ? 0 : t * k * n;
    matmulReference(a, aOff, b, bOff, expected, t * m * n, m, k, n, transA, transB);
    matmulReference(absA, aOff, absB, bOff, scale, t * m * n, m, k, n, transA, transB);
  }
  for (let i = 0; i < out.length; i++) {
    const err = Math.abs(out[i] - expected[i]);
    if (!(err <= TOL[dtype] * scale[i])) {
      assert.fail(
        `${JSON.stringify(c)}: element ${i} is ${out[i]}, reference ${expected[i]} (error ${err}, scale ${scale[i]})`,
      );
    }
  }
}

const TRANSPOSES: [boolean, boolean][] = [[false, false], [true, false], [false, true], [true, true]];

/** [m, k, n]: vectors, odd sizes, and sizes past the 4×4 tile, the 64-row and 256-deep blocks. */
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 9, 1],
  [1, 37, 1],
  [1, 37, 6],
  [6, 37, 1],
  [1, 300, 70],
  [70, 300, 1],
  [2, 1, 3],
  [4, 4, 4],
  [3, 5, 2],
  [7, 13, 5],
  [8, 8, 8],
  [9, 2, 11],
  [65, 33, 17],
  [64, 256, 64],
  [67, 257, 13],
  [130, 520, 37],
  [5, 1, 130],
];

for (const dtype of ["f32", "f64"] as const) {
  Deno.test(`matmul kernel (${dtype}): matches matmulReference on fixed shapes, all transposes`, () => {
    let seed = 1;
    for (const [m, k, n] of SHAPES) {
      for (const [transA, transB] of TRANSPOSES) checkCase({ dtype, ba: 1, bb: 1, m, k, n, transA, transB }, seed++);
    }
  });

  Deno.test(`matmul kernel (${dtype}): matches matmulReference on random shapes`, () => {
    const next = rng(dtype === "f32" ? 7 : 8);
    const dim = (max: number) => 1 + Math.floor(((next() + 1) / 2) * max);
    for (let i = 0; i < 60; i++) {
      const [transA, transB] = TRANSPOSES[i % 4];
      checkCase(
        { dtype, ba: 1, bb: 1, m: dim(90), k: dim(i % 5 === 0 ? 600 : 90), n: dim(90), transA, transB },
        100 + i,
      );
    }
  });

  Deno.test(`matmul kernel (${dtype}): batches, with a batch-1 operand reused for every batch`, () => {
    let seed = 1000;
    for (const [ba, bb] of [[3, 3], [1, 3], [3, 1], [1, 1]]) {
      for (const [m, k, n] of [[1, 9, 7], [7, 9, 1], [7, 13, 5], [33, 70, 21]]) {
        for (const [transA, transB] of TRANSPOSES) checkCase({ dtype, ba, bb, m, k, n, transA, transB }, seed++);
      }
    }
  });
}

Deno.test("matmul kernel: B wider than one packed chunk (several column chunks)", () => {
  // k · n > 2^20 packed doubles, so B is packed in more than one chunk of columns.
  for (const [transA, transB] of TRANSPOSES) {
    checkCase({ dtype: "f32", ba: 1, bb: 1, m: 6, k: 2100, n: 530, transA, transB }, 5);
  }
  checkCase({ dtype: "f64", ba: 2, bb: 1, m: 5, k: 2100, n: 530, transA: false, transB: true }, 6);
  // Shallow K: the chunk width is bounded by the C scratch (64 · n > 2^20) instead.
  checkCase({ dtype: "f32", ba: 1, bb: 1, m: 9, k: 3, n: 17000, transA: true, transB: false }, 7);
});

Deno.test("matmul kernel: zero sizes give an empty or all-zero output", () => {
  for (const dtype of ["f32", "f64"] as const) {
    for (const [m, k, n] of [[0, 3, 4], [3, 4, 0], [0, 0, 0]]) {
      checkCase({ dtype, ba: 2, bb: 2, m, k, n, transA: false, transB: false }, 1);
    }
    // K = 0: the (empty) sums are 0, overwriting whatever `out` held.
    for (const [m, n] of [[1, 1], [1, 5], [5, 1], [6, 7]]) {
      const out = alloc(dtype, 2 * m * n).fill(NaN);
      matmulBlocked(alloc(dtype, 0), 0, alloc(dtype, 0), 0, out, 2, m, 0, n, false, true);
      assert.deepEqual(Array.from(out), new Array(2 * m * n).fill(0));
    }
    // Batch 0 writes nothing.
    const out = alloc(dtype, 4).fill(7);
    matmulBlocked(alloc(dtype, 4), 4, alloc(dtype, 4), 4, out, 0, 2, 2, 2, false, false);
    assert.deepEqual(Array.from(out), [7, 7, 7, 7]);
  }
});

Deno.test("matmul kernel: f32 sums in f64 on the TypeScript path, in f32 on the WebAssembly path", () => {
  // Exactly representable inputs whose f32 running sum would lose the small terms: 2^24 + 1 + 1 + ...
  // matmulBlocked (f64, and f32 products too small or skinny for wasm) accumulates f32 in f64 and rounds
  // once: 2^24 + 8 is representable in f32, so that is exact. The WebAssembly SIMD kernel that f32
  // products with M·N·K ≥ WASM_MIN_FLOPS, M ≥ 4, N ≥ 8 take has no wider accumulator: each +1 rounds
  // away (2^24 + 1 ties to even, 2^24), deterministically, whether the step is a fused multiply-add (the
  // products here are exact, so fusing changes nothing) or a multiply then an add.
  const run = (m: number, k: number, n: number, kernel: boolean) => {
    const a = new Float32Array(m * k).fill(1), b = new Float32Array(k * n).fill(1);
    for (let j = 0; j < n; j++) b[j] = 2 ** 24; // row p = 0 of b
    const out = new Float32Array(m * n);
    if (kernel) {
      matmulKernels.matmul([ref(a, [1, m, k], "f32"), ref(b, [1, k, n], "f32")], [ref(out, [1, m, n], "f32")], {
        transA: false,
        transB: false,
      });
    } else matmulBlocked(a, 0, b, 0, out, 1, m, k, n, false, false);
    return Array.from(out);
  };
  for (const [m, k, n] of [[1, 9, 1], [1, 9, 5], [5, 9, 1], [6, 9, 7], [9, 9, 33], [40, 9, 40]]) {
    assert.deepEqual(run(m, k, n, false), new Array(m * n).fill(2 ** 24 + 8));
  }
  // Through the kernel: TS-path shapes (small or skinny) stay strict.
  for (const [m, k, n] of [[1, 9, 1], [6, 9, 7], [3, 9, 200], [200, 9, 7]]) {
    assert.ok(!useWasmMatmul(m, k, n));
    assert.deepEqual(run(m, k, n, true), new Array(m * n).fill(2 ** 24 + 8));
  }
  // WebAssembly-path shapes round every partial sum to f32 (only where wasm SIMD is available).
  for (const [m, k, n] of [[9, 9, 33], [40, 9, 40]]) {
    assert.ok(useWasmMatmul(m, k, n));
    const want = sharedWasmMatmul() ? 2 ** 24 : 2 ** 24 + 8;
    assert.deepEqual(run(m, k, n, true), new Array(m * n).fill(want));
  }
});

Deno.test("matmul kernel: NaN and ±∞ propagate as in IEEE arithmetic (0·∞ = NaN)", () => {
  for (const [m, k, n] of [[1, 3, 1], [1, 3, 5], [5, 3, 1], [6, 3, 7]]) {
    for (const [transA, transB] of TRANSPOSES) {
      const a = new Float64Array(m * k), b = new Float64Array(k * n).fill(1);
      // op(B) is all 1 but op(B)[1, 0] = ∞ and (if n > 1) op(B)[2, 1] = NaN; op(A) is 0 but op(A)[0, 1] = 1.
      b[transB ? 1 : n] = Infinity;
      if (n > 1) b[transB ? k + 2 : 2 * n + 1] = NaN;
      a[transA ? m : 1] = 1;
      const out = new Float64Array(m * n);
      matmulBlocked(a, 0, b, 0, out, 1, m, k, n, transA, transB);
      const want = (i: number, j: number) => (j === 1 ? NaN : j === 0 ? (i === 0 ? Infinity : NaN) : i === 0 ? 1 : 0);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) assert.ok(Object.is(out[i * n + j], want(i, j)), `${m}×${k}×${n} [${i},${j}]`);
      }
    }
  }
});

Deno.test("matmul op: a small product computed by hand, batched, vectors, f64", async () => {
  const a = tensor([[1, 2, 3], [4, 5, 6]]);
  const b = tensor([[7, 8], [9, 10], [11, 12]]);
  const y = matmul(a, b);
  assert.deepEqual(y.shape, [2, 2]);
  assert.equal(y.dtype, "f32");
  assert.deepEqual(await y.array(), [[58, 64], [139, 154]]);

  // Leading batch dims broadcast against a 2-D weight: each batch row uses the same b.
  const x = tensor([[[1, 0, 0], [0, 1, 0]], [[0, 0, 1], [1, 1, 1]]]);
  assert.deepEqual(await matmul(x, b).array(), [[[7, 8], [9, 10]], [[11, 12], [27, 30]]]);

  // 1-D operands: vector·matrix, matrix·vector, and a dot product.
  assert.deepEqual(await matmul(tensor([1, -1, 2]), b).array(), [20, 22]);
  assert.deepEqual(await matmul(a, tensor([1, 0, -1])).array(), [-2, -2]);
  assert.equal(await matmul(tensor([1, 2, 3]), tensor([4, 5, 6])).item(), 32);

  const c = matmul(tensor([[0.1, 0.2], [0.3, 0.4]], { dtype: "f64" }), tensor([[1, 2], [3, 4]], { dtype: "f64" }));
  assert.equal(c.dtype, "f64");
  const got = c.dataSync();
  assert.ok(got instanceof Float64Array);
  const want = [0.1 + 0.6, 0.2 + 0.8, 0.3 + 1.2, 0.6 + 1.6];
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-15, `${got[i]} vs ${want[i]}`);
});
