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
export * from "./core/mod.ts";
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
