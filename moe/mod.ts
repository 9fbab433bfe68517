/**
 * Mixture-of-Experts routing: every gradient estimator of `docs/ESTIMATORS.md` behind one
 * {@link Estimator} interface (Switch, SparseMixer v1 / -1st / -inf, SparseMixer-v2 and v2*, GShard/Mixtral
 * top-k, straight-through, ST-Gumbel, ReinMax), injectable random draws (a Generator, or a checked replay of
 * the reference vectors' logged draws), load-balancing and z losses, and routing metrics.
 *
 * ## How a MoE forward flows
 * `MoELayer.forward(x)` (`moe/layer.ts`, a composition of the parts below): the router (`Router`,
 * `moe/router.ts`, a `Linear(d, E)`) gives logits → the estimator's `route` picks experts and gate values and
 * attaches its gradient rule with `customGrad` (this is where Switch and SparseMixer differ: same forward,
 * different backward) → the dispatch (`moe/dispatch.ts`) sorts (token, slot) pairs by expert and gathers the
 * tokens in that order, each expert's rows at offsets computed on the device → the experts (`moe/experts.ts`)
 * run as an exact grouped GEMM on those rows (`groupedMatmul`; a padded `[E, C, d]` batch with
 * `dispatch: "padded"`) → the outputs are gated and summed per token (plus Default MoE's terms, `moe/default_moe.ts`). Balance
 * and z losses come back through `auxLoss()`, metrics (`moe/metrics.ts`) through `lastMetrics`; the options
 * are one schema (`moe/layer_options.ts`). `moe/reference.ts` is the same computation as a per-token loop, used
 * by the tests.
 *
 * ## Adding an estimator
 * 1. One file in `moe/estimators/`: a class implementing {@link Estimator} (`route(logits, { training, draws })`
 *    returns experts `[N, K]`, gates `[N, K]` and the probabilities; take every random number from `draws` so
 *    the reference vectors can replay it, and express the backward with `customGrad`), and its
 *    {@link EstimatorDescriptor} (`defineEstimator`): options schema and factory, sparse or dense, how K is set,
 *    what the layer must give it, what capacity dropping means, its exact objective, its estimator-bias sweep
 *    and the vector reference routers it replays.
 * 2. One line in `moe/estimators/registry.ts`'s `BUILTIN_ESTIMATORS` (or {@link registerEstimator} from outside).
 *    It is then usable as `new MoELayer(d, { estimator: "name" })`, by `createEstimator`, the exact-gradient
 *    harness (`estimatorBias`), `exp:estimator-bias`, the LM experiments' configs and `deno task vectors`
 *    (a `layer_*` case naming one of its reference objects).
 * 3. Tests: its gradient against `estimatorBias` and, where a reference exists, a vector file.
 * 4. For a built-in one, the public surface: export the class and its options interface here and from the root
 *    `mod.ts`, pin both names in `tests/api_surface_lists.ts`, and add its row to the estimator table of
 *    `mod.ts`'s overview (`tests/api_surface_test.ts` names whatever is missing).
 *
 * @example
 * ```ts
 * import { createEstimator, Generator, GeneratorDraws, randn } from "@moegrad/moegrad";
 * const estimator = createEstimator("sparsemixer", { jitterEps: 0.1 });
 * const logits = randn([8, 4]).requiresGrad_();
 * const { experts, gates } = estimator.route(logits, { training: true, draws: new GeneratorDraws(new Generator(0)) });
 * gates.sum().backward(); // SparseMixer's mid-point gradient reaches the logits
 * console.log(experts.shape, logits.grad!.shape); // [8, 1] [8, 4]
 * ```
 *
 * @module
 */
export {
  type DrawKind,
  type DrawSource,
  type Estimator,
  type ExpertOutputTerm,
  GeneratorDraws,
  type LoggedDraw,
  ReplayDraws,
  type RouteOptions,
  type Routing,
} from "./estimators/estimator.ts";
export { gumbelArgmax, jitterMask, maskedSoftmax, maskLogits } from "./estimators/mask.ts";
export { jitterRouterInput, SwitchEstimator, type SwitchOptions } from "./estimators/switch.ts";
export { SparseMixerEstimator, type SparseMixerOptions } from "./estimators/sparsemixer.ts";
export { SparseMixerV2Estimator, type SparseMixerV2Options, V2_MIDPOINT_SCALE } from "./estimators/sparsemixer_v2.ts";
export { TopKEstimator, type TopKOptions } from "./estimators/topk.ts";
export { DefaultMoeEstimator, type DefaultMoeEstimatorOptions } from "./estimators/default_moe.ts";
export { SigmoidTopKEstimator, type SigmoidTopKOptions } from "./estimators/sigmoid_topk.ts";
export { DenseMixerEstimator, type DenseMixerOptions } from "./estimators/densemixer.ts";
export { DenseMixerTerm } from "./densemixer.ts";
export { ExpertChoiceEstimator, type ExpertChoiceOptions } from "./estimators/expert_choice.ts";
export {
  HashEstimator,
  type HashRoutingOptions,
  RandomRoutingEstimator,
  type RandomRoutingOptions,
} from "./estimators/null_controls.ts";
export {
  ReinMaxEstimator,
  sampleMultinomial,
  StGumbelEstimator,
  type StGumbelOptions,
  StraightThroughEstimator,
  type TemperatureOptions,
} from "./estimators/straight_through.ts";
export {
  createEstimator,
  descriptorOf,
  ESTIMATOR_NAMES,
  estimatorDescriptor,
  estimatorDescriptors,
  registerEstimator,
} from "./estimators/registry.ts";
export {
  type BiasSweep,
  defineEstimator,
  DROPS_SLOTS,
  type EstimatorDescriptor,
  EVERY_EXPERT,
  type LayerNeeds,
  LOGITS_ONLY,
  NO_OPTIONS,
  type OptionsSchema,
  TOP1,
  topKOption,
  type TopKRule,
  type VectorFile,
  type VectorFileFormat,
  type VectorReference,
  type VectorRouterParams,
} from "./estimators/descriptor.ts";
export {
  type BalanceLossOptions,
  BalanceStats,
  routerZLoss,
  switchBalanceLoss,
  topkBalanceLoss,
} from "./aux_losses.ts";
export {
  type MoELayerMetrics,
  moeLayerMetrics,
  type RoutingLike,
  type RoutingMetrics,
  routingMetrics,
} from "./metrics.ts";
export { Router, type RouterOptions, type RouterOutput } from "./router.ts";
export {
  type BuiltinExperts,
  createExperts,
  EXPERT_ACTIVATIONS,
  type ExpertActivation,
  type ExpertGroups,
  type ExpertKind,
  type Experts,
  type ExpertsOptions,
  FfnExperts,
  GluExperts,
  LinearExperts,
} from "./experts.ts";
export {
  combinePairs,
  type DispatchMode,
  type DispatchPadding,
  type DispatchPlan,
  type DispatchPlanOptions,
  dispatchRows,
  dispatchTokens,
  expertCapacity,
  gatherPairs,
  planDispatch,
} from "./dispatch.ts";
export { DefaultMoe, type DefaultMoeOptions } from "./default_moe.ts";
export { type BalanceLossConfig, type LossFreeBalanceConfig, type MoELayerOptions } from "./layer_options.ts";
export { LossFreeBalance, updateExpertBiases } from "./loss_free_balance.ts";
export { type MoEForwardOptions, MoELayer } from "./layer.ts";
export { moeLoopReference } from "./reference.ts";
export {
  type Downstream,
  type ExactObjective,
  type ExactTerms,
  exactTerms,
  GatingProxyEstimator,
  sampleGradients,
  type SampleGradientsOptions,
} from "./exact_gradient.ts";
export { type EstimatorBias, estimatorBias, type EstimatorBiasOptions } from "./estimator_bias.ts";
export { exactGradient, type ExactProblem, forwardLossMC, type Objective, objectiveValue } from "./exact_objectives.ts";
export {
  type LayerReplayErrors,
  type LayerReplayOptions,
  type LayerReplayResult,
  type ReplayError,
  replayLayerVector,
} from "./vectors/layer_replay.ts";
