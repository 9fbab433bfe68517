/**
 * The experts of a Mixture-of-Experts layer: E experts of one architecture whose weights are stacked along a
 * leading expert axis, run in one of two layouts:
 *
 * - `runGrouped(x, groups)`: `x` [R, d] holds each expert's rows one after the other, expert e's at
 *   `groups.offsets[e] … offsets[e+1]` (an i32 tensor, never read on the host); every matrix product is ONE
 *   grouped matmul (`groupedMatmul`), so each expert works on exactly its rows, and a bias is added per row
 *   (`b[groups.rowExpert]`). This is what `MoELayer` runs (the default `"grouped"` dispatch).
 * - `run(x)`: `x` [E, M, d], row block i through expert i, as ONE batched matmul chain (`[E, M, d] @ [E, d, h]
 *   …`): the padded dispatch.
 *
 * Three architectures implement {@link Experts}:
 *
 * - {@link FfnExperts}: two-layer MLP with biases, `act(x·W1 + b1)·W2 + b2` (GELU or ReLU);
 * - {@link GluExperts}: gated linear unit without biases, `(act(x·Wg) ⊙ x·Wu)·Wd` (SwiGLU or GeGLU);
 * - {@link LinearExperts}: one bias-free d×d matrix, `x·W`.
 *
 * Each weight is a typed field (`w1`, `wGate`, `w`, …), registered as a parameter of the same name. Every
 * weight is initialised like PyTorch's `nn.Linear`, per expert: uniform ±1/√fan_in, drawn in the order the
 * fields are listed (that order is the random stream's, so seeded models stay the same).
 *
 * @example
 * ```ts
 * import { FfnExperts, Generator, randn, tensor } from "@moegrad/moegrad";
 * const experts = new FfnExperts(4, 8, 16, { generator: new Generator(0) });
 * console.log(experts.w1.shape, experts.run(randn([4, 3, 8])).shape); // [4, 8, 16] [4, 3, 8]
 * // Grouped: expert 0 on rows 0–1, expert 2 on rows 2–4, experts 1 and 3 on none.
 * const i32 = { dtype: "i32" } as const;
 * const groups = { offsets: tensor([0, 2, 2, 5, 5], i32), rowExpert: tensor([0, 0, 2, 2, 2], i32) };
 * console.log(experts.runGrouped(randn([5, 8]), groups).shape); // [5, 8]
 * ```
 *
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import { groupedMatmul } from "../core/ops/grouped.ts";
import { biasAct } from "../core/ops/fused.ts";
import { Module } from "../nn/module.ts";
import { type InitOptions, uniform } from "../nn/init.ts";

/** Expert architectures: two-layer MLP (with biases), gated GLU (no biases), or one bias-free d×d matrix. */
export type ExpertKind = "ffn" | "glu" | "linear";

/** Expert nonlinearities (which one an architecture allows: {@link EXPERT_ACTIVATIONS}). */
export type ExpertActivation = "gelu" | "relu" | "silu";

/**
 * The nonlinearities each architecture allows, its default first: ffn GELU (or ReLU), glu SiLU (or GELU);
 * `"linear"` has none and accepts (and ignores) any.
 */
export const EXPERT_ACTIVATIONS: Readonly<Record<ExpertKind, readonly ExpertActivation[]>> = Object.freeze({
  ffn: Object.freeze(["gelu", "relu"] as const),
  glu: Object.freeze(["silu", "gelu"] as const),
  linear: Object.freeze(["gelu", "relu", "silu"] as const),
});

/** E experts of one architecture, run as one batched computation. */
export interface Experts {
  /** The architecture. */
  readonly kind: ExpertKind;
  /** Number of experts E. */
  readonly numExperts: number;
  /** Model width d (input and output). */
  readonly dim: number;
  /** Hidden width h (d for `"linear"`). */
  readonly hidden: number;
  /** `x` [E, M, d] (row block i through expert i) → [E, M, d]. */
  run(x: Tensor): Tensor;
  /**
   * `x` [R, d] (expert e on rows `groups.offsets[e] … offsets[e+1]`) → [R, d]; the rows no expert owns come out
   * with unspecified values.
   */
  runGrouped(x: Tensor, groups: ExpertGroups): Tensor;
}

/** Which rows of a grouped batch each expert owns (a `DispatchPlan` is one). */
export interface ExpertGroups {
  /** i32 [E + 1], nondecreasing: expert e owns rows `offsets[e] ≤ r < offsets[e+1]`. */
  offsets: Tensor;
  /** i32 [R]: the expert of each row, in [0, E) (for per-expert biases; any expert for a row no expert owns). */
  rowExpert: Tensor;
}

/** Options of the expert modules: the init stream, device and dtype of the weights. */
export interface ExpertsOptions<A extends ExpertActivation = ExpertActivation> extends InitOptions {
  /** The nonlinearity (default: the architecture's, see {@link EXPERT_ACTIVATIONS}). */
  activation?: A;
}

/** `[E, …shape]` uniform ±1/√fanIn (PyTorch `nn.Linear`'s init, per expert). */
function expertWeight(shape: number[], fanIn: number, init: InitOptions): Tensor {
  const bound = 1 / Math.sqrt(fanIn);
  return uniform(shape, -bound, bound, { generator: init.generator, device: init.device, dtype: init.dtype });
}

function act(x: Tensor, name: ExpertActivation): Tensor {
  return name === "relu" ? x.relu() : name === "silu" ? x.silu() : x.gelu();
}

/**
 * Two-layer MLP experts with biases: `act(x·W1 + b1)·W2 + b2`.
 *
 * @example
 * ```ts
 * import { FfnExperts, randn } from "@moegrad/moegrad";
 * const experts = new FfnExperts(2, 4, 8, { activation: "relu" });
 * console.log(experts.namedParameters().map(([n]) => n), experts.run(randn([2, 5, 4])).shape);
 * // ["w1", "b1", "w2", "b2"] [2, 5, 4]
 * ```
 */
export class FfnExperts extends Module implements Experts {
  /** Always `"ffn"`. */
  readonly kind: "ffn" = "ffn";
  /** Number of experts E. */
  readonly numExperts: number;
  /** Model width d. */
  readonly dim: number;
  /** Hidden width h. */
  readonly hidden: number;
  /** GELU (default) or ReLU. */
  readonly activation: "gelu" | "relu";
  /** First layer [E, d, h]. */
  readonly w1: Tensor;
  /** First bias [E, h]. */
  readonly b1: Tensor;
  /** Second layer [E, h, d]. */
  readonly w2: Tensor;
  /** Second bias [E, d]. */
  readonly b2: Tensor;

  /** Draws `w1`, `b1`, `w2`, `b2` (in that order). */
  constructor(numExperts: number, dim: number, hidden: number, options: ExpertsOptions<"gelu" | "relu"> = {}) {
    super();
    this.numExperts = numExperts;
    this.dim = dim;
    this.hidden = hidden;
    this.activation = options.activation ?? "gelu";
    const [e, d, h] = [numExperts, dim, hidden];
    this.w1 = this.param("w1", expertWeight([e, d, h], d, options));
    this.b1 = this.param("b1", expertWeight([e, h], d, options));
    this.w2 = this.param("w2", expertWeight([e, h, d], h, options));
    this.b2 = this.param("b2", expertWeight([e, d], h, options));
  }

  /** See {@link Experts.run}. */
  run(x: Tensor): Tensor {
    // The bias add and the activation are one fused kernel (bit-identical to add, then the activation).
    const h = biasAct(x.matmul(this.w1), this.b1.unsqueeze(1), this.activation);
    return h.matmul(this.w2).add(this.b2.unsqueeze(1));
  }

  /** See {@link Experts.runGrouped}. */
  runGrouped(x: Tensor, groups: ExpertGroups): Tensor {
    const { offsets, rowExpert } = groups;
    // As in run(): the bias add and the activation are one kernel (bit-identical to add, then act).
    const h = biasAct(groupedMatmul(x, this.w1, offsets), this.b1.indexSelect(0, rowExpert), this.activation);
    return groupedMatmul(h, this.w2, offsets).add(this.b2.indexSelect(0, rowExpert));
  }
}

/**
 * Gated experts without biases: `(act(x·Wg) ⊙ x·Wu)·Wd` (SwiGLU by default).
 *
 * @example
 * ```ts
 * import { GluExperts, randn } from "@moegrad/moegrad";
 * const experts = new GluExperts(2, 4, 8);
 * console.log(experts.activation, experts.wDown.shape, experts.run(randn([2, 5, 4])).shape); // silu [2, 8, 4] [2, 5, 4]
 * ```
 */
export class GluExperts extends Module implements Experts {
  /** Always `"glu"`. */
  readonly kind: "glu" = "glu";
  /** Number of experts E. */
  readonly numExperts: number;
  /** Model width d. */
  readonly dim: number;
  /** Hidden width h. */
  readonly hidden: number;
  /** SiLU (default) or GELU. */
  readonly activation: "silu" | "gelu";
  /** Gate projection [E, d, h]. */
  readonly wGate: Tensor;
  /** Up projection [E, d, h]. */
  readonly wUp: Tensor;
  /** Down projection [E, h, d]. */
  readonly wDown: Tensor;

  /** Draws `wGate`, `wUp`, `wDown` (in that order). */
  constructor(numExperts: number, dim: number, hidden: number, options: ExpertsOptions<"silu" | "gelu"> = {}) {
    super();
    this.numExperts = numExperts;
    this.dim = dim;
    this.hidden = hidden;
    this.activation = options.activation ?? "silu";
    const [e, d, h] = [numExperts, dim, hidden];
    this.wGate = this.param("wGate", expertWeight([e, d, h], d, options));
    this.wUp = this.param("wUp", expertWeight([e, d, h], d, options));
    this.wDown = this.param("wDown", expertWeight([e, h, d], h, options));
  }

  /** See {@link Experts.run}. */
  run(x: Tensor): Tensor {
    return act(x.matmul(this.wGate), this.activation).mul(x.matmul(this.wUp)).matmul(this.wDown);
  }

  /** See {@link Experts.runGrouped}. */
  runGrouped(x: Tensor, { offsets }: ExpertGroups): Tensor {
    const gate = act(groupedMatmul(x, this.wGate, offsets), this.activation);
    return groupedMatmul(gate.mul(groupedMatmul(x, this.wUp, offsets)), this.wDown, offsets);
  }
}

/**
 * Bias-free linear experts: `x·W` (the reference vectors' experts).
 *
 * @example
 * ```ts
 * import { LinearExperts, randn } from "@moegrad/moegrad";
 * const experts = new LinearExperts(3, 4);
 * console.log(experts.w.shape, experts.hidden, experts.run(randn([3, 2, 4])).shape); // [3, 4, 4] 4 [3, 2, 4]
 * ```
 */
export class LinearExperts extends Module implements Experts {
  /** Always `"linear"`. */
  readonly kind: "linear" = "linear";
  /** Number of experts E. */
  readonly numExperts: number;
  /** Model width d. */
  readonly dim: number;
  /** Equal to `dim`. */
  readonly hidden: number;
  /** The matrices [E, d, d]. */
  readonly w: Tensor;

  /** Draws `w`. */
  constructor(numExperts: number, dim: number, options: InitOptions = {}) {
    super();
    this.numExperts = numExperts;
    this.dim = dim;
    this.hidden = dim;
    this.w = this.param("w", expertWeight([numExperts, dim, dim], dim, options));
  }

  /** See {@link Experts.run}. */
  run(x: Tensor): Tensor {
    return x.matmul(this.w);
  }

  /** See {@link Experts.runGrouped}. */
  runGrouped(x: Tensor, { offsets }: ExpertGroups): Tensor {
    return groupedMatmul(x, this.w, offsets);
  }
}

/** The expert modules of this file, told apart by `kind` (`if (experts.kind === "ffn") experts.w1 …`). */
export type BuiltinExperts = FfnExperts | GluExperts | LinearExperts;

/**
 * The experts of architecture `kind` (`hidden` is ignored by `"linear"`; `activation` must be one that
 * {@link EXPERT_ACTIVATIONS} allows for `kind`, and is ignored by `"linear"`).
 *
 * @example
 * ```ts
 * import { createExperts } from "@moegrad/moegrad";
 * const experts = createExperts("glu", 4, 8, 16, { activation: "gelu" });
 * if (experts.kind === "glu") console.log(experts.wGate.shape); // [4, 8, 16]
 * ```
 */
export function createExperts(
  kind: ExpertKind,
  numExperts: number,
  dim: number,
  hidden: number,
  options: ExpertsOptions = {},
): BuiltinExperts {
  const { activation, ...init } = options;
  if (activation !== undefined && !EXPERT_ACTIVATIONS[kind].includes(activation)) {
    throw new RangeError(`createExperts: activation of "${kind}" experts must be one of ${EXPERT_ACTIVATIONS[kind]}`);
  }
  if (kind === "linear") return new LinearExperts(numExperts, dim, init);
  if (kind === "ffn") return new FfnExperts(numExperts, dim, hidden, { ...init, activation: activation as "gelu" });
  return new GluExperts(numExperts, dim, hidden, { ...init, activation: activation as "silu" });
}
