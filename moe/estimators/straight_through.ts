/**
 * Dense straight-through family (ESTIMATORS.md §6): Straight-Through, ST-Gumbel-Softmax and ReinMax.
 *
 * All three draw one category `D` per token and output a one-hot-like row over **all** E experts, so they are
 * dense (`dense: true`): `experts` is `[0, 1, …, E−1]` for every token and `gates` is the [N, E] one-hot-like
 * output (its value is exactly `one_hot(D)`, its gradient the estimator's). `probs` is `π₀ = softmax(z)`.
 * `extra.ySoft` holds the soft output (π₀ for ST and ReinMax, the Gumbel-softmax `y` for ST-Gumbel) so a
 * caller can use it downstream; ReinMax combines upstream gradients of both outputs in its custom backward.
 * `stats.sampledNotArgmax` (bool [N]) says whether the sampled `D` differs from `argmax z`.
 *
 * Draws (in order, matching the reference vectors):
 * - Straight-Through / ReinMax: `torch.multinomial(π₀, 1)`, reproduced as one `"uniform"` draw [N, 1] with
 *   call {@link MULTINOMIAL_UNIFORM_CALL}; `D` = first i with `cumsum(π₀)_i > u` (inverse CDF, computed here).
 *   The vector files also log the resulting index under `"torch.multinomial(result index)"`; that entry is
 *   an output of the sampler, not a random number, so estimators never request it (a replaying test can
 *   read it to check `D`).
 * - ST-Gumbel: `"exponential"` [N, E] with call `"Tensor.exponential_"` (Gumbel noise `−log E`).
 *
 * @module
 */
import type { Tensor } from "../../core/tensor.ts";
import type { FloatDType } from "../../core/dtype.ts";
import { OpError } from "../../core/errors.ts";
import { customGradMulti } from "../../core/autograd.ts";
import { arange } from "../../core/ops/creation.ts";
import { oneHot } from "../../core/ops/index.ts";
import type { DrawSource, Estimator, RouteOptions, Routing } from "./estimator.ts";
import {
  reinMaxOptionsSchema,
  schemaDefaults,
  stGumbelOptionsSchema,
  straightThroughOptionsSchema,
} from "./options.ts";
import {
  defineEstimator,
  type EstimatorDescriptor,
  EVERY_EXPERT,
  LOGITS_ONLY,
  type VectorReference,
} from "./descriptor.ts";
import type { Objective } from "../exact_objectives.ts";

// The defaults, from the option schemas (`options.ts`).
const ST_DEFAULTS = schemaDefaults(straightThroughOptionsSchema);
const REINMAX_DEFAULTS = schemaDefaults(reinMaxOptionsSchema);

/** The call name of the uniform behind `torch.multinomial` in the vector logs. */
export const MULTINOMIAL_UNIFORM_CALL = "torch.multinomial(uniform used for inverse-CDF)";
/** The call name of the logged multinomial result (an index, not a draw; never requested by estimators). */
export const MULTINOMIAL_INDEX_CALL = "torch.multinomial(result index)";

function checkLogits(name: string, logits: Tensor): [number, number] {
  if (logits.rank !== 2) throw new OpError(name, `logits must be [N, E], got rank ${logits.rank}`);
  if (logits.dtype !== "f32" && logits.dtype !== "f64") {
    throw new OpError(name, `logits must be f32 or f64, got ${logits.dtype}`);
  }
  return [logits.shape[0], logits.shape[1]];
}

function checkTau(name: string, tau: number, min = 0): number {
  if (!Number.isFinite(tau) || tau <= min) throw new OpError(name, `tau must be finite and > ${min}, got ${tau}`);
  return tau;
}

/** `J(q) g = q ⊙ g − q (qᵀ g)`, row-wise (the softmax VJP at probabilities `q`). */
function softmaxJvp(q: Tensor, g: Tensor): Tensor {
  return q.mul(g).sub(q.mul(q.mul(g).sum(-1, true)));
}

/**
 * Samples `D ~ Categorical(p)` per row by inverse CDF from one uniform per row: `D` = number of i with
 * `cumsum(p)_i ≤ u` (= first i with `cumsum(p)_i > u`), clamped to E − 1 against rounding. i32 [N].
 */
export function sampleMultinomial(p: Tensor, draws: DrawSource): Tensor {
  const [n, e] = [p.shape[0], p.shape[1]];
  const like = { dtype: p.dtype as FloatDType, device: p.device };
  const u = draws.draw("uniform", [n, 1], MULTINOMIAL_UNIFORM_CALL, like);
  const cdf = p.detach().cumsum(-1);
  return cdf.le(u).astype("i32").sum(-1).clamp(0, e - 1).astype("i32");
}

function denseExperts(n: number, e: number, like: Tensor): Tensor {
  return arange(0, e, 1, { dtype: "i32", device: like.device }).reshape(1, e).expand(n, e);
}

/**
 * Options of {@link StraightThroughEstimator} and {@link ReinMaxEstimator} (defaults in their schemas,
 * `options.ts`).
 */
export interface TemperatureOptions {
  /** Temperature τ of the backward softmax (default 1). */
  tau?: number;
}

/**
 * Straight-Through (`st` of the ReinMax examples): `D ~ softmax(z)` (τ not used for sampling), output
 * `D − sg(q) + q` with `q = softmax(z/τ)`, so `∂L/∂z = (1/τ)·J(q)·g_D`. The reference computes in float32;
 * this one computes in the logits' dtype.
 */
export class StraightThroughEstimator implements Estimator {
  /** Registry name. */
  readonly name = "straight-through";
  /** Dense: K = E; the `numExperts` given to the constructor, or 0 when not given (E is known at routing). */
  readonly topK: number;
  /** Dense. */
  readonly dense = true;
  /** Temperature. */
  readonly tau: number;
  /** See {@link TemperatureOptions}; `numExperts` (optional) is reported as `topK`. */
  constructor(options: TemperatureOptions & { numExperts?: number } = {}) {
    this.tau = checkTau("StraightThroughEstimator", options.tau ?? ST_DEFAULTS.tau);
    this.topK = options.numExperts ?? 0;
  }
  /** Routes logits [N, E] (training and evaluation alike: the sample is the output). */
  route(logits: Tensor, options: RouteOptions): Routing {
    const [n, e] = checkLogits("StraightThroughEstimator", logits);
    const probs = logits.softmax(-1);
    const d = sampleMultinomial(probs, options.draws);
    const hard = oneHot(d, e, logits.dtype);
    const q = this.tau === 1 ? probs : logits.div(this.tau).softmax(-1);
    const gates = q.sub(q.detach()).add(hard);
    return {
      experts: denseExperts(n, e, logits),
      gates,
      probs,
      extra: { ySoft: probs },
      stats: { sampledNotArgmax: d.ne(logits.detach().argmax(-1)) },
    };
  }
}

/** Options of {@link StGumbelEstimator}. */
export interface StGumbelOptions {
  /** Temperature τ (> 0). */
  tau: number;
  /** Reported as `topK` (optional). */
  numExperts?: number;
}

/**
 * Straight-Through Gumbel-Softmax (`F.gumbel_softmax(hard=True)`): `y = softmax((z − log E)/τ)` with
 * `E ~ Exp(1)`, `D = argmax y` (ties to the lowest index), output `D − sg(y) + y`, so `∂L/∂z = (1/τ)·J(y)·g_D`.
 */
export class StGumbelEstimator implements Estimator {
  /** Registry name. */
  readonly name = "st-gumbel";
  /** Number of experts if given (dense). */
  readonly topK: number;
  /** Dense. */
  readonly dense = true;
  /** Temperature. */
  readonly tau: number;
  /** See {@link StGumbelOptions}. */
  constructor(options: StGumbelOptions) {
    this.tau = checkTau("StGumbelEstimator", options.tau);
    this.topK = options.numExperts ?? 0;
  }
  /** Routes logits [N, E]. */
  route(logits: Tensor, options: RouteOptions): Routing {
    const [n, e] = checkLogits("StGumbelEstimator", logits);
    const like = { dtype: logits.dtype as FloatDType, device: logits.device };
    const ex = options.draws.draw("exponential", [n, e], "Tensor.exponential_", like);
    const y = logits.sub(ex.log()).div(this.tau).softmax(-1);
    const d = y.detach().argmax(-1);
    const gates = y.sub(y.detach()).add(oneHot(d, e, logits.dtype));
    return {
      experts: denseExperts(n, e, logits),
      gates,
      probs: logits.softmax(-1),
      extra: { ySoft: y },
      stats: { sampledNotArgmax: d.ne(logits.detach().argmax(-1)) },
    };
  }
}

/**
 * ReinMax (Liu et al. 2023): forward `(one_hot(D), π₀)` with `π₀ = softmax(z)`, `D ~ π₀`; custom backward
 * given `g_D` (on `gates`) and `g_π` (on `extra.ySoft`):
 * `∂L/∂z = 2·J(π½)·g_D + J(π₀)·(g_π − ½ g_D)`, `π½ = ½(softmax(z/τ) + one_hot(D))` (no 1/τ factor).
 * τ < 1 is rejected, as in the reference.
 */
export class ReinMaxEstimator implements Estimator {
  /** Registry name. */
  readonly name = "reinmax";
  /** Number of experts if given (dense). */
  readonly topK: number;
  /** Dense. */
  readonly dense = true;
  /** Temperature (≥ 1). */
  readonly tau: number;
  /** See {@link TemperatureOptions}. */
  constructor(options: TemperatureOptions & { numExperts?: number } = {}) {
    const tau = options.tau ?? REINMAX_DEFAULTS.tau;
    if (!(tau >= 1) || !Number.isFinite(tau)) {
      throw new OpError("ReinMaxEstimator", `ReinMax prefers tau >= 1 (got ${tau}); use StGumbelEstimator for tau < 1`);
    }
    this.tau = tau;
    this.topK = options.numExperts ?? 0;
  }
  /** Routes logits [N, E]. */
  route(logits: Tensor, options: RouteOptions): Routing {
    const [n, e] = checkLogits("ReinMaxEstimator", logits);
    const d = sampleMultinomial(logits.detach().softmax(-1), options.draws);
    const hard = oneHot(d, e, logits.dtype);
    const tau = this.tau;
    const op = customGradMulti((z: Tensor, h: Tensor) => {
      const pi0 = z.softmax(-1);
      return {
        value: [h.add(0), pi0],
        grad: ([gD, gPi]) => {
          const piTau = tau === 1 ? pi0 : z.div(tau).softmax(-1);
          const piHalf = piTau.add(h).mul(0.5);
          const gz = softmaxJvp(piHalf, gD).mul(2).add(softmaxJvp(pi0, gPi.sub(gD.mul(0.5))));
          return [gz, null];
        },
      };
    });
    const [gates, ySoft] = op(logits, hard);
    return {
      experts: denseExperts(n, e, logits),
      gates,
      probs: ySoft,
      extra: { ySoft },
      stats: { sampledNotArgmax: d.ne(logits.detach().argmax(-1)) },
    };
  }
}

/**
 * A dense estimator's reference router: with `top_k = E` the layer runs every expert weighted by its entry of
 * the one-hot-valued row; with `top_k = 1` only the sampled expert runs (the replay wraps the estimator).
 */
function denseReference(objects: string[], tol?: { atol: number; rtol: number }): VectorReference {
  return {
    objects,
    topKWords: "1 (the sampled expert) or num_experts (every expert)",
    supports: (k, e) => k === 1 || k === e,
    options: (p) => ({ tau: p.tau ?? 1, numExperts: p.numExperts }),
    multiplier: "gates",
    tol,
  };
}

/** A dense registry entry: options τ and the optional number of experts. */
export type DenseDescriptor<E extends Estimator, N extends string> = EstimatorDescriptor<
  { tau: number; numExperts?: number },
  E,
  N
>;

const denseCommon = {
  routing: "dense",
  topK: EVERY_EXPERT,
  needs: LOGITS_ONLY,
  capacity: "every token is a pair of every expert (K = E): pairs past ceil(capacityFactor · N) are dropped (gate × 0)",
  // Forward value one_hot(D), D ~ softmax(z): the expected loss Σ_i π_i f(h_i).
  objective: (): Objective => ({ kind: "onehot" }),
} as const;

/** The registry entry `straight-through`. */
export const straightThroughDescriptor: DenseDescriptor<StraightThroughEstimator, "straight-through"> = defineEstimator(
  {
    name: "straight-through",
    summary: "Straight-through: one-hot sample forward, softmax(z/τ) gradient; dense",
    options: straightThroughOptionsSchema,
    create: (options) => new StraightThroughEstimator(options),
    ...denseCommon,
    sweep: { param: "tau", min: 0, options: (tau) => ({ tau }) },
    // The reference `st()` computes in float32 (vectors/README.md quirk 5).
    vectorFiles: [{ pattern: /^Straight-Through \(/, format: "multinomial-dense", tol: { atol: 1e-6, rtol: 1e-6 } }],
    references: [denseReference(["st"], { atol: 1e-6, rtol: 1e-6 })],
  },
);

/** The registry entry `st-gumbel`. */
export const stGumbelDescriptor: DenseDescriptor<StGumbelEstimator, "st-gumbel"> = defineEstimator({
  name: "st-gumbel",
  summary: "Straight-through Gumbel-softmax; dense",
  options: stGumbelOptionsSchema,
  create: (options) => new StGumbelEstimator(options),
  ...denseCommon,
  sweep: { param: "tau", min: 0, options: (tau) => ({ tau }) },
  vectorFiles: [{ pattern: /^Straight-Through Gumbel-Softmax\b/, format: "gumbel-dense" }],
  references: [denseReference(["gumbel_softmax", "F.gumbel_softmax", "torch.nn.functional.gumbel_softmax"])],
});

/** The registry entry `reinmax`. */
export const reinMaxDescriptor: DenseDescriptor<ReinMaxEstimator, "reinmax"> = defineEstimator({
  name: "reinmax",
  summary: "ReinMax (second-order straight-through, τ ≥ 1); dense",
  options: reinMaxOptionsSchema,
  create: (options) => new ReinMaxEstimator(options),
  ...denseCommon,
  sweep: { param: "tau", min: 1, options: (tau) => ({ tau }) },
  vectorFiles: [{ pattern: /^ReinMax\b/, format: "multinomial-dense" }],
  references: [denseReference(["reinmax"])],
});
