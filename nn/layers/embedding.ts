/**
 * `Embedding`: a lookup table of vectors indexed by i32 ids.
 *
 * @module
 */
import { embedding, type Tensor } from "../../core/mod.ts";
import { Module } from "../module.ts";
import { type InitOptions, normal } from "../init.ts";

/** Options of {@link Embedding}. */
export interface EmbeddingOptions extends InitOptions {
  /** Standard deviation of the N(0, std²) initialisation (default 1, as in PyTorch). */
  std?: number;
}

/**
 * A `[numEmbeddings, dim]` table; `forward(ids)` maps i32 ids of any shape to `[...ids.shape, dim]`.
 *
 * @example
 * ```ts
 * import { tensor } from "@moegrad/moegrad";
 * import { Embedding } from "../mod.ts";
 * const emb = new Embedding(100, 8, { std: 0.02 });
 * console.log(emb.forward(tensor([[1, 2, 3]], { dtype: "i32" })).shape); // [1, 3, 8]
 * ```
 */
export class Embedding extends Module {
  /** The table, `[numEmbeddings, dim]`. */
  readonly weight: Tensor;

  /** Creates the table with N(0, std²) entries. */
  constructor(numEmbeddings: number, dim: number, options: EmbeddingOptions = {}) {
    super();
    for (const [n, v] of [["numEmbeddings", numEmbeddings], ["dim", dim]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`Embedding: ${n} must be a positive integer, got ${v}`);
    }
    this.weight = this.param("weight", normal([numEmbeddings, dim], options.std ?? 1, options));
  }

  /** i32 `ids` `[…]` → `[…, dim]`. */
  forward(ids: Tensor): Tensor {
    return embedding(this.weight, ids);
  }
}
