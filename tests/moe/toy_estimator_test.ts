/**
 * Adding an estimator takes one file (`toy_estimator.ts`: the class and its descriptor) and one registry line
 * (`registerEstimator`, below): the toy then works by name in the MoE layer, in the vectors CLI (a layer case
 * naming its reference object) and in the exact-gradient harness and estimator-bias grid, with nothing else
 * edited.
 */
import assert from "node:assert/strict";
import { createEstimator, estimatorBias, Generator, MoELayer, registerEstimator, tensor } from "../../mod.ts";
import { main as vectorsCli } from "../../moe/vectors/cli.ts";
import { gridCells } from "../../experiments/estimator_bias/cells.ts";
import type { EstimatorBiasConfig } from "../../experiments/estimator_bias/config.ts";
import { toyDescriptor } from "./toy_estimator.ts";
import { buildLayerCase } from "./layer_case_builder.ts";
import { rngSigned } from "../helpers/host_rng.ts";

registerEstimator(toyDescriptor); // the one registry line

const canWrite = Deno.permissions.querySync({ name: "write" }).state === "granted" &&
  Deno.permissions.querySync({ name: "read" }).state === "granted";

Deno.test("toy estimator: a second registration under the same name is refused", () => {
  assert.throws(() => registerEstimator(toyDescriptor), /an estimator named "toy-argmax" is already registered/);
});

Deno.test("toy estimator: through the MoE layer by name (same as unrenormalised top-1, forward and backward)", () => {
  const build = (estimator: string, estimatorOptions?: Record<string, unknown>) =>
    new MoELayer(4, {
      numExperts: 3,
      hidden: 5,
      estimator,
      estimatorOptions,
      dtype: "f64",
      generator: new Generator(3),
    });
  const toy = build("toy-argmax");
  const ref = build("topk", { topK: 1, renormalize: false });
  const x = tensor(Array.from({ length: 24 }, rngSigned(5)), { shape: [6, 4], dtype: "f64" });
  const yToy = toy.forward(x);
  const yRef = ref.forward(x);
  assert.deepEqual(Array.from(yToy.dataSync()), Array.from(yRef.dataSync()));
  yToy.square().sum().backward();
  yRef.square().sum().backward();
  assert.deepEqual(Array.from(toy.router.weight.grad!.dataSync()), Array.from(ref.router.weight.grad!.dataSync()));
  assert.equal(toy.estimator.name, "toy-argmax");
});

Deno.test("toy estimator: the exact-gradient harness takes its objective from the descriptor", () => {
  const r = estimatorBias({
    estimator: createEstimator("toy-argmax"),
    logits: tensor([0.3, 1.2, -0.4], { dtype: "f64" }),
    experts: tensor([[1, 0], [0.5, -1], [2, 1]], { dtype: "f64" }),
    f: (v) => v.tanh().sum(-1),
    draws: 8,
  });
  assert.deepEqual(r.objective, { kind: "argmax" });
  assert.ok(r.relError < 1e-12, `relError ${r.relError}`); // deterministic and exactly the argmax gradient
  const config = {
    functions: ["linear"],
    experts: [3],
    logitScales: [1],
    estimators: ["toy-argmax"],
    topK: [1, 2],
    eps: [0.1],
    taus: [1],
  } as unknown as EstimatorBiasConfig;
  assert.deepEqual(gridCells(config).map((c) => c.id), ["linear/E3/s1/toy-argmax/k1/default"]);
});

Deno.test({
  name: "toy estimator: the vectors CLI replays a layer case naming its reference object",
  ignore: !canWrite,
  async fn() {
    // The case by plain loops: top-1 at the argmax, multiplier p_a, ∂L/∂z = G · p_a (e_a − p).
    const next = rngSigned(11);
    const logits = Array.from({ length: 6 }, () => Array.from({ length: 4 }, next));
    const probs = logits.map((z) => {
      const m = Math.max(...z);
      const ez = z.map((v) => Math.exp(v - m));
      const s = ez.reduce((a, b) => a + b, 0);
      return ez.map((v) => v / s);
    });
    const selected = probs.map((p) => [p.indexOf(Math.max(...p))]);
    const upstream = probs.map(() => [next()]);
    const kase = buildLayerCase({
      name: "layer_toy_argmax_6tok_d4_e4",
      vector: { name: "toy", params: { training: true }, random_draws: [] },
      routerObject: "ToyArgmaxGate",
      topK: 1,
      logits,
      selected,
      multiplier: probs.map((p, t) => [p[selected[t][0]]]),
      upstream,
      gradLogits: probs.map((p, t) => {
        const a = selected[t][0];
        return p.map((pj, j) => upstream[t][0] * p[a] * ((j === a ? 1 : 0) - pj));
      }),
    });
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/layer_toy.json`, JSON.stringify(kase));
      const lines: string[] = [];
      const log = console.log;
      console.log = (...a: unknown[]) => lines.push(a.map(String).join(" "));
      let code: number;
      try {
        code = await vectorsCli([dir]);
      } finally {
        console.log = log;
      }
      assert.equal(code, 0, lines.join("\n"));
      assert.equal(lines.at(-1), "1 passed, 0 failed (f64)");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
