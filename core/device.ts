/**
 * Devices and the narrow interface every backend implements: memory (alloc, upload, read, free) plus the
 * kernel table. `core/` never looks inside a buffer; only backends do.
 *
 * @module
 */
import type { DType, TypedArray } from "./dtype.ts";
import type { KernelTable } from "../kernels/registry.ts";

/** What a backend provides. `B` is its buffer type (a typed array on the CPU, a GPUBuffer on WebGPU). */
export interface Backend<B = unknown> {
  /** Short name, e.g. `"cpu"` or `"webgpu"`. */
  readonly name: string;
  /** Allocates storage for `size` elements of `dtype` (contents unspecified; kernels overwrite it). */
  alloc(dtype: DType, size: number): B;
  /** Creates storage holding a copy of `data` (already of the typed-array class of `dtype`). */
  upload(dtype: DType, data: TypedArray): B;
  /** Reads `size` elements back; the only way data leaves a device, hence async. */
  read(buf: B, dtype: DType, size: number): Promise<TypedArray>;
  /** Synchronous read where the backend can do it cheaply (the CPU); undefined elsewhere. */
  readSync?: (buf: B, dtype: DType, size: number) => TypedArray;
  /** Releases storage. Using the buffer afterwards is an error. */
  free(buf: B): void;
  /**
   * True when the garbage collector reclaims an unreachable buffer by itself (the CPU's typed arrays): the
   * engine then never holds a buffer just to free it later, and `free` is called only when a buffer's last
   * reference is released explicitly (a dispose), which a backend may use to reuse the buffer.
   */
  readonly gcReclaims?: boolean;
  /** Every kernel of the registry. */
  readonly kernels: KernelTable<B>;
}

/** A place where tensors live and ops run. Compare devices by identity. */
export class Device {
  /** The device's name, e.g. `"cpu"`. */
  readonly name: string;
  /** The backend that stores this device's tensors and runs its kernels. */
  readonly backend: Backend;
  /** Wraps a backend as a device. */
  constructor(name: string, backend: Backend) {
    this.name = name;
    this.backend = backend;
  }
  /** The device's name. */
  toString(): string {
    return this.name;
  }
}

const devices = new Map<string, Device>();
let defaultDevice: Device | undefined;

/** Makes `device` available by name (backends call this when they are loaded). */
export function registerDevice(device: Device): void {
  devices.set(device.name, device);
  defaultDevice ??= device;
}

/** Looks up a registered device by name, or throws listing the known ones. */
export function getDevice(name: string): Device {
  const d = devices.get(name);
  if (!d) throw new Error(`unknown device "${name}"; registered devices: ${[...devices.keys()].join(", ") || "none"}`);
  return d;
}

/** The device that creation ops use when none is given. */
export function defaultDeviceOf(): Device {
  if (!defaultDevice) throw new Error("no device registered: import moegrad through mod.ts, which registers the CPU");
  return defaultDevice;
}

/** Sets the device that creation ops use when none is given (a Device or a registered name). */
export function setDefaultDevice(device: Device | string): void {
  defaultDevice = typeof device === "string" ? getDevice(device) : device;
}

/** Resolves an optional device argument (object, name, or the default). */
export function resolveDevice(device?: Device | string): Device {
  if (device === undefined) return defaultDeviceOf();
  return typeof device === "string" ? getDevice(device) : device;
}
