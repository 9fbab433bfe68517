/**
 * The LM runner (`experiments/lm/run.ts`) on a tiny model and a few SOTU documents: the files it writes, bit
 * reproducibility (same config twice; killed + resumed vs uninterrupted), and that evaluation runs in eval
 * mode (the recorded eval loss is the eval-mode loss of the checkpointed weights, which differs from the
 * training-mode loss of SparseMixer's sampled routing).
 */
import assert from "node:assert/strict";
import { crossEntropy, memoryStats, noGrad, scope } from "../../core/mod.ts";
import { loadCheckpoint } from "../../nn/checkpoint/mod.ts";
import { parseSafetensors } from "../../nn/checkpoint/safetensors.ts";
import { AdamW } from "../../nn/optim/mod.ts";
import { readJsonl } from "../../experiments/common/io.ts";
import { parseRunConfig } from "../../experiments/lm/run_config.ts";
import { makeEvalBatches, prepareLmData } from "../../experiments/lm/data.ts";
import { buildLmModel, runGenerators } from "../../experiments/lm/run_model.ts";
import { runLm } from "../../experiments/lm/run.ts";
import { type MetricsRecord, withoutTiming } from "../../experiments/lm/run_metrics.ts";
import type { RoutingSnapshot } from "../../experiments/lm/eval_routing.ts";

const granted = (name: "read" | "write") => Deno.permissions.querySync({ name }).state === "granted";
const ignore = !granted("read") || !granted("write");

const CONFIG = parseRunConfig({
  seed: 5,
  steps: 12,
  logEvery: 2,
  evalEvery: 4,
  checkpointEvery: 4,
  data: { vocabSize: 300, maxDocuments: 12, seqLen: 16, batchSize: 4, evalBatches: 2, validFraction: 0.2 },
  model: { dim: 16, layers: 2, heads: 2, experts: 4, estimator: "sparsemixer", outputScale: true },
  optim: { lr: 3e-3, warmupSteps: 2 },
});

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "moegrad-lm-run-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const metrics = (dir: string) => readJsonl<MetricsRecord>(`${dir}/metrics.jsonl`);

/** The model and optimizer tensors of a checkpoint, as raw bytes by name (metadata, which holds timings, left out). */
async function checkpointTensors(path: string): Promise<Map<string, Uint8Array>> {
  const parsed = parseSafetensors(await Deno.readFile(path));
  return new Map(Object.entries(parsed.tensors).map(([k, v]) => [k, v.bytes]));
}

Deno.test({
  name: "runLm writes config, env, metrics, checkpoints and final.json with the documented fields",
  ignore,
  async fn() {
    await withTempDir(async (root) => {
      const dir = `${root}/run`;
      const progress: string[] = [];
      const live: number[] = [];
      const summary = await runLm(CONFIG, dir, {
        resume: false,
        dataCacheDir: `${root}/cache`,
        onProgress: (p) => {
          progress.push(p.kind);
          if (p.kind === "train") live.push(memoryStats.liveTensors);
        },
      });
      assert.equal(live.length, 6);
      assert.deepEqual(live.slice(1), Array(5).fill(live[0]), `live tensors must stay flat: ${live}`);
      assert.deepEqual(JSON.parse(await Deno.readTextFile(`${dir}/config.json`)), CONFIG);
      const env = JSON.parse(await Deno.readTextFile(`${dir}/env.json`));
      assert.equal(env.device, "cpu");
      const final = JSON.parse(await Deno.readTextFile(`${dir}/final.json`));
      assert.deepEqual(final, JSON.parse(JSON.stringify(summary)));
      assert.equal(final.done, true);
      assert.equal(final.steps, 12);
      for (const split of ["valid", "ood"]) {
        assert.ok(final.finalEval[split].loss > 0 && final.finalEval[split].ppl > 1);
      }
      assert.ok(final.totalSeconds > 0 && final.msPerStepMedian > 0 && final.tokensPerSecMedian > 0);
      assert.ok(final.evalSeconds > 0 && final.wallSeconds >= final.totalSeconds + final.evalSeconds);

      const records = await metrics(dir);
      const train = records.filter((r) => r.kind === "train");
      const evals = records.filter((r) => r.kind === "eval");
      assert.deepEqual(train.map((r) => r.step), [2, 4, 6, 8, 10, 12]);
      assert.deepEqual(evals.map((r) => `${r.step}:${r.split}`), [
        "4:valid",
        "4:ood",
        "8:valid",
        "8:ood",
        "12:valid",
        "12:ood",
      ]);
      assert.deepEqual(records.map((r) => r.step), [...records.map((r) => r.step)].sort((a, b) => a - b));
      for (const r of train) {
        assert.ok(r.kind === "train");
        assert.ok(Math.abs(r.loss - (r.lmLoss + r.auxLoss)) < 1e-5, "loss = lmLoss + auxLoss");
        assert.ok(r.auxLoss > 0 && r.lr > 0 && r.tokensPerSec > 0 && r.msPerStep > 0);
        assert.equal(r.tokens, r.step * 4 * 16);
        assert.equal(r.routing.length, 1); // moeEvery 2 with 2 layers: layer 0 only
        const rt = r.routing[0];
        assert.equal(rt.layer, 0);
        assert.equal(rt.load.length, 4);
        assert.ok(Math.abs(rt.load.reduce((a, b) => a + b, 0) - 1) < 1e-5);
        assert.ok(rt.entropy >= 0 && rt.unusedExperts >= 0);
        assert.ok(rt.routerEntropy > 0 && rt.routerEntropy <= Math.log(4) + 1e-6);
        assert.equal(typeof rt.candidateFraction, "number"); // SparseMixer reports its mask…
        assert.equal(typeof rt.sampledNeArgmax, "number"); // …and its samples
        assert.equal(rt.droppedFraction, null); // dropless
        assert.ok(rt.maxVio >= 0 && rt.maxVio <= 3, `MaxVio ${rt.maxVio} in [0, E − 1]`);
        assert.ok(rt.loadCv >= 0 && rt.loadCv <= Math.sqrt(3), `load CV ${rt.loadCv} in [0, √(E − 1)]`);
      }
      for (const r of evals) {
        assert.ok(r.kind === "eval");
        assert.ok(Math.abs(r.ppl - Math.exp(r.loss)) < 1e-9 * r.ppl);
        assert.equal(r.tokens, 2 * 4 * 16);
        if (r.split === "ood") assert.equal(r.routing, undefined);
        else {
          const [m] = r.routing!;
          assert.equal(m.layer, 0);
          assert.ok(m.mi >= 0 && m.mi <= m.expertEntropy + 1e-12 && m.expertEntropy <= Math.log(4) + 1e-12);
        }
      }
      // One routing snapshot per evaluation: layer 0's experts on the first validation batch (B·T tokens, K = 1).
      const snapshots = await readJsonl<RoutingSnapshot>(`${dir}/routing_snapshots.jsonl`);
      assert.deepEqual(snapshots.map((r) => r.step), [4, 8, 12]);
      for (const r of snapshots) {
        assert.deepEqual(r.layers.map((l) => [l.layer, l.topK, l.experts.length]), [[0, 1, 4 * 16]]);
        assert.ok(r.layers[0].experts.every((e) => Number.isInteger(e) && e >= 0 && e < 4));
      }
      const ckpts = [...Deno.readDirSync(`${dir}/ckpt`)].map((e) => e.name).sort();
      assert.deepEqual(ckpts, ["step-000008.safetensors", "step-000012.safetensors"]); // the newest two
      assert.ok(progress.includes("train") && progress.includes("eval"));
    });
  },
});

Deno.test({
  name: "runLm is bit-reproducible: same config twice, and killed + resumed = uninterrupted",
  ignore,
  async fn() {
    await withTempDir(async (root) => {
      const opts = { dataCacheDir: `${root}/cache` };
      await runLm(CONFIG, `${root}/a`, { resume: false, ...opts });
      await runLm(CONFIG, `${root}/b`, { resume: false, ...opts });
      const a = (await metrics(`${root}/a`)).map(withoutTiming);
      assert.deepEqual((await metrics(`${root}/b`)).map(withoutTiming), a);

      // "Kill" after step 6: the newest checkpoint is step 4, so resuming must redo (and rewrite) steps 5–6.
      const partial = await runLm(CONFIG, `${root}/c`, { resume: false, stopAfterStep: 6, ...opts });
      assert.equal(partial.done, false);
      await assert.rejects(Deno.stat(`${root}/c/final.json`), Deno.errors.NotFound);
      assert.equal(Math.max(...(await metrics(`${root}/c`)).map((r) => r.step)), 6);
      const resumedFrom: number[] = [];
      const resumed = await runLm(CONFIG, `${root}/c`, {
        resume: true,
        onProgress: (p) => p.kind === "resume" && resumedFrom.push(p.step),
        ...opts,
      });
      assert.deepEqual(resumedFrom, [4]);
      assert.equal(resumed.done, true);
      assert.deepEqual((await metrics(`${root}/c`)).map(withoutTiming), a);
      const snapshots = (dir: string) => Deno.readTextFile(`${dir}/routing_snapshots.jsonl`);
      assert.equal(await snapshots(`${root}/c`), await snapshots(`${root}/a`), "routing snapshots after resume");

      const ta = await checkpointTensors(`${root}/a/ckpt/step-000012.safetensors`);
      const tc = await checkpointTensors(`${root}/c/ckpt/step-000012.safetensors`);
      assert.deepEqual([...tc.keys()].sort(), [...ta.keys()].sort());
      for (const [name, bytes] of ta) assert.deepEqual(tc.get(name), bytes, `tensor ${name} differs after resume`);

      // A completed run is not repeated by --resume; a different seed gives different numbers.
      const again = await runLm(CONFIG, `${root}/c`, { resume: true, ...opts });
      assert.deepEqual(again, JSON.parse(await Deno.readTextFile(`${root}/c/final.json`)));
      await runLm({ ...CONFIG, seed: 6 }, `${root}/d`, { resume: false, ...opts });
      assert.notDeepEqual((await metrics(`${root}/d`)).map(withoutTiming), a);
    });
  },
});

Deno.test({
  name: "runLm evaluates in eval mode: recorded eval loss = eval-mode loss of the checkpoint, ≠ train-mode loss",
  ignore,
  async fn() {
    await withTempDir(async (root) => {
      const dir = `${root}/run`;
      const cacheDir = `${root}/cache`;
      const summary = await runLm(CONFIG, dir, { resume: false, dataCacheDir: cacheDir });

      const data = await prepareLmData(CONFIG, cacheDir);
      const gens = runGenerators(CONFIG.seed);
      const { model } = buildLmModel(CONFIG, data.vocabSize, gens);
      const optimizer = new AdamW(model.namedParameters());
      await loadCheckpoint(`${dir}/ckpt/step-000012.safetensors`, { model, optimizer, generator: gens.model });
      const batches = makeEvalBatches(data.valid, CONFIG.data.evalBatches, CONFIG.data.batchSize, CONFIG.data.seqLen);
      const loss = async () => {
        let sum = 0, n = 0;
        for (const b of batches) {
          sum += await scope(() =>
            noGrad(() => crossEntropy(model.forward(b.input), b.target, { reduction: "sum" })).item()
          );
          n += b.target.size;
        }
        return sum / n;
      };
      model.eval();
      const evalLoss = await loss();
      gens.moe.reserve(1 << 20); // other estimator draws: eval mode must not care
      assert.equal(await loss(), evalLoss);
      assert.equal(evalLoss, summary.finalEval.valid.loss);
      model.train(); // SparseMixer samples in training mode: a different loss
      assert.notEqual(await loss(), evalLoss);
      model.dispose();
      optimizer.dispose();
      for (const b of batches) [b.input, b.target].forEach((t) => t.dispose());
    });
  },
});

Deno.test({
  name: "runLm with frozenRouter: the routers in the final checkpoint are bit-identical to init, the rest trained",
  ignore,
  async fn() {
    await withTempDir(async (root) => {
      const config = parseRunConfig({ ...CONFIG, model: { ...CONFIG.model, estimator: "switch", frozenRouter: true } });
      const cacheDir = `${root}/cache`;
      await runLm(config, `${root}/run`, { resume: false, dataCacheDir: cacheDir });
      const data = await prepareLmData(config, cacheDir);
      const { model } = buildLmModel(config, data.vocabSize, runGenerators(config.seed));
      const init = new Map(model.namedParameters().map(([n, p]) => [n, new Uint8Array(p.dataSync().buffer.slice(0))]));
      const trained = await checkpointTensors(`${root}/run/ckpt/step-000012.safetensors`);
      const routers = [...init.keys()].filter((n) => n.includes("router."));
      assert.ok(routers.length > 0);
      const saved = (n: string) => {
        const bytes = trained.get(`model.${n}`) ?? trained.get(n);
        assert.ok(bytes, `${n} is in the checkpoint`);
        return bytes;
      };
      for (const n of routers) assert.deepEqual(saved(n), init.get(n), n);
      const expert = [...init.keys()].find((n) => n.endsWith(".w1"))!;
      assert.notDeepEqual(saved(expert), init.get(expert), "experts train");
      model.dispose();
    });
  },
});
