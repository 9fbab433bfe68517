/**
 * `DecoderLM`: a GPT-style decoder-only language model.
 *
 * @module
 */
import { arange, type Tensor } from "../../core/mod.ts";
import { Module, ModuleList } from "../module.ts";
import type { InitOptions } from "../init.ts";
import { Dropout } from "./dropout.ts";
import { Embedding } from "./embedding.ts";
import { Linear } from "./linear.ts";
import { type FeedForward, makeNorm, type Norm, TransformerBlock } from "./transformer.ts";

/** Options of {@link DecoderLM}. */
export interface DecoderLMOptions extends InitOptions {
  /**
   * The longest sequence (default 1024). Without RoPE it sizes the learned position table; with RoPE it
   * is only checked.
   */
  maxLen?: number;
  /** RoPE in every self-attention instead of learned positions (`true` or `{ base }`; default off). */
  rope?: boolean | { base?: number };
  /** Use the token embedding as the output projection (no `head` parameter; default false). */
  tieEmbeddings?: boolean;
  /**
   * The feed-forward module of layer `i` (a MoE layer goes here); returning undefined, or no factory, gives
   * the default 4·dim GELU `FFN`.
   */
  ffnFactory?: (layerIndex: number) => FeedForward | undefined;
  /** Dropout on the embeddings, the attention weights and the residual branches (default 0). */
  dropout?: number;
  /** `"layer"` (default) or `"rms"` norms. */
  norm?: "layer" | "rms";
  /** Biases in the attention projections (default true). */
  bias?: boolean;
  /** Standard deviation of the embedding tables' N(0, std²) initialisation (default 0.02). */
  embeddingStd?: number;
}

/** Per-call options of {@link DecoderLM.forward}. */
export interface DecoderLMCall {
  /** Bool `[B, T]`, true at padding positions (never attended to). */
  keyPaddingMask?: Tensor | null;
}

/**
 * Token embedding (+ learned positions unless RoPE) → `layers` causal pre-LN {@link TransformerBlock}s →
 * final norm → logits over the vocabulary. `forward(ids)` maps i32 ids `[B, T]` to logits `[B, T, vocab]`;
 * `auxLoss()` sums the auxiliary losses of the FFN modules (MoE) from that forward pass.
 *
 * Children: `tokEmb`, `posEmb` (without RoPE), `drop`, `blocks.{i}`, `normF`, `head` (unless tied). With
 * `tieEmbeddings` the logits are `h · tokEmb.weightᵀ`.
 *
 * @example
 * ```ts
 * import { Generator, randint } from "@moegrad/moegrad";
 * import { DecoderLM } from "../mod.ts";
 * const lm = new DecoderLM(100, 32, 2, 4, { rope: true, tieEmbeddings: true, generator: new Generator(0) });
 * const logits = lm.forward(randint(0, 100, [2, 12]));
 * console.log(logits.shape); // [2, 12, 100]
 * ```
 */
export class DecoderLM extends Module {
  /** Token embedding `[vocab, dim]`. */
  readonly tokEmb: Embedding;
  /** Learned positions `[maxLen, dim]` (null with RoPE). */
  readonly posEmb: Embedding | null;
  /** Embedding dropout. */
  readonly drop: Dropout;
  /** The transformer layers. */
  readonly blocks: ModuleList<TransformerBlock>;
  /** The final norm. */
  readonly normF: Norm;
  /** The output projection `dim → vocab` (null when tied). */
  readonly head: Linear | null;
  /** The longest accepted sequence. */
  readonly maxLen: number;

  /** Creates the model. */
  constructor(vocab: number, dim: number, layers: number, heads: number, options: DecoderLMOptions = {}) {
    super();
    const init = { generator: options.generator, device: options.device, dtype: options.dtype };
    const std = options.embeddingStd ?? 0.02;
    this.maxLen = options.maxLen ?? 1024;
    const rope = options.rope ?? false;
    this.tokEmb = this.child("tokEmb", new Embedding(vocab, dim, { ...init, std }));
    this.posEmb = rope === false ? this.child("posEmb", new Embedding(this.maxLen, dim, { ...init, std })) : null;
    this.drop = this.child("drop", new Dropout(options.dropout ?? 0, { generator: options.generator }));
    const blocks = Array.from({ length: layers }, (_, i) =>
      new TransformerBlock(dim, heads, {
        ...init,
        causal: true,
        rope,
        dropout: options.dropout,
        norm: options.norm,
        bias: options.bias,
        ffn: options.ffnFactory?.(i),
      }));
    this.blocks = this.child("blocks", new ModuleList(blocks));
    this.normF = this.child("normF", makeNorm(options.norm, dim, undefined, init));
    this.head = options.tieEmbeddings ? null : this.child("head", new Linear(dim, vocab, { ...init, bias: false }));
  }

  /** i32 `ids` `[B, T]` → logits `[B, T, vocab]`. */
  forward(ids: Tensor, call: DecoderLMCall = {}): Tensor {
    if (ids.rank !== 2 || ids.dtype !== "i32") {
      throw new RangeError(`DecoderLM: expected i32 ids [B, T], got ${ids.dtype} [${ids.shape.join(", ")}]`);
    }
    const t = ids.shape[1];
    if (t > this.maxLen) throw new RangeError(`DecoderLM: sequence length ${t} exceeds maxLen ${this.maxLen}`);
    let h = this.tokEmb.forward(ids);
    if (this.posEmb) h = h.add(this.posEmb.forward(arange(0, t, 1, { device: ids.device })));
    h = this.drop.forward(h);
    // The ids travel to every feed-forward as its route context (a MoE layer's hash router reads them).
    for (const block of this.blocks) h = block.forward(h, { keyPaddingMask: call.keyPaddingMask, tokenIds: ids });
    h = this.normF.forward(h);
    return this.head ? this.head.forward(h) : h.matmul(this.tokEmb.weight.transpose());
  }
}
