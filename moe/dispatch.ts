/**
 * The dispatch of a Mixture-of-Experts layer, as pure functions: {@link planDispatch} decides where every
 * (token, slot) pair goes, {@link dispatchTokens} scatters the tokens into the experts' padded buffer
 * `[E, C, d]`, the experts run on the buffer (`Experts.run`), {@link gatherPairs} reads each pair's row back
 * and {@link combinePairs} gates the rows and sums them per token. `MoELayer.dispatch` chains them.
 *
 * ## Dispatch (no host sync)
 * The (token, slot) pairs are flattened (pair `j = t·K + k`), stably sorted by expert, and each sorted pair
 * gets its position inside its expert's group (`j − offset[expert]`, offsets = exclusive cumsum of the
 * per-expert counts). Pairs are scattered (`indexAdd`) into a padded buffer `[E, C, d]` at row
 * `expert·C + position`, the experts run as ONE batched matmul chain `[E, C, d] @ [E, d, h] …`, the rows of
 * the real pairs are gathered back (`indexSelect`), multiplied by their gates and combined per token with
 * `indexAdd`.
 *
 * The static capacity ({@link expertCapacity}) is: dropless `C = N` (an expert can receive each token at most
 * once, because estimators pick distinct experts per token); with a capacity factor,
 * `C = ceil(capacityFactor · N · K / E)`. Where the counts can be read for free (the CPU backend, which reads
 * synchronously), the buffer is cut to the busiest expert's load, `min(C, max_e count_e)` rows
 * (`padding: "max-load"`, the default there): the same rows in the same order minus all-zero padding, so the
 * results are the same (bit for bit in f64; in f32 the CPU may pick a different matmul kernel for the shorter
 * buffer, which rounds differently) and the expert matmuls cost about `(1 + imbalance)`× an exact grouped GEMM
 * instead of `E/K`×. On WebGPU reading the counts back would be a CPU↔GPU sync (≥ 10 ms), so the default there
 * is the static `C` (`padding: "static"`), sync-free but `E/K`× the FLOPs when dropless. With a capacity factor
 * the buffer uses `min(C, N)` rows and pairs whose position is ≥ C — the latest tokens of an over-full expert,
 * since the stable sort keeps token order — are dropped: their gate is multiplied by 0, so the slot contributes
 * nothing (the residual of the surrounding block carries the token), and the number dropped is reported in
 * the plan (and in `MoELayer.lastMetrics`).
 *
 * @example
 * ```ts
 * import { combinePairs, dispatchTokens, gatherPairs, planDispatch, randn, tensor } from "@moegrad/moegrad";
 * const x = randn([3, 2]);
 * const experts = tensor([[1], [0], [1]], { dtype: "i32" }); // top-1 routing of 3 tokens over 2 experts
 * const plan = planDispatch(experts, { numExperts: 2, capacity: 3, padding: "static", dtype: x.dtype, device: x.device });
 * const buffer = dispatchTokens(x, plan); // [2, 3, 2]: expert 0 gets token 1, expert 1 gets tokens 0 and 2
 * const y = combinePairs(gatherPairs(buffer.mul(2), plan), tensor([[1], [1], [1]]), plan); // "experts" that double
 * console.log(buffer.shape, y.shape); // [2, 3, 2] [3, 2]
 * ```
 *
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import type { Device } from "../core/device.ts";
import type { DType } from "../core/dtype.ts";
import { noGrad } from "../core/autograd.ts";
import { arange, zeros } from "../core/ops/creation.ts";
import { oneHot } from "../core/ops/index.ts";

/** Rows per expert in the dispatch buffer (see the module docs). */
export type DispatchPadding = "auto" | "max-load" | "static";

/**
 * Per-expert capacity for `numTokens` tokens using `topK` experts each: `numTokens` when dropless
 * (`capacityFactor` undefined), else `ceil(capacityFactor · numTokens · topK / numExperts)`.
 *
 * @example
 * ```ts
 * import { expertCapacity } from "@moegrad/moegrad";
 * console.log(expertCapacity(10, 2, 4), expertCapacity(10, 2, 4, 1.25)); // 10 7
 * ```
 */
export function expertCapacity(numTokens: number, topK: number, numExperts: number, capacityFactor?: number): number {
  return capacityFactor === undefined ? numTokens : Math.ceil(capacityFactor * numTokens * topK / numExperts);
}

/** Options of {@link planDispatch}. */
export interface DispatchPlanOptions {
  /** Number of experts E. */
  numExperts: number;
  /** The static capacity C ({@link expertCapacity}); the buffer has at most `min(C, N)` rows per expert. */
  capacity: number;
  /** `"max-load"` cuts the buffer to the busiest expert's load (a host read), `"static"` does not, `"auto"`: max-load where reads are free (see the module docs). */
  padding: DispatchPadding;
  /** Dtype of the tokens (of the `keep` mask and the `dropped` count). */
  dtype: DType;
  /** Device of the tokens. */
  device: Device;
}

/** Where every (token, slot) pair goes; all index tensors are over the pairs in expert-sorted order. */
export interface DispatchPlan {
  /** Number of tokens N. */
  numTokens: number;
  /** Slots per token K. */
  topK: number;
  /** Number of experts E. */
  numExperts: number;
  /** Rows per expert in the buffer (C after the padding policy). */
  capacity: number;
  /** i32 [N·K]: the pair index `t·K + k` of each sorted position (a stable sort by expert). */
  order: Tensor;
  /** i32 [N·K]: the expert of each sorted pair. */
  sortedExperts: Tensor;
  /** i32 [N·K]: the buffer row `expert·C + position` of each sorted pair (clamped for dropped pairs). */
  slot: Tensor;
  /** i32 [N·K]: the token of each sorted pair. */
  token: Tensor;
  /** Float [N·K]: 1 for a kept pair, 0 for a dropped one (position ≥ C). */
  keep: Tensor;
  /** Float scalar: the number of dropped pairs. */
  dropped: Tensor;
}

/**
 * Plans the dispatch of a routing's chosen experts `experts` i32 [N, K] (no gradient): sorts the pairs by
 * expert, gives each its position and buffer row, and marks those past the capacity as dropped.
 */
export function planDispatch(experts: Tensor, options: DispatchPlanOptions): DispatchPlan {
  const [n, k] = experts.shape;
  const { numExperts: e, dtype, device } = options;
  const nk = n * k;
  let cap = Math.min(options.capacity, n);
  return noGrad(() => {
    const flat = experts.reshape(nk);
    const order = flat.argsort(); // stable: ties keep pair order, i.e. token order
    const sortedE = flat.indexSelect(0, order);
    const counts = oneHot(flat, e, "i32").sum(0);
    const readsFree = device.backend.readSync !== undefined;
    if (options.padding === "max-load" && !readsFree) {
      throw new TypeError(
        `MoELayer: padding "max-load" needs a device that reads synchronously (cpu), got ${device.name}`,
      );
    }
    if (options.padding === "max-load" || (options.padding === "auto" && readsFree)) {
      // Rows past the busiest expert's load are all zero padding: dropping them changes no result.
      let maxLoad = 0;
      for (const c of counts.dataSync()) maxLoad = Math.max(maxLoad, c);
      cap = Math.max(1, Math.min(cap, maxLoad));
    }
    const offsets = counts.cumsum(0).sub(counts); // exclusive
    const pos = arange(0, nk, 1, { dtype: "i32", device }).sub(offsets.indexSelect(0, sortedE));
    const keep = pos.lt(cap);
    const slot = sortedE.mul(cap).add(pos.minimum(cap - 1));
    const token = arange(0, n, 1, { dtype: "i32", device }).reshape(n, 1).expand(n, k).reshape(nk)
      .indexSelect(0, order);
    const keepF = keep.astype(dtype);
    return {
      numTokens: n,
      topK: k,
      numExperts: e,
      capacity: cap,
      order,
      sortedExperts: sortedE,
      slot,
      token,
      keep: keepF,
      dropped: keepF.neg().add(1).sum(),
    };
  });
}

/** Scatters tokens `x` [N, d] into the experts' buffer [E, C, d] (dropped pairs add zeros). */
export function dispatchTokens(x: Tensor, plan: DispatchPlan): Tensor {
  const d = x.shape[1];
  const { numExperts: e, capacity: cap } = plan;
  const xs = x.indexSelect(0, plan.token).mul(plan.keep.unsqueeze(1));
  return zeros([e * cap, d], { dtype: x.dtype, device: x.device }).indexAdd(0, plan.slot, xs).reshape(e, cap, d);
}

/** The rows of the experts' output [E, C, d] that belong to the pairs, in sorted order → [N·K, d]. */
export function gatherPairs(out: Tensor, plan: DispatchPlan): Tensor {
  const d = out.shape[2];
  return out.reshape(plan.numExperts * plan.capacity, d).indexSelect(0, plan.slot);
}

/**
 * Gates the pairs' rows `rows` [N·K, d] (sorted order) with `gates` [N, K] (0 for dropped pairs) and sums them
 * per token → [N, d].
 */
export function combinePairs(rows: Tensor, gates: Tensor, plan: DispatchPlan): Tensor {
  const { numTokens: n, topK: k } = plan;
  const g = gates.reshape(n * k).indexSelect(0, plan.order).mul(plan.keep);
  const like = { dtype: rows.dtype, device: rows.device };
  return zeros([n, rows.shape[1]], like).indexAdd(0, plan.token, rows.mul(g.unsqueeze(1)));
}
