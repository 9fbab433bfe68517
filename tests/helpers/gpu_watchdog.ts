/**
 * A watchdog for tests whose thread can get stuck inside a native GPU call. On wgpu's GL backend a
 * submission runs on the calling thread: a shader that never ends, or one the driver compiles for minutes,
 * blocks that thread inside `queue.submit`, where neither a test timeout nor anything else in JavaScript
 * can run. A worker thread keeps the alarm instead, and ends the process with a message naming the test
 * rather than letting the run stall forever.
 */

/** What the test thread tells the watchdog thread. */
export type WatchdogMessage =
  | { kind: "arm"; name: string; ms: number; end: "kill" | "report" }
  | { kind: "disarm" };

/** One alarm on a worker thread; `arm` before the guarded work, `disarm` after it. */
export class Watchdog {
  #worker: Worker | null | undefined;

  /** The worker, started on first use; null where it cannot start (no read access to its module). */
  get worker(): Worker | null {
    if (this.#worker === undefined) {
      const url = new URL("./gpu_watchdog_worker.ts", import.meta.url);
      const readable = Deno.permissions.querySync({ name: "read", path: url }).state === "granted";
      this.#worker = readable ? new Worker(url, { type: "module" }) : null;
    }
    return this.#worker;
  }

  /** Rings after `ms` unless disarmed first: ends the process, or with `end: "report"` posts `{ expired }`. */
  arm(name: string, ms: number, end: "kill" | "report" = "kill"): void {
    this.worker?.postMessage({ kind: "arm", name, ms, end } satisfies WatchdogMessage);
  }

  disarm(): void {
    this.#worker?.postMessage({ kind: "disarm" } satisfies WatchdogMessage);
  }

  /** Stops the worker thread (tests of the watchdog itself; the shared one lives as long as the process). */
  stop(): void {
    this.#worker?.terminate();
    this.#worker = null;
  }
}
