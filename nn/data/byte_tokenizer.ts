/**
 * The byte tokenizer: a string's UTF-8 bytes are its ids 0..255; special tokens (BOS, EOS, PAD, …) get the ids
 * after 255, in the order given.
 *
 * @module
 */
import {
  checkId,
  checkSpecialTokens,
  type DecodeOptions,
  type EncodeOptions,
  splitSpecial,
  type Tokenizer,
  utf8Decode,
  utf8Encode,
} from "./tokenizer.ts";

/** Options of {@link ByteTokenizer}. */
export interface ByteTokenizerOptions {
  /** Special tokens, given ids 256, 257, … in this order (default none). */
  specialTokens?: readonly string[];
}

/**
 * UTF-8 bytes as token ids.
 *
 * @example
 * ```ts
 * import { ByteTokenizer } from "./mod.ts";
 * const tok = new ByteTokenizer({ specialTokens: ["<eos>"] });
 * console.log(tok.encode("hé")); // [104, 195, 169]
 * console.log(tok.tokenId("<eos>"), tok.vocabSize); // 256 257
 * console.log(tok.decode([104, 105, 256])); // "hi<eos>"
 * ```
 */
export class ByteTokenizer implements Tokenizer {
  /** The special tokens' strings, in id order (ids 256, 257, …). */
  readonly specialTokens: readonly string[];
  readonly #ids: Map<string, number>;

  /** A byte tokenizer with the given special tokens. */
  constructor(options: ByteTokenizerOptions = {}) {
    this.specialTokens = checkSpecialTokens("ByteTokenizer", options.specialTokens ?? []);
    this.#ids = new Map(this.specialTokens.map((t, i) => [t, 256 + i]));
  }

  /** 256 plus the number of special tokens. */
  get vocabSize(): number {
    return 256 + this.specialTokens.length;
  }

  /** The id of a special token, or undefined. */
  tokenId(token: string): number | undefined {
    return this.#ids.get(token);
  }

  /** The UTF-8 bytes of `text` (and, with `allowSpecial`, the ids of the special tokens in it). */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const segments = options.allowSpecial ? splitSpecial(text, this.specialTokens) : [text];
    const out: number[] = [];
    for (const seg of segments) {
      if (typeof seg === "string") {
        const bytes = utf8Encode(seg);
        for (let i = 0; i < bytes.length; i++) out.push(bytes[i]);
      } else {
        out.push(256 + seg.special);
      }
    }
    return out;
  }

  /** The text of `ids`; special tokens decode to their strings unless `skipSpecial`. */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    let text = "";
    const bytes = new Uint8Array(ids.length);
    let n = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      checkId("ByteTokenizer.decode", id, this.vocabSize);
      if (id < 256) {
        bytes[n++] = id;
      } else {
        if (options.skipSpecial) continue;
        text += utf8Decode(bytes.subarray(0, n)) + this.specialTokens[id - 256];
        n = 0;
      }
    }
    return text + utf8Decode(bytes.subarray(0, n));
  }
}
