/**
 * The checkpoint error class, in a module of its own so that the atomic file write (`nn/io/atomic.ts`) can raise
 * it without importing the checkpoint code.
 *
 * @module
 */

/** A checkpoint that cannot be written, read or applied to the given model, optimizer or generator. */
export class CheckpointError extends Error {
  /** Creates an error with `message`. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CheckpointError";
  }
}
