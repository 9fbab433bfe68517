/**
 * `EncoderDecoder`: a sequence-to-sequence transformer for translation.
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

/** Options of {@link EncoderDecoder}. */
export interface EncoderDecoderOptions extends InitOptions {
  /** The longest source or target sequence (default 1024; sizes the position tables without RoPE). */
  maxLen?: number;
  /** RoPE in every self-attention instead of learned positions (`true` or `{ base }`; default off). */
  rope?: boolean | { base?: number };
  /** Use the target embedding as the output projection (no `head` parameter; default false). */
  tieEmbeddings?: boolean;
  /**
   * The feed-forward module of layer `i` of the encoder or decoder stack; returning undefined, or no
   * factory, gives the default 4·dim GELU `FFN`.
   */
  ffnFactory?: (layerIndex: number, stack: "encoder" | "decoder") => FeedForward | undefined;
  /** Dropout on the embeddings, the attention weights and the residual branches (default 0). */
  dropout?: number;
  /** `"layer"` (default) or `"rms"` norms. */
  norm?: "layer" | "rms";
  /** Biases in the attention projections (default true). */
  bias?: boolean;
  /** Standard deviation of the embedding tables' N(0, std²) initialisation (default 0.02). */
  embeddingStd?: number;
}

/** Per-call options of {@link EncoderDecoder}. */
export interface EncoderDecoderCall {
  /** Bool `[B, S]`, true at source padding positions (masked in encoder self- and decoder cross-attention). */
  srcPaddingMask?: Tensor | null;
  /** Bool `[B, T]`, true at target padding positions (masked as keys of the decoder self-attention). */
  tgtPaddingMask?: Tensor | null;
}

/**
 * The encoder-decoder transformer (pre-LN): the encoder runs `encLayers` bidirectional blocks over the
 * source, the decoder `decLayers` causal blocks with cross-attention to the encoder output, and a final
 * projection gives target logits. `forward(src [B, S], tgtIn [B, T])` → logits `[B, T, tgtVocab]` (i32 ids;
 * `tgtIn` is the target shifted right, the loss compares the logits with the unshifted target).
 * `auxLoss()` sums the FFN modules' auxiliary losses of the latest pass.
 *
 * Children: `srcEmb`, `tgtEmb`, `srcPos`/`tgtPos` (without RoPE), `drop`, `encoder.{i}`, `encNorm`,
 * `decoder.{i}`, `decNorm`, `head` (unless tied).
 *
 * @example
 * ```ts
 * import { randint } from "@moegrad/moegrad";
 * import { EncoderDecoder } from "../mod.ts";
 * const model = new EncoderDecoder(50, 60, 16, 2, 2, 4);
 * const logits = model.forward(randint(0, 50, [3, 9]), randint(0, 60, [3, 7]));
 * console.log(logits.shape); // [3, 7, 60]
 * ```
 */
export class EncoderDecoder extends Module {
  /** Source token embedding. */
  readonly srcEmb: Embedding;
  /** Target token embedding. */
  readonly tgtEmb: Embedding;
  /** Learned source positions (null with RoPE). */
  readonly srcPos: Embedding | null;
  /** Learned target positions (null with RoPE). */
  readonly tgtPos: Embedding | null;
  /** Embedding dropout. */
  readonly drop: Dropout;
  /** Encoder layers. */
  readonly encoder: ModuleList<TransformerBlock>;
  /** Final encoder norm. */
  readonly encNorm: Norm;
  /** Decoder layers (causal, with cross-attention). */
  readonly decoder: ModuleList<TransformerBlock>;
  /** Final decoder norm. */
  readonly decNorm: Norm;
  /** Output projection `dim → tgtVocab` (null when tied). */
  readonly head: Linear | null;
  /** The longest accepted sequence. */
  readonly maxLen: number;

  /** Creates the model. */
  constructor(
    srcVocab: number,
    tgtVocab: number,
    dim: number,
    encLayers: number,
    decLayers: number,
    heads: number,
    options: EncoderDecoderOptions = {},
  ) {
    super();
    const init = { generator: options.generator, device: options.device, dtype: options.dtype };
    const std = options.embeddingStd ?? 0.02;
    const rope = options.rope ?? false;
    this.maxLen = options.maxLen ?? 1024;
    this.srcEmb = this.child("srcEmb", new Embedding(srcVocab, dim, { ...init, std }));
    this.tgtEmb = this.child("tgtEmb", new Embedding(tgtVocab, dim, { ...init, std }));
    this.srcPos = rope === false ? this.child("srcPos", new Embedding(this.maxLen, dim, { ...init, std })) : null;
    this.tgtPos = rope === false ? this.child("tgtPos", new Embedding(this.maxLen, dim, { ...init, std })) : null;
    this.drop = this.child("drop", new Dropout(options.dropout ?? 0, { generator: options.generator }));
    const block = (i: number, stack: "encoder" | "decoder") =>
      new TransformerBlock(dim, heads, {
        ...init,
        causal: stack === "decoder",
        crossAttention: stack === "decoder",
        rope,
        dropout: options.dropout,
        norm: options.norm,
        bias: options.bias,
        ffn: options.ffnFactory?.(i, stack),
      });
    this.encoder = this.child(
      "encoder",
      new ModuleList(Array.from({ length: encLayers }, (_, i) => block(i, "encoder"))),
    );
    this.encNorm = this.child("encNorm", makeNorm(options.norm, dim, undefined, init));
    this.decoder = this.child(
      "decoder",
      new ModuleList(Array.from({ length: decLayers }, (_, i) => block(i, "decoder"))),
    );
    this.decNorm = this.child("decNorm", makeNorm(options.norm, dim, undefined, init));
    this.head = options.tieEmbeddings ? null : this.child("head", new Linear(dim, tgtVocab, { ...init, bias: false }));
  }

  #embed(ids: Tensor, tok: Embedding, pos: Embedding | null, what: string): Tensor {
    if (ids.rank !== 2 || ids.dtype !== "i32") {
      throw new RangeError(
        `EncoderDecoder: expected i32 ${what} ids [B, L], got ${ids.dtype} [${ids.shape.join(", ")}]`,
      );
    }
    const t = ids.shape[1];
    if (t > this.maxLen) throw new RangeError(`EncoderDecoder: ${what} length ${t} exceeds maxLen ${this.maxLen}`);
    const h = tok.forward(ids);
    return this.drop.forward(pos ? h.add(pos.forward(arange(0, t, 1, { device: ids.device }))) : h);
  }

  /** Encodes `src` `[B, S]` into the memory `[B, S, dim]`. */
  encode(src: Tensor, call: EncoderDecoderCall = {}): Tensor {
    let h = this.#embed(src, this.srcEmb, this.srcPos, "source");
    for (const block of this.encoder) h = block.forward(h, { keyPaddingMask: call.srcPaddingMask, tokenIds: src });
    return this.encNorm.forward(h);
  }

  /** Decodes `tgtIn` `[B, T]` against `memory` `[B, S, dim]` into logits `[B, T, tgtVocab]`. */
  decode(tgtIn: Tensor, memory: Tensor, call: EncoderDecoderCall = {}): Tensor {
    let h = this.#embed(tgtIn, this.tgtEmb, this.tgtPos, "target");
    for (const block of this.decoder) {
      h = block.forward(h, {
        memory,
        keyPaddingMask: call.tgtPaddingMask,
        memoryPaddingMask: call.srcPaddingMask,
        tokenIds: tgtIn,
      });
    }
    h = this.decNorm.forward(h);
    return this.head ? this.head.forward(h) : h.matmul(this.tgtEmb.weight.transpose());
  }

  /** `src` `[B, S]`, `tgtIn` `[B, T]` → logits `[B, T, tgtVocab]`. */
  forward(src: Tensor, tgtIn: Tensor, call: EncoderDecoderCall = {}): Tensor {
    return this.decode(tgtIn, this.encode(src, call), call);
  }
}
