/**
 * WebGPU elementwise kernels: fill, random (Philox, the CPU's exact stream), cast, unary, binary and where
 * (with NumPy broadcasting through per-input strides).
 *
 * @module
 */
import { sizeOf } from "../../core/shape.ts";
import { broadcastStrides, shapesEqual } from "../../core/shape.ts";
import type { BinaryOp, KernelFamily, TensorRef, UnaryOp } from "../registry.ts";
import { f32Bits, type GpuBuffer, type WebGpuRuntime, wgslType } from "./runtime.ts";
import { coordWalkWgsl, MAIN_1D, WG } from "./wgsl.ts";

/** WGSL helpers for float special values. `x != x` is not a reliable NaN test in WGSL (it may be folded). */
export const FLOAT_HELPERS = `
fn isnanf(x: f32) -> bool { let b = bitcast<u32>(x); return (b & 0x7f800000u) == 0x7f800000u && (b & 0x7fffffu) != 0u; }
fn nanf() -> f32 { return bitcast<f32>(0x7fc00000u); }
fn inff() -> f32 { return bitcast<f32>(0x7f800000u); }
fn erff(x: f32) -> f32 {
  // Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7, below f32 resolution of erf's range).
  let a = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-a * a);
  return select(y, -y, x < 0.0);
}
fn sigmoidf(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}
fn tanhf(x: f32) -> f32 { return tanh(clamp(x, -15.0, 15.0)); }
fn powf(a: f32, b: f32) -> f32 {
  // WGSL's pow is undefined for a <= 0; follow C's pow for those cases.
  if (isnanf(a) || isnanf(b)) { return nanf(); }
  if (b == 0.0) { return 1.0; }
  if (a == 0.0) { return select(0.0, inff(), b < 0.0); }
  if (a > 0.0) { return pow(a, b); }
  if (b != floor(b)) { return nanf(); }
  let r = pow(-a, b);
  return select(r, -r, abs(b % 2.0) == 1.0);
}
`;

const UNARY_F32: Record<Exclude<UnaryOp, "not" | "isnan">, string> = {
  neg: "-x",
  abs: "abs(x)",
  sign: "select(sign(x), nanf(), isnanf(x))",
  exp: "exp(x)",
  log: "select(select(log(x), -inff(), x == 0.0), nanf(), x < 0.0)",
  sqrt: "select(sqrt(x), nanf(), x < 0.0)",
  rsqrt: "select(select(inverseSqrt(x), inff(), x == 0.0), nanf(), x < 0.0)",
  tanh: "tanhf(x)",
  sigmoid: "sigmoidf(x)",
  relu: "select(max(x, 0.0), x, isnanf(x))",
  gelu: "0.5 * x * (1.0 + erff(x * 0.70710678118654752))",
  gelu_tanh: "0.5 * x * (1.0 + tanhf(0.79788456080286536 * (x + 0.044715 * x * x * x)))",
  silu: "x * sigmoidf(x)",
  erf: "erff(x)",
  sin: "sin(x)",
  cos: "cos(x)",
};

function unaryExpr(op: UnaryOp, type: string): string {
  if (op === "not") return "select(1u, 0u, x != 0u)";
  if (op === "isnan") return "select(0u, 1u, isnanf(x))";
  if (type === "i32") {
    if (op === "neg") return "-x";
    if (op === "abs") return "abs(x)";
    if (op === "sign") return "sign(x)";
    throw new Error(`webgpu: unary ${op} is not defined for i32`);
  }
  return UNARY_F32[op];
}

function binaryExpr(op: BinaryOp, type: string): string {
  const float = type === "f32";
  switch (op) {
    case "add":
      return "a + b";
    case "sub":
      return "a - b";
    case "mul":
      return "a * b";
    case "div":
      return "a / b";
    case "pow":
      return float ? "powf(a, b)" : "i32(powf(f32(a), f32(b)))";
    case "maximum":
      return float ? "select(max(a, b), nanf(), isnanf(a) || isnanf(b))" : "max(a, b)";
    case "minimum":
      return float ? "select(min(a, b), nanf(), isnanf(a) || isnanf(b))" : "min(a, b)";
    case "eq":
      return "select(0u, 1u, a == b)";
    case "ne":
      return "select(0u, 1u, a != b)";
    case "lt":
      return "select(0u, 1u, a < b)";
    case "le":
      return "select(0u, 1u, a <= b)";
    case "gt":
      return "select(0u, 1u, a > b)";
    case "ge":
      return "select(0u, 1u, a >= b)";
    case "and":
      return "select(0u, 1u, a != 0u && b != 0u)";
    case "or":
      return "select(0u, 1u, a != 0u || b != 0u)";
  }
}

/**
 * params layout of broadcasting kernels: [n, rank, shape[rank], strides of input 0[rank], …]. The shader
 * walks the output index from the last axis, accumulating each input's offset.
 */
function broadcastParams(out: TensorRef<GpuBuffer>, inputs: readonly TensorRef<GpuBuffer>[]): number[] {
  const rank = out.shape.length;
  return [
    sizeOf(out.shape),
    rank,
    ...out.shape,
    ...inputs.flatMap((t) => broadcastStrides(t.shape, out.shape)),
  ];
}

function broadcastIndexWgsl(nInputs: number): string {
  const decl = Array.from({ length: nInputs }, (_, j) => `var i${j} = 0u;`).join(" ");
  const acc = Array.from({ length: nInputs }, (_, j) => `i${j} += c * params[2u + rank * ${j + 1}u + k];`).join(" ");
  return coordWalkWgsl({ rank: "params[1]", shapeAt: 2, before: decl, body: acc });
}

const PHILOX = `
fn mulhi(a: u32, b: u32) -> u32 {
  let a0 = a & 0xffffu; let a1 = a >> 16u; let b0 = b & 0xffffu; let b1 = b >> 16u;
  let lolo = a0 * b0; let m1 = a1 * b0; let m2 = a0 * b1;
  let carry = ((lolo >> 16u) + (m1 & 0xffffu) + (m2 & 0xffffu)) >> 16u;
  return a1 * b1 + (m1 >> 16u) + (m2 >> 16u) + carry;
}
fn philox(c: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var x = c; var k = key;
  for (var r = 0u; r < 10u; r++) {
    let hi0 = mulhi(0xd2511f53u, x.x); let lo0 = 0xd2511f53u * x.x;
    let hi1 = mulhi(0xcd9e8d57u, x.z); let lo1 = 0xcd9e8d57u * x.z;
    x = vec4<u32>(hi1 ^ x.y ^ k.x, lo1, hi0 ^ x.w ^ k.y, lo0);
    k = k + vec2<u32>(0x9e3779b9u, 0xbb67ae85u);
  }
  return x;
}
fn unif(x: u32) -> f32 { return f32(x >> 8u) * 5.9604644775390625e-8; }
`;

/** The elementwise family of the WebGPU backend. */
export function elementwiseKernels(
  rt: WebGpuRuntime,
): KernelFamily<GpuBuffer, "fill" | "random" | "cast" | "unary" | "binary" | "where"> {
  return {
    fill(_inputs, [out], { value }) {
      const type = wgslType(out.dtype);
      const n = sizeOf(out.shape);
      const bits = type === "f32" ? f32Bits(value) : value >>> 0;
      rt.dispatch({
        shader: `${MAIN_1D} if (i >= params[0]) { return; } out0[i] = bitcast<${type}>(params[1]); }`,
        inputTypes: [],
        outputTypes: [type],
        inputs: [],
        outputs: [out.buf],
        params: [n, bits],
        workgroups: Math.ceil(n / WG),
      });
    },
    random(_inputs, [out], { dist, key, counter, loc, scale }) {
      const type = wgslType(out.dtype);
      const n = sizeOf(out.shape);
      const value = dist === "uniform"
        ? "p0 + p1 * unif(r[lane])"
        : dist === "int"
        ? "i32p(2u) + i32(mulhi(r[lane], params[3]))"
        : `p0 + p1 * select(rad * sin(th), rad * cos(th), (lane & 1u) == 0u)`;
      const normal = dist === "normal"
        ? "let j = lane & 2u; let rad = sqrt(-2.0 * log(1.0 - unif(r[j]))); let th = 6.283185307179586 * unif(r[j + 1u]);"
        : "";
      // One thread per Philox block (4 elements), exactly the CPU's layout.
      const shader = `${PHILOX}
${MAIN_1D}
  let blocks = (params[0] + 3u) / 4u;
  if (i >= blocks) { return; }
  let lo = params[4] + i;
  let hi = params[5] + select(0u, 1u, lo < params[4]);
  let r = philox(vec4<u32>(lo, hi, 0u, 0u), vec2<u32>(params[6], params[7]));
  let p0 = f32p(2u); let p1 = f32p(3u);
  for (var lane = 0u; lane < 4u; lane++) {
    let e = i * 4u + lane;
    if (e >= params[0]) { return; }
    ${normal}
    out0[e] = ${type}(${value});
  }
}`;
      const p = dist === "int" ? [loc >>> 0, scale >>> 0] : [f32Bits(loc), f32Bits(scale)];
      rt.dispatch({
        shader,
        inputTypes: [],
        outputTypes: [type],
        inputs: [],
        outputs: [out.buf],
        params: [n, 0, ...p, counter[0] >>> 0, counter[1] >>> 0, key[0] >>> 0, key[1] >>> 0],
        workgroups: Math.ceil(Math.ceil(n / 4) / WG),
      });
    },
    cast([x], [out]) {
      const from = wgslType(x.dtype), to = wgslType(out.dtype);
      const n = sizeOf(out.shape);
      let expr: string;
      if (from === to) expr = "x";
      else if (out.dtype === "bool") {
        expr = from === "f32" ? "select(0u, 1u, (bitcast<u32>(x) & 0x7fffffffu) != 0u)" : "select(0u, 1u, x != 0)";
      } else if (to === "i32" && from === "f32") expr = "select(i32(x), 0, isnanf(x))";
      else expr = `${to}(x)`;
      rt.dispatch({
        shader: `${FLOAT_HELPERS}\n${MAIN_1D} if (i >= params[0]) { return; } let x = in0[i]; out0[i] = ${expr}; }`,
        inputTypes: [from],
        outputTypes: [to],
        inputs: [x.buf],
        outputs: [out.buf],
        params: [n],
        workgroups: Math.ceil(n / WG),
      });
    },
    unary([x], [out], { op }) {
      const from = wgslType(x.dtype), to = wgslType(out.dtype);
      const n = sizeOf(out.shape);
      rt.dispatch({
        shader: `${FLOAT_HELPERS}\n${MAIN_1D} if (i >= params[0]) { return; } let x = in0[i]; out0[i] = ${
          unaryExpr(op, from)
        }; }`,
        inputTypes: [from],
        outputTypes: [to],
        inputs: [x.buf],
        outputs: [out.buf],
        params: [n],
        workgroups: Math.ceil(n / WG),
      });
    },
    binary([a, b], [out], { op }) {
      const type = wgslType(a.dtype), to = wgslType(out.dtype);
      const n = sizeOf(out.shape);
      const expr = binaryExpr(op, type);
      const same = shapesEqual(a.shape, out.shape) && shapesEqual(b.shape, out.shape);
      const index = same ? "let i0 = i; let i1 = i;" : broadcastIndexWgsl(2);
      rt.dispatch({
        shader: `${FLOAT_HELPERS}\n${MAIN_1D} if (i >= params[0]) { return; } ${index}
  let a = in0[i0]; let b = in1[i1]; out0[i] = ${expr}; }`,
        inputTypes: [type, type],
        outputTypes: [to],
        inputs: [a.buf, b.buf],
        outputs: [out.buf],
        params: same ? [n] : broadcastParams(out, [a, b]),
        workgroups: Math.ceil(n / WG),
      });
    },
    where([c, a, b], [out]) {
      const type = wgslType(out.dtype);
      const n = sizeOf(out.shape);
      rt.dispatch({
        shader: `${MAIN_1D} if (i >= params[0]) { return; } ${broadcastIndexWgsl(3)}
  out0[i] = select(in2[i2], in1[i1], in0[i0] != 0u); }`,
        inputTypes: ["u32", type, type],
        outputTypes: [type],
        inputs: [c.buf, a.buf, b.buf],
        outputs: [out.buf],
        params: broadcastParams(out, [c, a, b]),
        workgroups: Math.ceil(n / WG),
      });
    },
  };
}
