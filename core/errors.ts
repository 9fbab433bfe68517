/**
 * Errors raised by ops. Every message starts with the op's name and names the shapes or dtypes involved,
 * so a failing line in a model points at its cause.
 *
 * @module
 */

/** An error raised while validating or running an op; `op` is the op's public name. */
export class OpError extends Error {
  /** The public name of the op that failed, e.g. `"matmul"`. */
  readonly op: string;
  /** Creates an error whose message reads `"<op>: <detail>"`. */
  constructor(op: string, detail: string) {
    super(`${op}: ${detail}`);
    this.name = "OpError";
    this.op = op;
  }
}

/** Formats a shape the way error messages show it: `[2, 3]`. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}
