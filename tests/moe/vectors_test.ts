import assert from "node:assert/strict";
import "../../mod.ts";
import { passed, replayVector, TOLERANCES, VectorFormatError } from "../../moe/vectors/replay.ts";
import v1 from "../../vectors/formula_topk_softmax_and_aux_losses_8x16.json" with { type: "json" };
import v2 from "../../vectors/reinmax_tau1_8x4.json" with { type: "json" };
import v3 from "../../vectors/sparsemixer_1st_train_8x4.json" with { type: "json" };
import v4 from "../../vectors/sparsemixer_v1_eval_8x4.json" with { type: "json" };
import v5 from "../../vectors/sparsemixer_v1_train_8x4.json" with { type: "json" };
import v6 from "../../vectors/sparsemixer_v2_top1_eps0.1_train_8x4.json" with { type: "json" };
import v7 from "../../vectors/sparsemixer_v2_top2_eps0.01_eval_8x16.json" with { type: "json" };
import v8 from "../../vectors/sparsemixer_v2_top2_eps0.01_train_8x16.json" with { type: "json" };
import v9 from "../../vectors/st_gumbel_softmax_tau0.5_8x4.json" with { type: "json" };
import v10 from "../../vectors/straight_through_tau1_8x4.json" with { type: "json" };
import v11 from "../../vectors/switchgate_eval_8x4.json" with { type: "json" };
import v12 from "../../vectors/switchgate_train_8x4.json" with { type: "json" };
import layerSwitch from "../../vectors/layer_switch_train_8tok_d4_e4.json" with { type: "json" };

const VECTORS: { name: string }[] = [v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12];

for (const dtype of ["f64", "f32"] as const) {
  for (const v of VECTORS) {
    Deno.test(`vectors ${dtype} cpu: ${v.name}`, async () => {
      const r = await replayVector(v, { dtype, device: "cpu" });
      assert.equal(r.name, v.name);
      const bad = r.results.filter((q) => !q.ok);
      assert.deepEqual(bad, [], `${v.name}: ${JSON.stringify(bad)}`);
      assert.ok(passed(r));
      const tol = TOLERANCES[dtype];
      for (const q of r.results) {
        assert.ok(q.atol === 0 || q.atol >= tol.atol, `${q.quantity}: atol ${q.atol}`);
        if (!v.name.startsWith("straight_through")) assert.ok(q.atol <= tol.atol && q.rtol <= tol.rtol, q.quantity);
      }
      const quantities = r.results.map((q) => q.quantity);
      const file = v as unknown as { outputs: object; grads: object };
      for (const k of Object.keys(file.outputs)) assert.ok(quantities.includes(`outputs.${k}`), k);
      for (const k of Object.keys(file.grads)) assert.ok(quantities.includes(`grads.${k}`), k);
      assert.ok(quantities.includes("random_draws (all consumed)"));
    });
  }
}

const base = VECTORS.find((v) => v.name === "switchgate_train_8x4")!;

Deno.test("vectors: an unknown estimator is an error naming the field", async () => {
  const v = { ...base, name: "mystery_8x4", estimator: "Mystery router" };
  await assert.rejects(
    () => replayVector(v, { dtype: "f64" }),
    (e: Error) =>
      e instanceof VectorFormatError &&
      /mystery_8x4: cannot interpret estimator: unknown estimator "Mystery router"/.test(e.message),
  );
});

Deno.test("vectors: unknown output, grad, input and top-level fields are errors naming the field", async () => {
  const b = base as unknown as { outputs: object; grads: object; inputs: object };
  const cases: [object, RegExp][] = [
    [
      { ...base, outputs: { ...b.outputs, router_entropy: 1 } },
      /switchgate_train_8x4: cannot interpret outputs\.router_entropy/,
    ],
    [{ ...base, grads: { ...b.grads, bias_from_multiplier: [1] } }, /cannot interpret grads\.bias_from_multiplier/],
    [{ ...base, inputs: { ...b.inputs, upstream_grad_probs: [1] } }, /cannot interpret inputs\.upstream_grad_probs/],
    [{ ...base, extra_section: {} }, /cannot interpret extra_section: unknown top-level field/],
  ];
  for (const [v, re] of cases) {
    await assert.rejects(
      () => replayVector(v, { dtype: "f64" }),
      (e: Error) => e instanceof VectorFormatError && re.test(e.message),
    );
  }
});

Deno.test("vectors: a wrong reference value is a FAIL, not an error; unconsumed draws fail", async () => {
  const b = base as unknown as { outputs: { balance_loss: number }; random_draws: unknown[] };
  const r = await replayVector({ ...base, outputs: { ...b.outputs, balance_loss: b.outputs.balance_loss + 1e-6 } }, {
    dtype: "f64",
  });
  assert.ok(!passed(r));
  assert.deepEqual(r.results.filter((q) => !q.ok).map((q) => q.quantity), ["outputs.balance_loss"]);
  const eval_ = VECTORS.find((v) => v.name === "switchgate_eval_8x4")!;
  const r2 = await replayVector({ ...eval_, random_draws: b.random_draws }, { dtype: "f64" });
  assert.deepEqual(r2.results.filter((q) => !q.ok).map((q) => q.quantity), ["random_draws (all consumed)"]);
});

Deno.test("vectors: layer files need an extra replayer", async () => {
  await assert.rejects(
    () => replayVector(layerSwitch, { dtype: "f64" }),
    /layer_switch_train_8tok_d4_e4: cannot interpret: no replayer for layer vectors/,
  );
  // Recognised by its content (params.router_object, inputs.router_weight_dxE), not its name.
  await assert.rejects(
    () => replayVector({ ...layerSwitch, name: "switchgate_train_8x4" }, { dtype: "f64" }),
    /switchgate_train_8x4: cannot interpret: no replayer for layer vectors/,
  );
  const extra = [{
    match: (v: unknown) => (v as { name: string }).name.startsWith("layer_"),
    replay: () => [{ quantity: "outputs.y", maxAbs: 0, maxRel: 0, ok: true, atol: 1e-9, rtol: 1e-9 }],
  }];
  const r = await replayVector(layerSwitch, { dtype: "f64" }, extra);
  assert.ok(passed(r));
  assert.equal(r.name, "layer_switch_train_8tok_d4_e4");
});
