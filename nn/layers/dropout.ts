/**
 * `Dropout` as a module: active in training mode only.
 *
 * @module
 */
import { dropout, type Generator, type Tensor } from "../../core/mod.ts";
import { Module } from "../module.ts";

/**
 * Inverted dropout: in training mode each element is zeroed with probability `p` and the rest scaled by
 * 1/(1−p); in eval mode (`module.eval()`) the input passes through unchanged. Masks come from `generator`
 * (default: the global one), so runs are reproducible.
 *
 * @example
 * ```ts
 * import { Generator, ones } from "@moegrad/moegrad";
 * import { Dropout } from "../mod.ts";
 * const drop = new Dropout(0.5, { generator: new Generator(1) });
 * console.log(await drop.forward(ones([6])).data()); // each element 0 or 2
 * drop.eval();
 * console.log(await drop.forward(ones([6])).data()); // ones
 * ```
 */
export class Dropout extends Module {
  /** The drop probability. */
  readonly p: number;
  /** The mask stream (undefined: the global generator). */
  readonly generator: Generator | undefined;

  /** Creates the layer; `p` ∈ [0, 1]. */
  constructor(p: number, options: { generator?: Generator } = {}) {
    super();
    if (!(p >= 0 && p <= 1)) throw new RangeError(`Dropout: p must be in [0, 1], got ${p}`);
    this.p = p;
    this.generator = options.generator;
  }

  /** Applies dropout when training. */
  forward(x: Tensor): Tensor {
    return dropout(x, this.p, { training: this.training, generator: this.generator });
  }
}
