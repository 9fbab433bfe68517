/**
 * WebGPU order-statistics kernels on the last axis: stable sort and topk, bit-for-bit the CPU's results.
 *
 * Every entry becomes a pair (key, index) where `key` is a u32 whose unsigned order is the value order the CPU
 * uses (NaN largest, −0 equal to +0, negated bitwise for descending order). Sorting pairs ascending by
 * (key, index) is a total order, so any sorting network gives the stable, deterministic result: equal values
 * keep ascending index order in both directions, exactly as the CPU kernels do. Data is read and written as
 * raw u32 bits, so −0, NaN payloads and subnormals come out unchanged.
 *
 * - Rows whose length padded to a power of two (P) fits in a workgroup tile ({@link SORT_TILE} entries): one
 *   bitonic sort in `var<workgroup>` arrays per workgroup, several short rows packed into one workgroup; one
 *   launch.
 * - Longer rows: each tile-sized chunk is sorted in workgroup memory, then merged by a bitonic network whose
 *   wide steps run in global scratch memory (one launch per step) and whose narrow steps run in workgroup
 *   memory; a gather launch writes the outputs. Rows are processed in batches so the scratch buffers stay
 *   within the binding-size limit.
 * - topk with small k (≤ 8, the MoE router case): one thread per row keeps the k best pairs in registers.
 *   Otherwise topk is a sort of which the first k columns are written.
 *
 * @module
 */
import { sizeOf } from "../../core/shape.ts";
import type { KernelFamily, TensorRef } from "../registry.ts";
import type { GpuBuffer, WebGpuRuntime } from "./runtime.ts";
import { wgslType } from "./runtime.ts";
import { MAIN_1D, WG } from "./wgsl.ts";

/** The largest k served by the one-thread-per-row topk kernel. */
export const SMALL_TOPK_K = 8;

/**
 * (key, index) pairs sorted in workgroup memory by one workgroup: 2 × 128 u32 = 1 KiB.
 *
 * Kept small on purpose. WebGPU zero-initialises `var<workgroup>` memory; wgpu's GL backend (naga → GLSL) does
 * it by one invocation assigning a whole-array constant, which Mesa's llvmpipe compiles into one store per
 * u32 word at the first dispatch of each pipeline, in time that grows faster than linearly with the words:
 * on a 2-core machine about 0.4 s for 256 words, 1.2 s for 512, 5.6 s for 1024 and 24 s for 2048. With the
 * former 2048-pair tiles (4096 words) each sort pipeline compiled for minutes there at 100% CPU, which looked
 * like a hang. Longer rows are merged by the global steps instead: a few more launches on real GPUs.
 */
export const SORT_TILE = 128;

/** Options of {@link sortKernels} (tests use them to reach the batched path cheaply). */
export interface SortKernelOptions {
  /** Bytes one scratch buffer of the long-row path may take (default: the adapter's binding limit). */
  maxScratchBytes?: number;
}

type Kind = "float" | "int";

/** `sortKey(bits, desc)`: the u32 whose unsigned order is the CPU's value order (descending: reversed). */
function keyWgsl(kind: Kind): string {
  const body = kind === "float"
    ? `var k: u32;
  if ((b & 0x7f800000u) == 0x7f800000u && (b & 0x7fffffu) != 0u) { k = 0xffffffffu; } // NaN: largest
  else if ((b & 0x7fffffffu) == 0u) { k = 0x80000000u; } // -0 == +0
  else if ((b & 0x80000000u) != 0u) { k = ~b; } // negative: larger magnitude sorts first
  else { k = b | 0x80000000u; }`
    : `let k = b ^ 0x80000000u;`;
  return `
fn sortKey(b: u32, desc: bool) -> u32 {
  ${body}
  return select(k, ~k, desc);
}`;
}

const PAD = "0xffffffffu";

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/**
 * One workgroup sorts `M` consecutive entries of the (virtual) padded array of `rows × P` entries in
 * workgroup memory. `load: "input"` reads the data and sorts every aligned block of min(P, M) entries
 * completely; `load: "scratch"` reads the scratch pairs and runs the half-cleaner steps M/2 … 1 of a merge.
 * `store: "final"` writes values and indices (columns < limit); `store: "scratch"` writes the pairs back.
 *
 * params: [n, rows (of this batch), first row, limit, descending].
 */
function localShader(
  kind: Kind,
  P: number,
  M: number,
  T: number,
  load: "input" | "scratch",
  store: "final" | "scratch",
) {
  const logP = Math.log2(P);
  const loadCode = load === "input"
    ? `if (row < rows && col < n) { sk[loc] = sortKey(in0[(r0 + row) * n + col], desc); si[loc] = col; }
    else { sk[loc] = ${PAD}; si[loc] = ${PAD}; }`
    : `if (g < total) { sk[loc] = out0[g]; si[loc] = out1[g]; } else { sk[loc] = ${PAD}; si[loc] = ${PAD}; }`;
  const steps = load === "input"
    ? `for (var k = 2u; k <= ${Math.min(P, M)}u; k <<= 1u) {
    for (var j = k >> 1u; j > 0u; j >>= 1u) {
      for (var p = lid.x; p < ${M / 2}u; p += ${T}u) {
        let lo = p & (j - 1u);
        let a = ((p - lo) << 1u) | lo;
        cx(a, select(a + j, a ^ (k - 1u), j == k >> 1u));
      }
      workgroupBarrier();
    }
  }`
    : `for (var j = ${M / 2}u; j > 0u; j >>= 1u) {
    for (var p = lid.x; p < ${M / 2}u; p += ${T}u) {
      let lo = p & (j - 1u);
      let a = ((p - lo) << 1u) | lo;
      cx(a, a + j);
    }
    workgroupBarrier();
  }`;
  const storeCode = store === "final"
    ? `if (row < rows && col < limit) {
      let o = (r0 + row) * limit + col;
      out0[o] = in0[(r0 + row) * n + si[loc]];
      out1[o] = i32(si[loc]);
    }`
    : `if (g < total) { out0[g] = sk[loc]; out1[g] = si[loc]; }`;
  return `${keyWgsl(kind)}
var<workgroup> sk: array<u32, ${M}>;
var<workgroup> si: array<u32, ${M}>;
fn cx(a: u32, b: u32) {
  let ka = sk[a]; let kb = sk[b]; let ia = si[a]; let ib = si[b];
  if (kb < ka || (kb == ka && ib < ia)) { sk[a] = kb; sk[b] = ka; si[a] = ib; si[b] = ia; }
}
@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let n = params[0]; let rows = params[1]; let r0 = params[2]; let limit = params[3]; let desc = params[4] != 0u;
  let total = rows * ${P}u;
  let base = wgIndex(wid, nwg) * ${M}u;
  for (var loc = lid.x; loc < ${M}u; loc += ${T}u) {
    let g = base + loc; let row = g >> ${logP}u; let col = g & ${P - 1}u;
    ${loadCode}
  }
  workgroupBarrier();
  ${steps}
  for (var loc = lid.x; loc < ${M}u; loc += ${T}u) {
    let g = base + loc; let row = g >> ${logP}u; let col = g & ${P - 1}u;
    ${storeCode}
  }
}`;
}

/** One compare-exchange step of the bitonic network over the scratch pairs. params: [j, flip, pairs]. */
const GLOBAL_STEP = `${MAIN_1D}
  if (i >= params[2]) { return; }
  let j = params[0];
  let lo = i & (j - 1u);
  let a = ((i - lo) << 1u) | lo;
  let b = select(a + j, a ^ (2u * j - 1u), params[1] != 0u);
  let ka = out0[a]; let kb = out0[b]; let ia = out1[a]; let ib = out1[b];
  if (kb < ka || (kb == ka && ib < ia)) { out0[a] = kb; out0[b] = ka; out1[a] = ib; out1[b] = ia; }
}`;

/** Writes the first `limit` sorted columns of a batch. params: [n, limit, P, first row, rows]. */
const GATHER = `${MAIN_1D}
  let limit = params[1];
  if (i >= params[4] * limit) { return; }
  let row = i / limit; let col = i - row * limit;
  let idx = in1[row * params[2] + col];
  let r = params[3] + row;
  out0[r * limit + col] = in0[r * params[0] + idx];
  out1[r * limit + col] = i32(idx);
}`;

/** topk for small k: one thread per row keeps the k best (key, index) pairs in order. params: [n, rows, desc]. */
function smallTopkShader(kind: Kind, k: number): string {
  return `${keyWgsl(kind)}
${MAIN_1D}
  let n = params[0];
  if (i >= params[1]) { return; }
  let desc = params[2] != 0u;
  let base = i * n;
  var lk: array<u32, ${k}>;
  var li: array<u32, ${k}>;
  var cnt = 0u;
  for (var c = 0u; c < n; c++) {
    let key = sortKey(in0[base + c], desc);
    if (cnt == ${k}u) {
      if (key >= lk[${k - 1}u]) { continue; } // ties keep the earlier (lower) index
    } else {
      cnt++;
    }
    var pos = cnt - 1u;
    loop {
      if (pos == 0u) { break; }
      if (lk[pos - 1u] <= key) { break; }
      lk[pos] = lk[pos - 1u];
      li[pos] = li[pos - 1u];
      pos--;
    }
    lk[pos] = key;
    li[pos] = c;
  }
  for (var j = 0u; j < ${k}u; j++) {
    out0[i * ${k}u + j] = in0[base + li[j]];
    out1[i * ${k}u + j] = i32(li[j]);
  }
}`;
}

/** The sorting family of the WebGPU backend. */
export function sortKernels(
  rt: WebGpuRuntime,
  options: SortKernelOptions = {},
): KernelFamily<GpuBuffer, "sort" | "topk"> {
  // 1 KiB of workgroup memory fits every adapter (WebGPU guarantees 16 KiB), so the tile is not adapter-sized.
  const tile = SORT_TILE;
  const maxThreads = Math.min(256, rt.device.limits.maxComputeInvocationsPerWorkgroup);

  function kindOf(x: TensorRef<GpuBuffer>): Kind {
    return wgslType(x.dtype) === "f32" ? "float" : "int";
  }

  /** Sorts the rows of `x` (row length n) and writes the first `limit` columns of values and indices. */
  function sortRows(x: TensorRef<GpuBuffer>, values: GpuBuffer, indices: GpuBuffer, limit: number, desc: boolean) {
    const n = x.shape[x.shape.length - 1] ?? 1;
    const rows = n === 0 ? 0 : sizeOf(x.shape) / n;
    if (rows === 0 || limit === 0) return;
    const kind = kindOf(x);
    const P = nextPow2(n);
    if (P <= tile) {
      const M = Math.max(2, Math.min(tile, nextPow2(rows * P)));
      const T = Math.min(maxThreads, M / 2);
      rt.dispatch({
        shader: localShader(kind, P, M, T, "input", "final"),
        inputTypes: ["u32"],
        outputTypes: ["u32", "i32"],
        inputs: [x.buf],
        outputs: [values, indices],
        params: [n, rows, 0, limit, desc ? 1 : 0],
        workgroups: Math.ceil((rows * P) / M),
      });
      return;
    }
    const M = tile, T = Math.min(maxThreads, M / 2);
    const scratchBytes = Math.min(options.maxScratchBytes ?? Infinity, rt.maxBindingBytes);
    const batch = Math.floor(scratchBytes / (4 * P));
    if (batch < 1) {
      throw new Error(`webgpu: sort rows of length ${n} need ${4 * P}-byte scratch buffers, over this adapter's limit`);
    }
    for (let r0 = 0; r0 < rows; r0 += batch) {
      const br = Math.min(batch, rows - r0), total = br * P;
      const keys = rt.alloc(total * 4), idxs = rt.alloc(total * 4);
      const params = [n, br, r0, limit, desc ? 1 : 0];
      rt.dispatch({
        shader: localShader(kind, P, M, T, "input", "scratch"),
        inputTypes: ["u32"],
        outputTypes: ["u32", "u32"],
        inputs: [x.buf],
        outputs: [keys, idxs],
        params,
        workgroups: total / M,
      });
      for (let k = 2 * M; k <= P; k *= 2) {
        for (let j = k / 2; j >= M; j /= 2) {
          rt.dispatch({
            shader: GLOBAL_STEP,
            inputTypes: [],
            outputTypes: ["u32", "u32"],
            inputs: [],
            outputs: [keys, idxs],
            params: [j, j === k / 2 ? 1 : 0, total / 2],
            workgroups: Math.ceil(total / 2 / WG),
          });
        }
        rt.dispatch({
          shader: localShader(kind, P, M, T, "scratch", "scratch"),
          inputTypes: [],
          outputTypes: ["u32", "u32"],
          inputs: [],
          outputs: [keys, idxs],
          params,
          workgroups: total / M,
        });
      }
      rt.dispatch({
        shader: GATHER,
        inputTypes: ["u32", "u32"],
        outputTypes: ["u32", "i32"],
        inputs: [x.buf, idxs],
        outputs: [values, indices],
        params: [n, limit, P, r0, br],
        workgroups: Math.ceil((br * limit) / WG),
      });
      // Safe to free now: later commands that reuse these buffers are ordered after these ones.
      rt.free(keys);
      rt.free(idxs);
    }
  }

  return {
    sort([x], [values, indices], { descending }) {
      const n = x.shape[x.shape.length - 1] ?? 1;
      sortRows(x, values.buf, indices.buf, n, descending);
    },
    topk([x], [values, indices], { k, largest }) {
      const n = x.shape[x.shape.length - 1] ?? 1;
      const rows = n === 0 ? 0 : sizeOf(x.shape) / n;
      if (rows === 0 || k === 0) return;
      // One thread per row reads the whole row: fast unless a few very long rows leave the GPU idle.
      if (k <= SMALL_TOPK_K && (n <= 8192 || rows >= 1024)) {
        rt.dispatch({
          shader: smallTopkShader(kindOf(x), k),
          inputTypes: ["u32"],
          outputTypes: ["u32", "i32"],
          inputs: [x.buf],
          outputs: [values.buf, indices.buf],
          params: [n, rows, largest ? 1 : 0],
          workgroups: Math.ceil(rows / WG),
        });
        return;
      }
      sortRows(x, values.buf, indices.buf, k, largest);
    },
  };
}
