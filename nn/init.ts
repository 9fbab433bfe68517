/**
 * Seeded weight initialisers. Each returns a new tensor drawn from a {@link Generator} (the default one
 * unless `generator` is given) on `device` (default device unless given), f32 unless `dtype` says f64.
 *
 * **Fan convention.** moegrad stores a weight matrix as `[in, out]` (layers compute `x.matmul(W)`), the
 * transpose of PyTorch's `[out, in]`. So for a shape of rank ≥ 2, `fanIn = shape[rank − 2]` and
 * `fanOut = shape[rank − 1]`; leading axes are a batch of matrices (say, one per expert, `[E, in, out]`)
 * and do not enter the fans. A `[in, out]` weight here therefore gets exactly the statistics PyTorch gives
 * the `[out, in]` weight of the same layer. Rank < 2 has no fans (raise); pass `fans` to override.
 *
 * @example
 * ```ts
 * import { Generator } from "@moegrad/moegrad";
 * import { init } from "./mod.ts";
 * const g = new Generator(0);
 * const w = init.kaimingNormal([256, 128], { generator: g, nonlinearity: "relu" }); // std √2/√256
 * const e = init.truncatedNormal([1000, 64], 0.02, -0.04, 0.04, { generator: g });
 * console.log(w.shape, e.shape);
 * ```
 *
 * @module
 */
import {
  cpu,
  type Device,
  type FloatDType,
  full,
  type Generator,
  rand,
  randn,
  scope,
  type Shape,
  sizeOf,
  type Tensor,
  tensor,
} from "../core/mod.ts";

/** Where to draw: the stream, the device and the float dtype. */
export interface InitOptions {
  /** The stream to draw from (default: the global generator, see `manualSeed`). */
  generator?: Generator;
  /** The device of the result (default: the default device). */
  device?: Device | string;
  /** `f32` (default) or `f64`. */
  dtype?: FloatDType;
}

/** Fan-in and fan-out of a weight (see the module docs for the `[in, out]` convention). */
export interface Fans {
  /** The number of inputs each output sums over. */
  fanIn: number;
  /** The number of outputs each input feeds. */
  fanOut: number;
}

/** Options of the fan-based initialisers. */
export interface FanInitOptions extends InitOptions {
  /** Use these fans instead of the ones computed from the shape. */
  fans?: Fans;
}

/** Nonlinearities that {@link calculateGain} knows. */
export type Nonlinearity = "linear" | "sigmoid" | "tanh" | "relu" | "leakyRelu" | "selu";

/** Options of {@link kaimingUniform} and {@link kaimingNormal}. */
export interface KaimingOptions extends FanInitOptions {
  /** Negative slope of a leaky ReLU (default 0). */
  a?: number;
  /** Preserve the variance of the forward pass (`"fanIn"`, default) or of the backward pass (`"fanOut"`). */
  mode?: "fanIn" | "fanOut";
  /** The nonlinearity that follows (default `"leakyRelu"` with slope `a`, i.e. ReLU's √2 when a = 0). */
  nonlinearity?: Nonlinearity;
}

/** The fans of `shape` under moegrad's `[…, in, out]` convention. */
export function fans(shape: Shape): Fans {
  if (shape.length < 2) {
    throw new RangeError(`init: fans need a weight of rank ≥ 2 ([…, in, out]), got shape [${shape.join(", ")}]`);
  }
  return { fanIn: shape[shape.length - 2], fanOut: shape[shape.length - 1] };
}

/**
 * The recommended gain for a nonlinearity (PyTorch's values): 1 for linear and sigmoid, 5/3 for tanh, √2 for
 * ReLU, √(2 / (1 + a²)) for a leaky ReLU of slope `a`, 3/4 for SELU.
 */
export function calculateGain(nonlinearity: Nonlinearity, a = 0): number {
  switch (nonlinearity) {
    case "linear":
    case "sigmoid":
      return 1;
    case "tanh":
      return 5 / 3;
    case "relu":
      return Math.SQRT2;
    case "leakyRelu":
      return Math.sqrt(2 / (1 + a * a));
    case "selu":
      return 3 / 4;
    default:
      throw new TypeError(`calculateGain: unknown nonlinearity ${JSON.stringify(nonlinearity)}`);
  }
}

function draw(opts: InitOptions) {
  return { generator: opts.generator, device: opts.device, dtype: opts.dtype ?? "f32" };
}

function checkScale(fn: string, name: string, v: number): void {
  if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`${fn}: ${name} must be finite and ≥ 0, got ${v}`);
}

/** Samples from N(mean, std²). */
export function normal(shape: Shape, std = 1, options: InitOptions & { mean?: number } = {}): Tensor {
  checkScale("normal", "std", std);
  const mean = options.mean ?? 0;
  return scope(() => {
    const z = randn(shape, draw(options));
    return std === 1 && mean === 0 ? z : z.mul(std).add(mean);
  });
}

/** Samples from U[low, high). */
export function uniform(shape: Shape, low = 0, high = 1, options: InitOptions = {}): Tensor {
  if (!(low <= high) || !Number.isFinite(low) || !Number.isFinite(high)) {
    throw new RangeError(`uniform: need finite low ≤ high, got [${low}, ${high})`);
  }
  return scope(() => rand(shape, draw(options)).mul(high - low).add(low));
}

/** Xavier/Glorot uniform: U(±gain·√(6 / (fanIn + fanOut))). */
export function xavierUniform(shape: Shape, gain = 1, options: FanInitOptions = {}): Tensor {
  const { fanIn, fanOut } = options.fans ?? fans(shape);
  const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform(shape, -bound, bound, options);
}

/** Xavier/Glorot normal: N(0, gain² · 2 / (fanIn + fanOut)). */
export function xavierNormal(shape: Shape, gain = 1, options: FanInitOptions = {}): Tensor {
  const { fanIn, fanOut } = options.fans ?? fans(shape);
  return normal(shape, gain * Math.sqrt(2 / (fanIn + fanOut)), options);
}

function kaimingStd(shape: Shape, options: KaimingOptions): number {
  const f = options.fans ?? fans(shape);
  const mode = options.mode ?? "fanIn";
  if (mode !== "fanIn" && mode !== "fanOut") throw new TypeError(`kaiming: mode must be "fanIn" or "fanOut"`);
  const fan = mode === "fanIn" ? f.fanIn : f.fanOut;
  return calculateGain(options.nonlinearity ?? "leakyRelu", options.a ?? 0) / Math.sqrt(fan);
}

/** He/Kaiming uniform: U(±√3 · gain / √fan). */
export function kaimingUniform(shape: Shape, options: KaimingOptions = {}): Tensor {
  const bound = Math.sqrt(3) * kaimingStd(shape, options);
  return uniform(shape, -bound, bound, options);
}

/** He/Kaiming normal: N(0, gain² / fan). */
export function kaimingNormal(shape: Shape, options: KaimingOptions = {}): Tensor {
  return normal(shape, kaimingStd(shape, options), options);
}

/**
 * N(mean, std²) conditioned on [a, b] (absolute bounds; default ±2·std around 0), by rejection: standard
 * normals are drawn on the CPU from the generator in rounds and those inside the interval kept, in order,
 * then uploaded. The result is therefore the same on every device. Intervals holding almost no mass
 * (far in a tail) raise instead of looping.
 */
export function truncatedNormal(
  shape: Shape,
  std = 1,
  a: number = -2 * std,
  b: number = 2 * std,
  options: InitOptions & { mean?: number } = {},
): Tensor {
  checkScale("truncatedNormal", "std", std);
  const mean = options.mean ?? 0;
  if (!(a < b)) throw new RangeError(`truncatedNormal: need a < b, got [${a}, ${b}]`);
  const { dtype, device, generator } = draw(options);
  if (std === 0) {
    if (mean < a || mean > b) throw new RangeError(`truncatedNormal: std is 0 and mean ${mean} lies outside [a, b]`);
    return full(shape, mean, { dtype, device });
  }
  const lo = (a - mean) / std, hi = (b - mean) / std;
  const n = sizeOf(shape);
  const out = new Float64Array(n);
  let filled = 0;
  for (let round = 0; filled < n; round++) {
    if (round === 64) {
      throw new RangeError(
        `truncatedNormal: [${a}, ${b}] holds too little of N(${mean}, ${std}²) for rejection sampling`,
      );
    }
    const drawn = randn([Math.ceil((n - filled) * 1.25) + 16], { generator, dtype: "f64", device: cpu });
    const z = drawn.dataSync();
    drawn.dispose();
    for (let i = 0; i < z.length && filled < n; i++) if (z[i] >= lo && z[i] <= hi) out[filled++] = mean + std * z[i];
  }
  return tensor(out, { shape, dtype, device });
}
