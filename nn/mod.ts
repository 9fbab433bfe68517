/**
 * moegrad's neural-network layer: the {@link Module} base class (named parameters, state dicts, train/eval),
 * seeded initialisers (`init`), and the layers of a transformer — `Linear` (weight `[in, out]`),
 * `Embedding`, `LayerNorm`, `RMSNorm`, `Dropout`, `MultiHeadAttention` (causal, padding masks, RoPE), `FFN`,
 * `GLU`, `TransformerBlock` (any module in the feed-forward slot), `DecoderLM` and `EncoderDecoder`.
 * Optimizers, schedules and clipping are in `nn/optim`, checkpoints in `nn/checkpoint`, tokenizers and
 * datasets in `nn/data` (all re-exported from the package root).
 *
 * ## Adding a layer
 * Subclass {@link Module}; create weights with the seeded initialisers of `init` (pass `generator`, `device`,
 * `dtype` through from your options) and register them with `this.param(name, t)`, running statistics with
 * `this.buffer(name, t)`, sub-layers with `this.child(name, module)`; write `forward` with public ops (autograd
 * does the rest). Registered names appear in `namedParameters()` and the state dict, so checkpoints and
 * optimizers see them with no extra code. A layer that adds a loss term (as the MoE layer does) overrides
 * `auxLoss()`. Test it with an f64 gradient check (`tests/helpers/gradcheck.ts`) and a state-dict round trip.
 * A MoE layer goes into a transformer through `DecoderLM`'s `ffnFactory` or `TransformerBlock`'s `ffn` slot.
 *
 * @example
 * ```ts
 * import { crossEntropy, Generator, randint } from "@moegrad/moegrad";
 * import { DecoderLM } from "./mod.ts";
 * const lm = new DecoderLM(64, 32, 2, 4, { rope: true, generator: new Generator(0) });
 * const ids = randint(0, 64, [2, 9]);
 * const logits = lm.forward(ids.slice(1, 0, -1));
 * const loss = crossEntropy(logits, ids.slice(1, 1));
 * loss.backward();
 * console.log(lm.parameters().every((p) => p.grad !== null)); // true
 * ```
 *
 * @module
 */
export { type LoadStateDictOptions, type LoadStateDictResult, Module, ModuleList, StateDictError } from "./module.ts";
export * as init from "./init.ts";
export type { FanInitOptions, Fans, InitOptions, KaimingOptions, Nonlinearity } from "./init.ts";
export { Linear, type LinearOptions } from "./layers/linear.ts";
export { Embedding, type EmbeddingOptions } from "./layers/embedding.ts";
export { LayerNorm, type LayerNormOptions, RMSNorm, type RMSNormOptions } from "./layers/norm.ts";
export { Dropout } from "./layers/dropout.ts";
export { applyRope, type RopeOptions } from "./layers/rope.ts";
export {
  type AttentionOptions,
  causalMask,
  MultiHeadAttention,
  type MultiHeadAttentionCall,
  type MultiHeadAttentionOptions,
  scaledDotProductAttention,
} from "./layers/attention.ts";
export { FFN, type FFNOptions, GLU, type GLUOptions } from "./layers/ffn.ts";
export {
  type FeedForward,
  type FeedForwardCall,
  type Norm,
  TransformerBlock,
  type TransformerBlockCall,
  type TransformerBlockOptions,
} from "./layers/transformer.ts";
export { DecoderLM, type DecoderLMCall, type DecoderLMOptions } from "./layers/decoder_lm.ts";
export { EncoderDecoder, type EncoderDecoderCall, type EncoderDecoderOptions } from "./layers/encoder_decoder.ts";
