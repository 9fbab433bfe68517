/**
 * Mixture-of-Experts routing: every gradient estimator of `../shared/ESTIMATORS.md` behind one
 * {@link Estimator} interface (Switch, SparseMixer v1 / -1st / -inf, SparseMixer-v2 and v2*, GShard/Mixtral
 * top-k, straight-through, ST-Gumbel, ReinMax), injectable random draws (a Generator, or a checked replay of
 * the reference vectors' logged draws), load-balancing and z losses, and routing metrics.
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
export { type RoutingLike, type RoutingMetrics, routingMetrics } from "./metrics.ts";
export {
  type BalanceLossConfig,
  type ExpertKind,
  type MoEForwardOptions,
  MoELayer,
  type MoELayerMetrics,
  type MoELayerOptions,
} from "./layer.ts";
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
  type ReplayError,
  replayLayerVector,
} from "./vectors/layer_replay.ts";
