// Spawning the experiment entry files as `deno task` runs them (same permissions), from a scratch folder so that
// their default outputs and data cache land there, not in the repository.
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Whether this test process may spawn `deno` and read and write files (the entry-file tests need all three). */
export const canSpawnEntries = (["run", "read", "write"] as const).every((name) =>
  Deno.permissions.querySync(name === "run" ? { name, command: Deno.execPath() } : { name }).state === "granted"
);

/** The `Deno.Command` of `experiments/<entry> args…` run in `cwd`, with the task's permissions. */
export function entryCommand(entry: string, args: string[], cwd: string, stdout: "piped" | "null" = "piped") {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--config",
      `${ROOT}deno.json`,
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-run",
      `${ROOT}experiments/${entry}`,
      ...args,
    ],
    cwd,
    stdin: "null",
    stdout,
    stderr: "piped",
    env: { NO_COLOR: "1" },
  });
}

/** Runs `experiments/<entry> args…` to completion; returns the exit code and the decoded output. */
export async function runEntryFile(
  entry: string,
  args: string[],
  cwd: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await entryCommand(entry, args, cwd).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
