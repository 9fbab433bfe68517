/**
 * `MoELayer`: router (linear, optional bias) → estimator (experts + gate multipliers, custom gradient) →
 * dispatch → experts → combine, all through public ops so autograd reaches the router, the experts, the input
 * and the optional output scale ω.
 *
 * ## Dispatch (no host sync)
 * The (token, slot) pairs are flattened (pair `j = t·K + k`), stably sorted by expert, and each sorted pair
 * gets its position inside its expert's group (`j − offset[expert]`, offsets = exclusive cumsum of the
 * per-expert counts). Pairs are scattered (`indexAdd`) into a padded buffer `[E, C, d]` at row
 * `expert·C + position`, the experts run as ONE batched matmul chain `[E, C, d] @ [E, d, h] …`, the rows of
 * the real pairs are gathered back (`indexSelect`), multiplied by their gates and combined per token with
 * `indexAdd`.
 *
 * The static capacity is: dropless `C = N` (an expert can receive each token at most once, because
 * estimators pick distinct experts per token); with a capacity factor, `C = ceil(capacityFactor · N · K / E)`.
 * Where the counts can be read for free (the CPU backend, which reads synchronously), the buffer is cut to the
 * busiest expert's load, `min(C, max_e count_e)` rows (`padding: "max-load"`, the default there): the same
 * rows in the same order minus all-zero padding, so the results are the same (bit for bit in f64; in f32 the CPU
 * may pick a different matmul kernel for the shorter buffer, which rounds differently) and the expert matmuls cost about
 * `(1 + imbalance)`× an exact grouped GEMM instead of `E/K`×. On WebGPU reading the counts back would be a
 * CPU↔GPU sync (≥ 10 ms), so the default there is the static `C` (`padding: "static"`), sync-free but
 * `E/K`× the FLOPs when dropless. With a capacity factor the buffer uses `min(C, N)` rows and pairs whose
 * position is ≥ C — the latest tokens of an over-full expert, since the stable sort keeps token order — are
 * dropped: their gate is multiplied by 0, so the slot contributes nothing (the residual of the surrounding
 * block carries the token), and the number dropped is reported in {@link MoELayer.lastMetrics}.
 *
 * ## Default MoE (Panda et al. 2025, ESTIMATORS.md §7.4)
 * With `defaultMoe: { beta }` the sparse top-K forward is kept, and every expert that a token did NOT activate
 * contributes its default vector `Ê_i` (buffer `defaultVectors` [E, d], zero-initialised):
 * `y = Σ_{i∈TopK} π_i E_i(x) + Σ_{i∉TopK} π_i Ê_i`, with `π = softmax(z)` over all E experts. `Ê` is a constant
 * (no gradient), so `∂y/∂π_i = Ê_i` for inactive experts and the router gets a dense gradient. In training, the
 * forward first updates `Ê_i ← β Ê_i + (1−β)·mean_{x routed to i} E_i(x)` (plain mean over the kept pairs of
 * this call; experts with no kept pair keep their `Ê_i`; the paper's router-probability-weighted variant is not
 * implemented), then uses the new `Ê`; in evaluation `Ê` is read, not updated. A capacity-dropped pair counts as
 * inactive (its expert did not run on it), so it gets the default term. Selection is the `topk` estimator's;
 * its top-K weights are NOT renormalised by default here (the paper does not say, and unrenormalised weights
 * keep `Σ_i π_i = 1` over active + default terms) — pass `estimatorOptions: { renormalize: true }` to
 * renormalise the active weights (the default terms keep the raw `π_i`). It is a layer option, not a registry
 * estimator, because an estimator only sees logits, while Default MoE needs the experts' outputs and state.
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
import type { Device } from "../core/device.ts";
import type { FloatDType } from "../core/dtype.ts";
import { Generator } from "../core/random/generator.ts";
import { noGrad } from "../core/autograd.ts";
import { arange, ones, zeros } from "../core/ops/creation.ts";
import { oneHot } from "../core/ops/index.ts";
import { Linear, Module } from "../nn/mod.ts";
import { uniform } from "../nn/init.ts";
import { type DrawSource, type Estimator, GeneratorDraws, type Routing } from "./estimators/estimator.ts";
import { createEstimator } from "./estimators/registry.ts";
import { TopKEstimator } from "./estimators/topk.ts";
import { jitterRouterInput, SwitchEstimator } from "./estimators/switch.ts";
import { BalanceStats, routerZLoss, switchBalanceLoss, topkBalanceLoss } from "./aux_losses.ts";
import { type RoutingMetrics, routingMetrics } from "./metrics.ts";

/**
 * Load-balancing loss settings of {@link MoELayer}: `coef · E · Σ_i f_i · P̄_i`, with `P̄_i` the mean router
 * probability of expert i over this forward's tokens (the only path of the gradient) and `f_i` the fraction of
 * hard assignments `counts_i / N` (every (token, slot) pair routed to i counts; N = tokens, not slots).
 *
 * Normalisation (before `coef`): `form: "switch"` (top-1 only) is the Switch Transformer loss, 1 at perfectly
 * uniform routing; `form: "topk"` is the Mixtral/transformers top-k formula (f sums the K slots), K at perfectly
 * uniform routing (so it equals the switch form when K = 1).
 *
 * `scope: "local"` (default) uses this forward's `f`. `scope: "global"` balances over the whole optimizer step,
 * as a loss whose `f` is all-reduced over micro-batches / data-parallel ranks (GRIN, ESTIMATORS.md §5.5): the
 * layer owns a {@link BalanceStats} ({@link MoELayer.balanceStats}); every training forward adds its hard
 * assignments to it and then uses `f = accumulated counts / accumulated tokens` (P̄ still from the current
 * micro-batch). Call {@link MoELayer.resetBalanceStats} once per optimizer step (before its first
 * micro-batch), or the counts keep accumulating across steps. In evaluation the counts are not updated and the
 * local `f` is used. For data parallelism, all-reduce the stats' counts across ranks yourself (e.g. `add()` the
 * other ranks' assignments) before the loss is needed.
 */
export interface BalanceLossConfig {
  /** Loss coefficient α (0 disables the loss). */
  coef: number;
  /** `"switch"` (top-1; 1 at uniform routing) or `"topk"` (K at uniform routing). */
  form: "switch" | "topk";
  /** `"local"` (default): this forward's f; `"global"`: f from the counts accumulated since the last reset. */
  scope?: "local" | "global";
}

/** Expert architectures: two-layer MLP (with biases), gated GLU (no biases), or one bias-free d×d matrix. */
export type ExpertKind = "ffn" | "glu" | "linear";

/** Options of {@link MoELayer}. */
export interface MoELayerOptions {
  /** Number of experts E. */
  numExperts: number;
  /** Expert hidden width (ignored by `"linear"`; default 4·d). */
  hidden?: number;
  /** Expert architecture (default `"ffn"`). */
  expert?: ExpertKind;
  /** Expert nonlinearity: ffn `"gelu"` (default) / `"relu"`; glu `"silu"` (default) / `"gelu"`. */
  activation?: "gelu" | "relu" | "silu";
  /** An estimator instance or registry name (default `"topk"`). */
  estimator?: Estimator | string;
  /** Options for a registry name (see `createEstimator`). */
  estimatorOptions?: Record<string, unknown>;
  /** Router bias (default false). */
  routerBias?: boolean;
  /** SparseMixer's learnable output scale ω ∈ R^d (init 1), applied as `y ⊙ ω` (default false). */
  outputScale?: boolean;
  /** Undefined: dropless. Otherwise capacity `ceil(capacityFactor · N · K / E)` per expert. */
  capacityFactor?: number;
  /** Load-balancing loss stored by `forward` and returned by `auxLoss()` (see {@link BalanceLossConfig} for the
   * normalisation — 1 at uniform routing for switch top-1, K for top-k — and the local / global scope). */
  balanceLoss?: BalanceLossConfig;
  /** Router z-loss coefficient (default none). */
  zLossCoef?: number;
  /** Device of the weights. */
  device?: Device | string;
  /** Weights dtype (default f32). */
  dtype?: FloatDType;
  /** Weight init stream, also the default draw source of the estimator. */
  generator?: Generator;
  /** Default MoE (see the module docs): EMA factor `beta` ∈ [0, 1) of the default vectors; needs `topk`. */
  defaultMoe?: { beta: number };
  /**
   * Rows per expert in the dispatch buffer: `"max-load"` reads the per-expert counts and pads only to the
   * busiest expert (no extra FLOPs beyond the imbalance; a host read), `"static"` uses the capacity `C` without
   * reading anything (sync-free). Default `"auto"`: max-load on devices that read synchronously (CPU), static
   * elsewhere. Results agree either way (bit for bit in f64, to f32 rounding in f32).
   */
  padding?: "auto" | "max-load" | "static";
}

/** Options of {@link MoELayer.forward}. */
export interface MoEForwardOptions {
  /** Random draws for this call (default: the layer's `GeneratorDraws`). */
  draws?: DrawSource;
}

/** {@link routingMetrics} plus the dispatch's dropping (scalars, no host sync). */
export interface MoELayerMetrics extends RoutingMetrics {
  /** Number of dropped (token, slot) pairs (float scalar). */
  dropped: Tensor;
  /** `dropped / (N·K)`. */
  droppedFraction: Tensor;
}

/** A Mixture-of-Experts layer (see the module docs for the dispatch). */
export class MoELayer extends Module {
  /** Model width d. */
  readonly dim: number;
  /** Number of experts E. */
  readonly numExperts: number;
  /** Expert hidden width (d for `"linear"`). */
  readonly hidden: number;
  /** Expert architecture. */
  readonly expert: ExpertKind;
  /** Expert nonlinearity. */
  readonly activation: "gelu" | "relu" | "silu";
  /** The router, `Linear(d, E)`, weight [d, E]. */
  readonly router: Linear;
  /** The routing estimator. */
  readonly estimator: Estimator;
  /** Batched expert weights by name: linear `w` [E,d,d]; ffn `w1` [E,d,h], `b1` [E,h], `w2` [E,h,d], `b2` [E,d];
   * glu `wGate`, `wUp` [E,d,h], `wDown` [E,h,d]. */
  readonly weights: Readonly<Record<string, Tensor>>;
  /** ω [d], or null. */
  readonly omega: Tensor | null;
  /** Capacity factor (undefined = dropless). */
  readonly capacityFactor: number | undefined;
  /** Balance loss settings (`scope` filled in, default `"local"`). */
  readonly balanceLoss: Required<BalanceLossConfig> | undefined;
  /** The counts accumulated for a `scope: "global"` balance loss (null otherwise); see {@link BalanceLossConfig}. */
  readonly balanceStats: BalanceStats | null;
  /** z-loss coefficient. */
  readonly zLossCoef: number;
  /** Default draw source. */
  readonly draws: DrawSource;
  /** Dispatch-buffer padding policy (see {@link MoELayerOptions.padding}). */
  readonly padding: "auto" | "max-load" | "static";
  /** Default MoE's EMA factor β, or null when the option is off. */
  readonly defaultMoeBeta: number | null;
  /** Default MoE's default vectors `Ê` [E, d] (a buffer), or null when the option is off. */
  readonly defaultVectors: Tensor | null;
  /** Routing of the latest forward. */
  lastRouting: Routing | null = null;
  /** Router logits [N, E] of the latest forward. */
  lastLogits: Tensor | null = null;
  /** Metrics of the latest forward (tensors; read them when you want). */
  lastMetrics: MoELayerMetrics | null = null;
  #aux: Tensor | null = null;

  /** Creates the router and the batched expert weights. */
  constructor(dim: number, options: MoELayerOptions) {
    super();
    const e = options.numExperts;
    if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`MoELayer: dim must be a positive integer, got ${dim}`);
    if (!Number.isInteger(e) || e < 1) {
      throw new RangeError(`MoELayer: numExperts must be a positive integer, got ${e}`);
    }
    this.dim = dim;
    this.numExperts = e;
    this.expert = options.expert ?? "ffn";
    if (!["ffn", "glu", "linear"].includes(this.expert)) {
      throw new TypeError(`MoELayer: expert must be "ffn", "glu" or "linear", got ${JSON.stringify(this.expert)}`);
    }
    this.hidden = this.expert === "linear" ? dim : options.hidden ?? 4 * dim;
    if (!Number.isInteger(this.hidden) || this.hidden < 1) {
      throw new RangeError(`MoELayer: hidden must be a positive integer, got ${options.hidden}`);
    }
    this.activation = options.activation ?? (this.expert === "glu" ? "silu" : "gelu");
    const allowed = this.expert === "glu" ? ["silu", "gelu"] : this.expert === "ffn" ? ["gelu", "relu"] : [
      this.activation,
    ];
    if (!allowed.includes(this.activation)) {
      throw new TypeError(`MoELayer: activation of "${this.expert}" experts must be one of ${allowed.join(", ")}`);
    }
    const cf = options.capacityFactor;
    if (cf !== undefined && !(cf > 0 && Number.isFinite(cf))) {
      throw new RangeError(`MoELayer: capacityFactor must be a finite number > 0, got ${cf}`);
    }
    this.capacityFactor = cf;
    const bl = options.balanceLoss;
    if (
      bl &&
      (!(Number.isFinite(bl.coef)) || (bl.form !== "switch" && bl.form !== "topk") ||
        (bl.scope !== undefined && bl.scope !== "local" && bl.scope !== "global"))
    ) {
      throw new TypeError(
        `MoELayer: balanceLoss must be { coef: number, form: "switch" | "topk", scope?: "local" | "global" }`,
      );
    }
    this.balanceLoss = bl ? { coef: bl.coef, form: bl.form, scope: bl.scope ?? "local" } : undefined;
    this.balanceStats = bl?.scope === "global" ? new BalanceStats(e) : null;
    this.padding = options.padding ?? "auto";
    if (!["auto", "max-load", "static"].includes(this.padding)) {
      throw new TypeError(
        `MoELayer: padding must be "auto", "max-load" or "static", got ${JSON.stringify(options.padding)}`,
      );
    }
    this.zLossCoef = options.zLossCoef ?? 0;
    if (!Number.isFinite(this.zLossCoef)) throw new TypeError(`MoELayer: zLossCoef must be a finite number`);

    const generator = options.generator ?? new Generator(0);
    const init = { generator, device: options.device, dtype: options.dtype };
    this.router = this.child("router", new Linear(dim, e, { ...init, bias: options.routerBias ?? false }));
    const est = options.estimator ?? "topk";
    const dm = options.defaultMoe;
    if (dm !== undefined) {
      const beta = dm?.beta;
      if (typeof beta !== "number" || !(beta >= 0 && beta < 1)) {
        throw new RangeError(`MoELayer: defaultMoe.beta must be a number in [0, 1), got ${JSON.stringify(beta)}`);
      }
    }
    const estOptions = dm && est === "topk"
      ? { renormalize: false, ...options.estimatorOptions }
      : options.estimatorOptions;
    this.estimator = typeof est === "string" ? createEstimator(est, estOptions) : est;
    if (this.estimator.dense && this.estimator.topK !== 0 && this.estimator.topK !== e) {
      throw new TypeError(
        `MoELayer: the dense estimator "${this.estimator.name}" was built for ${this.estimator.topK} experts, the layer has ${e}`,
      );
    }
    if (dm && !(this.estimator instanceof TopKEstimator)) {
      throw new TypeError(`MoELayer: defaultMoe needs the "topk" estimator, got "${this.estimator.name}"`);
    }
    this.defaultMoeBeta = dm ? dm.beta : null;
    this.defaultVectors = dm
      ? this.buffer("defaultVectors", zeros([e, dim], { device: options.device, dtype: options.dtype }))
      : null;
    if (bl?.form === "switch" && this.topK !== 1) {
      throw new TypeError(
        `MoELayer: the "switch" balance loss needs top-1 routing, the estimator has K = ${this.topK}`,
      );
    }
    // PyTorch nn.Linear-style init per expert: uniform ±1/√fan_in.
    const u = (shape: number[], fanIn: number) => uniform(shape, -1 / Math.sqrt(fanIn), 1 / Math.sqrt(fanIn), init);
    const h = this.hidden;
    const w: Record<string, Tensor> = {};
    if (this.expert === "linear") {
      w.w = this.param("w", u([e, dim, dim], dim));
    } else if (this.expert === "ffn") {
      w.w1 = this.param("w1", u([e, dim, h], dim));
      w.b1 = this.param("b1", u([e, h], dim));
      w.w2 = this.param("w2", u([e, h, dim], h));
      w.b2 = this.param("b2", u([e, dim], h));
    } else {
      w.wGate = this.param("wGate", u([e, dim, h], dim));
      w.wUp = this.param("wUp", u([e, dim, h], dim));
      w.wDown = this.param("wDown", u([e, h, dim], h));
    }
    this.weights = w;
    this.omega = options.outputScale ? this.param("omega", ones([dim], init)) : null;
    this.draws = new GeneratorDraws(generator);
  }

  /** The experts applied to a batch `x` [E, M, d] (row block i through expert i) → [E, M, d]. */
  runExperts(x: Tensor): Tensor {
    const w = this.weights;
    if (this.expert === "linear") return x.matmul(w.w);
    if (this.expert === "ffn") {
      const a = x.matmul(w.w1).add(w.b1.unsqueeze(1));
      return act(a, this.activation).matmul(w.w2).add(w.b2.unsqueeze(1));
    }
    return act(x.matmul(w.wGate), this.activation).mul(x.matmul(w.wUp)).matmul(w.wDown);
  }

  /** Router logits and the estimator's routing for tokens `x` [N, d] (training mode decides sampling). */
  route(x: Tensor, options: MoEForwardOptions = {}): { logits: Tensor; routing: Routing } {
    const draws = options.draws ?? this.draws;
    const est = this.estimator;
    const input = this.training && est instanceof SwitchEstimator && est.variant === "input"
      ? jitterRouterInput(x, est.jitterEps, draws)
      : x;
    const logits = this.router.forward(input);
    return { logits, routing: est.route(logits, { training: this.training, draws }) };
  }

  /**
   * Experts per token K of this layer's routings: E for a dense estimator (straight-through, ST-Gumbel,
   * ReinMax route every token to every expert; their `topK` is 0 unless `numExperts` was given), else the
   * estimator's `topK`.
   */
  get topK(): number {
    return this.estimator.dense ? this.numExperts : this.estimator.topK;
  }

  /**
   * Per-expert capacity for N tokens (N when dropless) when each token uses `k` experts (default
   * {@link MoELayer.topK}; `dispatch` passes the routing's own K). At least 1 for any N ≥ 1.
   */
  capacity(numTokens: number, k: number = this.topK): number {
    return this.capacityFactor === undefined
      ? numTokens
      : Math.ceil(this.capacityFactor * numTokens * k / this.numExperts);
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
    if (this.balanceLoss && this.balanceLoss.coef !== 0) {
      const f = this.balanceLoss.form === "switch" ? switchBalanceLoss : topkBalanceLoss;
      const global = stats ?? undefined;
      aux = f(routing.probs, routing.experts, this.numExperts, { global }).mul(this.balanceLoss.coef);
    }
    if (this.zLossCoef !== 0) {
      const z = routerZLoss(logits).mul(this.zLossCoef);
      aux = aux ? aux.add(z) : z;
    }
    this.#aux = aux;
    return y.reshape(...x.shape);
  }

  /** Dispatch → experts → combine for tokens `x` [N, d] under a given routing; sets `lastMetrics`. */
  dispatch(x: Tensor, routing: Routing): Tensor {
    const [n, d] = x.shape;
    const e = this.numExperts;
    const k = routing.experts.shape[1];
    const nk = n * k;
    // K from the routing itself, not the estimator's `topK` (0 for a dense estimator built without
    // `numExperts`): a capacity of 0 made every slot index −1.
    let cap = Math.min(this.capacity(n, k), n);
    const like = { dtype: x.dtype, device: x.device };
    const idx = noGrad(() => {
      const flat = routing.experts.reshape(nk);
      const order = flat.argsort(); // stable: ties keep pair order, i.e. token order
      const sortedE = flat.indexSelect(0, order);
      const counts = oneHot(flat, e, "i32").sum(0);
      const readsFree = x.device.backend.readSync !== undefined;
      if (this.padding === "max-load" && !readsFree) {
        throw new TypeError(
          `MoELayer: padding "max-load" needs a device that reads synchronously (cpu), got ${x.device.name}`,
        );
      }
      if (this.padding === "max-load" || (this.padding === "auto" && readsFree)) {
        // Rows past the busiest expert's load are all zero padding: dropping them changes no result.
        let maxLoad = 0;
        for (const c of counts.dataSync()) maxLoad = Math.max(maxLoad, c);
        cap = Math.max(1, Math.min(cap, maxLoad));
      }
      const offsets = counts.cumsum(0).sub(counts); // exclusive
      const pos = arange(0, nk, 1, { dtype: "i32", device: x.device }).sub(offsets.indexSelect(0, sortedE));
      const keep = pos.lt(cap);
      const slot = sortedE.mul(cap).add(pos.minimum(cap - 1));
      const token = arange(0, n, 1, { dtype: "i32", device: x.device }).reshape(n, 1).expand(n, k).reshape(nk)
        .indexSelect(0, order);
      const keepF = keep.astype(x.dtype);
      return { order, slot, token, keepF, dropped: keepF.neg().add(1).sum() };
    });
    const xs = x.indexSelect(0, idx.token).mul(idx.keepF.unsqueeze(1));
    const buf = zeros([e * cap, d], like).indexAdd(0, idx.slot, xs).reshape(e, cap, d);
    const h = this.runExperts(buf).reshape(e * cap, d).indexSelect(0, idx.slot);
    const g = routing.gates.reshape(nk).indexSelect(0, idx.order).mul(idx.keepF);
    let y = zeros([n, d], like).indexAdd(0, idx.token, h.mul(g.unsqueeze(1)));
    if (this.defaultVectors) y = y.add(this.#defaultTerms(h, routing, idx, n));
    if (this.omega) y = y.mul(this.omega);
    this.lastMetrics = {
      ...routingMetrics(routing),
      dropped: idx.dropped,
      droppedFraction: noGrad(() => idx.dropped.div(nk)),
    };
    return y;
  }

  /** Default MoE: updates `Ê` (training only) from the kept pairs' expert outputs `h`, returns `Σ_{i∉TopK} π_i Ê_i`. */
  #defaultTerms(
    h: Tensor,
    routing: Routing,
    idx: { order: Tensor; token: Tensor; keepF: Tensor },
    n: number,
  ): Tensor {
    const e = this.numExperts;
    const nk = idx.order.shape[0];
    const ehat = this.defaultVectors!;
    const beta = this.defaultMoeBeta!;
    const like = { dtype: h.dtype, device: h.device };
    // The product below uses a copy of Ê: a later forward's in-place EMA update must not change what this
    // call's backward reads.
    let used = ehat;
    const inactive = noGrad(() => {
      const sortedE = routing.experts.reshape(nk).indexSelect(0, idx.order);
      if (this.training) {
        const keep = idx.keepF.unsqueeze(1);
        const sums = zeros([e, this.dim], like).indexAdd(0, sortedE, h.detach().mul(keep));
        const counts = zeros([e], like).indexAdd(0, sortedE, idx.keepF).unsqueeze(1);
        const mean = sums.div(counts.maximum(1));
        const step = counts.gt(0).astype(h.dtype).mul(1 - beta); // experts without tokens keep Ê
        used = ehat.add(mean.sub(ehat).mul(step));
        ehat.assign_(used);
      } else {
        used = ehat.clone();
      }
      const cell = idx.token.mul(e).add(sortedE);
      return zeros([n * e], like).indexAdd(0, cell, idx.keepF).neg().add(1).reshape(n, e);
    });
    return routing.probs.mul(inactive).matmul(used);
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

function act(x: Tensor, name: string): Tensor {
  return name === "relu" ? x.relu() : name === "silu" ? x.silu() : x.gelu();
}
