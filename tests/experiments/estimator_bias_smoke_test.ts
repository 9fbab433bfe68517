import assert from "node:assert/strict";
import { estimatorBiasDefinition, main, runEstimatorBias } from "../../experiments/estimator_bias.ts";
import { parseExperimentCli, undocumentedFields } from "../../experiments/common/config.ts";
import { readJsonl } from "../../experiments/common/io.ts";
import { svgProblems } from "../../experiments/common/svg_check.ts";
import type { CellRecord } from "../../experiments/estimator_bias/measure.ts";
import { gridCells } from "../../experiments/estimator_bias/cells.ts";
import { exactGradient, forwardLossMC, objectiveValue } from "../../moe/mod.ts";
import { makeProblem } from "../../experiments/estimator_bias/problems.ts";
import { createEstimator, exactTerms, tensor } from "../../mod.ts";

const canRW = Deno.permissions.querySync({ name: "write" }).state === "granted" &&
  Deno.permissions.querySync({ name: "read" }).state === "granted";

const quiet = () => {};

Deno.test({
  name: "estimator-bias smoke: outputs exist and parse, the report's SVGs exist and are well formed, resume is a no-op",
  ignore: !canRW,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const { config, cli } = parseExperimentCli(estimatorBiasDefinition, ["--preset=smoke", `--out=${dir}`]);
      const t0 = performance.now();
      const first = await runEstimatorBias(config, cli, quiet);
      assert.ok(performance.now() - t0 < 10_000, "smoke preset must run in < 10 s");
      const cells = gridCells(config);
      assert.equal(first.measured, cells.length);
      for (const name of ["config.json", "env.json", "summary.json", "timing.json"]) {
        JSON.parse(await Deno.readTextFile(`${dir}/${name}`));
      }
      assert.deepEqual(JSON.parse(await Deno.readTextFile(`${dir}/config.json`)), config);
      const records = await readJsonl<CellRecord>(`${dir}/metrics.jsonl`);
      assert.deepEqual(records.map((r) => r.id), cells.map((c) => c.id));
      for (const r of records) {
        assert.equal(r.perSeed.length, config.seeds);
        if (r.relBias.mean !== null) assert.ok(r.relBias.mean >= 0 && Number.isFinite(r.relBias.mean), r.id);
      }
      // topk is deterministic and its backward is the exact gradient of its own forward: zero bias and variance.
      for (const r of records.filter((r) => r.estimator === "topk")) {
        assert.ok(r.relBias.mean !== null && r.relBias.mean < 1e-9, `${r.id}: ${r.relBias.mean}`);
      }
      const report = await Deno.readTextFile(`${dir}/report.md`);
      const images = [...report.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]);
      assert.ok(images.length >= 3, `report has ${images.length} images`);
      for (const img of images) {
        const svg = await Deno.readTextFile(`${dir}/${img}`);
        assert.deepEqual(svgProblems(svg), [], img);
      }
      const summary = JSON.parse(await Deno.readTextFile(`${dir}/summary.json`));
      assert.equal(summary.cells, cells.length);
      assert.ok(summary.headline.length > 0);
      // --resume on a finished run measures nothing and leaves metrics, report and summary byte-identical.
      const before = await Promise.all(
        ["metrics.jsonl", "report.md", "summary.json"].map((f) => Deno.readTextFile(`${dir}/${f}`)),
      );
      const again = await runEstimatorBias(config, { ...cli, resume: true }, quiet);
      assert.equal(again.measured, 0);
      const after = await Promise.all(
        ["metrics.jsonl", "report.md", "summary.json"].map((f) => Deno.readTextFile(`${dir}/${f}`)),
      );
      assert.deepEqual(after, before);
      // A killed run (last cells missing, a torn final line) resumes to the identical metrics file.
      const lines = before[0].split("\n");
      await Deno.writeTextFile(`${dir}/metrics.jsonl`, lines.slice(0, 3).join("\n") + "\n" + lines[3].slice(0, 20));
      const resumed = await runEstimatorBias(config, { ...cli, resume: true }, quiet);
      assert.equal(resumed.measured, cells.length - 3);
      assert.equal(await Deno.readTextFile(`${dir}/metrics.jsonl`), before[0]);
      // Without --resume an existing run is refused; with a different config, --resume is refused.
      await assert.rejects(
        () => runEstimatorBias(config, cli, quiet),
        /holds a run \(\d+ cells measured\); pass --resume to continue, or --force/,
      );
      await assert.rejects(
        () => runEstimatorBias({ ...config, draws: 300 }, { ...cli, resume: true }, quiet),
        /config differs .*fields: draws/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("estimator-bias: CLI errors name the field; every config field is documented", async () => {
  assert.deepEqual(undocumentedFields(estimatorBiasDefinition.schema), []);
  for (const [name, preset] of Object.entries(estimatorBiasDefinition.presets)) {
    assert.doesNotThrow(() => estimatorBiasDefinition.schema.parse(preset), name);
  }
  assert.throws(
    () => parseExperimentCli(estimatorBiasDefinition, ["--estimators=switch,bogus"]),
    /field "estimators\.1" must be one of "switch", .*got "bogus"/,
  );
  assert.throws(() => parseExperimentCli(estimatorBiasDefinition, ["--topK=3"]), /field "topK\.0" must be one of 1, 2/);
  const errors: string[] = [];
  const orig = console.error;
  console.error = (...a: unknown[]) => errors.push(a.join(" "));
  try {
    assert.equal(await main(["--draws=1"]), 2);
  } finally {
    console.error = orig;
  }
  assert.match(errors.join("\n"), /field "draws" must be an integer ≥ 2/);
  // WebGPU lacks f64: the command line rejects it (and --help does not offer it) instead of a failing run.
  assert.throws(
    () => parseExperimentCli(estimatorBiasDefinition, ["--device", "webgpu"]),
    /field "device" must be one of "auto", "cpu", got "webgpu"/,
  );
});

Deno.test("estimator-bias: the grid skips unsupported combinations", () => {
  const { config } = parseExperimentCli(estimatorBiasDefinition, [
    "--estimators=switch,reinmax,topk,sparsemixer-v2",
    "--taus=0.5,2",
    "--eps=0.1",
    "--functions=linear",
    "--experts=4",
  ]);
  const ids = gridCells(config).map((c) => c.id);
  assert.deepEqual(ids, [
    "linear/E4/s1/switch/k1/eps=0.1",
    "linear/E4/s1/reinmax/k1/tau=2", // reinmax needs τ ≥ 1
    "linear/E4/s1/topk/k1/default",
    "linear/E4/s1/topk/k2/default",
    "linear/E4/s1/sparsemixer-v2/k1/eps=0.1",
    "linear/E4/s1/sparsemixer-v2/k2/eps=0.1",
  ]);
});

Deno.test("estimator-bias objectives: agree with the library harness and with Monte-Carlo forward values", () => {
  const p = makeProblem({ seed: 3, experts: 5, scale: 1, dim: 3, hidden: 4, f: "tanh" });
  // sampled (T = 1) and argmax are the library's exactTerms.
  const lib = exactTerms({ logits: p.logits, experts: p.experts, f: p.f, objective: "sampled", jitterEps: 1 });
  assert.deepEqual(exactGradient(p, { kind: "sampled", eps: 1, temperature: 1 }), lib.total);
  // Our own enumerations: the enumerated expected loss equals the mean forward loss of the estimator's sampling.
  const checks = [
    ["sparsemixer-v2", { topK: 2, jitterEps: 1 }, { kind: "sampled2", eps: 1, temperature: 1 }],
    ["sparsemixer-v2-heun", { topK: 2, jitterEps: 1 }, { kind: "sampled2", eps: 1, temperature: 2 }],
    ["sparsemixer-v2-heun", { topK: 1, jitterEps: 1 }, { kind: "sampled", eps: 1, temperature: 2 }],
    ["st-gumbel", { tau: 1 }, { kind: "onehot" }],
  ] as const;
  for (const [name, options, objective] of checks) {
    const mc = forwardLossMC(createEstimator(name, options), p, 4000, 11);
    const exact = objectiveValue(p, objective);
    assert.ok(Math.abs(mc.mean - exact) < 5 * mc.stdErr + 1e-12, `${name}: MC ${mc.mean} ± ${mc.stdErr} vs ${exact}`);
  }
  // A finite-difference check of one of our own gradients (the top-2 enumeration), masks fixed at z.
  const obj = { kind: "sampled2", eps: 1, temperature: 2 } as const;
  const g = exactGradient(p, obj);
  const z = Array.from(p.logits.dataSync(), Number);
  const h = 1e-6;
  for (let j = 0; j < z.length; j++) {
    const at = (dz: number) => {
      const zz = z.slice();
      zz[j] += dz;
      const q = { ...p, logits: tensor(zz, { dtype: "f64" }) };
      return objectiveValue(q, obj);
    };
    const fd = (at(h) - at(-h)) / (2 * h);
    assert.ok(Math.abs(fd - g[j]) < 1e-6, `∂L/∂z_${j}: finite difference ${fd} vs autograd ${g[j]}`);
  }
});
