/**
 * Multi-head attention (self or cross) with optional causal masking, key padding masks and RoPE.
 *
 * @module
 */
import { arange, type Device, dropout, type Generator, scaledMaskedSoftmax, type Tensor } from "../../core/mod.ts";
import { Module } from "../module.ts";
import type { InitOptions } from "../init.ts";
import { Linear } from "./linear.ts";
import { Dropout } from "./dropout.ts";
import { applyRope } from "./rope.ts";

/** Options of {@link scaledDotProductAttention}. */
export interface AttentionOptions {
  /** Bool mask broadcastable to `[…, Tq, Tk]`: true where a query may attend to a key. */
  mask?: Tensor | null;
  /** Dropout probability on the attention weights (default 0). */
  dropout?: number;
  /** Apply the dropout (default true when `dropout` > 0). */
  training?: boolean;
  /** The dropout stream. */
  generator?: Generator;
  /** The score scale (default 1/√headDim). */
  scale?: number;
  /** Also mask key j > query i, without a mask tensor (default false). */
  causal?: boolean;
}

/**
 * softmax(q·kᵀ·scale, masked) · v for `q` `[…, Tq, hd]`, `k` `[…, Tk, hd]`, `v` `[…, Tk, hdv]`. Masked scores
 * become −∞ (weight exactly 0). A query whose every key is masked outputs zeros (not NaN). The scale, the
 * masks and the softmax are one fused op ({@link scaledMaskedSoftmax}); `causal` masks future keys through it
 * without building a mask.
 *
 * @example
 * ```ts
 * import { randn } from "@moegrad/moegrad";
 * import { scaledDotProductAttention } from "../mod.ts";
 * const [q, k, v] = [randn([2, 5, 8]), randn([2, 7, 8]), randn([2, 7, 3])];
 * console.log(scaledDotProductAttention(q, k, v).shape); // [2, 5, 3]
 * ```
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Tensor {
  const hd = q.shape[q.rank - 1];
  const scale = options.scale ?? 1 / Math.sqrt(hd);
  const scores = q.matmul(k.transpose(-2, -1));
  let probs = scaledMaskedSoftmax(scores, { scale, mask: options.mask ?? null, causal: options.causal ?? false });
  const p = options.dropout ?? 0;
  if (p > 0) probs = dropout(probs, p, { training: options.training ?? true, generator: options.generator });
  return probs.matmul(v);
}

/** The causal mask `[Tq, Tk]`: query i may attend to keys j ≤ i. */
export function causalMask(tq: number, tk: number, device?: Device): Tensor {
  const i = arange(0, tq, 1, { device }).reshape(tq, 1);
  const j = arange(0, tk, 1, { device }).reshape(1, tk);
  return j.le(i);
}

/** Options of {@link MultiHeadAttention}. */
export interface MultiHeadAttentionOptions extends InitOptions {
  /** Mask future keys (self-attention only; default false). */
  causal?: boolean;
  /** Rotate queries and keys with RoPE (`true`, or `{ base }`; default off). */
  rope?: boolean | { base?: number };
  /** Biases on the four projections (default true). */
  bias?: boolean;
  /** Dropout on the attention weights in training mode (default 0). */
  dropout?: number;
  /** Size of the key/value input (default `dim`; set it for cross-attention to another width). */
  kvDim?: number;
}

/** Per-call options of {@link MultiHeadAttention.forward}. */
export interface MultiHeadAttentionCall {
  /** Bool `[B, Tk]`: true marks a padding key that no query may attend to (PyTorch's convention). */
  keyPaddingMask?: Tensor | null;
  /** Extra bool mask broadcastable to `[B, heads, Tq, Tk]`: true where attending is allowed. */
  attnMask?: Tensor | null;
  /** RoPE position of the first query and key (default 0). */
  positionOffset?: number;
}

/**
 * Multi-head scaled dot-product attention. `forward(qIn [B, Tq, dim], kvIn = qIn [B, Tk, kvDim])` projects
 * with `wq`, `wk`, `wv` (each `Linear`, weights `[in, dim]`), splits `heads` heads of `dim / heads`, applies
 * RoPE to queries and keys if enabled (see {@link applyRope}), attends, merges the heads and projects with
 * `wo`. Causal masking is an attribute of the fused masked softmax (no mask tensor).
 *
 * @example
 * ```ts
 * import { randn } from "@moegrad/moegrad";
 * import { MultiHeadAttention } from "../mod.ts";
 * const attn = new MultiHeadAttention(16, 4, { causal: true, rope: true });
 * const x = randn([2, 10, 16]);
 * console.log(attn.forward(x).shape); // [2, 10, 16]  (self-attention)
 * const cross = new MultiHeadAttention(16, 4);
 * console.log(cross.forward(x, randn([2, 7, 16])).shape); // [2, 10, 16]  (cross-attention)
 * ```
 */
export class MultiHeadAttention extends Module {
  /** Query projection. */
  readonly wq: Linear;
  /** Key projection. */
  readonly wk: Linear;
  /** Value projection. */
  readonly wv: Linear;
  /** Output projection. */
  readonly wo: Linear;
  /** Dropout on the attention weights. */
  readonly attnDrop: Dropout;
  /** Model width. */
  readonly dim: number;
  /** Number of heads. */
  readonly heads: number;
  /** Width of one head. */
  readonly headDim: number;
  /** Whether future keys are masked. */
  readonly causal: boolean;
  /** The RoPE base, or null without RoPE. */
  readonly ropeBase: number | null;

  /** Creates the four projections. */
  constructor(dim: number, heads: number, options: MultiHeadAttentionOptions = {}) {
    super();
    if (!Number.isInteger(heads) || heads < 1 || !Number.isInteger(dim) || dim % heads !== 0) {
      throw new RangeError(`MultiHeadAttention: dim (${dim}) must be a multiple of heads (${heads})`);
    }
    this.dim = dim;
    this.heads = heads;
    this.headDim = dim / heads;
    this.causal = options.causal ?? false;
    const rope = options.rope ?? false;
    this.ropeBase = rope === false ? null : rope === true ? 10000 : rope.base ?? 10000;
    if (this.ropeBase !== null && this.headDim % 2 !== 0) {
      throw new RangeError(`MultiHeadAttention: RoPE needs an even head width, got ${this.headDim}`);
    }
    const lin = { ...options, bias: options.bias ?? true };
    const kvDim = options.kvDim ?? dim;
    this.wq = this.child("wq", new Linear(dim, dim, lin));
    this.wk = this.child("wk", new Linear(kvDim, dim, lin));
    this.wv = this.child("wv", new Linear(kvDim, dim, lin));
    this.wo = this.child("wo", new Linear(dim, dim, lin));
    this.attnDrop = this.child("attnDrop", new Dropout(options.dropout ?? 0, { generator: options.generator }));
  }

  #split(x: Tensor): Tensor {
    const [b, t] = x.shape;
    return x.reshape(b, t, this.heads, this.headDim).transpose(1, 2); // [B, H, T, hd]
  }

  /** Attends from `qIn` `[B, Tq, dim]` to `kvIn` `[B, Tk, kvDim]` (default: `qIn`); returns `[B, Tq, dim]`. */
  forward(qIn: Tensor, kvIn: Tensor = qIn, call: MultiHeadAttentionCall = {}): Tensor {
    if (qIn.rank !== 3 || kvIn.rank !== 3 || qIn.shape[0] !== kvIn.shape[0]) {
      throw new RangeError(
        `MultiHeadAttention: expected qIn [B, Tq, ${this.dim}] and kvIn [B, Tk, kvDim], got [${
          qIn.shape.join(", ")
        }] and [${kvIn.shape.join(", ")}]`,
      );
    }
    const [b, tq] = qIn.shape, tk = kvIn.shape[1];
    let q = this.#split(this.wq.forward(qIn));
    let k = this.#split(this.wk.forward(kvIn));
    const v = this.#split(this.wv.forward(kvIn));
    if (this.ropeBase !== null) {
      const ro = { base: this.ropeBase, offset: call.positionOffset ?? 0 };
      q = applyRope(q, ro);
      k = applyRope(k, ro);
    }
    const masks: Tensor[] = [];
    if (this.causal && tq !== tk) {
      throw new RangeError(`MultiHeadAttention: causal attention needs Tq = Tk, got ${tq} and ${tk}`);
    }
    const pad = call.keyPaddingMask;
    if (pad) {
      if (pad.dtype !== "bool" || pad.rank !== 2 || pad.shape[0] !== b || pad.shape[1] !== tk) {
        throw new RangeError(
          `MultiHeadAttention: keyPaddingMask must be bool [${b}, ${tk}], got ${pad.dtype} [${pad.shape.join(", ")}]`,
        );
      }
      masks.push(pad.logicalNot().reshape(b, 1, 1, tk));
    }
    if (call.attnMask) masks.push(call.attnMask);
    const out = scaledDotProductAttention(q, k, v, {
      mask: masks.length ? masks.reduce((m, n) => m.logicalAnd(n)) : null,
      causal: this.causal,
      dropout: this.attnDrop.p,
      training: this.attnDrop.training,
      generator: this.attnDrop.generator,
    });
    return this.wo.forward(out.transpose(1, 2).reshape(b, tq, this.dim));
  }
}
