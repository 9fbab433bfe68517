/**
 * The token data of the LM experiments: a byte-level BPE tokenizer trained on the SOTU **training** documents
 * only, the SOTU train / validation token streams (split by document, seeded) and Moby Dick (out of domain),
 * cached on disk so that the runs of an experiment share one tokenization.
 *
 * The cache is two files in `cacheDir`, named by a key derived from the data config (only the fields that
 * change the tokens: corpus, vocabulary size, split fraction and seed, document cap, OOD on/off):
 * `lm-data-<key>.bin` (the streams, little-endian i32) and `lm-data-<key>.json` (tokenizer, stream lengths,
 * CRC-32 of the .bin). Both are written atomically, the .json last, so a half-written cache is never read; a
 * .bin whose length or checksum disagrees with its .json is rebuilt. Within one process the result is also
 * memoised, so calling {@link prepareLmData} again is free.
 *
 * Batches come from the library (`nn/data/lm_dataset.ts`): training batches are its `sampleBatch` (`B` windows
 * of `T + 1` tokens at offsets drawn from the run's data `Generator`, one `randint` of B offsets per step, the
 * batches `LanguageModelDataset.batches` yields); evaluation uses {@link evalWindows}: fixed windows evenly
 * spaced over a whole split, the same for every run and step, gathered by the library's `windowBatch`.
 *
 * @module
 */
import {
  type Batch,
  type BpeJSON,
  BpeTokenizer,
  LanguageModelDataset,
  loadMobyDick,
  loadSotu,
  windowBatch,
} from "../../nn/data/mod.ts";
import type { Tokenizer } from "../../nn/data/tokenizer.ts";
import { crc32 } from "../../nn/checkpoint/crc32.ts";
import { writeFileAtomic } from "../../nn/io/atomic.ts";
import type { RunConfig, RunDataConfig } from "./run_config.ts";

/** Bumped whenever the cached content would change for the same config. */
const DATA_CACHE_VERSION = 1;

/** Where runs look for the data cache unless told otherwise. */
export const DEFAULT_DATA_CACHE_DIR = "results/cache/lm-data";

/** The tokenized corpora of one data config. */
export interface LmData {
  /** The cache key (hex). */
  key: string;
  /** The BPE tokenizer (trained on the training documents only). */
  tokenizer: BpeTokenizer;
  /** Vocabulary size of the model's embedding (the tokenizer's). */
  vocabSize: number;
  /** Token id of `<eos>` (appended after every document). */
  eos: number;
  /** SOTU training stream. */
  train: Int32Array;
  /** SOTU validation stream (held-out documents). */
  valid: Int32Array;
  /** Moby Dick stream, or null when `ood` is off. */
  ood: Int32Array | null;
  /** Number of documents in the train / valid splits. */
  documents: { train: number; valid: number };
  /** Unigram cross-entropy (nats/token, add-one smoothing, fitted on train) of valid and OOD: a floor to beat. */
  unigram: { valid: number; ood: number | null };
  /** True when this call read the disk cache (false: it tokenized, or hit the in-process memo). */
  fromCache: boolean;
}

interface CacheMeta {
  format: "moegrad-lm-data";
  version: number;
  key: string;
  data: Record<string, unknown>;
  tokenizer: BpeJSON;
  eos: number;
  lengths: { train: number; valid: number; ood: number };
  documents: { train: number; valid: number };
  unigram: { valid: number; ood: number | null };
  crc32: number;
  bytes: number;
}

/** The part of the data config that decides the tokens (the cache key is a hash of it). */
export function dataIdentity(data: RunDataConfig): Record<string, unknown> {
  return {
    version: DATA_CACHE_VERSION,
    corpus: data.corpus,
    vocabSize: data.vocabSize,
    validFraction: data.validFraction,
    splitSeed: data.splitSeed,
    maxDocuments: data.maxDocuments,
    ood: data.ood,
  };
}

/** A 16-hex-digit key of {@link dataIdentity} (SHA-256 prefix). */
export async function dataKey(data: RunDataConfig): Promise<string> {
  const bytes = new TextEncoder().encode(JSON.stringify(dataIdentity(data)));
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...hash.slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const memo = new Map<string, Promise<LmData>>();

/**
 * The tokenized data of `config` (a run config or its `data` part): from the in-process memo, else from the
 * disk cache in `cacheDir`, else built (BPE training + tokenization, a few seconds for all of SOTU) and written
 * to the cache. Needs read (and, to build, write) permission on `cacheDir`.
 */
export function prepareLmData(config: RunConfig | RunDataConfig, cacheDir: string): Promise<LmData> {
  const data = "data" in config ? config.data : config;
  const memoKey = `${cacheDir}\0${JSON.stringify(dataIdentity(data))}`;
  let p = memo.get(memoKey);
  if (!p) {
    p = loadOrBuild(data, cacheDir);
    memo.set(memoKey, p);
    p.catch(() => memo.delete(memoKey));
  } else {
    p = p.then((d) => ({ ...d, fromCache: false }));
  }
  return p;
}

async function loadOrBuild(data: RunDataConfig, cacheDir: string): Promise<LmData> {
  const key = await dataKey(data);
  const base = `${cacheDir.replace(/\/+$/, "")}/lm-data-${key}`;
  const cached = await readCache(base, key);
  if (cached) return cached;
  const built = await build(data, key);
  await Deno.mkdir(cacheDir, { recursive: true });
  const streams = [built.train, built.valid, built.ood ?? new Int32Array(0)];
  const total = streams.reduce((s, a) => s + a.length, 0);
  const all = new Int32Array(total);
  let o = 0;
  for (const s of streams) all.set(s, (o += s.length) - s.length);
  const bytes = new Uint8Array(all.buffer);
  if (!littleEndian()) throw new Error("prepareLmData: big-endian hosts are not supported by the cache format");
  const meta: CacheMeta = {
    format: "moegrad-lm-data",
    version: DATA_CACHE_VERSION,
    key,
    data: dataIdentity(data),
    tokenizer: built.tokenizer.toJSON(),
    eos: built.eos,
    lengths: { train: built.train.length, valid: built.valid.length, ood: built.ood?.length ?? -1 },
    documents: built.documents,
    unigram: built.unigram,
    crc32: crc32(bytes),
    bytes: bytes.length,
  };
  await writeFileAtomic(`${base}.bin`, bytes);
  await writeFileAtomic(`${base}.json`, new TextEncoder().encode(JSON.stringify(meta) + "\n"));
  return built;
}

function littleEndian(): boolean {
  return new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
}

async function readCache(base: string, key: string): Promise<LmData | null> {
  let meta: CacheMeta;
  let bytes: Uint8Array;
  try {
    meta = JSON.parse(await Deno.readTextFile(`${base}.json`));
    bytes = await Deno.readFile(`${base}.bin`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof SyntaxError) return null;
    throw e;
  }
  if (
    meta.format !== "moegrad-lm-data" || meta.version !== DATA_CACHE_VERSION || meta.key !== key ||
    bytes.length !== meta.bytes || crc32(bytes) !== meta.crc32 || !littleEndian()
  ) return null;
  const all = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  const { train: nt, valid: nv, ood: no } = meta.lengths;
  const tokenizer = BpeTokenizer.fromJSON(meta.tokenizer);
  return {
    key,
    tokenizer,
    vocabSize: tokenizer.vocabSize,
    eos: meta.eos,
    train: all.slice(0, nt),
    valid: all.slice(nt, nt + nv),
    ood: no < 0 ? null : all.slice(nt + nv, nt + nv + no),
    documents: meta.documents,
    unigram: meta.unigram,
    fromCache: true,
  };
}

/** A tokenizer that produces nothing: lets `LanguageModelDataset` compute the split before BPE exists. */
const NO_TOKENS: Tokenizer = {
  vocabSize: 1,
  specialTokens: [],
  encode: () => [],
  decode: () => "",
  tokenId: () => undefined,
};

async function build(data: RunDataConfig, key: string): Promise<LmData> {
  if (data.corpus !== "sotu") throw new Error(`prepareLmData: unknown corpus ${JSON.stringify(data.corpus)}`);
  const all = await loadSotu();
  const docs = data.maxDocuments === null ? all : all.slice(-data.maxDocuments);
  const split = { valid: data.validFraction, test: 0, seed: data.splitSeed };
  const trainIds = new LanguageModelDataset(docs, NO_TOKENS, { ...split, separator: null }).documentIds("train");
  const tokenizer = BpeTokenizer.train(trainIds.map((i) => docs[i].text), {
    vocabSize: data.vocabSize,
    specialTokens: ["<eos>"],
  });
  const eos = tokenizer.tokenId("<eos>")!;
  const ds = new LanguageModelDataset(docs, tokenizer, { ...split, separator: eos });
  const train = ds.tokens("train");
  const valid = ds.tokens("valid");
  let ood: Int32Array | null = null;
  if (data.ood) {
    const parts = (await loadMobyDick()).map((c) => [...tokenizer.encode(c.text), eos]);
    ood = Int32Array.from(parts.flat());
  }
  const counts = unigramCounts(train, tokenizer.vocabSize);
  return {
    key,
    tokenizer,
    vocabSize: tokenizer.vocabSize,
    eos,
    train,
    valid,
    ood,
    documents: { train: trainIds.length, valid: ds.documentIds("valid").length },
    unigram: {
      valid: unigramEntropy(counts, train.length, valid),
      ood: ood ? unigramEntropy(counts, train.length, ood) : null,
    },
    fromCache: false,
  };
}

function unigramCounts(train: Int32Array, vocab: number): Float64Array {
  const c = new Float64Array(vocab);
  for (let i = 0; i < train.length; i++) c[train[i]]++;
  return c;
}

/** Add-one-smoothed unigram cross-entropy of `stream[1:]` (the scored tokens) under the train counts. */
function unigramEntropy(counts: Float64Array, trainTokens: number, stream: Int32Array): number {
  const denom = trainTokens + counts.length;
  let nll = 0;
  for (let i = 1; i < stream.length; i++) nll -= Math.log((counts[stream[i]] + 1) / denom);
  return nll / Math.max(1, stream.length - 1);
}

/**
 * The fixed evaluation windows of a split: `count` start offsets spread evenly from the first token to the
 * last full window (`round(i · (len − T − 1) / (count − 1))`), so the evaluation covers the whole split rather
 * than its first documents, and is identical for every run and step.
 */
export function evalWindows(streamLength: number, count: number, seqLen: number): number[] {
  const last = streamLength - seqLen - 1;
  if (last < 0) throw new RangeError(`evalWindows: ${streamLength} tokens are fewer than seqLen + 1 = ${seqLen + 1}`);
  if (count === 1) return [0];
  return Array.from({ length: count }, (_, i) => Math.round(i * last / (count - 1)));
}

/** The evaluation batches of a split: {@link evalWindows} for `batches · batchSize` windows, in batches. */
export function makeEvalBatches(
  stream: Int32Array,
  batches: number,
  batchSize: number,
  seqLen: number,
  device?: string,
): Batch[] {
  const offsets = evalWindows(stream.length, batches * batchSize, seqLen);
  return Array.from(
    { length: batches },
    (_, b) => windowBatch(stream, offsets.slice(b * batchSize, (b + 1) * batchSize), seqLen, device),
  );
}
