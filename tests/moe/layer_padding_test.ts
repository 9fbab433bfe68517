import assert from "node:assert/strict";
import { backward, randn, type Tensor } from "../../mod.ts";
import { Generator } from "../../core/random/generator.ts";
import { type ExpertKind, MoELayer } from "../../moe/layer.ts";

const bits = (t: Tensor) => Array.from(t.dataSync(), Number);

function run(padding: "max-load" | "static", expert: ExpertKind, estimator: string, k: number, cf?: number) {
  const layer = new MoELayer(6, {
    numExperts: 5,
    hidden: 7,
    expert,
    estimator,
    estimatorOptions: estimator === "topk" ? { topK: k } : undefined,
    capacityFactor: cf,
    generator: new Generator(3),
    dtype: "f64",
    padding,
  });
  const x = randn([13, 6], { generator: new Generator(9), dtype: "f64" }).requiresGrad_();
  const y = layer.forward(x);
  backward(y.mul(y).sum());
  const grads = layer.parameters().map((p) => bits(p.grad!));
  return { y: bits(y), gx: bits(x.grad!), grads, dropped: bits(layer.lastMetrics!.dropped) };
}

for (
  const [expert, estimator, k, cf] of [
    ["ffn", "switch", 1, undefined],
    ["glu", "topk", 2, undefined],
    ["linear", "sparsemixer", 1, undefined],
    ["ffn", "topk", 2, 1.0],
    ["ffn", "switch", 1, 0.5],
  ] as const
) {
  Deno.test(`MoELayer padding: max-load equals static bit for bit in f64 (${expert}, ${estimator}, k=${k}, cf=${cf})`, () => {
    const a = run("max-load", expert, estimator, k, cf);
    const b = run("static", expert, estimator, k, cf);
    assert.deepEqual(a.y, b.y);
    assert.deepEqual(a.gx, b.gx);
    assert.deepEqual(a.grads, b.grads);
    assert.deepEqual(a.dropped, b.dropped);
    if (cf === 0.5) assert.ok(a.dropped[0] > 0, "the capacity case must actually drop pairs");
  });
}

Deno.test("MoELayer padding: a bad value is named", () => {
  assert.throws(
    () => new MoELayer(4, { numExperts: 2, padding: "tight" as "static" }),
    /padding must be "auto", "max-load" or "static", got "tight"/,
  );
});

Deno.test("MoELayer padding: f32 max-load agrees with static on a product big enough for the WebAssembly matmul", () => {
  const make = (padding: "max-load" | "static") => {
    const layer = new MoELayer(32, {
      numExperts: 4,
      hidden: 64,
      estimator: "switch",
      generator: new Generator(1),
      padding,
    });
    const x = randn([96, 32], { generator: new Generator(2) });
    return bits(layer.forward(x));
  };
  const a = make("max-load"), b = make("static");
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= 1e-5 * (1 + Math.abs(b[i])), `y[${i}]: ${v} vs ${b[i]}`));
});
