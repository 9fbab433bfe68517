/**
 * Runs an elementwise program (`kernels/expr/ir.ts`) on CPU buffers: the element code rendered by
 * `kernels/expr/js.ts`, wrapped in a loop and compiled once per program and loop shape with `new Function`
 * (a loop specialised to one expression is monomorphic, which V8 optimises; a closure per element would be
 * a megamorphic call it never inlines).
 *
 * Two loop shapes, as the hand-written kernels had:
 * - **reference** (`fastKernels: false`): one flat loop over the output; operands that are not already of
 *   the output's shape are read through index arrays (`stridedOffsets`). Simple enough to trust: it is the
 *   oracle the other paths are tested against.
 * - **fast**: the broadcast is collapsed into inner runs (`runs.ts`) and a loop is compiled for the run's
 *   stride pattern (each operand contiguous, broadcast — read once, before the loop — or strided). f32
 *   programs the WebAssembly kernel can compute exactly go there instead (`wasm/elementwise.ts`).
 *
 * Both compute every element with the same double-precision expression, so they agree bit for bit.
 *
 * @module
 */
import { broadcastStrides, shapesEqual } from "../../core/shape.ts";
import type { TensorRef } from "../registry.ts";
import type { ElementwiseProgram } from "../expr/ir.ts";
import { JS_HELPERS, type JsMath, renderJsElement } from "../expr/js.ts";
import { type CpuBuffer, stridedOffsets } from "./buffer.ts";
import { erf } from "./math.ts";
import { fastErf, fastExp, fastTanh } from "./fast_math.ts";
import { forEachRun, planRuns } from "./runs.ts";
import { runWasmElementwise } from "./wasm/elementwise.ts";

/** A compiled fast inner run: (out, outOffset, n, then per operand: buffer, offset, stride). */
type RunFn = (o: CpuBuffer, oo: number, n: number, ...operands: (CpuBuffer | number)[]) => void;
/** A compiled reference loop: (out, n, then per operand: buffer, index array or null). */
type RefFn = (o: CpuBuffer, n: number, ...operands: (CpuBuffer | Int32Array | null)[]) => void;

const compiled = new Map<string, RunFn | RefFn>();

function compile<F>(key: string, params: string[], body: string): F {
  let f = compiled.get(key);
  if (!f) {
    // The helpers are closure constants of the compiled loop, so its calls to them are monomorphic.
    const factory = new Function(...JS_HELPERS, `"use strict"; return function (${params.join(", ")}) {\n${body}\n};`);
    f = factory(erf, fastErf, fastExp, fastTanh) as RunFn | RefFn;
    compiled.set(key, f);
  }
  return f as F;
}

/** How operand k is read along an inner run: contiguous, broadcast (one value) or any stride. */
type Stride = "1" | "0" | "s";

function runFn(p: ElementwiseProgram, pattern: readonly Stride[], math: JsMath): RunFn {
  const key = `run|${math}|${pattern.join("")}|${p.key}`;
  const cached = compiled.get(key);
  if (cached) return cached as RunFn;
  const params = ["o", "oo", "n"];
  const hoisted: string[] = [];
  const loads = pattern.map((s, k) => {
    params.push(`x${k}`, `o${k}`, `k${k}`);
    if (s === "0") {
      hoisted.push(`const s${k} = x${k}[o${k}];`);
      return `s${k}`;
    }
    return s === "1" ? `x${k}[o${k} + j]` : `x${k}[o${k} + j * k${k}]`;
  });
  const el = renderJsElement(p, loads, math);
  const body = `${hoisted.join("\n")}
for (let j = 0; j < n; j++) {
${el.body}
o[oo + j] = ${el.value};
}`;
  return compile<RunFn>(key, params, body);
}

function refFn(p: ElementwiseProgram, dense: boolean, math: JsMath): RefFn {
  const key = `ref|${math}|${dense}|${p.key}`;
  const cached = compiled.get(key);
  if (cached) return cached as RefFn;
  const params = ["o", "n"];
  const loads = p.inputs.map((_, k) => {
    params.push(`x${k}`, `i${k}`);
    return dense ? `x${k}[i]` : `x${k}[i${k}[i]]`;
  });
  const el = renderJsElement(p, loads, math);
  const body = `for (let i = 0; i < n; i++) {
${el.body}
o[i] = ${el.value};
}`;
  return compile<RefFn>(key, params, body);
}

/** The reference loop: flat over the output, index arrays for broadcast operands. */
export function runReference(
  p: ElementwiseProgram,
  inputs: readonly TensorRef<CpuBuffer>[],
  out: TensorRef<CpuBuffer>,
): void {
  const math: JsMath = "reference";
  const n = out.buf.length;
  if (inputs.every((t) => shapesEqual(t.shape, out.shape))) {
    refFn(p, true, math)(out.buf, n, ...inputs.flatMap((t) => [t.buf, null]));
    return;
  }
  const idx = stridedOffsets(out.shape, inputs.map((t) => broadcastStrides(t.shape, out.shape)), inputs.map(() => 0));
  refFn(p, false, math)(out.buf, n, ...inputs.flatMap((t, k) => [t.buf, idx[k]]));
}

/** Outputs smaller than this stay on the JavaScript loop (the WebAssembly call and copies cost more). */
export const WASM_MIN_ELEMENTS = 256;

/**
 * The fast loops: collapsed broadcast runs, one compiled loop per stride pattern — or, with `wasm` and a
 * program the SIMD kernel computes exactly (`wasm/elementwise.ts`), that kernel.
 */
export function runFast(
  p: ElementwiseProgram,
  inputs: readonly TensorRef<CpuBuffer>[],
  out: TensorRef<CpuBuffer>,
  wasm = false,
): void {
  const plan = planRuns(inputs.map((t) => t.shape), out.shape);
  if (wasm && out.buf.length >= WASM_MIN_ELEMENTS && runWasmElementwise(p, plan, inputs, out)) return;
  const r = plan.shape.length - 1;
  const steps = plan.strides.map((s) => s[r]);
  const fn = runFn(p, steps.map((s) => (s === 1 ? "1" : s === 0 ? "0" : "s")), "fast");
  const o = out.buf, bufs = inputs.map((t) => t.buf);
  const args: (CpuBuffer | number)[] = [];
  for (let k = 0; k < bufs.length; k++) args.push(bufs[k], 0, steps[k]);
  forEachRun(plan, (oo, offsets, n) => {
    for (let k = 0; k < bufs.length; k++) args[3 * k + 1] = offsets[k];
    fn(o, oo, n, ...args);
  });
}
