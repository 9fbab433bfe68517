/**
 * The layer cases built from the per-estimator vectors (see `layer_case_builder.ts`): every router the
 * reference layer files do not cover, each in the setting its vector was made in. Also written to
 * `tests/moe/fixtures/` by `fixtures/make_layer_fixtures.ts` so `deno task vectors` can replay them.
 */
import { buildLayerCase, type CaseSpec } from "./layer_case_builder.ts";
import switchTrain from "../../vectors/switchgate_train_8x4.json" with { type: "json" };
import switchEval from "../../vectors/switchgate_eval_8x4.json" with { type: "json" };
import v1Eval from "../../vectors/sparsemixer_v1_eval_8x4.json" with { type: "json" };
import first from "../../vectors/sparsemixer_1st_train_8x4.json" with { type: "json" };
import v2Top1 from "../../vectors/sparsemixer_v2_top1_eps0.1_train_8x4.json" with { type: "json" };
import v2Train from "../../vectors/sparsemixer_v2_top2_eps0.01_train_8x16.json" with { type: "json" };
import v2Eval from "../../vectors/sparsemixer_v2_top2_eps0.01_eval_8x16.json" with { type: "json" };
import gumbel from "../../vectors/st_gumbel_softmax_tau0.5_8x4.json" with { type: "json" };
import formula from "../../vectors/formula_topk_softmax_and_aux_losses_8x16.json" with { type: "json" };

type Json = Record<string, any>;
const col = (x: number[]) => x.map((v) => [v]);
const rowSums = (x: number[][]) => x.map((r) => [r.reduce((s, v) => s + v, 0)]);

/** A v2 vector (repo `sparsemixerv2_routing`, or transformers' PhiMoE with the same draws) as a layer case. */
function v2(name: string, vec: Json, object: string, draws?: unknown[]): CaseSpec {
  return {
    name,
    vector: vec,
    routerObject: object,
    topK: vec.params.top_k,
    params: { jitter_eps: vec.params.jitter_eps },
    selected: vec.outputs.selected_experts,
    multiplier: vec.outputs.multiplier,
    upstream: vec.inputs.upstream_grad_multiplier,
    gradLogits: vec.grads.logits,
    draws,
  };
}

/** A SwitchGate vector (1-D selection, multiplier N×1). */
function sw(name: string, vec: Json): CaseSpec {
  return {
    name,
    vector: vec,
    routerObject: "SwitchGate",
    topK: 1,
    params: { jitter_eps: vec.params.jitter_eps },
    selected: col(vec.outputs.selected_experts),
    multiplier: vec.outputs.multiplier,
    upstream: vec.inputs.upstream_grad_multiplier,
    gradLogits: vec.grads.logits_from_multiplier,
  };
}

/** A SparseMixer v1-family vector (multiplier gate ⊗ ω with ω = ones, so ∂L/∂gate is the row sum). */
function v1(name: string, vec: Json, object: string): CaseSpec {
  return {
    name,
    vector: vec,
    routerObject: object,
    topK: 1,
    params: { jitter_eps: vec.params.jitter_eps },
    selected: vec.outputs.selected_experts,
    multiplier: vec.outputs.multiplier.map((r: number[]) => [r[0]]),
    upstream: rowSums(vec.inputs.upstream_grad_multiplier),
    gradLogits: vec.grads.logits_from_multiplier,
    omega: true,
  };
}

/** The top-k formula (Mixtral/GShard), renormalised or raw weights. */
function topk(name: string, renormalize: boolean): CaseSpec {
  const f = formula as Json;
  return {
    name,
    vector: f,
    routerObject: "topk_softmax",
    topK: f.params.top_k,
    params: { renormalize },
    selected: f.outputs.topk_indices,
    multiplier: renormalize ? f.outputs.topk_weights_renormalized : f.outputs.topk_weights_raw,
    upstream: f.inputs.upstream_grad_weights,
    gradLogits: renormalize ? f.grads.logits_from_renormalized_weights : f.grads.logits_from_raw_weights,
  };
}

/** ST-Gumbel-Softmax with every expert in the layer (top_k = E; multiplier = the one-hot sample). */
function gumbelDense(name: string): CaseSpec {
  const g = gumbel as Json;
  const e = g.inputs.logits[0].length;
  return {
    name,
    vector: g,
    routerObject: "gumbel_softmax",
    topK: e,
    params: { tau: g.params.tau },
    selected: g.inputs.logits.map(() => Array.from({ length: e }, (_, i) => i)),
    multiplier: g.outputs.one_hot_sample,
    upstream: g.inputs.upstream_grad_one_hot,
    gradLogits: g.grads.logits,
    training: true,
  };
}

/** Every built case's spec. */
export const LAYER_CASE_SPECS: readonly CaseSpec[] = [
  v2("layer_v2_top2_eps0.01_train_8tok_d16_e16", v2Train, "sparsemixerv2_routing"),
  v2("layer_phimoe_top2_eps0.01_train_8tok_d16_e16", v2Train, "PhimoeMultiplier"),
  v2("layer_v2_top2_eps0.01_eval_8tok_d16_e16", v2Eval, "sparsemixerv2_routing"),
  v2("layer_phimoe_top2_eps0.01_eval_8tok_d16_e16", v2Eval, "PhimoeMultiplier", []),
  v2("layer_v2_top1_eps0.1_train_8tok_d4_e4", v2Top1, "sparsemixerv2_routing"),
  v1("layer_1st_train_8tok_d4_e4", first, "SparseMixerFirst"),
  v1("layer_v1_eval_8tok_d4_e4", v1Eval, "SparseMixer"),
  sw("layer_switch_eval_8tok_d4_e4", switchEval),
  sw("layer_switch_train_from_vector_8tok_d4_e4", switchTrain),
  gumbelDense("layer_st_gumbel_tau0.5_dense_8tok_d4_e4"),
  topk("layer_topk2_renormalized_8tok_d16_e16", true),
  topk("layer_topk2_raw_8tok_d16_e16", false),
];

/** Every built case, by name. */
export function layerCases(): Json[] {
  return LAYER_CASE_SPECS.map(buildLayerCase);
}
