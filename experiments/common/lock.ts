/**
 * A lock file per output folder, so that two processes never write the same run (a `--resume` started beside
 * a still-running worker once wrote duplicated, out-of-order metrics).
 *
 * The lock is `<dir>/.lock`, created atomically (`createNew`), holding the pid, host, the process's start time
 * and when it was taken. A second writer gets a {@link LockedError} naming the pid. A lock whose process is gone
 * (crashed, killed with SIGKILL) is stale and is taken over with a warning. Liveness is read from `/proc`
 * (Linux); where there is no `/proc`, or the lock is from another host, a lock is assumed held and the error
 * says which file to remove.
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
  /** Its host. */
  host: string;
  /** Its start time in clock ticks after boot (`/proc/<pid>/stat`), to tell a reused pid apart; null if unknown. */
  processStart: string | null;
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
  /** Removes the lock file (if it is still ours); safe to call twice, synchronous so a signal handler can. */
  release(): void;
}

function readText(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
}

/** The start time of process `pid` (field 22 of `/proc/<pid>/stat`), or null when it is not running (or a zombie). */
function processStart(pid: number): string | null {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === null) return null;
  // The command name (field 2) may contain spaces and parentheses: the fields after it start at the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (fields[0] === "Z" || fields[0] === "X") return null;
  return fields[19] ?? null;
}

function hostName(): string {
  const fromProc = readText("/proc/sys/kernel/hostname")?.trim();
  if (fromProc) return fromProc;
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state === "granted") return Deno.hostname();
  } catch { /* no such permission query on this runtime */ }
  return "unknown";
}

const hasProc = () => readText("/proc/self/stat") !== null;

/** Whether the holder of `info` is still running: true, false, or null when this process cannot tell. */
function holderAlive(info: LockInfo): boolean | null {
  if (info.host !== hostName() || !hasProc()) return null;
  const start = processStart(info.pid);
  if (start === null) return false;
  return info.processStart === null || info.processStart === start;
}

function parseLock(text: string | null): LockInfo | null {
  if (text === null) return null;
  try {
    const v = JSON.parse(text);
    return Number.isInteger(v?.pid) && typeof v.host === "string" ? v as LockInfo : null;
  } catch {
    return null;
  }
}

function describe(info: LockInfo): string {
  return `pid ${info.pid} on ${info.host} (since ${info.since})`;
}

/**
 * The live holder of `dir`'s lock, or null when the folder is not locked or its lock is stale. A lock this
 * process cannot check (another host, no `/proc`) counts as live.
 */
export function lockHolder(dir: string): LockInfo | null {
  const info = parseLock(readText(`${dir}/${LOCK_FILE}`));
  if (!info) return null;
  if (info.pid === Deno.pid && info.host === hostName()) return null; // ours
  return holderAlive(info) === false ? null : info;
}

/** Throws a {@link LockedError} when `dir` is locked by another live process (see {@link lockHolder}). */
export function assertUnlocked(dir: string): void {
  const holder = lockHolder(dir);
  if (holder) throw lockedError(`${dir}/${LOCK_FILE}`, holder);
}

function lockedError(path: string, info: LockInfo): LockedError {
  const unsure = holderAlive(info) === null ? `; if no such process runs, remove ${path}` : "";
  return new LockedError(`${path} is held by ${describe(info)}: another process is writing this folder${unsure}`);
}

/**
 * Locks `dir` (which must exist) for this process until {@link FolderLock.release} or until the process exits
 * on a signal (see `shutdown.ts`). Takes over a stale lock, calling `warn` with what it found.
 *
 * @throws {LockedError} when another live process holds the lock.
 */
export function acquireLock(dir: string, warn: (message: string) => void = console.warn): FolderLock {
  const path = `${dir}/${LOCK_FILE}`;
  const mine: LockInfo = {
    pid: Deno.pid,
    host: hostName(),
    processStart: processStart(Deno.pid),
    since: new Date().toISOString(),
  };
  const text = JSON.stringify(mine) + "\n";
  for (let attempt = 0; attempt < 3; attempt++) {
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { createNew: true, write: true });
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      const found = readText(path);
      const info = parseLock(found);
      if (info && info.pid === Deno.pid && info.host === mine.host) {
        throw new LockedError(`${path} is already held by this process (pid ${Deno.pid})`);
      }
      if (info && holderAlive(info) !== false) throw lockedError(path, info);
      if (!info && found !== null && Date.now() - (Deno.statSync(path).mtime?.getTime() ?? 0) < 5000) {
        // An empty or half-written lock younger than a few seconds: its writer is between create and write.
        throw new LockedError(`${path} is being taken by another process; try again`);
      }
      // Stale: remove it only if it is still the file judged stale, then race for it again.
      if (readText(path) === found) {
        warn(`taking over the stale lock ${path} (${info ? `${describe(info)}, no longer running` : "unreadable"})`);
        try {
          Deno.removeSync(path);
        } catch (e) {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
        }
      }
      continue;
    }
    try {
      const bytes = new TextEncoder().encode(text);
      for (let off = 0; off < bytes.length;) off += file.writeSync(bytes.subarray(off));
    } finally {
      file.close();
    }
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      unregister();
      // Only our own lock: a process that judged ours stale (it cannot, while we live) must not lose its own.
      if (readText(path) === text) {
        try {
          Deno.removeSync(path);
        } catch { /* already gone */ }
      }
    };
    const unregister = onShutdown(release);
    return { path, release };
  }
  throw new LockedError(`${path}: other processes keep taking this lock; try again`);
}
