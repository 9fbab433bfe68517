/**
 * Data for language-model and translation experiments: tokenizers (bytes, trainable byte-level BPE), the
 * State of the Union and Moby Dick corpora, {@link LanguageModelDataset} (document-level splits, `[B, T]` batches)
 * and English–German paragraph pairs from the LibreOffice help.
 *
 * @example
 * ```ts
 * import { BpeTokenizer, LanguageModelDataset, loadSotu } from "./mod.ts";
 * import { Generator } from "@moegrad/moegrad";
 * const docs = (await loadSotu()).slice(0, 20);
 * const tok = BpeTokenizer.train(docs.map((d) => d.text), { vocabSize: 512, specialTokens: ["<eos>"] });
 * const ds = new LanguageModelDataset(docs, tok, { valid: 0.1, test: 0.1, seed: 1 });
 * const [{ input, target }] = ds.batches("train", { batchSize: 2, seqLen: 16, generator: new Generator(0), steps: 1 });
 * console.log(input.shape, target.dtype, ds.unigramEntropy("valid") > 0); // [2, 16] "i32" true
 * ```
 *
 * @module
 */
export {
  checkSpecialTokens,
  type DecodeOptions,
  type EncodeOptions,
  type Tokenizer,
  utf8Decode,
  utf8Encode,
} from "./tokenizer.ts";
export { ByteTokenizer, type ByteTokenizerOptions } from "./byte_tokenizer.ts";
export { pretokenize, PRETOKENIZE_RULES, type PretokenizeRule } from "./pretokenize.ts";
export { type BpeJSON, BpeTokenizer, type BpeTrainOptions, type BpeTrainStats } from "./bpe.ts";
export { loadSotu, type SotuDocument } from "./sotu.ts";
export { loadMobyDick, type MobyDickChapter } from "./moby_dick.ts";
export {
  type Batch,
  type BatchOptions,
  type DocumentLike,
  type EvalBatch,
  type EvalBatchOptions,
  LanguageModelDataset,
  type LanguageModelDatasetOptions,
  sampleBatch,
  type SampleBatchOptions,
  type Split,
  SPLITS,
  windowBatch,
} from "./lm_dataset.ts";
export {
  type BuildTranslationOptions,
  buildTranslationPairs,
  extractHelpParagraphs,
  LIBREOFFICE_HELP_INSTALL,
  TRANSLATION_CACHE_FILE,
  type TranslationPair,
  type TranslationPairs,
} from "./translation.ts";
