/**
 * Claiming an experiment's output folder (`--out`) before anything is written to it, so that nothing is lost:
 *
 * - a folder that already holds results is refused unless the user says what to do with them: `--resume`
 *   continues them, `--force` moves the whole folder aside (to `<out>.replaced-<time>`; nothing is deleted);
 * - a folder another live process writes (its lock, see `lock.ts`) is refused even with `--resume`/`--force`;
 * - an `--out` that cannot be created or written is one {@link UserError} line (`--out X: reason`).
 *
 * @module
 */
import { UserError } from "./errors.ts";
import { acquireLock, assertUnlocked, type FolderLock } from "./lock.ts";

/** How {@link claimOutFolder} treats results already in the folder. */
export interface ClaimOptions {
  /** `--resume`: keep them and continue. */
  resume: boolean;
  /** `--force`: move the folder aside and start afresh. */
  force: boolean;
  /**
   * What the folder holds, in words for the refusal ("6 runs (4 finished)"), or null when it holds nothing worth
   * keeping. Called only for an existing folder.
   */
  holds(out: string): Promise<string | null>;
  /** Sub-folders written by other processes (run folders), checked for live locks before anything moves. */
  lockedParts?(out: string): Promise<string[]>;
  /** Where the `--force` notice and stale-lock warnings go. */
  log(line: string): void;
}

/** The reason of a Deno file-system error without the operation and path Deno appends ("…: mkdir 'x'"). */
function reason(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return message.replace(/:\s*[a-z_]+ '.*'$/s, "").replace(/\s+/g, " ");
}

async function isDir(path: string): Promise<boolean | null> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new UserError(`--out ${path}: ${reason(e)}`);
  }
}

async function freeName(base: string): Promise<string> {
  for (let i = 0;; i++) {
    const name = i === 0 ? base : `${base}-${i}`;
    if (await isDir(name) === null) return name;
  }
}

/**
 * Makes `out` ready for writing and locks it for this process (see the module docs); returns the lock, which
 * the caller releases when done. Refusals and unusable paths throw a {@link UserError}.
 */
export async function claimOutFolder(out: string, options: ClaimOptions): Promise<FolderLock> {
  const kind = await isDir(out);
  if (kind === false) throw new UserError(`--out ${out}: exists and is not a folder`);
  if (kind) {
    assertUnlocked(out);
    for (const part of (await options.lockedParts?.(out)) ?? []) assertUnlocked(part);
    const holds = await options.holds(out);
    if (holds !== null && !options.resume) {
      if (!options.force) {
        throw new UserError(`${out} holds ${holds}; pass --resume to continue, or --force to replace it (moved aside)`);
      }
      const stamp = new Date().toISOString().replace(/[:.]/g, "-");
      const aside = await freeName(`${out.replace(/\/+$/, "")}.replaced-${stamp}`);
      try {
        await Deno.rename(out, aside);
      } catch (e) {
        throw new UserError(`--force: cannot move ${out} aside to ${aside}: ${reason(e)}`);
      }
      options.log(`--force: moved the earlier ${out} (${holds}) aside to ${aside}`);
    }
  }
  try {
    await Deno.mkdir(out, { recursive: true });
    return acquireLock(out, options.log);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`--out ${out}: ${reason(e)}`, { cause: e });
  }
}
