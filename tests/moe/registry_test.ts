import assert from "node:assert/strict";
import { createEstimator, ESTIMATOR_NAMES, Generator, GeneratorDraws, randn, tensor } from "../../mod.ts";
import { estimatorDescriptor } from "../../moe/estimators/registry.ts";

Deno.test("every registered estimator routes, in training and in eval, and its gates reach the logits", () => {
  assert.deepEqual([...ESTIMATOR_NAMES].sort(), [
    "default-moe",
    "densemixer",
    "expert-choice",
    "hash",
    "random",
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
    const d = estimatorDescriptor(name);
    // The hash null control routes by the token ids (the route context).
    const tokenIds = d.needs.tokenIds ? tensor([...Array(16).keys()], { dtype: "i32" }) : undefined;
    for (const training of [true, false]) {
      const z = randn([16, 4], { dtype: "f64", generator: new Generator(3) }).mul(3).requiresGrad_();
      const r = est.route(z, { training, draws: new GeneratorDraws(new Generator(5)), tokenIds });
      assert.equal(r.experts.dtype, "i32", name);
      assert.equal(r.experts.shape[0], 16, name);
      assert.deepEqual(r.gates.shape, r.experts.shape, name);
      assert.deepEqual(r.probs.shape, [16, 4], name);
      if (d.nullControl) {
        // A null control ignores the router: nothing in its routing depends on the logits.
        assert.ok(!r.gates.requiresGrad && !r.probs.requiresGrad, `${name}: a null control's gates carry a gradient`);
        continue;
      }
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
