import assert from "node:assert/strict";
import { createEstimator, ESTIMATOR_NAMES, Generator, GeneratorDraws, randn } from "../../mod.ts";

Deno.test("every registered estimator routes, in training and in eval, and its gates reach the logits", () => {
  assert.deepEqual([...ESTIMATOR_NAMES].sort(), [
    "default-moe",
    "densemixer",
    "expert-choice",
    "reinmax",
    "sigmoid-topk",
    "sparsemixer",
    "sparsemixer-1st",
    "sparsemixer-inf",
    "sparsemixer-v2",
    "sparsemixer-v2-heun",
    "st-gumbel",
    "straight-through",
    "switch",
    "topk",
  ]);
  for (const name of ESTIMATOR_NAMES) {
    const est = createEstimator(name);
    for (const training of [true, false]) {
      const z = randn([16, 4], { dtype: "f64", generator: new Generator(3) }).mul(3).requiresGrad_();
      const r = est.route(z, { training, draws: new GeneratorDraws(new Generator(5)) });
      assert.equal(r.experts.dtype, "i32", name);
      assert.equal(r.experts.shape[0], 16, name);
      assert.deepEqual(r.gates.shape, r.experts.shape, name);
      assert.deepEqual(r.probs.shape, [16, 4], name);
      r.gates.sum().backward();
      assert.ok(z.grad, `${name} (${training ? "train" : "eval"}): no gradient reached the logits`);
    }
  }
});

Deno.test("estimator options are validated with messages that name the field", () => {
  assert.throws(() => createEstimator("sparsemixr"), /sparsemixr/);
  assert.throws(() => createEstimator("sparsemixer", { jitterEps: -1 }), /"sparsemixer" option "jitterEps" must be/);
  assert.throws(() => createEstimator("topk", { kk: 2 }), /"topk" has no option "kk" \(allowed: topK, renormalize\)/);
  assert.throws(() => createEstimator("sparsemixer-v2", { topK: 3 }), /option "topK" must be one of 1, 2/);
});
