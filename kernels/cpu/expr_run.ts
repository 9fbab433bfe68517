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
import type { DType } from "../../core/dtype.ts";
import { broadcastStrides, shapesEqual } from "../../core/shape.ts";
import type { TensorRef } from "../registry.ts";
import type { ElementwiseProgram } from "../expr/ir.ts";
import { JS_HELPERS, type JsMath, renderJsElement } from "../expr/js.ts";
import { type CpuBuffer, stridedOffsets } from "./buffer.ts";
import { erf } from "./math.ts";
import { fastErf, fastExp, fastTanh } from "./fast_math.ts";
import { forEachRun, forEachRunIn, planRuns, type RunPlan } from "./runs.ts";
import { runParallel, threadMinimums } from "./threads/pool.ts";
import { f32Exact, runWasmElementwise } from "./wasm/elementwise.ts";

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
 * program the SIMD kernel computes exactly (`wasm/elementwise.ts`), that kernel. With `threads` > 1 and a
 * large enough output (`threadMinimums`), contiguous shares of the output run on the kernel
 * Workers (`threads/pool.ts`), each with the same loops, so the bits do not depend on the thread count.
 */
export function runFast(
  p: ElementwiseProgram,
  inputs: readonly TensorRef<CpuBuffer>[],
  out: TensorRef<CpuBuffer>,
  wasm = false,
  threads = 1,
): void {
  const plan = planRuns(inputs.map((t) => t.shape), out.shape);
  const total = out.buf.length;
  if (threads > 1 && total >= (wasm && f32Exact(p) ? threadMinimums.elementwiseSimd : threadMinimums.elementwiseJs)) {
    const size = unitSize(total, threads);
    const args = [size, total, plan.shape.length, ...plan.shape, ...plan.strides.flat()];
    const desc: ElementwiseDesc = { program: p, wasm };
    const views = [out.buf, ...inputs.map((t) => t.buf)], units = Math.ceil(total / size);
    if (runParallel("elementwise", `${wasm}|${p.key}`, desc, elementwiseUnit, views, args, units, threads)) return;
  }
  runRange(p, plan, inputs, out, wasm && total >= WASM_MIN_ELEMENTS);
}

/**
 * The fast loops over the output elements [from, to) (all of them by default); `wasm`: try the SIMD kernel
 * (decided from the whole output's size, so a thread's share takes the path the whole would).
 */
function runRange(
  p: ElementwiseProgram,
  plan: RunPlan,
  inputs: readonly TensorRef<CpuBuffer>[],
  out: TensorRef<CpuBuffer>,
  wasm: boolean,
  range?: readonly [number, number],
): void {
  if (wasm && runWasmElementwise(p, plan, inputs, out, range)) return;
  const r = plan.shape.length - 1;
  const steps = plan.strides.map((s) => s[r]);
  const fn = runFn(p, steps.map((s) => (s === 1 ? "1" : s === 0 ? "0" : "s")), "fast");
  const o = out.buf, bufs = inputs.map((t) => t.buf);
  const args: (CpuBuffer | number)[] = [];
  for (let k = 0; k < bufs.length; k++) args.push(bufs[k], 0, steps[k]);
  const each = (oo: number, offsets: number[], n: number) => {
    for (let k = 0; k < bufs.length; k++) args[3 * k + 1] = offsets[k];
    fn(o, oo, n, ...args);
  };
  if (range) forEachRunIn(plan, range[0], range[1], each);
  else forEachRun(plan, each);
}

/** Elements per unit of a threaded elementwise job: about four units per thread. */
function unitSize(total: number, threads: number): number {
  return Math.max(16, Math.ceil(total / (4 * threads) / 16) * 16);
}

/** What a Worker needs to run a share of an elementwise job. */
interface ElementwiseDesc {
  program: ElementwiseProgram;
  wasm: boolean;
}

/**
 * Unit `unit` of a threaded elementwise job: `views` = [out, ...inputs], `args` = [unit size, total, rank,
 * plan shape, plan strides per input]. Runs the fast loops on the unit's output range.
 */
export function elementwiseUnit(
  desc: ElementwiseDesc,
  views: readonly CpuBuffer[],
  args: ArrayLike<number>,
  unit: number,
): void {
  const size = args[0], total = args[1], rank = args[2], k = views.length - 1;
  const shape = Array.from({ length: rank }, (_, d) => args[3 + d]);
  const strides = Array.from(
    { length: k },
    (_, q) => Array.from({ length: rank }, (_, d) => args[3 + rank + q * rank + d]),
  );
  const p = desc.program, from = unit * size;
  const ref = (buf: CpuBuffer, dtype: DType): TensorRef<CpuBuffer> => ({ buf, shape: [buf.length], dtype });
  const inputs = views.slice(1).map((buf, q) => ref(buf, p.inputs[q]));
  const wasm = desc.wasm && total >= WASM_MIN_ELEMENTS;
  runRange(p, { shape, strides }, inputs, ref(views[0], p.out.type), wasm, [from, Math.min(total, from + size)]);
}
