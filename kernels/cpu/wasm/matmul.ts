/**
 * f32 matmul on WebAssembly 128-bit SIMD, single- or multi-threaded, with the module emitted at run time by
 * our own assembler (`emit.ts`: no toolchain, no committed binary).
 *
 * One call runs any list of products ({@link WasmMatmul.products}: a batch, or every group of a grouped
 * matmul) as ONE job of the Worker pool of `threads.ts`, planned by `plan.ts`: units that pack each operand
 * (A in MR-row panels, B in NR-column panels, zero past the edges; transposes are strides of the packing
 * loop, so no transposed copy is made, and an operand shared by several products is packed once), and
 * blocks of each product's C, which the calling thread and the Workers claim with the same `drain`. The
 * calling thread wakes the Workers first, then copies the operands (memcpy) into the module's linear memory
 * one by one, so the Workers start on the first product while later operands are still being copied in;
 * after its own share it copies each product's result out as soon as that product is done.
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
  splatFor,
  type WasmMatmulOptions,
} from "./emit.ts";
import { MatmulPool } from "./threads.ts";
import { threadsSupported } from "../threads/waiting.ts";
import {
  type MatmulOperand,
  type MatmulProduct,
  type MatmulProducts,
  type PlacedOperand,
  planProducts,
} from "./plan.ts";
import { lazyWasmInstance } from "./lazy.ts";
import { WasmHeap } from "./heap.ts";
import { TABLE_BYTES, writeTables } from "./transcendental.ts";

export { emitMatmulModule, type WasmMatmulOptions } from "./emit.ts";
export type { MatmulOperand, MatmulProduct, MatmulProducts } from "./plan.ts";

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
  /**
   * Every product of `job` in one job of the pool, spread over `threads` threads (default 1); results of
   * products with K = 0 are zeroed. An operand or result out of its array's bounds throws a RangeError.
   */
  products(job: MatmulProducts, threads?: number): void;
  /** The emitted module's bytes (for validation and inspection). */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** The module's memory (shared where supported; grows as needed, never shrinks). */
  readonly memory: WebAssembly.Memory;
  /**
   * The regions of {@link WasmMatmul.memory} above the job descriptor: the products' working memory is one,
   * and arrays made in others (the CPU buffer pool puts tensors there when they are shared, see
   * `../pool.ts`) are packed in place instead of copied in.
   */
  readonly heap: WasmHeap;
  /** The tile and blocking in use, and whether FMA and shared memory are. */
  readonly options: Readonly<Required<WasmMatmulOptions>>;
  /**
   * Workers this instance's products can use: 0 until a product used more than one thread; then the kernel
   * pool's Workers when it borrows them (see {@link WasmMatmul.borrowing}), else those its own pool started.
   */
  readonly workers: number;
  /**
   * Whether this instance's products run on more than one thread borrow the kernel pool's Workers (one set
   * of Workers for every CPU kernel, see `../threads/pool.ts`); false until one did, and where that pool
   * cannot serve (its Workers cannot load the kernels: then the instance starts Workers of its own).
   */
  readonly borrowing: boolean;
  /** Units of work (packing, or a block of C) Workers have run so far; 0 when the calling thread did all. */
  readonly workerUnits: number;
}

const PAGE = 65536;
/** Most memory one call may use, and the heap's limit. */
const MAX_BYTES = 2 ** 31 - PAGE;
/**
 * Byte address of the job descriptor (`Ctl.size` bytes, see emit.ts): after the transcendental tables
 * (`transcendental.ts`), which the memory starts with so that elementwise modules run on it too (on tensors
 * in the heap, in place: see `elementwise.ts`).
 */
const CTL_AT = Math.ceil(TABLE_BYTES / 64) * 64;
/** Bytes before the heap: the tables, the job descriptor, then padding. */
const DATA_START = Math.ceil((CTL_AT + 1024) / 4096) * 4096;
/** A job's working memory is a heap region this much larger than the first job that needed it needs. */
const SCRATCH_SLACK = 1.25;

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
    splat: options.splat ?? splatFor(options.mr ?? DEFAULT_OPTIONS.mr),
    shared,
  };
  const bytes = emitMatmulModule(opts);
  const memory = new WebAssembly.Memory({ initial: Math.ceil(DATA_START / PAGE), maximum: MAX_PAGES, shared });
  writeTables(memory);
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  const drain = instance.exports.drain as (ctl: number, until: number) => number;
  const mr = opts.mr, nr = 4 * opts.nv;
  const pool = new MatmulPool(memory, bytes, drain, CTL_AT);
  const canThread = shared && threadsSupported();
  let view = new Float32Array(memory.buffer), words = new Int32Array(memory.buffer);
  const heap = new WasmHeap(memory, DATA_START, Math.min(MAX_BYTES, MAX_PAGES * PAGE));
  /** The jobs' working memory: a heap region, replaced by a bigger one when a job needs more. */
  let scratch = -1, scratchEnd = -1;
  /** Where an operand's array lives in the memory (byte address), or −1 when it does not. */
  const resident = (data: Float32Array) => heap.owns(data.buffer) ? data.byteOffset : -1;

  /** A plan whose memory lies in the working region, growing the region first if it has to. */
  function planIn(job: MatmulProducts, threads: number): ReturnType<typeof planProducts> {
    let plan = planProducts(job, threads, mr, nr, Math.max(scratch, 0), resident, opts.kc);
    if (scratch < 0 || plan.end > scratchEnd) {
      const bytes = Math.ceil((plan.end - Math.max(scratch, 0)) * SCRATCH_SLACK);
      const region = heap.alloc(bytes);
      if (!region) throw new RangeError(`wasm matmul: needs ${bytes} bytes of working memory`);
      if (scratch >= 0) heap.free(scratch);
      scratch = region.address;
      scratchEnd = scratch + heap.sizeOf(scratch);
      plan = planProducts(job, threads, mr, nr, scratch, resident, opts.kc);
    }
    if (view.buffer !== memory.buffer) {
      view = new Float32Array(memory.buffer);
      words = new Int32Array(memory.buffer);
    }
    return plan;
  }

  /**
   * Copies operands in (a memcpy each, merged while consecutive operands are consecutive both in their array
   * and in memory; none for a resident operand) and marks each ready.
   */
  function copyIn(list: readonly PlacedOperand[]): void {
    for (let i = 0; i < list.length;) {
      const x = list[i], { data, offset } = x.operand;
      if (x.resident) {
        pool.ready(list[i++].rec);
        continue;
      }
      let end = i + 1, span = x.span;
      for (; end < list.length; end++) {
        const y = list[end];
        if (y.resident || y.operand.data !== data || y.operand.offset !== offset + span || y.raw !== x.raw + span) {
          break;
        }
        span += y.span;
      }
      view.set(offset === 0 && data.length === span ? data : data.subarray(offset, offset + span), x.raw);
      for (; i < end; i++) pool.ready(list[i].rec);
    }
  }

  /** Every product of the job as one job of the pool (see the module docs). */
  function products(job: MatmulProducts, threadsAsked = 1): void {
    for (const x of job.lhs.concat(job.rhs)) {
      const span = x.rows === 0 || x.k === 0 ? 0 : (x.rows - 1) * x.rs + (x.k - 1) * x.cs + 1;
      if (x.offset < 0 || x.rs < 0 || x.cs < 0 || x.offset + span > x.data.length) {
        throw new RangeError(`wasm matmul: a ${x.rows}×${x.k} operand lies outside its array`);
      }
    }
    for (const p of job.products) {
      const m = job.lhs[p.a].rows, n = job.rhs[p.b].rows;
      if (p.outOff < 0 || p.outOff + m * n > p.out.length) throw new RangeError("wasm matmul: short output");
      if (job.lhs[p.a].k === 0) p.out.fill(0, p.outOff, p.outOff + m * n);
    }
    const threads = canThread ? Math.max(1, Math.floor(threadsAsked)) : 1;
    // (The module does its address arithmetic in i32, some comparisons signed: the heap stays below 2 GiB.)
    const plan = planIn(job, threads);
    if (plan.total === 0) return;
    words.set(plan.records, scratch / 4);
    words.set(plan.units, plan.table / 4);
    pool.start(plan.total, plan.table, threads);
    try {
      const { results, slots } = plan, last = results.length - 1;
      const next = (j: number) => j < last ? results[j + 1].first : -1;
      let retired = 0;
      /** Copies results out up to `upTo`, first running what is left of them here (unless `drained`). */
      const retire = (upTo: number, drained = false) => {
        for (; retired <= upTo; retired++) {
          const r = results[retired];
          if (!drained) pool.drain(next(retired));
          pool.waitFor(r.rec);
          // Written in place (direct), or computed into the working memory and copied out here.
          if (r.direct > 0) continue;
          const { n, np, c } = r, out = r.product.out, m = r.m, outOff = r.product.outOff;
          if (np === n) out.set(view.subarray(c, c + m * n), outOff);
          else for (let i = 0; i < m; i++) out.set(view.subarray(c + i * np, c + i * np + n), outOff + i * n);
        }
      };
      if (slots > last) {
        // Memory is not recycled: copy everything in at once, in memory order, so the copies of a batch's
        // consecutive operands merge (measured: on one thread a batch of 16 small products ran ≈ 4% faster
        // than copied product by product, each then drained).
        copyIn(plan.copies.toSorted((x, y) => x.raw - y.raw));
        pool.drain();
        retire(last, true);
      } else {
        // Products copied in ahead of the one this thread works on: as many as leaves the slot being refilled
        // one product behind on one thread (it is done: this thread ran it) or two behind with Workers (long
        // finished).
        const ahead = Math.max(0, slots - (threads > 1 ? 2 : 1));
        for (let j = 0, copied = 0; j <= last; j++) {
          for (; copied <= last && copied <= j + ahead; copied++) {
            if (copied >= slots) retire(copied - slots);
            copyIn(results[copied].operands);
          }
          pool.drain(next(j));
        }
      }
      retire(last);
      pool.finish();
    } catch (e) {
      pool.fail();
      throw e;
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
    // op(A)[i, p] is a[i·k + p], or a[p·m + i] if transA; op(B)ᵀ[j, p] is b[p·n + j], or b[j·k + p] if transB.
    // A broadcast operand (stride 0) is one operand, copied and packed once.
    const lhs: MatmulOperand[] = [], rhs: MatmulOperand[] = [], items: MatmulProduct[] = [];
    const [ars, acs, brs, bcs] = [transA ? 1 : k, transA ? m : 1, transB ? k : 1, transB ? 1 : n];
    for (let t = 0; t < batch; t++) {
      if (t === 0 || aStride !== 0) lhs.push({ data: a, offset: t * aStride, rows: m, k, rs: ars, cs: acs });
      if (t === 0 || bStride !== 0) rhs.push({ data: b, offset: t * bStride, rows: n, k, rs: brs, cs: bcs });
      items.push({ a: lhs.length - 1, b: rhs.length - 1, out, outOff: t * m * n });
    }
    products({ lhs, rhs, products: items }, p.threads ?? 1);
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
    products,
    bytes,
    memory,
    heap,
    options: opts,
    get workers() {
      return pool.size;
    },
    get workerUnits() {
      return pool.workerUnits;
    },
    get borrowing() {
      return pool.borrowing;
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
