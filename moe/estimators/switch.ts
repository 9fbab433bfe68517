/**
 * Switch routing baseline (ESTIMATORS.md §3): top-1 by argmax of a softmax, gate = the chosen probability,
 * ordinary autograd ("gating gradient as a proxy").
 *
 * Two jitter placements:
 * - `"logits"` (default) — the SparseMixer repo's `SwitchGate`: in training the LOGITS are multiplied by
 *   `noise = U·2ε + 1 − ε`, `U ~ U[0,1)^{N×E}` (one `torch.rand_like` draw), and the noise flows into the
 *   gradient (`∂z = noise ⊙ J(p)(g e_D)`). ε = 0.1 there.
 * - `"input"` — the original Switch Transformer / HF `SwitchTransformersTop1Router`: the router INPUT `x` is
 *   multiplied by U[1−ε, 1+ε] before the router matmul (ε = 0.01 there). `route()` only sees logits, so with
 *   this variant `route()` applies no jitter at all; the layer must call {@link jitterRouterInput} on `x`
 *   (training only) before computing the logits.
 *
 * **Code vs paper**: the SparseMixer repository's Switch baseline (`variant: "logits"`, the default, matching the
 * vectors) jitters the router logits multiplicatively with ε = 0.1; the Switch Transformer paper and its
 * Hugging Face port jitter the router input instead (`variant: "input"` with {@link jitterRouterInput},
 * ε = 0.01 there).
 *
 * @module
 */
import type { Tensor } from "../../core/tensor.ts";
import { noGrad } from "../../core/autograd.ts";
import { OpError } from "../../core/errors.ts";
import type { DrawSource, Estimator, RouteOptions, Routing } from "./estimator.ts";
import { schemaDefaults, switchOptionsSchema } from "./options.ts";
import { defineEstimator, DROPS_SLOTS, type EstimatorDescriptor, TOP1 } from "./descriptor.ts";

/** The defaults of {@link SwitchOptions}, from its schema (`options.ts`). */
const DEFAULTS = schemaDefaults(switchOptionsSchema);

/** Options of {@link SwitchEstimator} (validated, with their defaults, by `switchOptionsSchema` in `options.ts`). */
export interface SwitchOptions {
  /** Jitter half-width ε (default 0.1, the SparseMixer repo's value). */
  jitterEps?: number;
  /** Where the jitter goes: on the logits (SparseMixer repo, default) or on the router input (original Switch). */
  variant?: "logits" | "input";
}

/**
 * Multiplicative jitter of the router input (original Switch Transformer): `x ⊙ (U·2ε + 1 − ε)` with one
 * `Tensor.uniform_` draw shaped like `x` (HF draws `empty_like(x).uniform_(1−ε, 1+ε)`). Call it in training
 * only. Differentiable in `x` (the noise is a constant).
 */
export function jitterRouterInput(x: Tensor, eps: number, draws: DrawSource): Tensor {
  if (!(eps >= 0)) throw new OpError("jitterRouterInput", `eps must be ≥ 0, got ${eps}`);
  const noise = noGrad(() =>
    draws.draw("uniform", x.shape, "Tensor.uniform_", { dtype: floatDType(x), device: x.device }).mul(2 * eps)
      .add(1 - eps)
  );
  return x.mul(noise);
}

function floatDType(t: Tensor): "f32" | "f64" {
  if (t.dtype !== "f32" && t.dtype !== "f64") {
    throw new OpError("switch", `expected floating-point logits or input, got ${t.dtype}`);
  }
  return t.dtype;
}

/**
 * Switch routing. Training (`"logits"` variant): `z′ = z ⊙ noise`, `p = softmax(z′)`, `D = argmax p`,
 * gate = `p_D` (ordinary autograd), `probs = p` (the balance loss uses the jittered softmax). Eval, or the
 * `"input"` variant: no noise. Draws: `torch.rand_like` [N, E] in `"logits"` training only.
 * `extra.jitteredLogits` is `z′`.
 */
export class SwitchEstimator implements Estimator {
  /** Registry name. */
  readonly name = "switch";
  /** Top-1. */
  readonly topK = 1;
  /** Sparse. */
  readonly dense = false;
  /** ε. */
  readonly jitterEps: number;
  /** Jitter placement. */
  readonly variant: "logits" | "input";

  /** See {@link SwitchOptions}. */
  constructor(options: SwitchOptions = {}) {
    this.jitterEps = options.jitterEps ?? DEFAULTS.jitterEps;
    this.variant = options.variant ?? DEFAULTS.variant;
    if (!(this.jitterEps >= 0) || !Number.isFinite(this.jitterEps)) {
      throw new OpError("SwitchEstimator", `jitterEps must be a finite number ≥ 0, got ${this.jitterEps}`);
    }
    if (this.variant !== "logits" && this.variant !== "input") {
      throw new OpError("SwitchEstimator", `variant must be "logits" or "input", got ${String(this.variant)}`);
    }
  }

  /** The `"input"` variant's jitter of the router input in training ({@link jitterRouterInput}); else `x`. */
  routerInput(x: Tensor, options: RouteOptions): Tensor {
    return options.training && this.variant === "input" ? jitterRouterInput(x, this.jitterEps, options.draws) : x;
  }

  /** See {@link Estimator.route}. */
  route(logits: Tensor, options: RouteOptions): Routing {
    if (logits.rank !== 2) throw new OpError("switch", `logits must be [N, E], got rank ${logits.rank}`);
    const dtype = floatDType(logits);
    const [n, e] = logits.shape;
    let z = logits;
    if (options.training && this.variant === "logits") {
      const eps = this.jitterEps;
      const noise = noGrad(() =>
        options.draws.draw("uniform", [n, e], "torch.rand_like", { dtype, device: logits.device }).mul(2 * eps)
          .add(1 - eps)
      );
      z = logits.mul(noise);
    }
    const p = z.softmax(-1);
    const experts = noGrad(() => p.detach().argmax(-1, true));
    const gates = p.gather(1, experts);
    return { experts, gates, probs: p, extra: { jitteredLogits: z } };
  }
}

/** The registry entry `switch`. */
export const switchDescriptor: EstimatorDescriptor<Required<SwitchOptions>, SwitchEstimator, "switch"> =
  defineEstimator({
    name: "switch",
    summary: "Switch Transformer top-1: argmax of the (jittered) softmax, gate = its probability, plain autograd",
    options: switchOptionsSchema,
    create: (options) => new SwitchEstimator(options),
    routing: "sparse",
    topK: TOP1,
    // The "input" variant jitters the router input (routerInput); "logits" uses the logits alone.
    needs: { routerInput: true, expertOutputs: false },
    capacity: DROPS_SLOTS,
    // Deterministic routing: the no-jitter loss f(p_a h_a), whose routing term is 0.
    objective: () => ({ kind: "argmax" }),
    sweep: { param: "eps", options: (eps) => ({ jitterEps: eps }) },
    vectorFiles: [{ pattern: /\(SwitchGate\)$/, format: "switch-gate" }],
    references: [{
      objects: ["SwitchGate"],
      topKWords: "1",
      supports: (k) => k === 1,
      options: (p) => ({ jitterEps: p.jitterEps ?? 0.1 }),
      multiplier: "gates",
    }],
  });
