/**
 * SparseMixer-v2 (GRIN, Liu et al. 2024), top-1 or top-2 by sampling without replacement — ESTIMATORS.md §5.
 *
 * `"released"` — v2 as coded (`sparsemixerv2_routing` in the SparseMixer repo; identical training path in
 * transformers' PhiMoE `sparsemixer`), §5.2–§5.3. For slot k (k = 2 only for top-2):
 * ```
 * r_k    = max of z with earlier selections at −inf
 * excl_k = mask(z, ε, r_k) ∪ earlier selections          (§2.1; slot 2 is relative to the runner-up)
 * π_k    = softmax(z with −inf on excl_k)
 * D_k    = argmax(z̃_k − log E_k)  (train)   |  argmax of z̃_k (eval)
 * c_k    = (D_k == argmax π_k) ∨ (u_k > 0.75)            (eval: always true)
 * m_k    = c_k ? 1 : fround(0.3333)                       (the repo's float32 literal: 0.33329999446868896)
 * gate_k = m_k · π_k[D_k]
 * ∂z     = Σ_k g_k · π_k[D_k] · (e_{D_k} − π_k)            (custom backward: m ignored, no ×2)
 * ```
 * Draws in training: `Tensor.exponential_` [N,E], `torch.rand_like` [N,1] (coin 1); for top-2 also
 * `Tensor.exponential_` [N,E], `torch.rand_like` [N,1] (overwritten in the repo, unused), `Tensor.uniform_`
 * [N,1] (coin 2).
 *
 * Eval: the same masks, coins true, gate = `π_k[D_k]` with ordinary autograd (its gradient equals the custom
 * one when m = 1). The repo version still draws `torch.rand_like` ×(top-2: 2) and, for top-2,
 * `Tensor.uniform_` in eval (values unused); transformers draws nothing. Option `evalDraws` picks: `"auto"`
 * (default) consumes them only when the source is a {@link ReplayDraws} (so a logged repo eval replays),
 * `"consume"` always, `"none"` never.
 *
 * `"heun"` — v2* of GRIN App. A (Eq. 6, Alg. 2), not in any released code, so no vector: the masked softmax
 * at temperature 2, `π = softmax(z̃/2)` (the mask itself is scale-invariant and computed on z), sampling
 * `D ~ π` by Gumbel-max on `z̃/2`, coin `B ~ Bern(5/8)` as `u > 3/8`, `c = (D == argmax π) ∨ B`,
 * `m = c ? 1 : 1/3` (Heun's third-order rule), gate = `m·π_D`, backward `∂z = 2·g·∂π_D/∂z = g·π_D(e_D − π)`
 * (the factor 2 of v2* cancels the temperature's ½). Draws per slot in training: `Tensor.exponential_`
 * [N,E], `torch.rand_like` [N,1]; none in eval (gate = π_D at temperature 2).
 *
 * `probs` (for the balance loss) is the plain `softmax(z)` (GRIN's balance loss uses E[softmax(z)]; the repo's
 * `original_gates` output); `extra` has `maskedSoftmax1` (and `maskedSoftmax2`) and `forwardScale` [N, K].
 *
 * **Code vs paper** (we follow the code, as the vectors do): (1) GRIN's Alg. 1 (`y = h + sg(s·h − h)`) gives the
 * experts the gradient of the unscaled output, while the released code multiplies the expert output by the
 * scaled multiplier, so experts receive `m_k·π_k[D_k]·∂L/∂y`; router gradients agree with Eq. 8. (2) The
 * paper's δ_D tests `D == argmax z`, the code `D == argmax π`: identical except for ties. (3) The released v2 is
 * what GRIN calls the result of "an error in the derivation" (Eq. 7–8: no factor 2, coin 1/4); v2* (`"heun"`)
 * is the derivation as intended (Eq. 6).
 *
 * @module
 */
import type { Tensor } from "../../core/tensor.ts";
import { customGrad, noGrad } from "../../core/autograd.ts";
import { OpError } from "../../core/errors.ts";
import { concat } from "../../core/ops/layout.ts";
import { type Estimator, ReplayDraws, type RouteOptions, type Routing } from "./estimator.ts";
import { gumbelArgmax, jitterMask, maskedSoftmax, maskLogits, oneHotLike } from "./mask.ts";
import { schemaDefaults, sparseMixerV2OptionsSchema } from "./options.ts";
import { defineEstimator, DROPS_SLOTS, type EstimatorDescriptor, LOGITS_ONLY, topKOption } from "./descriptor.ts";
import type { Objective } from "../exact_objectives.ts";

/** The float32 literal 0.3333 of the released code, as a float64. */
export const V2_MIDPOINT_SCALE: number = Math.fround(0.3333);

/** Options of {@link SparseMixerV2Estimator} (defaults in `sparseMixerV2OptionsSchema`, `options.ts`). */
export interface SparseMixerV2Options {
  /** Experts per token (1 or 2; default 2). */
  topK?: 1 | 2;
  /** Mask width ε (default 0.01, transformers' `router_jitter_noise`). */
  jitterEps?: number;
  /** `"released"` (GRIN v2 as coded, default) or `"heun"` (v2*, GRIN App. A). */
  variant?: "released" | "heun";
  /** Whether eval consumes the repo's unused draws (released variant only); see the module docs. */
  evalDraws?: "auto" | "consume" | "none";
}

/** The defaults of {@link SparseMixerV2Options}, from its schema (`options.ts`). */
const DEFAULTS = schemaDefaults(sparseMixerV2OptionsSchema);

/** SparseMixer-v2 / v2*. See the module documentation for the exact forward, draws and backward. */
export class SparseMixerV2Estimator implements Estimator {
  /** Registry name. */
  readonly name: string;
  /** K. */
  readonly topK: 1 | 2;
  /** Sparse. */
  readonly dense = false;
  /** ε. */
  readonly jitterEps: number;
  /** Variant. */
  readonly variant: "released" | "heun";
  /** Eval draw policy. */
  readonly evalDraws: "auto" | "consume" | "none";

  /** See {@link SparseMixerV2Options}. */
  constructor(options: SparseMixerV2Options = {}) {
    this.topK = options.topK ?? DEFAULTS.topK;
    this.jitterEps = options.jitterEps ?? DEFAULTS.jitterEps;
    this.variant = options.variant ?? DEFAULTS.variant;
    this.evalDraws = options.evalDraws ?? DEFAULTS.evalDraws;
    const where = "SparseMixerV2Estimator";
    if (this.topK !== 1 && this.topK !== 2) throw new OpError(where, `topK must be 1 or 2, got ${this.topK}`);
    if (!(this.jitterEps >= 0) || !Number.isFinite(this.jitterEps)) {
      throw new OpError(where, `jitterEps must be a finite number ≥ 0, got ${this.jitterEps}`);
    }
    if (this.variant !== "released" && this.variant !== "heun") {
      throw new OpError(where, `variant must be "released" or "heun", got ${String(this.variant)}`);
    }
    if (!["auto", "consume", "none"].includes(this.evalDraws)) {
      throw new OpError(where, `evalDraws must be "auto", "consume" or "none", got ${String(this.evalDraws)}`);
    }
    this.name = this.variant === "heun" ? "sparsemixer-v2-heun" : "sparsemixer-v2";
  }

  /** See {@link Estimator.route}. */
  route(logits: Tensor, options: RouteOptions): Routing {
    if (logits.rank !== 2) throw new OpError(this.name, `logits must be [N, E], got rank ${logits.rank}`);
    if (logits.dtype !== "f32" && logits.dtype !== "f64") {
      throw new OpError(this.name, `logits must be f32 or f64, got ${logits.dtype}`);
    }
    const [n, e] = logits.shape;
    if (e < this.topK) throw new OpError(this.name, `topK ${this.topK} needs at least ${this.topK} experts, got ${e}`);
    const like = { dtype: logits.dtype, device: logits.device };
    const heun = this.variant === "heun";
    const temperature = heun ? 2 : 1;
    const training = options.training;
    const evalConsumes = !heun && !training &&
      (this.evalDraws === "consume" || (this.evalDraws === "auto" && options.draws instanceof ReplayDraws));
    const draw = (kind: "exponential" | "uniform", shape: number[], call: string) =>
      options.draws.draw(kind, shape, call, like);

    // Forward decisions (no gradient): masks, selections, forward scales.
    const slots = noGrad(() => {
      const z = logits.detach();
      const out: { excluded: Tensor; expert: Tensor; scale: Tensor }[] = [];
      let taken: Tensor | null = null; // bool [N, E]: earlier selections
      for (let k = 0; k < this.topK; k++) {
        const rest: Tensor = taken ? z.where(taken.logicalNot(), -Infinity) : z;
        const ref = rest.max(-1, true);
        let excluded = jitterMask(z, this.jitterEps, ref);
        if (taken) excluded = excluded.logicalOr(taken);
        const masked = maskLogits(z, excluded);
        const tempered = heun ? masked.div(temperature) : masked;
        const top = masked.argmax(-1, true);
        let expert: Tensor;
        let coin: Tensor;
        if (training) {
          expert = gumbelArgmax(tempered, draw("exponential", [n, e], "Tensor.exponential_"));
          let u = draw("uniform", [n, 1], "torch.rand_like");
          if (k === 1 && !heun) u = draw("uniform", [n, 1], "Tensor.uniform_");
          coin = expert.eq(top).logicalOr(u.gt(heun ? 3 / 8 : 0.75));
        } else {
          if (evalConsumes) {
            draw("uniform", [n, 1], "torch.rand_like");
            if (k === 1) draw("uniform", [n, 1], "Tensor.uniform_");
          }
          expert = top;
          coin = top.eq(top);
        }
        const low = heun ? 1 / 3 : V2_MIDPOINT_SCALE;
        const scale = coin.astype(like.dtype).where(coin, low);
        out.push({ excluded, expert, scale });
        const hot = oneHotLike(expert, e, z).gt(0);
        taken = taken ? taken.logicalOr(hot) : hot;
      }
      return out;
    });
    const experts = concat(slots.map((s) => s.expert), 1);
    const scale = concat(slots.map((s) => s.scale), 1);
    const pis = slots.map((s) => maskedSoftmax(logits, s.excluded, temperature));

    let gates: Tensor;
    if (training) {
      const gateOp = customGrad((z: Tensor) => {
        const pi = slots.map((s) => maskedSoftmax(z, s.excluded, temperature));
        const piD = pi.map((p, k) => p.gather(1, slots[k].expert));
        return {
          value: concat(piD, 1).mul(scale),
          grad: (g: Tensor) => {
            let dz: Tensor | null = null;
            for (let k = 0; k < pi.length; k++) {
              // v2: g·π_D(e_D − π); v2*: 2·g·(1/T)·π_D(e_D − π) with T = 2, the same expression.
              const term = g.narrow(1, k, 1).mul(piD[k]).mul(oneHotLike(slots[k].expert, e, pi[k]).sub(pi[k]));
              dz = dz ? dz.add(term) : term;
            }
            return [dz];
          },
        };
      });
      gates = gateOp(logits);
    } else {
      gates = concat(pis.map((p, k) => p.gather(1, slots[k].expert)), 1);
    }
    const extra: Record<string, Tensor> = { forwardScale: scale };
    pis.forEach((p, k) => (extra[`maskedSoftmax${k + 1}`] = p));
    const stats = noGrad(() => ({
      candidates: slots[0].excluded.logicalNot().astype("i32").sum(-1),
      sampledNotArgmax: slots[0].expert.ne(logits.detach().argmax(-1, true)).reshape([n]),
    }));
    return { experts, gates, probs: logits.softmax(-1), extra, stats };
  }
}

/** Top-1: the sampled objective; top-2: sampling without replacement (`sampled2`); T = 2 for v2*. */
function v2Objective(est: SparseMixerV2Estimator): Objective {
  const temperature = est.variant === "heun" ? 2 : 1;
  return { kind: est.topK === 1 ? "sampled" : "sampled2", eps: est.jitterEps, temperature };
}

const v2Common = {
  routing: "sparse",
  topK: topKOption([1, 2]),
  needs: LOGITS_ONLY,
  capacity: DROPS_SLOTS,
  objective: v2Objective,
  sweep: { param: "eps", options: (eps: number, k: number) => ({ topK: k, jitterEps: eps }) },
} as const;

/** The registry entry `sparsemixer-v2` (GRIN's released code). */
export const sparseMixerV2Descriptor: EstimatorDescriptor<
  Omit<Required<SparseMixerV2Options>, "variant">,
  SparseMixerV2Estimator,
  "sparsemixer-v2"
> = defineEstimator({
  name: "sparsemixer-v2",
  summary: "SparseMixer-v2 as GRIN released it, top-1 or top-2",
  options: sparseMixerV2OptionsSchema.omit({ variant: true }).describe(
    "Options of the `sparsemixer-v2` estimator (SparseMixerV2Estimator, released GRIN v2).",
  ),
  create: (options) => new SparseMixerV2Estimator({ ...options, variant: "released" }),
  ...v2Common,
  vectorFiles: [{ pattern: /^SparseMixer-v2 \(GRIN\)/, format: "v2-routing" }],
  references: [
    {
      // The repo function draws its (unused) eval numbers too, so a logged eval run consumes them.
      objects: ["sparsemixerv2_routing"],
      topKWords: "1 or 2",
      supports: (k) => k === 1 || k === 2,
      options: (p) => ({ topK: p.topK, jitterEps: p.jitterEps ?? 0.01, evalDraws: "consume" }),
      multiplier: "gates",
    },
    {
      // transformers' PhiMoE: top-2 hard-coded, identical training path, no draws in eval.
      objects: ["PhimoeMultiplier", "sparsemixer"],
      topKWords: "2",
      supports: (k) => k === 2,
      options: (p) => ({ topK: 2, jitterEps: p.jitterEps ?? 0.01, evalDraws: "none" }),
      multiplier: "gates",
    },
  ],
});

/** The registry entry `sparsemixer-v2-heun` (v2*, GRIN App. A). */
export const sparseMixerV2HeunDescriptor: EstimatorDescriptor<
  Pick<Required<SparseMixerV2Options>, "topK" | "jitterEps">,
  SparseMixerV2Estimator,
  "sparsemixer-v2-heun"
> = defineEstimator({
  name: "sparsemixer-v2-heun",
  summary: "SparseMixer-v2* (Heun step, GRIN App. A), top-1 or top-2",
  options: sparseMixerV2OptionsSchema.pick({ topK: true, jitterEps: true }).describe(
    "Options of the `sparsemixer-v2-heun` estimator (SparseMixerV2Estimator, v2* of GRIN App. A).",
  ),
  create: (options) => new SparseMixerV2Estimator({ ...options, variant: "heun" }),
  ...v2Common,
  references: [],
});
