/**
 * moegrad's neural-network layer: the {@link Module} base class (named parameters, state dicts, train/eval),
 * seeded initialisers (`init`), and the layers of a transformer — `Linear` (weight `[in, out]`),
 * `Embedding`, `LayerNorm`, `RMSNorm`, `Dropout`, `MultiHeadAttention` (causal, padding masks, RoPE), `FFN`,
 * `GLU`, `TransformerBlock` (any module in the feed-forward slot), `DecoderLM` and `EncoderDecoder`.
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
  type Norm,
  TransformerBlock,
  type TransformerBlockCall,
  type TransformerBlockOptions,
} from "./layers/transformer.ts";
export { DecoderLM, type DecoderLMCall, type DecoderLMOptions } from "./layers/decoder_lm.ts";
export { EncoderDecoder, type EncoderDecoderCall, type EncoderDecoderOptions } from "./layers/encoder_decoder.ts";
