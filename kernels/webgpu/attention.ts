/**
 * WebGPU kernels of the fused attention ops (f32): the rotary embedding and the scaled, masked softmax, each
 * way — the CPU kernels' formulas (`kernels/cpu/rotary.ts`, `kernels/cpu/masked_softmax.ts`).
 *
 * - rotary: one thread per feature pair. params: [pairs, h, T, inverse].
 * - maskedSoftmax and its backward: one thread per row, folding its keys in order (rows of attention scores are
 *   short and many; deterministic, no barriers). The mask is read in place through its broadcast geometry
 *   (`kernels/mask_geometry.ts`). params: [rows, Tk, Tq, scale (f32 bits), causal, ...geometry].
 *
 * A NaN or +∞ scaled score makes its row NaN, and masked keys give exactly 0 without computing exp(−∞), as in
 * the softmax kernels.
 *
 * @module
 */
import type { KernelFamily } from "../registry.ts";
import { maskGeometry } from "../mask_geometry.ts";
import { f32Bits, type GpuBuffer, type WebGpuRuntime } from "./runtime.ts";
import { FLOAT_HELPERS } from "../expr/wgsl.ts";
import { SOFTMAX_HELPERS } from "./reduce.ts";
import { MAIN_1D, WG } from "./wgsl.ts";

/** in0 = x, in1 = cos, in2 = sin; out0 = the rotated x. */
const ROTARY = `${MAIN_1D}
  let h = params[1];
  if (i >= params[0]) { return; }
  let r = i / h;
  let p = i % h;
  let a = (r % params[2]) * h + p;
  let c = in1[a];
  let s = select(in2[a], -in2[a], params[3] == 1u);
  let lo = r * 2u * h + p;
  let x1 = in0[lo];
  let x2 = in0[lo + h];
  out0[lo] = x1 * c + (-x2) * s;
  out0[lo + h] = x2 * c + x1 * s;
}`;

/** Row r's allowed keys: `last` (causal) and the mask offset `moff` / column stride `col` (mask in `maskIn`). */
function rowPrologue(maskIn: string | null): string {
  const mask = maskIn === null ? "" : `
  let lead = params[5];
  var rem = r;
  var moff = 0u;
  for (var d = lead; d > 0u; d--) {
    let size = params[5u + d];
    moff += (rem % size) * params[5u + lead + d];
    rem = rem / size;
  }
  let col = params[6u + 2u * lead];`;
  return `
  let r = i;
  if (r >= params[0]) { return; }
  let tk = params[1];
  let base = r * tk;
  let last = select(tk, (r % params[2]) + 1u, params[4] == 1u);
  let sc = f32p(3u);${mask}
  var has = false;
  for (var j = 0u; j < tk; j++) { if (ok(j)) { has = true; } }`;
}

/** The `ok(j)` test of a key, as a WGSL macro over the prologue's names. */
function okFn(maskIn: string | null): string {
  return maskIn === null ? "(j < last)" : `(j < last && ${maskIn}[moff + j * col] != 0u)`;
}

function forwardShader(hasMask: boolean): string {
  const ok = okFn(hasMask ? "in1" : null);
  return `${FLOAT_HELPERS}
${SOFTMAX_HELPERS}
${MAIN_1D}${rowPrologue(hasMask ? "in1" : null).replaceAll("ok(j)", ok)}
  if (!has) {
    for (var j = 0u; j < tk; j++) { out0[base + j] = 0.0; }
    return;
  }
  var m = -inff();
  for (var j = 0u; j < tk; j++) { if (${ok}) { m = comb(m, in0[base + j] * sc); } }
  var total = 0.0;
  for (var j = 0u; j < tk; j++) { if (${ok}) { total += exp(in0[base + j] * sc - m); } }
  let fin = finitef(m);
  for (var j = 0u; j < tk; j++) {
    let v = select(0.0, exp(in0[base + j] * sc - m) / total, ${ok});
    out0[base + j] = select(nanf(), v, fin);
  }
}`;
}

/** in0 = g, in1 = y [, in2 = mask]; out0 = dx. */
function backwardShader(hasMask: boolean): string {
  const ok = okFn(hasMask ? "in2" : null);
  return `${FLOAT_HELPERS}
${MAIN_1D}${rowPrologue(hasMask ? "in2" : null).replaceAll("ok(j)", ok)}
  let zero = 0.0 * sc;
  if (!has) {
    for (var j = 0u; j < tk; j++) { out0[base + j] = zero; }
    return;
  }
  var dot = 0.0;
  for (var j = 0u; j < tk; j++) { dot += in0[base + j] * in1[base + j]; }
  for (var j = 0u; j < tk; j++) {
    let y = in1[base + j];
    out0[base + j] = select(zero, y * (in0[base + j] - dot) * sc, ${ok});
  }
}`;
}

/** The attention family of the WebGPU backend. */
export function attentionKernels(
  rt: WebGpuRuntime,
): KernelFamily<GpuBuffer, "rotary" | "maskedSoftmax" | "maskedSoftmaxBackward"> {
  const shaders = new Map<string, string>();
  const shader = (key: string, build: () => string) => {
    let s = shaders.get(key);
    if (s === undefined) shaders.set(key, s = build());
    return s;
  };
  /** Dispatches a row kernel over `rows` of y's shape (x's for the forward), its inputs typed f32 but the mask. */
  function rowJob(
    code: string,
    inputs: { buf: GpuBuffer; shape: readonly number[] }[],
    out: GpuBuffer,
    shape: readonly number[],
    mask: { shape: readonly number[] } | undefined,
    scale: number,
    causal: boolean,
  ) {
    const tk = shape[shape.length - 1], tq = shape[shape.length - 2] ?? 1;
    const rows = tk === 0 ? 0 : shape.reduce((p, d) => p * d, 1) / tk;
    if (rows === 0) return;
    rt.dispatch({
      shader: code,
      inputTypes: inputs.map((t) => (t === mask ? "u32" : "f32")),
      outputTypes: ["f32"],
      inputs: inputs.map((t) => t.buf),
      outputs: [out],
      params: [rows, tk, tq, f32Bits(scale), causal ? 1 : 0, ...(mask ? maskGeometry(shape, mask.shape) : [0])],
      workgroups: Math.ceil(rows / WG),
    });
  }
  return {
    rotary(inputs, [out], { inverse }) {
      const shape = inputs[0].shape, d = shape[shape.length - 1];
      const pairs = shape.reduce((p, n) => p * n, 1) / 2;
      const params = [pairs, d / 2, shape[shape.length - 2], inverse ? 1 : 0];
      const buffers = inputs.map((t) => t.buf);
      if (pairs > 0) {
        const types = { inputTypes: ["f32", "f32", "f32"], outputTypes: ["f32"] };
        rt.dispatch({
          shader: ROTARY,
          ...types,
          inputs: buffers,
          outputs: [out.buf],
          params,
          workgroups: Math.ceil(pairs / WG),
        });
      }
    },
    maskedSoftmax(inputs, [out], { scale, causal, hasMask }) {
      const code = shader(`fwd:${hasMask}`, () => forwardShader(hasMask));
      rowJob(code, inputs, out.buf, inputs[0].shape, hasMask ? inputs[1] : undefined, scale, causal);
    },
    maskedSoftmaxBackward(inputs, [out], { scale, causal, hasMask }) {
      const code = shader(`bwd:${hasMask}`, () => backwardShader(hasMask));
      rowJob(code, inputs, out.buf, inputs[1].shape, hasMask ? inputs[2] : undefined, scale, causal);
    },
  };
}
