/**
 * The layer replay reads the case (`params.router_object`, `top_k`, `jitter_eps`, `training`, `tau`), not
 * its name: layer cases built from the per-estimator vectors (`layer_cases.ts`) — SparseMixer-v2 top-2 over
 * 16 experts (GRIN's setting, repo and transformers objects, train and eval), v2 top-1, SparseMixer-1st, v1
 * eval, Switch train and eval, ST-Gumbel with every expert, the top-k formula — replay within the README's
 * tolerances, under any file name; unknown routers and unsupported `top_k` are one-line errors naming the
 * field and its value.
 */
import assert from "node:assert/strict";
import "../../mod.ts";
import { passed, replayVector, TOLERANCES } from "../../moe/vectors/replay.ts";
import { layerReplayer, replayLayerVector } from "../../moe/vectors/layer_replay.ts";
import { layerCases } from "./layer_cases.ts";
import { buildLayerCase } from "./layer_case_builder.ts";
import reinmax from "../../vectors/reinmax_tau1_8x4.json" with { type: "json" };
import st from "../../vectors/straight_through_tau1_8x4.json" with { type: "json" };
import layerSwitch from "../../vectors/layer_switch_train_8tok_d4_e4.json" with { type: "json" };
import layerV1 from "../../vectors/layer_v1_train_8tok_d4_e4.json" with { type: "json" };

type Json = Record<string, any>;
const CASES = layerCases();
const byName = (name: string) => structuredClone(CASES.find((c) => c.name === name)!);

async function replayOk(v: Json, dtype: "f64" | "f32"): Promise<string[]> {
  const r = await replayVector(v, { dtype, device: "cpu" }, [layerReplayer]);
  assert.deepEqual(r.results.filter((q) => !q.ok), [], `${v.name} (${dtype})`);
  assert.ok(passed(r));
  const tol = TOLERANCES[dtype];
  for (const q of r.results) assert.ok(q.atol <= tol.atol && q.rtol <= tol.rtol, `${q.quantity}: loosened`);
  return r.results.map((q) => q.quantity);
}

for (const v of CASES) {
  Deno.test(`layer case ${v.name} (${v.params.router_object}, top_k ${v.params.top_k}) replays in f64 and f32`, async () => {
    const quantities = await replayOk(v, "f64");
    assert.ok(quantities.includes("random_draws (all consumed)"));
    assert.equal(quantities.length, 8);
    await replayOk(v, "f32");
  });
}

Deno.test("layer replay: GRIN's setting (SparseMixer-v2, top-2, 16 experts) is among the built cases", () => {
  const grin = CASES.filter((c) =>
    c.params.router_object === "sparsemixerv2_routing" && c.params.top_k === 2 && c.params.num_experts === 16 &&
    c.params.training
  );
  assert.equal(grin.length, 1);
  assert.equal(grin[0].random_draws.length, 5);
});

Deno.test("layer replay: the name does not matter, only the case's fields", async () => {
  // A v2 top-2 case under the name of the Switch layer file, and the Switch file under a v1 name.
  const v2 = { ...byName("layer_v2_top2_eps0.01_train_8tok_d16_e16"), name: "layer_switch_train_8tok_d4_e4" };
  await replayOk(v2, "f64");
  await replayOk({ ...structuredClone(layerSwitch), name: "layer_v1_train_8tok_d4_e4" }, "f64");
  await replayOk({ ...structuredClone(layerV1), name: "something_else" }, "f64");
  // The same router, described differently: PhiMoE's object replays the repo's training case unchanged.
  const hf = byName("layer_v2_top2_eps0.01_train_8tok_d16_e16");
  hf.params.router_object = "sparsemixer";
  await replayOk(hf, "f64");
});

Deno.test("layer replay: a case replayed with the wrong router fails, it is not silently accepted", async () => {
  const v = byName("layer_v2_top1_eps0.1_train_8tok_d4_e4");
  v.params.router_object = "SwitchGate"; // asks for torch.rand_like [8, 4]; the log starts with exponential_
  await assert.rejects(
    () => replayVector(v, { dtype: "f64" }, [layerReplayer]),
    /ReplayDraws: draw 0: the estimator asked for torch\.rand_like \[8,4\], the log has Tensor\.exponential_ \[8,4\]/,
  );
  const eps = byName("layer_v2_top2_eps0.01_train_8tok_d16_e16");
  eps.params.jitter_eps = 0.1; // a wider mask: other candidates, other gates
  const r = await replayVector(eps, { dtype: "f64" }, [layerReplayer]);
  assert.ok(!passed(r));
  const evalCase = byName("layer_v2_top2_eps0.01_eval_8tok_d16_e16");
  evalCase.params.router_object = "PhimoeMultiplier"; // draws nothing in eval: the logged draws stay unconsumed
  const r2 = await replayVector(evalCase, { dtype: "f64" }, [layerReplayer]);
  assert.deepEqual(r2.results.filter((q) => !q.ok).map((q) => q.quantity), ["random_draws (all consumed)"]);
});

Deno.test("layer replay: unknown router object, unsupported top_k and unknown fields are one-line errors", async () => {
  const base = () => byName("layer_v2_top2_eps0.01_train_8tok_d16_e16");
  const cases: [(v: Json) => void, RegExp][] = [
    [
      (v) => (v.params.router_object = "SparseMixerV3"),
      /field "params\.router_object" = "SparseMixerV3" is not a known router \(known: SwitchGate, SparseMixer,/,
    ],
    [(v) => delete v.params.router_object, /the vector has no field "params\.router_object"/],
    [
      (v) => (v.params.top_k = 3),
      /field "params\.top_k" = 3 is not supported by sparsemixerv2_routing with 16 experts \(allowed: 1 or 2\)/,
    ],
    [
      (v) => (v.params.router_object = "SwitchGate"),
      /field "params\.top_k" = 2 is not supported by SwitchGate with 16 experts \(allowed: 1\)/,
    ],
    [(v) => (v.params.router_object = "PhimoeMultiplier", v.params.top_k = 1), /"params\.top_k" = 1 .*\(allowed: 2\)/],
    [(v) => (v.params.training = "yes"), /field "params\.training" must be true or false, got "yes"/],
    [(v) => (v.params.jitter_eps = -1), /field "params\.jitter_eps" must be a number ≥ 0, got -1/],
    [(v) => (v.params.temperature = 2), /field "params\.temperature" is unknown/],
    [(v) => (v.outputs.balance_loss = 1), /field "outputs\.balance_loss" is unknown/],
  ];
  for (const [edit, re] of cases) {
    const v = base();
    edit(v);
    await assert.rejects(() => replayLayerVector(v), (e: Error) => re.test(e.message) && !e.message.includes("\n"));
  }
});

Deno.test("layer replay: ReinMax and Straight-Through inside a layer (top_k 1 and E) replay their draws and forward", async () => {
  // Their vectors' logits gradients include an upstream gradient on y_soft, which a layer does not have, so
  // only what does not depend on the router's gradient is compared: logits, selection, multiplier, y, the
  // expert-weight gradient, the logged multinomial indices and draw consumption.
  const routerGradFree = [
    "router_logits",
    "selected_experts",
    "multiplier",
    "y",
    "grad_expert_weights",
    "random_draws (torch.multinomial(result index))",
    "random_draws (all consumed)",
  ];
  for (const [vec, object] of [[reinmax, "reinmax"], [st, "st"]] as const) {
    const v = vec as Json;
    const hot: number[][] = v.outputs.one_hot_sample;
    const e = hot[0].length;
    const sampled = hot.map((r) => [r.indexOf(1)]);
    for (const topK of [1, e]) {
      const c = buildLayerCase({
        name: `layer_${object}_top${topK}`,
        vector: v,
        routerObject: object,
        topK,
        params: { tau: v.params.tau },
        selected: topK === 1 ? sampled : hot.map(() => Array.from({ length: e }, (_, i) => i)),
        multiplier: topK === 1 ? hot.map(() => [1]) : hot,
        upstream: topK === 1 ? v.inputs.upstream_grad_one_hot.map((r: number[], t: number) => [r[sampled[t][0]]]) : v
          .inputs.upstream_grad_one_hot,
        gradLogits: hot.map((r) => r.map(() => 0)), // unknown here: not compared
        training: true,
      });
      const r = await replayVector(c, { dtype: "f64" }, [layerReplayer]);
      assert.deepEqual(
        r.results.map((q) => q.quantity).sort(),
        [...routerGradFree, "grad_router_weight", "grad_x"].sort(),
      );
      for (const q of r.results) {
        if (routerGradFree.includes(q.quantity)) assert.ok(q.ok, `${object} top_k ${topK}: ${q.quantity}`);
      }
    }
  }
});
