/**
 * English–German paragraph pairs from the LibreOffice help, for translation experiments.
 *
 * **Source.** The Debian packages `libreoffice-help-en-us` and `libreoffice-help-de` install the help as HTML
 * pages (compiled from the `.xhp` sources) under `/usr/share/libreoffice/help/en-US/text/**` and
 * `/usr/share/libreoffice/help/de/text/**`, one page per source file with the same relative path in both
 * languages. Every translatable paragraph and heading is a `<p>` / `<h1>`…`<h6>` element whose `id` starts with
 * `par_id` or `hd_id`, and it keeps that id in every language.
 *
 * **Pairing.** A paragraph's key is the page's relative path plus its id (plus `~k` for the k-th repeat of an id
 * on one page). Its text is the element's text with the markup stripped: entities decoded, `<br>` and block
 * boundaries as spaces, whitespace runs collapsed; of the platform/application variants the help switches between
 * at run time (`<span hidden="true" class="MAC">` …) only the default variant (hidden, no class) is kept. Pairs
 * with an empty side, with identical sides (untranslated text, code) and repeats of an earlier (en, de) pair are
 * dropped; the order is that of the sorted page paths, then document order.
 *
 * **Cache.** The pairs are written once to `<cacheDir>/libreoffice-help-en-de.jsonl` (one JSON object
 * `{ id, en, de }` per line; written to a temporary file and renamed, so a reader never sees a partial file) and
 * read from there on later calls.
 *
 * Needs `--allow-read` (help and cache) and `--allow-write` (cache, first call only).
 *
 * @module
 */

/** One aligned paragraph. */
export interface TranslationPair {
  /** `<page path relative to the language folder>#<element id>`, e.g. `text/swriter/guide/…html#par_id3150499`. */
  id: string;
  /** English text. */
  en: string;
  /** German text. */
  de: string;
}

/** Options of {@link buildTranslationPairs}. */
export interface BuildTranslationOptions {
  /** Folder of the cache file (created if needed). */
  cacheDir: string;
  /** Folder holding `en-US/` and `de/` (default `/usr/share/libreoffice/help`). */
  helpRoot?: string;
  /** Rebuild even if the cache file exists (default false). */
  rebuild?: boolean;
}

/** What {@link buildTranslationPairs} returns. */
export interface TranslationPairs {
  /** The pairs. */
  pairs: TranslationPair[];
  /** The cache file. */
  path: string;
  /** Whether the pairs were read from the cache. */
  fromCache: boolean;
}

/** The cache file's name inside `cacheDir`. */
export const TRANSLATION_CACHE_FILE = "libreoffice-help-en-de.jsonl";

/** The command that installs the help pages. */
export const LIBREOFFICE_HELP_INSTALL = "apt-get install libreoffice-help-en-us libreoffice-help-de";

const LANG_DIRS = { en: "en-US", de: "de" } as const;

/**
 * Reads the cached pairs, or extracts them from the LibreOffice help and caches them.
 *
 * @example
 * ```ts ignore
 * import { buildTranslationPairs } from "./mod.ts";
 * const { pairs, path } = await buildTranslationPairs({ cacheDir: ".cache" });
 * console.log(pairs.length, path, pairs[0]);
 * ```
 */
export async function buildTranslationPairs(options: BuildTranslationOptions): Promise<TranslationPairs> {
  const { cacheDir, helpRoot = "/usr/share/libreoffice/help", rebuild = false } = options;
  const path = joinPath(cacheDir, TRANSLATION_CACHE_FILE);
  if (!rebuild) {
    const cached = await readCache(path);
    if (cached !== null) return { pairs: cached, path, fromCache: true };
  }
  const pairs = await extractPairs(helpRoot);
  await Deno.mkdir(cacheDir, { recursive: true });
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  try {
    await Deno.writeTextFile(tmp, pairs.map((p) => JSON.stringify(p) + "\n").join(""));
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  return { pairs, path, fromCache: false };
}

function joinPath(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

function isPermissionError(e: unknown): boolean {
  const errors = Deno.errors as unknown as Record<string, (new (...a: unknown[]) => Error) | undefined>;
  return (errors.NotCapable !== undefined && e instanceof errors.NotCapable) ||
    (errors.PermissionDenied !== undefined && e instanceof errors.PermissionDenied);
}

async function readCache(path: string): Promise<TranslationPair[] | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    if (isPermissionError(e)) throw new Error(`buildTranslationPairs: cannot read ${path}: run with --allow-read`);
    throw e;
  }
  const pairs: TranslationPair[] = [];
  for (const line of text.split("\n")) {
    if (line.length > 0) pairs.push(JSON.parse(line));
  }
  return pairs;
}

async function extractPairs(helpRoot: string): Promise<TranslationPair[]> {
  const roots = { en: joinPath(helpRoot, LANG_DIRS.en), de: joinPath(helpRoot, LANG_DIRS.de) };
  const missing: string[] = [];
  for (const lang of ["en", "de"] as const) {
    try {
      const st = await Deno.stat(`${roots[lang]}/text`);
      if (!st.isDirectory) missing.push(`${roots[lang]}/text`);
    } catch (e) {
      if (isPermissionError(e)) {
        throw new Error(`buildTranslationPairs: cannot read ${helpRoot}: run with --allow-read`);
      }
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      missing.push(`${roots[lang]}/text`);
    }
  }
  if (missing.length > 0) {
    throw new Error(
      `buildTranslationPairs: the LibreOffice help pages are not installed (missing ${missing.join(" and ")}). ` +
        `Install them with: ${LIBREOFFICE_HELP_INSTALL} ` +
        `(as root; add --no-install-recommends to skip ~300 recommended packages), or pass helpRoot.`,
    );
  }
  const pages = (await listHtml(`${roots.en}/text`, "text")).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const pairs: TranslationPair[] = [];
  const seen = new Set<string>();
  for (const page of pages) {
    let deHtml: string;
    try {
      deHtml = await Deno.readTextFile(`${roots.de}/${page}`);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue; // page not translated
      throw e;
    }
    const de = new Map(keyed(extractHelpParagraphs(deHtml)));
    for (const [key, en] of keyed(extractHelpParagraphs(await Deno.readTextFile(`${roots.en}/${page}`)))) {
      const deText = de.get(key);
      if (deText === undefined || en === "" || deText === "" || en === deText) continue;
      const dedupe = en + "\u0000" + deText;
      if (seen.has(dedupe)) continue;
      seen.add(dedupe);
      pairs.push({ id: `${page}#${key}`, en, de: deText });
    }
  }
  return pairs;
}

/** (id with `~k` for repeats, text) in document order. */
function keyed(paragraphs: { id: string; text: string }[]): [string, string][] {
  const times = new Map<string, number>();
  return paragraphs.map(({ id, text }) => {
    const k = (times.get(id) ?? 0) + 1;
    times.set(id, k);
    return [k === 1 ? id : `${id}~${k}`, text];
  });
}

async function listHtml(dir: string, rel: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory) out.push(...await listHtml(`${dir}/${e.name}`, `${rel}/${e.name}`));
    else if (e.isFile && e.name.endsWith(".html")) out.push(`${rel}/${e.name}`);
  }
  return out;
}

const VOID = new Set(["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"]);
const BLOCK = new Set([
  "p",
  "div",
  "li",
  "ul",
  "ol",
  "td",
  "th",
  "tr",
  "table",
  "pre",
  "h1",
  "h2",
  "h3",
  "h4",
  "h5",
  "h6",
]);
const PARAGRAPH = /^(p|h[1-6])$/;
const ID_ATTR = /(?:^|\s)id\s*=\s*"((?:par_id|hd_id)[^"]*)"/;
const TAG = /<!--[\s\S]*?-->|<(\/?)([a-zA-Z][a-zA-Z0-9]*)((?:[^>"']|"[^"]*"|'[^']*')*)>/g;
const ENTITY = /&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g;
const NAMED: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0" };

function decodeEntities(s: string): string {
  return s.replace(ENTITY, (m, body: string) => {
    if (body[0] === "#") {
      const cp = body[1] === "x" || body[1] === "X" ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      return cp >= 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
    }
    return NAMED[body] ?? m;
  });
}

/**
 * The translatable paragraphs of one help page: every `<p>` / `<h1>`…`<h6>` whose id starts with `par_id` or
 * `hd_id`, as plain text (see the module doc for the rules).
 *
 * @example
 * ```ts
 * import { extractHelpParagraphs } from "./mod.ts";
 * const html = '<p id="par_id1" class="paragraph">Press <span class="keycode">Ctrl</span>&amp;S.</p>';
 * console.log(extractHelpParagraphs(html)); // [{ id: "par_id1", text: "Press Ctrl&S." }]
 * ```
 */
export function extractHelpParagraphs(html: string): { id: string; text: string }[] {
  const out: { id: string; text: string }[] = [];
  let id: string | null = null; // the paragraph being read
  let stack: { name: string; skip: boolean }[] = [];
  let buf = "";
  let last = 0;
  const skipping = () => stack.length > 0 && stack[stack.length - 1].skip;
  TAG.lastIndex = 0;
  for (let m = TAG.exec(html); m !== null; m = TAG.exec(html)) {
    if (id !== null && !skipping()) buf += html.slice(last, m.index);
    last = TAG.lastIndex;
    if (m[2] === undefined) continue; // a comment
    const closing = m[1] === "/";
    const name = m[2].toLowerCase();
    const attrs = m[3];
    if (id === null) {
      if (!closing && PARAGRAPH.test(name)) {
        const idm = ID_ATTR.exec(attrs);
        if (idm !== null) {
          id = idm[1];
          stack = [{ name, skip: false }];
          buf = "";
        }
      }
      continue;
    }
    if (closing) {
      let j = stack.length - 1;
      while (j >= 0 && stack[j].name !== name) j--;
      if (j < 0) continue; // a stray end tag
      const wasSkipping = skipping();
      stack.length = j;
      if (!wasSkipping && BLOCK.has(name)) buf += " ";
      if (stack.length === 0) {
        out.push({ id, text: decodeEntities(buf).replace(/\s+/g, " ").trim() });
        id = null;
      }
    } else if (VOID.has(name) || attrs.endsWith("/")) {
      if (name === "br" && !skipping()) buf += " ";
    } else {
      // A run-time variant (hidden, with a platform/application class) is skipped; the default one is kept.
      const variant = /(?:^|\s)hidden(?:\s|=|$)/.test(attrs) && /(?:^|\s)class\s*=/.test(attrs);
      stack.push({ name, skip: skipping() || variant });
      if (!skipping() && BLOCK.has(name)) buf += " ";
    }
  }
  return out;
}
