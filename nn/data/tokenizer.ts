/**
 * What the tokenizers in `nn/data` share: the {@link Tokenizer} interface, UTF-8 helpers and special tokens.
 *
 * Text is encoded as UTF-8 with `TextEncoder`, which replaces a lone surrogate by U+FFFD, so for every
 * string `s`, `decode(encode(s)) === s.toWellFormed()` (and `=== s` for every well-formed string).
 *
 * @module
 */

/** Options of {@link Tokenizer.encode}. */
export interface EncodeOptions {
  /**
   * Recognise the special tokens' strings in the text and emit their ids (default false: the text is plain
   * text and a string such as `"<eos>"` is encoded as its bytes).
   */
  allowSpecial?: boolean;
}

/** Options of {@link Tokenizer.decode}. */
export interface DecodeOptions {
  /** Leave special tokens out of the text (default false: they decode to their strings). */
  skipSpecial?: boolean;
}

/** A reversible map between text and token ids. */
export interface Tokenizer {
  /** Number of ids: every id is in [0, vocabSize). */
  readonly vocabSize: number;
  /** The special tokens' strings, in id order. */
  readonly specialTokens: readonly string[];
  /** Token ids of `text`. */
  encode(text: string, options?: EncodeOptions): number[];
  /** The text of `ids` (invalid UTF-8 byte sequences decode to U+FFFD). */
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  /** The id of a special token, or undefined when the tokenizer has no such token. */
  tokenId(token: string): number | undefined;
}

const encoder = new TextEncoder();
// ignoreBOM: a leading U+FEFF is text like any other character and must survive a round trip.
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** UTF-8 bytes of `text` (lone surrogates become U+FFFD, as with `TextEncoder`). */
export function utf8Encode(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Text of UTF-8 `bytes` (invalid sequences become U+FFFD; a leading byte-order mark is kept). */
export function utf8Decode(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** Checks a list of special tokens: non-empty, distinct strings. */
export function checkSpecialTokens(owner: string, tokens: readonly string[]): string[] {
  const seen = new Set<string>();
  for (const t of tokens) {
    if (typeof t !== "string" || t.length === 0) {
      throw new Error(`${owner}: special tokens must be non-empty strings, got ${JSON.stringify(t)}`);
    }
    if (seen.has(t)) throw new Error(`${owner}: special token ${JSON.stringify(t)} is listed twice`);
    seen.add(t);
  }
  return [...tokens];
}

/** A piece of text between special tokens, or a special token (its index in the list). */
export type Segment = string | { special: number };

/**
 * Splits `text` at occurrences of the special tokens (the longest one wins where several start at the same
 * place). Without special tokens the result is `[text]`.
 */
export function splitSpecial(text: string, specials: readonly string[]): Segment[] {
  if (specials.length === 0 || text.length === 0) return [text];
  const order = specials.map((s, i) => [s, i] as const).sort((a, b) => b[0].length - a[0].length);
  const out: Segment[] = [];
  let start = 0;
  let i = 0;
  while (i < text.length) {
    let hit = -1;
    for (const [s, idx] of order) {
      if (text.startsWith(s, i)) {
        hit = idx;
        break;
      }
    }
    if (hit < 0) {
      i++;
      continue;
    }
    if (i > start) out.push(text.slice(start, i));
    out.push({ special: hit });
    i += specials[hit].length;
    start = i;
  }
  if (start < text.length) out.push(text.slice(start));
  return out;
}

/** Concatenates byte chunks. */
export function concatBytes(chunks: readonly Uint8Array[], total?: number): Uint8Array {
  const n = total ?? chunks.reduce((s, c) => s + c.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** Checks that `id` is an integer id in [0, vocabSize). */
export function checkId(owner: string, id: number, vocabSize: number): void {
  if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
    throw new RangeError(`${owner}: token id ${id} is not in [0, ${vocabSize})`);
  }
}
