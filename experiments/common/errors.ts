/**
 * User-facing errors and the one top-level error path of the experiment entry files ({@link runEntry}).
 *
 * A {@link UserError} is a failure the user fixes from its message alone (a bad flag, an output folder that
 * holds runs, a run folder locked by another process); the entry files print it as one `error: …` line and
 * exit with code 2. Unexpected errors (bugs) keep their stack trace, so they are still debuggable.
 *
 * @module
 */
import { z } from "../../deps.ts";

/** Options of a {@link UserError}. */
export interface UserErrorOptions extends ErrorOptions {
  /** Where to look next (e.g. "run with --help …"), printed in parentheses after the message. */
  hint?: string;
}

/** A failure the user fixes from the message alone; entry points print it on one line and exit 2. */
export class UserError extends Error {
  /** Where to look next, printed after the message (see {@link UserErrorOptions.hint}). */
  readonly hint?: string;
  /** Creates the error with `message`. */
  constructor(message: string, options?: UserErrorOptions) {
    super(message, options);
    this.name = "UserError";
    this.hint = options?.hint;
  }
}

// File-system errors that describe the user's environment (a missing permission, a path that is a file), not a
// bug: the message names the path, which is all the user needs.
const ENVIRONMENT_ERRORS = [
  Deno.errors.PermissionDenied,
  Deno.errors.NotCapable,
  Deno.errors.NotADirectory,
  Deno.errors.IsADirectory,
  Deno.errors.AlreadyExists,
  Deno.errors.NotFound,
  Deno.errors.FilesystemLoop,
];

/** Collapses a message onto one line (multi-line messages join with "; "). */
export function oneLine(message: string): string {
  return message.split("\n").map((l) => l.trim()).filter((l) => l !== "").join("; ");
}

/** The one-line message of a user-facing error, or null for an unexpected error (which keeps its stack trace). */
export function userErrorMessage(e: unknown): string | null {
  if (e instanceof UserError) return oneLine(e.hint ? `${e.message} (${e.hint})` : e.message);
  if (e instanceof z.ZodError) {
    return oneLine(e.issues.map((i) => `${i.path.map(String).join(".") || "(root)"}: ${i.message}`).join("; "));
  }
  if (ENVIRONMENT_ERRORS.some((cls) => e instanceof cls)) return oneLine((e as Error).message);
  return null;
}

/** The exit code of an entry file that stopped on a user-facing error. */
export const USER_ERROR_EXIT_CODE = 2;

/**
 * The one way a user-facing error reaches the terminal: printed once as `error: …` (one line) on stderr, and
 * {@link USER_ERROR_EXIT_CODE} returned. Returns null, printing nothing, for an unexpected error (the caller
 * rethrows it, so it keeps its stack trace).
 */
export function reportUserError(e: unknown): number | null {
  const message = userErrorMessage(e);
  if (message === null) return null;
  console.error(`error: ${message}`);
  return USER_ERROR_EXIT_CODE;
}

/**
 * The top level of an entry file: awaits `main` and exits with its code (0 when it returns nothing). A
 * user-facing error is printed by {@link reportUserError} and exits 2; any other error is rethrown, so Deno
 * prints it with its stack trace and exits 1.
 */
export async function runEntry(main: () => Promise<number | void>): Promise<never> {
  let code: number;
  try {
    code = (await main()) ?? 0;
  } catch (e) {
    const reported = reportUserError(e);
    if (reported === null) throw e;
    code = reported;
  }
  Deno.exit(code);
}
