/**
 * Random tensors and dropout, drawn from the counter-based Philox stream of a {@link Generator} (the
 * default one unless given), so results depend only on the seed and the order of draws, on every backend.
 *
 * @module
 */
import { assertDType, type DType, isFloat } from "../dtype.ts";
import { resolveDevice } from "../device.ts";
import { run1 } from "../engine.ts";
import { OpError } from "../errors.ts";
import { assertShape, type Shape, sizeOf } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import { defaultGenerator, type Generator } from "../random/generator.ts";
import type { RandomDist } from "../../kernels/registry.ts";
import type { CreateOptions } from "./creation.ts";
import { assertFloat, assertTensor } from "./operand.ts";
import { where } from "./binary.ts";

/** Creation options plus the stream to draw from. */
export interface RandomOptions extends CreateOptions {
  /** The generator to draw from (default: the global one, see `manualSeed`). */
  generator?: Generator;
}

function draw(
  op: string,
  shape: Shape,
  dist: RandomDist,
  loc: number,
  scale: number,
  options: RandomOptions,
  dtype: DType,
): Tensor {
  assertShape(op, shape);
  assertDType(dtype, op);
  const gen = options.generator ?? defaultGenerator;
  const counter = gen.reserve(sizeOf(shape));
  return run1(
    op,
    "random",
    [],
    { shape, dtype },
    { dist, key: gen.key, counter, loc, scale },
    resolveDevice(options.device),
  );
}

/**
 * Uniform samples in [0, 1).
 *
 * @example
 * ```ts
 * import { Generator, rand } from "@moegrad/moegrad";
 * const u = rand([2, 3], { generator: new Generator(7) });
 * console.log(u.shape);
 * ```
 */
export function rand(shape: Shape, options: RandomOptions = {}): Tensor {
  const dtype = options.dtype ?? "f32";
  if (!isFloat(dtype)) throw new OpError("rand", `dtype must be f32 or f64, got ${dtype}`);
  return draw("rand", shape, "uniform", 0, 1, options, dtype);
}

/** Standard normal samples (Box–Muller on the Philox stream). */
export function randn(shape: Shape, options: RandomOptions = {}): Tensor {
  const dtype = options.dtype ?? "f32";
  if (!isFloat(dtype)) throw new OpError("randn", `dtype must be f32 or f64, got ${dtype}`);
  return draw("randn", shape, "normal", 0, 1, options, dtype);
}

/** Integers uniform in [low, high) (i32 by default). */
export function randint(low: number, high: number, shape: Shape, options: RandomOptions = {}): Tensor {
  if (!Number.isInteger(low) || !Number.isInteger(high) || high <= low || high - low > 2 ** 31) {
    throw new OpError("randint", `need integers low < high with high − low ≤ 2^31, got [${low}, ${high})`);
  }
  const dtype = options.dtype ?? "i32";
  if (dtype === "i32" && (low < -(2 ** 31) || high > 2 ** 31)) {
    throw new OpError("randint", `[${low}, ${high}) does not fit in i32`);
  }
  return draw("randint", shape, "int", low, high - low, options, dtype);
}

/** Options of {@link dropout}. */
export interface DropoutOptions {
  /** Apply dropout (default true); when false the input is returned unchanged. */
  training?: boolean;
  /** The generator for the mask (default: the global one). */
  generator?: Generator;
}

/**
 * Zeroes each element with probability `p` and scales the rest by 1/(1−p) (inverted dropout), with a mask
 * from the seeded stream.
 */
export function dropout(x: Tensor, p: number, options: DropoutOptions = {}): Tensor {
  assertTensor("dropout", x);
  assertFloat("dropout", x);
  if (!(p >= 0 && p <= 1)) throw new OpError("dropout", `p must be in [0, 1], got ${p}`);
  if (options.training === false || p === 0) return x;
  const u = rand(x.shape, { dtype: x.dtype, device: x.device, generator: options.generator });
  return p === 1 ? x.mul(0) : where(u.ge(p), x.mul(1 / (1 - p)), 0);
}
