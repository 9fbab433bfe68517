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
import type { KernelAttrs, KernelDefs, KernelName, TensorRef, TupleOf } from "../kernels/registry.ts";

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
  /** Drops a reference and frees the buffer when none remain; true when this call freed it. */
  release(): boolean {
    if (this.refs === 0) return false;
    if (--this.refs > 0) return false;
    if (!this.#backend.gcReclaims) this.#backend.free(this.#buf);
    memoryStats.liveBuffers--;
    memoryStats.liveBytes -= this.#bytes;
    return true;
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
  /**
   * Drops a reference and frees the buffer when none remain. A backend whose buffers the collector reclaims
   * still gets `free(buf)` here, where the buffer is known to be unreferenced, so it can reuse it (the CPU's
   * pool); the collector's safety net (core/tensor.ts) releases only the lease and never recycles.
   */
  release(): void {
    if (this.lease.release() && this.device.backend.gcReclaims) this.device.backend.free(this.buf);
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

/** The input tensors of kernel `K`: as many as the registry declares (a list for variadic kernels like concat). */
export type KernelArgs<K extends KernelName> = Readonly<TupleOf<Tensor, KernelDefs[K]["inputs"]>>;

/** One output spec per output that the registry declares for kernel `K`. */
export type KernelOutSpecs<K extends KernelName> = Readonly<TupleOf<OutSpec, KernelDefs[K]["outputs"]>>;

/** The tensors kernel `K` produces, one per declared output. */
export type KernelResults<K extends KernelName> = TupleOf<Tensor, KernelDefs[K]["outputs"]>;

/** The kernels that declare exactly one output (what {@link run1} runs). */
export type SingleOutputKernel = { [K in KernelName]: KernelDefs[K]["outputs"] extends 1 ? K : never }[KernelName];

/**
 * Calls kernel `name` of `device`'s backend. The exported entry points have already matched the inputs, outputs
 * and attributes to the registry's declaration of `name`; here the table is indexed by a name known only at run
 * time, so the kernel is called through its erased signature.
 */
function dispatch(
  op: string,
  name: KernelName,
  device: Device,
  inputs: readonly Tensor[],
  outputs: readonly Tensor[],
  attrs: unknown,
): void {
  const impl = device.backend.kernels[name] as (i: TensorRef<unknown>[], o: TensorRef<unknown>[], a: unknown) => void;
  const rec = activeRecorder();
  const t0 = rec ? performance.now() : 0;
  impl(inputs.map(ref), outputs.map(ref), attrs);
  // Profiling (core/profile.ts) is opt-in: off, this is one null check per kernel call.
  if (rec) rec.record(op, name, performance.now() - t0);
}

/** Allocates one output per spec on `device` and runs kernel `name` into them. */
function allocAndDispatch(
  op: string,
  name: KernelName,
  inputs: readonly Tensor[],
  outs: readonly OutSpec[],
  attrs: unknown,
  device?: Device,
): Tensor[] {
  const dev = commonDevice(op, inputs, device);
  const outputs = outs.map((o) => emptyTensor(dev, o));
  dispatch(op, name, dev, inputs, outputs, attrs);
  return outputs;
}

/**
 * Runs kernel `name` on `inputs`, allocating one output per spec on the inputs' device (or `device` for
 * kernels without inputs). The registry types every argument: a wrong number of inputs or output specs, or
 * attributes of another kernel, do not compile. No autograd here: ops record their tape nodes themselves.
 */
export function runKernel<K extends KernelName>(
  op: string,
  name: K,
  inputs: KernelArgs<K>,
  outs: KernelOutSpecs<K>,
  attrs: KernelAttrs<K>,
  device?: Device,
): KernelResults<K> {
  // The registry's output count fixed the length of `outs` and one tensor is allocated per spec, which the
  // array returned cannot express: this cast and dispatch()'s are the engine's only ones.
  return allocAndDispatch(op, name, inputs, outs, attrs, device) as KernelResults<K>;
}

/**
 * Runs kernel `name` writing into existing tensors (in-place updates). The caller guarantees that no
 * output aliases an input unless the kernel is elementwise.
 */
export function runKernelInto<K extends KernelName>(
  op: string,
  name: K,
  inputs: KernelArgs<K>,
  outputs: Readonly<KernelResults<K>>,
  attrs: KernelAttrs<K>,
): void {
  dispatch(op, name, commonDevice(op, [...inputs, ...outputs]), inputs, outputs, attrs);
}

/** {@link runKernel} for a kernel with one output. */
export function run1<K extends SingleOutputKernel>(
  op: string,
  name: K,
  inputs: KernelArgs<K>,
  out: OutSpec,
  attrs: KernelAttrs<K>,
  device?: Device,
): Tensor {
  return allocAndDispatch(op, name, inputs, [out], attrs, device)[0];
}
