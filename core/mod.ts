/**
 * The core API: tensors, dtypes, shapes, devices, every op, autograd, the RNG and memory management.
 * Importing it registers the CPU device (the default). Library modules (`nn/`, `moe/`) import from here, not
 * from the package root, so the root can re-export them without an import cycle.
 *
 * @module
 */
import "../kernels/cpu/mod.ts";

export { type DType, DTYPES, type FloatDType, isFloat, type TypedArray } from "./dtype.ts";
export { OpError } from "./errors.ts";
export { broadcastShapes, type Shape, sizeOf, stridesOf } from "./shape.ts";
export { type Backend, Device, getDevice, registerDevice, setDefaultDevice } from "./device.ts";
export { Storage } from "./engine.ts";
export { keep, memoryStats, scope } from "./memory.ts";
export { type Operand, Tensor } from "./tensor.ts";
export {
  backward,
  type BackwardOptions,
  customGrad,
  customGradMulti,
  type CustomGradResult,
  enableGrad,
  grad,
  gradients,
  isGradEnabled,
  Node,
  noGrad,
  valueAndGrad,
  type VJP,
} from "./autograd.ts";
export { defaultGenerator, Generator, type GeneratorState, manualSeed } from "./random/generator.ts";
export {
  arange,
  type CreateOptions,
  full,
  fullLike,
  type NestedArray,
  ones,
  onesLike,
  tensor,
  zeros,
  zerosLike,
} from "./ops/creation.ts";
export { dropout, type DropoutOptions, rand, randint, randn, type RandomOptions } from "./ops/random.ts";
export { astype } from "./ops/cast.ts";
export {
  abs,
  cos,
  erf,
  exp,
  gelu,
  isnan,
  log,
  logicalNot,
  neg,
  relu,
  rsqrt,
  sigmoid,
  sign,
  silu,
  sin,
  sqrt,
  tanh,
} from "./ops/unary.ts";
export {
  add,
  clamp,
  div,
  eq,
  ge,
  gt,
  le,
  logicalAnd,
  logicalOr,
  lt,
  maximum,
  minimum,
  mul,
  ne,
  pow,
  sub,
  where,
} from "./ops/binary.ts";
export { argmax, argmin, max, mean, min, sum, sumTo } from "./ops/reduce.ts";
export { logSoftmax, logsumexp, softmax } from "./ops/softmax.ts";
export { matmul } from "./ops/linalg.ts";
export {
  concat,
  expand,
  flatten,
  narrow,
  permute,
  reshape,
  slice,
  sliceScatter,
  split,
  squeeze,
  stack,
  transpose,
  unsqueeze,
} from "./ops/layout.ts";
export { embedding, gather, indexAdd, indexSelect, oneHot, scatterAdd } from "./ops/index.ts";
export { argsort, sort, type SortOptions, topk, type TopkOptions, type ValuesIndices } from "./ops/sort.ts";
export { cumsum } from "./ops/scan.ts";
export { crossEntropy, type CrossEntropyOptions } from "./ops/loss.ts";
export { cpu } from "../kernels/cpu/mod.ts";
export { cpuOptions, type CpuOptions, setCpuOptions } from "../kernels/cpu/config.ts";
