/**
 * A lock file per output folder, so that two processes never write the same run (a `--resume` started beside
 * a still-running worker once wrote duplicated, out-of-order metrics).
 *
 * The lock is `<dir>/.lock`, holding the pid, host and start time of its holder, and locked with the operating
 * system's advisory file lock (`FsFile.tryLockSync`, flock on Linux). The kernel drops that lock when its
 * process ends in any way, SIGKILL included, so liveness needs no guessing from pids (Deno reads `/proc` only
 * with `--allow-all`): a lock file whose OS lock is free is stale, and is taken over with a warning. A second
 * writer gets a {@link LockedError} naming the holder's pid.
 *
 * @module
 */
import { UserError } from "./errors.ts";
import { onShutdown } from "./shutdown.ts";

/** The name of the lock file inside a locked folder. */
export const LOCK_FILE = ".lock";

/** What a lock file holds. */
export interface LockInfo {
  /** The process holding the lock. */
  pid: number;
  /** Its host ("unknown" without `--allow-sys=hostname` or `$HOSTNAME`). */
  host: string;
  /** When the lock was taken (ISO 8601). */
  since: string;
}

/** A folder is locked by another live process. */
export class LockedError extends UserError {
  /** Creates the error with `message`. */
  constructor(message: string) {
    super(message);
    this.name = "LockedError";
  }
}

/** A held lock. */
export interface FolderLock {
  /** The lock file. */
  path: string;
  /** Removes the lock file and drops the OS lock; safe to call twice, synchronous so a signal handler can. */
  release(): void;
}

function hostName(): string {
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state === "granted") return Deno.hostname();
    if (Deno.permissions.querySync({ name: "env", variable: "HOSTNAME" }).state === "granted") {
      return Deno.env.get("HOSTNAME") || "unknown";
    }
  } catch { /* a runtime without these permissions */ }
  return "unknown";
}

function readInfo(file: Deno.FsFile): LockInfo | null {
  try {
    file.seekSync(0, Deno.SeekMode.Start);
    const size = file.statSync().size;
    const buf = new Uint8Array(Math.min(size, 4096));
    let n = 0;
    while (n < buf.length) {
      const got = file.readSync(buf.subarray(n));
      if (got === null) break;
      n += got;
    }
    const v = JSON.parse(new TextDecoder().decode(buf.subarray(0, n)));
    return Number.isInteger(v?.pid) ? v as LockInfo : null;
  } catch {
    return null;
  }
}

function describe(info: LockInfo | null): string {
  return info ? `pid ${info.pid} on ${info.host} (since ${info.since})` : "another process (its pid not yet written)";
}

function lockedError(path: string, info: LockInfo | null): LockedError {
  const who = info?.pid === Deno.pid ? `this process (pid ${Deno.pid})` : describe(info);
  return new LockedError(`${path} is held by ${who}: another writer is working in this folder`);
}

/** The holder of `dir`'s lock while it is held, or null when the folder is not locked (or its lock is stale). */
export function lockHolder(dir: string): { info: LockInfo | null } | null {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(`${dir}/${LOCK_FILE}`, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  try {
    if (file.tryLockSync(true)) {
      file.unlockSync();
      return null;
    }
    return { info: readInfo(file) };
  } finally {
    file.close();
  }
}

/** Throws a {@link LockedError} when `dir` is locked by a live process (see {@link lockHolder}). */
export function assertUnlocked(dir: string): void {
  const holder = lockHolder(dir);
  if (holder) throw lockedError(`${dir}/${LOCK_FILE}`, holder.info);
}

/**
 * Locks `dir` (which must exist) for this process until {@link FolderLock.release}, or until the process exits
 * on a signal (see `shutdown.ts`); the OS drops it if the process dies otherwise. Takes over a stale lock file,
 * calling `warn` with what it held.
 *
 * @throws {LockedError} when a live process (this one included) holds the lock.
 */
export function acquireLock(dir: string, warn: (message: string) => void = console.warn): FolderLock {
  const path = `${dir}/${LOCK_FILE}`;
  for (let attempt = 0; attempt < 5; attempt++) {
    const file = Deno.openSync(path, { read: true, write: true, create: true });
    let ok = false;
    try {
      if (!file.tryLockSync(true)) throw lockedError(path, readInfo(file));
      // A releasing holder may have unlinked this file after we opened it: then the lock guards nothing.
      const opened = file.statSync();
      let current: Deno.FileInfo | null = null;
      try {
        current = Deno.statSync(path);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
      if (current === null || current.ino !== opened.ino || current.dev !== opened.dev) continue;
      const stale = opened.size > 0 ? readInfo(file) : null;
      if (opened.size > 0) {
        warn(`taking over the stale lock ${path} (${describe(stale)}, no longer running)`);
      }
      const mine: LockInfo = { pid: Deno.pid, host: hostName(), since: new Date().toISOString() };
      const bytes = new TextEncoder().encode(JSON.stringify(mine) + "\n");
      file.truncateSync(0);
      file.seekSync(0, Deno.SeekMode.Start);
      for (let off = 0; off < bytes.length;) off += file.writeSync(bytes.subarray(off));
      ok = true;
    } finally {
      if (!ok) file.close();
    }
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      unregister();
      // Unlink while still holding the OS lock, so no one locks a file that is about to vanish unnoticed.
      try {
        Deno.removeSync(path);
      } catch { /* already gone */ }
      file.close();
    };
    const unregister = onShutdown(release);
    return { path, release };
  }
  throw new LockedError(`${path}: other processes keep taking and releasing this lock; try again`);
}
