/**
 * A time bound for test bodies. A GPU promise that never settles (a `mapAsync` or `onSubmittedWorkDone`
 * of a device that stopped making progress) would otherwise keep its test, and the whole run, waiting
 * forever; with a deadline the test fails instead, naming itself and the bound.
 *
 * The bound is a timer on the calling thread, so it cannot fire while that thread is stuck inside a native
 * call; {@link ./gpu_watchdog.ts} covers that case.
 */

/** The failure of a body that outlived its bound. */
export class DeadlineError extends Error {
  override name = "DeadlineError";
}

/** `ms` as the bound appears in messages: whole seconds from 1 s up, milliseconds below. */
export function formatBound(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 1000)} s` : `${ms} ms`;
}

/**
 * Runs `work` and settles as it does, unless `ms` pass first: then rejects with a {@link DeadlineError}
 * "`what` did not finish within `bound`". The timer is cleared either way, so nothing outlives the call.
 */
export function withDeadline<T>(work: () => T | Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`${what} did not finish within ${formatBound(ms)}`)), ms);
  });
  // A synchronous throw from `work` becomes a rejection, like an async one.
  const run = new Promise<T>((resolve) => resolve(work()));
  return Promise.race([run, expired]).finally(() => clearTimeout(timer));
}
