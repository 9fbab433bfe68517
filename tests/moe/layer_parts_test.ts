/**
 * The parts MoELayer is composed of: the options schema (defaults, one-line errors naming the field), the
 * flat state-dict keys the parts keep, the typed expert weights, and the parts chained by hand giving the
 * layer's numbers bit for bit.
 */
import assert from "node:assert/strict";
import { Generator, GeneratorDraws, type Tensor } from "../../mod.ts";
import { randn } from "../../core/ops/random.ts";
import { MoELayer } from "../../moe/layer.ts";
import { moeLayerOptionsSchema } from "../../moe/layer_options.ts";
import { combinePairs, dispatchRows, dispatchTokens, gatherPairs, planDispatch } from "../../moe/dispatch.ts";
import { FfnExperts, GluExperts, LinearExperts } from "../../moe/experts.ts";

const values = (t: Tensor) => Array.from(t.dataSync() as Float64Array);

Deno.test("MoELayer options: the schema fills in the defaults", () => {
  const o = moeLayerOptionsSchema.parse({ numExperts: 4 });
  assert.equal(o.expert, "ffn");
  assert.equal(o.estimator, "topk");
  assert.equal(o.padding, "auto");
  assert.equal(o.dispatch, "grouped");
  assert.equal(o.zLossCoef, 0);
  assert.equal(o.routerBias, false);
  assert.ok(o.generator instanceof Generator);
  assert.deepEqual(moeLayerOptionsSchema.parse({ numExperts: 2, balanceLoss: { coef: 1, form: "topk" } }).balanceLoss, {
    coef: 1,
    form: "topk",
    scope: "local",
  });
});

Deno.test("MoELayer options: each rejected field is named, on one line", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ numExperts: 0 }, /^MoELayer: numExperts must be an integer ≥ 1, got 0$/],
    [{ numExperts: 2, capacity: 1 }, /^MoELayer: unknown option "capacity" \(allowed: numExperts, hidden, /],
    [{ numExperts: 2, balanceLoss: { coef: 1, form: "topk", k: 1 } }, /balanceLoss has no field "k" \(allowed: coef/],
    [{ numExperts: 2, expert: "glu", activation: "relu" }, /activation must be "silu" or "gelu" for "glu" experts/],
    [{ numExperts: 2, estimator: 3 }, /estimator must be a registry name or an Estimator, got 3/],
    [{ numExperts: 2, capacityFactor: -1, zLossCoef: NaN }, /capacityFactor must be .*, got -1; zLossCoef must be/],
  ];
  for (const [options, re] of cases) {
    assert.throws(
      () => new MoELayer(4, options as never),
      (e: Error) => e instanceof RangeError && re.test(e.message) && !e.message.includes("\n"),
      JSON.stringify(options),
    );
  }
});

Deno.test("MoELayer parts: state-dict keys stay flat; the experts' typed fields are the layer's parameters", () => {
  const make = (expert: "ffn" | "glu" | "linear") =>
    new MoELayer(4, {
      numExperts: 3,
      hidden: 5,
      expert,
      routerBias: true,
      outputScale: true,
      estimator: "default-moe",
      estimatorOptions: { beta: 0.5 },
    });
  const ffn = make("ffn"), glu = make("glu"), lin = make("linear");
  const tail = ["omega", "router.weight", "router.bias", "defaultVectors"];
  assert.deepEqual(Object.keys(ffn.stateDict()), ["w1", "b1", "w2", "b2", ...tail]);
  assert.deepEqual(Object.keys(glu.stateDict()), ["wGate", "wUp", "wDown", ...tail]);
  assert.deepEqual(Object.keys(lin.stateDict()), ["w", ...tail]);
  assert.ok(ffn.experts instanceof FfnExperts && ffn.experts.w1 === ffn.stateDict().w1);
  assert.ok(glu.experts instanceof GluExperts && glu.experts.wDown === glu.stateDict().wDown);
  assert.ok(lin.experts instanceof LinearExperts && lin.experts.w === lin.weights.w);
  assert.equal(ffn.defaultVectors, ffn.stateDict().defaultVectors);
});

for (const mode of ["grouped", "padded"] as const) {
  Deno.test(`MoELayer parts (${mode}): router → plan → dispatch → experts → gather → combine → ω is the layer, bit for bit`, () => {
    const layer = new MoELayer(6, {
      numExperts: 4,
      hidden: 8,
      estimator: "sparsemixer",
      outputScale: true,
      capacityFactor: 0.75,
      dtype: "f64",
      generator: new Generator(1),
      dispatch: mode,
    });
    const x = randn([10, 6], { dtype: "f64", generator: new Generator(2) });
    const y = layer.forward(x, { draws: new GeneratorDraws(new Generator(3)) });
    const { routing } = layer.router.route(x, { training: true, draws: new GeneratorDraws(new Generator(3)) });
    const plan = planDispatch(routing.experts, {
      numExperts: 4,
      capacity: layer.capacity(10, 1),
      mode,
      dtype: "f64",
      device: x.device,
    });
    const out = mode === "grouped"
      ? layer.experts.runGrouped(dispatchRows(x, plan), plan)
      : layer.experts.run(dispatchTokens(x, plan));
    const byHand = combinePairs(gatherPairs(out, plan), routing.gates, plan).mul(layer.omega!);
    assert.deepEqual(values(byHand), values(y));
    assert.ok(values(plan.dropped)[0] > 0, "the capacity drops pairs");
  });
}
