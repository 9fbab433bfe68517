/**
 * A trainable byte-level BPE tokenizer.
 *
 * **Ids.** 0..255 are the bytes, so every string is encodable; the special tokens follow (256, 257, …), then the
 * merged tokens in the order they were learned. The vocabulary size counts all three.
 *
 * **Training** ({@link BpeTokenizer.train}) splits the texts into pre-tokens (see `pretokenize.ts`; merges never
 * cross a pre-token), counts the distinct pre-tokens, and then repeatedly merges the most frequent adjacent pair
 * of tokens. Ties go to the pair with the smaller (left id, right id), so the same corpus and options always give
 * the same merges. Pair counts are updated incrementally (only the words that contain the merged pair are
 * touched, through a pair → words index) and the best pair comes from a lazy max-heap, so a merge costs time in
 * proportion to the occurrences it changes, not to the corpus.
 *
 * **Encoding** applies the merges to each pre-token in rank order (the lowest-ranked adjacent pair first, all its
 * occurrences left to right), which reproduces what training did to that pre-token; results are cached per
 * pre-token.
 *
 * **Round trip.** Text is encoded as UTF-8 by `TextEncoder`, which turns a lone surrogate into U+FFFD; so
 * `decode(encode(s)) === s.toWellFormed()` for every string, and `=== s` for every well-formed one.
 *
 * @module
 */
import { pretokenize, PRETOKENIZE_RULES, type PretokenizeRule } from "./pretokenize.ts";
import {
  checkId,
  checkSpecialTokens,
  concatBytes,
  type DecodeOptions,
  type EncodeOptions,
  splitSpecial,
  type Tokenizer,
  utf8Decode,
  utf8Encode,
} from "./tokenizer.ts";

/** Options of {@link BpeTokenizer.train}. */
export interface BpeTrainOptions {
  /** Vocabulary size: 256 bytes + special tokens + merges. Training stops earlier when no pair is frequent enough. */
  vocabSize: number;
  /** A pair is merged only if it occurs at least this often (default 2). */
  minFrequency?: number;
  /** Special tokens (ids 256, 257, … in this order; never produced by merges). */
  specialTokens?: readonly string[];
  /** Pre-tokenization rule (default `"words"`; see `pretokenize.ts`). */
  pretokenize?: PretokenizeRule;
}

/** The serialised form of a {@link BpeTokenizer} (`toJSON` / `fromJSON`). */
export interface BpeJSON {
  /** Always `"moegrad-bpe"`. */
  format: "moegrad-bpe";
  /** Format version (1). */
  version: 1;
  /** The pre-tokenization rule. */
  pretokenize: PretokenizeRule;
  /** The special tokens, in id order. */
  specialTokens: string[];
  /** The merges in rank order: merge r makes token id `256 + specialTokens.length + r` from the pair. */
  merges: [number, number][];
}

/** Statistics of the last training run (for logs and benchmarks). */
export interface BpeTrainStats {
  /** Bytes of text seen. */
  bytes: number;
  /** Pre-tokens seen. */
  pretokens: number;
  /** Distinct pre-tokens. */
  distinctPretokens: number;
  /** Merges learned. */
  merges: number;
  /** Milliseconds spent counting pre-tokens. */
  countMs: number;
  /** Milliseconds spent merging. */
  mergeMs: number;
}

const PAIR = 0x200000; // pair key = left * PAIR + right; ids stay below 2^21
const MAX_VOCAB = PAIR;
const CACHE_LIMIT = 1 << 17;

/**
 * Byte-level BPE.
 *
 * @example
 * ```ts
 * import { BpeTokenizer } from "./mod.ts";
 * const tok = BpeTokenizer.train(["the cat sat on the mat with the hat"], { vocabSize: 270 });
 * const ids = tok.encode("the hat");
 * console.log(ids.length < 7, tok.decode(ids)); // true "the hat"
 * const copy = BpeTokenizer.fromJSON(JSON.parse(JSON.stringify(tok)));
 * console.log(copy.encode("the hat").join() === ids.join()); // true
 * ```
 */
export class BpeTokenizer implements Tokenizer {
  /** The pre-tokenization rule. */
  readonly pretokenizeRule: PretokenizeRule;
  /** The special tokens' strings, in id order (ids 256, 257, …). */
  readonly specialTokens: readonly string[];
  /** Statistics of the training run that made this tokenizer (undefined after `fromJSON`). */
  trainStats?: BpeTrainStats;
  readonly #merges: [number, number][];
  readonly #ranks = new Map<number, number>(); // pair key → merge rank
  readonly #bytes: Uint8Array[]; // token id → its bytes (empty for special tokens)
  readonly #specialIds: Map<string, number>;
  readonly #firstMerge: number;
  #cache = new Map<string, number[]>();

  private constructor(rule: PretokenizeRule, specialTokens: readonly string[], merges: [number, number][]) {
    if (!PRETOKENIZE_RULES.includes(rule)) {
      throw new Error(
        `BpeTokenizer: unknown pretokenize rule ${JSON.stringify(rule)} (${PRETOKENIZE_RULES.join(", ")})`,
      );
    }
    this.pretokenizeRule = rule;
    this.specialTokens = checkSpecialTokens("BpeTokenizer", specialTokens);
    this.#specialIds = new Map(this.specialTokens.map((t, i) => [t, 256 + i]));
    this.#firstMerge = 256 + this.specialTokens.length;
    this.#bytes = [];
    for (let b = 0; b < 256; b++) this.#bytes.push(Uint8Array.of(b));
    for (let i = 0; i < this.specialTokens.length; i++) this.#bytes.push(new Uint8Array(0));
    this.#merges = [];
    for (const [a, b] of merges) {
      const id = this.#firstMerge + this.#merges.length;
      if (id >= MAX_VOCAB) throw new RangeError(`BpeTokenizer: more than ${MAX_VOCAB} tokens`);
      for (const x of [a, b]) {
        if (!Number.isInteger(x) || x < 0 || x >= id || (x >= 256 && x < this.#firstMerge)) {
          throw new Error(`BpeTokenizer: merge ${this.#merges.length} (${a}, ${b}) refers to an invalid token ${x}`);
        }
      }
      const key = a * PAIR + b;
      if (this.#ranks.has(key)) throw new Error(`BpeTokenizer: merge (${a}, ${b}) is listed twice`);
      this.#ranks.set(key, this.#merges.length);
      this.#merges.push([a, b]);
      this.#bytes.push(concatBytes([this.#bytes[a], this.#bytes[b]]));
    }
  }

  /** 256 + special tokens + merges. */
  get vocabSize(): number {
    return this.#firstMerge + this.#merges.length;
  }

  /** The merges in rank order (merge r made token `256 + specialTokens.length + r`). */
  get merges(): readonly (readonly [number, number])[] {
    return this.#merges;
  }

  /** The id of a special token, or undefined. */
  tokenId(token: string): number | undefined {
    return this.#specialIds.get(token);
  }

  /** The bytes of token `id` (empty for a special token). */
  tokenBytes(id: number): Uint8Array {
    checkId("BpeTokenizer.tokenBytes", id, this.vocabSize);
    return this.#bytes[id].slice();
  }

  /** A readable form of token `id`: its special string, or its bytes decoded as UTF-8 (U+FFFD where partial). */
  tokenString(id: number): string {
    checkId("BpeTokenizer.tokenString", id, this.vocabSize);
    if (id >= 256 && id < this.#firstMerge) return this.specialTokens[id - 256];
    return utf8Decode(this.#bytes[id]);
  }

  /**
   * Learns merges from `texts` (any iterable of strings) until the vocabulary has `vocabSize` tokens or no
   * pair occurs `minFrequency` times.
   */
  static train(texts: Iterable<string>, options: BpeTrainOptions): BpeTokenizer {
    if (typeof texts === "string") {
      throw new TypeError("BpeTokenizer.train: texts must be an iterable of strings (wrap a single text in [ ])");
    }
    const rule = options.pretokenize ?? "words";
    const specials = checkSpecialTokens("BpeTokenizer.train", options.specialTokens ?? []);
    const minFrequency = options.minFrequency ?? 2;
    const { vocabSize } = options;
    const firstMerge = 256 + specials.length;
    if (!Number.isInteger(vocabSize) || vocabSize < firstMerge || vocabSize > MAX_VOCAB) {
      throw new RangeError(
        `BpeTokenizer.train: vocabSize must be an integer in [${firstMerge}, ${MAX_VOCAB}] ` +
          `(256 bytes + ${specials.length} special tokens + merges), got ${vocabSize}`,
      );
    }
    if (!PRETOKENIZE_RULES.includes(rule)) {
      throw new Error(`BpeTokenizer.train: unknown pretokenize rule ${JSON.stringify(rule)}`);
    }
    if (!(minFrequency >= 1)) throw new RangeError(`BpeTokenizer.train: minFrequency must be ≥ 1, got ${minFrequency}`);

    // 1. Distinct pre-tokens and their counts.
    const t0 = performance.now();
    const counts = new Map<string, number>();
    let pretokens = 0;
    const add = (piece: string) => {
      counts.set(piece, (counts.get(piece) ?? 0) + 1);
      pretokens++;
    };
    for (const text of texts) {
      if (typeof text !== "string") throw new TypeError("BpeTokenizer.train: texts must be strings");
      pretokenize(text, rule, add);
    }
    // Words live in one Int32Array (each at a fixed start; its length shrinks as pairs merge).
    const nWords = counts.size;
    const wordFreq = new Float64Array(nWords);
    const wordStart = new Int32Array(nWords);
    const wordLen = new Int32Array(nWords);
    const encoded: Uint8Array[] = new Array(nWords);
    let total = 0;
    let bytes = 0;
    {
      let w = 0;
      for (const [piece, c] of counts) {
        const b = utf8Encode(piece);
        encoded[w] = b;
        wordFreq[w] = c;
        wordStart[w] = total;
        wordLen[w] = b.length;
        total += b.length;
        bytes += b.length * c;
        w++;
      }
    }
    counts.clear();
    const sym = new Int32Array(total);
    for (let w = 0; w < nWords; w++) sym.set(encoded[w], wordStart[w]);
    encoded.length = 0;
    const t1 = performance.now();

    // 2. Pair counts and the pair → words index.
    const pairCount = new Map<number, number>();
    const where = new Map<number, number[]>();
    const noteWord = (key: number, w: number) => {
      let list = where.get(key);
      if (list === undefined) where.set(key, list = []);
      if (list[list.length - 1] !== w) list.push(w);
    };
    for (let w = 0; w < nWords; w++) {
      const s = wordStart[w], e = s + wordLen[w], f = wordFreq[w];
      for (let i = s; i + 1 < e; i++) {
        const key = sym[i] * PAIR + sym[i + 1];
        pairCount.set(key, (pairCount.get(key) ?? 0) + f);
        noteWord(key, w);
      }
    }
    const heap = new PairHeap();
    for (const [key, c] of pairCount) heap.push(c, key);

    // 3. Merge.
    const merges: [number, number][] = [];
    const touched = new Set<number>();
    const seenWords = new Set<number>();
    const bump = (key: number, delta: number) => {
      pairCount.set(key, (pairCount.get(key) ?? 0) + delta);
      if (delta > 0) touched.add(key);
    };
    while (firstMerge + merges.length < vocabSize && heap.size > 0) {
      const [count, key] = heap.pop();
      const current = pairCount.get(key) ?? 0;
      if (current !== count) {
        if (current > 0 && current < count) heap.push(current, key); // stale entry: requeue at the true count
        continue;
      }
      if (count < minFrequency) break;
      const a = Math.floor(key / PAIR), b = key - a * PAIR;
      const c = firstMerge + merges.length;
      merges.push([a, b]);
      touched.clear();
      seenWords.clear();
      const words = where.get(key) ?? [];
      where.delete(key);
      for (const w of words) {
        if (seenWords.has(w)) continue;
        seenWords.add(w);
        const s = wordStart[w], e = s + wordLen[w], f = wordFreq[w];
        let r = s, o = s; // read and write positions
        while (r < e) {
          if (r + 1 < e && sym[r] === a && sym[r + 1] === b) {
            // Replace a b by c: the pairs with the neighbours change. The left neighbour is the symbol already
            // written (possibly a c made just before), so runs like a b a b come out right.
            if (o > s) {
              const p = sym[o - 1];
              bump(p * PAIR + a, -f);
              bump(p * PAIR + c, f);
              noteWord(p * PAIR + c, w);
            }
            if (r + 2 < e) {
              const nx = sym[r + 2];
              bump(b * PAIR + nx, -f);
              bump(c * PAIR + nx, f);
              noteWord(c * PAIR + nx, w);
            }
            sym[o++] = c;
            r += 2;
          } else {
            sym[o++] = sym[r++];
          }
        }
        wordLen[w] = o - s;
      }
      pairCount.delete(key);
      for (const k of touched) {
        const v = pairCount.get(k)!;
        if (v > 0) heap.push(v, k);
      }
    }
    const t2 = performance.now();
    const tok = new BpeTokenizer(rule, specials, merges);
    tok.trainStats = {
      bytes,
      pretokens,
      distinctPretokens: nWords,
      merges: merges.length,
      countMs: t1 - t0,
      mergeMs: t2 - t1,
    };
    return tok;
  }

  /** Token ids of `text` (with `allowSpecial`, special tokens' strings in the text become their ids). */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const out: number[] = [];
    const emit = (piece: string) => {
      const ids = this.#encodePiece(piece);
      for (let i = 0; i < ids.length; i++) out.push(ids[i]);
    };
    const segments = options.allowSpecial ? splitSpecial(text, this.specialTokens) : [text];
    for (const seg of segments) {
      if (typeof seg === "string") pretokenize(seg, this.pretokenizeRule, emit);
      else out.push(256 + seg.special);
    }
    return out;
  }

  /** The text of `ids`; special tokens decode to their strings unless `skipSpecial`. */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const vocab = this.vocabSize;
    let text = "";
    let chunks: Uint8Array[] = [];
    let n = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      checkId("BpeTokenizer.decode", id, vocab);
      if (id >= 256 && id < this.#firstMerge) {
        if (options.skipSpecial) continue;
        text += utf8Decode(concatBytes(chunks, n)) + this.specialTokens[id - 256];
        chunks = [];
        n = 0;
      } else {
        const b = this.#bytes[id];
        chunks.push(b);
        n += b.length;
      }
    }
    return text + utf8Decode(concatBytes(chunks, n));
  }

  /** The serialisable form (merges and options); `JSON.stringify(tokenizer)` uses it. */
  toJSON(): BpeJSON {
    return {
      format: "moegrad-bpe",
      version: 1,
      pretokenize: this.pretokenizeRule,
      specialTokens: [...this.specialTokens],
      merges: this.#merges.map(([a, b]) => [a, b]),
    };
  }

  /** A tokenizer from {@link BpeTokenizer.toJSON}'s output (validated). */
  static fromJSON(json: BpeJSON): BpeTokenizer {
    if (json === null || typeof json !== "object" || json.format !== "moegrad-bpe") {
      throw new Error('BpeTokenizer.fromJSON: not a moegrad BPE tokenizer (format must be "moegrad-bpe")');
    }
    if (json.version !== 1) throw new Error(`BpeTokenizer.fromJSON: unsupported version ${json.version}`);
    if (!Array.isArray(json.merges) || !json.merges.every((m) => Array.isArray(m) && m.length === 2)) {
      throw new Error("BpeTokenizer.fromJSON: merges must be a list of [left, right] id pairs");
    }
    return new BpeTokenizer(json.pretokenize, json.specialTokens ?? [], json.merges.map(([a, b]) => [a, b]));
  }

  #encodePiece(piece: string): number[] {
    const hit = this.#cache.get(piece);
    if (hit !== undefined) return hit;
    const bytes = utf8Encode(piece);
    let word: number[] = Array.from(bytes);
    const ranks = this.#ranks;
    while (word.length > 1) {
      // The lowest-ranked adjacent pair …
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < word.length; i++) {
        const r = ranks.get(word[i] * PAIR + word[i + 1]);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      // … merged at every occurrence, left to right (as training did).
      const [a, b] = this.#merges[bestRank];
      const c = this.#firstMerge + bestRank;
      const next: number[] = word.slice(0, best);
      for (let i = best; i < word.length;) {
        if (i + 1 < word.length && word[i] === a && word[i + 1] === b) {
          next.push(c);
          i += 2;
        } else {
          next.push(word[i++]);
        }
      }
      word = next;
    }
    if (this.#cache.size >= CACHE_LIMIT) this.#cache = new Map();
    this.#cache.set(piece, word);
    return word;
  }
}

/** A binary max-heap of (count, pair key), ordered by count, then by the smaller key. */
class PairHeap {
  #count: number[] = [];
  #key: number[] = [];

  get size(): number {
    return this.#count.length;
  }

  #above(i: number, j: number): boolean {
    const ci = this.#count[i], cj = this.#count[j];
    return ci > cj || (ci === cj && this.#key[i] < this.#key[j]);
  }

  #swap(i: number, j: number): void {
    const c = this.#count[i], k = this.#key[i];
    this.#count[i] = this.#count[j];
    this.#key[i] = this.#key[j];
    this.#count[j] = c;
    this.#key[j] = k;
  }

  push(count: number, key: number): void {
    this.#count.push(count);
    this.#key.push(key);
    let i = this.#count.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#above(i, p)) break;
      this.#swap(i, p);
      i = p;
    }
  }

  pop(): [number, number] {
    const top: [number, number] = [this.#count[0], this.#key[0]];
    const lastC = this.#count.pop()!, lastK = this.#key.pop()!;
    const n = this.#count.length;
    if (n > 0) {
      this.#count[0] = lastC;
      this.#key[0] = lastK;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < n && this.#above(l, m)) m = l;
        if (r < n && this.#above(r, m)) m = r;
        if (m === i) break;
        this.#swap(i, m);
        i = m;
      }
    }
    return top;
  }
}
