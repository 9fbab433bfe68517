/**
 * Pre-tokenization: the pieces of text that BPE merges never cross.
 *
 * **`"words"`** (the default rule). Every code point is a letter (`\p{L}`), a digit (`\p{N}`), whitespace
 * (`\s`) or other (punctuation, symbols, controls, lone surrogates). A piece is a maximal run of one class,
 * with two adjustments:
 *
 * 1. a combining mark (`\p{M}`) continues the run before it, whatever its class (so "é" written as e + U+0301
 *    stays one letter run, and a mark after a digit stays with the digit);
 * 2. a single space U+0020 right before a non-whitespace run is moved from the whitespace run to the front of
 *    that run, so " the" is one piece and words carry their leading space.
 *
 * So "Hello,  world!\n" → "Hello" "," " " " world" "!" "\n".
 *
 * **`"whitespace"`**: the same with only two classes, whitespace and non-whitespace (punctuation stays glued
 * to its word: "Hello," " world!").
 *
 * In both rules the pieces concatenate to the text and split it only between code points (never inside a
 * surrogate pair), so encoding the pieces' UTF-8 one after another gives the UTF-8 of the whole text.
 *
 * @module
 */

/** Names of the pre-tokenization rules (see the module doc). */
export type PretokenizeRule = "words" | "whitespace";

/** The rules, for validation. */
export const PRETOKENIZE_RULES: readonly PretokenizeRule[] = ["words", "whitespace"];

const LETTER = 0, DIGIT = 1, SPACE = 2, OTHER = 3, MARK = 4;

const ASCII_CLASS = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  ASCII_CLASS[c] = /[A-Za-z]/.test(ch) ? LETTER : /[0-9]/.test(ch) ? DIGIT : /\s/.test(ch) ? SPACE : OTHER;
}

const wideClass = new Map<number, number>();
const RE_MARK = /^\p{M}$/u, RE_LETTER = /^\p{L}$/u, RE_DIGIT = /^\p{N}$/u, RE_SPACE = /^\s$/u;

function classOf(cp: number): number {
  if (cp < 128) return ASCII_CLASS[cp];
  let k = wideClass.get(cp);
  if (k === undefined) {
    if (cp >= 0xd800 && cp <= 0xdfff) {
      k = OTHER; // a lone surrogate
    } else {
      const ch = String.fromCodePoint(cp);
      k = RE_MARK.test(ch)
        ? MARK
        : RE_LETTER.test(ch)
        ? LETTER
        : RE_DIGIT.test(ch)
        ? DIGIT
        : RE_SPACE.test(ch)
        ? SPACE
        : OTHER;
    }
    wideClass.set(cp, k);
  }
  return k;
}

/**
 * Splits `text` into pre-tokens by `rule` and calls `emit` with each (in order; they concatenate to `text`).
 *
 * @example
 * ```ts
 * import { pretokenize } from "./mod.ts";
 * const pieces: string[] = [];
 * pretokenize("Hello,  world!\n", "words", (p) => pieces.push(p));
 * console.log(pieces); // ["Hello", ",", " ", " world", "!", "\n"]
 * ```
 */
export function pretokenize(text: string, rule: PretokenizeRule, emit: (piece: string) => void): void {
  const n = text.length;
  if (n === 0) return;
  const twoClass = rule === "whitespace";
  let start = 0; // start of the current piece
  let cur = -1; // class of the current piece
  let i = 0;
  while (i < n) {
    let cp = text.charCodeAt(i);
    let width = 1;
    if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < n) {
      const lo = text.charCodeAt(i + 1);
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        cp = ((cp - 0xd800) << 10) + (lo - 0xdc00) + 0x10000;
        width = 2;
      }
    }
    let k = classOf(cp);
    if (k === MARK) {
      if (cur >= 0) {
        i += width;
        continue; // a mark continues the current run
      }
      k = OTHER;
    }
    if (twoClass && k !== SPACE) k = OTHER;
    if (k !== cur) {
      if (cur === SPACE) {
        // Move a final U+0020 of the whitespace run onto the run that starts here.
        if (text.charCodeAt(i - 1) === 32) {
          if (i - 1 > start) emit(text.slice(start, i - 1));
          start = i - 1;
        } else {
          emit(text.slice(start, i));
          start = i;
        }
      } else if (cur >= 0) {
        emit(text.slice(start, i));
        start = i;
      }
      cur = k;
    }
    i += width;
  }
  emit(text.slice(start, n));
}
