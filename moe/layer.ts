/**
 * `MoELayer`: router (linear, optional bias) → estimator (experts + gate multipliers, custom gradient) →
 * dispatch → experts → combine, all through public ops so autograd reaches the router, the experts, the input
 * and the optional output scale ω.
 *
 * The layer is a composition of small parts, each in its own file:
 *
 * - the options: one zod schema with the defaults (`moe/layer_options.ts`, {@link MoELayerOptions});
 * - the router ({@link Router}, `moe/router.ts`): the `Linear(d, E)` with the estimator, Switch's input jitter
 *   and the z-loss;
 * - the experts (`Experts`, `moe/experts.ts`): `FfnExperts`, `GluExperts` or `LinearExperts`, their weights
 *   typed fields ({@link MoELayer.experts});
 * - the dispatch (`moe/dispatch.ts`: {@link planDispatch}, {@link dispatchRows}, {@link gatherPairs},
 *   {@link combinePairs}), whose module docs explain the sort-based, sync-free dispatch, the grouped and the
 *   padded layout of the experts' rows, and the capacity;
 * - the term an estimator computes from the experts' outputs, when it has one (`Estimator.outputTerm`; the
 *   `default-moe` estimator's default vectors, {@link DefaultMoe} in `moe/default_moe.ts`);
 * - DeepSeekMoE's shared experts (option `sharedExperts`: always active, added to the routed output, child
 *   `shared`) and fine-grained segmentation (option `fineGrained`: E·m experts of width h/m, K → m·K);
 * - the metrics ({@link moeLayerMetrics}, `moe/metrics.ts`) and the balance / z losses (`moe/aux_losses.ts`).
 *
 * The state dict keeps the flat names of the layer: the experts' weights (`w1`, `b1`, `w2`, `b2`; `wGate`,
 * `wUp`, `wDown`; `w`) and `omega` are parameters of the layer itself, then `router.weight` (and
 * `router.bias`), and the buffers `defaultVectors` (Default MoE) and `expertBias` (loss-free balancing, option
 * `lossFreeBalance`; `moe/loss_free_balance.ts`). The weights are drawn from `generator` in that order: the
 * router's first, then the experts'.
 *
 * @example
 * ```ts
 * import { Generator, MoELayer, randn } from "@moegrad/moegrad";
 * const moe = new MoELayer(8, {
 *   numExperts: 4,
 *   hidden: 16,
 *   estimator: "topk",
 *   estimatorOptions: { topK: 2 },
 *   balanceLoss: { coef: 0.01, form: "topk" },
 *   generator: new Generator(0),
 * });
 * const y = moe.forward(randn([2, 3, 8]));
 * y.sum().add(moe.auxLoss()!).backward();
 * console.log(y.shape, moe.router.weight.grad!.shape); // [2, 3, 8] [8, 4]
 * ```
 *
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import { ones } from "../core/ops/creation.ts";
import { Module } from "../nn/mod.ts";
import { resolveDevice } from "../core/device.ts";
import {
  type DrawSource,
  type Estimator,
  type ExpertOutputTerm,
  GeneratorDraws,
  type Routing,
} from "./estimators/estimator.ts";
import { BalanceStats, switchBalanceLoss, topkBalanceLoss } from "./aux_losses.ts";
import { type MoELayerMetrics, moeLayerMetrics } from "./metrics.ts";
import { Router } from "./router.ts";
import {
  type BuiltinExperts,
  createExperts,
  EXPERT_ACTIVATIONS,
  type ExpertActivation,
  type ExpertKind,
} from "./experts.ts";
import {
  combinePairs,
  type DispatchMode,
  type DispatchPadding,
  type DispatchPlan,
  dispatchRows,
  expertCapacity,
  gatherPairs,
  planDispatch,
} from "./dispatch.ts";
import {
  type BalanceLossConfig,
  layerEstimator,
  type LossFreeBalanceConfig,
  type MoELayerOptions,
  parseMoELayerOptions,
  segmentedExperts,
} from "./layer_options.ts";
import { LossFreeBalance } from "./loss_free_balance.ts";

export type { BalanceLossConfig, ExpertKind, LossFreeBalanceConfig, MoELayerMetrics, MoELayerOptions };

/** Options of {@link MoELayer.forward}. */
export interface MoEForwardOptions {
  /** Random draws for this call (default: the layer's `GeneratorDraws`). */
  draws?: DrawSource;
  /**
   * The route context: the token ids (i32) of `x`'s tokens, shaped like `x` without its last axis (`[B, T]` for
   * `x` `[B, T, d]`), handed to the estimator as `RouteOptions.tokenIds`. The `hash` null control needs them;
   * `DecoderLM` passes its input ids to every feed-forward.
   */
  tokenIds?: Tensor;
}

/** A Mixture-of-Experts layer (see the module docs for its parts, `moe/dispatch.ts` for the dispatch). */
export class MoELayer extends Module {
  /** Model width d. */
  readonly dim: number;
  /** Number of experts E. */
  readonly numExperts: number;
  /** Expert hidden width (d for `"linear"`). */
  readonly hidden: number;
  /** Expert architecture. */
  readonly expert: ExpertKind;
  /** Expert nonlinearity (for `"linear"` experts, reported and unused). */
  readonly activation: ExpertActivation;
  /** The router, a `Linear(d, E)` (weight [d, E]) with the estimator and the z-loss. */
  readonly router: Router;
  /** The experts; their weights are this layer's parameters, under the experts' own names (`w1`, …). */
  readonly experts: BuiltinExperts;
  /** The shared experts (option `sharedExperts`; child `shared`), every token through each with weight 1, or null. */
  readonly shared: BuiltinExperts | null;
  /** ω [d], or null. */
  readonly omega: Tensor | null;
  /** Capacity factor (undefined = dropless). */
  readonly capacityFactor: number | undefined;
  /** Balance loss settings (`scope` filled in, default `"local"`). */
  readonly balanceLoss: Required<BalanceLossConfig> | undefined;
  /** The counts accumulated for a `scope: "global"` balance loss (null otherwise); see {@link BalanceLossConfig}. */
  readonly balanceStats: BalanceStats | null;
  /** Default draw source. */
  readonly draws: DrawSource;
  /** How the experts get their rows, grouped or padded (the option `dispatch`: {@link MoELayerOptions.dispatch}). */
  readonly dispatchMode: DispatchMode;
  /** The padded dispatch's buffer policy (see {@link MoELayerOptions.padding}; unused by the grouped dispatch). */
  readonly padding: DispatchPadding;
  /**
   * The estimator's term from the experts' outputs (`Estimator.outputTerm`, e.g. Default MoE's default vectors,
   * this layer's buffer `defaultVectors`), or null when the estimator has none.
   */
  readonly outputTerm: ExpertOutputTerm | null;
  /** Loss-free balancing's bias and loads (option `lossFreeBalance`; buffer `expertBias`), or null. */
  readonly lossFreeBalance: LossFreeBalance | null;
  /** Routing of the latest forward. */
  lastRouting: Routing | null = null;
  /** Router logits [N, E] of the latest forward. */
  lastLogits: Tensor | null = null;
  /** Metrics of the latest forward (tensors; read them when you want). */
  lastMetrics: MoELayerMetrics | null = null;
  #aux: Tensor | null = null;

  /** Validates the options (one `RangeError` naming each bad field), then creates the router and the experts. */
  constructor(dim: number, options: MoELayerOptions) {
    super();
    if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`MoELayer: dim must be a positive integer, got ${dim}`);
    const o = parseMoELayerOptions(options);
    const segmented = segmentedExperts(o, dim);
    const e = segmented.numExperts;
    this.dim = dim;
    this.numExperts = e;
    this.expert = o.expert;
    this.hidden = segmented.hidden;
    this.activation = o.activation ?? EXPERT_ACTIVATIONS[o.expert][0];
    this.capacityFactor = o.capacityFactor;
    this.balanceLoss = o.balanceLoss;
    this.balanceStats = o.balanceLoss?.scope === "global" ? new BalanceStats(e) : null;
    this.dispatchMode = o.dispatch;
    this.padding = o.padding;
    const estimator = layerEstimator(o, e);
    if (o.balanceLoss?.form === "switch" && this.#topK(estimator) !== 1) {
      throw new TypeError(
        `MoELayer: the "switch" balance loss needs top-1 routing, the estimator has K = ${this.#topK(estimator)}`,
      );
    }
    // The random stream's order: the router's weights, then the experts', then the estimator's draws.
    const init = { generator: o.generator, device: o.device, dtype: o.dtype };
    this.router = this.child(
      "router",
      new Router(dim, e, { ...init, estimator, bias: o.routerBias, zLossCoef: o.zLossCoef }),
    );
    // A frozen router (a null control) keeps its initial weights: no gradient, so no optimizer update either.
    if (o.frozenRouter) { for (const [, p] of this.router.namedParameters()) p.requiresGrad_(false); }
    this.experts = createExperts(o.expert, e, dim, this.hidden, { ...init, activation: this.activation });
    this.#adopt(this.experts);
    this.shared = o.sharedExperts > 0
      ? this.child(
        "shared",
        createExperts(o.expert, o.sharedExperts, dim, this.hidden, { ...init, activation: this.activation }),
      )
      : null;
    this.omega = o.outputScale ? this.param("omega", ones([dim], init)) : null;
    const like = { device: resolveDevice(o.device), dtype: o.dtype ?? "f32" };
    this.outputTerm = estimator.outputTerm?.(e, dim, like) ?? null;
    if (this.outputTerm) this.#adopt(this.outputTerm);
    this.lossFreeBalance = o.lossFreeBalance ? new LossFreeBalance(e, o.lossFreeBalance.rate, like) : null;
    if (this.lossFreeBalance) this.#adopt(this.lossFreeBalance);
    this.draws = new GeneratorDraws(o.generator);
  }

  /**
   * Registers a part's parameters and buffers as this layer's own, under the part's names (no prefix), so the
   * state-dict keys stay those of the flat layer (`w1`, `defaultVectors`).
   */
  #adopt(part: Module): void {
    for (const [name, t] of part.namedParameters()) this.param(name, t);
    for (const [name, t] of part.namedBuffers()) this.buffer(name, t);
  }

  /** The routing estimator (the router's). */
  get estimator(): Estimator {
    return this.router.estimator;
  }

  /** z-loss coefficient (the router's). */
  get zLossCoef(): number {
    return this.router.zLossCoef;
  }

  /** The layer's buffer `defaultVectors` (Default MoE's `Ê` [E, d], kept by its output term), or null. */
  get defaultVectors(): Tensor | null {
    return this.namedBuffers().find(([name]) => name === "defaultVectors")?.[1] ?? null;
  }

  /** The loss-free balancing bias `b` [E] (buffer `expertBias`; option `lossFreeBalance`), or null. */
  get expertBias(): Tensor | null {
    return this.lossFreeBalance?.bias ?? null;
  }

  /**
   * Moves the loss-free balancing bias by the loads of the training forwards since the last call (see
   * `moe/loss_free_balance.ts`); call it after each `optimizer.step()`. A no-op without `lossFreeBalance`.
   */
  updateExpertBias(): void {
    this.lossFreeBalance?.update();
  }

  /**
   * The experts' weights by name (linear `w` [E,d,d]; ffn `w1` [E,d,h], `b1` [E,h], `w2` [E,h,d], `b2` [E,d];
   * glu `wGate`, `wUp` [E,d,h], `wDown` [E,h,d]).
   *
   * @deprecated Read the typed fields of {@link MoELayer.experts} instead (`layer.experts.w1`, after checking
   * `layer.experts.kind`): a misspelt name there does not compile.
   */
  get weights(): Readonly<Record<string, Tensor>> {
    return Object.freeze(Object.fromEntries(this.experts.namedParameters()));
  }

  /** The experts applied to a batch `x` [E, M, d] (row block i through expert i) → [E, M, d]. */
  runExperts(x: Tensor): Tensor {
    return this.experts.run(x);
  }

  /** Router logits and the estimator's routing for tokens `x` [N, d] (training mode decides sampling). */
  route(x: Tensor, options: MoEForwardOptions = {}): { logits: Tensor; routing: Routing } {
    const selectionBias = this.lossFreeBalance?.bias;
    const tokenIds = options.tokenIds?.reshape(-1);
    return this.router.route(x, {
      training: this.training,
      draws: options.draws ?? this.draws,
      selectionBias,
      tokenIds,
    });
  }

  /**
   * Experts per token K of this layer's routings: E for a dense estimator (straight-through, ST-Gumbel,
   * ReinMax route every token to every expert; their `topK` is 0 unless `numExperts` was given), else the
   * estimator's `topK`.
   */
  get topK(): number {
    return this.#topK(this.estimator);
  }

  #topK(estimator: Estimator): number {
    return estimator.dense ? this.numExperts : estimator.topK;
  }

  /**
   * Per-expert capacity for N tokens (N when dropless) when each token uses `k` experts (default
   * {@link MoELayer.topK}; `dispatch` passes the routing's own K). At least 1 for any N ≥ 1.
   */
  capacity(numTokens: number, k: number = this.topK): number {
    return expertCapacity(numTokens, k, this.numExperts, this.capacityFactor);
  }

  /** `x` [..., d] → `y` [..., d]; stores the routing, metrics and aux loss of this call. */
  forward(x: Tensor, options: MoEForwardOptions = {}): Tensor {
    if (x.shape[x.rank - 1] !== this.dim) {
      throw new RangeError(`MoELayer: input must be [..., ${this.dim}], got [${x.shape.join(", ")}]`);
    }
    const x2 = x.reshape(-1, this.dim);
    const { logits, routing } = this.route(x2, options);
    const y = this.dispatch(x2, routing);
    this.lastLogits = logits;
    this.lastRouting = routing;
    let aux: Tensor | null = null;
    const stats = this.training ? this.balanceStats : null;
    // The counts are accumulated even when coef is 0, so that `balanceStats` always reflects the step's routing.
    stats?.add(routing.experts);
    if (this.training) this.lossFreeBalance?.record(routing.experts);
    if (this.balanceLoss && this.balanceLoss.coef !== 0) {
      const f = this.balanceLoss.form === "switch" ? switchBalanceLoss : topkBalanceLoss;
      const global = stats ?? undefined;
      aux = f(routing.probs, routing.experts, this.numExperts, { global }).mul(this.balanceLoss.coef);
    }
    const z = this.router.zLoss(logits);
    if (z) aux = aux ? aux.add(z) : z;
    this.#aux = aux;
    return y.reshape(...x.shape);
  }

  /**
   * Dispatch → experts → combine (→ the estimator's output term → ω) for tokens `x` [N, d] under a given routing; sets
   * `lastMetrics`. The steps are the functions of `moe/dispatch.ts`; the experts run grouped or padded as the
   * option `dispatch` says.
   */
  dispatch(x: Tensor, routing: Routing): Tensor {
    const [n] = x.shape;
    // K from the routing itself, not the estimator's `topK` (0 for a dense estimator built without
    // `numExperts`): a capacity of 0 made every slot index −1.
    const k = routing.experts.shape[1];
    const plan = planDispatch(routing.experts, {
      numExperts: this.numExperts,
      capacity: Math.min(this.capacity(n, k), routing.maxPerExpert ?? n),
      mode: this.dispatchMode,
      padding: this.padding,
      active: routing.active,
      dtype: x.dtype,
      device: x.device,
    });
    const rows = gatherPairs(this.#runExperts(dispatchRows(x, plan), plan), plan);
    let y = combinePairs(rows, routing.gates, plan);
    if (this.outputTerm) {
      const allExperts = () => this.experts.run(x.unsqueeze(0).expand(this.numExperts, n, this.dim));
      y = y.add(this.outputTerm.terms(rows, routing, plan, this.training, allExperts));
    }
    if (this.shared) y = y.add(this.shared.run(x.unsqueeze(0).expand(this.shared.numExperts, n, this.dim)).sum(0));
    if (this.omega) y = y.mul(this.omega);
    this.lastMetrics = moeLayerMetrics(routing, plan);
    return y;
  }

  /** The experts on the dispatched rows [R, d], in the plan's layout (grouped by offsets, or a padded batch). */
  #runExperts(rows: Tensor, plan: DispatchPlan): Tensor {
    if (plan.mode === "grouped") return this.experts.runGrouped(rows, plan);
    return this.experts.run(rows.reshape(plan.numExperts, plan.capacity, this.dim));
  }

  /** Forgets the counts of a `scope: "global"` balance loss; call it once per optimizer step (no-op otherwise). */
  resetBalanceStats(): void {
    this.balanceStats?.reset();
  }

  /** The aux loss (balance + z) of the latest forward, or null. */
  override auxLoss(): Tensor | null {
    return this.#aux;
  }
}
