/**
 * The expression definitions of the elementwise ops (kernels/expr/ops.ts), rendered to the CPU's reference
 * and fast loops, against the scalar functions the hand-written kernels used before the expressions
 * existed (kept here, verbatim, as an independent oracle): bit-identical for every op, dtype and a dense
 * sample of values with specials. And the renderers' mechanics: lazy binding of branch-only nodes, program
 * keys, type checks.
 */
import assert from "node:assert/strict";
import { allocArray, type DType } from "../../core/dtype.ts";
import type { BinaryOp, TensorRef, UnaryOp } from "../../kernels/registry.ts";
import type { CpuBuffer } from "../../kernels/cpu/buffer.ts";
import { erf, gelu, geluTanh, sigmoid } from "../../kernels/cpu/math.ts";
import { fastErf, fastExp, fastTanh } from "../../kernels/cpu/fast_math.ts";
import { runFast, runReference } from "../../kernels/cpu/expr_run.ts";
import { binaryProgram, unaryProgram, whereProgram } from "../../kernels/expr/ops.ts";
import { add, exp, ge, input, lit, mul, program, round, select } from "../../kernels/expr/ir.ts";
import { renderJsElement } from "../../kernels/expr/js.ts";
import { renderWgslElement } from "../../kernels/expr/wgsl.ts";

type F1 = (x: number) => number;
type F2 = (a: number, b: number) => number;

// The scalar definitions of the kernels before issue 14 (kernels/cpu/elementwise.ts at 45cb2c4).
const OLD_UNARY: Record<UnaryOp, F1> = {
  neg: (x) => -x,
  abs: Math.abs,
  sign: (x) => (x > 0 ? 1 : x < 0 ? -1 : x === 0 ? 0 : NaN),
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  tanh: Math.tanh,
  sigmoid,
  relu: (x) => (x > 0 ? x : x === x ? 0 : NaN),
  gelu,
  gelu_tanh: geluTanh,
  silu: (x) => x * sigmoid(x),
  erf,
  sin: Math.sin,
  cos: Math.cos,
  not: (x) => (x ? 0 : 1),
  isnan: (x) => (x !== x ? 1 : 0),
};
/** The f32 fast path's versions: the table-driven erf, exp and tanh of fast_math.ts in the same formulas. */
function fastSigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + fastExp(-x));
  const e = fastExp(x);
  return e / (1 + e);
}
const FAST_F32: Partial<Record<UnaryOp, F1>> = {
  erf: fastErf,
  exp: fastExp,
  tanh: fastTanh,
  gelu: (v) => 0.5 * v * (1 + fastErf(v * Math.SQRT1_2)),
  gelu_tanh: (v) => 0.5 * v * (1 + fastTanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v))),
  sigmoid: fastSigmoid,
  silu: (v) => v * fastSigmoid(v),
};
const OLD_BINARY: Record<BinaryOp, F2> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: Math.pow,
  maximum: (a, b) => (a !== a || b !== b ? NaN : a > b ? a : b),
  minimum: (a, b) => (a !== a || b !== b ? NaN : a < b ? a : b),
  eq: (a, b) => (a === b ? 1 : 0),
  ne: (a, b) => (a !== b ? 1 : 0),
  lt: (a, b) => (a < b ? 1 : 0),
  le: (a, b) => (a <= b ? 1 : 0),
  gt: (a, b) => (a > b ? 1 : 0),
  ge: (a, b) => (a >= b ? 1 : 0),
  and: (a, b) => (a && b ? 1 : 0),
  or: (a, b) => (a || b ? 1 : 0),
};

const SPECIALS = [0, -0, Infinity, -Infinity, NaN, 1, -1, 2, 0.5, -0.5, 3, -3, 6, -6, 1e-30, -1e-30, 40, -40, 100];

function sample(dtype: DType, n: number, seed: number): CpuBuffer {
  const buf = allocArray(dtype, n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const u = s / 2 ** 32;
    if (dtype === "bool") buf[i] = u < 0.5 ? 1 : 0;
    else if (dtype === "i32") buf[i] = Math.floor(u * 21) - 10;
    else buf[i] = i < SPECIALS.length ? SPECIALS[i] : (u - 0.5) * (i % 3 === 0 ? 20 : 4);
  }
  return buf;
}

function sameBits(got: CpuBuffer, want: CpuBuffer, what: string): void {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i])) assert.fail(`${what}: element ${i} is ${got[i]}, oracle ${want[i]}`);
  }
}

const ref = (buf: CpuBuffer, dtype: DType): TensorRef<CpuBuffer> => ({ buf, shape: [buf.length], dtype });
const N = 2000;

Deno.test("every unary op's expression renders to loops bit-identical to the old scalar definition", () => {
  for (const op of Object.keys(OLD_UNARY) as UnaryOp[]) {
    const dtypes: DType[] = op === "not" ? ["bool"] : ["neg", "abs", "sign"].includes(op) ? ["f32", "f64", "i32"] : [
      "f32",
      "f64",
    ];
    for (const dtype of dtypes) {
      const x = sample(dtype, N, 17);
      const p = unaryProgram(op, dtype);
      const outType = p.out.type;
      const want = allocArray(outType, N);
      // The fast path into f32 uses the table-driven erf, exp and tanh (the reference functions elsewhere).
      const f = (dtype === "f32" ? FAST_F32[op] : undefined) ?? OLD_UNARY[op];
      const wantRef = allocArray(outType, N);
      for (let i = 0; i < N; i++) {
        want[i] = f(x[i]);
        wantRef[i] = OLD_UNARY[op](x[i]);
      }
      const fast = allocArray(outType, N), reference = allocArray(outType, N);
      runFast(p, [ref(x, dtype)], ref(fast, outType));
      runReference(p, [ref(x, dtype)], ref(reference, outType));
      sameBits(fast, want, `fast ${op} ${dtype}`);
      sameBits(reference, wantRef, `reference ${op} ${dtype}`);
    }
  }
});

Deno.test("every binary op's expression renders to loops bit-identical to the old scalar definition", () => {
  for (const op of Object.keys(OLD_BINARY) as BinaryOp[]) {
    const dtypes: DType[] = op === "and" || op === "or"
      ? ["bool"]
      : op === "div" || op === "pow"
      ? ["f32", "f64"]
      : ["f32", "f64", "i32", "bool"];
    for (const dtype of dtypes) {
      if (dtype === "bool" && !["eq", "ne", "and", "or"].includes(op)) continue;
      const a = sample(dtype, N, 5), b = sample(dtype, N, 9);
      b.set(a.subarray(0, 200), 300); // ties
      const p = binaryProgram(op, dtype);
      const outType = p.out.type;
      const want = allocArray(outType, N);
      for (let i = 0; i < N; i++) want[i] = OLD_BINARY[op](a[i], b[i]);
      for (const runner of [runFast, runReference]) {
        const got = allocArray(outType, N);
        runner(p, [ref(a, dtype), ref(b, dtype)], ref(got, outType));
        sameBits(got, want, `${runner.name} ${op} ${dtype}`);
      }
    }
  }
});

Deno.test("where's expression matches cond ? a : b, broadcast", () => {
  const c = sample("bool", 12, 3), a = sample("f32", 4, 4), b = sample("f32", 3, 5);
  const p = whereProgram("f32");
  for (const runner of [runFast, runReference]) {
    const out = { buf: allocArray("f32", 12), shape: [3, 4], dtype: "f32" as DType };
    runner(p, [{ buf: c, shape: [3, 4], dtype: "bool" }, { buf: a, shape: [4], dtype: "f32" }, {
      buf: b,
      shape: [3, 1],
      dtype: "f32",
    }], out);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 4; j++) {
        assert.ok(Object.is(out.buf[i * 4 + j], Math.fround(c[i * 4 + j] ? a[j] : b[i])), `${runner.name} ${i},${j}`);
      }
    }
  }
});

Deno.test("js renderer: a node used only in one select branch is bound there, not for every element", () => {
  const x = input(0, "f64");
  const e = exp(x);
  const p = program(["f64"], select(ge(x, 0), add(e, mul(e, 2)), lit(0, "f64")));
  const el = renderJsElement(p, ["x0[i]"], "reference");
  assert.match(el.body, /^let t0;/);
  assert.match(el.value, /\(t0 = Math\.exp\(v0\)\)/);
  // Used on both branches: bound once at the top.
  const q = program(["f64"], select(ge(x, 0), e, mul(e, 2)));
  assert.match(renderJsElement(q, ["x0[i]"], "reference").body, /const t0 = Math\.exp\(v0\);/);
});

Deno.test("programs: equal expressions have equal keys; round is a no-op off f32; types are checked", () => {
  const build = () => program(["f32"], round(mul(add(input(0, "f32"), 1), 2)));
  assert.equal(build().key, build().key);
  assert.notEqual(build().key, program(["f32"], mul(add(input(0, "f32"), 1), 2)).key);
  const x64 = input(0, "f64");
  assert.equal(round(x64), x64);
  assert.throws(() => add(input(0, "f32"), input(1, "f64")), /types differ/);
  assert.throws(() => program(["f64"], input(0, "f32")), /declared f64/);
});

Deno.test("wgsl renderer: bools are u32 in storage, constants are exact bitcasts", () => {
  const p = binaryProgram("lt", "f32");
  const el = renderWgslElement(p, ["in0[i0]", "in1[i1]"]);
  assert.equal(el.value, "select(0u, 1u, (v0 < v1))");
  const q = unaryProgram("relu", "f32");
  assert.match(renderWgslElement(q, ["in0[i0]"]).body + renderWgslElement(q, ["in0[i0]"]).value, /0x7fc00000u/);
});
