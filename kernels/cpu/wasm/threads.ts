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
 * - **Never keeps a program alive.** Every Worker is `unref()`ed right after it is created: the process
 *   exits when the main program is done even though the Workers are blocked in `Atomics.wait`, and Deno's
 *   test sanitizers see no pending op or resource. Nothing has to be terminated on unload.
 * - **Bounded.** One pool per memory; it only grows, to at most `threads − 1` Workers for the largest
 *   `threads` asked for (capped at {@link MAX_WORKERS}); a job tells how many of them may join.
 *
 * @module
 */
import { Worker } from "node:worker_threads";
import { Ctl, UNIT_MASK } from "./emit.ts";

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
for (;;) {
  const w = Atomics.load(ctl, ${Ctl.counter / 4});
  if ((w & ${UNIT_MASK}) >= ctl[${Ctl.total / 4}] || id >= ctl[${Ctl.workers / 4}]) {
    Atomics.wait(ctl, ${Ctl.counter / 4}, w);
    continue;
  }
  try {
    Atomics.add(ctl, ${Ctl.workerUnits / 4}, drain(ctlPtr));
  } catch (e) {
    Atomics.store(ctl, ${Ctl.failed / 4}, 1);
    console.error("moegrad matmul worker:", e);
  }
  Atomics.notify(ctl, ${Ctl.done / 4});
}
`;

/** The descriptor fields a job sets (every {@link Ctl} field but the pool's own bookkeeping). */
export type MatmulJob = Record<Exclude<keyof typeof Ctl, PoolField>, number>;
/** The descriptor fields the pool itself maintains. */
export type PoolField = "counter" | "done" | "workers" | "failed" | "workerUnits" | "packDone" | "size";

/** Workers sharing one memory with the calling thread, and the job descriptor they read. */
export class MatmulPool {
  readonly #memory: WebAssembly.Memory;
  readonly #bytes: Uint8Array;
  readonly #drain: (ctl: number) => number;
  readonly #ctlPtr: number;
  #ctl: Int32Array;
  readonly #workers: Worker[] = [];
  #gen = 0;
  /** Set when starting a Worker failed. */
  #refused = false;

  /**
   * `drain` is the calling thread's instance of the module (on `memory`); the descriptor lives at byte
   * `ctlPtr` of the memory ({@link Ctl.size} bytes, 4-byte aligned).
   */
  constructor(memory: WebAssembly.Memory, bytes: Uint8Array, drain: (ctl: number) => number, ctlPtr: number) {
    this.#memory = memory;
    this.#bytes = bytes;
    this.#drain = drain;
    this.#ctlPtr = ctlPtr;
    this.#ctl = new Int32Array(memory.buffer, ctlPtr, Ctl.size / 4);
  }

  /** Workers created so far (they live until the process exits). */
  get size(): number {
    return this.#workers.length;
  }

  /** Units of work Workers have run so far (for tests and benchmarks: proof that Workers share work). */
  get workerUnits(): number {
    return Atomics.load(this.#ctl, Ctl.workerUnits / 4);
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
        const worker = new Worker(WORKER_SOURCE, {
          eval: true,
          workerData: { memory: this.#memory, bytes: this.#bytes, id: this.#workers.length, ctlPtr: this.#ctlPtr },
        });
        worker.unref();
        this.#workers.push(worker);
      } catch {
        this.#refused = true;
      }
    }
  }

  /**
   * Runs the job on the calling thread and up to `threads − 1` Workers, returning when all `job.total`
   * units are done.
   */
  run(job: MatmulJob, threads: number): void {
    const total = job.total;
    if (total > UNIT_MASK - 1) throw new RangeError(`wasm matmul: ${total} units in one job`);
    let workers = Math.min(Math.max(0, threads - 1), MAX_WORKERS, total - 1);
    if (workers > 0) {
      this.#ensure(workers);
      workers = Math.min(workers, this.#workers.length);
    }
    // An unshared memory's buffer is replaced (the old one detached) when it grows; renew the view.
    if (this.#ctl.buffer !== this.#memory.buffer) {
      this.#ctl = new Int32Array(this.#memory.buffer, this.#ctlPtr, Ctl.size / 4);
    }
    const ctl = this.#ctl, i = (offset: number) => offset / 4;
    // Close the previous generation before rewriting the descriptor, so a Worker that read the old counter
    // cannot claim a unit against a half-written descriptor (its compare-and-swap fails).
    this.#gen = (this.#gen + 1) & 0x7ff;
    const head = this.#gen << 20;
    Atomics.store(ctl, i(Ctl.counter), head | UNIT_MASK);
    // Field by field (not a loop over keys): this runs for every product, however small.
    ctl[Ctl.total >> 2] = job.total;
    ctl[Ctl.aBase >> 2] = job.aBase;
    ctl[Ctl.bBase >> 2] = job.bBase;
    ctl[Ctl.cBase >> 2] = job.cBase;
    ctl[Ctl.mp >> 2] = job.mp;
    ctl[Ctl.np >> 2] = job.np;
    ctl[Ctl.k >> 2] = job.k;
    ctl[Ctl.aBatch >> 2] = job.aBatch;
    ctl[Ctl.bBatch >> 2] = job.bBatch;
    ctl[Ctl.cBatch >> 2] = job.cBatch;
    ctl[Ctl.unitsPerBatch >> 2] = job.unitsPerBatch;
    ctl[Ctl.unitsPerRow >> 2] = job.unitsPerRow;
    ctl[Ctl.unitRows >> 2] = job.unitRows;
    ctl[Ctl.unitCols >> 2] = job.unitCols;
    ctl[Ctl.packUnits >> 2] = job.packUnits;
    ctl[Ctl.aUnits >> 2] = job.aUnits;
    ctl[Ctl.aSrc >> 2] = job.aSrc;
    ctl[Ctl.aRs >> 2] = job.aRs;
    ctl[Ctl.aCs >> 2] = job.aCs;
    ctl[Ctl.aSrcItem >> 2] = job.aSrcItem;
    ctl[Ctl.aUnitRows >> 2] = job.aUnitRows;
    ctl[Ctl.aUnitsPerItem >> 2] = job.aUnitsPerItem;
    ctl[Ctl.bSrc >> 2] = job.bSrc;
    ctl[Ctl.bRs >> 2] = job.bRs;
    ctl[Ctl.bCs >> 2] = job.bCs;
    ctl[Ctl.bSrcItem >> 2] = job.bSrcItem;
    ctl[Ctl.bUnitRows >> 2] = job.bUnitRows;
    ctl[Ctl.bUnitsPerItem >> 2] = job.bUnitsPerItem;
    ctl[Ctl.m >> 2] = job.m;
    ctl[Ctl.n >> 2] = job.n;
    ctl[i(Ctl.workers)] = workers;
    ctl[i(Ctl.failed)] = 0;
    Atomics.store(ctl, i(Ctl.packDone), 0);
    Atomics.store(ctl, i(Ctl.done), 0);
    Atomics.store(ctl, i(Ctl.counter), head);
    if (workers > 0) Atomics.notify(ctl, i(Ctl.counter), workers);
    this.#drain(this.#ctlPtr);
    // Every unit is claimed; wait for the ones still running on Workers.
    for (;;) {
      const done = Atomics.load(ctl, i(Ctl.done));
      if (done >= total) break;
      if (ctl[i(Ctl.failed)]) throw new Error("wasm matmul: a Worker failed (see the error above)");
      Atomics.wait(ctl, i(Ctl.done), done, 100);
    }
  }
}

/** Whether this runtime can block the calling thread in `Atomics.wait` and start `node:worker_threads`. */
export function threadsSupported(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return typeof Worker === "function";
  } catch {
    return false;
  }
}
