import assert from "node:assert/strict";
import { Generator, MoELayer, randn, type Tensor } from "../../mod.ts";
import { moeLoopReference } from "../../moe/reference.ts";
import { assertAllClose, layerGrads } from "./layer_grads.ts";

const D = 4, N = 9;

const grads = (layer: MoELayer, x0: Tensor, up: Tensor, loop: boolean) =>
  layerGrads(layer, x0, up, (x) => loop ? moeLoopReference(layer, x, layer.route(x).routing) : layer.forward(x));

for (const expert of ["ffn", "glu"] as const) {
  Deno.test(`shared experts (${expert}) + fine-grained m = 2: the layer equals the per-token loop`, () => {
    const layer = new MoELayer(D, {
      numExperts: 3,
      hidden: 6,
      expert,
      estimator: "topk",
      estimatorOptions: { topK: 1 },
      sharedExperts: 2,
      fineGrained: 2,
      outputScale: true,
      dtype: "f64",
      generator: new Generator(4),
    });
    assert.equal(layer.numExperts, 6);
    assert.equal(layer.hidden, 3);
    assert.equal(layer.topK, 2);
    assert.equal(layer.shared!.numExperts, 2);
    assert.ok(Object.keys(layer.stateDict()).some((k) => k.startsWith("shared.")), "shared.* in the state dict");
    const g = new Generator(9);
    const x = randn([N, D], { dtype: "f64", generator: g });
    const up = randn([N, D], { dtype: "f64", generator: g });
    const got = grads(layer, x, up, false);
    assertAllClose(got, grads(layer, x, up, true));
    assert.ok(got["shared.wUp" in got ? "shared.wUp" : "shared.w1"].some((v) => v !== 0), "shared experts learn");
  });
}

Deno.test("fine-grained m: same expert FLOPs per token and same expert matrix parameters as E experts of width h", () => {
  const count = (layer: MoELayer) => {
    const params = Object.fromEntries(layer.namedParameters().map(([n, p]) => [n, p.size]));
    // GLU: three d×h matrices per expert; per token the K experts its routing lists, 2 FLOPs per multiply-add,
    // with h the experts' actual width (read from a weight's shape).
    layer.forward(randn([N, D], { generator: new Generator(1) }));
    const k = layer.lastRouting!.experts.shape[1];
    const ex = layer.experts;
    const h = ex.kind === "glu" ? ex.wUp.shape[2] : NaN;
    const flops = k * 3 * 2 * layer.dim * h;
    return { params, flops };
  };
  const base = { numExperts: 4, hidden: 12, expert: "glu" as const, estimatorOptions: { topK: 2 } };
  const coarse = count(new MoELayer(D, base));
  for (const m of [2, 3, 4]) {
    const fine = count(new MoELayer(D, { ...base, fineGrained: m }));
    assert.equal(fine.flops, coarse.flops, `m = ${m}: FLOPs per token`);
    for (const w of ["wGate", "wUp", "wDown"]) assert.equal(fine.params[w], coarse.params[w], `m = ${m}: ${w}`);
    assert.equal(fine.params["router.weight"], m * coarse.params["router.weight"], "the router grows m×");
  }
});

Deno.test("fine-grained and shared experts: bad values are one clear error", () => {
  assert.throws(() => new MoELayer(D, { numExperts: 2, hidden: 6, fineGrained: 4 }), /fineGrained 4 must divide .* 6/);
  assert.throws(() => new MoELayer(D, { numExperts: 2, expert: "linear", fineGrained: 2 }), /cannot split "linear"/);
  assert.throws(() => new MoELayer(D, { numExperts: 2, estimator: "switch", fineGrained: 2 }), /"switch" fixes K/);
  assert.throws(() => new MoELayer(D, { numExperts: 2, sharedExperts: -1 }), /sharedExperts/);
});
