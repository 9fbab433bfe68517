/**
 * The LM experiments' batches come from the library (issue 13 item 5). The golden hashes below were recorded from
 * the experiments' own copy of the batching (`drawTrainBatch` / `makeEvalBatches` in `experiments/lm/data.ts`,
 * commit 27063b7) before it was replaced by the library's `sampleBatch` / `windowBatch`: the runner's path must
 * reproduce them bit for bit, for every seed and step and across a resume, so the experiments' numbers do not
 * change; `LanguageModelDataset.batches` must yield the same batches; and the runner must not grow its own copy.
 */
import assert from "node:assert/strict";
import type { Generator, Tensor } from "../../core/mod.ts";
import { ByteTokenizer, LanguageModelDataset, sampleBatch } from "../../nn/data/mod.ts";
import { makeEvalBatches } from "../../experiments/lm/data.ts";
import { runGenerators } from "../../experiments/lm/run_model.ts";

// The quick presets' shapes.
const B = 8, T = 64, EVAL_BATCHES = 6, STEPS = 20, RESUME_AT = 7;

const GOLDEN = {
  trainTokens: 3620,
  train: [
    "84db17f7bfbb48a500584c669fb0c200d287e394997f0a5b975b0d28877eeb7f",
    "5555ca20d7a260861658795305dbf4fab6a76e51a0802af03553f360d209cba9",
    "f794b73c919162e8451246cdfb2c832a112709857123233a1a85f749a2f4283a",
  ],
  eval: {
    valid: "91eb376e73967070fcef6c21cc67ae1a7250dbb9e11781ef63a18af60a9175c6",
    test: "8ab8c15db02d3de1ff18f50ecf3f1634312146696381a1f10521e4ea37244ed3",
  },
  eval1: {
    valid: "3b9a73964c405f5f47d5610b1cf1f3b6b308be44cc6e3b24e202538cbde471e6",
    test: "dcb454e33bc43e6201a8d6fd8fd6c347b000069ca79a33221f4656adb9af1540",
  },
};

function dataset(): LanguageModelDataset {
  const docs = Array.from(
    { length: 40 },
    (_, i) =>
      `document ${i}: ` + Array.from({ length: 20 + (i * 7) % 13 }, (_, j) => `w${(i * 31 + j * 17) % 97}`).join(" "),
  );
  return new LanguageModelDataset(docs, new ByteTokenizer({ specialTokens: ["<eos>"] }), { valid: 0.1, test: 0.1 });
}

/** SHA-256 (hex) of the shapes and i32 contents of `batches`, which it disposes. */
async function hashBatches(batches: Iterable<{ input: Tensor; target: Tensor }>): Promise<string> {
  const parts: Uint8Array[] = [];
  for (const b of batches) {
    assert.deepEqual(b.input.shape, b.target.shape);
    assert.equal(b.input.dtype, "i32");
    assert.equal(b.target.dtype, "i32");
    for (const t of [b.input, b.target]) {
      parts.push(new Uint8Array(Int32Array.from(t.shape).buffer));
      parts.push(new Uint8Array((t.dataSync() as Int32Array).slice().buffer));
      t.dispose();
    }
  }
  const all = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) all.set(p, (o += p.length) - p.length);
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return [...h].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** The runner's training draw (`experiments/lm/run.ts`). */
const draw = (stream: Int32Array, generator: Generator) => sampleBatch(stream, { batchSize: B, seqLen: T, generator });

Deno.test("LM batching: the runner's training batches are the recorded ones, straight and resumed", async () => {
  const ds = dataset();
  const train = ds.tokens("train");
  assert.equal(train.length, GOLDEN.trainTokens);
  for (const seed of [0, 1, 2]) {
    const g = runGenerators(seed).data;
    assert.equal(await hashBatches(Array.from({ length: STEPS }, () => draw(train, g))), GOLDEN.train[seed]);
    // Killed after RESUME_AT steps; a fresh process restores the data generator's state from the checkpoint.
    const g1 = runGenerators(seed).data;
    const before = Array.from({ length: RESUME_AT }, () => draw(train, g1));
    const resumed = runGenerators(seed).data;
    resumed.setState(g1.getState());
    const after = Array.from({ length: STEPS - RESUME_AT }, () => draw(train, resumed));
    assert.equal(await hashBatches([...before, ...after]), GOLDEN.train[seed], `seed ${seed} resumed`);
    // The library's dataset iterator yields the same batches.
    const it = ds.batches("train", { batchSize: B, seqLen: T, generator: runGenerators(seed).data, steps: STEPS });
    assert.equal(await hashBatches(it), GOLDEN.train[seed], `seed ${seed} LanguageModelDataset.batches`);
  }
});

Deno.test("LM batching: the experiments' evaluation batches are the recorded ones", async () => {
  const ds = dataset();
  for (const split of ["valid", "test"] as const) {
    assert.equal(await hashBatches(makeEvalBatches(ds.tokens(split), EVAL_BATCHES, B, T)), GOLDEN.eval[split]);
    assert.equal(await hashBatches(makeEvalBatches(ds.tokens(split), 1, 1, T)), GOLDEN.eval1[split]);
  }
});

Deno.test({
  name: "LM batching: the experiments draw no batches of their own",
  ignore: Deno.permissions.querySync({ name: "read" }).state !== "granted",
  fn: async () => {
    const dir = new URL("../../experiments/lm/", import.meta.url);
    const run = await Deno.readTextFile(new URL("run.ts", dir));
    assert.match(run, /sampleBatch\(data\.train,/, "run.ts draws its training batches with the library's sampleBatch");
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile || !e.name.endsWith(".ts")) continue;
      const src = await Deno.readTextFile(new URL(e.name, dir));
      assert.doesNotMatch(src, /\brandint\(/, `experiments/lm/${e.name} draws offsets itself; use sampleBatch`);
      assert.doesNotMatch(
        src,
        /stream\.subarray\(/,
        `experiments/lm/${e.name} gathers windows itself; use windowBatch`,
      );
    }
  },
});
