/**
 * Worker threads for the CPU's non-matmul kernels (elementwise programs, the Adam update, softmax and sums
 * along an axis, layer norm and cross-entropy each way, gradient clipping's sums of squares and scaling,
 * strided gathers): a job's units — disjoint parts of its outputs — are claimed by the calling thread and
 * the Workers together, each running the same TypeScript kernel on its part.
 *
 * ## Design
 * - **Buffers the Workers can see.** With more than one thread, the CPU buffer pool (`../pool.ts`)
 *   allocates on `SharedArrayBuffer`, so a tensor's storage is readable and writable from every Worker
 *   without a copy. Everything that hands storage out copies first (`Tensor.data()`/`dataSync()` return
 *   `slice()`s, which are ordinary `ArrayBuffer`s; checkpoints, WebGPU uploads and text decoding read those
 *   copies), so nothing outside the kernels meets shared memory. A job whose buffers are not all shared
 *   (made while threads was 1, or small ones outside the pool) runs on the calling thread as before.
 * - **The same code in every thread.** Each Worker is a `node:worker_threads` Worker evaluated from a short
 *   string (as the matmul pool's) that dynamically imports `worker.ts` from this package's own URL, so
 *   the Workers run exactly the kernels the calling thread runs — one definition, compiled the same way
 *   (the elementwise loops and WebAssembly modules are built per thread from the same program). Loading a
 *   module needs the permission to read it (`--allow-read` for a local checkout, `--allow-import` for a
 *   remote one); without it the Workers report that they cannot serve, and every kernel stays on the
 *   calling thread.
 * - **References by id, sent once.** A buffer (its `SharedArrayBuffer`) and a kernel description (an
 *   elementwise program, say) are posted once to every Worker's `MessagePort` under an id. A job carries
 *   only ids, offsets and numbers in a shared descriptor (`layout.ts`). The Workers never return to their
 *   event loop: a Worker reads the registrations synchronously with `receiveMessageOnPort`, waiting for
 *   one that is still in flight. A buffer's id is forgotten by the Workers when the calling thread's
 *   garbage collector reclaims it (`FinalizationRegistry`), so they do not keep freed tensors alive.
 * - **Blocking jobs, dynamic claiming.** As in the matmul pool (`../wasm/threads.ts`): the calling thread
 *   writes the descriptor, opens the job counter with an atomic store, wakes the Workers, claims units
 *   itself by compare-and-swap and waits until every unit is done. A Worker that is late or busy only
 *   means the others take more units. Workers spin briefly between jobs, then sleep in `Atomics.wait`;
 *   they are `unref()`ed so they never keep a program alive.
 * - **One set of Workers.** The WebAssembly matmul has a Worker pool of its own (`../wasm/threads.ts`),
 *   which needs no permission; where this pool's Workers have loaded the kernels, the matmul borrows them
 *   instead ({@link KernelPool.lend}): each Worker instantiates the matmul module on the instance's shared
 *   memory and serves both kinds of jobs from one loop, waking on one doorbell. With two sets, `threads`
 *   − 1 Workers of each, the set that had just finished a job spun (see `SPIN_MS`) on a core the other
 *   set needed (2-vCPU VM, threads 2, two sets: with a 1 ms spin the step's dense matmuls took 82 ms
 *   against 66–72 ms with 0.1 ms). One set also means half the threads and one place to wake.
 * - **Started without re-entering the caller.** The first Worker is started inside some kernel call;
 *   `../start_worker.ts` makes sure that starting it runs no other pending JavaScript there.
 * - **Bits.** A unit is a contiguous range of output elements (elementwise, Adam, gathers), of independent
 *   rows (softmax, sums, layer norm, cross-entropy), of columns each summed over every row in order (layer
 *   norm's dweight and dbias) or one whole array (a gradient's sum of squares, combined afterwards in a
 *   fixed order): every output element is computed by the same code in the same order whatever the
 *   thread count, so results are bit-identical for any `threads`. One thread never enters this module.
 *
 * @module
 */
import { MessageChannel, type MessagePort } from "node:worker_threads";
import type { TypedArray } from "../../../core/dtype.ts";
import { SPIN_MS, threadsSupported } from "./waiting.ts";
import { startWorker } from "../start_worker.ts";
import { currentTensorHeap, SCRATCH_BYTES } from "../wasm/heap.ts";
import {
  ARGS_BYTE,
  claimUnits,
  Ctl,
  CTL_BYTES,
  DTYPE_CODES,
  GEN_SHIFT,
  MAX_ARGS,
  MAX_BUFS,
  UNIT_MASK,
  type UnitFn,
  viewOf,
} from "./layout.ts";

/**
 * Smallest jobs (in elements of the input or output that sets the work) split over threads, per kind.
 * Waking a Worker and waiting for it costs tens of microseconds, more than a short loop saves, and inside a
 * training step the Worker is usually asleep when a job comes (other work ran in between). Indicative
 * (shared 2-vCPU VM, `bench/threads_elementwise.ts` with Workers awake, the training step's per-op profile
 * with Workers as they come): a JavaScript elementwise loop (transcendentals, ≈ 10 ns per element) and a
 * softmax pay from a few 10⁴ elements; layer norm and rotary embedding (≈ 1–3 ns per element) from about
 * 10⁵ (2^17: 1.35–1.6× on two threads); a WebAssembly SIMD elementwise loop, an Adam update or a sum
 * (≈ 0.5–3 ns per element, bound by memory) only from a few 10⁵, and a strided gather (≈ 0.75 ns per
 * element) from 2^19 (2^17, 0.1 ms, ran 0.8–0.9× as fast on two threads with the Worker asleep).
 */
export interface ThreadMinimums {
  /** Elementwise programs on the JavaScript loops. */
  elementwiseJs: number;
  /** Strided gathers (permute, slice, expand). */
  gather: number;
  /** Elementwise programs on the WebAssembly SIMD loop. */
  elementwiseSimd: number;
  /** The Adam/AdamW update (and gradient clipping's in-place scaling). */
  adam: number;
  /** Softmax and log-softmax (masked too), and cross-entropy (each way). */
  softmax: number;
  /** Row kernels without transcendentals: layer norm (each way) and rotary embedding. */
  rows: number;
  /** Sums along an axis, and gradient clipping's sums of squares (all gradients' elements together). */
  sum: number;
}

/** The live minimums (read by the kernels; change them with {@link setThreadMinimums}). */
export const threadMinimums: Readonly<ThreadMinimums> = {
  elementwiseJs: 1 << 15,
  gather: 1 << 19,
  elementwiseSimd: 1 << 18,
  adam: 1 << 16,
  // Re-measured 2026-12-07 (bench/threads_elementwise.ts, 2-vCPU VM): softmax paid nothing at 2^14 elements (0.91×)
  // and 1.30× at 2^16; sums over any axis at most 1.13× even at 2^20 (1.10× at 2^19 with the Worker asleep), so
  // only the largest are split.
  softmax: 1 << 15,
  rows: 1 << 17,
  sum: 1 << 19,
};

/** Changes some minimums (tests use 1 to split every job; benchmarks measure them); returns the previous. */
export function setThreadMinimums(values: Partial<ThreadMinimums>): ThreadMinimums {
  const previous = { ...threadMinimums };
  Object.assign(threadMinimums, values);
  return previous;
}

/**
 * Rows per unit when `rows` independent rows are split over `threads` threads: about four units per
 * thread, so a late Worker only means the others take more.
 */
export function rowsPerUnit(rows: number, threads: number): number {
  return Math.max(1, Math.ceil(rows / (4 * threads)));
}

/** Most Workers the pool creates (the calling thread is one more). */
export const MAX_KERNEL_WORKERS = 63;

/** The Worker program: load the kernels from the package, then serve jobs forever (see `worker.ts`). */
const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const ctl = new Int32Array(workerData.ctl);
import(workerData.url).then((m) => {
  Atomics.add(ctl, ${Ctl.ready}, 1);
  m.serve(workerData);
}, () => Atomics.store(ctl, ${Ctl.broken}, 1));
`;

/** One registration message (see `worker.ts`). */
export type Registration =
  | { type: "buffer"; id: number; buffer: SharedArrayBuffer; heap: boolean }
  | { type: "heap"; memory: WebAssembly.Memory; scratch: number }
  | { type: "kernel"; id: number; kind: string; desc: unknown }
  | { type: "matmul"; id: number; memory: WebAssembly.Memory; bytes: Uint8Array<ArrayBuffer>; ctlPtr: number }
  | { type: "forget"; id: number };

/** The calling thread's side of the pool. */
export class KernelPool {
  readonly #ctlBuffer = new SharedArrayBuffer(CTL_BYTES);
  readonly #ctl = new Int32Array(this.#ctlBuffer);
  readonly #args = new Float64Array(this.#ctlBuffer, ARGS_BYTE, MAX_ARGS);
  readonly #ports: MessagePort[] = [];
  #refused = false;
  #gen = 0;
  #nextId = 1;
  /** Ids of the buffers and kernels the current Workers know (replaced when Workers are added). */
  #bufferIds = new WeakMap<SharedArrayBuffer, number>();
  #kernelIds = new Map<string, number>();
  #hostIds = new WeakMap<WebAssembly.Memory, number>();
  /** The tensor heap's memory, once the current Workers were told of it (with scratch of their own). */
  #heapPosted: WebAssembly.Memory | null = null;
  readonly #forget = new FinalizationRegistry<number>((id) => this.#post({ type: "forget", id }));

  /**
   * Counters since the pool started, for benchmarks (take differences): jobs Workers were woken for (kernel
   * and lent matmul jobs), times a Worker fell asleep waiting for one, and milliseconds Workers spent in jobs
   * (counted in whole microseconds per job in an Int32 word, so it wraps after ~35 minutes of work).
   */
  get stats(): { rings: number; sleeps: number; busyMs: number } {
    const c = this.#ctl;
    return {
      rings: Atomics.load(c, Ctl.doorbell),
      sleeps: Atomics.load(c, Ctl.sleeps),
      busyMs: Atomics.load(c, Ctl.busy) / 1000,
    };
  }

  /** Workers started so far. */
  get size(): number {
    return this.#ports.length;
  }

  /** Whether Workers can serve jobs (false once one failed to load the kernels or to start). */
  get usable(): boolean {
    return !this.#refused && Atomics.load(this.#ctl, Ctl.broken) === 0;
  }

  /** Units Workers have run (for tests: proof that they share work). */
  workerUnits = 0;
  /** Jobs run and buffers or kernels posted to the Workers (for benchmarks: the pool's traffic). */
  readonly traffic = { jobs: 0, posted: 0 };

  #ensure(count: number): void {
    const want = Math.min(count, MAX_KERNEL_WORKERS);
    if (this.#ports.length >= want || this.#refused) return;
    // New Workers know nothing yet: start the registrations over (old ids are forgotten as their buffers die).
    this.#bufferIds = new WeakMap();
    this.#kernelIds = new Map();
    this.#hostIds = new WeakMap();
    this.#heapPosted = null;
    const url = new URL("./worker.ts", import.meta.url).href;
    while (this.#ports.length < want) {
      try {
        const { port1, port2 } = new MessageChannel();
        startWorker(WORKER_SOURCE, { url, ctl: this.#ctlBuffer, id: this.#ports.length, port: port2 }, [port2]);
        port1.unref?.();
        this.#ports.push(port1);
      } catch {
        this.#refused = true;
        return;
      }
    }
  }

  #post(message: Registration): void {
    this.traffic.posted++;
    for (const port of this.#ports) port.postMessage(message);
  }

  #bufferId(buffer: SharedArrayBuffer): number {
    let id = this.#bufferIds.get(buffer);
    if (id === undefined) {
      id = this.#nextId++;
      this.#bufferIds.set(buffer, id);
      this.#forget.register(buffer, id);
      const heap = this.#tellHeap(buffer);
      this.#post({ type: "buffer", id, buffer, heap });
    }
    return id;
  }

  /**
   * Whether `buffer` is the tensor heap's memory (`../wasm/heap.ts`); the first time one is, each Worker is
   * sent the memory and scratch bytes of its own in it, so its kernels run on tensors there in place too.
   */
  #tellHeap(buffer: SharedArrayBuffer): boolean {
    const heap = currentTensorHeap();
    if (!heap || !heap.owns(buffer)) return false;
    if (this.#heapPosted !== heap.memory) {
      const scratch = this.#ports.map(() => heap.alloc(SCRATCH_BYTES)?.address ?? -1);
      if (scratch.includes(-1)) return false;
      this.#ports.forEach((port, i) => {
        this.traffic.posted++;
        port.postMessage({ type: "heap", memory: heap.memory, scratch: scratch[i] } satisfies Registration);
      });
      this.#heapPosted = heap.memory;
    }
    return true;
  }

  #kernelId(kind: string, key: string, desc: unknown): number {
    const full = `${kind}|${key}`;
    let id = this.#kernelIds.get(full);
    if (id === undefined) {
      id = this.#nextId++;
      this.#kernelIds.set(full, id);
      this.#post({ type: "kernel", id, kind, desc });
    }
    return id;
  }

  /**
   * Runs `units` units of kernel `kind` (description `desc`, cached under `key`) over `views` and `args` on
   * up to `threads` threads; `local` is the calling thread's copy of the unit function the Workers run
   * for `kind`. Returns false, having run nothing, when the Workers cannot take it (unsupported, not
   * loaded, or a buffer that is not shared).
   */
  run(
    kind: string,
    key: string,
    desc: unknown,
    views: readonly TypedArray[],
    args: readonly number[],
    units: number,
    threads: number,
    local: (views: readonly TypedArray[], unit: number) => void,
  ): boolean {
    if (!this.usable || views.length > MAX_BUFS || args.length > MAX_ARGS || units > UNIT_MASK - 1) return false;
    const workers = Math.min(threads - 1, units - 1, MAX_KERNEL_WORKERS);
    if (workers < 1) return false;
    this.#ensure(workers);
    // Until a Worker has loaded the kernels, jobs stay on the calling thread and nothing is posted (so a
    // Worker that cannot load them is never sent a buffer).
    if (!this.usable || Atomics.load(this.#ctl, Ctl.ready) === 0) return false;
    const staged = this.#stage(views);
    if (!staged) return false;
    this.#job(kind, key, desc, staged, args, units, workers, local);
    // Copy staged buffers back (unchanged inputs included: harmless, and cheaper than knowing which).
    staged.forEach((s, i) => {
      if (s !== views[i]) bytesOf(views[i]).set(bytesOf(s));
    });
    return true;
  }

  /**
   * Lends the pool's Workers to the WebAssembly matmul instance whose module `bytes` run on the shared
   * `memory` with their job descriptor at byte `ctlPtr` (see "One set of Workers" above), for a job that
   * `workers` Workers may join. Returns how many can (0 while no Worker has loaded yet: the caller runs that
   * job alone), or null when this pool cannot serve at all (its Workers could not load the kernels or
   * start), so the caller starts Workers of its own. The caller rings {@link ring} once its job is open.
   */
  lend(memory: WebAssembly.Memory, bytes: Uint8Array<ArrayBuffer>, ctlPtr: number, workers: number): number | null {
    if (!this.usable) return null;
    this.#ensure(workers);
    if (!this.usable) return null;
    if (Atomics.load(this.#ctl, Ctl.ready) === 0) return 0;
    if (!this.#hostIds.has(memory)) {
      const id = this.#nextId++;
      this.#hostIds.set(memory, id);
      this.#forget.register(memory, id);
      this.#post({ type: "matmul", id, memory, bytes, ctlPtr });
    }
    return Math.min(workers, this.#ports.length);
  }

  /** Wakes the idle Workers: a job they may join is open (its counter was opened before this call). */
  ring(): void {
    Atomics.add(this.#ctl, Ctl.doorbell, 1);
    Atomics.notify(this.#ctl, Ctl.doorbell);
  }

  #scratch = new SharedArrayBuffer(0);

  /**
   * The job's buffers as shared views: shared ones as they are, small unshared ones (outputs under the
   * pool's smallest class, like a sum's result) copied into a shared scratch buffer; null if a large
   * one is not shared (made while threads was 1: the caller runs the job itself).
   */
  #stage(views: readonly TypedArray[]): TypedArray[] | null {
    let bytes = 0;
    for (const v of views) {
      if (v.buffer instanceof SharedArrayBuffer) continue;
      if (v.byteLength > STAGE_MAX_BYTES) return null;
      bytes += Math.ceil(v.byteLength / 16) * 16;
    }
    if (bytes > this.#scratch.byteLength) {
      this.#scratch = new SharedArrayBuffer(Math.max(bytes, 2 * this.#scratch.byteLength));
    }
    let at = 0;
    return views.map((v) => {
      if (v.buffer instanceof SharedArrayBuffer) return v;
      const s = viewOf(dtypeOf(v), this.#scratch, at, v.length);
      bytesOf(s).set(bytesOf(v));
      at += Math.ceil(v.byteLength / 16) * 16;
      return s;
    });
  }

  #job(
    kind: string,
    key: string,
    desc: unknown,
    views: readonly TypedArray[],
    args: readonly number[],
    units: number,
    workers: number,
    local: (views: readonly TypedArray[], unit: number) => void,
  ): void {
    const ctl = this.#ctl;
    const kernel = this.#kernelId(kind, key, desc);
    this.traffic.jobs++;
    // Close the counter before rewriting the descriptor (see layout.ts).
    this.#gen = (this.#gen + 1) & ((1 << (31 - GEN_SHIFT)) - 1);
    const head = this.#gen << GEN_SHIFT;
    Atomics.store(ctl, Ctl.counter, head | UNIT_MASK);
    ctl[Ctl.total] = units;
    ctl[Ctl.workers] = Math.min(workers, this.#ports.length);
    ctl[Ctl.failed] = 0;
    ctl[Ctl.kernel] = kernel;
    ctl[Ctl.nbufs] = views.length;
    ctl[Ctl.nargs] = args.length;
    views.forEach((v, i) => {
      const at = Ctl.bufs + 4 * i;
      ctl[at] = this.#bufferId(v.buffer as SharedArrayBuffer);
      ctl[at + 1] = v.byteOffset;
      ctl[at + 2] = v.length;
      ctl[at + 3] = DTYPE_CODES.indexOf(dtypeOf(v));
    });
    this.#args.set(args);
    Atomics.store(ctl, Ctl.done, 0);
    Atomics.store(ctl, Ctl.counter, head);
    this.ring();
    let mine = 0;
    const error = claimUnits(ctl, head, (unit) => {
      mine++;
      local(views, unit);
    });
    // Every unit was claimed; wait for the ones Workers are still running (even after an error: the
    // buffers must not be reused under them).
    waitAtLeast(ctl, Ctl.done, units);
    if (error !== undefined) throw error;
    this.workerUnits += units - mine;
    if (ctl[Ctl.failed]) throw new Error(`moegrad ${kind} worker: a unit failed (see the error above)`);
  }
}

/** Unshared buffers up to this size are copied through shared scratch memory instead of refusing the job. */
export const STAGE_MAX_BYTES = 1 << 16;

function bytesOf(v: TypedArray): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

function dtypeOf(v: TypedArray): (typeof DTYPE_CODES)[number] {
  return v instanceof Float32Array
    ? "f32"
    : v instanceof Float64Array
    ? "f64"
    : v instanceof Int32Array
    ? "i32"
    : "bool";
}

/** Waits until `view[i]` ≥ `target`: spinning first (see `SPIN_MS`), then sleeping. */
export function waitAtLeast(view: Int32Array, i: number, target: number): void {
  let end = 0;
  for (let n = 0;; n++) {
    const now = Atomics.load(view, i);
    if (now >= target) return;
    if ((n & 63) === 0) {
      if (end === 0) end = performance.now() + SPIN_MS;
      else if (performance.now() > end) {
        Atomics.wait(view, i, now, 100);
        continue;
      }
    }
    Atomics.pause?.();
  }
}

let pool: KernelPool | null | undefined;

/** The process-wide kernel pool; null where Workers or blocking waits are unavailable. */
export function kernelPool(): KernelPool | null {
  if (pool === undefined) {
    pool = threadsSupported() && typeof SharedArrayBuffer === "function" ? new KernelPool() : null;
  }
  return pool;
}

/**
 * Runs a job on the kernel pool if it applies (see {@link KernelPool.run}); returns false when the caller
 * must run it itself. `unit` is the function the Workers run for `kind` (listed in `worker.ts`).
 */
export function runParallel<D>(
  kind: string,
  key: string,
  desc: D,
  unit: (desc: D, views: readonly TypedArray[], args: ArrayLike<number>, unit: number) => void,
  views: readonly TypedArray[],
  args: readonly number[],
  units: number,
  threads: number,
): boolean {
  if (threads < 2 || units < 2) return false;
  const p = kernelPool();
  return p !== null && p.run(kind, key, desc, views, args, units, threads, (v, u) => unit(desc, v, args, u));
}

export type { UnitFn };
