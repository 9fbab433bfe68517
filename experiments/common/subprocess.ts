/**
 * Whether an experiment may start `deno` worker subprocesses: the LM experiments' `--jobs N` and
 * `exp:routing-recovery`'s workers both fall back to running in-process without `--allow-run`.
 *
 * @module
 */

/** Whether this process may start `deno` subprocesses (`--allow-run` for `Deno.execPath()`); never prompts. */
export function canRunSubprocesses(): boolean {
  try {
    return Deno.permissions.querySync({ name: "run", command: Deno.execPath() }).state === "granted";
  } catch {
    return false;
  }
}
