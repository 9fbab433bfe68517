/**
 * The dispatch of a Mixture-of-Experts layer, as pure functions: {@link planDispatch} decides where every
 * (token, slot) pair goes, {@link dispatchRows} gathers the tokens into the experts' rows, the experts run on
 * them, {@link gatherPairs} reads each pair's row back and {@link combinePairs} gates the rows and sums them
 * per token. `MoELayer.dispatch` chains them.
 *
 * ## Dispatch (no host sync)
 * The (token, slot) pairs are flattened (pair `j = t·K + k`), stably sorted by expert, and each sorted pair
 * gets its position inside its expert's group (`j − offset[expert]`, offsets = exclusive cumsum of the
 * per-expert counts). All of it is computed on the device; nothing is read back on the host. Then, by `mode`:
 *
 * - **`"grouped"`** (the default, on every device): the experts' rows are the sorted pairs themselves, `[R, d]`,
 *   expert e owning rows `offsets[e] … offsets[e+1]` ({@link DispatchPlan.offsets}, an i32 tensor), and the
 *   experts run as an exact grouped GEMM on them (`Experts.runGrouped`: `groupedMatmul` with those offsets, a
 *   per-row bias gathered by {@link DispatchPlan.rowExpert}). No padding: the expert FLOPs are those of the N·K
 *   routed rows, whatever the imbalance. Dropless, row j IS sorted pair j, so dispatching is one gather of the
 *   tokens and {@link gatherPairs} returns the experts' output as it is.
 * - **`"padded"`** (kept for comparison): pairs are scattered into a padded buffer `[E, C, d]` at row
 *   `expert·C + position` and the experts run as ONE batched matmul chain `[E, C, d] @ [E, d, h] …`
 *   (`Experts.run`). The rows past an expert's load are all-zero padding: on the CPU (`padding: "auto"`, i.e.
 *   `"max-load"` there) C is cut to the busiest expert's load by a host read of the counts, `(1 + imbalance)`×
 *   the needed FLOPs; on WebGPU the static `C` avoids a CPU↔GPU sync but costs `E/K`× the FLOPs when dropless.
 *
 * The static capacity ({@link expertCapacity}) is: dropless `C = N` (an expert can receive each token at most
 * once, because estimators pick distinct experts per token); with a capacity factor,
 * `C = ceil(capacityFactor · N · K / E)`. Pairs whose position is ≥ C — the latest tokens of an over-full
 * expert, since the stable sort keeps token order — are dropped: their gate is multiplied by 0, so the slot
 * contributes nothing (the residual of the surrounding block carries the token), and the number dropped is
 * reported in the plan (and in `MoELayer.lastMetrics`). The grouped mode gives expert e only its
 * `min(count_e, C)` kept rows (offsets = cumsum of the clamped counts, on the device) in a buffer of the
 * static size `R = min(N·K, E·C)`; rows past `offsets[E]` belong to no expert (they come out zero and are
 * never read). A dropped pair's slot points at its expert's last kept row, to which it adds zeros, and the
 * gate of 0 makes what it reads back irrelevant — the padded mode's rule.
 *
 * ## Same numbers either way
 * Every expert output row is the same dot products in the same order in both modes (the grouped CPU kernel
 * picks its matmul kernel from the largest group, as the batched matmul does from the max-load buffer, see
 * `kernels/cpu/grouped_matmul.ts`), and the padding rows only ever add exact zeros to the weight gradients.
 * So in f64 the grouped dispatch gives the padded dispatch's bits (forward, and the gradients of x, the
 * router and every weight). In f32 the same holds for the forward and the x and weight-matrix gradients
 * against `padding: "max-load"`; the expert biases' gradients (`b1`, `b2` of `"ffn"` experts) differ in the
 * last bits: the grouped path sums each expert's rows in order into an f32 accumulator (the VJP of the row
 * gather, `indexAdd`) where the padded path summed the same rows in an f64 accumulator (the VJP of the
 * broadcast bias add) — unavoidable without a dedicated segment-sum kernel. The WebGPU kernels sum in the same
 * orders as their CPU counterparts but round differently (f32 everywhere): results agree within f32
 * tolerance.
 *
 * @example
 * ```ts
 * import { combinePairs, dispatchRows, gatherPairs, planDispatch, randn, tensor } from "@moegrad/moegrad";
 * const x = randn([3, 2]);
 * const experts = tensor([[1], [0], [1]], { dtype: "i32" }); // top-1 routing of 3 tokens over 2 experts
 * const plan = planDispatch(experts, { numExperts: 2, capacity: 3, dtype: x.dtype, device: x.device });
 * const rows = dispatchRows(x, plan); // [3, 2]: token 1 (expert 0), then tokens 0 and 2 (expert 1)
 * console.log(await plan.offsets.data()); // Int32Array [0, 1, 3]: expert e owns rows offsets[e]…offsets[e+1]
 * const y = combinePairs(gatherPairs(rows.mul(2), plan), tensor([[1], [1], [1]]), plan); // "experts" that double
 * console.log(rows.shape, y.shape); // [3, 2] [3, 2]
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
import { concat } from "../core/ops/layout.ts";
import type { ExpertGroups } from "./experts.ts";

/** How the experts receive their rows: an exact grouped GEMM over the sorted rows, or a padded batch (module docs). */
export type DispatchMode = "grouped" | "padded";

/** Rows per expert in the padded mode's buffer (see the module docs; the grouped mode has no padding). */
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
  /** The static capacity C ({@link expertCapacity}); an expert keeps at most `min(C, N)` rows. */
  capacity: number;
  /** `"grouped"` (default) or `"padded"` (see the module docs). */
  mode?: DispatchMode;
  /**
   * Padded mode only (the grouped mode ignores it): `"max-load"` cuts the buffer to the busiest expert's load
   * (a host read), `"static"` does not, `"auto"` (default): max-load where reads are free.
   */
  padding?: DispatchPadding;
  /**
   * Which pairs are routed at all, bool [N, K] (`Routing.active`; absent: every pair). An inactive pair gets no
   * row and `keep` 0, and is not counted as dropped (expert choice: a token takes 0…E of its K = E slots).
   */
  active?: Tensor;
  /** Dtype of the tokens (of the `keep` mask and the `dropped` count). */
  dtype: DType;
  /** Device of the tokens. */
  device: Device;
}

/**
 * Where every (token, slot) pair goes; all per-pair index tensors are over the pairs in expert-sorted order. It
 * is also the {@link ExpertGroups} of the experts' rows (`offsets`, `rowExpert`), so `Experts.runGrouped` takes it.
 */
export interface DispatchPlan extends ExpertGroups {
  /** Number of tokens N. */
  numTokens: number;
  /** Slots per token K. */
  topK: number;
  /** Number of experts E. */
  numExperts: number;
  /** The layout of the experts' rows. */
  mode: DispatchMode;
  /**
   * Most rows one expert gets: padded, the rows per expert of the buffer (C after the padding policy);
   * grouped, the static capacity `min(C, N)`.
   */
  capacity: number;
  /** Rows R of the experts' buffer: grouped `min(N·K, E·C)` (N·K when dropless), padded `E·C`. */
  rows: number;
  /**
   * True when row j of the buffer is sorted pair j (grouped and dropless): dispatching is one gather of the
   * tokens and {@link gatherPairs} returns the experts' output as it is.
   */
  oneRowPerPair: boolean;
  /**
   * i32 [E + 1]: expert e owns rows `offsets[e] ≤ r < offsets[e+1]` of the buffer (grouped: the exclusive cumsum
   * of the kept counts `min(count_e, C)`; padded: `e·C`, padding included). Computed on the device.
   */
  offsets: Tensor;
  /** i32 [R]: the expert of each buffer row (grouped: E − 1 for the rows past `offsets[E]`, which no pair reads). */
  rowExpert: Tensor;
  /** i32 [N·K]: the pair index `t·K + k` of each sorted position (a stable sort by expert). */
  order: Tensor;
  /** i32 [N·K]: the expert of each sorted pair (E − 1 for the inactive pairs, which come last with `keep` 0). */
  sortedExperts: Tensor;
  /**
   * i32 [N·K]: the buffer row of each sorted pair: padded `expert·C + position`, grouped
   * `offsets[expert] + position` (clamped to the expert's last row for dropped pairs).
   */
  slot: Tensor;
  /** i32 [N·K]: the token of each sorted pair. */
  token: Tensor;
  /** Float [N·K]: 1 for a kept pair, 0 for a dropped one (position ≥ C). */
  keep: Tensor;
  /** Float scalar: the number of dropped pairs (active pairs past their expert's capacity). */
  dropped: Tensor;
}

/**
 * Plans the dispatch of a routing's chosen experts `experts` i32 [N, K] (no gradient): sorts the pairs by
 * expert, gives each its position and buffer row, and marks those past the capacity as dropped. The grouped
 * mode (default) reads nothing on the host.
 */
export function planDispatch(experts: Tensor, options: DispatchPlanOptions): DispatchPlan {
  const [n, k] = experts.shape;
  const { numExperts: e, dtype, device } = options;
  const mode = options.mode ?? "grouped";
  const nk = n * k;
  return noGrad(() => {
    const active = options.active?.reshape(nk);
    // An inactive pair sorts after every routed one, as the sentinel expert E; it is then clamped to E − 1 for
    // indexing and kept out by `keep`.
    const flat = active ? experts.reshape(nk).where(active, e) : experts.reshape(nk);
    const order = flat.argsort(); // stable: ties keep pair order, i.e. token order
    const sortedKey = flat.indexSelect(0, order);
    const sortedE = active ? sortedKey.minimum(e - 1) : sortedKey;
    const counts = active ? oneHot(flat, e + 1, "i32").sum(0).slice(0, 0, e) : oneHot(flat, e, "i32").sum(0);
    const offsets = counts.cumsum(0).sub(counts); // exclusive
    const pos = arange(0, nk, 1, { dtype: "i32", device }).sub(offsets.indexSelect(0, sortedE));
    const token = arange(0, n, 1, { dtype: "i32", device }).reshape(n, 1).expand(n, k).reshape(nk)
      .indexSelect(0, order);
    const common = { numTokens: n, topK: k, numExperts: e, mode, order, sortedExperts: sortedE, token };
    const cap = Math.min(options.capacity, n);
    const layout = mode === "grouped"
      ? groupedLayout(counts, sortedE, pos, cap, n, e, active !== undefined)
      : paddedLayout(counts, sortedE, pos, options, n);
    const routed = active ? sortedKey.lt(e) : null;
    const inCapacity = pos.lt(layout.capacity);
    const keepF = (routed ? inCapacity.logicalAnd(routed) : inCapacity).astype(dtype);
    const dropped = routed ? routed.astype(dtype).sub(keepF).sum() : keepF.neg().add(1).sum();
    return { ...common, ...layout, keep: keepF, dropped };
  });
}

/** The buffer layout of a plan (the fields that depend on the mode). */
type Layout = Pick<DispatchPlan, "capacity" | "rows" | "oneRowPerPair" | "offsets" | "rowExpert" | "slot">;

/**
 * Grouped rows: expert e keeps `min(count_e, C)` rows, at the exclusive cumsum of the kept counts; all on the
 * device. Dropless (C = N) with every pair routed nothing can drop, so the rows are the sorted pairs themselves;
 * with inactive pairs the rows past the routed ones belong to no expert.
 */
function groupedLayout(
  counts: Tensor,
  sortedE: Tensor,
  pos: Tensor,
  cap: number,
  n: number,
  e: number,
  someInactive: boolean,
): Layout {
  const nk = pos.shape[0], device = pos.device;
  const zero = zeros([1], { dtype: "i32", device });
  if (cap >= n && !someInactive) {
    const offsets = concat([zero, counts.cumsum(0)]);
    const slot = arange(0, nk, 1, { dtype: "i32", device });
    return { capacity: cap, rows: nk, oneRowPerPair: true, offsets, rowExpert: sortedE, slot };
  }
  const kept = counts.minimum(cap);
  const ends = kept.cumsum(0); // offsets[1..E]
  const rows = Math.min(nk, e * cap);
  // Row r belongs to the expert whose range holds it: the number of experts whose rows end at or before r.
  const rowExpert = arange(0, rows, 1, { dtype: "i32", device }).unsqueeze(1).ge(ends.unsqueeze(0)).sum(1)
    .minimum(e - 1);
  const slot = ends.sub(kept).indexSelect(0, sortedE).add(pos.minimum(cap - 1));
  return { capacity: cap, rows, oneRowPerPair: false, offsets: concat([zero, ends]), rowExpert, slot };
}

/** Padded rows: a buffer of C rows per expert, C cut to the busiest expert's load when the padding policy reads it. */
function paddedLayout(counts: Tensor, sortedE: Tensor, pos: Tensor, options: DispatchPlanOptions, n: number): Layout {
  const device = pos.device, e = options.numExperts, padding = options.padding ?? "auto";
  let cap = Math.min(options.capacity, n);
  const readsFree = device.backend.readSync !== undefined;
  if (padding === "max-load" && !readsFree) {
    throw new TypeError(
      `MoELayer: padding "max-load" needs a device that reads synchronously (cpu), got ${device.name}`,
    );
  }
  if (padding === "max-load" || (padding === "auto" && readsFree)) {
    // Rows past the busiest expert's load are all zero padding: dropping them changes no result.
    let maxLoad = 0;
    for (const c of counts.dataSync()) maxLoad = Math.max(maxLoad, c);
    cap = Math.max(1, Math.min(cap, maxLoad));
  }
  const experts = arange(0, e, 1, { dtype: "i32", device });
  return {
    capacity: cap,
    rows: e * cap,
    oneRowPerPair: false,
    offsets: arange(0, e + 1, 1, { dtype: "i32", device }).mul(cap),
    rowExpert: experts.reshape(e, 1).expand(e, cap).reshape(e * cap),
    slot: sortedE.mul(cap).add(pos.minimum(cap - 1)),
  };
}

/**
 * Gathers tokens `x` [N, d] into the experts' rows [R, d] (`plan.rows`; grouped by `plan.offsets`, or the padded
 * buffer `[E, C, d]` flattened). Dropped pairs add zeros.
 */
export function dispatchRows(x: Tensor, plan: DispatchPlan): Tensor {
  const xs = x.indexSelect(0, plan.token);
  if (plan.oneRowPerPair) return xs;
  const like = { dtype: x.dtype, device: x.device };
  return zeros([plan.rows, x.shape[1]], like).indexAdd(0, plan.slot, xs.mul(plan.keep.unsqueeze(1)));
}

/** Scatters tokens `x` [N, d] into the padded mode's buffer [E, C, d] (dropped pairs add zeros). */
export function dispatchTokens(x: Tensor, plan: DispatchPlan): Tensor {
  if (plan.mode !== "padded") {
    throw new TypeError(
      'dispatchTokens: the plan is grouped (no [E, C, d] buffer); use dispatchRows, or mode "padded"',
    );
  }
  return dispatchRows(x, plan).reshape(plan.numExperts, plan.capacity, x.shape[1]);
}

/**
 * The rows of the experts' output (`[R, d]`, or the padded `[E, C, d]`) that belong to the pairs, in sorted
 * order → [N·K, d].
 */
export function gatherPairs(out: Tensor, plan: DispatchPlan): Tensor {
  const rows = out.reshape(plan.rows, out.shape[out.rank - 1]);
  return plan.oneRowPerPair ? rows : rows.indexSelect(0, plan.slot);
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
