/**
 * The dispatch layer between ops and backends: storage ownership and `runKernel`, which allocates the
 * outputs on the inputs' device and calls the kernel by name. Ops validate before they get here.
 *
 * @module
 */
import { bytesPerElement, type DType } from "./dtype.ts";
import { type Backend, type Device, resolveDevice } from "./device.ts";
import { OpError } from "./errors.ts";
import { type Shape, sizeOf } from "./shape.ts";
import { Tensor } from "./tensor.ts";
import { memoryStats } from "./memory.ts";
import { activeRecorder } from "./profile.ts";
import type { KernelAttrs, KernelImpl, KernelName, TensorRef } from "../kernels/registry.ts";

/**
 * The bookkeeping half of a {@link Storage}: its reference count and what freeing it takes. It is kept apart
 * from the storage because the garbage-collection safety net (core/tensor.ts) must hold it strongly until a
 * collected tensor's callback runs; if it held the storage itself, it would pin the CPU's typed array, whose
 * memory the collector could otherwise reclaim at once — and in a synchronous loop, where those callbacks
 * never get to run, memory would grow without bound. So a lease holds the buffer only when the backend must
 * free it explicitly (WebGPU), never on the CPU.
 */
export class StorageLease {
  /** References not yet released (tensors viewing the storage). */
  refs = 1;
  readonly #backend: Backend;
  readonly #buf: unknown;
  readonly #bytes: number;
  /** One reference to `buf` (`bytes` long) of `backend`; counts it in {@link memoryStats}. */
  constructor(backend: Backend, buf: unknown, bytes: number) {
    this.#backend = backend;
    // The CPU's free is a no-op: drop the buffer so this lease does not keep it alive.
    this.#buf = backend.gcReclaims ? undefined : buf;
    this.#bytes = bytes;
    memoryStats.liveBuffers++;
    memoryStats.liveBytes += bytes;
  }
  /** Drops a reference and frees the buffer when none remain. */
  release(): void {
    if (this.refs === 0) return;
    if (--this.refs === 0) {
      if (!this.#backend.gcReclaims) this.#backend.free(this.#buf);
      memoryStats.liveBuffers--;
      memoryStats.liveBytes -= this.#bytes;
    }
  }
}

/** A buffer on a device, shared by the tensors that view it (reshape and detach share storage). */
export class Storage {
  /** The device that owns the buffer. */
  readonly device: Device;
  /** The backend buffer. */
  readonly buf: unknown;
  /** Element type of the buffer. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly size: number;
  /** @internal The reference count (see {@link StorageLease}). */
  readonly lease: StorageLease;
  /** Takes ownership of `buf` (one reference). */
  constructor(device: Device, buf: unknown, dtype: DType, size: number) {
    this.device = device;
    this.buf = buf;
    this.dtype = dtype;
    this.size = size;
    this.lease = new StorageLease(device.backend, buf, size * bytesPerElement(dtype));
  }
  /** True once every reference has been released. */
  get released(): boolean {
    return this.lease.refs === 0;
  }
  /** Adds a reference (a new tensor viewing this storage). */
  retain(): this {
    this.lease.refs++;
    return this;
  }
  /** Drops a reference and frees the buffer when none remain. */
  release(): void {
    this.lease.release();
  }
}

/** Shape and dtype of an output to allocate. */
export interface OutSpec {
  /** Logical shape. */
  shape: Shape;
  /** Element type. */
  dtype: DType;
}

/** The device shared by `inputs` (or `fallback`), or an error naming the op and the devices. */
export function commonDevice(op: string, inputs: readonly Tensor[], fallback?: Device): Device {
  const first = inputs[0]?.device ?? resolveDevice(fallback);
  for (const t of inputs) {
    if (t.device !== first) {
      throw new OpError(op, `tensors are on different devices (${first.name} and ${t.device.name}); move them first`);
    }
  }
  return first;
}

/** Allocates a tensor on `device` without initialising it (kernels fill it). */
export function emptyTensor(device: Device, spec: OutSpec): Tensor {
  const size = sizeOf(spec.shape);
  const storage = new Storage(device, device.backend.alloc(spec.dtype, size), spec.dtype, size);
  return new Tensor(storage, spec.shape, spec.dtype);
}

function ref(t: Tensor): TensorRef<unknown> {
  if (t.storage.released) throw new Error(`a disposed tensor of shape [${t.shape.join(", ")}] was used`);
  return { buf: t.storage.buf, shape: t.shape, dtype: t.dtype };
}

/**
 * Runs kernel `name` on `inputs`, allocating one output per spec on the inputs' device (or `device` for
 * kernels without inputs). No autograd here: ops record their tape nodes themselves.
 */
export function runKernel<K extends KernelName>(
  op: string,
  name: K,
  inputs: readonly Tensor[],
  outs: readonly OutSpec[],
  attrs: KernelAttrs<K>,
  device?: Device,
): Tensor[] {
  const dev = commonDevice(op, inputs, device);
  const outputs = outs.map((o) => emptyTensor(dev, o));
  const impl = dev.backend.kernels[name] as unknown as KernelImpl<K, unknown>;
  const rec = activeRecorder();
  const t0 = rec ? performance.now() : 0;
  (impl as (i: TensorRef<unknown>[], o: TensorRef<unknown>[], a: KernelAttrs<K>) => void)(
    inputs.map(ref),
    outputs.map(ref),
    attrs,
  );
  // Profiling (core/profile.ts) is opt-in: off, this is one null check per kernel call.
  if (rec) rec.record(op, name, performance.now() - t0);
  return outputs;
}

/**
 * Runs kernel `name` writing into existing tensors (in-place updates). The caller guarantees that no
 * output aliases an input unless the kernel is elementwise.
 */
export function runKernelInto<K extends KernelName>(
  op: string,
  name: K,
  inputs: readonly Tensor[],
  outputs: readonly Tensor[],
  attrs: KernelAttrs<K>,
): void {
  const dev = commonDevice(op, [...inputs, ...outputs]);
  const impl = dev.backend.kernels[name] as unknown as (
    i: TensorRef<unknown>[],
    o: TensorRef<unknown>[],
    a: KernelAttrs<K>,
  ) => void;
  const rec = activeRecorder();
  const t0 = rec ? performance.now() : 0;
  impl(inputs.map(ref), outputs.map(ref), attrs);
  if (rec) rec.record(op, name, performance.now() - t0);
}

/** {@link runKernel} for the common single-output case. */
export function run1<K extends KernelName>(
  op: string,
  name: K,
  inputs: readonly Tensor[],
  out: OutSpec,
  attrs: KernelAttrs<K>,
  device?: Device,
): Tensor {
  return runKernel(op, name, inputs, [out], attrs, device)[0];
}
