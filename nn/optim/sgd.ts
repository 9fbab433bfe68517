/**
 * Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay, with
 * PyTorch's `torch.optim.SGD` semantics.
 *
 * @module
 */
import { type Tensor, zerosLike } from "../../core/mod.ts";
import { checkBoolean, checkNumber, checkOptionKeys } from "./_check.ts";
import { checkHyperKeys, Optimizer, type ParamsInput } from "./optimizer.ts";
import { fusedSgdUpdate } from "./fused_sgd.ts";
import { fusedCpuF32 } from "./_fused.ts";

/** Options of {@link SGD}. */
export interface SGDOptions {
  /** Learning rate (required, ≥ 0). */
  lr: number;
  /** Momentum factor μ (default 0: plain SGD). */
  momentum?: number;
  /** Dampening τ of the momentum (default 0). */
  dampening?: number;
  /** Use Nesterov momentum (default false; needs momentum > 0 and dampening 0). */
  nesterov?: boolean;
  /** L2 penalty λ added to the gradient (default 0). */
  weightDecay?: number;
  /**
   * Clip the gradients to this global L2 norm inside each `step()` (≥ 0, may be Infinity; default: no
   * clipping): bit-identical to `clipGradNorm(optimizer.parameters(), maxGradNorm)` before `step()`, but
   * `.grad` is left unscaled. See {@link Optimizer.maxGradNorm}.
   */
  maxGradNorm?: number;
}

const OPTION_KEYS = ["lr", "momentum", "dampening", "nesterov", "weightDecay", "maxGradNorm"] as const;
const HYPER_KEYS = ["momentum", "dampening", "nesterov", "weightDecay"] as const;

interface SgdHyper {
  momentum: number;
  dampening: number;
  nesterov: boolean;
  weightDecay: number;
}

function checkHyper(owner: string, h: Record<string, unknown>): SgdHyper {
  const momentum = checkNumber(owner, "momentum", h.momentum ?? 0, { min: 0 });
  const dampening = checkNumber(owner, "dampening", h.dampening ?? 0);
  const nesterov = checkBoolean(owner, "nesterov", h.nesterov ?? false);
  const weightDecay = checkNumber(owner, "weightDecay", h.weightDecay ?? 0, { min: 0 });
  if (nesterov && (momentum <= 0 || dampening !== 0)) {
    throw new RangeError(
      `${owner}: Nesterov momentum requires momentum > 0 and dampening = 0, got momentum ${momentum}, ` +
        `dampening ${dampening}`,
    );
  }
  return { momentum, dampening, nesterov, weightDecay };
}

/**
 * SGD, exactly as `torch.optim.SGD` (PyTorch ≥ 1.x, `maximize=False`). With gradient g, parameter p,
 * learning rate η, momentum μ, dampening τ and weight decay λ, each step computes
 *
 * ```text
 * d ← g + λ·p                       (if λ ≠ 0)
 * if μ ≠ 0:
 *   b ← d                           (the first update of p: the buffer is a copy of d)
 *   b ← μ·b + (1 − τ)·d             (afterwards)
 *   d ← d + μ·b   (Nesterov)   or   d ← b
 * p ← p − η·d
 * ```
 *
 * The momentum buffer b is saved as `"momentum_buffer.<param name>"` in the state dict.
 *
 * @example
 * ```ts
 * import { tensor } from "@moegrad/moegrad";
 * import { SGD } from "./mod.ts";
 * const w = tensor([1, -2]).requiresGrad_();
 * const opt = new SGD([w], { lr: 0.1, momentum: 0.9 });
 * w.square().sum().backward(); // grad 2w = [2, −4]
 * opt.step();
 * opt.zeroGrad();
 * console.log(await w.data()); // ≈ [0.8, −1.6]
 * ```
 */
export class SGD extends Optimizer {
  #h: SgdHyper;

  /** Creates the optimizer over `params` (tensors or `[name, tensor]` pairs). */
  constructor(params: ParamsInput, options: SGDOptions) {
    checkOptionKeys("SGD", options, OPTION_KEYS);
    if (options === undefined || options.lr === undefined) throw new TypeError("SGD: options.lr is required");
    super("SGD", params, options.lr, options.maxGradNorm);
    this.#h = checkHyper("SGD", options as unknown as Record<string, unknown>);
  }

  /** The momentum factor μ. */
  get momentum(): number {
    return this.#h.momentum;
  }
  /** The dampening τ. */
  get dampening(): number {
    return this.#h.dampening;
  }
  /** Whether Nesterov momentum is used. */
  get nesterov(): boolean {
    return this.#h.nesterov;
  }
  /** The L2 weight decay λ. */
  get weightDecay(): number {
    return this.#h.weightDecay;
  }

  /** `["momentum_buffer"]`. */
  protected get stateKinds(): readonly string[] {
    return ["momentum_buffer"];
  }

  /** True: the fused update applies a clip coefficient itself. */
  protected override get fusesGradScale(): boolean {
    return true;
  }

  /** One parameter's SGD update (see the class docs for the formulas). */
  protected updateParameter(name: string, p: Tensor, g: Tensor, gradScale: number): void {
    const { momentum, dampening, nesterov, weightDecay } = this.#h;
    if (fusedCpuF32(p, g)) {
      // Same arithmetic in one pass, in place (see fused_sgd.ts); bit-identical to the ops below.
      const first = momentum !== 0 && !this.getState(name, "momentum_buffer");
      const buf = momentum !== 0 ? this.mutableState(name, "momentum_buffer", p) : undefined;
      fusedSgdUpdate(p, g, buf, { lr: this.lr, momentum, dampening, nesterov, weightDecay, first, gradScale });
      return;
    }
    let d = weightDecay !== 0 ? g.add(p.mul(weightDecay)) : g;
    if (momentum !== 0) {
      const prev = this.getState(name, "momentum_buffer");
      let buf: Tensor;
      if (!prev) {
        // The buffer outlives the gradient: copy it rather than sharing its storage.
        buf = d === g ? zerosLike(g).assign_(g) : d;
      } else {
        buf = prev.mul(momentum).add(dampening !== 0 ? d.mul(1 - dampening) : d);
      }
      this.setState(name, "momentum_buffer", buf);
      d = nesterov ? d.add(buf.mul(momentum)) : buf;
    }
    p.assign_(p.sub(d.mul(this.lr)));
  }

  /** `momentum`, `dampening`, `nesterov`, `weightDecay`. */
  protected hyperState(): Record<string, number | boolean> {
    return { ...this.#h };
  }

  /** Validates saved SGD hyperparameters; the returned function applies them. */
  protected prepareHyper(hyper: Record<string, number | boolean>): () => void {
    const owner = "SGD.loadStateDict";
    checkHyperKeys(owner, hyper, HYPER_KEYS);
    const h = checkHyper(owner, hyper);
    return () => {
      this.#h = h;
    };
  }
}
