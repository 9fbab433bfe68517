/**
 * The Worker pool of the WebAssembly matmul: Workers that run the same emitted module on the same shared
 * memory as the calling thread, so a synchronous kernel can spread one product over every core.
 *
 * Mechanism (why each piece is what it is):
 * - **Workers from a string.** Each Worker is a `node:worker_threads` Worker evaluated from the source
 *   string below (`eval: true`), so it needs no file, no `--allow-read`, and works the same when the package
 *   is imported from a registry. The module bytes and the shared `WebAssembly.Memory` travel in
 *   `workerData`; each Worker compiles and instantiates the module itself.
 * - **Blocking, not messaging.** Kernels are synchronous, so the calling thread cannot await a message:
 *   it publishes a job descriptor in the shared memory, wakes the Workers with `Atomics.notify`, runs
 *   `drain` itself, then blocks in `Atomics.wait` until the descriptor's `done` count reaches its total.
 *   Deno allows `Atomics.wait` on the main thread (browsers do not; there the pool is not used). The Workers
 *   never return to their event loop: they sleep in `Atomics.wait` on the job counter between jobs, so an
 *   idle pool costs no CPU.
 * - **Dynamic claiming.** Work is cut into units and claimed by compare-and-swap inside `drain` (see
 *   `emit.ts`), so a Worker that is still starting, or a core busy with another process, only means the
 *   other threads take more units; a Worker that never shows up cannot stall a job.
 * - **Started before the operands are in.** {@link MatmulPool.start} wakes the Workers as soon as the unit
 *   table is written; the calling thread then copies the operands in one by one (each unit waits for its
 *   operand's `ready` flag), so Workers pack and multiply the first products while the later ones are still
 *   being copied, and the calling thread copies finished results out while Workers finish the last ones.
 * - **Never keeps a program alive.** Every Worker is `unref()`ed right after it is created: the process
 *   exits when the main program is done even though the Workers are blocked in `Atomics.wait`, and Deno's
 *   test sanitizers see no pending op or resource. Nothing has to be terminated on unload. Workers are
 *   started by `../start_worker.ts`, so that starting one inside a kernel runs no other pending JavaScript.
 * - **Borrowed where possible.** Where the other kernels' Workers (`../threads/pool.ts`) can load the
 *   kernels, a pool starts no Workers of its own: it lends its memory and module to those
 *   ({@link MatmulPool.borrowing}), which serve its jobs from the same loop as theirs, so the process has one
 *   set of Workers. The Workers below are the fallback that needs no permission.
 * - **Bounded.** One pool per memory; it only grows, to at most `threads − 1` Workers for the largest
 *   `threads` asked for (capped at {@link MAX_WORKERS}); a job tells how many of them may join.
 *
 * @module
 */
import type { Worker } from "node:worker_threads";
import { startWorker } from "../start_worker.ts";
import { SPIN_MS } from "../threads/waiting.ts";
import { type KernelPool, kernelPool } from "../threads/pool.ts";
import { Ctl, Rec, UNIT_MASK } from "./emit.ts";

/** Most Workers one pool creates (the calling thread makes one more thread). */
export const MAX_WORKERS = 63;

/**
 * The Worker program (plain JavaScript, evaluated by `node:worker_threads`): instantiate the module on the
 * shared memory, then forever: sleep until the job counter changes, and help drain any job that has
 * unclaimed units and admits this Worker. `id` is the Worker's index (0-based).
 */
const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { memory, bytes, id, ctlPtr } = workerData;
const { drain } = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports;
const ctl = new Int32Array(memory.buffer, ctlPtr, ${Ctl.size / 4});
const pause = Atomics.pause ?? (() => {});
for (;;) {
  const w = Atomics.load(ctl, ${Ctl.counter / 4});
  if ((w & ${UNIT_MASK}) >= ctl[${Ctl.total / 4}] || id >= ctl[${Ctl.workers / 4}]) {
    // Spin a while for the next job before sleeping (see SPIN_MS).
    const end = performance.now() + ${SPIN_MS};
    for (let n = 1; Atomics.load(ctl, ${Ctl.counter / 4}) === w; n++) {
      if ((n & 63) === 0 && performance.now() > end) {
        Atomics.wait(ctl, ${Ctl.counter / 4}, w);
        break;
      }
      pause();
    }
    continue;
  }
  try {
    Atomics.add(ctl, ${Ctl.workerUnits / 4}, drain(ctlPtr, -1));
  } catch (e) {
    Atomics.store(ctl, ${Ctl.failed / 4}, 1);
    console.error("moegrad matmul worker:", e);
  }
  Atomics.notify(ctl, ${Ctl.done / 4});
}
`;

/** Workers sharing one memory with the calling thread, and the job descriptor they read. */
export class MatmulPool {
  readonly #memory: WebAssembly.Memory;
  readonly #bytes: Uint8Array<ArrayBuffer>;
  readonly #drain: (ctl: number, until: number) => number;
  readonly #ctlPtr: number;
  #ctl: Int32Array;
  readonly #workers: Worker[] = [];
  #gen = 0;
  /** The kernel pool whose Workers this pool's jobs borrow, once one did (see {@link start}). */
  #lender: KernelPool | null = null;
  /** Set when starting a Worker failed. */
  #refused = false;

  /**
   * `drain` is the calling thread's instance of the module (on `memory`); the descriptor lives at byte
   * `ctlPtr` of the memory ({@link Ctl.size} bytes, 4-byte aligned).
   */
  constructor(
    memory: WebAssembly.Memory,
    bytes: Uint8Array<ArrayBuffer>,
    drain: (ctl: number, until: number) => number,
    ctlPtr: number,
  ) {
    this.#memory = memory;
    this.#bytes = bytes;
    this.#drain = drain;
    this.#ctlPtr = ctlPtr;
    this.#ctl = new Int32Array(memory.buffer, ctlPtr, Ctl.size / 4);
  }

  /** Workers this pool can use: its own, or those of the kernel pool it borrows (they live until the process exits). */
  get size(): number {
    return this.borrowing ? this.#lender!.size : this.#workers.length;
  }

  /** Whether this pool's jobs borrow the kernel pool's Workers (it has started none of its own). */
  get borrowing(): boolean {
    return this.#lender !== null && this.#workers.length === 0;
  }

  /** Units of work Workers have run so far (for tests and benchmarks: proof that Workers share work). */
  get workerUnits(): number {
    return Atomics.load(this.#descriptor(), Ctl.workerUnits / 4);
  }

  /**
   * Creates Workers until there are `count` (at most {@link MAX_WORKERS}). If the runtime refuses to start
   * one, the pool stays at the Workers it has (possibly none) and never tries again: products still run,
   * on fewer threads.
   */
  #ensure(count: number): void {
    const want = Math.min(count, MAX_WORKERS);
    while (!this.#refused && this.#workers.length < want) {
      try {
        const workerData = { memory: this.#memory, bytes: this.#bytes, id: this.#workers.length, ctlPtr: this.#ctlPtr };
        this.#workers.push(startWorker(WORKER_SOURCE, workerData));
      } catch {
        this.#refused = true;
      }
    }
  }

  /**
   * Publishes a job of `total` units whose table is at byte `table` of the memory, and wakes up to
   * `threads − 1` Workers for it. The calling thread must then make every operand ready (see `emit.ts`),
   * call {@link drain} and {@link finish}, and call {@link fail} if anything throws in between.
   */
  start(total: number, table: number, threads: number): void {
    if (total > UNIT_MASK - 1) throw new RangeError(`wasm matmul: ${total} units in one job`);
    let workers = Math.min(Math.max(0, threads - 1), MAX_WORKERS, total - 1);
    // Borrow the kernel pool's Workers unless they cannot serve (see `../threads/pool.ts`, "One set of
    // Workers"); then, and only then, start Workers of our own.
    const lender = workers > 0 && this.#workers.length === 0 ? kernelPool() : null;
    const lent = lender ? lender.lend(this.#memory, this.#bytes, this.#ctlPtr, workers) : null;
    if (lent !== null) {
      this.#lender = lender;
      workers = lent;
    } else if (workers > 0) {
      this.#ensure(workers);
      workers = Math.min(workers, this.#workers.length);
    }
    const ctl = this.#descriptor();
    // Close the previous generation before rewriting the descriptor, so a Worker that read the old counter
    // cannot claim a unit against a half-written descriptor (its compare-and-swap fails).
    this.#gen = (this.#gen + 1) & 0x7ff;
    const head = this.#gen << 20;
    Atomics.store(ctl, Ctl.counter >> 2, head | UNIT_MASK);
    ctl[Ctl.total >> 2] = total;
    ctl[Ctl.table >> 2] = table;
    ctl[Ctl.workers >> 2] = workers;
    ctl[Ctl.failed >> 2] = 0;
    Atomics.store(ctl, Ctl.done >> 2, 0);
    Atomics.store(ctl, Ctl.counter >> 2, head);
    if (workers > 0) lent !== null ? lender!.ring() : Atomics.notify(ctl, Ctl.counter >> 2, workers);
  }

  /** Runs units on the calling thread until none is left unclaimed below index `until` (default: all). */
  drain(until = -1): void {
    this.#drain(this.#ctlPtr, until);
  }

  /**
   * Sleeps until the record at byte `rec` (see {@link Rec}) counts every unit done: the calling thread's
   * wait for one product's result. Throws if a Worker failed.
   */
  waitFor(rec: number): void {
    const view = this.#i32();
    this.#waitUntil(view, (rec + Rec.done) >> 2, view[(rec + Rec.units) >> 2]);
  }

  /** Sleeps until every unit of the job is done (Workers may still be running the last ones). */
  finish(): void {
    const ctl = this.#descriptor();
    this.#waitUntil(ctl, Ctl.done >> 2, ctl[Ctl.total >> 2]);
  }

  /** Waits until `view[i]` ≥ `target`: spinning first (see {@link SPIN_MS}), then sleeping. */
  #waitUntil(view: Int32Array, i: number, target: number): void {
    let end = 0;
    for (let n = 0;; n++) {
      const now = Atomics.load(view, i);
      if (now >= target) return;
      this.#checkFailed();
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

  /**
   * Ends a job the calling thread could not complete: no unit can be claimed any more, and every unit waiting
   * for an operand or for packing gives up instead of hanging.
   */
  fail(): void {
    Atomics.store(this.#descriptor(), Ctl.counter >> 2, (this.#gen << 20) | UNIT_MASK);
    Atomics.store(this.#descriptor(), Ctl.failed >> 2, 1);
  }

  /** Sets an operand's `ready` flag (record at byte `rec`) and wakes the units waiting for it. */
  ready(rec: number): void {
    const view = this.#i32(), i = (rec + Rec.ready) >> 2;
    Atomics.store(view, i, 1);
    Atomics.notify(view, i);
  }

  /** The descriptor's view (renewed when an unshared memory has grown: its old buffer is detached). */
  #descriptor(): Int32Array {
    if (this.#ctl.buffer !== this.#memory.buffer) {
      this.#ctl = new Int32Array(this.#memory.buffer, this.#ctlPtr, Ctl.size / 4);
    }
    return this.#ctl;
  }

  #view: Int32Array<ArrayBufferLike> = new Int32Array(0);
  /** An i32 view of the whole memory. */
  #i32(): Int32Array {
    if (this.#view.buffer !== this.#memory.buffer || this.#view.byteLength !== this.#memory.buffer.byteLength) {
      this.#view = new Int32Array(this.#memory.buffer);
    }
    return this.#view;
  }

  #checkFailed(): void {
    if (this.#descriptor()[Ctl.failed >> 2]) throw new Error("wasm matmul: a Worker failed (see the error above)");
  }
}
