/**
 * The WebGPU backend: every kernel of the registry in WGSL, run through Deno's `navigator.gpu`.
 * `initWebGpu()` requests an adapter and a device and registers the `webgpu` device.
 *
 * @module
 */
import type { DType, TypedArray } from "../../core/dtype.ts";
import { type Backend, Device, registerDevice } from "../../core/device.ts";
import type { KernelTable } from "../registry.ts";
import { type GpuBuffer, WebGpuRuntime, wgslType } from "./runtime.ts";
import { elementwiseKernels } from "./elementwise.ts";
import { layoutKernels } from "./layout.ts";
import { indexKernels } from "./index.ts";
import { reduceKernels } from "./reduce.ts";
import { matmulKernels } from "./matmul.ts";
import { groupedMatmulKernels } from "./grouped_matmul.ts";
import { sortKernels } from "./sort.ts";
import { layerNormKernels } from "./layer_norm.ts";
import { crossEntropyKernels } from "./cross_entropy.ts";
import { attentionKernels } from "./attention.ts";

/** Options of {@link initWebGpu}. */
export interface WebGpuOptions {
  /** Passed to `requestAdapter` (default: high-performance). */
  powerPreference?: GPUPowerPreference;
}

/** True for adapters that rasterise in software (llvmpipe, lavapipe, SwiftShader, WARP…). */
export function isSoftwareAdapter(info: GPUAdapterInfo): boolean {
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`;
  return info.isFallbackAdapter || /llvmpipe|lavapipe|softpipe|swiftshader|software|microsoft basic render/i.test(text);
}

/** A one-line description of the adapter for logs. */
export function describeAdapter(info: GPUAdapterInfo): string {
  return info.description || [info.vendor, info.architecture, info.device].filter(Boolean).join(" ") ||
    "unknown adapter";
}

/** The WebGPU device object of a runtime (exposed for benchmarks and tests). */
export interface WebGpuDevice extends Device {
  /** The runtime (stats, sync, pool control). */
  readonly runtime: WebGpuRuntime;
}

/** Builds the backend over an existing runtime. */
export function webGpuBackend(rt: WebGpuRuntime): Backend<GpuBuffer> {
  const kernels: KernelTable<GpuBuffer> = {
    ...elementwiseKernels(rt),
    ...layoutKernels(rt),
    ...indexKernels(rt),
    ...reduceKernels(rt),
    ...matmulKernels(rt),
    ...groupedMatmulKernels(rt),
    ...sortKernels(rt),
    ...layerNormKernels(rt),
    ...crossEntropyKernels(rt),
    ...attentionKernels(rt),
  };
  return {
    name: "webgpu",
    alloc: (dtype: DType, size: number) => {
      wgslType(dtype); // rejects f64 with a clear message
      return rt.alloc(size * 4);
    },
    upload: (dtype: DType, data: TypedArray) => {
      wgslType(dtype);
      return rt.upload(dtype === "bool" ? Uint32Array.from(data) : data);
    },
    read: (buf: GpuBuffer, dtype: DType, size: number) => rt.read(buf, dtype, size),
    free: (buf: GpuBuffer) => rt.free(buf),
    kernels,
  };
}

/**
 * Requests a WebGPU adapter and device, registers them as the `webgpu` device and returns it. Throws an
 * error that says what to do when WebGPU is unavailable or no adapter is found.
 *
 * @example
 * ```ts ignore
 * import { initWebGpu, randn } from "@moegrad/moegrad";
 * const gpu = await initWebGpu();
 * const y = randn([256, 256], { device: gpu }).matmul(randn([256, 256], { device: gpu }));
 * console.log(await y.sum().item());
 * ```
 */
export async function initWebGpu(options: WebGpuOptions = {}): Promise<WebGpuDevice> {
  if (typeof navigator === "undefined" || !navigator.gpu) {
    throw new Error(
      "webgpu: navigator.gpu is not available in this runtime; use Deno 2 (it ships WebGPU) or the cpu device",
    );
  }
  const adapter = await navigator.gpu.requestAdapter({
    powerPreference: options.powerPreference ?? "high-performance",
  });
  if (!adapter) {
    throw new Error(
      "webgpu: no WebGPU adapter was found. Without a GPU on Linux, install Mesa's software drivers " +
        "(apt-get install mesa-vulkan-drivers libvulkan1) or use the cpu device (--device cpu / MOEGRAD_DEVICE=cpu)",
    );
  }
  const l = adapter.limits;
  let gpu: GPUDevice;
  try {
    gpu = await adapter.requestDevice({
      requiredLimits: {
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      },
    });
  } catch (e) {
    throw new Error(`webgpu: the adapter (${describeAdapter(adapter.info)}) refused a device: ${(e as Error).message}`);
  }
  const rt = new WebGpuRuntime(gpu, adapter.info, isSoftwareAdapter(adapter.info));
  const device = Object.assign(new Device("webgpu", webGpuBackend(rt) as Backend), { runtime: rt });
  registerDevice(device);
  return device;
}
