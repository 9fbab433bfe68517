/**
 * WebGPU layer normalisation over the last axis (f32), the same formulas as the CPU kernels
 * (`kernels/cpu/layer_norm.ts`): mean, biased variance with eps inside the square root, rstd.
 *
 * - forward: one workgroup per row. Each thread folds a strided slice of the row, a shared-memory tree combines
 *   the partials (mean first, then the sum of squared deviations), then the threads write y; thread 0 writes the
 *   row's mean and rstd.
 * - backward: two launches. dx: one workgroup per row (the two row sums Σĝ and Σĝ·x̂ in one vec2 tree);
 *   dweight and dbias: one thread per column, summing its rows in order (no atomics: deterministic).
 *
 * Bindings: forward in0 = x, then weight and bias when present; out0 = y, out1 = mean, out2 = rstd.
 * params: [rows, D, eps bits].
 *
 * @module
 */
import type { KernelFamily } from "../registry.ts";
import { f32Bits, type GpuBuffer, type WebGpuRuntime } from "./runtime.ts";
import { MAIN_1D, rowKernelMain, WG } from "./wgsl.ts";

/** Threads per row workgroup (a power of two). */
const R = 64;

const ROW_MAIN = rowKernelMain(R);

/** Sums `acc` (of type `T`) over the workgroup through `sv` (array<T, R>) into sv[0]; ends with a barrier. */
const TREE = `
  sv[t] = acc;
  workgroupBarrier();
  for (var s = ${R / 2}u; s > 0u; s = s >> 1u) {
    if (t < s) { sv[t] = sv[t] + sv[t + s]; }
    workgroupBarrier();
  }`;

function forwardShader(hasWeight: boolean, hasBias: boolean): string {
  const w = hasWeight ? " * in1[k]" : "";
  const b = hasBias ? ` + in${hasWeight ? 2 : 1}[k]` : "";
  return `var<workgroup> sv: array<f32, ${R}>;
${ROW_MAIN}
  var acc = 0.0;
  for (var k = t; k < n; k += ${R}u) { acc += in0[base + k]; }
  ${TREE}
  let mean = sv[0] / f32(n);
  workgroupBarrier();
  acc = 0.0;
  for (var k = t; k < n; k += ${R}u) { let c = in0[base + k] - mean; acc += c * c; }
  ${TREE}
  let rstd = 1.0 / sqrt(sv[0] / f32(n) + f32p(2u));
  for (var k = t; k < n; k += ${R}u) { out0[base + k] = (in0[base + k] - mean) * rstd${w}${b}; }
  if (t == 0u) { out1[row] = mean; out2[row] = rstd; }
}`;
}

/** dx per row: in0 = g, in1 = x, in2 = mean, in3 = rstd [, in4 = weight]; out0 = dx. */
function dxShader(hasWeight: boolean): string {
  const gw = hasWeight ? "in0[base + k] * in4[k]" : "in0[base + k]";
  return `var<workgroup> sv: array<vec2<f32>, ${R}>;
${ROW_MAIN}
  let mean = in2[row];
  let rstd = in3[row];
  var acc = vec2<f32>(0.0, 0.0);
  for (var k = t; k < n; k += ${R}u) {
    let gw = ${gw};
    acc += vec2<f32>(gw, gw * ((in1[base + k] - mean) * rstd));
  }
  ${TREE}
  let a = sv[0].x / f32(n);
  let c = sv[0].y / f32(n);
  for (var k = t; k < n; k += ${R}u) {
    let gw = ${gw};
    out0[base + k] = rstd * (gw - a - (in1[base + k] - mean) * rstd * c);
  }
}`;
}

/** dweight and dbias, one thread per column: in0 = g, in1 = x, in2 = mean, in3 = rstd; out0 = dw, out1 = db. */
const COLUMNS_SHADER = `${MAIN_1D}
  let rows = params[0];
  let n = params[1];
  if (i >= n) { return; }
  var sw = 0.0;
  var sb = 0.0;
  for (var r = 0u; r < rows; r++) {
    let g = in0[r * n + i];
    sw += g * ((in1[r * n + i] - in2[r]) * in3[r]);
    sb += g;
  }
  out0[i] = sw;
  out1[i] = sb;
}`;

/** The layer-norm family of the WebGPU backend. */
export function layerNormKernels(rt: WebGpuRuntime): KernelFamily<GpuBuffer, "layerNorm" | "layerNormBackward"> {
  const shaders = new Map<string, string>();
  const shader = (key: string, build: () => string) => {
    let s = shaders.get(key);
    if (s === undefined) shaders.set(key, s = build());
    return s;
  };
  return {
    layerNorm(inputs, [y, mean, rstd], { eps, hasWeight, hasBias }) {
      const x = inputs[0], n = x.shape[x.shape.length - 1], rows = mean.shape.reduce((p, d) => p * d, 1);
      if (rows * n === 0) return;
      rt.dispatch({
        shader: shader(`fwd:${hasWeight}:${hasBias}`, () => forwardShader(hasWeight, hasBias)),
        inputTypes: inputs.map(() => "f32"),
        outputTypes: ["f32", "f32", "f32"],
        inputs: inputs.map((t) => t.buf),
        outputs: [y.buf, mean.buf, rstd.buf],
        params: [rows, n, f32Bits(eps)],
        workgroups: rows,
      });
    },
    layerNormBackward(inputs, [dx, dw, db], { hasWeight }) {
      const x = inputs[1], n = x.shape[x.shape.length - 1], rows = inputs[2].shape.reduce((p, d) => p * d, 1);
      if (n === 0) return;
      // With no rows, only the column pass runs (its sums are 0).
      if (rows > 0) {
        rt.dispatch({
          shader: shader(`dx:${hasWeight}`, () => dxShader(hasWeight)),
          inputTypes: inputs.map(() => "f32"),
          outputTypes: ["f32"],
          inputs: inputs.map((t) => t.buf),
          outputs: [dx.buf],
          params: [rows, n],
          workgroups: rows,
        });
      }
      rt.dispatch({
        shader: COLUMNS_SHADER,
        inputTypes: ["f32", "f32", "f32", "f32"],
        outputTypes: ["f32", "f32"],
        inputs: inputs.slice(0, 4).map((t) => t.buf),
        outputs: [dw.buf, db.buf],
        params: [rows, n],
        workgroups: Math.ceil(n / WG),
      });
    },
  };
}
