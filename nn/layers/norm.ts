/**
 * Normalisation over the last axis: `LayerNorm` and `RMSNorm`.
 *
 * @module
 */
import { type Device, type FloatDType, layerNorm, ones, type Tensor, zeros } from "../../core/mod.ts";
import { Module } from "../module.ts";

/** Options of {@link LayerNorm}. */
export interface LayerNormOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Learn a scale and a shift (default true). */
  affine?: boolean;
  /** With `affine`, learn the shift too (default true). */
  bias?: boolean;
  /** Device of the parameters. */
  device?: Device | string;
  /** dtype of the parameters (default f32). */
  dtype?: FloatDType;
}

function checkDim(cls: string, dim: number): void {
  if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`${cls}: dim must be a positive integer, got ${dim}`);
}

function checkInput(cls: string, x: Tensor, dim: number): void {
  if (x.rank < 1 || x.shape[x.rank - 1] !== dim) {
    throw new RangeError(`${cls}: expected an input of shape [..., ${dim}], got [${x.shape.join(", ")}]`);
  }
}

/**
 * Layer normalisation over the last axis: (x − mean) / √(var + eps) · weight + bias, with the biased
 * variance (as PyTorch). Weight starts at 1, bias at 0. Runs the fused {@link layerNorm} op (one kernel
 * forward, one backward).
 *
 * @example
 * ```ts
 * import { tensor } from "@moegrad/moegrad";
 * import { LayerNorm } from "../mod.ts";
 * const ln = new LayerNorm(3);
 * console.log(await ln.forward(tensor([[1, 2, 3]])).data()); // ≈ [-1.2247, 0, 1.2247]
 * ```
 */
export class LayerNorm extends Module {
  /** The scale, `[dim]` (null without `affine`). */
  readonly weight: Tensor | null;
  /** The shift, `[dim]` (null without `affine` or `bias`). */
  readonly bias: Tensor | null;
  /** The normalised size. */
  readonly dim: number;
  /** The variance epsilon. */
  readonly eps: number;

  /** Creates the layer for inputs `[…, dim]`. */
  constructor(dim: number, options: LayerNormOptions = {}) {
    super();
    checkDim("LayerNorm", dim);
    this.dim = dim;
    this.eps = options.eps ?? 1e-5;
    const affine = options.affine ?? true;
    const opts = { device: options.device, dtype: options.dtype ?? "f32" };
    this.weight = affine ? this.param("weight", ones([dim], opts)) : null;
    this.bias = affine && (options.bias ?? true) ? this.param("bias", zeros([dim], opts)) : null;
  }

  /** Normalises `x` `[…, dim]`. */
  forward(x: Tensor): Tensor {
    checkInput("LayerNorm", x, this.dim);
    return layerNorm(x, { weight: this.weight, bias: this.bias, eps: this.eps });
  }
}

/** Options of {@link RMSNorm}. */
export interface RMSNormOptions {
  /** Added to the mean square (default 1e-6). */
  eps?: number;
  /** Learn a scale (default true). */
  affine?: boolean;
  /** Device of the parameters. */
  device?: Device | string;
  /** dtype of the parameters (default f32). */
  dtype?: FloatDType;
}

/**
 * Root-mean-square normalisation over the last axis: x / √(mean(x²) + eps) · weight (no centring, no
 * shift). Weight starts at 1.
 *
 * @example
 * ```ts
 * import { tensor } from "@moegrad/moegrad";
 * import { RMSNorm } from "../mod.ts";
 * const norm = new RMSNorm(2);
 * console.log(await norm.forward(tensor([[3, 4]])).data()); // ≈ [0.8485, 1.1314]
 * ```
 */
export class RMSNorm extends Module {
  /** The scale, `[dim]` (null without `affine`). */
  readonly weight: Tensor | null;
  /** The normalised size. */
  readonly dim: number;
  /** The epsilon. */
  readonly eps: number;

  /** Creates the layer for inputs `[…, dim]`. */
  constructor(dim: number, options: RMSNormOptions = {}) {
    super();
    checkDim("RMSNorm", dim);
    this.dim = dim;
    this.eps = options.eps ?? 1e-6;
    const opts = { device: options.device, dtype: options.dtype ?? "f32" };
    this.weight = options.affine ?? true ? this.param("weight", ones([dim], opts)) : null;
  }

  /** Normalises `x` `[…, dim]`. */
  forward(x: Tensor): Tensor {
    checkInput("RMSNorm", x, this.dim);
    const y = x.mul(x.square().mean(-1, true).add(this.eps).rsqrt());
    return this.weight ? y.mul(this.weight) : y;
  }
}
