/**
 * SparseMixer v1 (Liu, Gao, Chen 2023) and the repo's `-1st` / `-inf` variants, top-1 — ESTIMATORS.md §4.
 *
 * Training, with `excluded` the relative jitter mask (§2.1, r = row max) and `π` the masked softmax:
 * ```
 * D    = argmax(z̃ − log E)                  E ~ Exp(1) [N, E]      (draw 1: Tensor.exponential_)
 * a    = argmax z
 * midpoint: u ~ U[0,1) [N,1] (draw 2: torch.rand_like); c = (D == a) ∨ (u > ½); m = c ? 1 : ½
 * first:    m ≡ 1 (no coin draw)
 * inf:      u, u′ ~ U[0,1) [N,1] (draws 2, 3: torch.rand_like); c as above; m = c ? 1 : u′
 * gate = m · π_D                                     (forward value)
 * ∂z   = 2 · g · π_D · (e_D − π)                     (custom backward: ×2, m ignored, 0 on excluded experts)
 * ```
 * Eval: `D = a`, gate = `π_a` with ordinary autograd, no draws. `probs = π` (masked softmax, ordinary autograd)
 * in both modes — that is what the repo's balance loss uses.
 *
 * Differences from the reference code: the caller's logits are NOT masked in place (the repo does
 * `masked_fill_` on its input); the outputs are the same. The learnable output scale ω of the repo's router
 * belongs to the MoE layer (`multiplier = gate ⊗ ω`); its gradient then follows from ordinary autograd.
 *
 * **Code vs paper**: the backward doubles the gate gradient in both branches (mid-point and Euler); an open
 * question on the SparseMixer repository (issue #3) reads the v1 paper's §3.2 as implying no ×2 for the
 * first-order branch, while GRIN's App. A derivation gives ×2 for Euler. We follow the code (and the vectors).
 * The learnable output scale ω ("for training stabilization") is a parameter of the MoE layer (`outputScale`),
 * not of this estimator; it is a confound against Switch that the Switch + ω ablation isolates.
 *
 * @module
 */
import type { Tensor } from "../../core/tensor.ts";
import { customGrad, noGrad } from "../../core/autograd.ts";
import { OpError } from "../../core/errors.ts";
import type { Estimator, RouteOptions, Routing } from "./estimator.ts";
import { gumbelArgmax, jitterMask, maskedSoftmax, maskLogits, oneHotLike } from "./mask.ts";
import { schemaDefaults, sparseMixerOptionsSchema } from "./options.ts";
import { defineEstimator, DROPS_SLOTS, type EstimatorDescriptor, LOGITS_ONLY, TOP1 } from "./descriptor.ts";

/** The defaults of {@link SparseMixerOptions}, from its schema (`options.ts`). */
const DEFAULTS = schemaDefaults(sparseMixerOptionsSchema);

/** Options of {@link SparseMixerEstimator} (defaults in `sparseMixerOptionsSchema`, `options.ts`). */
export interface SparseMixerOptions {
  /** Mask width ε (default 0.1). */
  jitterEps?: number;
  /** `"midpoint"` = v1 (default), `"first"` = SparseMixer-1st (Euler), `"inf"` = SparseMixer-inf. */
  variant?: "midpoint" | "first" | "inf";
}

const NAMES = { midpoint: "sparsemixer", first: "sparsemixer-1st", inf: "sparsemixer-inf" } as const;

/** SparseMixer v1 / -1st / -inf. See the module documentation for the exact forward, draws and backward. */
export class SparseMixerEstimator implements Estimator {
  /** Registry name. */
  readonly name: string;
  /** Top-1. */
  readonly topK = 1;
  /** Sparse. */
  readonly dense = false;
  /** ε. */
  readonly jitterEps: number;
  /** Variant. */
  readonly variant: "midpoint" | "first" | "inf";

  /** See {@link SparseMixerOptions}. */
  constructor(options: SparseMixerOptions = {}) {
    this.jitterEps = options.jitterEps ?? DEFAULTS.jitterEps;
    this.variant = options.variant ?? DEFAULTS.variant;
    if (!(this.jitterEps >= 0) || !Number.isFinite(this.jitterEps)) {
      throw new OpError("SparseMixerEstimator", `jitterEps must be a finite number ≥ 0, got ${this.jitterEps}`);
    }
    if (!(this.variant in NAMES)) {
      throw new OpError(
        "SparseMixerEstimator",
        `variant must be "midpoint", "first" or "inf", got ${String(this.variant)}`,
      );
    }
    this.name = NAMES[this.variant];
  }

  /** See {@link Estimator.route}. */
  route(logits: Tensor, options: RouteOptions): Routing {
    if (logits.rank !== 2) throw new OpError(this.name, `logits must be [N, E], got rank ${logits.rank}`);
    if (logits.dtype !== "f32" && logits.dtype !== "f64") {
      throw new OpError(this.name, `logits must be f32 or f64, got ${logits.dtype}`);
    }
    const [n, e] = logits.shape;
    const like = { dtype: logits.dtype, device: logits.device };
    const excluded = jitterMask(logits, this.jitterEps);
    const probs = maskedSoftmax(logits, excluded);
    const argmax = noGrad(() => logits.detach().argmax(-1, true));
    const candidates = noGrad(() => excluded.logicalNot().astype("i32").sum(-1));

    if (!options.training) {
      return {
        experts: argmax,
        gates: probs.gather(1, argmax),
        probs,
        stats: { candidates, sampledNotArgmax: noGrad(() => argmax.ne(argmax).reshape([n])) },
      };
    }

    const { experts, scale } = noGrad(() => {
      const expo = options.draws.draw("exponential", [n, e], "Tensor.exponential_", like);
      const d = gumbelArgmax(maskLogits(logits.detach(), excluded), expo);
      if (this.variant === "first") return { experts: d, scale: null };
      const u = options.draws.draw("uniform", [n, 1], "torch.rand_like", like);
      const c = d.eq(argmax).logicalOr(u.gt(0.5));
      if (this.variant === "midpoint") return { experts: d, scale: c.astype(like.dtype).mul(0.5).add(0.5) };
      const u2 = options.draws.draw("uniform", [n, 1], "torch.rand_like", like);
      return { experts: d, scale: u2.where(c.logicalNot(), 1) };
    });

    const gateOp = customGrad((z: Tensor) => {
      const pi = maskedSoftmax(z, excluded);
      const piD = pi.gather(1, experts);
      return {
        value: scale ? piD.mul(scale) : piD,
        grad: (g: Tensor) => [g.mul(piD).mul(2).mul(oneHotLike(experts, e, pi).sub(pi))],
      };
    });
    const gates = gateOp(logits);
    return {
      experts,
      gates,
      probs,
      extra: scale ? { forwardScale: scale } : {},
      stats: { candidates, sampledNotArgmax: noGrad(() => experts.ne(argmax).reshape([n])) },
    };
  }
}

/** A SparseMixer v1 registry entry (the variant comes from the name). */
export type SparseMixerDescriptor<N extends string> = EstimatorDescriptor<
  { jitterEps: number },
  SparseMixerEstimator,
  N
>;

/** The registry entry of one SparseMixer v1 variant, replaying the reference object `object`. */
function sparseMixerVariant<const N extends string>(
  name: N,
  variant: "midpoint" | "first" | "inf",
  object: string,
  vectorFile: RegExp,
  summary: string,
): SparseMixerDescriptor<N> {
  return defineEstimator({
    name,
    summary,
    options: sparseMixerOptionsSchema.pick({ jitterEps: true }).describe(
      `Options of the \`${name}\` estimator (SparseMixerEstimator, variant "${variant}").`,
    ),
    create: (options) => new SparseMixerEstimator({ ...options, variant }),
    routing: "sparse",
    topK: TOP1,
    needs: LOGITS_ONLY,
    capacity: DROPS_SLOTS,
    objective: (est) => ({ kind: "sampled", eps: est.jitterEps, temperature: 1 }),
    sweep: { param: "eps", options: (eps) => ({ jitterEps: eps }) },
    vectorFiles: [{ pattern: vectorFile, format: "masked-top1-omega" }],
    references: [{
      objects: [object],
      topKWords: "1",
      supports: (k) => k === 1,
      options: (p) => ({ jitterEps: p.jitterEps ?? 0.1 }),
      multiplier: "omega",
    }],
  });
}

/** The registry entry `sparsemixer` (v1, mid-point). */
export const sparseMixerDescriptor: SparseMixerDescriptor<"sparsemixer"> = sparseMixerVariant(
  "sparsemixer",
  "midpoint",
  "SparseMixer",
  /^SparseMixer v1 \(/,
  "SparseMixer v1 (mid-point ODE step), top-1",
);

/** The registry entry `sparsemixer-1st` (first-order Euler step). */
export const sparseMixerFirstDescriptor: SparseMixerDescriptor<"sparsemixer-1st"> = sparseMixerVariant(
  "sparsemixer-1st",
  "first",
  "SparseMixerFirst",
  /^SparseMixer-1st\b/,
  "SparseMixer-1st (first-order Euler step), top-1",
);

/** The registry entry `sparsemixer-inf` (no ODE step). */
export const sparseMixerInfDescriptor: SparseMixerDescriptor<"sparsemixer-inf"> = sparseMixerVariant(
  "sparsemixer-inf",
  "inf",
  "SparseMixerInf",
  /^SparseMixer-inf\b/,
  "SparseMixer-inf (routing term without the ODE step), top-1",
);
