/**
 * `Linear`: y = x·W + b with W stored `[in, out]`.
 *
 * @module
 */
import type { Tensor } from "../../core/mod.ts";
import { Module } from "../module.ts";
import { type InitOptions, uniform } from "../init.ts";

/** Options of {@link Linear}. */
export interface LinearOptions extends InitOptions {
  /** Add a bias (default true). */
  bias?: boolean;
}

/**
 * A fully connected layer. The weight is stored **`[inFeatures, outFeatures]`** — the transpose of
 * PyTorch's layout — so `forward(x)` is `x.matmul(weight)` (+ `bias`), with no transpose, for any number
 * of leading axes. Initialised like PyTorch's `nn.Linear`: weight and bias uniform in ±1/√inFeatures.
 *
 * @example
 * ```ts
 * import { Generator, randn } from "@moegrad/moegrad";
 * import { Linear } from "../mod.ts";
 * const fc = new Linear(16, 4, { generator: new Generator(0) });
 * console.log(fc.weight.shape, fc.forward(randn([2, 5, 16])).shape); // [16, 4] [2, 5, 4]
 * ```
 */
export class Linear extends Module {
  /** The weight, `[inFeatures, outFeatures]`. */
  readonly weight: Tensor;
  /** The bias, `[outFeatures]`, or null. */
  readonly bias: Tensor | null;
  /** Input size. */
  readonly inFeatures: number;
  /** Output size. */
  readonly outFeatures: number;

  /** Creates the layer with freshly drawn weights. */
  constructor(inFeatures: number, outFeatures: number, options: LinearOptions = {}) {
    super();
    for (const [n, v] of [["inFeatures", inFeatures], ["outFeatures", outFeatures]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`Linear: ${n} must be a positive integer, got ${v}`);
    }
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = this.param("weight", uniform([inFeatures, outFeatures], -bound, bound, options));
    this.bias = options.bias ?? true ? this.param("bias", uniform([outFeatures], -bound, bound, options)) : null;
  }

  /** `x` `[…, inFeatures]` → `[…, outFeatures]`. */
  forward(x: Tensor): Tensor {
    const y = x.matmul(this.weight);
    return this.bias ? y.add(this.bias) : y;
  }
}
