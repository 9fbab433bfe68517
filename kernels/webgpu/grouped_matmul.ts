/**
 * WebGPU grouped matmul (`groupedMatmul`) and its weight gradient (`groupedOuter`), f32, with the group
 * offsets read by the shaders from their buffer: the host never reads them, so nothing waits for the GPU and
 * the launch size is fixed by the shapes alone.
 *
 * - **groupedMatmul**: the rows form G + 2 segments in order — before `offsets[0]`, the G groups, from
 *   `offsets[G]` on — and each segment is cut into tiles of 32 rows (a group's last tile is partial, so no tile
 *   straddles two groups and every tile multiplies by ONE matrix). Workgroup row-tile t walks the offsets to
 *   find the t-th tile of that sequence (a loop over G + 2 entries, the same in every thread). The sequence
 *   has at most `ceil(R / 32) + G + 2` tiles whatever the offsets, so that is the static grid (times the
 *   column tiles); workgroups past the last tile return at once. The work is the rows', plus at most one
 *   partial tile per group; an empty group costs nothing. The two outer segments are written as zeros.
 * - **groupedOuter**: workgroup (g, tile) owns a 32×32 tile of out[g] and sums over the group's rows; an empty
 *   group's tiles are zeros.
 *
 * Both are register kernels like `matmul.ts`'s (64 threads, each a 4×4 block of the output, operands read
 * straight from storage, no shared memory or barriers) and both sum every output in order (over k, or over
 * the group's rows) in one thread: deterministic, no atomics. Offsets that are out of order or outside
 * [0, R] are clamped into range (the CPU backend raises an error; see tests/helpers/webgpu_gaps.ts).
 *
 * @module
 */
import type { KernelFamily } from "../registry.ts";
import type { GpuBuffer, WebGpuRuntime } from "./runtime.ts";

/** Rows and columns of one thread's output block. */
const T = 4;
/** Output tile edge of a workgroup: 8×8 threads of 4×4. */
const TILE = 32;

const Q = [0, 1, 2, 3];
const XYZW = ["x", "y", "z", "w"];

/** acc_q += a.q · b for the four rows q of a thread's block. */
const fmaRows = (a: string, b: string) => Q.map((q) => `acc${q} += ${a}.${XYZW[q]} * ${b};`).join(" ");

/** Stores the thread's 4×4 block (`acc0`…`acc3`) at rows i.. (below `rowEnd`) and columns j.. (below N) of out0. */
function storeBlock(rowEnd: string, base = ""): string {
  return Q.map((q) =>
    `  if (i + ${q}u < ${rowEnd}) { ${
      Q.map((c) => `if (j + ${c}u < N) { out0[${base}(i + ${q}u) * N + j + ${c}u] = acc${q}.${XYZW[c]}; }`).join(" ")
    } }`
  ).join("\n");
}

/** The groupedMatmul shader (params: R, K, N, G, tilesN); `transB` reads w[g] as [N, K]. */
function groupedMatmulShader(transB: boolean): string {
  const wAt = (c: number) => transB ? `in1[wOff + c${c} * K + p]` : `in1[wOff + p * N + c${c}]`;
  return `
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
  let R = params[0]; let K = params[1]; let N = params[2]; let G = params[3]; let tilesN = params[4];
  let wg = wgIndex(wid, nwg);
  var t = wg / tilesN;
  let j = ((wg % tilesN) * 8u + tid % 8u) * ${T}u;
  // Segment s = 0: rows before offsets[0]; s = 1..G: group s − 1; s = G + 1: rows from offsets[G] on.
  var seg = 0u; var lo = 0u; var hi = 0u; var start = 0u; var found = false;
  for (var s = 0u; s <= G + 1u; s++) {
    var end = R;
    if (s <= G) { end = clamp(u32(max(in2[s], 0)), start, R); }
    let tiles = (end - start + ${TILE - 1}u) / ${TILE}u;
    if (t < tiles) {
      seg = s; lo = start + t * ${TILE}u; hi = min(lo + ${TILE}u, end); found = true;
      break;
    }
    t -= tiles;
    start = end;
  }
  if (!found) { return; }
  let i = lo + (tid / 8u) * ${T}u;
  if (i >= hi || j >= N) { return; }
  var acc0 = vec4<f32>(0.0); var acc1 = vec4<f32>(0.0); var acc2 = vec4<f32>(0.0); var acc3 = vec4<f32>(0.0);
  if (seg >= 1u && seg <= G) {
    let wOff = (seg - 1u) * K * N;
    // Rows and columns past the edge are clamped for loading (never stored): no bounds checks in the loop.
    let r0 = i * K; let r1 = min(i + 1u, hi - 1u) * K; let r2 = min(i + 2u, hi - 1u) * K; let r3 = min(i + 3u, hi - 1u) * K;
    let c0 = j; let c1 = min(j + 1u, N - 1u); let c2 = min(j + 2u, N - 1u); let c3 = min(j + 3u, N - 1u);
    for (var p = 0u; p < K; p++) {
      let a = vec4<f32>(in0[r0 + p], in0[r1 + p], in0[r2 + p], in0[r3 + p]);
      let b = vec4<f32>(${Q.map(wAt).join(", ")});
      ${fmaRows("a", "b")}
    }
  }
${storeBlock("hi")}
}`;
}

/** The groupedOuter shader (params: R, M, N, G, tilesN, tiles per group). */
const GROUPED_OUTER = `
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
  let R = params[0]; let M = params[1]; let N = params[2]; let G = params[3]; let tilesN = params[4];
  let perGroup = params[5];
  let wg = wgIndex(wid, nwg);
  let g = wg / perGroup;
  if (g >= G) { return; }
  let rem = wg % perGroup;
  let i = ((rem / tilesN) * 8u + tid / 8u) * ${T}u;
  let j = ((rem % tilesN) * 8u + tid % 8u) * ${T}u;
  if (i >= M || j >= N) { return; }
  let lo = min(u32(max(in2[g], 0)), R);
  let hi = clamp(u32(max(in2[g + 1u], 0)), lo, R);
  let i0 = i; let i1 = min(i + 1u, M - 1u); let i2 = min(i + 2u, M - 1u); let i3 = min(i + 3u, M - 1u);
  let c0 = j; let c1 = min(j + 1u, N - 1u); let c2 = min(j + 2u, N - 1u); let c3 = min(j + 3u, N - 1u);
  var acc0 = vec4<f32>(0.0); var acc1 = vec4<f32>(0.0); var acc2 = vec4<f32>(0.0); var acc3 = vec4<f32>(0.0);
  for (var r = lo; r < hi; r++) {
    let ar = r * M; let br = r * N;
    let a = vec4<f32>(in0[ar + i0], in0[ar + i1], in0[ar + i2], in0[ar + i3]);
    let b = vec4<f32>(in1[br + c0], in1[br + c1], in1[br + c2], in1[br + c3]);
    ${fmaRows("a", "b")}
  }
  let base = g * M * N;
${storeBlock("M", "base + ")}
}`;

/** The two specialisations of the groupedMatmul shader, by transB. */
const GROUPED_MATMUL = [groupedMatmulShader(false), groupedMatmulShader(true)];

function checkF32(op: string, ...dtypes: string[]): void {
  if (dtypes.some((d) => d !== "f32")) throw new Error(`webgpu: ${op} supports f32 only (got ${dtypes.join(", ")})`);
}

/** The grouped family of the WebGPU backend (f32). */
export function groupedMatmulKernels(rt: WebGpuRuntime): KernelFamily<GpuBuffer, "groupedMatmul" | "groupedOuter"> {
  return {
    groupedMatmul([x, w, offsets], [out], { transB }) {
      checkF32("groupedMatmul", x.dtype, w.dtype, out.dtype);
      const [rows, k] = x.shape, groups = w.shape[0], n = out.shape[1];
      const tilesN = Math.ceil(n / TILE);
      // At most one partial tile per segment on top of the full ones (see the module docs).
      const rowTiles = Math.ceil(rows / TILE) + groups + 2;
      rt.dispatch({
        shader: GROUPED_MATMUL[+transB],
        inputTypes: ["f32", "f32", "i32"],
        outputTypes: ["f32"],
        inputs: [x.buf, w.buf, offsets.buf],
        outputs: [out.buf],
        params: [rows, k, n, groups, tilesN],
        workgroups: rows === 0 || n === 0 ? 0 : rowTiles * tilesN,
      });
    },
    groupedOuter([a, b, offsets], [out]) {
      checkF32("groupedOuter", a.dtype, b.dtype, out.dtype);
      const [rows, m] = a.shape, n = b.shape[1], groups = out.shape[0];
      const tilesN = Math.ceil(n / TILE), perGroup = Math.ceil(m / TILE) * tilesN;
      rt.dispatch({
        shader: GROUPED_OUTER,
        inputTypes: ["f32", "f32", "i32"],
        outputTypes: ["f32"],
        inputs: [a.buf, b.buf, offsets.buf],
        outputs: [out.buf],
        params: [rows, m, n, groups, tilesN, perGroup],
        workgroups: groups * perGroup,
      });
    },
  };
}
