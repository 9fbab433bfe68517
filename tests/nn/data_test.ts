import assert from "node:assert/strict";
import { Generator, randint, type Tensor } from "../../mod.ts";
import {
  BpeTokenizer,
  buildTranslationPairs,
  ByteTokenizer,
  extractHelpParagraphs,
  LanguageModelDataset,
  loadMobyDick,
  loadSotu,
  pretokenize,
  SPLITS,
  TRANSLATION_CACHE_FILE,
  utf8Encode,
} from "../../nn/data/mod.ts";

const canRead = Deno.permissions.querySync({ name: "read" }).state === "granted";
const canWrite = Deno.permissions.querySync({ name: "write" }).state === "granted";
const HELP_ROOT = "/usr/share/libreoffice/help";
const helpInstalled = canRead && (() => {
  try {
    return Deno.statSync(`${HELP_ROOT}/en-US/text`).isDirectory && Deno.statSync(`${HELP_ROOT}/de/text`).isDirectory;
  } catch {
    return false;
  }
})();

function pieces(text: string, rule: "words" | "whitespace" = "words"): string[] {
  const out: string[] = [];
  pretokenize(text, rule, (p) => out.push(p));
  return out;
}

/** Random strings from a seeded moegrad Generator, mixing the awkward parts of Unicode. */
function randomStrings(count: number, seed: number): string[] {
  const pools: (readonly [number, number])[] = [
    [0x20, 0x7e], // printable ASCII
    [0x61, 0x7a], // lower-case letters (so merges happen)
    [0x00, 0x1f], // control characters
    [0x09, 0x0d], // \t \n \v \f \r
    [0x20, 0x20], // spaces (runs)
    [0xa0, 0xff], // Latin-1, incl. NBSP
    [0x300, 0x36f], // combining marks
    [0x4e00, 0x9fff], // CJK
    [0xac00, 0xd7a3], // Hangul
    [0x600, 0x6ff], // Arabic
    [0x1f600, 0x1f64f], // emoji (surrogate pairs)
    [0x200d, 0x200d], // zero-width joiner
    [0xfe0f, 0xfe0f], // variation selector
    [0xfeff, 0xfeff], // byte-order mark
    [0x2028, 0x2029], // line / paragraph separator
    [0x10000, 0x10ffff], // anything astral
  ];
  const perString = 40;
  const draws = randint(0, 1 << 30, [count * (perString * 2 + 1)], { generator: new Generator(seed), device: "cpu" });
  const r = draws.dataSync();
  draws.dispose();
  const out: string[] = [];
  let k = 0;
  for (let s = 0; s < count; s++) {
    const len = r[k++] % perString;
    let str = "";
    for (let i = 0; i < len; i++) {
      const [lo, hi] = pools[r[k++] % pools.length];
      let cp = lo + (r[k++] % (hi - lo + 1));
      if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd; // no lone surrogates here (tested separately)
      str += String.fromCodePoint(cp);
    }
    k += 2 * (perString - len);
    out.push(str);
  }
  return out;
}

/** Reference BPE training: recount every pair before each merge (slow, obviously right). */
function referenceMerges(words: string[][], vocabSize: number, minFrequency: number): [number, number][] {
  const counts = new Map<string, number>();
  for (const text of words) for (const p of text) counts.set(p, (counts.get(p) ?? 0) + 1);
  const ws = [...counts].map(([p, c]) => ({ s: Array.from(utf8Encode(p)), c }));
  const merges: [number, number][] = [];
  while (256 + merges.length < vocabSize) {
    const pc = new Map<number, number>();
    for (const { s, c } of ws) {
      for (let i = 0; i + 1 < s.length; i++) {
        pc.set(s[i] * 65536 + s[i + 1], (pc.get(s[i] * 65536 + s[i + 1]) ?? 0) + c);
      }
    }
    let best = -1, bestC = 0;
    for (const [k, c] of pc) if (c > bestC || (c === bestC && k < best)) [best, bestC] = [k, c];
    if (best < 0 || bestC < minFrequency) break;
    const a = Math.floor(best / 65536), b = best % 65536, id = 256 + merges.length;
    merges.push([a, b]);
    for (const w of ws) {
      const next: number[] = [];
      for (let i = 0; i < w.s.length;) {
        if (i + 1 < w.s.length && w.s[i] === a && w.s[i + 1] === b) {
          next.push(id);
          i += 2;
        } else next.push(w.s[i++]);
      }
      w.s = next;
    }
  }
  return merges;
}

Deno.test("ByteTokenizer: UTF-8 bytes, special tokens after 255, round trip", () => {
  const tok = new ByteTokenizer({ specialTokens: ["<bos>", "<eos>", "<pad>"] });
  assert.equal(tok.vocabSize, 259);
  assert.deepEqual([tok.tokenId("<bos>"), tok.tokenId("<eos>"), tok.tokenId("<pad>"), tok.tokenId("x")], [
    256,
    257,
    258,
    undefined,
  ]);
  assert.deepEqual(tok.encode("aé€😀"), [0x61, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80]);
  assert.deepEqual(tok.encode("a<eos>b"), [0x61, 0x3c, 0x65, 0x6f, 0x73, 0x3e, 0x62]); // plain text by default
  assert.deepEqual(tok.encode("a<eos>b", { allowSpecial: true }), [0x61, 257, 0x62]);
  assert.equal(tok.decode([256, 0x68, 0x69, 257]), "<bos>hi<eos>");
  assert.equal(tok.decode([256, 0x68, 0x69, 257], { skipSpecial: true }), "hi");
  assert.throws(() => tok.decode([259]), /not in \[0, 259\)/);
  for (const s of randomStrings(200, 3)) assert.equal(tok.decode(tok.encode(s)), s);
  assert.equal(tok.decode(tok.encode("\ufeffBOM")), "\ufeffBOM");
  assert.throws(() => new ByteTokenizer({ specialTokens: ["<a>", "<a>"] }), /listed twice/);
});

Deno.test("pretokenize: the documented word rule", () => {
  assert.deepEqual(pieces("Hello,  world!\n"), ["Hello", ",", " ", " world", "!", "\n"]);
  assert.deepEqual(pieces("It's 2024 — ok"), ["It", "'", "s", " 2024", " —", " ok"]);
  assert.deepEqual(pieces("cafe\u0301 x\u0301"), ["cafe\u0301", " x\u0301"]); // marks stay with their base
  assert.deepEqual(pieces("\t\tab  \n"), ["\t\t", "ab", "  \n"]);
  assert.deepEqual(pieces("日本語 text😀😀"), ["日本語", " text", "😀😀"]);
  assert.deepEqual(pieces("Hello, world!", "whitespace"), ["Hello,", " world!"]);
  for (const s of randomStrings(200, 5)) assert.equal(pieces(s).join(""), s);
});

Deno.test("BPE: exact first merges on a hand-checkable corpus", () => {
  // Pieces "aaab", " aab", " ab". Pair counts: (a,a) 3, (a,b) 3, (" ",a) 2 → the tie goes to (97, 97) < (97, 98).
  // Then "aa" a b | " " aa b | " " a b: (a,b) 2 → "ab". Everything else occurs once.
  const tok = BpeTokenizer.train(["aaab aab ab"], { vocabSize: 300 });
  assert.deepEqual(tok.merges, [[97, 97], [97, 98]]);
  assert.deepEqual([tok.tokenString(256), tok.tokenString(257)], ["aa", "ab"]);
  assert.equal(tok.vocabSize, 258);
  assert.deepEqual(tok.encode("aaab"), [256, 257]);
  // minFrequency 1: the next merges are the smallest pairs among the count-1 ties.
  const all = BpeTokenizer.train(["aaab aab ab"], { vocabSize: 260, minFrequency: 1 });
  assert.deepEqual(all.merges, [[97, 97], [97, 98], [32, 256], [32, 257]]);
  assert.deepEqual([258, 259].map((i) => all.tokenString(i)), [" aa", " ab"]);

  // A classic. Pieces: "low", " low" ×2, " lower", " lowest", " newest" ×2, " widest". "lo" and "ow" both occur 5
  // times (the tie goes to (l, o)); then "lo"+"w" (5); then " "+"low", "e"+"s", "s"+"t" tie at 4 (the space has the
  // smallest id); "es"+"t" (4); then four pairs tie at 2 and " "+"n" has the smallest ids.
  const t2 = BpeTokenizer.train(["low low low lower lowest newest newest widest"], { vocabSize: 262 });
  assert.deepEqual(t2.merges.map((_, i) => t2.tokenString(256 + i)), ["lo", "low", " low", "es", "est", " n"]);
});

Deno.test("BPE: incremental training matches a recount-every-merge reference", () => {
  const texts = randomStrings(300, 11).map((s) => s.replace(/[^\x20-\x7e]/g, "").slice(0, 30));
  texts.push("the then there these those other another the the then");
  for (const [vocab, minF] of [[400, 2], [350, 1]] as const) {
    const tok = BpeTokenizer.train(texts, { vocabSize: vocab, minFrequency: minF });
    const words = texts.map((t) => pieces(t));
    const expected = referenceMerges(words, vocab, minF);
    assert.ok(expected.length >= 60, `only ${expected.length} reference merges`);
    assert.deepEqual(tok.merges, expected, `vocab ${vocab}, minFrequency ${minF}`);
  }
});

Deno.test("BPE: deterministic training, JSON identity, round trip on 1000 random strings", () => {
  const texts = [...randomStrings(400, 21), "the quick brown fox jumps over the lazy dog ".repeat(20)];
  const opts = { vocabSize: 600, specialTokens: ["<eos>", "<pad>"] };
  const a = BpeTokenizer.train(texts, opts);
  const b = BpeTokenizer.train(texts, opts);
  assert.deepEqual(a.merges, b.merges);
  assert.ok(a.merges.length > 100, `only ${a.merges.length} merges`);
  assert.equal(a.tokenId("<eos>"), 256);
  assert.equal(a.tokenId("<pad>"), 257);
  assert.deepEqual(a.merges.flat().filter((id) => id === 256 || id === 257), []); // specials never merge

  const json = JSON.parse(JSON.stringify(a));
  const c = BpeTokenizer.fromJSON(json);
  assert.deepEqual(c.toJSON(), a.toJSON());
  assert.equal(c.vocabSize, a.vocabSize);
  assert.throws(() => BpeTokenizer.fromJSON({ ...json, format: "x" }), /not a moegrad BPE/);
  assert.throws(() => BpeTokenizer.fromJSON({ ...json, merges: [[0, 999]] }), /invalid token/);
  assert.throws(() => BpeTokenizer.train("one text" as unknown as string[], { vocabSize: 300 }), /iterable of strings/);
  assert.throws(() => BpeTokenizer.train(["x"], { vocabSize: 257, specialTokens: ["<a>", "<b>"] }), /vocabSize/);

  const strings = randomStrings(1000, 99);
  for (const s of strings) {
    const ids = a.encode(s);
    assert.equal(a.decode(ids), s, JSON.stringify(s));
    assert.deepEqual(c.encode(s), ids);
    assert.ok(ids.every((id) => id >= 0 && id < a.vocabSize && id !== 256 && id !== 257));
  }
  // Special tokens: plain text by default, ids with allowSpecial.
  assert.equal(a.decode(a.encode("x<eos>y")), "x<eos>y");
  const withSpecial = a.encode("x<eos>y", { allowSpecial: true });
  assert.ok(withSpecial.includes(256));
  assert.equal(a.decode(withSpecial), "x<eos>y");
  assert.equal(a.decode(withSpecial, { skipSpecial: true }), "xy");
  // Lone surrogates are encoded as U+FFFD (TextEncoder's behaviour): decode(encode(s)) === s.toWellFormed().
  for (const s of ["a\ud800b", "\udc00", "x\ud83d", "\ud83d\ude00\ud83d"]) {
    assert.equal(a.decode(a.encode(s)), s.toWellFormed());
  }
  assert.equal(a.decode(a.encode("\ufeff lead")), "\ufeff lead");
});

Deno.test("corpora: SOTU (233 addresses) and Moby Dick (139 sections) load with no permissions", async () => {
  const sotu = await loadSotu();
  assert.equal(sotu.length, 233); // the package has 466 data files: a .json and a .txt per address
  assert.deepEqual([sotu[0].year, sotu[0].name, sotu[0].party], [1790, "George Washington", "none"]);
  assert.ok(sotu.every((d, i) => i === 0 || d.year >= sotu[i - 1].year));
  assert.ok(sotu.every((d) => typeof d.text === "string" && d.text.length > 1000));
  assert.ok(sotu.reduce((s, d) => s + d.text.length, 0) > 10e6);
  const book = await loadMobyDick();
  assert.equal(book.length, 139);
  assert.deepEqual(book.slice(0, 4).map((c) => c.chapter), ["Contents", "Etymology", "Extracts", "1"]);
  assert.equal(book[3].title, "Loomings.");
  assert.ok(book[3].text.startsWith("Call me Ishmael."));
  assert.equal(book[138].chapter, "Epilogue");
});

Deno.test("BPE: > 2 bytes per token at vocab 2000 on SOTU text, fast training", async () => {
  const sotu = await loadSotu();
  const train = sotu.slice(0, 60).map((d) => d.text); // ~2 MB
  const t0 = performance.now();
  const tok = BpeTokenizer.train(train, { vocabSize: 2000 });
  const ms = performance.now() - t0;
  assert.equal(tok.vocabSize, 2000);
  assert.ok(ms < 10_000, `training took ${ms.toFixed(0)} ms`);
  const held = sotu.slice(200, 205).map((d) => d.text).join("\n"); // unseen text
  const ids = tok.encode(held);
  const ratio = utf8Encode(held).length / ids.length;
  assert.ok(ratio > 2, `${ratio.toFixed(2)} bytes/token`);
  assert.equal(tok.decode(ids), held);
});

function rows(t: Tensor): number[][] {
  const [B, T] = t.shape;
  const d = t.dataSync();
  return Array.from({ length: B }, (_, b) => Array.from(d.subarray(b * T, b * T + T)));
}

Deno.test("LanguageModelDataset: document-level splits, deterministic batches, eval coverage, unigram entropy", async () => {
  const sotu = await loadSotu();
  const tok = new ByteTokenizer({ specialTokens: ["<eos>"] });
  const ds = new LanguageModelDataset(sotu, tok, { valid: 0.05, test: 0.05, seed: 3 });
  const ids = Object.fromEntries(SPLITS.map((s) => [s, ds.documentIds(s)]));
  assert.deepEqual([ids.valid.length, ids.test.length], [12, 12]);
  assert.equal(ids.train.length + ids.valid.length + ids.test.length, 233);
  const all = new Set([...ids.train, ...ids.valid, ...ids.test]);
  assert.equal(all.size, 233); // disjoint and complete
  const again = new LanguageModelDataset(sotu.slice(0, 233), tok, { seed: 3 });
  for (const s of SPLITS) assert.deepEqual(again.documentIds(s), ids[s]);
  const other = new LanguageModelDataset(sotu, tok, { seed: 4 });
  assert.notDeepEqual(other.documentIds("test"), ids.test);
  // The stream of a split is its documents, each followed by <eos>.
  const expectedValid = ids.valid.reduce((s: number, i: number) => s + utf8Encode(sotu[i].text).length + 1, 0);
  assert.equal(ds.numTokens("valid"), expectedValid);
  assert.equal(ds.separator, 256);

  // Random batches: same seed → same batches; targets are the inputs shifted by one.
  const take = (
    seed: number,
  ) => [...ds.batches("train", { batchSize: 4, seqLen: 32, generator: new Generator(seed), steps: 3 })];
  const x = take(7), y = take(7), z = take(8);
  const stream = ds.tokens("train");
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(x[i].input.shape, [4, 32]);
    assert.equal(x[i].input.dtype, "i32");
    assert.deepEqual(rows(x[i].input), rows(y[i].input));
    assert.deepEqual(rows(x[i].target), rows(y[i].target));
    const inp = rows(x[i].input), tgt = rows(x[i].target);
    for (let b = 0; b < 4; b++) {
      assert.deepEqual(tgt[b].slice(0, 31), inp[b].slice(1));
      // the row is a window of the stream
      const first = inp[b];
      let found = false;
      for (let o = 0; o + 33 <= stream.length && !found; o++) {
        if (stream[o] === first[0] && first.every((v, j) => stream[o + j] === v) && stream[o + 32] === tgt[b][31]) {
          found = true;
        }
      }
      assert.ok(found, "batch row is not a window of the train stream");
    }
  }
  assert.notDeepEqual(rows(x[0].input), rows(z[0].input));
  for (const batch of [...x, ...y, ...z]) {
    batch.input.dispose();
    batch.target.dispose();
  }

  // Eval batches score every target exactly once.
  const small = new LanguageModelDataset(sotu.slice(0, 40), tok, { valid: 0.1, test: 0.1 });
  const N = small.numTokens("test");
  const testStream = small.tokens("test");
  let scored = 0;
  const got: number[] = [];
  let batches = 0;
  for (const { input, target, count } of small.evalBatches("test", { batchSize: 8, seqLen: 100 })) {
    batches++;
    const t = target.dataSync();
    const inp = input.dataSync();
    let c = 0;
    for (let i = 0; i < t.length; i++) {
      if (t[i] !== -100) {
        c++;
        got.push(t[i]);
      }
      if (i % 100 < 99 && t[i] !== -100) assert.equal(t[i], inp[i + 1]);
    }
    assert.equal(c, count);
    scored += count;
    input.dispose();
    target.dispose();
  }
  assert.equal(scored, N - 1);
  assert.deepEqual(got, Array.from(testStream.subarray(1)));
  assert.equal(batches, Math.ceil(Math.ceil((N - 1) / 100) / 8));

  // Unigram entropy: positive, below log(vocab), and the train split scores best.
  const h = SPLITS.map((s) => ds.unigramEntropy(s));
  for (const v of h) assert.ok(v > 2 && v < Math.log(257), `${v}`);
  assert.ok(h[0] <= Math.min(h[1], h[2]) + 0.05);
});

Deno.test("LanguageModelDataset: BPE tokenizer on Moby Dick; bad arguments", async () => {
  const book = await loadMobyDick();
  const tok = BpeTokenizer.train(book.slice(0, 20).map((c) => c.text), { vocabSize: 800, specialTokens: ["<eos>"] });
  const ds = new LanguageModelDataset(book, tok, { valid: 0.1, test: 0.1 });
  assert.deepEqual(ds.documentIds("valid").length, 14);
  const [batch] = ds.batches("valid", { batchSize: 2, seqLen: 64, generator: new Generator(0), steps: 1 });
  assert.deepEqual(batch.target.shape, [2, 64]);
  assert.ok(ds.unigramEntropy("valid") < Math.log(800));
  assert.throws(() => new LanguageModelDataset(["a", "b"], tok), /none for training/);
  assert.throws(() => new LanguageModelDataset(book, tok, { valid: 1 }), /fraction/);
  assert.throws(
    () => ds.batches("dev" as "test", { batchSize: 1, seqLen: 1, generator: new Generator(0) }),
    /unknown split/,
  );
  assert.throws(
    () => ds.batches("test", { batchSize: 1, seqLen: 1e9, generator: new Generator(0) }),
    /fewer than seqLen/,
  );
});

Deno.test("translation: help-page paragraph extraction", () => {
  const html = `<html><body><div id="DisplayArea">
<h1 id="hd_id1" dir="auto"><a name="x"></a>Title &amp; More
</h1>
<p id="par_id2" class="paragraph">Use <span class="emph">Toolbox </span>of the<br>editor &lt;3 &#233;&#x20AC;.</p>
<p id="par_id3">Press <span id="sw" class="switchinline"><span hidden="true" id="MAC1" class="MAC"><span class="keycode">Command</span></span><span hidden="true" id="default1"><span class="keycode">Ctrl</span></span></span><span class="keycode"> + F</span>.</p>
<p id="bm_id9">bookmark, not text</p>
<p>no id</p>
<table><tr><td><p id="par_id4" class="tablecontentintable">  cell
  text </p></td></tr></table>
<p id="par_id2">repeated id</p>
</div></body></html>`;
  assert.deepEqual(extractHelpParagraphs(html), [
    { id: "hd_id1", text: "Title & More" },
    { id: "par_id2", text: "Use Toolbox of the editor <3 é€." },
    { id: "par_id3", text: "Press Ctrl + F." },
    { id: "par_id4", text: "cell text" },
    { id: "par_id2", text: "repeated id" },
  ]);
});

Deno.test({
  name: "translation: a clear error when the LibreOffice help is missing",
  ignore: !(canRead && canWrite),
  async fn() {
    const empty = await Deno.makeTempDir();
    const cache = await Deno.makeTempDir();
    try {
      await assert.rejects(
        buildTranslationPairs({ cacheDir: cache, helpRoot: empty }),
        (e: Error) => {
          assert.match(e.message, /apt-get install libreoffice-help-en-us libreoffice-help-de/);
          assert.match(e.message, new RegExp(`${empty}/en-US/text`));
          return true;
        },
      );
    } finally {
      await Deno.remove(empty, { recursive: true });
      await Deno.remove(cache, { recursive: true });
    }
  },
});

Deno.test({
  name: "translation: builds en–de pairs from a small help tree, caches them atomically, reuses the cache",
  ignore: !(canRead && canWrite),
  async fn() {
    const root = await Deno.makeTempDir();
    const cache = `${root}/cache`;
    try {
      const page = (paras: [string, string][]) =>
        `<html><body>${paras.map(([id, t]) => `<p id="${id}" class="paragraph">${t}</p>`).join("\n")}</body></html>`;
      await Deno.mkdir(`${root}/help/en-US/text/shared`, { recursive: true });
      await Deno.mkdir(`${root}/help/de/text/shared`, { recursive: true });
      const en: [string, string][] = [
        ["par_id1", "Open the file."], // kept
        ["par_id2", "OK"], // identical in both languages: dropped
        ["par_id3", ""], // empty: dropped
        ["par_id4", "Only English"], // no German paragraph: dropped
        ["par_id5", "Open the file."], // a repeat of an earlier pair: dropped
      ];
      const de: [string, string][] = [
        ["par_id1", "Öffnen Sie die Datei."],
        ["par_id2", "OK"],
        ["par_id3", "leer"],
        ["par_id5", "Öffnen Sie die Datei."],
      ];
      await Deno.writeTextFile(`${root}/help/en-US/text/shared/a.html`, page(en));
      await Deno.writeTextFile(`${root}/help/de/text/shared/a.html`, page(de));
      const built = await buildTranslationPairs({ cacheDir: cache, helpRoot: `${root}/help` });
      assert.equal(built.path, `${cache}/${TRANSLATION_CACHE_FILE}`);
      assert.equal(built.fromCache, false);
      assert.deepEqual(built.pairs, [{
        id: "text/shared/a.html#par_id1",
        en: "Open the file.",
        de: "Öffnen Sie die Datei.",
      }]);
      assert.deepEqual([...Deno.readDirSync(cache)].map((e) => e.name), [TRANSLATION_CACHE_FILE]); // no temp left
      const lines = Deno.readTextFileSync(built.path).trim().split("\n");
      assert.deepEqual(lines.map((l) => JSON.parse(l)), built.pairs);
      // The cache is used next time, even without the help pages.
      await Deno.remove(`${root}/help`, { recursive: true });
      const again = await buildTranslationPairs({ cacheDir: cache, helpRoot: `${root}/help` });
      assert.equal(again.fromCache, true);
      assert.deepEqual(again.pairs, built.pairs);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "translation: the installed LibreOffice help gives thousands of pairs",
  ignore: !(helpInstalled && canWrite),
  async fn() {
    const cache = await Deno.makeTempDir();
    try {
      const { pairs, fromCache } = await buildTranslationPairs({ cacheDir: cache });
      assert.equal(fromCache, false);
      assert.ok(pairs.length > 10_000, `${pairs.length} pairs`);
      assert.ok(pairs.every((p) => p.en !== "" && p.de !== "" && p.en !== p.de));
      assert.equal(new Set(pairs.map((p) => p.id)).size, pairs.length);
    } finally {
      await Deno.remove(cache, { recursive: true });
    }
  },
});
