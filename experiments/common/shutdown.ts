/**
 * Clean-up on the way out: locks released and worker processes stopped when this process is interrupted
 * (SIGINT, SIGTERM, SIGHUP) or, in a worker, when its parent dies ({@link exitWhenStdinCloses}).
 *
 * Deno's default action for these signals ends the process at once, without running `finally` blocks, which
 * would leave lock files behind and (for the runner) worker processes running. Listeners are installed only
 * while some clean-up is registered, so a library caller that registers nothing keeps the default behaviour.
 *
 * @module
 */

type Cleanup = () => void | Promise<void>;

const cleanups = new Set<Cleanup>();
// Exit codes follow the shell convention 128 + signal number.
const SIGNALS: [Deno.Signal, number][] = [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]];
let installed: [Deno.Signal, () => void][] = [];
let stopping = false;

function install(): void {
  if (installed.length) return;
  for (const [signal, code] of SIGNALS) {
    const listener = () => void shutdown(code);
    try {
      Deno.addSignalListener(signal, listener);
      installed.push([signal, listener]);
    } catch {
      // Not every platform has every signal (Windows has only SIGINT and SIGBREAK).
    }
  }
}

function uninstall(): void {
  for (const [signal, listener] of installed) Deno.removeSignalListener(signal, listener);
  installed = [];
}

/**
 * Registers `fn` to run (newest first) before this process exits on a signal or when {@link shutdown} is
 * called; returns the function that unregisters it (call it once the resource is released normally).
 */
export function onShutdown(fn: Cleanup): () => void {
  cleanups.add(fn);
  install();
  return () => {
    cleanups.delete(fn);
    if (cleanups.size === 0) uninstall();
  };
}

/** Runs every registered clean-up, then exits with `code`. A second call (a second Ctrl-C) exits at once. */
export async function shutdown(code: number): Promise<never> {
  if (stopping) Deno.exit(code);
  stopping = true;
  for (const fn of [...cleanups].reverse()) {
    try {
      await fn();
    } catch (e) {
      console.error(`clean-up failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  Deno.exit(code);
}

/**
 * For a worker process whose parent holds the other end of its stdin pipe: when stdin reaches its end the
 * parent is gone (even when it was killed with SIGKILL and could not stop its workers), so this process runs
 * its clean-ups and exits (code 129, as for a hang-up) instead of writing on as an orphan.
 */
export function exitWhenStdinCloses(): void {
  (async () => {
    const buf = new Uint8Array(64);
    try {
      while ((await Deno.stdin.read(buf)) !== null) { /* the parent never writes; drain anything */ }
    } catch {
      // A broken pipe is the same news as an end of file.
    }
    await shutdown(129);
  })();
}
