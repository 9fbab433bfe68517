/**
 * f32 matmul on WebAssembly 128-bit SIMD, single- or multi-threaded, with the module emitted at run time by
 * our own assembler (`emit.ts`: no toolchain, no committed binary).
 *
 * One call: the operands are copied (memcpy) into the module's linear memory; the job is cut into units
 * that the calling thread and the Worker pool of `threads.ts` claim and run with the same `drain`: first
 * units that pack op(A) and op(B) of every batch item (A in MR-row panels, B in NR-column panels, zero
 * past the edges; transposes are strides of the packing loop, so no transposed copy is made, and a
 * batch-1 operand is packed once), then units of C (whole batch items, or blocks of rows or columns when
 * there are fewer items than threads); finally the valid part of the padded C is copied out.
 *
 * Determinism: every output element is summed over K strictly in order by one micro-kernel call sequence
 * that does not depend on the unit it belongs to, so results are bit-identical run to run and for any
 * number of threads. Rounding: with relaxed SIMD (default where available) each step is
 * `f32x4.relaxed_madd`, which V8 compiles to a fused multiply-add on CPUs with FMA (one rounding per
 * step) and to multiply-then-add elsewhere; results are deterministic on one machine but may differ in the
 * last bits between machines. With `fma: false` every product and sum is rounded to f32, like the
 * reference loop on f32 buffers.
 *
 * @module
 */
import {
  DEFAULT_OPTIONS,
  emitMatmulModule,
  MAX_PAGES,
  relaxedSimdSupported,
  sharedMemorySupported,
  type WasmMatmulOptions,
} from "./emit.ts";
import { type MatmulJob, MatmulPool, threadsSupported } from "./threads.ts";
import { lazyWasmInstance } from "./lazy.ts";

export { emitMatmulModule, type WasmMatmulOptions } from "./emit.ts";

/** Where the operands of one {@link WasmMatmul.matmul} call live (all optional; defaults: plain, offset 0). */
export interface WasmMatmulLayout {
  /** Read a as [K, M] (op(A) = Aᵀ), during packing: no transposed copy is made. */
  transA?: boolean;
  /** Read b as [N, K] (op(B) = Bᵀ), during packing. */
  transB?: boolean;
  /** Element offset of the operand in `a`. */
  aOff?: number;
  /** Element offset of the operand in `b`. */
  bOff?: number;
  /** Element offset of the [M, N] result in `out`. */
  outOff?: number;
  /** Threads (calling thread included) the product may use; default 1. */
  threads?: number;
}

/** A batched product for {@link WasmMatmul.matmulBatched}. */
export interface WasmBatchedProduct {
  /** `batch` operands [M, K] ([K, M] if transA), `aStride` elements apart. */
  a: Float32Array;
  /** Elements between consecutive batch items of `a` (0: one operand for every item). */
  aStride: number;
  /** `batch` operands [K, N] ([N, K] if transB), `bStride` elements apart. */
  b: Float32Array;
  /** Elements between consecutive batch items of `b` (0: one operand for every item). */
  bStride: number;
  /** `batch` contiguous [M, N] results, overwritten. */
  out: Float32Array;
  /** Batch items. */
  batch: number;
  /** Rows of op(A) and of the result. */
  m: number;
  /** Columns of op(A), rows of op(B): the summed dimension. */
  k: number;
  /** Columns of op(B) and of the result. */
  n: number;
  /** Read `a` as [K, M] (op(A) = Aᵀ), without a transposed copy. */
  transA?: boolean;
  /** Read `b` as [N, K] (op(B) = Bᵀ), without a transposed copy. */
  transB?: boolean;
  /** Threads (calling thread included) the product may use; default 1. */
  threads?: number;
}

/** A WebAssembly matmul instance: owns its module, linear memory and Worker pool, reused between calls. */
export interface WasmMatmul {
  /**
   * out[M×N] = op(a) · op(b), all row-major f32, where op(a) is a[M×K] (or a[K×M] transposed if
   * `layout.transA`) and op(b) is b[K×N] (or b[N×K] transposed if `layout.transB`); the M×N block of `out`
   * at `layout.outOff` is overwritten.
   */
  matmul(
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
    m: number,
    k: number,
    n: number,
    layout?: WasmMatmulLayout,
  ): void;
  /** out[t] = op(a[t]) · op(b[t]) for every batch item t, spread over `threads` threads. */
  matmulBatched(product: WasmBatchedProduct): void;
  /** The emitted module's bytes (for validation and inspection). */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** The module's memory (shared where supported; grows as needed, never shrinks). */
  readonly memory: WebAssembly.Memory;
  /** The tile and blocking in use, and whether FMA and shared memory are. */
  readonly options: Readonly<Required<WasmMatmulOptions>>;
  /** Workers created so far by this instance's pool (0 until a product used more than one thread). */
  readonly workers: number;
  /** Units of work (packing, or a block of C) Workers have run so far; 0 when the calling thread did all. */
  readonly workerUnits: number;
}

const PAGE = 65536;
/** Most memory one call may use. */
const MAX_BYTES = 2 ** 31 - PAGE;
/** Bytes before the operands: the job descriptor (its first `Ctl.size` bytes, see emit.ts), then padding. */
const DATA_START = 4096;
/**
 * Units of C each thread should get about, so threads that start late or share their core with another
 * process even out by claiming more (dynamic claiming, see threads.ts).
 */
const UNITS_PER_THREAD = 8;
/**
 * Fewest multiply-adds in one unit (a few microseconds of work): claiming a unit costs one compare-and-swap
 * and a call, so units this size keep that overhead under a few percent.
 */
const MIN_UNIT_MACS = 2 ** 16;
/** About how many floats one packing unit packs (a few microseconds of copying). */
const PACK_UNIT_FLOATS = 2 ** 15;

function roundUp(x: number, to: number): number {
  return Math.ceil(x / to) * to;
}

/**
 * How C is cut into units for `threads` threads: whole batch items when there are enough of them, else
 * blocks of rows (columns when there are too few row panels), about {@link UNITS_PER_THREAD} per thread
 * and none smaller than {@link MIN_UNIT_MACS}. One thread gets several units too: V8 first runs a new
 * function on its baseline compiler and uses the optimised code from the next call on, so a large first
 * product made of several `gemm` calls gets up to speed within itself (measured: the first 512³ product of
 * a process took about 40 ms instead of 80; steady state, 12 ms, is unchanged).
 */
function chooseUnits(
  batch: number,
  mp: number,
  np: number,
  k: number,
  mr: number,
  nr: number,
  threads: number,
): { unitRows: number; unitCols: number } {
  const whole = { unitRows: mp, unitCols: np };
  if (batch >= UNITS_PER_THREAD * threads) return whole;
  const perItem = Math.min(
    Math.ceil((UNITS_PER_THREAD * threads) / batch),
    Math.max(1, Math.floor((mp * np * k) / MIN_UNIT_MACS)),
  );
  if (perItem <= 1) return whole;
  const rowPanels = mp / mr;
  if (rowPanels >= perItem) return { unitRows: Math.ceil(rowPanels / perItem) * mr, unitCols: np };
  const colPanels = np / nr;
  const colSplit = Math.min(colPanels, Math.ceil(perItem / rowPanels));
  return { unitRows: mr, unitCols: Math.ceil(colPanels / colSplit) * nr };
}

/**
 * Instantiates the emitted module on a fresh memory (shared where the engine supports it, so the instance
 * can use Workers). `options.fma` defaults to whether relaxed SIMD validates.
 */
export function createWasmMatmul(options: WasmMatmulOptions = {}): WasmMatmul {
  const shared = options.shared ?? sharedMemorySupported();
  const opts: Required<WasmMatmulOptions> = {
    ...DEFAULT_OPTIONS,
    ...options,
    fma: options.fma ?? relaxedSimdSupported(),
    shared,
  };
  const bytes = emitMatmulModule(opts);
  const memory = new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES, shared });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  const drain = instance.exports.drain as (ctl: number) => number;
  const mr = opts.mr, nr = 4 * opts.nv;
  const pool = new MatmulPool(memory, bytes, drain, 0);
  const canThread = shared && threadsSupported();
  let view = new Float32Array(memory.buffer);

  function ensure(bytesNeeded: number): void {
    const have = memory.buffer.byteLength;
    if (bytesNeeded > have) {
      const pages = Math.ceil((bytesNeeded - have) / PAGE);
      if (have / PAGE + pages > MAX_PAGES) throw new RangeError(`wasm matmul: needs ${bytesNeeded} bytes`);
      memory.grow(pages);
    }
    if (view.buffer !== memory.buffer || view.length * 4 !== memory.buffer.byteLength) {
      view = new Float32Array(memory.buffer);
    }
  }

  function matmulBatched(p: WasmBatchedProduct): void {
    const { a, aStride, b, bStride, out, batch, m, k, n, transA = false, transB = false } = p;
    if (batch === 0 || m === 0 || n === 0) return;
    if (
      a.length < (batch - 1) * aStride + m * k || b.length < (batch - 1) * bStride + k * n ||
      out.length < batch * m * n
    ) {
      throw new RangeError(`wasm matmul: short buffer for batch ${batch} of ${m}×${k}×${n}`);
    }
    if (k === 0) {
      out.fill(0, 0, batch * m * n);
      return;
    }
    const mp = roundUp(m, mr), np = roundUp(n, nr);
    // The raw operands are copied (a plain memcpy) into memory, where every thread can pack from them.
    // A broadcast operand (stride 0) is copied and packed once. Float offsets, regions 64-byte aligned.
    const aCount = aStride === 0 ? 1 : batch, bCount = bStride === 0 ? 1 : batch;
    const aRaw = (aCount - 1) * aStride + m * k, bRaw = (bCount - 1) * bStride + k * n;
    const aItem = roundUp(mp * k, 16), bItem = roundUp(np * k, 16), cItem = roundUp(mp * np, 16);
    const aSrc = DATA_START / 4, bSrc = aSrc + roundUp(aRaw, 16);
    const aOff = bSrc + roundUp(bRaw, 16), bOff = aOff + aCount * aItem, cOff = bOff + bCount * bItem;
    const end = (cOff + batch * cItem) * 4;
    // The module does its address arithmetic in i32 (some comparisons signed): stay below 2 GiB.
    if (end > MAX_BYTES) throw new RangeError(`wasm matmul: needs ${end} bytes (at most ${MAX_BYTES})`);
    ensure(end);
    view.set(a.length === aRaw ? a : a.subarray(0, aRaw), aSrc);
    view.set(b.length === bRaw ? b : b.subarray(0, bRaw), bSrc);
    const threads = canThread ? Math.max(1, Math.floor(p.threads ?? 1)) : 1;
    const { unitRows, unitCols } = chooseUnits(batch, mp, np, k, mr, nr, threads);
    const unitsPerRow = Math.ceil(np / unitCols), unitsPerBatch = Math.ceil(mp / unitRows) * unitsPerRow;
    // Packing units: whole panels, about PACK_UNIT_FLOATS each.
    const aUnitRows = Math.max(1, Math.floor(PACK_UNIT_FLOATS / (k * mr))) * mr;
    const bUnitRows = Math.max(1, Math.floor(PACK_UNIT_FLOATS / (k * nr))) * nr;
    const aUnitsPerItem = Math.ceil(mp / aUnitRows), bUnitsPerItem = Math.ceil(np / bUnitRows);
    const aUnits = aCount * aUnitsPerItem, packUnits = aUnits + bCount * bUnitsPerItem;
    const job: MatmulJob = {
      total: packUnits + batch * unitsPerBatch,
      aBase: aOff * 4,
      bBase: bOff * 4,
      cBase: cOff * 4,
      mp,
      np,
      k,
      m,
      n,
      aBatch: aStride === 0 ? 0 : aItem * 4,
      bBatch: bStride === 0 ? 0 : bItem * 4,
      cBatch: cItem * 4,
      unitsPerBatch,
      unitsPerRow,
      unitRows,
      unitCols,
      packUnits,
      aUnits,
      // op(A)[i, p] is a[i·k + p], or a[p·m + i] if transA; op(B)ᵀ[j, p] is b[p·n + j], or b[j·k + p] if transB.
      aSrc: aSrc * 4,
      aRs: transA ? 1 : k,
      aCs: transA ? m : 1,
      aSrcItem: aStride * 4,
      aUnitRows,
      aUnitsPerItem,
      bSrc: bSrc * 4,
      bRs: transB ? k : 1,
      bCs: transB ? 1 : n,
      bSrcItem: bStride * 4,
      bUnitRows,
      bUnitsPerItem,
    };
    pool.run(job, threads);
    for (let t = 0; t < batch; t++) {
      const src = cOff + t * cItem, dst = t * m * n;
      if (np === n) out.set(view.subarray(src, src + m * n), dst);
      else for (let i = 0; i < m; i++) out.set(view.subarray(src + i * np, src + i * np + n), dst + i * n);
    }
  }

  function matmul(
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
    m: number,
    k: number,
    n: number,
    layout: WasmMatmulLayout = {},
  ): void {
    const { transA = false, transB = false, aOff = 0, bOff = 0, outOff = 0, threads = 1 } = layout;
    if (a.length < aOff + m * k || b.length < bOff + k * n || out.length < outOff + m * n) {
      throw new RangeError("wasm matmul: short buffer");
    }
    matmulBatched({
      a: aOff === 0 ? a : a.subarray(aOff),
      aStride: 0,
      b: bOff === 0 ? b : b.subarray(bOff),
      bStride: 0,
      out: out.subarray(outOff, outOff + m * n),
      batch: 1,
      m,
      k,
      n,
      transA,
      transB,
      threads,
    });
  }

  return {
    matmul,
    matmulBatched,
    bytes,
    memory,
    options: opts,
    get workers() {
      return pool.size;
    },
    get workerUnits() {
      return pool.workerUnits;
    },
  };
}

/**
 * The shared default instance, created on first use (one per process, so one linear memory and one Worker
 * pool). Returns undefined where WebAssembly or its SIMD proposal is unavailable (the module fails
 * `WebAssembly.validate` or to instantiate), so callers fall back to their TypeScript path.
 */
export const sharedWasmMatmul: () => WasmMatmul | undefined = lazyWasmInstance(
  () => emitMatmulModule(),
  () => createWasmMatmul(),
);
