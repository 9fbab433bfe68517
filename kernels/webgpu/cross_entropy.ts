/**
 * WebGPU softmax cross-entropy over the last axis (f32 logits, i32 targets), the CPU kernels' formulas
 * (`kernels/cpu/cross_entropy.ts`).
 *
 * - forward: one workgroup per row. The threads fold strided slices into the row max and Σx (two trees in one
 *   set of barriers), then Σ exp(x − max); thread 0 writes loss and lse. A NaN or infinite max makes the row NaN
 *   and −∞ entries are skipped, as in the softmax kernels. The target is read from storage, so it must not
 *   decide whether threads reach a barrier: every row runs the whole kernel and the ignored ones write 0.
 * - backward: one thread per logit.
 *
 * Targets outside [0, C) that are not ignored are clamped (the CPU raises an error; the GPU cannot).
 * params: [rows, C, ignoreIndex (i32 bits), labelSmoothing (f32 bits)].
 *
 * @module
 */
import type { KernelFamily } from "../registry.ts";
import { f32Bits, type GpuBuffer, type WebGpuRuntime } from "./runtime.ts";
import { FLOAT_HELPERS } from "../expr/wgsl.ts";
import { SOFTMAX_HELPERS } from "./reduce.ts";
import { MAIN_1D, rowKernelMain, WG } from "./wgsl.ts";

/** Threads per row workgroup (a power of two). */
const R = 64;

const FORWARD = `${FLOAT_HELPERS}
${SOFTMAX_HELPERS}
var<workgroup> sm: array<f32, ${R}>;
var<workgroup> ss: array<f32, ${R}>;
${rowKernelMain(R)}
  var m = -inff();
  var sx = 0.0;
  for (var k = t; k < n; k += ${R}u) { let v = in0[base + k]; m = comb(m, v); sx += v; }
  sm[t] = m;
  ss[t] = sx;
  workgroupBarrier();
  for (var s = ${R / 2}u; s > 0u; s = s >> 1u) {
    if (t < s) { sm[t] = comb(sm[t], sm[t + s]); ss[t] = ss[t] + ss[t + s]; }
    workgroupBarrier();
  }
  let mx = sm[0];
  let sumx = ss[0];
  workgroupBarrier();
  var total = 0.0;
  for (var k = t; k < n; k += ${R}u) {
    let v = in0[base + k];
    if (!isneginf(v)) { total += exp(v - mx); }
  }
  ss[t] = total;
  workgroupBarrier();
  for (var s = ${R / 2}u; s > 0u; s = s >> 1u) {
    if (t < s) { ss[t] = ss[t] + ss[t + s]; }
    workgroupBarrier();
  }
  if (t == 0u) {
    let lse = select(mx + log(ss[0]), nanf(), !finitef(mx));
    let tg = in1[row];
    let ignored = tg == i32p(2u);
    let nll = lse - in0[base + u32(clamp(tg, 0, i32(n) - 1))];
    let eps = f32p(3u);
    let loss = select(nll * (1.0 - eps) - eps * (sumx / f32(n) - lse), nll, eps == 0.0);
    out0[row] = select(loss, 0.0, ignored);
    out1[row] = select(lse, 0.0, ignored);
  }
}`;

/** in0 = logits, in1 = targets, in2 = lse, in3 = g; out0 = dlogits. */
const BACKWARD = `${FLOAT_HELPERS}
${SOFTMAX_HELPERS}
${MAIN_1D}
  let n = params[1];
  if (i >= params[0] * n) { return; }
  let r = i / n;
  let tg = in1[r];
  let x = in0[i];
  let p = select(exp(x - in2[r]), 0.0, isneginf(x));
  let eps = f32p(3u);
  let hot = select(0.0, 1.0 - eps, i32(i % n) == tg);
  out0[i] = select((p - hot - eps / f32(n)) * in3[r], 0.0, tg == i32p(2u));
}`;

/** The cross-entropy family of the WebGPU backend. */
export function crossEntropyKernels(
  rt: WebGpuRuntime,
): KernelFamily<GpuBuffer, "crossEntropy" | "crossEntropyBackward"> {
  const params = (rows: number, c: number, ignoreIndex: number, eps: number) => [
    rows,
    c,
    ignoreIndex >>> 0,
    f32Bits(eps),
  ];
  return {
    crossEntropy([logits, targets], [loss, lse], { ignoreIndex, labelSmoothing }) {
      const c = logits.shape[logits.shape.length - 1], rows = targets.shape.reduce((p, d) => p * d, 1);
      if (rows === 0) return;
      rt.dispatch({
        shader: FORWARD,
        inputTypes: ["f32", "i32"],
        outputTypes: ["f32", "f32"],
        inputs: [logits.buf, targets.buf],
        outputs: [loss.buf, lse.buf],
        params: params(rows, c, ignoreIndex, labelSmoothing),
        workgroups: rows,
      });
    },
    crossEntropyBackward([logits, targets, lse, g], [out], { ignoreIndex, labelSmoothing }) {
      const c = logits.shape[logits.shape.length - 1], rows = targets.shape.reduce((p, d) => p * d, 1);
      if (rows * c === 0) return;
      rt.dispatch({
        shader: BACKWARD,
        inputTypes: ["f32", "i32", "f32", "f32"],
        outputTypes: ["f32"],
        inputs: [logits.buf, targets.buf, lse.buf, g.buf],
        outputs: [out.buf],
        params: params(rows, c, ignoreIndex, labelSmoothing),
        workgroups: Math.ceil((rows * c) / WG),
      });
    },
  };
}
