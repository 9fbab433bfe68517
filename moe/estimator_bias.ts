/**
 * Bias and variance of an estimator's routing gradient for one token: the exact gradient of the expected loss
 * of the routing the estimator performs (the objective its registry descriptor declares, see
 * `exact_objectives.ts`) against the mean of many independent per-draw gradients (`sampleGradients`).
 *
 * @example
 * ```ts
 * import { createEstimator, estimatorBias, tensor } from "@moegrad/moegrad";
 * const w = tensor([1, -2], { dtype: "f64" });
 * const r = estimatorBias({
 *   estimator: createEstimator("sparsemixer-inf", { jitterEps: 0.1 }),
 *   logits: tensor([1, 0.9, 0.85, -0.5], { dtype: "f64" }),
 *   experts: tensor([[1, 0], [0, 1], [1, 1], [2, -1]], { dtype: "f64" }),
 *   f: (v) => v.mul(w).sum(-1),
 *   draws: 2000,
 *   seed: 1,
 * });
 * console.log(r.cosine > 0.9, r.relError < 0.2); // true true
 * ```
 *
 * @module
 */
import { OpError } from "../core/errors.ts";
import { descriptorOf } from "./estimators/registry.ts";
import {
  type ExactObjective,
  type ExactTerms,
  exactTerms,
  sampleGradients,
  type SampleGradientsOptions,
} from "./exact_gradient.ts";
import { exactGradient, type Objective } from "./exact_objectives.ts";

/** Options of {@link estimatorBias}: those of `sampleGradients`, and the objective. */
export interface EstimatorBiasOptions extends SampleGradientsOptions {
  /**
   * The objective whose true gradient is the reference. Default: the one the estimator's registry descriptor
   * declares (an estimator outside the registry must give it). `"argmax"` / `"sampled"` are
   * `{ kind: "argmax" }` / `{ kind: "sampled", eps: jitterEps, temperature: 1 }`.
   */
  objective?: ExactObjective | Objective;
  /** Mask width of the `"sampled"` shorthand; default the estimator's `jitterEps`, else 0.1. */
  jitterEps?: number;
}

/** What {@link estimatorBias} reports. Vectors are plain arrays of length E. */
export interface EstimatorBias {
  /** The exact gradient of the objective. */
  trueGrad: number[];
  /**
   * The objective's gradient split into gating and routing terms, for the `argmax` objective and the
   * `sampled` one at temperature 1 (null for the others).
   */
  terms: ExactTerms | null;
  /** The objective compared with. */
  objective: Objective;
  /** Mean of the estimator's per-draw gradients. */
  meanGrad: number[];
  /** cos(meanGrad, trueGrad) (NaN if either is 0). */
  cosine: number;
  /** ‖meanGrad − trueGrad‖ / ‖trueGrad‖ (Infinity if trueGrad = 0 and the mean is not). */
  relError: number;
  /** Per-coordinate sample variance of one draw's gradient (unbiased, divisor M − 1). */
  variance: number[];
  /** Trace of the per-draw covariance, Σ_j variance_j. */
  traceVariance: number;
  /** Per-coordinate standard error of meanGrad, sqrt(variance_j / M). */
  stdErr: number[];
  /** sqrt(traceVariance / M): the expected ‖meanGrad − E[meanGrad]‖ scale. */
  stdErrNorm: number;
  /** Number of draws M. */
  draws: number;
}

function norm(v: readonly number[]): number {
  return Math.sqrt(v.reduce((s, x) => s + x * x, 0));
}

/** The objective of `options`: given, or the estimator's descriptor's. */
function objectiveOf(options: EstimatorBiasOptions): Objective {
  const { estimator, objective } = options;
  if (objective === "argmax") return { kind: "argmax" };
  if (objective === "sampled") {
    const eps = options.jitterEps ?? (estimator as { jitterEps?: number }).jitterEps ?? 0.1;
    return { kind: "sampled", eps, temperature: 1 };
  }
  if (objective !== undefined) return objective;
  const descriptor = descriptorOf(estimator);
  if (!descriptor) {
    throw new OpError("estimatorBias", `"${estimator.name}" is not a registered estimator; pass its objective`);
  }
  const declared = descriptor.objective(estimator);
  if (!declared) {
    throw new OpError("estimatorBias", `"${estimator.name}" has no one-token exact objective (see its descriptor)`);
  }
  return declared;
}

/** Bias and variance of `options.estimator`'s routing gradient (see the module documentation). */
export function estimatorBias(options: EstimatorBiasOptions): EstimatorBias {
  const objective = objectiveOf(options);
  const { logits, experts, f } = options;
  const terms = objective.kind === "argmax" || (objective.kind === "sampled" && objective.temperature === 1)
    ? exactTerms({
      logits,
      experts,
      f,
      objective: objective.kind,
      jitterEps: objective.kind === "sampled" ? objective.eps : undefined,
    })
    : null;
  const trueGrad = terms ? terms.total : exactGradient({ logits, experts, f }, objective);
  const rows = sampleGradients(options);
  const m = rows.length;
  const e = trueGrad.length;
  const meanGrad = new Array<number>(e).fill(0);
  for (const row of rows) row.forEach((x, j) => (meanGrad[j] += x / m));
  const variance = new Array<number>(e).fill(0);
  for (const row of rows) row.forEach((x, j) => (variance[j] += (x - meanGrad[j]) ** 2 / (m - 1)));
  const diff = meanGrad.map((x, j) => x - trueGrad[j]);
  const nt = norm(trueGrad);
  const nm = norm(meanGrad);
  const dot = meanGrad.reduce((s, x, j) => s + x * trueGrad[j], 0);
  const traceVariance = variance.reduce((s, x) => s + x, 0);
  return {
    trueGrad,
    terms,
    objective,
    meanGrad,
    cosine: nt > 0 && nm > 0 ? dot / (nt * nm) : NaN,
    relError: nt > 0 ? norm(diff) / nt : (norm(diff) === 0 ? 0 : Infinity),
    variance,
    traceVariance,
    stdErr: variance.map((v) => Math.sqrt(v / m)),
    stdErrNorm: Math.sqrt(traceVariance / m),
    draws: m,
  };
}
