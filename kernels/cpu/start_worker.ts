/**
 * Starting a kernel Worker (the matmul pool's, `wasm/threads.ts`, and the other kernels', `threads/pool.ts`)
 * from inside a synchronous kernel call without running any other JavaScript there.
 *
 * Why this module exists: Deno's `node:worker_threads` gives every Worker `stdout`/`stderr` streams from
 * `node:stream`, a built-in module it loads lazily the first time a Worker is constructed, and loading it runs a
 * microtask checkpoint. When the kernel that starts the first Worker was entered from a macrotask (a timer, an
 * I/O callback, a test function), every pending promise continuation of the program then runs inside the
 * `Worker` constructor, in the middle of the caller's op. Another async training loop resumed there ran its
 * step while the first loop was still inside its synchronous `noGrad` callback, so that step recorded no tape
 * (README, "threads > 1"). Loading `node:stream` with this module, when the package is imported, moves that
 * checkpoint to module evaluation, where no caller is half-way through anything.
 *
 * @module
 */
import "node:stream";
import { Worker, type WorkerOptions } from "node:worker_threads";

/**
 * Starts a Worker that evaluates `source` (plain JavaScript, `workerData` and `transferList` as in
 * `node:worker_threads`), `unref()`ed so that it never keeps the program alive. Throws what the runtime throws
 * when it refuses to start one.
 */
export function startWorker(
  source: string,
  workerData: unknown,
  transferList?: WorkerOptions["transferList"],
): Worker {
  const worker = new Worker(source, { eval: true, workerData, transferList });
  worker.unref();
  return worker;
}
