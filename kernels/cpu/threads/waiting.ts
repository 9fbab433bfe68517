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
 * to back, with the calling thread's bookkeeping and small ops between them). Measured (2-core VM): two threads
 * on a 2^18 multiply-add product took ≈ 2× one thread's time without spinning; with 0.1 ms, see the README.
 * Raised from 0.1 to 2 ms on 2026-12-07 (Zen 4, 2 vCPUs, one set of Workers): the training step on two threads,
 * steps alternating between the two spins in one process, was faster with 2 ms in 77 of 100 pairs at d = 256 (five
 * runs of 20, medians 1.01–1.05×) and 54 of 80 at d = 512 (medians 0.996–1.041×); at 0.1 ms the Worker fell asleep
 * before about 100 of a step's 160 jobs.
 * (Earlier sessions found a 1 ms spin no faster within the noise of their runs, and slower while the matmul
 * and the other kernels had a set of Workers each, a spinning set taking a core from the other.) Bounded, so an
 * idle pool still costs no CPU.
 */
export const SPIN_MS = 2;

/** Whether this runtime can block the calling thread in `Atomics.wait` and start `node:worker_threads`. */
export function threadsSupported(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return typeof Worker === "function";
  } catch {
    return false;
  }
}
