import assert from "node:assert/strict";
import { createEstimator, Generator, GeneratorDraws, MoELayer, randn, type Tensor, tensor } from "../../mod.ts";
import { ExpertChoiceEstimator } from "../../moe/estimators/expert_choice.ts";
import { moeLoopReference } from "../../moe/reference.ts";
import { gradcheck } from "../helpers/gradcheck.ts";
import { assertAllClose, layerGrads, values } from "./layer_grads.ts";

const draws = () => new GeneratorDraws(new Generator(0));

/** The taken pairs by the formula, in plain JS: each expert's top-C tokens by S[:, e] (ties to the lower token). */
function expectedActive(s: number[][], c: number): boolean[][] {
  const n = s.length, e = s[0].length;
  const active = s.map(() => new Array(e).fill(false));
  for (let j = 0; j < e; j++) {
    const order = [...Array(n).keys()].sort((a, b) => s[b][j] - s[a][j] || a - b);
    for (const t of order.slice(0, c)) active[t][j] = true;
  }
  return active;
}

Deno.test("expert choice: C = ceil(capacityFactor·N·K/E) (≤ N), each expert takes its top-C tokens, gates = S", () => {
  assert.equal(new ExpertChoiceEstimator({ topK: 2, capacityFactor: 1.25 }).capacity(10, 4), 7);
  assert.equal(new ExpertChoiceEstimator({ topK: 2, capacityFactor: 4 }).capacity(10, 4), 10);
  const r = createEstimator("expert-choice").route(tensor([[2, 0], [1, 0], [0, 3], [0, 1]], { dtype: "f64" }), {
    training: true,
    draws: draws(),
  });
  assert.deepEqual(values(r.active!), [1, 0, 1, 0, 0, 1, 0, 1]);
  assert.deepEqual(values(r.experts), [0, 1, 0, 1, 0, 1, 0, 1]);
  const sig = (v: number) => 1 / (1 + Math.exp(-v)); // softmax of two logits
  const want = [[sig(2), 0], [sig(1), 0], [0, sig(3)], [0, sig(1)]].flat();
  values(r.gates).forEach((g, i) => assert.ok(Math.abs(g - want[i]) < 1e-15, `gate ${i}: ${g} vs ${want[i]}`));

  const z = randn([9, 5], { dtype: "f64", generator: new Generator(8) }).mul(2);
  const est = new ExpertChoiceEstimator({ topK: 2, capacityFactor: 1.5 });
  const routed = est.route(z, { training: true, draws: draws() });
  const p = values(z.softmax(-1));
  const s = [...Array(9).keys()].map((t) => p.slice(t * 5, t * 5 + 5));
  const c = est.capacity(9, 5);
  assert.equal(c, 6);
  assert.deepEqual(values(routed.active!).map(Boolean), expectedActive(s, c).flat());
});

Deno.test("expert choice gates: f64 gradcheck (autograd through S at the taken pairs)", () => {
  const z = randn([6, 4], { dtype: "f64", generator: new Generator(2) });
  const est = createEstimator("expert-choice", { topK: 2 });
  gradcheck((l: Tensor) => est.route(l, { training: true, draws: draws() }).gates, [z], { name: "expert-choice" });
});

Deno.test("expert choice evaluation: per-token top-K by S (default, causal) or the training rule", () => {
  const z = randn([6, 4], { dtype: "f64", generator: new Generator(3) });
  const evalTopK = createEstimator("expert-choice", { topK: 2 }).route(z, { training: false, draws: draws() });
  const top = z.softmax(-1).topk(2);
  assert.deepEqual(values(evalTopK.experts), values(top.indices));
  assert.deepEqual(values(evalTopK.gates), values(top.values));
  assert.equal(evalTopK.active, undefined);
  const keep = createEstimator("expert-choice", { topK: 2, evaluation: "expert-choice" });
  const a = keep.route(z, { training: false, draws: draws() });
  const b = keep.route(z, { training: true, draws: draws() });
  assert.deepEqual(values(a.active!), values(b.active!));
});

for (const [dispatch, padding] of [["grouped", "auto"], ["padded", "auto"], ["padded", "static"]] as const) {
  Deno.test(`MoELayer with expert choice (${dispatch}, ${padding}): equals the loop reference; E·C pairs run`, () => {
    const N = 10, D = 3, E = 4;
    const layer = new MoELayer(D, {
      numExperts: E,
      expert: "ffn",
      hidden: 5,
      estimator: "expert-choice",
      estimatorOptions: { topK: 1, capacityFactor: 1.2 },
      dispatch,
      padding,
      dtype: "f64",
      generator: new Generator(3),
    });
    const g = new Generator(11);
    const x0 = randn([N, D], { dtype: "f64", generator: g }).mul(2);
    const up = randn([N, D], { dtype: "f64", generator: g });
    const run = (loop: boolean) =>
      layerGrads(layer, x0, up, (x) => loop ? moeLoopReference(layer, x, layer.route(x).routing) : layer.forward(x));
    const got = run(false);
    const active = values(layer.lastRouting!.active!);
    const c = Math.ceil(1.2 * N / E);
    for (let j = 0; j < E; j++) {
      assert.equal(active.filter((a, i) => a && i % E === j).length, c, `expert ${j} takes C = ${c} tokens`);
    }
    assert.equal(values(layer.lastMetrics!.dropped)[0], 0, "no pair is dropped");
    for (let t = 0; t < N; t++) {
      if (active.slice(t * E, (t + 1) * E).some(Boolean)) continue;
      assert.deepEqual(got.y.slice(t * D, (t + 1) * D), [0, 0, 0], `token ${t} taken by no expert: y = 0`);
    }
    const perToken = [...Array(N).keys()].map((t) => active.slice(t * E, (t + 1) * E).filter(Boolean).length);
    assert.ok(new Set(perToken).size > 1, `experts per token vary: ${perToken}`);
    assertAllClose(got, run(true));
  });
}
