/**
 * moegrad: a tensor + autograd engine in TypeScript for sparse Mixture-of-Experts research.
 *
 * Importing this module registers the CPU device (the default). Call `selectDevice()` (auto, cpu or
 * webgpu) or `initWebGpu()` to run on WebGPU.
 *
 * @example
 * ```ts
 * import { randn, tensor } from "@moegrad/moegrad";
 * const w = randn([4, 3]).requiresGrad_();
 * const x = tensor([[1, 2, 3, 4]]);
 * const loss = x.matmul(w).softmax().max();
 * loss.backward();
 * console.log(w.grad!.shape); // [4, 3]
 * ```
 *
 * @module
 */
import "./kernels/cpu/mod.ts";

export { type DType, DTYPES, type FloatDType, isFloat, type TypedArray } from "./core/dtype.ts";
export { OpError } from "./core/errors.ts";
export { broadcastShapes, type Shape, sizeOf, stridesOf } from "./core/shape.ts";
export { type Backend, Device, getDevice, registerDevice, setDefaultDevice } from "./core/device.ts";
export { Storage } from "./core/engine.ts";
export { keep, memoryStats, scope } from "./core/memory.ts";
export { type Operand, Tensor } from "./core/tensor.ts";
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
} from "./core/autograd.ts";
export { defaultGenerator, Generator, type GeneratorState, manualSeed } from "./core/random/generator.ts";
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
} from "./core/ops/creation.ts";
export { dropout, type DropoutOptions, rand, randint, randn, type RandomOptions } from "./core/ops/random.ts";
export { astype } from "./core/ops/cast.ts";
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
} from "./core/ops/unary.ts";
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
} from "./core/ops/binary.ts";
export { argmax, argmin, max, mean, min, sum, sumTo } from "./core/ops/reduce.ts";
export { logSoftmax, logsumexp, softmax } from "./core/ops/softmax.ts";
export { matmul } from "./core/ops/linalg.ts";
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
} from "./core/ops/layout.ts";
export { embedding, gather, indexAdd, indexSelect, oneHot, scatterAdd } from "./core/ops/index.ts";
export { argsort, sort, type SortOptions, topk, type TopkOptions, type ValuesIndices } from "./core/ops/sort.ts";
export { cumsum } from "./core/ops/scan.ts";
export { crossEntropy, type CrossEntropyOptions } from "./core/ops/loss.ts";
export { cpu } from "./kernels/cpu/mod.ts";
export {
  describeAdapter,
  initWebGpu,
  isSoftwareAdapter,
  webGpuBackend,
  type WebGpuDevice,
  type WebGpuOptions,
} from "./kernels/webgpu/mod.ts";
export { type DispatchSpec, type GpuBuffer, type RuntimeStats, WebGpuRuntime } from "./kernels/webgpu/runtime.ts";
export { type DeviceChoice, selectDevice, type SelectDeviceOptions } from "./kernels/select.ts";

// nn: modules and layers, optimizers and schedules, checkpoints, tokenizers and datasets.
export * from "./nn/mod.ts";
export * from "./nn/optim/mod.ts";
export * from "./nn/checkpoint/mod.ts";
export * from "./nn/data/mod.ts";

// moe: routing estimators, auxiliary losses, routing metrics.
export * from "./moe/mod.ts";
export {
  type BinaryOp,
  KERNEL_NAMES,
  type KernelAttrs,
  type KernelDefs,
  type KernelFamily,
  type KernelImpl,
  type KernelInputs,
  type KernelName,
  type KernelOutputs,
  type KernelTable,
  type RandomDist,
  type ReduceOp,
  type Refs,
  type TensorRef,
  type UnaryOp,
} from "./kernels/registry.ts";
