/**
 * The CPU fast paths (`fastKernels: true`) against the plain reference kernels (`fastKernels: false`):
 * bit-identical for binary ops, where, unary ops, strided layouts, sums and the fused AdamW update; the
 * table-driven f32 erf/GELU within rounding (checked to agree after f32 rounding on dense samples).
 */
import assert from "node:assert/strict";
import { elementwiseKernels } from "../../kernels/cpu/elementwise.ts";
import { layoutKernels } from "../../kernels/cpu/layout.ts";
import { reduceKernels } from "../../kernels/cpu/reduce.ts";
import { planRuns } from "../../kernels/cpu/runs.ts";
import { fastErf, fastGelu, ROUND_SHIFT } from "../../kernels/cpu/fast_math.ts";
import { erf, gelu } from "../../kernels/cpu/math.ts";
import { allocArray, type DType } from "../../core/dtype.ts";
import { broadcastShapes, sizeOf } from "../../core/shape.ts";
import type { BinaryOp, TensorRef, UnaryOp } from "../../kernels/registry.ts";
import type { CpuBuffer } from "../../kernels/cpu/buffer.ts";
import { AdamW, Generator, randn, type Tensor } from "../../mod.ts";
import { Adam } from "../../nn/optim/mod.ts";
import { withFast } from "../helpers/cpu_options.ts";

/** Deterministic values with some specials (0, −0, ±∞, NaN, repeats) for a dtype. */
function values(dtype: DType, shape: number[], seed: number): TensorRef<CpuBuffer> {
  const n = sizeOf(shape), buf = allocArray(dtype, n);
  let s = seed >>> 0;
  const specials = [0, -0, Infinity, -Infinity, NaN, 1, -1, 2];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const u = s / 2 ** 32;
    if (dtype === "bool") buf[i] = u < 0.5 ? 1 : 0;
    else if (dtype === "i32") buf[i] = Math.floor(u * 11) - 5 || 1;
    else buf[i] = u < 0.08 ? specials[i % specials.length] : (u - 0.5) * 8;
  }
  return { buf, shape, dtype };
}

function sameBits(got: CpuBuffer, want: CpuBuffer, what: string): void {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i])) assert.fail(`${what}: element ${i} is ${got[i]}, reference ${want[i]}`);
  }
}

const SHAPE_PAIRS: [number[], number[]][] = [
  [[4, 5], [4, 5]], // same shape
  [[6, 7], [7]], // row broadcast
  [[6, 7], [6, 1]], // column broadcast
  [[3, 4], []], // scalar right
  [[], [3, 4]], // scalar left
  [[1], [5]],
  [[2, 3, 4], [2, 1, 4]], // bias over a middle axis
  [[2, 1, 4], [1, 3, 1]], // both broadcast
  [[3, 1], [1, 5]], // outer product
  [[2, 3, 1, 5], [3, 4, 1]],
  [[0, 3], [3]], // empty
  [[1, 1], [1, 1]],
];

const FLOAT_OPS: BinaryOp[] = ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt"];

Deno.test("fast binary is bit-identical to the reference for every broadcast pattern, op and dtype", () => {
  let checked = 0;
  for (const [sa, sb] of SHAPE_PAIRS) {
    const shape = broadcastShapes("test", sa, sb);
    for (const dtype of ["f32", "f64", "i32", "bool"] as DType[]) {
      const ops: BinaryOp[] = dtype === "bool" ? ["and", "or", "eq", "ne"] : FLOAT_OPS;
      for (const op of ops) {
        if (dtype === "i32" && (op === "div" || op === "pow")) continue;
        const a = values(dtype, sa, 7 + checked), b = values(dtype, sb, 99 + checked);
        const outDtype: DType = ["add", "sub", "mul", "div", "pow", "maximum", "minimum"].includes(op) ? dtype : "bool";
        const run = (fast: boolean) => {
          const out = { buf: allocArray(outDtype, sizeOf(shape)), shape, dtype: outDtype };
          withFast(fast, () => elementwiseKernels.binary([a, b], [out], { op }));
          return out.buf;
        };
        sameBits(run(true), run(false), `${op} ${dtype} [${sa}] ∘ [${sb}]`);
        checked++;
      }
    }
  }
  assert.ok(checked > 300);
});

Deno.test("fast where is bit-identical to the reference under broadcasting", () => {
  const cases: [number[], number[], number[]][] = [
    [[4, 5], [4, 5], [4, 5]],
    [[5, 5], [2, 3, 5, 5], []], // causal-mask pattern: where(mask, scores, −∞)
    [[2, 3, 5, 5], [], [2, 3, 5, 5]],
    [[1, 5], [4, 1], [4, 5]],
    [[3, 1], [3, 4], [4]],
    [[], [2, 2], [2, 2]],
  ];
  for (const [sc, sa, sb] of cases) {
    const shape = broadcastShapes("test", sc, sa, sb);
    for (const dtype of ["f32", "i32"] as DType[]) {
      const c = values("bool", sc, 3), a = values(dtype, sa, 4), b = values(dtype, sb, 5);
      const run = (fast: boolean) => {
        const out = { buf: allocArray(dtype, sizeOf(shape)), shape, dtype };
        withFast(fast, () => elementwiseKernels.where([c, a, b], [out], {}));
        return out.buf;
      };
      sameBits(run(true), run(false), `where [${sc}] [${sa}] [${sb}] ${dtype}`);
    }
  }
});

Deno.test("fast unary is bit-identical to the reference for every op", () => {
  const ops: UnaryOp[] = ["neg", "abs", "sign", "exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "relu", "gelu"];
  for (const dtype of ["f32", "f64"] as DType[]) {
    for (const op of [...ops, "gelu_tanh", "silu", "erf", "sin", "cos", "isnan"] as UnaryOp[]) {
      const x = values(dtype, [257], 11);
      const outDtype: DType = op === "isnan" ? "bool" : dtype;
      const run = (fast: boolean) => {
        const out = { buf: allocArray(outDtype, 257), shape: [257], dtype: outDtype };
        withFast(fast, () => elementwiseKernels.unary([x], [out], { op }));
        return out.buf;
      };
      sameBits(run(true), run(false), `${op} ${dtype}`);
    }
  }
});

Deno.test("planRuns collapses broadcasts into long contiguous runs", () => {
  assert.deepEqual(planRuns([[6, 7], [7]], [6, 7]), { shape: [6, 7], strides: [[7, 1], [0, 1]] });
  assert.deepEqual(planRuns([[2, 3, 4], [2, 3, 4]], [2, 3, 4]), { shape: [24], strides: [[1], [1]] });
  assert.deepEqual(planRuns([[8, 5, 16], [8, 1, 16]], [8, 5, 16]), {
    shape: [8, 5, 16],
    strides: [[80, 16, 1], [16, 0, 1]],
  });
  assert.deepEqual(planRuns([[], [3]], [3]), { shape: [3], strides: [[0], [1]] });
  assert.deepEqual(planRuns([[1, 1]], [1, 1]), { shape: [1], strides: [[0]] });
});

function trainSteps(fast: boolean, decoupled: boolean, weightDecay: number): Float32Array[] {
  return withFast(fast, () => {
    const gen = new Generator(5);
    const w = randn([37, 9], { generator: gen }).requiresGrad_();
    const b = randn([9], { generator: gen }).requiresGrad_();
    const x = randn([4, 37], { generator: gen });
    const opts = { lr: 0.05, weightDecay, betas: [0.8, 0.95] as const, eps: 1e-6 };
    const opt = decoupled ? new AdamW([w, b], opts) : new Adam([w, b], opts);
    for (let s = 0; s < 4; s++) {
      opt.zeroGrad();
      (x.matmul(w).add(b).tanh().square().sum() as Tensor).backward();
      opt.step();
    }
    const st = opt.stateDict();
    return [w, b, ...Object.values(st.tensors)].map((t) => t.dataSync() as Float32Array);
  });
}

Deno.test("the fused CPU Adam/AdamW update is bit-identical to the op-by-op update", () => {
  for (const [decoupled, wd] of [[true, 0.1], [true, 0], [false, 0.05], [false, 0]] as const) {
    const fast = trainSteps(true, decoupled, wd), ref = trainSteps(false, decoupled, wd);
    assert.equal(fast.length, ref.length);
    fast.forEach((f, i) => sameBits(f, ref[i], `${decoupled ? "AdamW" : "Adam"} wd ${wd}, tensor ${i}`));
  }
  // And the update really moved the parameters (the comparison is not between two no-ops).
  const before = withFast(true, () => randn([37, 9], { generator: new Generator(5) }).dataSync());
  assert.notDeepEqual(trainSteps(true, true, 0.1)[0], before);
});

/** Math.round with ties to even (what adding and subtracting ROUND_SHIFT must give). */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

Deno.test("adding and subtracting ROUND_SHIFT rounds to the nearest integer, ties to even, on [0, 2^30)", () => {
  const cases = [0, 0.49999999999999994, 0.5, 1.5, 2.5, 383.5, 383.49999999999994, 1e-300, 2 ** 30 - 0.5];
  for (let k = 1; k < 400; k++) {
    for (const v of [k, k - 0.5]) cases.push(v, v + Number.EPSILON * v, v - Number.EPSILON * v, v - 2 ** -60);
  }
  let s = 1;
  for (let i = 0; i < 100000; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    cases.push((s / 2 ** 32) * 384);
  }
  for (const v of cases) {
    if (v >= 0) assert.equal((v + ROUND_SHIFT) - ROUND_SHIFT, roundHalfEven(v), `v = ${v}`);
  }
});

Deno.test("fastErf matches the reference erf to ~1e-15 and after f32 rounding", () => {
  let maxAbs = 0, mismatches = 0;
  for (let i = -80000; i <= 80000; i++) {
    const x = i * 8.7e-5 + 1e-7; // [-7, 7], off the grid points
    const a = fastErf(x), b = erf(x);
    maxAbs = Math.max(maxAbs, Math.abs(a - b));
    if (Math.fround(a) !== Math.fround(b)) mismatches++;
  }
  assert.ok(maxAbs < 1e-14, `max |fastErf − erf| = ${maxAbs}`);
  assert.ok(mismatches <= 2, `${mismatches} f32 mismatches`);
  for (const x of [0, 1e-300, 3, -3, 6, -6, Infinity, -Infinity]) assert.equal(fastErf(x), erf(x), `erf(${x})`);
  assert.ok(Number.isNaN(fastErf(NaN)));
  assert.ok(Math.abs(fastGelu(1.3) - gelu(1.3)) < 1e-15);
});

Deno.test("fast strided / stridedScatter are bit-identical to the reference (permute, expand, slice)", () => {
  const x = values("f32", [2, 3, 4, 5], 21);
  const cases: { shape: number[]; offset: number; strides: number[] }[] = [
    { shape: [2, 4, 3, 5], offset: 0, strides: [60, 5, 20, 1] }, // permute(0, 2, 1, 3): contiguous inner runs
    { shape: [5, 4, 3, 2], offset: 0, strides: [1, 5, 20, 60] }, // full reverse: stride-60 inner run
    { shape: [2, 3, 4, 40], offset: 0, strides: [60, 20, 5, 0] }, // broadcast along the last axis
    { shape: [3, 2, 3, 4, 5], offset: 0, strides: [0, 60, 20, 5, 1] }, // broadcast along a new leading axis
    { shape: [2, 3, 4, 2], offset: 3, strides: [60, 20, 5, 1] }, // narrow(-1, 3, 2)
    { shape: [2, 3, 2, 5], offset: 5, strides: [60, 20, 10, 1] }, // slice with step 2 on axis 2
    { shape: [2, 0, 5], offset: 0, strides: [60, 5, 1] },
    { shape: [], offset: 7, strides: [] },
  ];
  for (const { shape, offset, strides } of cases) {
    const n = sizeOf(shape);
    const gather = (fast: boolean) => {
      const out = { buf: new Float32Array(n), shape, dtype: "f32" as const };
      withFast(fast, () => layoutKernels.strided([x], [out], { offset, strides }));
      return out.buf;
    };
    sameBits(gather(true), gather(false), `strided [${shape}] @${offset} [${strides}]`);
    const src = values("f32", shape, 5);
    const scatter = (fast: boolean) => {
      const out = { buf: new Float32Array(x.buf.length), shape: x.shape, dtype: "f32" as const };
      withFast(fast, () => layoutKernels.stridedScatter([x, src], [out], { offset, strides }));
      return out.buf;
    };
    sameBits(scatter(true), scatter(false), `stridedScatter [${shape}] @${offset} [${strides}]`);
  }
});

Deno.test("fast sums are bit-identical to the reference (middle axis: few or many rows; last axis)", () => {
  const cases: [number[], number][] = [
    [[7, 33], 0], // few rows: column by column
    [[2, 33], 0], // two, three and four rows: written out
    [[3, 5, 40], 0],
    [[2, 4, 128, 8], 1],
    [[30, 33], 0], // many rows: a double accumulator
    [[3, 50, 6], 1],
    [[4, 5, 6], 0],
    [[2, 3], 1], // last axis, fewer than four rows
    [[9, 37], 1], // last axis: two groups of four rows and a tail
    [[4, 3, 1001], 2],
    [[8, 1], 1],
    [[5, 0], 1],
  ];
  for (const [shape, axis] of cases) {
    for (const dtype of ["f32", "f64", "i32"] as DType[]) {
      const x = values(dtype, shape, 17);
      const outShape = shape.map((d, i) => (i === axis ? 1 : d));
      const run = (fast: boolean) => {
        const out = { buf: allocArray(dtype, sizeOf(outShape)), shape: outShape, dtype };
        withFast(fast, () => reduceKernels.reduce([x], [out], { op: "sum", axis }));
        return out.buf;
      };
      sameBits(run(true), run(false), `sum [${shape}] axis ${axis} ${dtype}`);
    }
  }
  // Columns of −0 sum to +0 (the reference adds them to 0), for every row count that is written out.
  for (const n of [2, 3, 4, 5]) {
    const x = { buf: new Float32Array(n * 3).fill(-0), shape: [n, 3], dtype: "f32" as DType };
    const out = { buf: new Float32Array(3), shape: [1, 3], dtype: "f32" as DType };
    withFast(true, () => reduceKernels.reduce([x], [out], { op: "sum", axis: 0 }));
    assert.ok(out.buf.every((v) => Object.is(v, 0)), `${n} rows of −0`);
  }
});
