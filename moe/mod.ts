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
 * different backward) → the dispatch (`moe/dispatch.ts`) sorts (token, slot) pairs by expert and scatters them
 * into a padded `[E, C, d]` buffer → the experts (`moe/experts.ts`) run as one batched matmul chain → the
 * outputs are gathered, gated and summed per token (plus Default MoE's terms, `moe/default_moe.ts`). Balance
 * and z losses come back through `auxLoss()`, metrics (`moe/metrics.ts`) through `lastMetrics`; the options
 * are one schema (`moe/layer_options.ts`). `moe/reference.ts` is the same computation as a per-token loop, used
 * by the tests.
 *
 * ## Adding an estimator
 * 1. A class implementing {@link Estimator} in `moe/estimators/` (`route(logits, { training, draws })` returns
 *    experts `[N, K]`, gates `[N, K]` and the probabilities; take every random number from `draws` so the
 *    reference vectors can replay it, and express the backward with `customGrad`).
 * 2. A zod options schema in `moe/estimators/options.ts` and a factory in `moe/estimators/registry.ts` (the
 *    registry tests then check its name, options and errors).
 * 3. Tests: its gradient against `moe/exact_gradient.ts` (`estimatorBias`) and, where a reference exists, a
 *    vector file replayed by `deno task vectors`; if a reference object exists, list it in
 *    `moe/vectors/layer_routers.ts` so a `layer_*` case naming it (`params.router_object`) replays too. It is
 *    then usable as `new MoELayer(d, { estimator: "name" })` and in every experiment's `--arms`.
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
export {
  ReinMaxEstimator,
  sampleMultinomial,
  StGumbelEstimator,
  type StGumbelOptions,
  StraightThroughEstimator,
  type TemperatureOptions,
} from "./estimators/straight_through.ts";
export { createEstimator, ESTIMATOR_NAMES, type EstimatorFactory, ESTIMATORS } from "./estimators/registry.ts";
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
  type ExpertKind,
  type Experts,
  type ExpertsOptions,
  FfnExperts,
  GluExperts,
  LinearExperts,
} from "./experts.ts";
export {
  combinePairs,
  type DispatchPadding,
  type DispatchPlan,
  type DispatchPlanOptions,
  dispatchTokens,
  expertCapacity,
  gatherPairs,
  planDispatch,
} from "./dispatch.ts";
export { DefaultMoe, type DefaultMoeOptions } from "./default_moe.ts";
export { type BalanceLossConfig, type MoELayerOptions } from "./layer_options.ts";
export { type MoEForwardOptions, MoELayer } from "./layer.ts";
export { moeLoopReference } from "./reference.ts";
export {
  type Downstream,
  type EstimatorBias,
  estimatorBias,
  type EstimatorBiasOptions,
  type ExactObjective,
  type ExactTerms,
  exactTerms,
  GatingProxyEstimator,
  sampleGradients,
} from "./exact_gradient.ts";
export {
  type LayerReplayErrors,
  type LayerReplayOptions,
  type LayerReplayResult,
  type ReplayError,
  replayLayerVector,
} from "./vectors/layer_replay.ts";
