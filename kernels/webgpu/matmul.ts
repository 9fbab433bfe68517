/**
 * WebGPU matmul: two kernels, chosen per shape (see {@link chooseMatmulVariant}).
 *
 * - **register**: one thread per 4×4 block of the output (64 threads per workgroup, arranged 8×8 blocks, or
 *   1×64 / 64×1 for a single block row / column), no shared memory, no barriers. Operands are read straight
 *   from the storage buffers, as vec4 where the layout allows it. Cheap to launch and good for small
 *   outputs, skinny shapes and matrix–vector products, where a 64×64 workgroup tile would be mostly padding.
 * - **tiled**: 16×16 threads per workgroup, each computing a 4×4 block of a 64×64 output tile; the workgroup
 *   stages 64×BK slices of A and B through `var<workgroup>` tiles (zero-padded at the edges), so every
 *   element fetched from global memory is used 64 times. For large outputs.
 *
 * Both follow the registry's contract (a is [Ba, M, K] or [Ba, K, M] with transA, b is [Bb, K, N] or
 * [Bb, N, K] with transB, out is [B, M, N], a batch of 1 is reused for every output batch) and both sum each
 * output element over k = 0, 1, …, K−1 in order, in one thread: results are deterministic (no atomics, no
 * split-K) and the two variants accumulate in the same order.
 *
 * Shapes and batch strides travel in `params`; the shader text depends only on the specialisation (variant,
 * transposes, which operands are read/written as vec4, tile depth or workgroup arrangement), so the
 * runtime's pipeline cache (keyed by source) holds one pipeline per specialisation in use, whatever the
 * shapes (at most 160 exist; a model uses a handful).
 *
 * vec4 access needs the operand's contiguous dimension to be a multiple of 4 (then every row and every
 * batch starts 16-byte aligned): A along k (K % 4 = 0) or, transposed, along m (M % 4 = 0); B along n
 * (N % 4 = 0) or, transposed, along k (K % 4 = 0); out along n (N % 4 = 0). Otherwise that operand uses
 * scalar loads.
 *
 * @module
 */
import type { KernelFamily, TensorRef } from "../registry.ts";
import type { GpuBuffer, WebGpuRuntime } from "./runtime.ts";
import { wgslType } from "./runtime.ts";

/** The two matmul kernels. */
export type MatmulVariant = "register" | "tiled";

/** How {@link matmulKernels} picks its kernel (tests and benchmarks force one). */
export interface MatmulConfig {
  /** "auto" (default) applies {@link chooseMatmulVariant}; otherwise that kernel runs for every shape. */
  readonly variant?: MatmulVariant | "auto";
  /** Use vec4 loads/stores where the layout allows (default true); false forces the scalar paths. */
  readonly vec4?: boolean;
  /** k-depth of the tiled kernel's shared tiles: 16 (default) or 32. */
  readonly tileK?: 16 | 32;
}

/** Output rows and columns per thread (both kernels). */
const T = 4;
/** Threads per workgroup of the register kernel. */
const REG_WG = 64;
/** Output tile edge of the tiled kernel (16 threads × 4). */
const TILE = 64;

/**
 * The auto choice. On a hardware GPU the tiled kernel wins when its 64×64 tiles are mostly full and there
 * are enough of them to occupy the device, and its shared-memory staging only pays off when K is long
 * enough to amortise the barriers. So: tiled when M ≥ 32, N ≥ 32, K ≥ 32 and the output holds at least
 * 128×128 elements over all batches (≥ 4 full tiles); the register kernel otherwise (small outputs, skinny
 * M or N such as matrix–vector products, short K).
 *
 * On a software adapter (`software`: llvmpipe, SwiftShader…) workgroup memory is ordinary memory and a
 * barrier is a context switch between the workgroup's SIMD chunks, so the register kernel, which relies on
 * the CPU's caches instead, is always chosen: on llvmpipe it measured 1.03–1.10 GFLOP/s against 0.86–0.88
 * for the tiled kernel at 256²–2048² (bench/webgpu_matmul.ts).
 */
export function chooseMatmulVariant(batch: number, m: number, k: number, n: number, software = false): MatmulVariant {
  if (software) return "register";
  return m >= 32 && n >= 32 && k >= 32 && batch * m * n >= 128 * 128 ? "tiled" : "register";
}

/** The specialisation of one shader. */
interface Spec {
  variant: MatmulVariant;
  transA: boolean;
  transB: boolean;
  /** A read as vec4 (along k, or along m when transA). */
  aVec: boolean;
  /** B read as vec4 (along n, or along k when transB). */
  bVec: boolean;
  /** out written as vec4 (along n). */
  oVec: boolean;
  /** Tiled only: the k-depth of the shared tiles. */
  bk: number;
  /** Register only: rows of 4×4 blocks per workgroup (1, 8 or 64; the workgroup is wy × 64/wy blocks). */
  wy: number;
}

const R = [0, 1, 2, 3];
const XYZW = ["x", "y", "z", "w"];

/** The store of a thread's 4×4 accumulator block at (i, j) of batch `bt`, skipping rows/columns past the edge. */
function storeBlock(s: Spec): string {
  const lines = R.map((r) => {
    // N % 4 = 0 and 4 | j: a block column is wholly inside (j < N) or outside.
    if (s.oVec) return `  if (i + ${r}u < M && j < N) { out0[(oOff + (i + ${r}u) * N + j) >> 2u] = acc${r}; }`;
    return R.map((c) =>
      `  if (i + ${r}u < M && j + ${c}u < N) { out0[oOff + (i + ${r}u) * N + j + ${c}u] = acc${r}.${XYZW[c]}; }`
    )
      .join("\n");
  });
  return `  let oOff = bt * M * N;\n${lines.join("\n")}`;
}

/** The accumulation of one k step: acc_r += a[r] * b, for vec4 `a` (over rows) and `b` (over columns). */
function fmaStep(a: string, b: string): string {
  return R.map((r) => `acc${r} += ${a}.${XYZW[r]} * ${b};`).join(" ");
}

/**
 * The register kernel. Workgroup g owns a (4·wy)×(4·wx) tile of batch bt (wx = 64 / wy), and thread tid the
 * 4×4 block at row block tid / wx and column block tid % wx of it: neighbouring threads share A's rows and
 * read neighbouring columns of B, and the workgroup as a whole re-reads a small slice of each operand
 * (cache reuse without shared memory). Threads whose block starts past the edge return at once; rows and
 * columns of a partial block are clamped to the last valid one for loading (never stored), so the inner
 * loop has no bounds checks. k runs in unrolled steps of 4, then a scalar tail when K % 4 ≠ 0.
 */
function registerShader(s: Spec): string {
  const { transA, transB, aVec, bVec } = s;
  const wx = REG_WG / s.wy;
  // A block at k = p..p+3 as A0..A3, each a vec4 over the rows i..i+3 at one k.
  let aSetup: string, aBlock: string, aOne = "";
  if (!transA) {
    aSetup = R.map((r) => `let ra${r} = aOff + r${r} * K;`).join(" ");
    if (aVec) {
      aBlock = `let am = transpose(mat4x4<f32>(${R.map((r) => `in0[(ra${r} + p) >> 2u]`).join(", ")}));
    let A0 = am[0]; let A1 = am[1]; let A2 = am[2]; let A3 = am[3];`;
    } else {
      aBlock = R.map((q) => `let A${q} = vec4<f32>(${R.map((r) => `in0[ra${r} + p + ${q}u]`).join(", ")});`).join(
        "\n    ",
      );
      aOne = `let A0 = vec4<f32>(${R.map((r) => `in0[ra${r} + p]`).join(", ")});`;
    }
  } else {
    aSetup = "";
    const at = (k: string) =>
      aVec
        ? `in0[(aOff + (${k}) * M + i) >> 2u]`
        : `vec4<f32>(${R.map((r) => `in0[aOff + (${k}) * M + r${r}]`).join(", ")})`;
    aBlock = R.map((q) => `let A${q} = ${at(`p + ${q}u`)};`).join("\n    ");
    aOne = `let A0 = ${at("p")};`;
  }
  // B block at k = p..p+3 as B0..B3, each a vec4 over the columns j..j+3 at one k.
  let bSetup: string, bBlock: string, bOne = "";
  if (!transB) {
    bSetup = "";
    const at = (k: string) =>
      bVec
        ? `in1[(bOff + (${k}) * N + j) >> 2u]`
        : `vec4<f32>(${R.map((c) => `in1[bOff + (${k}) * N + c${c}]`).join(", ")})`;
    bBlock = R.map((q) => `let B${q} = ${at(`p + ${q}u`)};`).join("\n    ");
    bOne = `let B0 = ${at("p")};`;
  } else {
    bSetup = R.map((c) => `let cb${c} = bOff + c${c} * K;`).join(" ");
    if (bVec) {
      bBlock = `let bm = transpose(mat4x4<f32>(${R.map((c) => `in1[(cb${c} + p) >> 2u]`).join(", ")}));
    let B0 = bm[0]; let B1 = bm[1]; let B2 = bm[2]; let B3 = bm[3];`;
    } else {
      bBlock = R.map((q) => `let B${q} = vec4<f32>(${R.map((c) => `in1[cb${c} + p + ${q}u]`).join(", ")});`).join(
        "\n    ",
      );
      bOne = `let B0 = vec4<f32>(${R.map((c) => `in1[cb${c} + p]`).join(", ")});`;
    }
  }
  // vec4 along k implies K % 4 = 0: no tail (and its scalar reads would not type-check).
  const vecAlongK = (!transA && aVec) || (transB && bVec);
  const tail = vecAlongK ? "" : `
  for (var p = K4; p < K; p++) {
    ${aOne}
    ${bOne}
    ${fmaStep("A0", "B0")}
  }`;
  return `
@compute @workgroup_size(${REG_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
  let M = params[0]; let K = params[1]; let N = params[2]; let nb = params[3];
  let tilesN = params[6]; let perBatch = params[7];
  let g = wgIndex(wid, nwg);
  let bt = g / perBatch;
  if (bt >= nb) { return; }
  let rem = g - bt * perBatch;
  let i = ((rem / tilesN) * ${s.wy}u + tid / ${wx}u) * ${T}u;
  let j = ((rem % tilesN) * ${wx}u + tid % ${wx}u) * ${T}u;
  if (i >= M || j >= N) { return; }
  let aOff = bt * params[4];
  let bOff = bt * params[5];
  let r0 = i; let r1 = min(i + 1u, M - 1u); let r2 = min(i + 2u, M - 1u); let r3 = min(i + 3u, M - 1u);
  let c0 = j; let c1 = min(j + 1u, N - 1u); let c2 = min(j + 2u, N - 1u); let c3 = min(j + 3u, N - 1u);
  ${aSetup}
  ${bSetup}
  var acc0 = vec4<f32>(0.0); var acc1 = vec4<f32>(0.0); var acc2 = vec4<f32>(0.0); var acc3 = vec4<f32>(0.0);
  let K4 = K & 0xfffffffcu;
  for (var p = 0u; p < K4; p += 4u) {
    ${aBlock}
    ${bBlock}
    ${fmaStep("A0", "B0")}
    ${fmaStep("A1", "B1")}
    ${fmaStep("A2", "B2")}
    ${fmaStep("A3", "B3")}
  }${tail}
${storeBlock(s)}
}`;
}

/**
 * Loads of one operand's 64×BK slice into a shared tile `S` of vec4 laid out [BK][16] (S[k·16 + x/4] holds
 * depth k of rows or columns x..x+3: x is m for A and n for B), so the compute loop reads whole vec4s.
 * `alongX` says whether the operand is contiguous along x (A transposed, B not) or along k; in the latter
 * case each element is stored into its lane of the tile. Out-of-range elements are stored as 0, so padded
 * k steps add nothing.
 */
function tileLoad(
  S: string,
  src: string,
  off: string,
  X: string,
  x0: string,
  alongX: boolean,
  vec: boolean,
  bk: number,
): string {
  const n = alongX && vec ? bk * 16 : vec ? TILE * bk / 4 : TILE * bk; // loads of the slice
  const perThread = n / 256;
  const body = (e: string) => {
    if (alongX && vec) {
      // Rows of the source are k; one vec4 = x..x+3 at one k.
      return `{ let kk = ${e} / 16u; let xq = ${e} % 16u; let gk = k0 + kk; let gx = ${x0} + xq * 4u;
      var v = vec4<f32>(0.0);
      if (gk < K && gx < ${X}) { v = ${src}[(${off} + gk * ${X} + gx) >> 2u]; }
      ${S}[kk * 16u + xq] = v; }`;
    }
    if (alongX) {
      return `{ let kk = ${e} / ${TILE}u; let xx = ${e} % ${TILE}u; let gk = k0 + kk; let gx = ${x0} + xx;
      var v = 0.0;
      if (gk < K && gx < ${X}) { v = ${src}[${off} + gk * ${X} + gx]; }
      ${S}[kk * 16u + xx / 4u][xx % 4u] = v; }`;
    }
    if (vec) {
      // Rows of the source are x; one vec4 = k..k+3 at one x, scattered to four k rows of the tile.
      return `{ let xx = ${e} / ${bk / 4}u; let kq = ${e} % ${bk / 4}u; let gk = k0 + kq * 4u; let gx = ${x0} + xx;
      var v = vec4<f32>(0.0);
      if (gk < K && gx < ${X}) { v = ${src}[(${off} + gx * K + gk) >> 2u]; }
      let o = kq * 64u + xx / 4u; let lane = xx % 4u;
      ${S}[o][lane] = v.x; ${S}[o + 16u][lane] = v.y; ${S}[o + 32u][lane] = v.z; ${S}[o + 48u][lane] = v.w; }`;
    }
    return `{ let xx = ${e} / ${bk}u; let kk = ${e} % ${bk}u; let gk = k0 + kk; let gx = ${x0} + xx;
      var v = 0.0;
      if (gk < K && gx < ${X}) { v = ${src}[${off} + gx * K + gk]; }
      ${S}[kk * 16u + xx / 4u][xx % 4u] = v; }`;
  };
  return Array.from({ length: perThread }, (_, q) => body(`(tid + ${q * 256}u)`)).join("\n    ");
}

/**
 * The tiled kernel: workgroup g owns the 64×64 output tile (bt, m0, n0); thread (ty, tx) = (tid / 16,
 * tid % 16) owns its rows m0 + 4·ty … +3 and columns n0 + 4·tx … +3. Each step over k stages a BK-deep
 * slice of A and of B in shared memory (all threads load, barrier, all threads compute, barrier).
 */
function tiledShader(s: Spec): string {
  const { transA, transB, aVec, bVec, bk } = s;
  const loadA = tileLoad("As", "in0", "aOff", "M", "m0", transA, aVec, bk);
  const loadB = tileLoad("Bs", "in1", "bOff", "N", "n0", !transB, bVec, bk);
  return `
var<workgroup> As: array<vec4<f32>, ${bk * 16}>;
var<workgroup> Bs: array<vec4<f32>, ${bk * 16}>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
  let M = params[0]; let K = params[1]; let N = params[2]; let nb = params[3];
  let tilesN = params[6]; let perBatch = params[7];
  let g = wgIndex(wid, nwg);
  let bt = g / perBatch;
  if (bt >= nb) { return; }
  let rem = g - bt * perBatch;
  let m0 = (rem / tilesN) * ${TILE}u;
  let n0 = (rem % tilesN) * ${TILE}u;
  let aOff = bt * params[4];
  let bOff = bt * params[5];
  let ty = tid / 16u;
  let tx = tid % 16u;
  var acc0 = vec4<f32>(0.0); var acc1 = vec4<f32>(0.0); var acc2 = vec4<f32>(0.0); var acc3 = vec4<f32>(0.0);
  for (var k0 = 0u; k0 < K; k0 += ${bk}u) {
    ${loadA}
    ${loadB}
    workgroupBarrier();
    for (var kk = 0u; kk < ${bk}u; kk++) {
      let a = As[kk * 16u + ty];
      let b = Bs[kk * 16u + tx];
      ${fmaStep("a", "b")}
    }
    workgroupBarrier();
  }
  let i = m0 + ty * ${T}u;
  let j = n0 + tx * ${T}u;
${storeBlock(s)}
}`;
}

/**
 * The register kernel's workgroup arrangement, in rows of 4×4 blocks: 8×8 blocks (a 32×32 output tile, so
 * the threads of a workgroup share both A's rows and B's columns in cache), or a single row (column) of
 * 64 blocks when the output has only one block row (column), as in matrix–vector products.
 */
function registerRows(m: number, n: number): number {
  return m <= T ? 1 : n <= T ? REG_WG : 8;
}

/** Launch geometry and parameters of one matmul. */
interface Launch {
  spec: Spec;
  params: number[];
  workgroups: number;
}

/** Plans one matmul: the specialisation, the params words and the grid. */
function plan(
  a: TensorRef<GpuBuffer>,
  b: TensorRef<GpuBuffer>,
  out: TensorRef<GpuBuffer>,
  transA: boolean,
  transB: boolean,
  config: MatmulConfig,
  software: boolean,
): Launch {
  const [batch, m, n] = out.shape;
  const k = transA ? a.shape[1] : a.shape[2];
  const variant = !config.variant || config.variant === "auto"
    ? chooseMatmulVariant(batch, m, k, n, software)
    : config.variant;
  // An empty operand (K = 0) stays scalar: a 4-byte placeholder buffer cannot be bound as vec4.
  const vec = (config.vec4 ?? true) && k > 0;
  const spec: Spec = {
    variant,
    transA,
    transB,
    aVec: vec && (transA ? m : k) % 4 === 0,
    bVec: vec && (transB ? k : n) % 4 === 0,
    oVec: vec && n % 4 === 0,
    bk: variant === "tiled" ? config.tileK ?? 16 : 0,
    wy: variant === "tiled" ? 0 : registerRows(m, n),
  };
  const edgeM = variant === "tiled" ? TILE : T * spec.wy, edgeN = variant === "tiled" ? TILE : T * REG_WG / spec.wy;
  const tilesM = Math.ceil(m / edgeM), tilesN = Math.ceil(n / edgeN);
  const perBatch = tilesM * tilesN;
  const aStride = a.shape[0] === 1 ? 0 : m * k, bStride = b.shape[0] === 1 ? 0 : k * n;
  const total = batch * perBatch;
  return {
    spec,
    params: [m, k, n, batch, aStride, bStride, tilesN, perBatch],
    workgroups: total,
  };
}

const shaders = new Map<string, string>();

/** The WGSL of one specialisation (generated once, then reused: the runtime caches pipelines by source). */
function shaderFor(s: Spec): string {
  const key = `${s.variant}:${+s.transA}${+s.transB}:${+s.aVec}${+s.bVec}${+s.oVec}:${s.bk}:${s.wy}`;
  let src = shaders.get(key);
  if (!src) {
    src = s.variant === "tiled" ? tiledShader(s) : registerShader(s);
    shaders.set(key, src);
  }
  return src;
}

/**
 * The kernel and WGSL source a matmul of these shapes would run (for tests and debugging); `software` as
 * in {@link chooseMatmulVariant}.
 */
export function matmulShaderSource(
  a: TensorRef<GpuBuffer>,
  b: TensorRef<GpuBuffer>,
  out: TensorRef<GpuBuffer>,
  transA: boolean,
  transB: boolean,
  config: MatmulConfig = {},
  software = false,
): { variant: MatmulVariant; source: string } {
  const { spec } = plan(a, b, out, transA, transB, config, software);
  return { variant: spec.variant, source: shaderFor(spec) };
}

/**
 * The matmul family of the WebGPU backend (f32). `config` forces a variant or the scalar paths (tests and
 * benchmarks); the backend uses the default, automatic choice ({@link chooseMatmulVariant}, with
 * `software` = `rt.isSoftware`).
 */
export function matmulKernels(rt: WebGpuRuntime, config: MatmulConfig = {}): KernelFamily<GpuBuffer, "matmul"> {
  if (config.tileK !== undefined && config.tileK !== 16 && config.tileK !== 32) {
    throw new Error(`webgpu matmul: tileK must be 16 or 32, got ${config.tileK}`);
  }
  return {
    matmul([a, b], [out], { transA, transB }) {
      const type = wgslType(out.dtype);
      if (type !== "f32" || a.dtype !== "f32" || b.dtype !== "f32") {
        throw new Error(`webgpu: matmul supports f32 only (got ${a.dtype} · ${b.dtype} → ${out.dtype})`);
      }
      const { spec, params, workgroups } = plan(a, b, out, transA, transB, config, rt.isSoftware);
      rt.dispatch({
        shader: shaderFor(spec),
        inputTypes: [spec.aVec ? "vec4<f32>" : "f32", spec.bVec ? "vec4<f32>" : "f32"],
        outputTypes: [spec.oVec ? "vec4<f32>" : "f32"],
        inputs: [a.buf, b.buf],
        outputs: [out.buf],
        params,
        workgroups,
      });
    },
  };
}
