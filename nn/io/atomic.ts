/**
 * Atomic file writes (temporary file in the same directory, fsync, rename), shared by the checkpoints and by the
 * experiments' result files.
 *
 * @module
 */
import { CheckpointError } from "../checkpoint/errors.ts";

/** The directory part of `path` (`"."` when it has none). */
export function dirname(path: string): string {
  const i = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return i < 0 ? "." : i === 0 ? path[0] : path.slice(0, i);
}

function randomSuffix(): string {
  const b = crypto.getRandomValues(new Uint8Array(6));
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * Writes `data` to `path` atomically: into `${path}.tmp-<random>` in the same directory, synced to disk, then
 * renamed over `path` (and the directory synced where the platform allows), so readers see the old file or
 * the new one, never a partial one. On failure the temporary file is removed and `path` is left as it was, and
 * a {@link CheckpointError} naming `path` is raised.
 */
export async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${randomSuffix()}`;
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
    for (let off = 0; off < data.length;) {
      const n = await file.write(data.subarray(off));
      if (n <= 0) throw new Error(`write returned ${n}`);
      off += n;
    }
    await file.sync();
    file.close();
    file = undefined;
    await Deno.rename(tmp, path);
  } catch (e) {
    try {
      file?.close();
    } catch { /* already closed */ }
    await Deno.remove(tmp).catch(() => {});
    throw new CheckpointError(`writing ${path} failed: ${(e as Error).message}`, { cause: e });
  }
  // Persist the rename itself. Directories cannot be opened on every platform (Windows), hence best effort.
  try {
    const dir = await Deno.open(dirname(path), { read: true });
    try {
      await dir.sync();
    } finally {
      dir.close();
    }
  } catch { /* not supported here */ }
}
