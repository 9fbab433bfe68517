/**
 * The exact objectives of the exact-gradient harness: for one token, the gradient with respect to the logits z
 * of the expected loss L(z) of the routing an estimator's forward pass performs, computed exactly by enumerating
 * the experts (or pairs of experts) and differentiating with autograd in f64. Which objective belongs to which
 * estimator is declared by the estimator's registry descriptor (`EstimatorDescriptor.objective`); the table
 * below lists the built-in ones.
 *
 * | objective | L(z) | used for |
 * | --- | --- | --- |
 * | `argmax` | f(p_a h_a), p = softmax(z), a = argmax z | `switch` (no-jitter loss), `topk` at K = 1 (no renormalisation) |
 * | `topk` | f(Σ_{k ∈ top-K} g_k h_k), g = the K probabilities renormalised | `topk` at K = 2 (Mixtral) |
 * | `sampled` | Σ_i π_i f(π_i h_i), π = softmax(z̃/T), z̃ = z masked with ε | SparseMixer v1 variants, v2 (T = 1), v2* (T = 2) at K = 1 |
 * | `sampled2` | Σ_i π¹_i Σ_j π²⁽ⁱ⁾_j f(π¹_i h_i + π²⁽ⁱ⁾_j h_j) | v2 / v2* at K = 2 (sampling without replacement) |
 * | `onehot` | Σ_i π_i f(h_i), π = softmax(z) | straight-through, st-gumbel, reinmax (forward value one_hot(D), D ~ π) |
 *
 * As in `exact_gradient.ts`, masks are computed at z and held fixed, and v2's forward scale m ∈ {1, ⅓}
 * is not part of the objective (its router gradient ignores m). `argmax` and `sampled` at T = 1 are computed by
 * {@link exactTerms} (which also splits them into gating and routing terms); the others here.
 *
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import { tensor } from "../core/ops/creation.ts";
import { gradients } from "../core/autograd.ts";
import { Generator } from "../core/random/generator.ts";
import { type Estimator, GeneratorDraws } from "./estimators/estimator.ts";
import { jitterMask, maskedSoftmax } from "./estimators/mask.ts";
import { type Downstream, exactTerms } from "./exact_gradient.ts";

/** One token's routing problem: its logits, the experts' outputs and the downstream function. */
export interface ExactProblem {
  /** Router logits [E] or [1, E]. */
  logits: Tensor;
  /** Expert outputs h_i, [E, d]. */
  experts: Tensor;
  /** The downstream function, row-wise [M, d] → [M]. */
  f: Downstream;
}

/** Which expected loss is the reference (see the module documentation). */
export type Objective =
  | { kind: "argmax" }
  | { kind: "topk"; k: number; renormalize: boolean }
  | { kind: "sampled"; eps: number; temperature: number }
  | { kind: "sampled2"; eps: number; temperature: number }
  | { kind: "onehot" };

function values(t: Tensor): number[] {
  return Array.from(t.dataSync(), Number);
}

/** The exact gradient ∇_z L(z) of `objective` for `problem`, as E numbers. */
export function exactGradient(problem: ExactProblem, objective: Objective): number[] {
  const { logits, experts, f } = problem;
  if (objective.kind === "argmax" || (objective.kind === "sampled" && objective.temperature === 1)) {
    const eps = objective.kind === "sampled" ? objective.eps : 0;
    return exactTerms({ logits, experts, f, objective: objective.kind, jitterEps: eps }).total;
  }
  const e = experts.shape[0];
  const z = logits.reshape([1, e]).astype("f64").detach().requiresGrad_();
  let loss: Tensor;
  if (objective.kind === "onehot") {
    loss = z.softmax(-1).reshape([e]).mul(f(experts)).sum();
  } else if (objective.kind === "topk") {
    const zv = values(z.detach());
    const top = zv.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, objective.k)
      .map(([, i]) => i);
    const idx = tensor(top, { dtype: "i32" });
    let g = z.softmax(-1).reshape([e]).indexSelect(0, idx);
    if (objective.renormalize) g = g.div(g.sum());
    loss = f(g.reshape([1, objective.k]).matmul(experts.indexSelect(0, idx))).sum();
  } else if (objective.kind === "sampled") {
    const p = maskedSoftmax(z, jitterMask(z, objective.eps), objective.temperature).reshape([e, 1]);
    loss = p.reshape([e]).mul(f(p.mul(experts))).sum();
  } else if (objective.kind === "sampled2") {
    const { eps, temperature } = objective;
    const zd = z.detach();
    const p1 = maskedSoftmax(z, jitterMask(z, eps), temperature).reshape([e]);
    const p1v = values(p1.detach());
    const terms: Tensor[] = [];
    for (let i = 0; i < e; i++) {
      if (p1v[i] === 0) continue; // excluded first choice: probability 0, no gradient
      const taken = tensor([Array.from({ length: e }, (_, j) => j === i)], { dtype: "bool" });
      const rest = zd.where(taken.logicalNot(), -Infinity);
      const excluded = jitterMask(zd, eps, rest.max(-1, true)).logicalOr(taken);
      const p2 = maskedSoftmax(z, excluded, temperature).reshape([e]);
      const hi = experts.narrow(0, i, 1); // [1, d]
      const first = p1.narrow(0, i, 1).reshape([1, 1]);
      const y = first.mul(hi).add(p2.reshape([e, 1]).mul(experts)); // row j: π¹_i h_i + π²_j h_j, [E, d]
      const mask = tensor(Array.from({ length: e }, (_, j) => (j === i ? 0 : 1)), { dtype: "f64" });
      terms.push(p1.narrow(0, i, 1).mul(p2.mul(mask).mul(f(y)).sum()));
    }
    loss = terms.reduce((a, b) => a.add(b));
  } else {
    throw new RangeError(`unknown objective ${JSON.stringify(objective)}`);
  }
  return values(gradients(loss, [z])[0]);
}

/**
 * Monte-Carlo value of the objective's expected loss under the estimator's own forward sampling (gates
 * divided by v2's forward scale, which the objective leaves out): a check that an enumerated objective is the
 * expectation of what the estimator routes. Returns the mean and its standard error.
 */
export function forwardLossMC(
  estimator: Estimator,
  problem: ExactProblem,
  draws: number,
  seed: number,
): { mean: number; stdErr: number } {
  const { logits, experts, f } = problem;
  const e = experts.shape[0];
  const zb = logits.reshape([1, e]).astype("f64").expand(draws, e).add(0).detach();
  const r = estimator.route(zb, { training: true, draws: new GeneratorDraws(new Generator(seed)) });
  let gates = r.gates.detach();
  const scale = r.extra?.forwardScale;
  if (scale) gates = gates.div(scale);
  const k = gates.shape[1];
  const idx = r.experts.reshape([draws * k]).astype("i32");
  const y = gates.reshape([draws, k, 1]).mul(experts.indexSelect(0, idx).reshape([draws, k, experts.shape[1]]))
    .sum(1);
  const v = values(f(y));
  const m = v.reduce((s, x) => s + x, 0) / draws;
  const sd = Math.sqrt(v.reduce((s, x) => s + (x - m) ** 2, 0) / (draws - 1));
  return { mean: m, stdErr: sd / Math.sqrt(draws) };
}

/** The value L(z) of an objective (for the {@link forwardLossMC} check); only `sampled`, `sampled2`, `onehot`. */
export function objectiveValue(problem: ExactProblem, objective: Objective): number {
  const { logits, experts, f } = problem;
  const e = experts.shape[0];
  const z = logits.reshape([1, e]).astype("f64").detach();
  if (objective.kind === "onehot") return values(z.softmax(-1).reshape([e]).mul(f(experts)).sum())[0];
  if (objective.kind === "sampled") {
    const p = maskedSoftmax(z, jitterMask(z, objective.eps), objective.temperature).reshape([e, 1]);
    return values(p.reshape([e]).mul(f(p.mul(experts))).sum())[0];
  }
  if (objective.kind === "sampled2") {
    const { eps, temperature } = objective;
    const p1 = values(maskedSoftmax(z, jitterMask(z, eps), temperature));
    const fe = (v: number[]) => values(f(tensor([v], { dtype: "f64" })))[0];
    const h = experts.dataSync();
    const d = experts.shape[1];
    let total = 0;
    for (let i = 0; i < e; i++) {
      if (p1[i] === 0) continue;
      const taken = tensor([Array.from({ length: e }, (_, j) => j === i)], { dtype: "bool" });
      const rest = z.where(taken.logicalNot(), -Infinity);
      const p2 = values(maskedSoftmax(z, jitterMask(z, eps, rest.max(-1, true)).logicalOr(taken), temperature));
      for (let j = 0; j < e; j++) {
        if (j === i || p2[j] === 0) continue;
        const y = Array.from({ length: d }, (_, c) => p1[i] * Number(h[i * d + c]) + p2[j] * Number(h[j * d + c]));
        total += p1[i] * p2[j] * fe(y);
      }
    }
    return total;
  }
  throw new RangeError(`objectiveValue: not for objective "${objective.kind}"`);
}
