/**
 * The CPU backend: every kernel of the registry over typed arrays. Importing this module registers the
 * `cpu` device (the default device).
 *
 * @module
 */
import type { DType, TypedArray } from "../../core/dtype.ts";
import { type Backend, Device, registerDevice } from "../../core/device.ts";
import type { KernelTable } from "../registry.ts";
import type { CpuBuffer } from "./buffer.ts";
import { elementwiseKernels } from "./elementwise.ts";
import { layoutKernels } from "./layout.ts";
import { reduceKernels } from "./reduce.ts";
import { matmulKernels } from "./matmul.ts";
import { groupedMatmulKernels } from "./grouped_matmul.ts";
import { indexKernels } from "./index.ts";
import { sortKernels } from "./sort.ts";
import { layerNormKernels } from "./layer_norm.ts";
import { crossEntropyKernels } from "./cross_entropy.ts";
import { maskedSoftmaxKernels } from "./masked_softmax.ts";
import { rotaryKernels } from "./rotary.ts";
import { giveBuffer, takeBuffer } from "./pool.ts";

/** Every CPU kernel. The annotation makes a missing or mistyped kernel a compile error. */
export const cpuKernels: KernelTable<CpuBuffer> = {
  ...elementwiseKernels,
  ...layoutKernels,
  ...reduceKernels,
  ...matmulKernels,
  ...groupedMatmulKernels,
  ...indexKernels,
  ...sortKernels,
  ...layerNormKernels,
  ...crossEntropyKernels,
  ...maskedSoftmaxKernels,
  ...rotaryKernels,
};

/** The CPU backend object. */
export const cpuBackend: Backend<CpuBuffer> = {
  name: "cpu",
  // Released buffers are pooled and reused (pool.ts): kernels overwrite their outputs, so contents may be stale.
  alloc: (dtype: DType, size: number) => takeBuffer(dtype, size),
  upload: (dtype: DType, data: TypedArray) => {
    const buf = takeBuffer(dtype, data.length);
    buf.set(data);
    return buf;
  },
  read: (buf: CpuBuffer, _dtype: DType, size: number) => Promise.resolve(buf.slice(0, size)),
  readSync: (buf: CpuBuffer, _dtype: DType, size: number) => buf.slice(0, size),
  free: (buf: CpuBuffer) => giveBuffer(buf),
  gcReclaims: true,
  kernels: cpuKernels,
};

/** The CPU device. */
export const cpu: Device = new Device("cpu", cpuBackend as Backend);
registerDevice(cpu);
