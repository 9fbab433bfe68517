/**
 * WebGPU kernels along one axis: reduce, argReduce, softmax and cumsum. Like the CPU kernels, each views the
 * tensor as [outer, n, inner] around the axis; every (outer, inner) pair is one independent "lane" of n
 * elements at stride `inner`.
 *
 * Two shapes of kernel, both deterministic (a fixed combination order, no atomics):
 * - row kernels: one workgroup per lane. Thread t folds elements t, t + R, t + 2R, … in order, then the
 *   workgroup combines the R partials with a shared-memory tree. Used for long lanes (the last axis of a
 *   [rows, n] activation, or a few long strided columns), where one thread per lane would leave the GPU idle.
 * - lane kernels: one thread per lane, folding its n elements in order. Used for short lanes and for
 *   non-last axes with many lanes (adjacent threads then read adjacent addresses).
 *
 * cumsum's row kernel is a blocked Hillis–Steele scan (R elements per step, carried across blocks).
 *
 * On software adapters (llvmpipe…) workgroup barriers are very expensive (a row kernel measured 10–30× slower
 * than the lane kernel on llvmpipe), so the default strategy uses lane kernels there; see {@link ReduceStrategy}.
 *
 * params layout of every kernel: [outer, n, inner, flag] (flag: cumsum's `reverse`).
 *
 * @module
 */
import type { Shape } from "../../core/shape.ts";
import type { KernelFamily, ReduceOp } from "../registry.ts";
import { type GpuBuffer, type WebGpuRuntime, wgslType } from "./runtime.ts";
import { FLOAT_HELPERS } from "../expr/wgsl.ts";
import { MAIN_1D, WG } from "./wgsl.ts";

/** [outer, n, inner] around `axis`. */
function around(shape: Shape, axis: number): [number, number, number] {
  let outer = 1, inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i];
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
  return [outer, shape[axis], inner];
}

/**
 * Whether lanes get a workgroup each: contiguous lanes from 32 elements on; strided lanes (inner > 1) only
 * when they are long and too few to fill the GPU one thread each.
 */
export function useRowKernel(outer: number, n: number, inner: number): boolean {
  return inner === 1 ? n >= 32 : n >= 256 && outer * inner <= 1024;
}

/**
 * Which kernel shape long lanes get: `"rows"` uses the row kernels where {@link useRowKernel} says so (the
 * choice for hardware GPUs), `"lanes"` always uses a thread per lane, `"auto"` is `"rows"` on hardware
 * adapters and `"lanes"` on software ones. Results are deterministic for a given strategy and shape; f32
 * sums may differ in the last bits between strategies (a different summation order).
 */
export type ReduceStrategy = "auto" | "rows" | "lanes";

/** Threads per workgroup of a row kernel (a power of two): 64 for short lanes, 256 for long ones. */
export function rowThreads(n: number): number {
  return n > 1024 ? 256 : 64;
}

const NONE = "0xffffffffu";

/** Opening of a row kernel: `g` is the lane (uniform), `base` its first element, `t` the thread. */
function rowMain(r: number): string {
  return `@compute @workgroup_size(${r})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let n = params[1];
  let inner = params[2];
  let g = wgIndex(wid, nwg);
  if (g >= params[0] * inner) { return; }
  let base = (g / inner) * n * inner + g % inner;
  let t = lid.x;`;
}

/** Opening of a lane kernel: `g` is the lane (one per thread), `base` its first element. */
const LANE_MAIN = `${MAIN_1D}
  let n = params[1];
  let inner = params[2];
  let g = i;
  if (g >= params[0] * inner) { return; }
  let base = (g / inner) * n * inner + g % inner;`;

/** Shared-memory tree over `sv[0..r)` with `comb` (thread t holds its partial in `acc`); the result is in sv[0]. */
function tree(r: number): string {
  return `
  sv[t] = acc;
  workgroupBarrier();
  for (var s = ${r / 2}u; s > 0u; s = s >> 1u) {
    if (t < s) { sv[t] = comb(sv[t], sv[t + s]); }
    workgroupBarrier();
  }`;
}

/** The fold of a reduce op: identity, combine function and the value of an empty lane (the CPU's). */
function reduceOpWgsl(op: ReduceOp, type: string): { ident: string; comb: string; empty: string } {
  const t = type;
  if (op === "sum") {
    return { ident: `${t}(0)`, comb: `fn comb(a: ${t}, b: ${t}) -> ${t} { return a + b; }`, empty: `${t}(0)` };
  }
  const cmp = op === "max" ? ">" : "<";
  if (t === "f32") {
    return {
      ident: op === "max" ? "bitcast<f32>(0xff800000u)" : "bitcast<f32>(0x7f800000u)",
      // NaN propagates (whichever NaN comes first in the fold).
      comb: `fn comb(a: f32, b: f32) -> f32 {
  if (isnanf(a)) { return a; }
  if (isnanf(b)) { return b; }
  return select(a, b, b ${cmp} a);
}`,
      empty: "nanf()",
    };
  }
  const ident = t === "i32"
    ? (op === "max" ? "bitcast<i32>(0x80000000u)" : "2147483647i")
    : (op === "max" ? "0u" : "0xffffffffu");
  return { ident, comb: `fn comb(a: ${t}, b: ${t}) -> ${t} { return ${op}(a, b); }`, empty: `${t}(0)` };
}

/**
 * `better(va, ia, vb, ib)`: whether candidate b beats a. A total order, so any combination order gives the
 * CPU's answer: NaN beats everything (lower index among NaNs), then the larger (smaller) value, then the
 * lower index. Index NONE marks an empty candidate.
 */
function betterWgsl(op: "argmax" | "argmin", type: string): string {
  const cmp = op === "argmax" ? ">" : "<";
  const nan = type === "f32"
    ? `let na = isnanf(va); let nb = isnanf(vb);
  if (na || nb) { return nb && (!na || ib < ia); }`
    : "";
  return `fn better(va: ${type}, ia: u32, vb: ${type}, ib: u32) -> bool {
  if (ib == ${NONE}) { return false; }
  if (ia == ${NONE}) { return true; }
  ${nan}
  return vb ${cmp} va || (vb == va && ib < ia);
}`;
}

/** WGSL helpers of the softmax kernels (also used by `cross_entropy.ts`): a NaN-propagating max `comb`, −∞ and finiteness tests. */
export const SOFTMAX_HELPERS = `
fn comb(a: f32, b: f32) -> f32 {
  if (isnanf(a)) { return a; }
  if (isnanf(b)) { return b; }
  return select(a, b, b > a);
}
fn isneginf(x: f32) -> bool { return bitcast<u32>(x) == 0xff800000u; }
fn finitef(x: f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u; }
fn addf(a: f32, b: f32) -> f32 { return a + b; }
`;

/**
 * The value written for x given the row max m, the sum of exp(x - m) and lse = m + log(total). A NaN or
 * infinite max (a NaN or +∞ entry, or an all −∞ row) makes the whole row NaN, as on the CPU; −∞ entries
 * give 0 (−∞ for log) without computing exp(−∞).
 */
function softmaxValue(log: boolean): string {
  return log
    ? "select(select(x - lse, -inff(), isneginf(x)), nanf(), !ok)"
    : "select(select(exp(x - m) / total, 0.0, isneginf(x)), nanf(), !ok)";
}

/** The family's shaders, built once per variant. */
class Shaders {
  #cache = new Map<string, string>();

  get(key: string, build: () => string): string {
    let s = this.#cache.get(key);
    if (s === undefined) this.#cache.set(key, s = build());
    return s;
  }
}

/** The axis-wise family of the WebGPU backend. */
export function reduceKernels(
  rt: WebGpuRuntime,
  strategy: ReduceStrategy = "auto",
): KernelFamily<GpuBuffer, "reduce" | "argReduce" | "softmax" | "cumsum"> {
  const shaders = new Shaders();
  const rows = strategy === "rows" || (strategy === "auto" && !rt.isSoftware);
  const useRows = (outer: number, n: number, inner: number) => rows && useRowKernel(outer, n, inner);

  /** Launches `shader` over the lanes of [outer, n, inner]: a workgroup each (row) or a thread each. */
  function launch(
    shader: string,
    row: boolean,
    dims: [number, number, number],
    x: GpuBuffer,
    inType: string,
    out: GpuBuffer,
    outType: string,
    flag = 0,
  ): void {
    const lanes = dims[0] * dims[2];
    rt.dispatch({
      shader,
      inputTypes: [inType],
      outputTypes: [outType],
      inputs: [x],
      outputs: [out],
      params: [...dims, flag],
      workgroups: row ? lanes : Math.ceil(lanes / WG),
    });
  }

  function load(inType: string, accType: string, idx: string): string {
    return inType === accType ? `in0[${idx}]` : `${accType}(in0[${idx}])`;
  }

  return {
    reduce([x], [out], { op, axis }) {
      const dims = around(x.shape, axis);
      const [outer, n, inner] = dims;
      if (outer * inner === 0) return;
      const inType = wgslType(x.dtype), outType = wgslType(out.dtype);
      const row = useRows(outer, n, inner);
      const r = rowThreads(n);
      const shader = shaders.get(`reduce:${op}:${inType}:${outType}:${row ? r : 0}`, () => {
        const { ident, comb, empty } = reduceOpWgsl(op, outType);
        const head = `${FLOAT_HELPERS}\n${comb}\n`;
        if (!row) {
          return `${head}${LANE_MAIN}
  var acc = ${ident};
  for (var k = 0u; k < n; k++) { acc = comb(acc, ${load(inType, outType, "base + k * inner")}); }
  out0[g] = select(acc, ${empty}, n == 0u);
}`;
        }
        return `${head}var<workgroup> sv: array<${outType}, ${r}>;
${rowMain(r)}
  var acc = ${ident};
  for (var k = t; k < n; k += ${r}u) { acc = comb(acc, ${load(inType, outType, "base + k * inner")}); }
  ${tree(r)}
  if (t == 0u) { out0[g] = select(sv[0], ${empty}, n == 0u); }
}`;
      });
      launch(shader, row, dims, x.buf, inType, out.buf, outType);
    },

    argReduce([x], [out], { op, axis }) {
      const dims = around(x.shape, axis);
      const [outer, n, inner] = dims;
      if (outer * inner === 0) return;
      const inType = wgslType(x.dtype);
      const row = useRows(outer, n, inner);
      const r = rowThreads(n);
      const shader = shaders.get(`arg:${op}:${inType}:${row ? r : 0}`, () => {
        const head = `${FLOAT_HELPERS}\n${betterWgsl(op, inType)}\n`;
        // An empty lane (n == 0) gives index 0, like the CPU.
        if (!row) {
          return `${head}${LANE_MAIN}
  var bv = ${inType}();
  var bi = ${NONE};
  for (var k = 0u; k < n; k++) {
    let v = in0[base + k * inner];
    if (better(bv, bi, v, k)) { bv = v; bi = k; }
  }
  out0[g] = i32(select(bi, 0u, bi == ${NONE}));
}`;
        }
        return `${head}var<workgroup> sv: array<${inType}, ${r}>;
var<workgroup> si: array<u32, ${r}>;
${rowMain(r)}
  var bv = ${inType}();
  var bi = ${NONE};
  for (var k = t; k < n; k += ${r}u) {
    let v = in0[base + k * inner];
    if (better(bv, bi, v, k)) { bv = v; bi = k; }
  }
  sv[t] = bv;
  si[t] = bi;
  workgroupBarrier();
  for (var s = ${r / 2}u; s > 0u; s = s >> 1u) {
    if (t < s && better(sv[t], si[t], sv[t + s], si[t + s])) { sv[t] = sv[t + s]; si[t] = si[t + s]; }
    workgroupBarrier();
  }
  if (t == 0u) { out0[g] = i32(select(si[0], 0u, si[0] == ${NONE})); }
}`;
      });
      launch(shader, row, dims, x.buf, inType, out.buf, "i32");
    },

    softmax([x], [out], { axis, log }) {
      const dims = around(x.shape, axis);
      const [outer, n, inner] = dims;
      if (outer * n * inner === 0) return;
      const type = wgslType(x.dtype);
      if (type !== "f32") throw new Error(`webgpu: softmax needs a float tensor, got ${x.dtype}`);
      const row = useRows(outer, n, inner);
      const r = rowThreads(n);
      const shader = shaders.get(`softmax:${log}:${row ? r : 0}`, () => {
        const head = `${FLOAT_HELPERS}\n${SOFTMAX_HELPERS}\n`;
        const finish = `let ok = finitef(m);
  let lse = m + log(total);`;
        if (!row) {
          return `${head}${LANE_MAIN}
  var m = -inff();
  for (var k = 0u; k < n; k++) { m = comb(m, in0[base + k * inner]); }
  var total = 0.0;
  for (var k = 0u; k < n; k++) {
    let x = in0[base + k * inner];
    if (!isneginf(x)) { total += exp(x - m); }
  }
  ${finish}
  for (var k = 0u; k < n; k++) {
    let x = in0[base + k * inner];
    out0[base + k * inner] = ${softmaxValue(log)};
  }
}`;
        }
        return `${head}var<workgroup> sv: array<f32, ${r}>;
${rowMain(r)}
  var acc = -inff();
  for (var k = t; k < n; k += ${r}u) { acc = comb(acc, in0[base + k * inner]); }
  ${tree(r)}
  let m = sv[0];
  workgroupBarrier();
  acc = 0.0;
  for (var k = t; k < n; k += ${r}u) {
    let x = in0[base + k * inner];
    if (!isneginf(x)) { acc += exp(x - m); }
  }
  ${tree(r).replaceAll("comb(", "addf(")}
  let total = sv[0];
  ${finish}
  for (var k = t; k < n; k += ${r}u) {
    let x = in0[base + k * inner];
    out0[base + k * inner] = ${softmaxValue(log)};
  }
}`;
      });
      launch(shader, row, dims, x.buf, type, out.buf, type);
    },

    cumsum([x], [out], { axis, reverse }) {
      const dims = around(x.shape, axis);
      const [outer, n, inner] = dims;
      if (outer * n * inner === 0) return;
      const inType = wgslType(x.dtype), outType = wgslType(out.dtype);
      const row = useRows(outer, n, inner);
      const r = rowThreads(n);
      const shader = shaders.get(`cumsum:${inType}:${outType}:${row ? r : 0}`, () => {
        if (!row) {
          return `${LANE_MAIN}
  let rev = params[3] != 0u;
  var acc = ${outType}(0);
  for (var s = 0u; s < n; s++) {
    let idx = base + select(s, n - 1u - s, rev) * inner;
    acc = acc + ${load(inType, outType, "idx")};
    out0[idx] = acc;
  }
}`;
        }
        // Blocked inclusive scan: each step scans R elements in shared memory and adds the running carry.
        return `var<workgroup> sv: array<${outType}, ${r}>;
${rowMain(r)}
  let rev = params[3] != 0u;
  var carry = ${outType}(0);
  for (var b = 0u; b < n; b += ${r}u) {
    let s = b + t;
    let idx = base + select(s, n - 1u - s, rev) * inner;
    var v = ${outType}(0);
    if (s < n) { v = ${load(inType, outType, "idx")}; }
    sv[t] = v;
    workgroupBarrier();
    for (var d = 1u; d < ${r}u; d = d << 1u) {
      if (t >= d) { v = sv[t - d] + v; }
      workgroupBarrier();
      sv[t] = v;
      workgroupBarrier();
    }
    if (s < n) { out0[idx] = carry + v; }
    carry = carry + sv[${r - 1}u];
    workgroupBarrier();
  }
}`;
      });
      launch(shader, row, dims, x.buf, inType, out.buf, outType, reverse ? 1 : 0);
    },
  };
}
