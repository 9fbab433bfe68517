/**
 * `TransformerBlock`: one pre-LN transformer layer whose feed-forward slot takes any module (dense FFN,
 * GLU, or a Mixture-of-Experts layer).
 *
 * @module
 */
import type { Device, FloatDType, Tensor } from "../../core/mod.ts";
import { Module } from "../module.ts";
import type { InitOptions } from "../init.ts";
import { MultiHeadAttention } from "./attention.ts";
import { Dropout } from "./dropout.ts";
import { FFN } from "./ffn.ts";
import { LayerNorm, RMSNorm } from "./norm.ts";

/**
 * What the feed-forward slot of a {@link TransformerBlock} accepts: any module with `forward(x) → x` of the
 * same shape `[B, T, dim]`. If it produces an auxiliary loss (a MoE load-balancing loss), it overrides
 * `auxLoss()` (see {@link Module.auxLoss}) and the block, and every model around it, reports it.
 */
export type FeedForward = Module & { forward(x: Tensor, call?: FeedForwardCall): Tensor };

/**
 * The route context a {@link TransformerBlock} hands its feed-forward: the token ids of the sequence (a MoE
 * layer's `hash` router reads them; a plain FFN ignores them).
 */
export interface FeedForwardCall {
  /** i32 `[B, T]` ids of the tokens whose hidden states the feed-forward gets. */
  tokenIds?: Tensor;
}

/** Options of {@link TransformerBlock}. */
export interface TransformerBlockOptions extends InitOptions {
  /** The feed-forward module (default: `new FFN(dim, 4·dim)` with GELU). */
  ffn?: FeedForward;
  /** Causal self-attention (default false). */
  causal?: boolean;
  /** RoPE in the self-attention (`true` or `{ base }`; default off). Cross-attention never uses RoPE. */
  rope?: boolean | { base?: number };
  /** Dropout on the attention weights and on each residual branch, in training mode (default 0). */
  dropout?: number;
  /** Add a cross-attention sub-layer over an encoder's output (default false). */
  crossAttention?: boolean;
  /** Biases in the attention projections (default true). */
  bias?: boolean;
  /** `"layer"` (LayerNorm, default) or `"rms"` (RMSNorm). */
  norm?: "layer" | "rms";
  /** The norms' epsilon (default: the norm's own). */
  eps?: number;
}

/** Per-call options of {@link TransformerBlock.forward}. */
export interface TransformerBlockCall {
  /** The encoder output `[B, S, dim]` (required with cross-attention). */
  memory?: Tensor;
  /** Bool `[B, T]`, true at padding positions of `x` (masked as keys of the self-attention). */
  keyPaddingMask?: Tensor | null;
  /** Bool `[B, S]`, true at padding positions of `memory` (masked as keys of the cross-attention). */
  memoryPaddingMask?: Tensor | null;
  /** i32 `[B, T]` token ids of `x`, passed on to the feed-forward as its {@link FeedForwardCall} (optional). */
  tokenIds?: Tensor;
}

/** A norm module of either kind. */
export type Norm = LayerNorm | RMSNorm;

/** @internal Builds the norm a block or model asked for. */
export function makeNorm(
  kind: "layer" | "rms" | undefined,
  dim: number,
  eps: number | undefined,
  o: { device?: Device | string; dtype?: FloatDType },
): Norm {
  if (kind === undefined || kind === "layer") return new LayerNorm(dim, { eps, device: o.device, dtype: o.dtype });
  if (kind === "rms") return new RMSNorm(dim, { eps, device: o.device, dtype: o.dtype });
  throw new TypeError(`norm must be "layer" or "rms", got ${JSON.stringify(kind)}`);
}

/**
 * A pre-LN transformer layer:
 *
 *   x ← x + drop(attn(norm1(x)))
 *   x ← x + drop(cross(normCross(x), memory))      (with `crossAttention`)
 *   x ← x + drop(ffn(norm2(x)))
 *
 * The `ffn` slot takes any {@link FeedForward}; the block's `auxLoss()` (inherited from {@link Module})
 * returns the FFN's auxiliary loss from the latest forward pass, or null.
 *
 * @example
 * ```ts
 * import { randn } from "@moegrad/moegrad";
 * import { GLU, TransformerBlock } from "../mod.ts";
 * const block = new TransformerBlock(16, 4, { causal: true, rope: true, ffn: new GLU(16, 48) });
 * console.log(block.forward(randn([2, 6, 16])).shape, block.auxLoss()); // [2, 6, 16] null
 * ```
 */
export class TransformerBlock extends Module {
  /** Norm before the self-attention. */
  readonly norm1: Norm;
  /** Self-attention. */
  readonly attn: MultiHeadAttention;
  /** Norm before the cross-attention (null without it). */
  readonly normCross: Norm | null;
  /** Cross-attention (null without it). */
  readonly cross: MultiHeadAttention | null;
  /** Norm before the feed-forward. */
  readonly norm2: Norm;
  /** The feed-forward module. */
  readonly ffn: FeedForward;
  /** Residual dropout. */
  readonly drop: Dropout;

  /** Creates the sub-layers. */
  constructor(dim: number, heads: number, options: TransformerBlockOptions = {}) {
    super();
    const init = { generator: options.generator, device: options.device, dtype: options.dtype };
    const attnOpts = { ...init, bias: options.bias, dropout: options.dropout };
    this.norm1 = this.child("norm1", makeNorm(options.norm, dim, options.eps, init));
    this.attn = this.child(
      "attn",
      new MultiHeadAttention(dim, heads, { ...attnOpts, causal: options.causal, rope: options.rope }),
    );
    if (options.crossAttention) {
      this.normCross = this.child("normCross", makeNorm(options.norm, dim, options.eps, init));
      this.cross = this.child("cross", new MultiHeadAttention(dim, heads, attnOpts));
    } else {
      this.normCross = null;
      this.cross = null;
    }
    this.norm2 = this.child("norm2", makeNorm(options.norm, dim, options.eps, init));
    this.ffn = this.child("ffn", options.ffn ?? new FFN(dim, 4 * dim, init));
    this.drop = this.child("drop", new Dropout(options.dropout ?? 0, { generator: options.generator }));
  }

  /** `x` `[B, T, dim]` → `[B, T, dim]`. */
  forward(x: Tensor, call: TransformerBlockCall = {}): Tensor {
    let h = x.add(this.drop.forward(this.attn.forward(this.norm1.forward(x), undefined, {
      keyPaddingMask: call.keyPaddingMask,
    })));
    if (this.cross && this.normCross) {
      if (!call.memory) throw new Error("TransformerBlock: this block has cross-attention; pass { memory }");
      h = h.add(this.drop.forward(this.cross.forward(this.normCross.forward(h), call.memory, {
        keyPaddingMask: call.memoryPaddingMask,
      })));
    }
    const ffnCall = call.tokenIds ? { tokenIds: call.tokenIds } : undefined;
    return h.add(this.drop.forward(this.ffn.forward(this.norm2.forward(h), ffnCall)));
  }
}
