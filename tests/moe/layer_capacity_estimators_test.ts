/**
 * Every registry estimator through `MoELayer`, dropless and with a capacity factor small enough that pairs
 * drop: forward and backward are finite, agree with the per-token loop reference under the same routing and
 * dropping rule, and a fully dropped token contributes exactly zero (the layer's documented rule: a dropped
 * pair's gate is multiplied by 0; the surrounding residual carries the token). Regression for the dense
 * estimators (`straight-through`, `st-gumbel`, `reinmax`), whose `topK` of 0 once gave a capacity of 0 and
 * `indexAdd: index -1 is out of range`.
 */
import assert from "node:assert/strict";
import { randn, type Tensor } from "../../mod.ts";
import { Generator } from "../../core/random/generator.ts";
import { GeneratorDraws } from "../../moe/estimators/estimator.ts";
import { estimatorDescriptors } from "../../moe/estimators/registry.ts";
import { MoELayer } from "../../moe/layer.ts";
import { moeLoopReference } from "../../moe/reference.ts";

const values = (t: Tensor) => Array.from(t.dataSync(), Number);
const N = 12, D = 3, E = 4;

/** Non-default options where the default would make the case trivial (topk: K = 2; wide SparseMixer masks). */
const OPTIONS: Record<string, Record<string, unknown>> = {
  "topk": { topK: 2 },
  "switch": { jitterEps: 0.3 },
  "sparsemixer": { jitterEps: 0.5 },
  "sparsemixer-1st": { jitterEps: 0.5 },
  "sparsemixer-inf": { jitterEps: 0.5 },
  "sparsemixer-v2": { jitterEps: 0.5 },
  "sparsemixer-v2-heun": { jitterEps: 0.5 },
};

/** Which (token, slot) pairs the dropping rule drops, computed on the host: per expert, in token order. */
function droppedPairs(experts: number[], capacity: number): boolean[] {
  const used = new Array(E).fill(0);
  return experts.map((e) => used[e]++ >= capacity);
}

function run(layer: MoELayer, x: Tensor, up: Tensor, seed: number, loop: boolean) {
  for (const p of layer.parameters()) p.grad = null;
  x.grad = null;
  const draws = new GeneratorDraws(new Generator(seed));
  let y: Tensor;
  if (loop) {
    const { routing } = layer.route(x, { draws });
    const k = routing.experts.shape[1];
    y = moeLoopReference(layer, x, routing, layer.capacityFactor === undefined ? undefined : layer.capacity(N, k));
  } else {
    y = layer.forward(x, { draws });
  }
  y.mul(up).sum().backward();
  const out: Record<string, number[]> = { y: values(y), x: values(x.grad!) };
  for (const [n, p] of layer.namedParameters()) out[n] = values(p.grad!);
  return out;
}

// The per-token loop reference has no output term: an estimator that needs the experts' outputs (Default MoE)
// is checked against its own hand-computed loop in default_moe_test.ts; the null controls (no router gradient,
// the hash one needs token ids) against the loop in null_controls_test.ts. Expert choice (a variable number of
// experts per token, its own capacity) has its own tests: expert_choice_test.ts.
const NAMES = estimatorDescriptors().filter((d) =>
  !d.needs.expertOutputs && !d.nullControl && d.expertsPerToken !== "variable"
).map((d) => d.name);

for (const name of NAMES) {
  for (const capacityFactor of [undefined, 0.5]) {
    for (const padding of capacityFactor === undefined ? ["auto"] as const : ["auto", "static"] as const) {
      const mode = capacityFactor === undefined ? "dropless" : `capacityFactor ${capacityFactor}, ${padding}`;
      Deno.test(`MoELayer with "${name}", ${mode}: finite, equals the loop reference, drops as documented`, () => {
        const seed = 7;
        const layer = new MoELayer(D, {
          numExperts: E,
          expert: "ffn",
          hidden: 5,
          estimator: name,
          estimatorOptions: OPTIONS[name],
          capacityFactor,
          padding,
          dtype: "f64",
          generator: new Generator(3),
        });
        const g = new Generator(11);
        const x = randn([N, D], { dtype: "f64", generator: g }).mul(2).requiresGrad_();
        const up = randn([N, D], { dtype: "f64", generator: g });
        const got = run(layer, x, up, seed, false);
        for (const [key, v] of Object.entries(got)) assert.ok(v.every(Number.isFinite), `${key} not finite`);

        const experts = values(layer.lastRouting!.experts);
        const k = layer.lastRouting!.experts.shape[1];
        assert.equal(k, layer.topK, "routing K = layer.topK");
        const cap = capacityFactor === undefined ? N : layer.capacity(N, k);
        const drops = droppedPairs(experts, cap);
        const dropped = drops.filter(Boolean).length;
        assert.equal(values(layer.lastMetrics!.dropped)[0], dropped);
        if (capacityFactor === undefined) assert.equal(dropped, 0);
        else assert.ok(dropped > 0, `capacity ${cap} should drop some of ${N}·${k} pairs`);
        for (let t = 0; t < N; t++) {
          if (!drops.slice(t * k, (t + 1) * k).every(Boolean)) continue;
          assert.deepEqual(got.y.slice(t * D, (t + 1) * D), [0, 0, 0], `fully dropped token ${t}: y`);
          assert.deepEqual(got.x.slice(t * D, (t + 1) * D), [0, 0, 0], `fully dropped token ${t}: grad x`);
        }

        const ref = run(layer, x, up, seed, true);
        assert.deepEqual(Object.keys(got), Object.keys(ref));
        for (const key of Object.keys(ref)) {
          got[key].forEach((a, i) => {
            const b = ref[key][i];
            assert.ok(Math.abs(a - b) <= 1e-12 + 1e-12 * Math.abs(b), `${key}[${i}]: ${a} vs loop ${b}`);
          });
        }
        layer.dispose();
      });
    }
  }
}

Deno.test("MoELayer rejects a dense estimator instance built for another number of experts", async () => {
  const { StraightThroughEstimator } = await import("../../moe/estimators/straight_through.ts");
  assert.throws(
    () => new MoELayer(D, { numExperts: E, estimator: new StraightThroughEstimator({ numExperts: E + 1 }) }),
    /built for 5 experts, the layer has 4/,
  );
  const layer = new MoELayer(D, { numExperts: E, estimator: new StraightThroughEstimator({ numExperts: E }) });
  assert.equal(layer.topK, E);
});
