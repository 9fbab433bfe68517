/**
 * Renders an elementwise program (`ir.ts`) to WGSL: the code of one element, for the WebGPU kernels to wrap
 * in a shader. Arithmetic is in f32 (WGSL has no f64), so `round` nodes are no-ops and results agree with
 * the CPU within f32 rounding, not bit for bit; the parity tests compare with tolerances.
 *
 * WGSL leaves a few primitives undefined where the CPU defines them (log and sqrt of negatives, pow of
 * non-positive bases, tanh of large arguments on some drivers), so those render to the helpers in
 * {@link FLOAT_HELPERS}, which add the guards that give the CPU's answers. `bool` values are WGSL bools
 * inside the expression and u32 0/1 in storage.
 *
 * @module
 */
import type { DType } from "../../core/dtype.ts";
import { type ElementwiseProgram, type Expr, INFIX, nodeText, postorder, type TextTarget, useCounts } from "./ir.ts";

/**
 * WGSL helpers for float special values and the guarded primitives. `x != x` is not a reliable NaN test in
 * WGSL (it may be folded), hence the bit test.
 */
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
fn tanhf(x: f32) -> f32 { return tanh(clamp(x, -15.0, 15.0)); }
fn logf(x: f32) -> f32 { return select(select(log(x), -inff(), x == 0.0), nanf(), x < 0.0); }
fn sqrtf(x: f32) -> f32 { return select(sqrt(x), nanf(), x < 0.0); }
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

/** The WGSL storage type of a dtype (bool is stored as u32). */
export function wgslStorageType(dtype: DType): string {
  if (dtype === "f64") throw new TypeError("webgpu: f64 tensors are not supported on WebGPU (use f32)");
  return dtype === "bool" ? "u32" : dtype;
}

function constText(e: Expr & { kind: "const" }): string {
  switch (e.type) {
    case "bool":
      return e.value ? "true" : "false";
    case "i32":
      return `i32(${e.value | 0})`;
    default: {
      // Bit-exact and always valid (NaN, ±∞, values beyond f32's literal range) as a bitcast.
      const bits = new Uint32Array(new Float32Array([e.value]).buffer)[0];
      return `bitcast<f32>(0x${bits.toString(16)}u)`;
    }
  }
}

/** WGSL's vocabulary for {@link nodeText}. */
const WGSL_TARGET: TextTarget = {
  input: (k) => `v${k}`,
  constant: constText,
  unary(op, x) {
    switch (op) {
      case "neg":
        return `(-${x})`;
      case "not":
        return `(!${x})`;
      case "round":
        return x;
      case "abs":
      case "exp":
      case "sin":
      case "cos":
        return `${op}(${x})`;
      default: // sqrt, log, tanh, erf, isnan: the guarded helpers of FLOAT_HELPERS
        return `${op}f(${x})`;
    }
  },
  binary(op, a, b, e) {
    if (op === "pow") return e.a.type === "i32" ? `i32(powf(f32(${a}), f32(${b})))` : `powf(${a}, ${b})`;
    // WGSL orders no bools: compare them as 0/1.
    if (e.a.type === "bool" && ["lt", "le", "gt", "ge"].includes(op)) return `(u32(${a}) ${INFIX[op]} u32(${b}))`;
    return `(${a} ${INFIX[op]} ${b})`;
  },
  select: (c, a, b) => `select(${b}, ${a}, ${c})`,
};

/** The code of one element: `body` binds inputs and shared nodes; `value` is the stored value. */
export interface WgslElement {
  /** `let` statements. */
  body: string;
  /** The value to store, in the output's storage type. */
  value: string;
}

/** Renders one element of `p`; `loads[k]` reads input k's stored value (u32 for bool). */
export function renderWgslElement(p: ElementwiseProgram, loads: readonly string[]): WgslElement {
  const uses = useCounts(p.out);
  const names = new Map<Expr, string>();
  const lines: string[] = [];
  const render = (e: Expr): string => names.get(e) ?? renderNode(e);
  const renderNode = (e: Expr): string => nodeText(e, render, WGSL_TARGET);
  let temp = 0;
  const declared = new Set<number>();
  for (const e of postorder(p.out)) {
    if (e.kind === "input") {
      if (!declared.has(e.index)) {
        const load = loads[e.index];
        lines.push(`let v${e.index} = ${p.inputs[e.index] === "bool" ? `(${load} != 0u)` : load};`);
        declared.add(e.index);
      }
    } else if (e.kind !== "const" && (uses.get(e) ?? 0) > 1) {
      const name = `t${temp++}`;
      lines.push(`let ${name} = ${renderNode(e)};`);
      names.set(e, name);
    }
  }
  const v = render(p.out);
  return { body: lines.join("\n  "), value: p.out.type === "bool" ? `select(0u, 1u, ${v})` : v };
}
