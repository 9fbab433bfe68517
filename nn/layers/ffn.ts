/**
 * Position-wise feed-forward layers: the classic two-layer `FFN` and the gated `GLU` (SwiGLU / GeGLU).
 *
 * @module
 */
import { biasAct, type Tensor } from "../../core/mod.ts";
import { Module } from "../module.ts";
import type { InitOptions } from "../init.ts";
import { Linear } from "./linear.ts";

/** Options of {@link FFN}. */
export interface FFNOptions extends InitOptions {
  /** The hidden nonlinearity (default `"gelu"`, exact erf form). */
  activation?: "gelu" | "relu";
  /** Biases on both layers (default true). */
  bias?: boolean;
}

function act(x: Tensor, name: string): Tensor {
  switch (name) {
    case "gelu":
      return x.gelu();
    case "relu":
      return x.relu();
    case "silu":
      return x.silu();
    default:
      throw new TypeError(`unknown activation ${JSON.stringify(name)}`);
  }
}

/**
 * Two-layer MLP applied to the last axis: `fc2(act(fc1(x)))`, `dim → hidden → dim`.
 *
 * @example
 * ```ts
 * import { randn } from "@moegrad/moegrad";
 * import { FFN } from "../mod.ts";
 * const ffn = new FFN(16, 64, { activation: "relu" });
 * console.log(ffn.forward(randn([2, 5, 16])).shape); // [2, 5, 16]
 * ```
 */
export class FFN extends Module {
  /** `dim → hidden`. */
  readonly fc1: Linear;
  /** `hidden → dim`. */
  readonly fc2: Linear;
  /** The hidden nonlinearity. */
  readonly activation: "gelu" | "relu";

  /** Creates both layers. */
  constructor(dim: number, hidden: number, options: FFNOptions = {}) {
    super();
    this.activation = options.activation ?? "gelu";
    if (this.activation !== "gelu" && this.activation !== "relu") {
      throw new TypeError(`FFN: activation must be "gelu" or "relu", got ${JSON.stringify(this.activation)}`);
    }
    this.fc1 = this.child("fc1", new Linear(dim, hidden, options));
    this.fc2 = this.child("fc2", new Linear(hidden, dim, options));
  }

  /** `[…, dim]` → `[…, dim]`. */
  forward(x: Tensor): Tensor {
    const { weight, bias } = this.fc1;
    // With a bias, fc1's bias add and the activation are one fused kernel (bit-identical to the two ops).
    const h = bias ? biasAct(x.matmul(weight), bias, this.activation) : act(this.fc1.forward(x), this.activation);
    return this.fc2.forward(h);
  }
}

/** Options of {@link GLU}. */
export interface GLUOptions extends InitOptions {
  /** The gate nonlinearity: `"silu"` (SwiGLU, default) or `"gelu"` (GeGLU). */
  activation?: "silu" | "gelu";
  /** Biases on the three projections (default false, as in Llama/PaLM). */
  bias?: boolean;
}

/**
 * Gated linear unit feed-forward: `down(act(x·W_gate) ⊙ x·W_up)`, `dim → hidden → dim` — SwiGLU with
 * `"silu"`, GeGLU with `"gelu"`.
 *
 * @example
 * ```ts
 * import { randn } from "@moegrad/moegrad";
 * import { GLU } from "../mod.ts";
 * const swiglu = new GLU(16, 43);
 * console.log(swiglu.forward(randn([3, 16])).shape); // [3, 16]
 * ```
 */
export class GLU extends Module {
  /** The gate projection `dim → hidden`. */
  readonly gate: Linear;
  /** The value projection `dim → hidden`. */
  readonly up: Linear;
  /** The output projection `hidden → dim`. */
  readonly down: Linear;
  /** The gate nonlinearity. */
  readonly activation: "silu" | "gelu";

  /** Creates the three projections. */
  constructor(dim: number, hidden: number, options: GLUOptions = {}) {
    super();
    this.activation = options.activation ?? "silu";
    if (this.activation !== "silu" && this.activation !== "gelu") {
      throw new TypeError(`GLU: activation must be "silu" or "gelu", got ${JSON.stringify(this.activation)}`);
    }
    const lin = { ...options, bias: options.bias ?? false };
    this.gate = this.child("gate", new Linear(dim, hidden, lin));
    this.up = this.child("up", new Linear(dim, hidden, lin));
    this.down = this.child("down", new Linear(hidden, dim, lin));
  }

  /** `[…, dim]` → `[…, dim]`. */
  forward(x: Tensor): Tensor {
    return this.down.forward(act(this.gate.forward(x), this.activation).mul(this.up.forward(x)));
  }
}
