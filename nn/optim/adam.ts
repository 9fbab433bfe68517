/**
 * Adam (with L2 weight decay) and AdamW (with decoupled weight decay), with the bias-corrected updates of
 * `torch.optim.Adam` and `torch.optim.AdamW`.
 *
 * @module
 */
import type { Tensor } from "../../core/mod.ts";
import { zerosLike } from "../../core/mod.ts";
import { checkBoolean, checkNumber, checkOptionKeys } from "./_check.ts";
import { checkHyperKeys, Optimizer, type ParamsInput } from "./optimizer.ts";
import { type FusedAdamUpdate, fusedAdamUpdates } from "./fused_adam.ts";
import { fusedCpuF32 } from "./_fused.ts";

/** Options of {@link Adam} and {@link AdamW}. */
export interface AdamOptions {
  /** Learning rate η (default 1e-3). */
  lr?: number;
  /** Decay rates (β₁, β₂) of the first and second moment estimates, each in [0, 1) (default [0.9, 0.999]). */
  betas?: readonly [number, number];
  /** ε added to the denominator (default 1e-8). */
  eps?: number;
  /**
   * Weight decay λ (≥ 0). Adam adds λ·p to the gradient (L2 penalty; default 0); AdamW shrinks the
   * parameter directly, p ← p − η·λ·p (decoupled; default 0.01).
   */
  weightDecay?: number;
  /**
   * Clip the gradients to this global L2 norm inside each `step()` (≥ 0, may be Infinity; default: no
   * clipping): bit-identical to `clipGradNorm(optimizer.parameters(), maxGradNorm)` before `step()`, but
   * `.grad` is left unscaled and, on the fused CPU path, the coefficient is applied inside the update pass.
   * See {@link Optimizer.maxGradNorm}.
   */
  maxGradNorm?: number;
}

const OPTION_KEYS = ["lr", "betas", "eps", "weightDecay", "maxGradNorm"] as const;
const HYPER_KEYS = ["beta1", "beta2", "eps", "weightDecay", "decoupledWeightDecay"] as const;

interface AdamHyper {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

function checkHyper(owner: string, beta1: unknown, beta2: unknown, eps: unknown, weightDecay: unknown): AdamHyper {
  return {
    beta1: checkNumber(owner, "beta1 (betas[0])", beta1, { min: 0, below: 1 }),
    beta2: checkNumber(owner, "beta2 (betas[1])", beta2, { min: 0, below: 1 }),
    eps: checkNumber(owner, "eps", eps, { min: 0 }),
    weightDecay: checkNumber(owner, "weightDecay", weightDecay, { min: 0 }),
  };
}

/**
 * Adam (Kingma & Ba), exactly as `torch.optim.Adam` (`amsgrad=False`, `maximize=False`). With gradient g,
 * parameter p, learning rate η, β₁, β₂, ε, weight decay λ, and t the number of updates of p so far
 * including this one (counted per parameter, as PyTorch's `state["step"]`), each step computes
 *
 * ```text
 * g ← g + λ·p                                 (Adam, if λ ≠ 0: L2 penalty)
 * p ← p·(1 − η·λ)                             (AdamW, if λ ≠ 0: decoupled decay, applied first)
 * m ← β₁·m + (1 − β₁)·g                       (m and v start at 0)
 * v ← β₂·v + (1 − β₂)·g²
 * p ← p − (η / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
 * ```
 *
 * — PyTorch's formulation of the bias correction: the step size η/(1 − β₁ᵗ) and √(1 − β₂ᵗ) are computed
 * in double precision on the host and enter the device arithmetic as scalars of the parameter's dtype. m
 * and v are saved as `"exp_avg.<param name>"` and `"exp_avg_sq.<param name>"`, t as the hyper entry
 * `"step.<param name>"`.
 *
 * @example
 * ```ts
 * import { tensor } from "@moegrad/moegrad";
 * import { Adam } from "./mod.ts";
 * const w = tensor([1, -2]).requiresGrad_();
 * const opt = new Adam([w], { lr: 0.1 });
 * w.square().sum().backward();
 * opt.step(); // the first Adam step moves each entry by ≈ lr against its gradient's sign
 * opt.zeroGrad();
 * console.log(await w.data()); // ≈ [0.9, −1.9]
 * ```
 */
export class Adam extends Optimizer {
  #h: AdamHyper;
  readonly #decoupled: boolean;
  readonly #steps = new Map<string, number>();

  /** Creates the optimizer over `params` (tensors or `[name, tensor]` pairs). */
  constructor(params: ParamsInput, options: AdamOptions = {}) {
    // AdamW and its subclasses decouple the weight decay (AdamW is declared below; this runs after it is).
    const isW = new.target === AdamW || new.target.prototype instanceof AdamW;
    const [owner, decoupled] = isW ? ["AdamW", true] : ["Adam", false];
    checkOptionKeys(owner, options, OPTION_KEYS);
    const betas = options.betas ?? [0.9, 0.999];
    if (!Array.isArray(betas) || betas.length !== 2) {
      throw new RangeError(`${owner}: betas must be a pair [beta1, beta2], got ${JSON.stringify(betas)}`);
    }
    super(owner, params, options.lr ?? 1e-3, options.maxGradNorm);
    this.#decoupled = decoupled;
    this.#h = checkHyper(owner, betas[0], betas[1], options.eps ?? 1e-8, options.weightDecay ?? (decoupled ? 0.01 : 0));
  }

  /** (β₁, β₂). */
  get betas(): readonly [number, number] {
    return [this.#h.beta1, this.#h.beta2];
  }
  /** ε. */
  get eps(): number {
    return this.#h.eps;
  }
  /** The weight decay λ (L2 for Adam, decoupled for AdamW). */
  get weightDecay(): number {
    return this.#h.weightDecay;
  }
  /** Whether the weight decay is decoupled (AdamW). */
  get decoupledWeightDecay(): boolean {
    return this.#decoupled;
  }

  /** `["exp_avg", "exp_avg_sq"]`. */
  protected get stateKinds(): readonly string[] {
    return ["exp_avg", "exp_avg_sq"];
  }

  /** True: the fused update applies a clip coefficient itself. */
  protected override get fusesGradScale(): boolean {
    return true;
  }

  /** The step's fused updates, queued by updateParameter until finishUpdates. */
  #pending: FusedAdamUpdate[] = [];

  /** Runs the fused updates the step queued, batched (see fused_adam.ts). */
  protected override finishUpdates(): void {
    const pending = this.#pending;
    this.#pending = [];
    fusedAdamUpdates(pending);
  }

  /** One parameter's Adam/AdamW update (see the class docs for the formulas). */
  protected updateParameter(name: string, p: Tensor, g: Tensor, gradScale: number): void {
    const { beta1, beta2, eps, weightDecay } = this.#h;
    const lr = this.lr;
    const m0 = this.getState(name, "exp_avg");
    const v0 = this.getState(name, "exp_avg_sq");
    const t = m0 && v0 ? (this.#steps.get(name) ?? 0) + 1 : 1;
    if (fusedCpuF32(p, g)) {
      // Same arithmetic in one pass, in place (see fused_adam.ts); bit-identical to the ops below. The first
      // step starts from zero moments, exactly as the ops' zerosLike.
      // Queued: finishUpdates runs the step's updates together, so the kernel Workers are woken a few times
      // per step instead of once per parameter.
      const m = this.mutableState(name, "exp_avg", p), v = this.mutableState(name, "exp_avg_sq", p);
      this.#pending.push({
        p,
        g,
        m,
        v,
        args: {
          lr,
          beta1,
          beta2,
          eps,
          weightDecay,
          decoupled: this.#decoupled,
          stepSize: lr / (1 - beta1 ** t),
          bc2Sqrt: Math.sqrt(1 - beta2 ** t),
          gradScale,
        },
      });
      this.#steps.set(name, t);
      return;
    }
    let base = p;
    if (weightDecay !== 0) {
      if (this.#decoupled) base = p.mul(1 - lr * weightDecay);
      else g = g.add(p.mul(weightDecay));
    }
    const m = (m0 && v0 ? m0 : zerosLike(p)).mul(beta1).add(g.mul(1 - beta1));
    const v = (m0 && v0 ? v0 : zerosLike(p)).mul(beta2).add(g.mul(g).mul(1 - beta2));
    const stepSize = lr / (1 - beta1 ** t);
    const bc2Sqrt = Math.sqrt(1 - beta2 ** t);
    const denom = v.sqrt().div(bc2Sqrt).add(eps);
    p.assign_(base.sub(m.div(denom).mul(stepSize)));
    this.setState(name, "exp_avg", m);
    this.setState(name, "exp_avg_sq", v);
    this.#steps.set(name, t);
  }

  /** `beta1`, `beta2`, `eps`, `weightDecay`, `decoupledWeightDecay`, and `"step.<name>"` per parameter. */
  protected hyperState(): Record<string, number | boolean> {
    const out: Record<string, number | boolean> = { ...this.#h, decoupledWeightDecay: this.#decoupled };
    for (const [name] of this.namedParameters()) {
      if (this.getState(name, "exp_avg")) out[`step.${name}`] = this.#steps.get(name) ?? 0;
    }
    return out;
  }

  /** Validates saved Adam/AdamW hyperparameters and per-parameter steps; the returned function applies them. */
  protected prepareHyper(
    hyper: Record<string, number | boolean>,
    withState: ReadonlySet<string>,
    step: number,
  ): () => void {
    const owner = `${this.owner}.loadStateDict`;
    checkHyperKeys(owner, hyper, HYPER_KEYS, ["step"], withState);
    const decoupled = checkBoolean(owner, "decoupledWeightDecay", hyper.decoupledWeightDecay);
    if (decoupled !== this.#decoupled) {
      throw new Error(
        `${owner}: the state was saved by ${decoupled ? "AdamW" : "Adam"} (decoupledWeightDecay ${decoupled}), ` +
          `this is ${this.owner}`,
      );
    }
    const h = checkHyper(owner, hyper.beta1, hyper.beta2, hyper.eps, hyper.weightDecay);
    const steps = new Map<string, number>();
    for (const name of withState) {
      steps.set(name, checkNumber(owner, `"step.${name}"`, hyper[`step.${name}`], { min: 1, integer: true }));
      if (steps.get(name)! > step) {
        throw new RangeError(`${owner}: "step.${name}" (${steps.get(name)}) exceeds the optimizer's step (${step})`);
      }
    }
    return () => {
      this.#h = h;
      this.#steps.clear();
      for (const [name, t] of steps) this.#steps.set(name, t);
    };
  }
}

/**
 * AdamW (Loshchilov & Hutter): {@link Adam} with decoupled weight decay p ← p·(1 − η·λ) applied before the
 * Adam update, exactly as `torch.optim.AdamW`; λ defaults to 0.01. See {@link Adam} for the formulas.
 *
 * @example
 * ```ts
 * import { tensor } from "@moegrad/moegrad";
 * import { AdamW } from "./mod.ts";
 * const w = tensor([1, -2]).requiresGrad_();
 * const opt = new AdamW([w], { lr: 0.1, weightDecay: 0.1 });
 * w.square().sum().backward();
 * opt.step(); // w·(1 − 0.01) − 0.1·sign(g)
 * console.log(await w.data()); // ≈ [0.89, −1.88]
 * ```
 */
export class AdamW extends Adam {
  /** Creates the optimizer over `params` (tensors or `[name, tensor]` pairs). */
  constructor(params: ParamsInput, options: AdamOptions = {}) {
    super(params, options);
  }
}
