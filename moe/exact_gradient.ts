/**
 * Exact-gradient harness for routing estimators (ESTIMATORS.md §4.1): for one token with a few experts, the
 * TRUE gradient of the expected loss, computed by enumerating the experts and differentiating with autograd
 * in f64, against the mean of an estimator's per-draw gradients over many independent draws.
 *
 * Setting: expert outputs `h_i ∈ R^d` (fixed, `experts` [E, d]), a smooth downstream function `f: R^d → R`
 * (applied row-wise: [M, d] → [M]) and router logits `z ∈ R^E`.
 *
 * - `"sampled"` objective (SparseMixer family): `D ~ π = MaskedSoftmax(z)` with the mask held fixed,
 *   `L(z) = Σ_i π_i f(π_i h_i)` and
 *   `∇L = Σ_i π_i ∂f(π_i h_i)/∂z  +  Σ_i [f(π_i h_i) − f(0)] ∂π_i/∂z` (gating term + routing term; the
 *   `f(0)` baseline is free because `Σ_i ∂π_i/∂z = 0`).
 * - `"argmax"` objective (Switch-style deterministic routing, no jitter): `D = a = argmax z`,
 *   `L(z) = f(p_a h_a)` with `p = softmax(z)`; the routing "distribution" δ_a is locally constant in `z`, so the
 *   routing term is identically 0 and `∇L` is the gating term alone.
 *
 * The estimator is run on a batch of M copies of the token at once ([M, E] logits); the per-row gradients of
 * `Σ_m f(Σ_k gate_mk · h_{D_mk})` are M independent draws of its gradient.
 *
 * `estimatorBias` (`estimator_bias.ts`) compares the two for an estimator.
 *
 * @example
 * ```ts
 * import { exactTerms, tensor } from "@moegrad/moegrad";
 * const w = tensor([1, -2], { dtype: "f64" });
 * const t = exactTerms({
 *   logits: tensor([1, 0.9, 0.85, -0.5], { dtype: "f64" }),
 *   experts: tensor([[1, 0], [0, 1], [1, 1], [2, -1]], { dtype: "f64" }),
 *   f: (v) => v.mul(w).sum(-1),
 *   jitterEps: 0.1,
 * });
 * console.log(t.total.length, t.probs[3]); // 4 0 (the last expert is masked)
 * ```
 *
 * @module
 */
import { Tensor } from "../core/tensor.ts";
import { gradients, noGrad } from "../core/autograd.ts";
import { tensor, zeros } from "../core/ops/creation.ts";
import { OpError } from "../core/errors.ts";
import { Generator } from "../core/random/generator.ts";
import { type Estimator, GeneratorDraws, type RouteOptions, type Routing } from "./estimators/estimator.ts";
import { gumbelArgmax, jitterMask, maskedSoftmax, maskLogits } from "./estimators/mask.ts";

/** A downstream function, row-wise: [M, d] → [M]. Must be differentiable (ordinary autograd ops). */
export type Downstream = (v: Tensor) => Tensor;

/** Which expected loss the true gradient is taken of (see the module documentation). */
export type ExactObjective = "sampled" | "argmax";

/** The true gradient of one objective and its two terms, each a plain array of length E. */
export interface ExactTerms {
  /** ∇L by autograd of the enumerated objective. */
  total: number[];
  /** Σ_i q_i ∂f(p_i h_i)/∂z (q = routing distribution, p = gate probabilities); what a gating gradient sees. */
  gating: number[];
  /** Σ_i [f(p_i h_i) − f(0)] ∂q_i/∂z (0 for the argmax objective). */
  routing: number[];
  /** The routing distribution q (π, or one-hot at the argmax). */
  probs: number[];
}

function logitsRow(logits: Tensor): Tensor {
  if (logits.rank === 1) return logits.reshape([1, logits.shape[0]]);
  if (logits.rank === 2 && logits.shape[0] === 1) return logits;
  throw new OpError("exactGradient", `logits must be [E] or [1, E] (one token), got [${logits.shape.join(", ")}]`);
}

function values(t: Tensor): number[] {
  return Array.from(t.dataSync(), Number);
}

function checkInputs(logits: Tensor, experts: Tensor): { z: Tensor; h: Tensor; e: number; d: number } {
  const z = logitsRow(logits).astype("f64").detach();
  const e = z.shape[1];
  if (experts.rank !== 2 || experts.shape[0] !== e) {
    throw new OpError("exactGradient", `experts must be [E = ${e}, d], got [${experts.shape.join(", ")}]`);
  }
  return { z, h: experts.astype("f64").detach(), e, d: experts.shape[1] };
}

/**
 * The true gradient of the expected loss and its gating / routing terms, enumerating the experts
 * (f64, autograd). `jitterEps` is the mask width of the `"sampled"` objective (the mask is computed once at
 * `logits` and held fixed; default 0.1); it is ignored by `"argmax"`.
 */
export function exactTerms(options: {
  logits: Tensor;
  experts: Tensor;
  f: Downstream;
  objective?: ExactObjective;
  jitterEps?: number;
}): ExactTerms {
  const { z: z0, h, e, d } = checkInputs(options.logits, options.experts);
  const objective = options.objective ?? "sampled";
  const f = options.f;
  const z = z0.requiresGrad_();
  const f0 = noGrad(() => f(zeros([1, d], { dtype: "f64" })).reshape([]));
  let p: Tensor; // gate probabilities [1, E]
  let q: Tensor; // routing distribution [1, E] (differentiable or constant)
  if (objective === "sampled") {
    p = maskedSoftmax(z, jitterMask(z, options.jitterEps ?? 0.1));
    q = p;
  } else if (objective === "argmax") {
    p = z.softmax(-1);
    const a = values(noGrad(() => z.detach().argmax(-1)))[0];
    q = tensor([Array.from({ length: e }, (_, i) => (i === a ? 1 : 0))], { dtype: "f64" });
  } else {
    throw new OpError("exactTerms", `objective must be "sampled" or "argmax", got ${String(objective)}`);
  }
  const pcol = p.reshape([e, 1]);
  const fx = f(pcol.mul(h)).reshape([e]); // f(p_i h_i), i = 0..E−1
  const qv = q.reshape([e]);
  const total = qv.mul(fx).sum();
  const gating = qv.detach().mul(fx).sum();
  const routing = fx.detach().sub(f0).mul(qv).sum();
  // The three losses share p and f(p·h): each pass keeps the graph for the next (backward frees it otherwise).
  const [gTotal, gGating, gRouting] = [total, gating, routing].map((l) =>
    l.requiresGrad ? values(gradients(l, [z], undefined, { retainGraph: true })[0]) : new Array<number>(e).fill(0)
  );
  return { total: gTotal, gating: gGating, routing: gRouting, probs: values(q.detach()) };
}

/** Options of {@link sampleGradients}: the estimator, one token's problem and the draws. */
export interface SampleGradientsOptions {
  /** The estimator under test (sparse, or dense: then `y = Σ_i gate_i h_i` over every expert). */
  estimator: Estimator;
  /** One token's router logits, [E] or [1, E]. */
  logits: Tensor;
  /** Expert outputs h_i, [E, d]. */
  experts: Tensor;
  /** Downstream function, row-wise [M, d] → [M]. */
  f: Downstream;
  /** Number of independent draws M (≥ 2). */
  draws: number;
  /** Seed of the Generator the draws come from (default 0). */
  seed?: number;
  /** Route in training mode (default true). */
  training?: boolean;
}

/**
 * Per-draw gradients of `f(Σ_k gate_k · h_{D_k})` with respect to the logits, for M independent draws routed
 * as one [M, E] batch: returns [M, E] as rows of numbers. A dense estimator's gates are a row over every expert,
 * `y = Σ_i gate_i h_i`.
 */
export function sampleGradients(options: SampleGradientsOptions): number[][] {
  const { estimator, f } = options;
  const m = options.draws;
  if (!Number.isInteger(m) || m < 2) throw new OpError("sampleGradients", `draws must be an integer ≥ 2, got ${m}`);
  const { z: z0, h, e, d } = checkInputs(options.logits, options.experts);
  const zb = z0.expand(m, e).add(0).detach().requiresGrad_(); // M independent copies (contiguous)
  const route: RouteOptions = {
    training: options.training ?? true,
    draws: new GeneratorDraws(new Generator(options.seed ?? 0)),
  };
  const r: Routing = estimator.route(zb, route);
  const k = r.gates.shape[1];
  // A dense estimator's gates are a row over all E experts in expert order (its `experts` may be anything).
  const y = estimator.dense
    ? r.gates.matmul(h) // [M, E] @ [E, d]
    : r.gates.reshape([m, k, 1]).mul(h.indexSelect(0, r.experts.reshape([m * k]).astype("i32")).reshape([m, k, d]))
      .sum(1); // [M, d]
  const loss = f(y).sum();
  const g = values(gradients(loss, [zb])[0]);
  return Array.from({ length: m }, (_, i) => g.slice(i * e, (i + 1) * e));
}

/**
 * The plain gating gradient under sampling ("gating gradient as a proxy", GRIN §3.1), as a reference
 * estimator: `D ~ MaskedSoftmax(z)` by Gumbel-max (one `Tensor.exponential_` [N, E] draw), gate `π_D` with
 * ordinary autograd. Its expected gradient is exactly the gating term `Σ_i π_i ∂f(π_i h_i)/∂z` of the sampled
 * objective — it never sees the routing term. Not in the registry (it is a measuring device, not a method).
 */
export class GatingProxyEstimator implements Estimator {
  /** Name. */
  readonly name = "gating-proxy";
  /** Top-1. */
  readonly topK = 1;
  /** Sparse. */
  readonly dense = false;
  /** Mask width ε. */
  readonly jitterEps: number;
  /** ε defaults to 0.1. */
  constructor(options: { jitterEps?: number } = {}) {
    this.jitterEps = options.jitterEps ?? 0.1;
  }
  /** See {@link Estimator.route}; eval routes to the argmax. */
  route(logits: Tensor, options: RouteOptions): Routing {
    if (!(logits instanceof Tensor) || logits.rank !== 2) throw new OpError(this.name, "logits must be [N, E]");
    const excluded = jitterMask(logits, this.jitterEps);
    const probs = maskedSoftmax(logits, excluded);
    const experts = noGrad(() => {
      if (!options.training) return logits.detach().argmax(-1, true);
      const like = { dtype: logits.dtype as "f32" | "f64", device: logits.device };
      const expo = options.draws.draw("exponential", logits.shape, "Tensor.exponential_", like);
      return gumbelArgmax(maskLogits(logits.detach(), excluded), expo);
    });
    return { experts, gates: probs.gather(1, experts), probs };
  }
}
