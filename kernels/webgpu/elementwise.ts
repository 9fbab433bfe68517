/**
 * WebGPU elementwise kernels: fill, random (Philox, the CPU's exact stream), cast, and the expression-defined
 * families — unary, binary, where and fused `elementwise` programs — rendered to WGSL from their one
 * definition (`kernels/expr/ops.ts`, `kernels/expr/wgsl.ts`), with NumPy broadcasting through per-input
 * strides.
 *
 * @module
 */
import { sizeOf } from "../../core/shape.ts";
import { broadcastStrides, shapesEqual } from "../../core/shape.ts";
import type { KernelFamily, TensorRef } from "../registry.ts";
import type { ElementwiseProgram } from "../expr/ir.ts";
import { binaryProgram, unaryProgram, whereProgram } from "../expr/ops.ts";
import { FLOAT_HELPERS, renderWgslElement } from "../expr/wgsl.ts";
import { f32Bits, type GpuBuffer, type WebGpuRuntime, wgslType } from "./runtime.ts";
import { coordWalkWgsl, MAIN_1D, WG } from "./wgsl.ts";

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
): KernelFamily<GpuBuffer, "fill" | "random" | "cast" | "unary" | "binary" | "where" | "elementwise"> {
  /** One thread per output element: reads each input (directly when every shape is the output's). */
  const run = (p: ElementwiseProgram, inputs: readonly TensorRef<GpuBuffer>[], out: TensorRef<GpuBuffer>) => {
    const n = sizeOf(out.shape);
    const same = inputs.every((t) => shapesEqual(t.shape, out.shape));
    const index = same ? inputs.map((_, k) => `let i${k} = i;`).join(" ") : broadcastIndexWgsl(inputs.length);
    const el = renderWgslElement(p, inputs.map((_, k) => `in${k}[i${k}]`));
    rt.dispatch({
      shader: `${FLOAT_HELPERS}\n${MAIN_1D} if (i >= params[0]) { return; } ${index}
  ${el.body}
  out0[i] = ${el.value}; }`,
      inputTypes: inputs.map((t) => wgslType(t.dtype)),
      outputTypes: [wgslType(out.dtype)],
      inputs: inputs.map((t) => t.buf),
      outputs: [out.buf],
      params: same ? [n] : broadcastParams(out, inputs),
      workgroups: Math.ceil(n / WG),
    });
  };
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
      run(unaryProgram(op, x.dtype), [x], out);
    },
    binary([a, b], [out], { op }) {
      run(binaryProgram(op, a.dtype), [a, b], out);
    },
    where([c, a, b], [out]) {
      run(whereProgram(out.dtype), [c, a, b], out);
    },
    elementwise(inputs, [out], { program }) {
      run(program, inputs, out);
    },
  };
}
