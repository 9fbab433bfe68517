/**
 * How the CPU's kernel threads wait for each other: whether this runtime can block a thread at all, and how
 * long a thread spins on a shared value before it sleeps. Shared by the matmul's Worker pool
 * (`../wasm/threads.ts`) and the other kernels' pool (`pool.ts`), whose Workers are one and the same set when
 * the kernels can be loaded in them (see `pool.ts`, "One set of Workers").
 *
 * @module
 */
import { Worker } from "node:worker_threads";

/**
 * How long (ms) a thread re-reads a shared value it waits for before it sleeps in `Atomics.wait`. Waking a
 * sleeping thread costs tens of microseconds on a virtual machine (its virtual CPU halts, and the host must
 * start it again), more than most waits inside a job last, and jobs come in bursts (a layer's products back
 * to back). Measured (2-core VM): two threads on a 2^18 multiply-add product took ≈ 2× one thread's time
 * without spinning; with it, see the README. Bounded, so an idle pool still costs no CPU.
 */
export const SPIN_MS = 0.1;

/** Whether this runtime can block the calling thread in `Atomics.wait` and start `node:worker_threads`. */
export function threadsSupported(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return typeof Worker === "function";
  } catch {
    return false;
  }
}
