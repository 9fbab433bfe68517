/**
 * Elementwise programs (`kernels/expr/ir.ts`) on WebAssembly 128-bit SIMD: the expression is rendered to a
 * loop over f32x4 vectors, emitted with our assembler at run time and compiled once per program and stride
 * pattern.
 *
 * ## Only where it is exact
 * The CPU's JavaScript loops compute every element in double precision and round once when they store
 * (`kernels/expr/js.ts`). An f32x4 instruction rounds its own result to f32. The two agree exactly when
 * every rounding operation (+, −, ×, ÷, √) takes f32 operands and its result is rounded to f32 before
 * anything else uses it: rounding the exact result to double and then to f32 equals rounding it to f32
 * directly for these operations (double has more than 2·24 + 2 bits), and neg, abs, comparisons and
 * selects are exact. {@link f32Exact} checks that rule on a program: single arithmetic ops, `where`, relu,
 * maximum/minimum and fused chains that round between their steps (as the unfused ops did) qualify;
 * double-precision constants (x·√½), chains without rounding (1/√x) and transcendentals (exp, erf, tanh…)
 * do not, and keep their JavaScript loop — so results never change with the path. Programs with erf, exp
 * or tanh (GELU, SiLU, sigmoid, their fused chains) have a kernel on double lanes instead, bit-identical to
 * the JavaScript fast loop: `elementwise_f64.ts`.
 *
 * ## Memory
 * CPU tensors are JavaScript typed arrays outside the module's memory, so each inner run is processed in
 * chunks of {@link CHUNK} elements: the operands' chunks are copied in (a broadcast operand: its one value),
 * the loop runs over whole vectors (lanes past the end compute garbage that is not copied out), and the
 * result is copied back. The chunk stays in L1/L2, so the copies cost little next to the scalar loop they
 * replace; for arrays far larger than the caches both are bound by memory bandwidth.
 *
 * @module
 */
import type { TensorRef } from "../../registry.ts";
import type { ElementwiseProgram, Expr } from "../../expr/ir.ts";
import { add, exp, input, postorder, program } from "../../expr/ir.ts";
import type { CpuBuffer } from "../buffer.ts";
import { forEachRun, forEachRunIn, type RunPlan } from "../runs.ts";
import type { SimdOpName } from "./assembler.ts";
import { emitLoopModule, type LaneEmitter } from "./elementwise_loop.ts";
import { emitElementwiseF64Module, f64Renderable, F64X2_UNROLL } from "./elementwise_f64.ts";
import { TABLE_BYTES, writeTables } from "./transcendental.ts";
import { currentTensorMemory, SCRATCH_BYTES } from "./heap.ts";

/** Elements per chunk: 16 KB per f32 operand, so a program's operands and output stay in L1/L2. */
export const CHUNK = 4096;

/** How a node's value relates to the JavaScript rendering's: see the module docs. */
type Exactness = "f32" | "pending" | "mask" | null;

/** Classifies every node; null anywhere means the program is not exact in f32x4. */
function classify(p: ElementwiseProgram): Map<Expr, Exactness> {
  const cls = new Map<Expr, Exactness>();
  for (const e of postorder(p.out)) {
    const c = (x: Expr) => cls.get(x) ?? null;
    let k: Exactness = null;
    switch (e.kind) {
      case "input":
        k = e.type === "f32" ? "f32" : e.type === "bool" ? "mask" : null;
        break;
      case "const":
        if (e.type === "bool") k = "mask";
        else if (e.type === "f32" && (Object.is(Math.fround(e.value), e.value) || e.value !== e.value)) k = "f32";
        break;
      case "unary": {
        const x = c(e.x);
        if (e.op === "neg" || e.op === "abs") k = x === "f32" || x === "pending" ? x : null;
        else if (e.op === "sqrt") k = x === "f32" ? "pending" : null;
        else if (e.op === "round") k = x === "f32" || x === "pending" ? "f32" : null;
        else if (e.op === "isnan") k = x === "f32" || x === "pending" ? "mask" : null; // rounding keeps NaN-ness
        else if (e.op === "not") k = x === "mask" ? "mask" : null;
        break;
      }
      case "binary": {
        const a = c(e.a), b = c(e.b);
        if (["add", "sub", "mul", "div"].includes(e.op)) k = a === "f32" && b === "f32" ? "pending" : null;
        else if (["lt", "le", "gt", "ge", "eq", "ne"].includes(e.op)) k = a === "f32" && b === "f32" ? "mask" : null;
        else if (e.op === "and" || e.op === "or") k = a === "mask" && b === "mask" ? "mask" : null;
        break;
      }
      case "select": {
        const a = c(e.a), b = c(e.b);
        if (c(e.cond) === "mask" && (a === "f32" || a === "pending") && (b === "f32" || b === "pending")) {
          k = a === "f32" && b === "f32" ? "f32" : "pending";
        }
        break;
      }
    }
    cls.set(e, k);
  }
  return cls;
}

/**
 * Whether the f32x4 rendering of `p` gives exactly the JavaScript rendering's results: f32 output, f32 or
 * bool inputs, and the rounding rule of the module docs.
 */
export function f32Exact(p: ElementwiseProgram): boolean {
  let ok = exactCache.get(p.key);
  if (ok === undefined) {
    ok = p.out.type === "f32" && [...classify(p).values()].every((v) => v !== null);
    exactCache.set(p.key, ok);
  }
  return ok;
}
const exactCache = new Map<string, boolean>();

const F32_OPS: Record<string, SimdOpName> = {
  add: "f32x4.add",
  sub: "f32x4.sub",
  mul: "f32x4.mul",
  div: "f32x4.div",
  lt: "f32x4.lt",
  le: "f32x4.le",
  gt: "f32x4.gt",
  ge: "f32x4.ge",
  eq: "f32x4.eq",
  ne: "f32x4.ne",
  and: "v128.and",
  or: "v128.or",
};

function constBytes(e: Expr & { kind: "const" }): Uint8Array {
  if (e.type === "bool") return new Uint8Array(16).fill(e.value ? 0xff : 0);
  return new Uint8Array(new Float32Array(4).fill(e.value).buffer);
}

/**
 * Emits the module of `p` for one stride pattern (`contiguous[k]`: input k advances with the run, else it is
 * broadcast): it imports `env.memory` and exports `run(bytes, out, in0, in1, …)`, which computes
 * `bytes / 16` vectors (byte addresses; bool inputs hold one byte per element, f32 ones four).
 */
export function emitElementwiseModule(
  p: ElementwiseProgram,
  contiguous: readonly boolean[],
  sharedMemory = false,
): Uint8Array<ArrayBuffer> {
  if (!f32Exact(p)) throw new Error("wasm elementwise: the program is not exact in f32x4");
  return emitLoopModule(p, contiguous, F32X4_LANES, sharedMemory);
}

/** f32x4 lanes: every node is one SIMD instruction on f32 values (or i32x4 masks for bools). */
const F32X4_LANES: LaneEmitter = {
  step: 16,
  node(e, { f, i, zero, contiguous, inPtr, get }) {
    switch (e.kind) {
      case "input": {
        const bool = e.type === "bool";
        if (!contiguous[e.index]) {
          f.get(inPtr(e.index)).simdLoad(bool ? "v128.load8_splat" : "v128.load32_splat");
        } else if (bool) {
          f.get(inPtr(e.index)).get(i).i32Const(2).i32ShrU().i32Add().simdLoad("v128.load32_zero", 0, 0);
        } else f.get(inPtr(e.index)).get(i).i32Add().v128Load(0, 2);
        // 4 bytes (or one, splat) of bools → an i32x4 mask of all-ones / zeros.
        if (bool) f.get(zero).simdOp("i8x16.ne").simdOp("i16x8.extend_low_i8x16_s").simdOp("i32x4.extend_low_i16x8_s");
        break;
      }
      case "const":
        f.v128Const(constBytes(e));
        break;
      case "unary":
        get(e.x);
        if (e.op === "neg") f.simdOp("f32x4.neg");
        else if (e.op === "abs") f.simdOp("f32x4.abs");
        else if (e.op === "sqrt") f.simdOp("f32x4.sqrt");
        else if (e.op === "isnan") get(e.x).simdOp("f32x4.ne");
        else if (e.op === "not") f.simdOp("v128.not");
        // round: the value is already an f32 lane.
        break;
      case "binary":
        get(e.a);
        get(e.b);
        f.simdOp(F32_OPS[e.op]);
        break;
      case "select":
        get(e.a);
        get(e.b);
        get(e.cond);
        f.simdOp("v128.bitselect");
        break;
    }
  },
  store({ f, i }, out, value) {
    f.get(out).get(i).i32Add().get(value).v128Store(0, 2);
  },
};

type RunExport = (bytes: number, out: number, ...inputs: number[]) => void;

/** Which kernel computes a program: f32x4 lanes (`f32Exact`), f64x2 lanes (`f64Renderable`) or none. */
function laneKind(p: ElementwiseProgram): "f32x4" | "f64x2" | null {
  return f32Exact(p) ? "f32x4" : f64Renderable(p) ? "f64x2" : null;
}

/**
 * The modules compiled so far, their shared memory and views of it. The memory starts with the tables of
 * `transcendental.ts` (written once); the work areas follow at `TABLE_BYTES`.
 */
class Runtime {
  readonly memory = new WebAssembly.Memory({ initial: Math.ceil((TABLE_BYTES + 1) / 65536) });
  readonly modules = new Map<string, RunExport>();
  constructor() {
    writeTables(this.memory);
  }
  f32 = new Float32Array(this.memory.buffer);
  u8 = new Uint8Array(this.memory.buffer);
  ensure(bytes: number): void {
    const have = this.memory.buffer.byteLength;
    if (bytes > have) this.memory.grow(Math.ceil((bytes - have) / 65536));
    if (this.f32.buffer !== this.memory.buffer) {
      this.f32 = new Float32Array(this.memory.buffer);
      this.u8 = new Uint8Array(this.memory.buffer);
    }
  }
  fn(p: ElementwiseProgram, contiguous: readonly boolean[]): RunExport {
    return this.#compile(this.modules, p, contiguous, this.memory, false);
  }
  /** Modules on the tensor memory (in place), and the memory they were made for. */
  readonly inPlace = new Map<string, RunExport>();
  #inPlaceMemory: WebAssembly.Memory | null = null;
  /** The module of `p` running on `memory`, where the arrays are. */
  fnInPlace(p: ElementwiseProgram, contiguous: readonly boolean[], memory: WebAssembly.Memory): RunExport {
    if (this.#inPlaceMemory !== memory) {
      this.inPlace.clear();
      this.#inPlaceMemory = memory;
    }
    return this.#compile(this.inPlace, p, contiguous, memory, true);
  }
  #compile(
    cache: Map<string, RunExport>,
    p: ElementwiseProgram,
    contiguous: readonly boolean[],
    memory: WebAssembly.Memory,
    shared: boolean,
  ): RunExport {
    const key = `${contiguous.map((c) => (c ? 1 : 0)).join("")}|${p.key}`;
    let run = cache.get(key);
    if (!run) {
      const bytes = laneKind(p) === "f32x4"
        ? emitElementwiseModule(p, contiguous, shared)
        : emitElementwiseF64Module(p, contiguous, shared);
      const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
      run = instance.exports.run as RunExport;
      cache.set(key, run);
    }
    return run;
  }
}

/** Inputs of one program whose broadcast value can be staged in the thread's scratch, 16 bytes each. */
const BROADCAST_SLOTS = 16;

let runtime: Runtime | null | undefined;

/** The process-wide runtime; null where WebAssembly SIMD is unavailable. */
function shared(): Runtime | null {
  if (runtime === undefined) {
    runtime = null;
    try {
      const probe = { inputs: ["f32"], out: { kind: "input", index: 0, type: "f32" }, key: "probe" } as const;
      const x = input(0, "f32"), probeF64 = program(["f32"], exp(x));
      if (
        typeof WebAssembly === "object" && WebAssembly.validate(emitElementwiseModule(probe, [true])) &&
        WebAssembly.validate(emitElementwiseF64Module(probeF64, [true]))
      ) {
        runtime = new Runtime();
      }
    } catch {
      runtime = null;
    }
  }
  return runtime;
}

/** Whether the WebAssembly elementwise kernels can run here (SIMD validates). */
export function wasmElementwiseSupported(): boolean {
  return shared() !== null;
}

/**
 * Runs `p` over `plan` (the collapsed broadcast of `inputs` to `out`, see `runs.ts`) on WebAssembly SIMD.
 * Returns false, having done nothing, when it does not apply: SIMD unavailable, a program that is neither
 * {@link f32Exact} nor `f64Renderable` (`elementwise_f64.ts`), or an inner run with a stride other than 0
 * or 1. With `range`, only the output elements [range[0], range[1]) (a thread's share, see
 * `../threads/pool.ts`).
 */
export function runWasmElementwise(
  p: ElementwiseProgram,
  plan: RunPlan,
  inputs: readonly TensorRef<CpuBuffer>[],
  out: TensorRef<CpuBuffer>,
  range?: readonly [number, number],
): boolean {
  const rt = shared();
  const lanes = rt && out.buf instanceof Float32Array ? laneKind(p) : null;
  if (!rt || !lanes) return false;
  const r = plan.shape.length - 1;
  const steps = plan.strides.map((s) => s[r]);
  if (steps.some((s) => s !== 0 && s !== 1)) return false;
  const contiguous = steps.map((s) => s === 1);
  const run = rt.fn(p, contiguous);
  const inPlace = inPlaceRunner(rt, p, contiguous, inputs, out);
  // Regions of CHUNK·4 bytes after the tables: the output, then one per input.
  const region = CHUNK * 4, k = inputs.length;
  rt.ensure(TABLE_BYTES + region * (k + 1));
  const bases = inputs.map((_, q) => TABLE_BYTES + region * (q + 1));
  // Elements one loop iteration computes: `run` takes whole iterations (lanes past the end are garbage).
  const vector = lanes === "f32x4" ? 4 : 2 * F64X2_UNROLL, outAt = TABLE_BYTES >> 2;
  const o = out.buf, bufs = inputs.map((t) => t.buf);
  const each = (oo: number, offsets: number[], n: number) => {
    const f32 = rt.f32, u8 = rt.u8;
    for (let q = 0; q < k; q++) {
      if (contiguous[q]) continue;
      const b = bufs[q];
      if (b instanceof Uint8Array) u8[bases[q]] = b[offsets[q]];
      else f32[bases[q] >> 2] = b[offsets[q]];
    }
    for (let s = 0; s < n; s += CHUNK) {
      const len = Math.min(CHUNK, n - s);
      for (let q = 0; q < k; q++) {
        if (!contiguous[q]) continue;
        const b = bufs[q], from = offsets[q] + s;
        if (b instanceof Uint8Array) u8.set(b.subarray(from, from + len), bases[q]);
        else f32.set(b.subarray(from, from + len), bases[q] >> 2);
      }
      run(Math.ceil(len / vector) * vector * 4, TABLE_BYTES, ...bases);
      o.set(f32.subarray(outAt, outAt + len), oo + s);
    }
  };
  /** A run in place where it has whole loop iterations, the rest (under one iteration) through the chunks. */
  const eachInPlace = (oo: number, offsets: number[], n: number) => {
    const whole = n - n % vector;
    if (whole > 0) inPlace!(oo, offsets, whole * 4);
    if (whole < n) each(oo + whole, offsets.map((at, q) => contiguous[q] ? at + whole : at), n - whole);
  };
  const visit = inPlace ? eachInPlace : each;
  if (range) forEachRunIn(plan, range[0], range[1], visit);
  else forEachRun(plan, visit);
  return true;
}

/**
 * When the output lives in this thread's tensor memory (`heap.ts`), a function that runs `bytes` of output
 * from element `oo` (inputs from `offsets`) where the arrays are: no copies. Inputs outside it are small
 * tensors the pool does not hand out of the heap: a contiguous one (a bias added to every row, say) is
 * copied whole into the thread's scratch once per call, a broadcast one has its value staged in a slot there
 * per run. Null when that does not apply (a large input outside): the caller copies chunks through the
 * runtime's own memory.
 */
function inPlaceRunner(
  rt: Runtime,
  p: ElementwiseProgram,
  contiguous: readonly boolean[],
  inputs: readonly TensorRef<CpuBuffer>[],
  out: TensorRef<CpuBuffer>,
): ((oo: number, offsets: number[], bytes: number) => void) | null {
  const tm = currentTensorMemory();
  if (!tm || !tm.owns(out.buf.buffer) || inputs.length > BROADCAST_SLOTS) return null;
  const bufs = inputs.map((t) => t.buf), k = inputs.length, width = bufs.map((b) => b.BYTES_PER_ELEMENT);
  // Where each input is read from: its own place in the memory, a copy in the scratch, or (−1) a slot per run.
  const home = bufs.map((b) => tm.owns(b.buffer) ? b.byteOffset : -1);
  let f32 = new Float32Array(tm.memory.buffer), u8 = new Uint8Array(tm.memory.buffer);
  for (let q = 0, at = tm.scratch + 16 * BROADCAST_SLOTS; q < k; q++) {
    if (home[q] >= 0 || !contiguous[q]) continue;
    const b = bufs[q], bytes = Math.ceil(b.byteLength / 16) * 16;
    if (at + bytes > tm.scratch + SCRATCH_BYTES) return null;
    if (b instanceof Uint8Array) u8.set(b, at);
    else f32.set(b as Float32Array, at >> 2);
    home[q] = at; // where the copy of element 0 is
    at += bytes;
  }
  const run = rt.fnInPlace(p, contiguous, tm.memory);
  const outAt = out.buf.byteOffset, ptrs = new Array<number>(k);
  return (oo, offsets, bytes) => {
    for (let q = 0; q < k; q++) {
      const b = bufs[q];
      if (home[q] >= 0) {
        ptrs[q] = home[q] + offsets[q] * width[q];
        continue;
      }
      // A broadcast value from outside the heap: into its slot (the memory may have grown since).
      if (f32.buffer !== tm.memory.buffer) {
        f32 = new Float32Array(tm.memory.buffer);
        u8 = new Uint8Array(tm.memory.buffer);
      }
      ptrs[q] = tm.scratch + 16 * q;
      if (b instanceof Uint8Array) u8[ptrs[q]] = b[offsets[q]];
      else f32[ptrs[q] >> 2] = b[offsets[q]];
    }
    run(bytes, outAt + oo * 4, ...ptrs);
  };
}

/** x + y on f32: the program {@link rowAdder} runs with its output aliasing x. */
const ADD_F32 = program(["f32", "f32"], add(input(0, "f32"), input(1, "f32")));

/**
 * When `dst` and `src` both live in this thread's tensor memory, a function that adds `n` elements of `src`
 * (from element `s`) to those of `dst` (from element `d`) in place — f32x4 adds where whole vectors fit, the
 * rest in JavaScript; every sum rounded to f32 once, as `dst[i] += src[i]` stores it — else null.
 */
export function rowAdder(dst: CpuBuffer, src: CpuBuffer): ((d: number, s: number, n: number) => void) | null {
  const tm = currentTensorMemory(), rt = shared();
  if (!tm || !rt || !(dst instanceof Float32Array) || !(src instanceof Float32Array)) return null;
  if (!tm.owns(dst.buffer) || !tm.owns(src.buffer)) return null;
  const run = rt.fnInPlace(ADD_F32, [true, true], tm.memory);
  return (d, s, n) => {
    const whole = n - n % 4, out = dst.byteOffset + 4 * d;
    if (whole > 0) run(4 * whole, out, out, src.byteOffset + 4 * s);
    for (let t = whole; t < n; t++) dst[d + t] += src[s + t];
  };
}
