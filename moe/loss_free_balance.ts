/**
 * Auxiliary-loss-free load balancing (Wang et al. 2024, arXiv 2408.15664; DeepSeek-V3, arXiv 2412.19437;
 * ESTIMATORS.md §12): a per-expert bias `b` [E] — state, no gradient, the layer's buffer `expertBias`, so it is in
 * the state dict and every checkpoint — is added to the router's scores for the CHOICE of experts only
 * (`sel = topk(s + b)`, `RouteOptions.selectionBias`); the gates still come from the unbiased `s`.
 *
 * The update, once per optimizer step: `b_i ← b_i + u · sign(mean_j c_j − c_i)`, then `b ← b − mean(b)`, where
 * `c_i` is the number of (token, slot) pairs routed to expert i by every training forward since the previous update
 * (all micro-batches of the step) and `u` the update rate (default 1e-3, the papers' value). Choices the papers
 * leave open, made here:
 *
 * - **Trigger**: the training loop calls `MoELayer.updateExpertBias()` (or {@link updateExpertBiases} on the whole
 *   model) after `optimizer.step()`, as the papers update "after each training step"; the call reads nothing back
 *   (tensor ops on the device) and is a no-op for a layer without the option or when no training forward ran.
 * - **Re-centring**: `b` is re-centred to mean 0 after each update (torchtitan); the paper does not, and a
 *   common shift of `b` changes no choice, so this only keeps `b` bounded.
 * - **Load**: counted from the chosen experts before any capacity dropping (the routing decision is what `b`
 *   steers); evaluation forwards count nothing.
 * - `sign(0) = 0`: an expert exactly at the mean load keeps its bias.
 *
 * @example
 * ```ts
 * import { Generator, MoELayer, randn } from "@moegrad/moegrad";
 * const moe = new MoELayer(4, {
 *   numExperts: 4,
 *   estimator: "sigmoid-topk",
 *   estimatorOptions: { topK: 2 },
 *   lossFreeBalance: { rate: 1e-3 },
 *   generator: new Generator(0),
 * });
 * moe.forward(randn([8, 4])).sum().backward();
 * // optimizer.step() here, then:
 * moe.updateExpertBias();
 * console.log(moe.expertBias!.shape); // [4]
 * ```
 *
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import type { Device } from "../core/device.ts";
import type { FloatDType } from "../core/dtype.ts";
import { noGrad } from "../core/autograd.ts";
import { zeros } from "../core/ops/creation.ts";
import { Module } from "../nn/module.ts";
import { BalanceStats } from "./aux_losses.ts";

/** The default update rate `u` (Wang et al. 2024; DeepSeek-V3 uses 1e-3 for most of its training). */
export const LOSS_FREE_RATE = 1e-3;

/** The bias `b` (buffer `expertBias`), its update rate and the loads counted since the last update. */
export class LossFreeBalance extends Module {
  /** Update rate `u`. */
  readonly rate: number;
  /** The bias `b` [E] (buffer `expertBias`, zero-initialised). */
  readonly bias: Tensor;
  readonly #loads: BalanceStats;

  /** A zero bias for `numExperts` experts, updated at `rate`. */
  constructor(numExperts: number, rate: number, like: { dtype?: FloatDType; device?: Device | string } = {}) {
    super();
    if (!(rate > 0 && Number.isFinite(rate))) throw new RangeError(`lossFreeBalance: rate must be > 0, got ${rate}`);
    this.rate = rate;
    this.bias = this.buffer("expertBias", zeros([numExperts], like));
    this.#loads = new BalanceStats(numExperts);
  }

  /** Counts a training forward's chosen experts (i32 [N, K]) toward the next update. */
  record(experts: Tensor): void {
    this.#loads.add(experts);
  }

  /** Pairs counted since the last update, per expert (i32 [E]). */
  loads(): Tensor {
    return this.#loads.counts();
  }

  /** `b ← b + u·sign(mean c − c)`, re-centred to mean 0, then forgets the counts; no-op when nothing was counted. */
  update(): void {
    if (this.#loads.tokens === 0) return;
    noGrad(() => {
      const c = this.#loads.counts().astype(this.bias.dtype);
      const moved = this.bias.add(c.mean().sub(c).sign().mul(this.rate));
      this.bias.assign_(moved.sub(moved.mean()));
    });
    this.#loads.reset();
  }
}

/** A module with a loss-free bias to update (an `MoELayer`). */
interface HasExpertBias {
  updateExpertBias(): void;
}

/**
 * Calls `updateExpertBias()` on every submodule of `model` that has it (every `MoELayer`); call it after each
 * `optimizer.step()`.
 *
 * @example
 * ```ts
 * import { Generator, MoELayer, randn, updateExpertBiases } from "@moegrad/moegrad";
 * const moe = new MoELayer(4, { numExperts: 4, lossFreeBalance: {}, generator: new Generator(0) });
 * moe.forward(randn([8, 4]));
 * updateExpertBiases(moe);
 * ```
 */
export function updateExpertBiases(model: Module): void {
  for (const [, m] of model.namedModules()) {
    const candidate = m as unknown as Partial<HasExpertBias>;
    if (typeof candidate.updateExpertBias === "function") candidate.updateExpertBias();
  }
}
