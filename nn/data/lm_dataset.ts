/**
 * Language-model data: documents → train/valid/test token streams → `[B, T]` batches.
 *
 * **Splits are by document**, so no document contributes to two splits. Document `i` gets the key
 * `u_i` = element `i` of a uniform draw from `new Generator(seed)` (Philox: a pure function of the seed and the
 * index) and the documents are ranked by key (ties by index): the first `round(test · n)` are the test split, the
 * next `round(valid · n)` the validation split, the rest the training split. A split with a positive fraction
 * gets at least one document.
 *
 * **Streams.** Each split's documents are tokenized in corpus order and concatenated, with a separator token
 * after each document (the tokenizer's `"<eos>"` when it has one, unless `separator` says otherwise).
 *
 * @module
 */
import { type CreateOptions, Generator, rand, randint, type Tensor, tensor } from "../../core/mod.ts";
import type { Tokenizer } from "./tokenizer.ts";

/** The three splits. */
export type Split = "train" | "valid" | "test";

/** The splits, in order. */
export const SPLITS: readonly Split[] = ["train", "valid", "test"];

/** Options of {@link LanguageModelDataset}. */
export interface LanguageModelDatasetOptions {
  /** Fraction of the documents in the validation split (default 0.05). */
  valid?: number;
  /** Fraction of the documents in the test split (default 0.05). */
  test?: number;
  /** Seed of the split (default 0). */
  seed?: number;
  /** Token id appended after every document; `null` for none (default: the tokenizer's `"<eos>"`, if any). */
  separator?: number | null;
}

/** Options of {@link sampleBatch}. */
export interface SampleBatchOptions {
  /** Sequences per batch (B). */
  batchSize: number;
  /** Tokens per sequence (T). */
  seqLen: number;
  /** The stream the offsets are drawn from (same seed and same calls → same batches). */
  generator: Generator;
  /** Device of the batch tensors (default: the default device). */
  device?: CreateOptions["device"];
}

/** Options of {@link LanguageModelDataset.batches}. */
export interface BatchOptions extends SampleBatchOptions {
  /** Number of batches to yield (default: no end). */
  steps?: number;
}

/** Options of {@link LanguageModelDataset.evalBatches}. */
export interface EvalBatchOptions {
  /** Sequences per batch (the last batch may have fewer). */
  batchSize: number;
  /** Tokens per sequence (T). */
  seqLen: number;
  /** Target value of positions that are not to be scored (default −100, `crossEntropy`'s default). */
  ignoreIndex?: number;
  /** Device of the batch tensors (default: the default device). */
  device?: CreateOptions["device"];
}

/** A training batch: `target[b, t]` is the token after `input[b, t]`. */
export interface Batch {
  /** Token ids, i32 `[B, T]`. */
  input: Tensor;
  /** Next-token ids, i32 `[B, T]`. */
  target: Tensor;
}

/** An evaluation batch; `count` targets are scored (the others equal the ignore index). */
export interface EvalBatch extends Batch {
  /** Number of targets that are not the ignore index. */
  count: number;
}

/** A document: a string or anything with a `text`. */
export type DocumentLike = string | { readonly text: string };

function checkPositiveInt(owner: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${owner}: ${name} must be a positive integer, got ${v}`);
}

/**
 * The batch of the windows of `seqLen + 1` tokens of `stream` that start at `offsets` (one row per offset, in
 * order): `input` is each window's first `seqLen` tokens, `target` its last. Every offset must lie in
 * `[0, stream.length − seqLen)`. The caller owns (and should dispose) the tensors.
 */
export function windowBatch(
  stream: Int32Array,
  offsets: ArrayLike<number>,
  seqLen: number,
  device?: CreateOptions["device"],
): Batch {
  const B = offsets.length, T = seqLen;
  const input = new Int32Array(B * T), target = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const o = offsets[b];
    input.set(stream.subarray(o, o + T), b * T);
    target.set(stream.subarray(o + 1, o + T + 1), b * T);
  }
  return {
    input: tensor(input, { shape: [B, T], dtype: "i32", device }),
    target: tensor(target, { shape: [B, T], dtype: "i32", device }),
  };
}

/** One random batch, unchecked: one `randint` draw of `B` offsets uniform in `[0, len − T)`. */
function drawBatch(
  stream: Int32Array,
  B: number,
  T: number,
  generator: Generator,
  device: CreateOptions["device"],
): Batch {
  const offsetsT = randint(0, stream.length - T, [B], { generator, device: "cpu" });
  const offsets = offsetsT.dataSync();
  offsetsT.dispose();
  return windowBatch(stream, offsets, T, device);
}

/**
 * One random batch of a token stream: `batchSize` windows of `seqLen + 1` consecutive tokens at offsets drawn
 * uniformly from `generator` (one `randint` draw of `batchSize` offsets, so the generator's state afterwards is
 * a pure function of its seed and the number of batches drawn: a run that saves and restores it resumes with
 * the same batches). {@link LanguageModelDataset.batches} yields exactly these batches for a split's stream.
 * The caller owns (and should dispose) the tensors.
 *
 * @example
 * ```ts
 * import { sampleBatch } from "./mod.ts";
 * import { Generator } from "@moegrad/moegrad";
 * const stream = Int32Array.from({ length: 100 }, (_, i) => i);
 * const { input, target } = sampleBatch(stream, { batchSize: 2, seqLen: 8, generator: new Generator(0) });
 * console.log(input.shape, target.shape); // [2, 8] [2, 8]
 * ```
 */
export function sampleBatch(stream: Int32Array, options: SampleBatchOptions): Batch {
  const { batchSize: B, seqLen: T, generator, device } = options;
  checkPositiveInt("sampleBatch", "batchSize", B);
  checkPositiveInt("sampleBatch", "seqLen", T);
  if (!(generator instanceof Generator)) throw new TypeError("sampleBatch: generator must be a moegrad Generator");
  if (stream.length < T + 1) {
    throw new RangeError(`sampleBatch: the stream has ${stream.length} tokens, fewer than seqLen + 1 = ${T + 1}`);
  }
  return drawBatch(stream, B, T, generator, device);
}

/**
 * Documents tokenized into train/valid/test streams, with random and sequential batches.
 *
 * @example
 * ```ts
 * import { ByteTokenizer, LanguageModelDataset } from "./mod.ts";
 * import { Generator } from "@moegrad/moegrad";
 * const docs = Array.from({ length: 20 }, (_, i) => `document number ${i} says hello`);
 * const ds = new LanguageModelDataset(docs, new ByteTokenizer({ specialTokens: ["<eos>"] }), { valid: 0.1, test: 0.1 });
 * const [batch] = ds.batches("train", { batchSize: 4, seqLen: 8, generator: new Generator(0), steps: 1 });
 * console.log(batch.input.shape, batch.target.shape, ds.documentIds("test").length); // [4, 8] [4, 8] 2
 * ```
 */
export class LanguageModelDataset {
  /** The tokenizer the streams were made with. */
  readonly tokenizer: Tokenizer;
  /** The separator token id, or null. */
  readonly separator: number | null;
  readonly #docs: Record<Split, number[]>;
  readonly #streams: Record<Split, Int32Array>;
  #trainCounts?: Float64Array;

  /** Splits `documents` and tokenizes every split. */
  constructor(documents: readonly DocumentLike[], tokenizer: Tokenizer, options: LanguageModelDatasetOptions = {}) {
    const { valid = 0.05, test = 0.05, seed = 0 } = options;
    const owner = "LanguageModelDataset";
    for (const [name, f] of [["valid", valid], ["test", test]] as const) {
      if (!(f >= 0 && f < 1)) throw new RangeError(`${owner}: ${name} must be a fraction in [0, 1), got ${f}`);
    }
    const n = documents.length;
    const nTest = test > 0 ? Math.max(1, Math.round(test * n)) : 0;
    const nValid = valid > 0 ? Math.max(1, Math.round(valid * n)) : 0;
    if (n - nTest - nValid < 1) {
      throw new RangeError(
        `${owner}: ${n} documents leave none for training (test ${nTest}, valid ${nValid}); need more documents`,
      );
    }
    this.tokenizer = tokenizer;
    this.separator = options.separator === undefined ? tokenizer.tokenId("<eos>") ?? null : options.separator;
    if (this.separator !== null && !(Number.isInteger(this.separator) && this.separator >= 0)) {
      throw new RangeError(`${owner}: separator must be a token id or null, got ${this.separator}`);
    }

    // Rank documents by their seeded keys (ties by index).
    const keys = rand([n], { generator: new Generator(seed), dtype: "f64", device: "cpu" });
    const u = keys.dataSync();
    keys.dispose();
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => u[a] - u[b] || a - b);
    const splitOf = new Uint8Array(n); // 0 train, 1 valid, 2 test
    order.forEach((doc, rank) => splitOf[doc] = rank < nTest ? 2 : rank < nTest + nValid ? 1 : 0);
    this.#docs = { train: [], valid: [], test: [] };
    for (let i = 0; i < n; i++) this.#docs[SPLITS[splitOf[i]]].push(i);

    const streams = {} as Record<Split, Int32Array>;
    for (const split of SPLITS) {
      const parts: number[][] = [];
      let total = 0;
      for (const i of this.#docs[split]) {
        const d = documents[i];
        const ids = tokenizer.encode(typeof d === "string" ? d : d.text);
        if (this.separator !== null) ids.push(this.separator);
        parts.push(ids);
        total += ids.length;
      }
      const s = new Int32Array(total);
      let o = 0;
      for (const p of parts) {
        s.set(p, o);
        o += p.length;
      }
      streams[split] = s;
    }
    this.#streams = streams;
  }

  /** Indices (into the documents given) of the documents in `split`, ascending. */
  documentIds(split: Split): number[] {
    return [...this.#docs[this.#check(split)]];
  }

  /** The token stream of `split` (a copy). */
  tokens(split: Split): Int32Array {
    return this.#streams[this.#check(split)].slice();
  }

  /** Number of tokens in `split`. */
  numTokens(split: Split): number {
    return this.#streams[this.#check(split)].length;
  }

  /**
   * Random batches: each row is `seqLen + 1` consecutive tokens of the split starting at an offset drawn
   * uniformly from `generator` (one `randint` draw of `batchSize` offsets per batch), `input` the first `seqLen`
   * and `target` the last: the batches of {@link sampleBatch} on the split's stream. The caller owns (and should
   * dispose) the tensors.
   */
  batches(split: Split, options: BatchOptions): IterableIterator<Batch> {
    const { batchSize: B, seqLen: T, generator, steps = Infinity, device } = options;
    const stream = this.#streams[this.#check(split)];
    checkPositiveInt("LanguageModelDataset.batches", "batchSize", B);
    checkPositiveInt("LanguageModelDataset.batches", "seqLen", T);
    if (!(generator instanceof Generator)) {
      throw new TypeError("LanguageModelDataset.batches: generator must be a moegrad Generator");
    }
    if (stream.length < T + 1) {
      const have = `the ${split} split has ${stream.length} tokens`;
      throw new RangeError(`LanguageModelDataset.batches: ${have}, fewer than seqLen + 1 = ${T + 1}`);
    }
    if (!(steps >= 0)) throw new RangeError(`LanguageModelDataset.batches: steps must be ≥ 0, got ${steps}`);
    return this.#randomBatches(stream, B, T, generator, steps, device);
  }

  *#randomBatches(
    stream: Int32Array,
    B: number,
    T: number,
    generator: Generator,
    steps: number,
    device: CreateOptions["device"],
  ): IterableIterator<Batch> {
    for (let step = 0; step < steps; step++) yield drawBatch(stream, B, T, generator, device);
  }

  /**
   * Sequential batches that score every token of the split after the first exactly once: windows of
   * `seqLen + 1` tokens starting at 0, T, 2T, …; if tokens remain, one last window ends at the end of the stream
   * and its targets already scored by the previous window are set to `ignoreIndex`. Sum the per-batch losses
   * weighted by `count` (or use `reduction: "sum"`) and divide by `numTokens(split) − 1`.
   */
  evalBatches(split: Split, options: EvalBatchOptions): IterableIterator<EvalBatch> {
    const { batchSize: B, seqLen: T, ignoreIndex = -100, device } = options;
    const stream = this.#streams[this.#check(split)];
    checkPositiveInt("LanguageModelDataset.evalBatches", "batchSize", B);
    checkPositiveInt("LanguageModelDataset.evalBatches", "seqLen", T);
    const N = stream.length;
    if (N < T + 1) {
      throw new RangeError(
        `LanguageModelDataset.evalBatches: the ${split} split has ${N} tokens, fewer than seqLen + 1 = ${T + 1}`,
      );
    }
    // Windows as (start, first scored position within the window).
    const windows: [number, number][] = [];
    const full = Math.floor((N - 1) / T);
    for (let k = 0; k < full; k++) windows.push([k * T, 0]);
    const covered = full * T; // targets 1..covered are scored
    if (covered < N - 1) {
      const start = N - 1 - T;
      windows.push([start, covered - start]);
    }
    return this.#sequentialBatches(stream, windows, B, T, ignoreIndex, device);
  }

  *#sequentialBatches(
    stream: Int32Array,
    windows: [number, number][],
    B: number,
    T: number,
    ignoreIndex: number,
    device: CreateOptions["device"],
  ): IterableIterator<EvalBatch> {
    for (let w0 = 0; w0 < windows.length; w0 += B) {
      const rows = Math.min(B, windows.length - w0);
      const input = new Int32Array(rows * T), target = new Int32Array(rows * T);
      let count = 0;
      for (let r = 0; r < rows; r++) {
        const [start, skip] = windows[w0 + r];
        input.set(stream.subarray(start, start + T), r * T);
        target.set(stream.subarray(start + 1, start + T + 1), r * T);
        target.fill(ignoreIndex, r * T, r * T + skip);
        count += T - skip;
      }
      yield {
        input: tensor(input, { shape: [rows, T], dtype: "i32", device }),
        target: tensor(target, { shape: [rows, T], dtype: "i32", device }),
        count,
      };
    }
  }

  /**
   * Cross-entropy (nats per token) of a unigram model fitted to the training stream, evaluated on the tokens of
   * `split` that a language model is scored on (all but the first): `−mean log p(t)` with
   * `p(t) = (count_train(t) + smoothing) / (N_train + smoothing · vocabSize)`. A model whose loss is not below this
   * has learned nothing beyond token frequencies.
   */
  unigramEntropy(split: Split, options: { smoothing?: number } = {}): number {
    const { smoothing = 1 } = options;
    const stream = this.#streams[this.#check(split)];
    const train = this.#streams.train;
    if (!(smoothing >= 0)) throw new RangeError(`LanguageModelDataset.unigramEntropy: smoothing must be ≥ 0`);
    const V = Math.max(this.tokenizer.vocabSize, this.separator === null ? 0 : this.separator + 1);
    if (this.#trainCounts === undefined) {
      this.#trainCounts = new Float64Array(V);
      for (let i = 0; i < train.length; i++) this.#trainCounts[train[i]]++;
    }
    const counts = this.#trainCounts;
    const denom = train.length + smoothing * V;
    let nll = 0;
    for (let i = 1; i < stream.length; i++) nll -= Math.log((counts[stream[i]] + smoothing) / denom);
    return nll / Math.max(1, stream.length - 1);
  }

  #check(split: Split): Split {
    if (!SPLITS.includes(split)) throw new RangeError(`LanguageModelDataset: unknown split ${JSON.stringify(split)}`);
    return split;
  }
}
