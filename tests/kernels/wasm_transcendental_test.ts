/**
 * The f32 fast path of the transcendental elementwise ops: `fastExp` and `fastErf` (kernels/cpu/fast_math.ts)
 * against the reference (`Math.exp`, the series erf), and the WebAssembly f64x2 kernel
 * (kernels/cpu/wasm/elementwise_f64.ts) against the JavaScript fast loop — bit for bit, on random and edge
 * inputs, odd lengths, broadcast and strided runs — and the fast path against the reference path (≤ 1 ulp
 * of f32); likewise the fast softmax (kernels/cpu/fast_softmax.ts) with and without its SIMD exponentials.
 */
import assert from "node:assert/strict";
import type { DType } from "../../core/dtype.ts";
import { broadcastShapes, sizeOf } from "../../core/shape.ts";
import type { TensorRef, UnaryOp } from "../../kernels/registry.ts";
import type { CpuBuffer } from "../../kernels/cpu/buffer.ts";
import { runFast, runReference } from "../../kernels/cpu/expr_run.ts";
import { planRuns } from "../../kernels/cpu/runs.ts";
import { EXP_CONST, fastErf, fastExp, fastTanh } from "../../kernels/cpu/fast_math.ts";
import { erf } from "../../kernels/cpu/math.ts";
import { unaryProgram } from "../../kernels/expr/ops.ts";
import { actGradProgram, biasActProgram, type FusedActivation } from "../../kernels/expr/fused.ts";
import { add, div, type ElementwiseProgram, exp, ge, input, mul, neg, program, select } from "../../kernels/expr/ir.ts";
import { CHUNK, runWasmElementwise, wasmElementwiseSupported } from "../../kernels/cpu/wasm/elementwise.ts";
import { branchExclusiveExps, f64Renderable } from "../../kernels/cpu/wasm/elementwise_f64.ts";
import { SOFTMAX_CHUNK } from "../../kernels/cpu/wasm/softmax_exp.ts";
import { WASM_MIN_ROW } from "../../kernels/cpu/fast_softmax.ts";
import { reduceKernels } from "../../kernels/cpu/reduce.ts";
import { setCpuOptions } from "../../kernels/cpu/config.ts";

const f64 = new Float64Array(1), i64 = new BigInt64Array(f64.buffer);
/** Distance in units in the last place of a double (same sign, finite). */
function ulps64(a: number, b: number): number {
  f64[0] = a;
  const x = i64[0];
  f64[0] = b;
  return Math.abs(Number(x - i64[0]));
}
const f32 = new Float32Array(1), i32 = new Int32Array(f32.buffer);
/** Distance in units in the last place of an f32 (through the ordered integer line; NaN = NaN). */
function ulps32(a: number, b: number): number {
  if (a !== a || b !== b) return a !== a && b !== b ? 0 : Infinity;
  const ord = (v: number) => {
    f32[0] = v;
    return i32[0] < 0 ? -(i32[0] & 0x7fffffff) : i32[0];
  };
  return Math.abs(ord(a) - ord(b));
}

/** A deterministic stream of uniforms in [0, 1). */
function uniforms(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32;
  };
}

/** Inputs that probe the tables' edges: exact erf grid ties, exp's reduction boundaries, ranges' ends. */
function edgeValues(): number[] {
  const v = [0, -0, Infinity, -Infinity, NaN, 1e-45, -1e-45, 1e-40, 1e-30, 3.4e38, -3.4e38, 1, -1];
  // Every erf grid tie (the index rounds ties to even) and grid point, and the ties of GELU's x/√2.
  for (let k = 0; k <= 6 * 64; k++) v.push((k + 0.5) / 64, -(k + 0.5) / 64, k / 64, ((k + 0.5) / 64) * Math.SQRT2);
  for (let k = -140 * 64; k <= 90 * 64; k += 97) v.push((k + 0.5) * (Math.LN2 / 64), k * (Math.LN2 / 64));
  v.push(88.72, 88.73, -87.3, -103.97, -104, 5.99999, 6, -6, 8.49, -8.49, 20, -20, 50, -50);
  return v.map(Math.fround);
}

Deno.test("fastExp is within 1-2 ulp of Math.exp in double, and matches it after f32 rounding", () => {
  const u = uniforms(7);
  let worst = 0, f32Diff = 0;
  const xs: number[] = [];
  for (let i = 0; i < 200000; i++) xs.push((u() - 0.5) * 40, (u() - 0.5) * 1400, (u() - 0.5) * 1e-6);
  for (const x of [...xs, ...edgeValues()]) {
    const a = fastExp(x), b = Math.exp(x);
    if (b >= 2.2250738585072014e-308 && Number.isFinite(b)) worst = Math.max(worst, ulps64(a, b));
    f32Diff = Math.max(f32Diff, ulps32(Math.fround(a), Math.fround(b)));
  }
  assert.ok(worst <= 2, `max ${worst} ulp from Math.exp`);
  assert.ok(f32Diff <= 1, `max ${f32Diff} f32 ulp`);
  const c = EXP_CONST;
  for (const x of [0, -0, Infinity, -Infinity, c.max + 1e-12, c.min - 1e-12, 1000, -1000, 1e-300]) {
    assert.equal(fastExp(x), Math.exp(x), `exp(${x})`);
  }
  assert.ok(Number.isNaN(fastExp(NaN)));
  // The subnormal range: still close (the last multiplication rounds once there).
  for (const x of [-709, -720, -740, -745]) assert.ok(Math.abs(fastExp(x) - Math.exp(x)) <= 2 * Math.exp(x) * 2 ** -40);
});

Deno.test("fastTanh is within ~1e-14 of Math.tanh, and matches it after f32 rounding", () => {
  const u = uniforms(11);
  let worstRel = 0, f32Diff = 0;
  const xs: number[] = [];
  for (let i = 0; i < 200000; i++) xs.push((u() - 0.5) * 60, (u() - 0.5) * 0.1, (u() - 0.5) * 1e-5);
  for (const x of [...xs, ...edgeValues(), 21.999, 22, -22, 1e-300, -1e-300, 5e-324]) {
    const a = fastTanh(x), b = Math.tanh(x);
    if (b !== 0 && Number.isFinite(b)) worstRel = Math.max(worstRel, Math.abs(a - b) / Math.abs(b));
    f32Diff = Math.max(f32Diff, ulps32(Math.fround(a), Math.fround(b)));
  }
  assert.ok(worstRel < 2e-14, `max relative error ${worstRel}`);
  assert.ok(f32Diff <= 1, `max ${f32Diff} f32 ulp`);
  for (const x of [0, -0, Infinity, -Infinity, 22, -22, 50]) assert.equal(fastTanh(x), Math.tanh(x), `tanh(${x})`);
  assert.ok(Number.isNaN(fastTanh(NaN)));
});

Deno.test("fastErf on the grid ties and its range ends matches the reference after f32 rounding", () => {
  for (const x of edgeValues()) {
    assert.ok(ulps32(Math.fround(fastErf(x)), Math.fround(erf(x))) <= 1, `erf(${x})`);
  }
  // From |x| = 6 on, ±1 exactly (the SIMD rendering clamps |x| to 6, whose table value must be 1).
  for (const x of [6, -6, 6.000001, 7, 1e30, Infinity, -Infinity]) assert.equal(fastErf(x), x < 0 ? -1 : 1);
});

Deno.test("fastErf: 600k samples within 1e-14 of the reference erf and within 1 f32 ulp", () => {
  const u = uniforms(13);
  let maxAbs = 0, f32Diff = 0;
  for (let i = 0; i < 200000; i++) {
    for (const x of [(u() - 0.5) * 14, (u() - 0.5) * 1e-3, Math.fround((u() - 0.5) * 8)]) {
      const a = fastErf(x), b = erf(x);
      maxAbs = Math.max(maxAbs, Math.abs(a - b));
      f32Diff = Math.max(f32Diff, ulps32(Math.fround(a), Math.fround(b)));
    }
  }
  assert.ok(maxAbs < 1e-14, `max |fastErf − erf| = ${maxAbs}`);
  assert.ok(f32Diff <= 1, `max ${f32Diff} f32 ulp`);
});

Deno.test({
  name: "f64x2 erf, exp, tanh, SiLU and tanh-GELU store the JS loop's NaN bits, whatever NaN comes in",
  ignore: !wasmElementwiseSupported(),
  fn() {
    const bits = new Uint32Array([0x7fc00000, 0xffc00000, 0x7f800001, 0xffffffff, 0x7fc12345]);
    // (Exact GELU and sigmoid do not yet: their NaN's sign and payload may differ between the paths.)
    for (const op of ["erf", "exp", "tanh", "silu", "gelu_tanh"] as UnaryOp[]) {
      const n = 1000, x = new Float32Array(n);
      for (let i = 0; i < n; i++) x[i] = i % 3 === 0 ? 0 : i / 100 - 5;
      const xb = new Uint32Array(x.buffer);
      for (let i = 0; i < n; i += 3) xb[i] = bits[(i / 3) % bits.length];
      const r = runAll(unaryProgram(op, "f32"), [{ buf: x, shape: [n], dtype: "f32" }]);
      assert.ok(r.applied);
      const simd = new Uint32Array(r.simd.buffer), js = new Uint32Array(r.js.buffer);
      for (let i = 0; i < n; i++) assert.equal(simd[i], js[i], `${op}: element ${i}`);
    }
  },
});

/** Runs `p` on `inputs` through the JS fast loop, the SIMD kernel (directly) and the reference loop. */
function runAll(p: ElementwiseProgram, inputs: TensorRef<CpuBuffer>[]) {
  const shape = broadcastShapes("test", ...inputs.map((t) => t.shape));
  const n = sizeOf(shape);
  const mk = () => ({ buf: new Float32Array(n), shape, dtype: "f32" as DType });
  const js = mk(), simd = mk(), ref = mk(), viaRunFast = mk();
  runFast(p, inputs, js, false);
  const applied = runWasmElementwise(p, planRuns(inputs.map((t) => t.shape), shape), inputs, simd);
  runFast(p, inputs, viaRunFast, true);
  runReference(p, inputs, ref);
  return { js: js.buf, simd: simd.buf, viaRunFast: viaRunFast.buf, ref: ref.buf, applied };
}

function f32Values(shape: number[], seed: number, scale = 8): TensorRef<CpuBuffer> {
  const n = sizeOf(shape), buf = new Float32Array(n), u = uniforms(seed), edges = edgeValues();
  for (let i = 0; i < n; i++) buf[i] = u() < 0.15 ? edges[i % edges.length] : (u() - 0.5) * scale;
  return { buf, shape, dtype: "f32" };
}

/**
 * f32 ulps between fast and reference results; for GELU programs, differences below 1e-14 in absolute
 * value do not count: GELU
 * for x < −7 is ½x(1 + erf(x/√2)) (or ½x(1 + tanh(…))), where 1 + erf cancels to the double rounding noise
 * of erf (~1e-16) in both paths — the reference erf and fastErf (which is ±1 beyond |x| = 6) each keep
 * their own noise.
 */
function fastVsRef(a: number, b: number, name: string): number {
  return name.includes("gelu") && Math.abs(a - b) <= 1e-14 ? 0 : ulps32(a, b);
}

function sameBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) assert.fail(`${what}: element ${i} is ${a[i]} vs ${b[i]}`);
  }
}

const UNARY: UnaryOp[] = ["exp", "erf", "tanh", "gelu", "gelu_tanh", "sigmoid", "silu"];
const ACTS: FusedActivation[] = ["gelu", "gelu_tanh", "silu"];

/** Every program the f64x2 kernel takes over, with its input count. */
function programs(): [string, ElementwiseProgram][] {
  const out: [string, ElementwiseProgram][] = UNARY.map((op) => [op, unaryProgram(op, "f32")]);
  for (const act of ACTS) {
    out.push([`biasAct ${act}`, biasActProgram(act, "f32")]);
    out.push([`actGrad ${act}`, actGradProgram(act, "f32", false)]);
    out.push([`actGrad ${act} bias`, actGradProgram(act, "f32", true)]);
  }
  return out;
}

Deno.test("the f64x2 kernel takes exactly the erf/exp/tanh programs and leaves log, sin and f64 to JS", () => {
  for (const [name, p] of programs()) assert.ok(f64Renderable(p), name);
  for (const op of ["log", "sin", "cos", "neg", "sqrt", "rsqrt", "relu"] as UnaryOp[]) {
    assert.equal(f64Renderable(unaryProgram(op, "f32")), false, op);
  }
  assert.equal(f64Renderable(unaryProgram("exp", "f64")), false, "f64");
  assert.equal(f64Renderable(actGradProgram("relu", "f32", false)), false, "relu backward");
});

// Shapes per input count: odd lengths, several chunks, row (bias) and column broadcasts, a scalar, and a
// transposed-looking broadcast whose inner run is strided (the kernel declines it; runFast falls back).
const SHAPES: Record<number, number[][][]> = {
  1: [[[1001]], [[2 * CHUNK + 3]], [[1]], [[7]]],
  2: [[[1001], [1001]], [[37, 301], [301]], [[301, 37], [301, 1]], [[5, 333], []], [[2 * CHUNK + 5], [2 * CHUNK + 5]]],
  3: [[[999], [999], [999]], [[37, 301], [37, 301], [301]], [[3, 5, 71], [3, 5, 71], [5, 1]]],
};

Deno.test({
  name: "f64x2 transcendental kernels are bit-identical to the JS fast loop and within 1 ulp of the reference",
  ignore: !wasmElementwiseSupported(),
  fn() {
    let seed = 1;
    for (const [name, p] of programs()) {
      for (const shapes of SHAPES[p.inputs.length]) {
        const inputs = shapes.map((s) => f32Values(s, seed++));
        const r = runAll(p, inputs);
        const what = `${name} ${shapes.map((s) => `[${s}]`).join(" ")}`;
        assert.ok(r.applied, `${what}: the SIMD kernel applies`);
        sameBits(r.simd, r.js, `${what} SIMD vs JS`);
        sameBits(r.viaRunFast, r.js, `${what} runFast(wasm) vs JS`);
        let worst = 0;
        for (let i = 0; i < r.js.length; i++) worst = Math.max(worst, fastVsRef(r.js[i], r.ref[i], name));
        assert.ok(worst <= 1, `${what}: ${worst} ulp from the reference`);
      }
    }
  },
});

Deno.test({
  name: "f64x2 kernels on large random samples: bit-identical to JS, ≤ 1 ulp from the reference",
  ignore: !wasmElementwiseSupported(),
  fn() {
    let seed = 100;
    for (const [name, p] of programs()) {
      for (const scale of [3, 30]) {
        const inputs = p.inputs.map(() => f32Values([200003], seed++, scale));
        const r = runAll(p, inputs);
        sameBits(r.simd, r.js, `${name} ×${scale} SIMD vs JS`);
        let worst = 0;
        for (let i = 0; i < r.js.length; i++) worst = Math.max(worst, fastVsRef(r.js[i], r.ref[i], name));
        assert.ok(worst <= 1, `${name} ×${scale}: ${worst} ulp from the reference`);
      }
    }
  },
});

Deno.test({
  name: "the f64x2 kernel declines a strided inner run (runFast then keeps the JS loop)",
  ignore: !wasmElementwiseSupported(),
  fn() {
    const p = unaryProgram("gelu", "f32");
    const x = f32Values([600], 9), out = { buf: new Float32Array(300), shape: [300], dtype: "f32" as DType };
    assert.equal(runWasmElementwise(p, { shape: [300], strides: [[2]] }, [x], out), false);
  },
});

/** Softmax (or log-softmax) of `x` along `axis` with the given CPU options. */
function softmaxWith(
  x: TensorRef<CpuBuffer>,
  axis: number,
  log: boolean,
  opts: { fastKernels: boolean; wasm: boolean },
): Float32Array {
  const prev = setCpuOptions(opts);
  try {
    const out = { buf: new Float32Array(x.buf.length), shape: x.shape, dtype: "f32" as DType };
    reduceKernels.softmax([x], [out], { axis, log });
    return out.buf;
  } finally {
    setCpuOptions(prev);
  }
}

Deno.test("fast softmax: the f64x2 exponentials are bit-identical to the JS fast loop, ≤ 1 ulp from the reference", () => {
  const cases: [number[], number][] = [
    [[300, 7], 1], // rows shorter than WASM_MIN_ROW: the JS loop
    [[129, 33], 1], // odd rows: a pair spills into the next row
    [[64, 1001], 1],
    [[3, 2 * SOFTMAX_CHUNK + 5], 1], // a row longer than a block
    [[5, 40, 17], 1], // a middle axis (inner > 1): the JS loop
    [[1, 16], 1],
  ];
  let seed = 300;
  for (const [shape, axis] of cases) {
    const x = f32Values(shape, seed++, 30);
    // Some rows of specials: all −∞, a +∞, a NaN.
    if (shape.length === 2 && shape[0] > 3) {
      x.buf.fill(-Infinity, 0, shape[1]);
      x.buf[shape[1] + 2] = Infinity;
      x.buf[2 * shape[1] + 1] = NaN;
    }
    for (const log of [false, true]) {
      const what = `${log ? "logSoftmax" : "softmax"} [${shape}]`;
      const js = softmaxWith(x, axis, log, { fastKernels: true, wasm: false });
      const simd = softmaxWith(x, axis, log, { fastKernels: true, wasm: true });
      const ref = softmaxWith(x, axis, log, { fastKernels: false, wasm: false });
      sameBits(simd, js, `${what} SIMD vs JS`);
      let worst = 0;
      for (let i = 0; i < js.length; i++) worst = Math.max(worst, ulps32(js[i], ref[i]));
      assert.ok(worst <= 1, `${what}: ${worst} ulp from the reference`);
    }
  }
  assert.ok(WASM_MIN_ROW > 7 && WASM_MIN_ROW <= 16);
});

Deno.test({
  name: "sigmoid's two branch exponentials share one e^(−|x|) in SIMD only where no other node needs them",
  ignore: !wasmElementwiseSupported(),
  fn() {
    const x = input(0, "f32");
    assert.equal(branchExclusiveExps(unaryProgram("sigmoid", "f32").out).size, 2);
    assert.equal(branchExclusiveExps(actGradProgram("silu", "f32", true).out).size, 2);
    // The same eˣ (or e^(−x)) node also used outside the select: no sharing.
    const e = exp(x), en = exp(neg(x));
    const sig = select(ge(x, 0), div(1, add(1, en)), div(e, add(1, e)));
    const outside = program(["f32"], add(sig, e));
    const outsideNeg = program(["f32"], mul(sig, en));
    assert.equal(branchExclusiveExps(program(["f32"], sig).out).size, 2);
    assert.equal(branchExclusiveExps(outside.out).size, 0);
    assert.equal(branchExclusiveExps(outsideNeg.out).size, 0);
    let seed = 500;
    for (const p of [outside, outsideNeg, unaryProgram("sigmoid", "f32")]) {
      const r = runAll(p, [f32Values([3001], seed++, 200)]);
      assert.ok(r.applied);
      sameBits(r.simd, r.js, `${p.key} SIMD vs JS`);
    }
  },
});
