// The native-BLAS matmul (kernels/cpu/blas_matmul.ts) against the reference kernel, and the routing of the
// CPU matmul between BLAS, WebAssembly and TypeScript. Needs --allow-ffi and a CBLAS library (OpenBLAS on
// Linux, Accelerate on macOS); every test is ignored without them. Run them with `deno task test:blas`.
import assert from "node:assert/strict";
import { matmulBlocked, matmulKernels, matmulReference } from "../../kernels/cpu/matmul.ts";
import { blasMatmul, useBlasMatmul } from "../../kernels/cpu/blas_matmul.ts";
import { sharedWasmMatmul } from "../../kernels/cpu/wasm/matmul.ts";
import { cpuOptions, matmul, tensor } from "../../mod.ts";
import { rngSigned } from "../helpers/host_rng.ts";
import { alloc, type Float, type FloatArray, type MatmulCase, randomArray, ref } from "../helpers/matmul_case.ts";
import { assertWithinDotBound, noBlas as ignore, sameBits, withOptions } from "../helpers/blas_checks.ts";

const random = (dtype: Float, size: number, seed: number): FloatArray => randomArray(dtype, size, rngSigned(seed));

type Case = MatmulCase;

/** The operands of a case, and the registry kernel's output (pre-filled with NaN: an unwritten element shows). */
function runKernel(c: Case, seed: number) {
  const { dtype, ba, bb, m, k, n, transA, transB } = c;
  const batch = Math.max(ba, bb);
  const a = random(dtype, ba * m * k, seed), b = random(dtype, bb * k * n, seed + 1);
  const out = alloc(dtype, batch * m * n).fill(NaN);
  matmulKernels.matmul(
    [ref(a, [ba, transA ? k : m, transA ? m : k], dtype), ref(b, [bb, transB ? n : k, transB ? k : n], dtype)],
    [ref(out, [batch, m, n], dtype)],
    { transA, transB },
  );
  return { a, b, out, batch };
}

/**
 * Runs a case through the kernel under `matmul: "blas"` and compares every element with matmulReference, within
 * the bound of `tests/helpers/dot_bound.ts` (2·γ_K·Σ|a||b|).
 */
function checkCase(c: Case, seed: number): void {
  const { dtype, ba, bb, m, k, n, transA, transB } = c;
  const { a, b, out, batch } = runKernel(c, seed);
  const expected = alloc(dtype, batch * m * n), scale = new Float64Array(batch * m * n);
  const absA = Float64Array.from(a, Math.abs), absB = Float64Array.from(b, Math.abs);
  for (let t = 0; t < batch; t++) {
    const aOff = ba === 1 ? 0 : t * m * k, bOff = bb === 1 ? 0 : t * k * n;
    matmulReference(a, aOff, b, bOff, expected, t * m * n, m, k, n, transA, transB);
    matmulReference(absA, aOff, absB, bOff, scale, t * m * n, m, k, n, transA, transB);
  }
  assertWithinDotBound(out, expected, scale, dtype, () => k, JSON.stringify(c));
}

const TRANSPOSES: [boolean, boolean][] = [[false, false], [true, false], [false, true], [true, true]];

/** [m, k, n]: scalars and vectors, odd sizes, and sizes past the library's register and cache blocks. */
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 37, 1],
  [1, 37, 6],
  [6, 37, 1],
  [2, 1, 3],
  [3, 5, 2],
  [7, 13, 5],
  [16, 16, 16],
  [65, 33, 17],
  [67, 257, 13],
  [130, 520, 37],
  [5, 1, 130],
  [97, 700, 101],
];

for (const dtype of ["f32", "f64"] as const) {
  Deno.test({
    name: `BLAS matmul (${dtype}): matches matmulReference on fixed shapes, all transposes, 1 and 2 threads`,
    ignore,
    fn() {
      for (const threads of [1, 2]) {
        withOptions({ matmul: "blas", threads }, () => {
          let seed = 1;
          for (const [m, k, n] of SHAPES) {
            for (const [transA, transB] of TRANSPOSES) {
              checkCase({ dtype, ba: 1, bb: 1, m, k, n, transA, transB }, seed++);
            }
          }
        });
      }
    },
  });

  Deno.test({
    name: `BLAS matmul (${dtype}): batches, with a batch-1 operand reused for every batch`,
    ignore,
    fn() {
      withOptions({ matmul: "blas" }, () => {
        let seed = 1000;
        for (const [ba, bb] of [[3, 3], [1, 3], [3, 1], [1, 1]]) {
          for (const [m, k, n] of [[1, 9, 7], [7, 9, 1], [7, 13, 5], [33, 70, 21]]) {
            for (const [transA, transB] of TRANSPOSES) checkCase({ dtype, ba, bb, m, k, n, transA, transB }, seed++);
          }
        }
      });
    },
  });

  Deno.test({
    name: `BLAS matmul (${dtype}): zero sizes give an empty or all-zero output`,
    ignore,
    fn() {
      withOptions({ matmul: "blas" }, () => {
        for (const [m, k, n] of [[0, 3, 4], [3, 4, 0], [0, 0, 0], [1, 0, 1], [6, 0, 7]]) {
          for (const [transA, transB] of TRANSPOSES) checkCase({ dtype, ba: 2, bb: 2, m, k, n, transA, transB }, 3);
        }
        // Batch 0 writes nothing.
        const out = alloc(dtype, 4).fill(7);
        assert.ok(blasMatmul(alloc(dtype, 4), 4, alloc(dtype, 4), 4, out, 0, 2, 2, 2, false, false));
        assert.deepEqual(Array.from(out), [7, 7, 7, 7]);
      });
    },
  });
}

Deno.test({
  name: "BLAS matmul: the op on non-contiguous (transposed, sliced) operands matches the built-in path",
  ignore,
  fn() {
    const x = tensor(random("f32", 4 * 24 * 16, 11), { shape: [4, 24, 16] });
    const w = tensor(random("f32", 20 * 24, 12), { shape: [20, 24] });
    const run = () => matmul(x.transpose(1, 2).narrow(0, 1, 3), w.transpose(0, 1)).dataSync();
    let blas: Float32Array | null = null, builtin: Float32Array | null = null;
    withOptions({ matmul: "blas" }, () => blas = run() as Float32Array);
    withOptions({ matmul: "wasm" }, () => builtin = run() as Float32Array);
    // Both are within f32 rounding of the exact products (|entries| < 1, K = 24): 2·γ_24·24 < 1e-4.
    for (let i = 0; i < blas!.length; i++) assert.ok(Math.abs(blas![i] - builtin![i]) < 1e-4, `element ${i}`);
  },
});

Deno.test({
  name: "BLAS matmul: routing under auto / wasm / blas, and wasm: false keeps auto off the BLAS",
  ignore,
  fn() {
    const c: Case = { dtype: "f32", ba: 2, bb: 1, m: 40, k: 24, n: 33, transA: false, transB: true };
    const { a, b, out } = runKernel(c, 5); // under the defaults: matmul "auto"
    assert.equal(cpuOptions().matmul, "auto");
    const viaBlas = new Float32Array(out.length), viaWasm = new Float32Array(out.length);
    const viaTs = new Float32Array(out.length);
    blasMatmul(a as Float32Array, c.m * c.k, b as Float32Array, 0, viaBlas, 2, c.m, c.k, c.n, false, true);
    sharedWasmMatmul()?.matmulBatched({
      a: a as Float32Array,
      aStride: c.m * c.k,
      b: b as Float32Array,
      bStride: 0,
      out: viaWasm,
      batch: 2,
      m: c.m,
      k: c.k,
      n: c.n,
      transA: false,
      transB: true,
    });
    matmulBlocked(a, c.m * c.k, b, 0, viaTs, 2, c.m, c.k, c.n, false, true);
    sameBits(out, viaBlas, "auto with a library: BLAS");
    withOptions({ matmul: "wasm" }, () => {
      assert.ok(!useBlasMatmul(c.m, c.k, c.n));
      if (sharedWasmMatmul()) sameBits(runKernel(c, 5).out, viaWasm, "wasm: the WebAssembly kernel");
    });
    withOptions({ wasm: false }, () => sameBits(runKernel(c, 5).out, viaTs, "auto, wasm off: TypeScript"));
    withOptions({ wasm: false, matmul: "blas" }, () => sameBits(runKernel(c, 5).out, viaBlas, "blas"));
    // The tiniest products stay in TypeScript under auto; blas takes them too.
    assert.ok(!useBlasMatmul(1, 1, 1));
    withOptions({ matmul: "blas" }, () => assert.ok(useBlasMatmul(1, 1, 1)));
  },
});

Deno.test({
  name: "BLAS matmul: results repeat run to run at a fixed thread count",
  ignore,
  fn() {
    // Not across thread counts: OpenBLAS 0.3.21 gives different last bits for 300×400×260 on 1 and 2 threads
    // (a different kernel for small single-threaded products), so only repeatability is claimed.
    const c: Case = { dtype: "f32", ba: 1, bb: 1, m: 300, k: 400, n: 260, transA: true, transB: false };
    for (const threads of [1, 2]) {
      withOptions({ matmul: "blas", threads }, () => sameBits(runKernel(c, 9).out, runKernel(c, 9).out, "repeat"));
    }
  },
});
