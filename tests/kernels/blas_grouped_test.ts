/**
 * The grouped matmul kernels on a native BLAS (`kernels/cpu/blas_grouped.ts`): `groupedMatmul` (both layouts
 * of w; `transB` is what the input gradient uses) and `groupedOuter` (the weight gradient, a transposed left
 * operand) against their plain loops within 2·γ_K·Σ|a||b| (`tests/helpers/blas_checks.ts`), in f32 and f64,
 * on one and two threads, over empty groups, one group, uneven groups, rows outside every group, zero rows and
 * K = 0; which path `auto` / `wasm` / `blas` take; that results repeat at a fixed thread count; and an MoE layer's forward and backward with the BLAS against
 * the same layer without it. Needs --allow-ffi and a CBLAS library; every test is ignored without them. Run
 * them with `deno task test:blas`.
 */
import assert from "node:assert/strict";
import type { TensorRef } from "../../internals.ts";
import { backward, randn, type Tensor } from "../../mod.ts";
import { Generator } from "../../core/random/generator.ts";
import { MoELayer } from "../../moe/layer.ts";
import type { CpuBuffer } from "../../kernels/cpu/buffer.ts";
import {
  groupedMatmulKernels,
  groupedMatmulReference,
  groupedOuterReference,
} from "../../kernels/cpu/grouped_matmul.ts";
import { blasGroupedMatmul, blasGroupedOuter } from "../../kernels/cpu/blas_grouped.ts";
import { rngSigned } from "../helpers/host_rng.ts";
import { alloc, type Float, type FloatArray, randomArray } from "../helpers/matmul_case.ts";
import { assertWithinDotBound, noBlas as ignore, sameBits, withOptions } from "../helpers/blas_checks.ts";

/** [name, rows R, K (M of groupedOuter), N, offsets]. */
const GROUPINGS: [string, number, number, number, number[]][] = [
  ["three groups, one empty", 9, 5, 7, [0, 4, 4, 9]],
  ["one group holding every row", 6, 3, 4, [0, 6]],
  ["uneven groups, rows outside every group", 40, 19, 23, [3, 4, 20, 20, 37, 38]],
  ["one-row groups among bigger ones", 10, 7, 9, [0, 1, 6, 7, 10]],
  ["every group empty", 4, 3, 2, [0, 0, 0]],
  ["zero rows", 0, 4, 3, [0, 0, 0]],
  ["K = 0", 5, 0, 3, [0, 2, 5]],
  ["N = 1", 8, 6, 1, [0, 3, 8]],
  ["groups past the library's blocks", 700, 130, 70, [0, 11, 400, 400, 700]],
];

const random = (dtype: Float, size: number, seed: number): FloatArray => randomArray(dtype, size, rngSigned(seed));
const ref = (buf: CpuBuffer, shape: number[], dtype: Float | "i32"): TensorRef<CpuBuffer> => ({ buf, shape, dtype });
const abs = (x: FloatArray) => Float64Array.from(x, Math.abs);

/** groupedMatmul through the registry kernel (out pre-filled with NaN: an unwritten element shows). */
function runGroupedMatmul(dtype: Float, x: FloatArray, w: FloatArray, offsets: number[], shape: number[], tb: boolean) {
  const [rows, k, n] = shape, g = offsets.length - 1;
  const out = alloc(dtype, rows * n).fill(NaN);
  groupedMatmulKernels.groupedMatmul(
    [
      ref(x, [rows, k], dtype),
      ref(w, tb ? [g, n, k] : [g, k, n], dtype),
      ref(Int32Array.from(offsets), [g + 1], "i32"),
    ],
    [ref(out, [rows, n], dtype)],
    { transB: tb },
  );
  return out;
}

/** groupedOuter through the registry kernel (out pre-filled with NaN). */
function runGroupedOuter(dtype: Float, a: FloatArray, b: FloatArray, offsets: number[], shape: number[]) {
  const [rows, m, n] = shape, g = offsets.length - 1;
  const out = alloc(dtype, g * m * n).fill(NaN);
  groupedMatmulKernels.groupedOuter(
    [ref(a, [rows, m], dtype), ref(b, [rows, n], dtype), ref(Int32Array.from(offsets), [g + 1], "i32")],
    [ref(out, [g, m, n], dtype)],
    {},
  );
  return out;
}

for (const dtype of ["f32", "f64"] as const) {
  Deno.test({
    name: `BLAS groupedMatmul (${dtype}): matches the plain loop, both layouts of w, 1 and 2 threads`,
    ignore,
    fn() {
      let seed = 1;
      for (const [name, rows, k, n, offsets] of GROUPINGS) {
        const g = offsets.length - 1;
        const x = random(dtype, rows * k, seed++), w = random(dtype, g * k * n, seed++);
        for (const transB of [false, true]) {
          const want = alloc(dtype, rows * n), scale = new Float64Array(rows * n);
          groupedMatmulReference(x, w, offsets, want, rows, k, n, transB);
          groupedMatmulReference(abs(x), abs(w), offsets, scale, rows, k, n, transB);
          for (const threads of [1, 2]) {
            const got = withOptions(
              { matmul: "blas", threads },
              () => runGroupedMatmul(dtype, x, w, offsets, [rows, k, n], transB),
            );
            assertWithinDotBound(got, want, scale, dtype, () => k, `${name}, transB ${transB}, ${threads} thread(s)`);
          }
        }
      }
    },
  });

  Deno.test({
    name: `BLAS groupedOuter (${dtype}): matches the plain loop, 1 and 2 threads`,
    ignore,
    fn() {
      let seed = 100;
      for (const [name, rows, m, n, offsets] of GROUPINGS) {
        const g = offsets.length - 1;
        const a = random(dtype, rows * m, seed++), b = random(dtype, rows * n, seed++);
        const want = alloc(dtype, g * m * n), scale = new Float64Array(g * m * n);
        groupedOuterReference(a, b, offsets, want, m, n);
        groupedOuterReference(abs(a), abs(b), offsets, scale, m, n);
        // Element i belongs to group ⌊i / MN⌋, whose row count is its K (0 for an empty group: exactly zero).
        const kOf = (i: number) => offsets[Math.floor(i / (m * n)) + 1] - offsets[Math.floor(i / (m * n))];
        for (const threads of [1, 2]) {
          const got = withOptions(
            { matmul: "blas", threads },
            () => runGroupedOuter(dtype, a, b, offsets, [rows, m, n]),
          );
          assertWithinDotBound(got, want, scale, dtype, kOf, `${name}, ${threads} thread(s)`);
        }
      }
    },
  });
}

Deno.test({
  name: "BLAS grouped ops: routing under auto / wasm / blas, and wasm: false keeps auto off the BLAS",
  ignore,
  fn() {
    // f32 with K past OpenBLAS's K block: its bits differ from the plain loop's (checked below), so a path shows.
    const [rows, k, n, offsets] = [60, 600, 24, [0, 7, 7, 41, 60]];
    const g = offsets.length - 1, off = Int32Array.from(offsets);
    const x = random("f32", rows * k, 7) as Float32Array, w = random("f32", g * k * n, 8) as Float32Array;
    const b = random("f32", rows * n, 9) as Float32Array;
    const viaBlas = new Float32Array(rows * n), outerViaBlas = new Float32Array(g * k * n);
    assert.ok(blasGroupedMatmul(x, w, off, viaBlas, k, n, false));
    assert.ok(blasGroupedOuter(x, b, off, outerViaBlas, k, n));
    const loop = new Float32Array(rows * n), outerLoop = new Float32Array(g * k * n);
    groupedMatmulReference(x, w, offsets, loop, rows, k, n, false);
    groupedOuterReference(x, b, offsets, outerLoop, k, n);
    assert.ok(viaBlas.some((v, i) => v !== loop[i]), "the case must tell the BLAS from the plain loop");
    const run = () => ({
      y: runGroupedMatmul("f32", x, w, offsets, [rows, k, n], false),
      outer: runGroupedOuter("f32", x, b, offsets, [rows, k, n]),
    });
    const check = (what: string, r: ReturnType<typeof run>, y: Float32Array, outer: Float32Array) => {
      sameBits(r.y, y, `${what}: groupedMatmul`);
      sameBits(r.outer, outer, `${what}: groupedOuter`);
    };
    check("auto with a library: BLAS", withOptions({ matmul: "auto" }, run), viaBlas, outerViaBlas);
    check("blas, wasm off: BLAS", withOptions({ matmul: "blas", wasm: false }, run), viaBlas, outerViaBlas);
    // Off the BLAS and off WebAssembly, f32 sums in f64 in order, as the plain loop does: the same bits.
    check("auto, wasm off: TypeScript", withOptions({ matmul: "auto", wasm: false }, run), loop, outerLoop);
    check("wasm, wasm off: TypeScript", withOptions({ matmul: "wasm", wasm: false }, run), loop, outerLoop);
  },
});

Deno.test({
  name: "BLAS grouped ops: results repeat run to run at a fixed thread count",
  ignore,
  fn() {
    // Groups big enough for OpenBLAS to split them over threads (not across thread counts: see blas_matmul.ts).
    const [rows, k, n, offsets] = [300, 200, 260, [0, 120, 120, 300]];
    const g = offsets.length - 1;
    const x = random("f32", rows * k, 21), w = random("f32", g * k * n, 22), b = random("f32", rows * n, 23);
    for (const threads of [1, 2]) {
      withOptions({ matmul: "blas", threads }, () => {
        for (const transB of [false, true]) {
          const run = () => runGroupedMatmul("f32", x, w, offsets, [rows, k, n], transB);
          sameBits(run(), run(), `groupedMatmul, transB ${transB}, ${threads} thread(s)`);
        }
        const outer = () => runGroupedOuter("f32", x, b, offsets, [rows, k, n]);
        sameBits(outer(), outer(), `groupedOuter, ${threads} thread(s)`);
      });
    }
  },
});

/** An MoE layer's output, input gradient and parameter gradients (named), for one loss. */
function layerRun(dtype: Float, expert: "ffn" | "glu", estimator: string, topK: number) {
  const layer = new MoELayer(32, {
    numExperts: 5,
    hidden: 48,
    expert,
    estimator,
    estimatorOptions: estimator === "topk" ? { topK } : undefined,
    generator: new Generator(3),
    dtype,
  });
  const x = randn([70, 32], { generator: new Generator(9), dtype }).requiresGrad_();
  const y = layer.forward(x);
  backward(y.mul(y).sum());
  const values: Record<string, Tensor> = { y, "x.grad": x.grad! };
  for (const [name, p] of layer.namedParameters()) values[`${name}.grad`] = p.grad!;
  return Object.fromEntries(Object.entries(values).map(([k, t]) => [k, Array.from(t.dataSync(), Number)]));
}

for (const dtype of ["f32", "f64"] as const) {
  for (const [expert, estimator, topK] of [["ffn", "switch", 1], ["glu", "topk", 2]] as const) {
    Deno.test({
      name: `BLAS MoE layer (${dtype}, ${expert}, ${estimator}): forward and backward match the built-in kernels`,
      ignore,
      fn() {
        const blas = withOptions({ matmul: "blas" }, () => layerRun(dtype, expert, estimator, topK));
        const builtin = withOptions({ matmul: "wasm" }, () => layerRun(dtype, expert, estimator, topK));
        // Relative to each array's largest magnitude: a few sums of ≤ 70 products deep, each rounded to dtype.
        const tol = dtype === "f32" ? 2e-5 : 1e-12;
        assert.deepEqual(Object.keys(blas), Object.keys(builtin));
        for (const [name, want] of Object.entries(builtin)) {
          const got = blas[name], size = Math.max(1e-30, ...want.map(Math.abs));
          assert.equal(got.length, want.length, name);
          const worst = Math.max(0, ...got.map((v, i) => Math.abs(v - want[i]) / size));
          assert.ok(worst <= tol, `${name}: largest difference ${worst} of its largest magnitude`);
        }
      },
    });
  }
}
