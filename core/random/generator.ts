/**
 * Seeded random streams. A {@link Generator} is a Philox key (from the seed) plus a 64-bit counter; each
 * draw of n numbers reserves ceil(n / 4) counter blocks, so a run's draws are a pure function of the seed
 * and the order of the draws, identical on every backend.
 *
 * @module
 */

const TWO32 = 4294967296;

/** The serialisable state of a {@link Generator} (checkpoints store it). */
export interface GeneratorState {
  /** The seed (an integer in [0, 2⁵³)). */
  seed: number;
  /** The next unused counter block (an integer in [0, 2⁵³)). */
  offset: number;
}

/** A seeded, counter-based random stream. */
export class Generator {
  #seed = 0;
  #offset = 0;
  /** Creates a stream for `seed` (an integer in [0, 2⁵³)). */
  constructor(seed = 0) {
    this.manualSeed(seed);
  }
  /** Restarts the stream from `seed`. */
  manualSeed(seed: number): this {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new RangeError(`manualSeed: seed must be an integer in [0, 2^53), got ${seed}`);
    }
    this.#seed = seed;
    this.#offset = 0;
    return this;
  }
  /** The Philox key of this stream. */
  get key(): [number, number] {
    return [this.#seed % TWO32, Math.floor(this.#seed / TWO32)];
  }
  /** The current state (seed and counter offset). */
  getState(): GeneratorState {
    return { seed: this.#seed, offset: this.#offset };
  }
  /** Restores a state returned by {@link Generator.getState}. */
  setState(state: GeneratorState): this {
    // Validate everything before changing anything, so a bad state leaves the stream untouched.
    if (!Number.isSafeInteger(state.offset) || state.offset < 0) {
      throw new RangeError(`Generator.setState: offset must be a non-negative integer, got ${state.offset}`);
    }
    this.manualSeed(state.seed);
    this.#offset = state.offset;
    return this;
  }
  /** Reserves the counter blocks for `n` numbers and returns the first block as [low, high] words. */
  reserve(n: number): [number, number] {
    const start = this.#offset;
    this.#offset += Math.ceil(n / 4);
    return [start % TWO32, Math.floor(start / TWO32)];
  }
}

/** The generator random ops use when none is passed. */
export const defaultGenerator: Generator = new Generator(0);

/**
 * Seeds the default generator (like `torch.manual_seed`).
 *
 * @example
 * ```ts
 * import { manualSeed, rand } from "@moegrad/moegrad";
 * manualSeed(42);
 * const a = await rand([3]).data();
 * manualSeed(42);
 * const b = await rand([3]).data();
 * console.log(a.join() === b.join()); // true
 * ```
 */
export function manualSeed(seed: number): Generator {
  return defaultGenerator.manualSeed(seed);
}
