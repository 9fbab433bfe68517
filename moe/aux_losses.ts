/**
 * Auxiliary router losses: the Switch load-balancing loss (top-1), its top-k (Mixtral) version, and the
 * ST-MoE router z-loss (ESTIMATORS.md §2.3, §7.2, §7.3).
 *
 * Balance losses are `L = E · Σ_i f_i · P̄_i` with `P̄_i = mean_t p_ti` (gradient flows only through `P̄`) and
 * `f_i` the fraction of hard assignments: `f_i = counts_i / N` where `counts_i` counts every (token, slot)
 * routed to `i`. For top-1 this is the Switch `f`; for top-k it is the transformers Mixtral formula (the mean
 * over tokens of the K×E one-hot, summed over k), so the loss is 1 (top-1) or K (top-k) at perfectly uniform
 * routing.
 *
 * Reference quirk: the SparseMixer routers compute `f = counts / (Σ counts + 1e-6)` as an int/float division
 * that PyTorch does in **float32** even in float64 runs (≈1e-7 relative effect). We compute `f` in the
 * working dtype of `probs`; pass `eps: 1e-6` to add the reference's denominator term (the f32 rounding is not
 * reproduced, so compare with ~1e-7 relative tolerance against those vectors).
 *
 * Global balancing: {@link BalanceStats} accumulates expert counts across micro-batches (on the device, no
 * host sync) and can be passed as `global` to use the accumulated `f` instead of the local one; `P̄` stays the
 * current micro-batch's (the gradient only flows through it).
 *
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import { OpError } from "../core/errors.ts";
import { noGrad } from "../core/autograd.ts";
import { oneHot } from "../core/ops/index.ts";
import { zeros } from "../core/ops/creation.ts";

/** Options of the balance losses. */
export interface BalanceLossOptions {
  /** Use the expert frequencies accumulated in these stats instead of this batch's. */
  global?: BalanceStats;
  /** Added to the number of tokens in the denominator of `f` (the SparseMixer routers use 1e-6; default 0). */
  eps?: number;
}

function assignmentCounts(experts: Tensor, numExperts: number, dtype: Tensor["dtype"]): Tensor {
  return noGrad(() => oneHot(experts.reshape(-1), numExperts, dtype).sum(0));
}

function checkProbs(name: string, probs: Tensor, numExperts: number): void {
  if (probs.rank !== 2 || probs.shape[1] !== numExperts) {
    throw new OpError(name, `probs must be [N, ${numExperts}], got [${probs.shape.join(", ")}]`);
  }
}

function balance(name: string, probs: Tensor, experts: Tensor, numExperts: number, o: BalanceLossOptions): Tensor {
  checkProbs(name, probs, numExperts);
  const n = probs.shape[0];
  if (experts.shape[0] !== n) throw new OpError(name, `experts has ${experts.shape[0]} rows, probs has ${n}`);
  const f = o.global
    ? o.global.frequencies(probs.dtype, o.eps)
    : assignmentCounts(experts, numExperts, probs.dtype).div(n + (o.eps ?? 0));
  return f.mul(probs.mean(0)).sum().mul(numExperts);
}

/**
 * Switch load-balancing loss `E · Σ_i f_i · P̄_i` for top-1 routing: `probs` [N, E], `experts` i32 [N] or
 * [N, 1] (the hard assignments actually used).
 */
export function switchBalanceLoss(
  probs: Tensor,
  experts: Tensor,
  numExperts: number,
  options: BalanceLossOptions = {},
): Tensor {
  if (!(experts.rank === 1 || (experts.rank === 2 && experts.shape[1] === 1))) {
    throw new OpError("switchBalanceLoss", `experts must be [N] or [N, 1], got [${experts.shape.join(", ")}]`);
  }
  return balance("switchBalanceLoss", probs, experts, numExperts, options);
}

/**
 * Top-k load-balancing loss (transformers Mixtral formula, no coefficient): `experts` i32 [N, K];
 * `f_i = (1/N) Σ_t Σ_k [experts_tk = i]`; value K at perfectly uniform routing.
 */
export function topkBalanceLoss(
  probs: Tensor,
  experts: Tensor,
  numExperts: number,
  options: BalanceLossOptions = {},
): Tensor {
  if (experts.rank !== 2) throw new OpError("topkBalanceLoss", `experts must be [N, K], got rank ${experts.rank}`);
  return balance("topkBalanceLoss", probs, experts, numExperts, options);
}

/**
 * Expert counts accumulated across micro-batches (or data-parallel shards) for global-batch balancing.
 * `add()` each micro-batch's hard assignments (i32 [N] or [N, K]), then pass the stats as `global` to a
 * balance loss: its `f` is `accumulated counts / accumulated tokens` (tokens, not slots, as in the local
 * formulas). Counts stay on the device; `reset()` at the start of each optimizer step.
 */
export class BalanceStats {
  /** Number of experts. */
  readonly numExperts: number;
  #counts: Tensor | null = null;
  #tokens = 0;
  /** Stats for `numExperts` experts. */
  constructor(numExperts: number) {
    this.numExperts = numExperts;
  }
  /** Adds a micro-batch's assignments (i32 [N] or [N, K]). */
  add(experts: Tensor): this {
    const c = assignmentCounts(experts, this.numExperts, "i32");
    this.#counts = this.#counts ? noGrad(() => this.#counts!.add(c)) : c;
    this.#tokens += experts.shape[0];
    return this;
  }
  /** Tokens added so far. */
  get tokens(): number {
    return this.#tokens;
  }
  /** Accumulated counts per expert (i32 [E], on the assignments' device; zeros before any `add`). */
  counts(): Tensor {
    return this.#counts ?? zeros([this.numExperts], { dtype: "i32" });
  }
  /** `f = counts / (tokens + eps)` in the float `dtype` (no gradient). */
  frequencies(dtype: Tensor["dtype"] = "f32", eps = 0): Tensor {
    if (this.#tokens === 0) throw new OpError("BalanceStats", "no assignments were added");
    return noGrad(() => this.#counts!.astype(dtype).div(this.#tokens + eps));
  }
  /** Forgets everything added. */
  reset(): void {
    this.#counts = null;
    this.#tokens = 0;
  }
}

/** Router z-loss `(1/N) Σ_t (logsumexp_i z_ti)²` of logits [N, E] (coefficient not included). */
export function routerZLoss(logits: Tensor): Tensor {
  if (logits.rank !== 2) throw new OpError("routerZLoss", `logits must be [N, E], got rank ${logits.rank}`);
  return logits.logsumexp(-1).square().mean();
}
