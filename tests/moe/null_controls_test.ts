/**
 * The null-control routers (ESTIMATORS.md §12): `hash` (Hash Layers: experts a fixed hash of the token id),
 * `random` (uniformly random experts, redrawn at every forward) and the layer option `frozenRouter` (the router
 * keeps its initial weights) — tested from their definitions, and the layer against the per-token loop.
 */
import assert from "node:assert/strict";
import {
  AdamW,
  DecoderLM,
  Generator,
  GeneratorDraws,
  MoELayer,
  randint,
  randn,
  scope,
  type Tensor,
  tensor,
} from "../../mod.ts";
import { createEstimator } from "../../moe/estimators/registry.ts";
import { HashEstimator, hashExperts, tokenHash } from "../../moe/estimators/null_controls.ts";
import { moeLoopReference } from "../../moe/reference.ts";

const values = (t: Tensor) => Array.from(t.dataSync(), Number);
const draws = (seed: number) => new GeneratorDraws(new Generator(seed));

/** Pearson's χ² of `counts` against equal expected counts. */
function chiSquare(counts: number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  const expected = total / counts.length;
  return counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
}
// χ² with 7 degrees of freedom (E = 8) exceeds 24.3 with probability 0.001.
const CHI2_7DF_P001 = 24.3;

Deno.test("hash: the experts are a fixed function of the token id, K distinct, expert = hash(id) mod E at K = 1", () => {
  for (const id of [0, 1, 17, 4095, 65535]) {
    assert.deepEqual(hashExperts(id, 8, 1, 3), [tokenHash(id, 3, 0) % 8]);
    const two = hashExperts(id, 8, 2, 3);
    assert.deepEqual(hashExperts(id, 8, 2, 3), two, "deterministic");
    assert.equal(new Set(two).size, 2, "distinct");
    assert.equal(two[0], hashExperts(id, 8, 1, 3)[0], "slot 0 does not depend on K");
  }
  const est = new HashEstimator({ topK: 2, vocabSize: 64, seed: 3 });
  scope(() => est.route(randn([1, 8]), { training: true, draws: draws(0), tokenIds: tensor([1], { dtype: "i32" }) }));
  const ids = tensor([[5, 9], [5, 63]], { dtype: "i32" });
  const r = est.route(randn([4, 8]), { training: true, draws: draws(0), tokenIds: ids });
  assert.deepEqual(values(r.experts), [5, 9, 5, 63].flatMap((id) => hashExperts(id, 8, 2, 3)));
  // The device table outlives the scope it was built in (a training step's).
  const inScope = scope(() =>
    values(est.route(randn([4, 8]), { training: true, draws: draws(0), tokenIds: ids }).experts)
  );
  assert.deepEqual(inScope, values(r.experts));
  // Eval and another draw stream: the same experts (no randomness at all).
  const again = est.route(randn([4, 8]), { training: false, draws: draws(9), tokenIds: ids });
  assert.deepEqual(values(again.experts), values(r.experts));
});

Deno.test("hash: uniform over token ids (χ², each slot), and another seed is another assignment", () => {
  const E = 8, V = 8000;
  for (const slot of [0, 1]) {
    const counts = new Array(E).fill(0);
    for (let id = 0; id < V; id++) counts[hashExperts(id, E, 2, 0)[slot]]++;
    assert.ok(chiSquare(counts) < CHI2_7DF_P001, `slot ${slot}: counts ${counts}`);
  }
  let same = 0;
  for (let id = 0; id < V; id++) same += hashExperts(id, E, 1, 0)[0] === hashExperts(id, E, 1, 1)[0] ? 1 : 0;
  // Independent assignments agree on 1/E of the ids: 1000 ± 3·√(V·(1/8)(7/8)) ≈ 1000 ± 89.
  assert.ok(Math.abs(same - V / E) < 90, `seeds 0 and 1 agree on ${same} of ${V} ids`);
});

Deno.test("random: uniform over seeds for a fixed token, K distinct, redrawn at every call", () => {
  const E = 8;
  const est = createEstimator("random", { topK: 2 });
  const counts = new Array(E).fill(0);
  const pairs = new Set<string>();
  for (let seed = 0; seed < 2000; seed++) {
    const r = est.route(randn([1, E]), { training: seed % 2 === 0, draws: draws(seed) });
    const [a, b] = values(r.experts);
    assert.notEqual(a, b, "distinct");
    counts[a]++;
    pairs.add(`${a},${b}`);
  }
  assert.ok(chiSquare(counts) < CHI2_7DF_P001, `first-slot counts ${counts}`);
  assert.equal(pairs.size, E * (E - 1), "every ordered pair occurs");
  const d = draws(1);
  const z = randn([64, E]);
  const first = values(est.route(z, { training: true, draws: d }).experts);
  const second = values(est.route(z, { training: true, draws: d }).experts);
  assert.notDeepEqual(first, second, "the next call draws again");
});

Deno.test("null controls: gates 1/K, probs 1/E, no gradient to the logits, clear errors", () => {
  for (const [name, k] of [["random", 1], ["hash", 2]] as const) {
    const z = randn([5, 4]).requiresGrad_();
    const r = createEstimator(name, { topK: k }).route(z, {
      training: true,
      draws: draws(0),
      tokenIds: tensor([1, 2, 3, 4, 5], { dtype: "i32" }),
    });
    assert.deepEqual(values(r.gates), new Array(5 * k).fill(1 / k));
    assert.deepEqual(values(r.probs), new Array(20).fill(0.25));
    assert.ok(!r.gates.requiresGrad && !r.probs.requiresGrad, name);
  }
  const hash = createEstimator("hash");
  assert.throws(() => hash.route(randn([3, 4]), { training: true, draws: draws(0) }), /needs the token ids/);
  assert.throws(
    () => hash.route(randn([3, 4]), { training: true, draws: draws(0), tokenIds: tensor([1, 2], { dtype: "i32" }) }),
    /one id per token \(3\)/,
  );
  assert.throws(
    () => createEstimator("random", { topK: 5 }).route(randn([3, 4]), { training: true, draws: draws(0) }),
    /exceeds/,
  );
  assert.throws(() => createEstimator("hash", { seed: -1 }), /"hash" option "seed" must be an integer in \[0, 2\^32\)/);
});

Deno.test("MoELayer with a null control equals the per-token loop (forward and gradients), dropless and dropping", () => {
  const N = 12, D = 3, E = 4;
  for (const name of ["hash", "random"]) {
    for (const capacityFactor of [undefined, 0.5]) {
      const layer = new MoELayer(D, {
        numExperts: E,
        hidden: 5,
        estimator: name,
        estimatorOptions: { topK: 2 },
        capacityFactor,
        balanceLoss: { coef: 0.01, form: "topk" },
        dtype: "f64",
        generator: new Generator(3),
      });
      const g = new Generator(11);
      const x = randn([N, D], { dtype: "f64", generator: g }).requiresGrad_();
      const up = randn([N, D], { dtype: "f64", generator: g });
      const tokenIds = randint(0, 20, [N], { generator: g });
      const run = (loop: boolean) => {
        for (const p of layer.parameters()) p.grad = null;
        x.grad = null;
        let y: Tensor;
        if (loop) {
          const { routing } = layer.route(x, { draws: draws(7), tokenIds });
          y = moeLoopReference(layer, x, routing, capacityFactor === undefined ? undefined : layer.capacity(N, 2));
        } else {
          y = layer.forward(x, { draws: draws(7), tokenIds });
          // The balance loss of a control is a constant (probs are uniform): it adds no gradient.
          y = y.add(layer.auxLoss()!.mul(0));
        }
        y.mul(up).sum().backward();
        const out: Record<string, number[]> = { y: values(y), x: values(x.grad!) };
        for (const [n, p] of layer.namedParameters()) out[n] = p.grad ? values(p.grad) : [];
        return out;
      };
      const got = run(false);
      assert.deepEqual(got["router.weight"], [], `${name}: the router gets no gradient`);
      const ref = run(true);
      for (const key of Object.keys(ref)) {
        got[key].forEach((a, i) => {
          const b = ref[key][i];
          assert.ok(Math.abs(a - b) <= 1e-12 + 1e-12 * Math.abs(b), `${name} ${key}[${i}]: ${a} vs loop ${b}`);
        });
      }
      layer.dispose();
    }
  }
});

Deno.test("frozenRouter: the router weights stay bit-identical to init through AdamW steps; the experts train", () => {
  const layer = new MoELayer(6, {
    numExperts: 4,
    hidden: 8,
    estimator: "topk",
    estimatorOptions: { topK: 2 },
    routerBias: true,
    frozenRouter: true,
    balanceLoss: { coef: 0.1, form: "topk" },
    zLossCoef: 0.01,
    generator: new Generator(1),
  });
  const snapshot = () => new Map(layer.namedParameters().map(([n, p]) => [n, values(p)]));
  const init = snapshot();
  const opt = new AdamW(layer.namedParameters(), { lr: 1e-2, weightDecay: 0.1 });
  const g = new Generator(2);
  for (let step = 0; step < 5; step++) {
    const x = randn([10, 6], { generator: g }).requiresGrad_();
    const y = layer.forward(x);
    y.square().mean().add(layer.auxLoss()!).backward();
    assert.equal(layer.router.weight.grad, null, "no gradient reaches the frozen router");
    assert.ok(x.grad, "the gradient still flows through the logits to the input");
    opt.step();
    opt.zeroGrad();
  }
  const after = snapshot();
  assert.deepEqual(after.get("router.weight"), init.get("router.weight"));
  assert.deepEqual(after.get("router.bias"), init.get("router.bias"));
  assert.notDeepEqual(after.get("w1"), init.get("w1"), "the experts train");
  assert.throws(
    () => new MoELayer(6, { numExperts: 4, frozenRouter: 1 as never }),
    /frozenRouter must be true or false/,
  );
});

Deno.test("DecoderLM hands its token ids to a hash MoE layer (the route context)", () => {
  let moe: MoELayer | null = null;
  const lm = new DecoderLM(40, 8, 1, 2, {
    generator: new Generator(0),
    ffnFactory: () =>
      moe = new MoELayer(8, {
        numExperts: 4,
        hidden: 8,
        estimator: "hash",
        estimatorOptions: { vocabSize: 40 },
        generator: new Generator(1),
      }),
  });
  const ids = randint(0, 40, [2, 5], { generator: new Generator(4) });
  lm.forward(ids);
  assert.deepEqual(values(moe!.lastRouting!.experts), values(ids).map((id) => hashExperts(id, 4, 1, 0)[0]));
});
