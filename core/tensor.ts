/**
 * The `Tensor`: a dense row-major array on a device, with PyTorch-style methods. Every method delegates to
 * a functional op in `core/ops/` (also exported), so `a.add(b)` and `add(a, b)` are the same thing.
 *
 * @module
 */
import type { DType, TypedArray } from "./dtype.ts";
import type { Device } from "./device.ts";
import { fmtShape, OpError } from "./errors.ts";
import { type Shape, sizeOf, stridesOf } from "./shape.ts";
import type { Node } from "./autograd.ts";
import { runKernelInto, type Storage, type StorageLease } from "./engine.ts";
import { memoryStats, trackTensor } from "./memory.ts";
import { isGradEnabled } from "./autograd.ts";
import { shapesEqual } from "./shape.ts";
import * as autograd from "./autograd.ts";
import * as un from "./ops/unary.ts";
import * as bin from "./ops/binary.ts";
import * as red from "./ops/reduce.ts";
import * as sm from "./ops/softmax.ts";
import * as lay from "./ops/layout.ts";
import * as idx from "./ops/index.ts";
import * as srt from "./ops/sort.ts";
import * as lin from "./ops/linalg.ts";
import * as scan from "./ops/scan.ts";
import * as cast from "./ops/cast.ts";
import { formatTensor } from "./format.ts";
import { fromArray } from "./ops/creation.ts";

let nextId = 0;

/** @internal The id the next tensor will get: tensors created from now on have ids at least this. */
export function nextTensorId(): number {
  return nextId;
}

// Safety net for tensors that are never disposed: once one is collected, do what dispose() would have done.
// The held value is the storage's lease, not the storage: the lease does not pin the CPU's buffer (see
// StorageLease), so the collector reclaims that memory with the tensor, whenever this callback gets to run.
const finalizer = new FinalizationRegistry<StorageLease>((lease) => {
  memoryStats.liveTensors--;
  lease.release();
});

/** A scalar operand: a tensor or a plain number (which takes the tensor's dtype and device). */
export type Operand = Tensor | number;

/**
 * An n-dimensional array with autograd. Create tensors with {@link tensor}, {@link zeros}, {@link randn}
 * and friends; read them back with `await t.data()`.
 *
 * @example
 * ```ts
 * import { tensor } from "@moegrad/moegrad";
 * const w = tensor([[1, 2], [3, 4]]).requiresGrad_();
 * const loss = w.matmul(tensor([[1], [1]])).square().sum();
 * loss.backward();
 * console.log(await w.grad!.array()); // [[6, 6], [14, 14]]
 * ```
 */
export class Tensor {
  /** The storage this tensor views (shared with reshapes and detached copies). */
  readonly storage: Storage;
  /** The shape, outermost dimension first. */
  readonly shape: Shape;
  /** The element type. */
  readonly dtype: DType;
  /** A process-unique id (handy in debugging output). */
  readonly id: number;
  /** The accumulated gradient after `backward()` (leaves and `retainGrad()` tensors only). */
  grad: Tensor | null = null;
  #requiresGrad = false;
  #retainsGrad = false;
  #node: Node | null = null;
  #disposed = false;
  /** @internal Set by `keep()`: scopes never dispose this tensor. */
  _kept = false;

  /** Wraps a storage (ops do this; users create tensors with the creation functions). */
  constructor(storage: Storage, shape: Shape, dtype: DType) {
    if (sizeOf(shape) > storage.size) {
      throw new OpError(
        "Tensor",
        `shape ${fmtShape(shape)} needs more elements than its storage holds (${storage.size})`,
      );
    }
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.id = nextId++;
    memoryStats.liveTensors++;
    finalizer.register(this, storage.lease, this);
    trackTensor(this);
  }

  // ---- metadata -------------------------------------------------------------------------------------

  /** The device holding the data. */
  get device(): Device {
    return this.storage.device;
  }
  /** The number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }
  /** The number of elements. */
  get size(): number {
    return sizeOf(this.shape);
  }
  /** Row-major strides in elements (moegrad tensors are always contiguous). */
  get strides(): number[] {
    return stridesOf(this.shape);
  }
  /** Whether gradients flow to this tensor. */
  get requiresGrad(): boolean {
    return this.#requiresGrad;
  }
  /** Whether this non-leaf tensor keeps its `.grad` (see {@link Tensor.retainGrad}). */
  get retainsGrad(): boolean {
    return this.#retainsGrad;
  }
  /** The tape node that produced this tensor (null for leaves and tensors outside the graph). */
  get node(): Node | null {
    return this.#node;
  }
  /** @internal Used by `record()` to attach the tape node. */
  _setNode(node: Node): void {
    this.#node = node;
    this.#requiresGrad = true;
  }
  /** @internal A new tensor object viewing the same storage (no graph link). */
  _alias(shape: Shape = this.shape): Tensor {
    return new Tensor(this.storage.retain(), shape, this.dtype);
  }

  /** Marks a leaf as requiring gradients (in place; float dtypes only). Returns `this`. */
  requiresGrad_(flag = true): this {
    if (this.#node) throw new OpError("requiresGrad_", "only leaf tensors can change requiresGrad; use detach() first");
    if (flag && this.dtype !== "f32" && this.dtype !== "f64") {
      throw new OpError("requiresGrad_", `only float tensors can require gradients, got ${this.dtype}`);
    }
    this.#requiresGrad = flag;
    return this;
  }
  /** Makes `backward()` store `.grad` on this non-leaf tensor too. Returns `this`. */
  retainGrad(): this {
    this.#retainsGrad = true;
    return this;
  }

  // ---- data -----------------------------------------------------------------------------------------

  /** Copies the elements to the host (async: on WebGPU this waits for the GPU). */
  data(): Promise<TypedArray> {
    return this.device.backend.read(this.storage.buf, this.dtype, this.size);
  }
  /** Copies the elements to the host synchronously; only backends that allow it (the CPU). */
  dataSync(): TypedArray {
    const read = this.device.backend.readSync;
    if (!read) {
      throw new OpError("dataSync", `the ${this.device.name} backend cannot read synchronously; use await t.data()`);
    }
    return read(this.storage.buf, this.dtype, this.size);
  }
  /** The single element of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) {
      throw new OpError("item", `expected a tensor with one element, got shape ${fmtShape(this.shape)}`);
    }
    return (await this.data())[0];
  }
  /** The elements as nested arrays (numbers; bool gives 0/1). */
  async array(): Promise<unknown> {
    return nest(await this.data(), this.shape);
  }
  /** A readable rendering; shows values where the backend can read synchronously. */
  toString(): string {
    return formatTensor(this);
  }
  /**
   * Releases this tensor's reference to its storage (freeing the buffer when no other tensor views it). The
   * tensor must not be used afterwards; disposing twice is harmless.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    memoryStats.liveTensors--;
    finalizer.unregister(this);
    this.storage.release();
  }
  /** Whether {@link Tensor.dispose} has been called. */
  get isDisposed(): boolean {
    return this.#disposed;
  }

  /**
   * Overwrites this tensor's elements with `src` (same shape and dtype), in place — what optimizers use so
   * parameters keep their identity and memory. Not recorded by autograd: a tensor that requires grad can only
   * be assigned under `noGrad`. Tensors sharing this storage (reshapes, detached copies) see the change.
   */
  assign_(src: Tensor): this {
    if (!shapesEqual(src.shape, this.shape) || src.dtype !== this.dtype) {
      throw new OpError(
        "assign_",
        `source ${src.dtype} ${fmtShape(src.shape)} does not match target ${this.dtype} ${fmtShape(this.shape)}`,
      );
    }
    if (this.requiresGrad && isGradEnabled()) {
      throw new OpError("assign_", "in-place update of a tensor that requires grad; wrap the update in noGrad()");
    }
    if (src.storage !== this.storage) runKernelInto("assign_", "cast", [src], [this], {});
    return this;
  }

  // ---- autograd -------------------------------------------------------------------------------------

  /** Accumulates gradients into `.grad` of the leaves (see {@link autograd.backward}). */
  backward(grad?: Tensor, options?: autograd.BackwardOptions): void {
    autograd.backward(this, grad, options);
  }
  /** The same data, cut off from the graph (shares storage). */
  detach(): Tensor {
    return this._alias();
  }
  /** A copy with its own storage (differentiable: the gradient passes through unchanged). */
  clone(): Tensor {
    return cast.copy(this);
  }
  /**
   * A copy on another device (async: leaving a GPU needs a read). Not recorded by autograd: gradients do not
   * flow across devices. Returns `this` when it is already there.
   */
  async to(device: Device): Promise<Tensor> {
    if (device === this.device) return this;
    return fromArray(await this.data(), this.shape, this.dtype, device);
  }
  /** Alias of {@link Tensor.detach} (JAX's name). */
  stopGradient(): Tensor {
    return this._alias();
  }

  // ---- dtype ----------------------------------------------------------------------------------------

  /** Converts to `dtype` (see {@link cast.astype}). */
  astype(dtype: DType): Tensor {
    return cast.astype(this, dtype);
  }

  // ---- unary ----------------------------------------------------------------------------------------

  /** −x. */
  neg(): Tensor {
    return un.neg(this);
  }
  /** |x|. */
  abs(): Tensor {
    return un.abs(this);
  }
  /** −1, 0 or 1. */
  sign(): Tensor {
    return un.sign(this);
  }
  /** eˣ. */
  exp(): Tensor {
    return un.exp(this);
  }
  /** Natural logarithm. */
  log(): Tensor {
    return un.log(this);
  }
  /** √x. */
  sqrt(): Tensor {
    return un.sqrt(this);
  }
  /** 1/√x. */
  rsqrt(): Tensor {
    return un.rsqrt(this);
  }
  /** x². */
  square(): Tensor {
    return bin.mul(this, this);
  }
  /** Hyperbolic tangent. */
  tanh(): Tensor {
    return un.tanh(this);
  }
  /** Logistic sigmoid. */
  sigmoid(): Tensor {
    return un.sigmoid(this);
  }
  /** max(x, 0). */
  relu(): Tensor {
    return un.relu(this);
  }
  /** GELU, exact (erf) or with the tanh approximation. */
  gelu(approximate: "none" | "tanh" = "none"): Tensor {
    return un.gelu(this, approximate);
  }
  /** x·sigmoid(x) (SiLU / swish). */
  silu(): Tensor {
    return un.silu(this);
  }
  /** The error function. */
  erf(): Tensor {
    return un.erf(this);
  }
  /** Sine. */
  sin(): Tensor {
    return un.sin(this);
  }
  /** Cosine. */
  cos(): Tensor {
    return un.cos(this);
  }
  /** Elementwise NOT of a bool tensor. */
  logicalNot(): Tensor {
    return un.logicalNot(this);
  }
  /** True where x is NaN. */
  isnan(): Tensor {
    return un.isnan(this);
  }

  // ---- binary ---------------------------------------------------------------------------------------

  /** this + other (broadcast). */
  add(other: Operand): Tensor {
    return bin.add(this, other);
  }
  /** this − other. */
  sub(other: Operand): Tensor {
    return bin.sub(this, other);
  }
  /** this · other. */
  mul(other: Operand): Tensor {
    return bin.mul(this, other);
  }
  /** this / other. */
  div(other: Operand): Tensor {
    return bin.div(this, other);
  }
  /** this ** other. */
  pow(other: Operand): Tensor {
    return bin.pow(this, other);
  }
  /** Elementwise maximum. */
  maximum(other: Operand): Tensor {
    return bin.maximum(this, other);
  }
  /** Elementwise minimum. */
  minimum(other: Operand): Tensor {
    return bin.minimum(this, other);
  }
  /** this == other (bool). */
  eq(other: Operand): Tensor {
    return bin.eq(this, other);
  }
  /** this != other (bool). */
  ne(other: Operand): Tensor {
    return bin.ne(this, other);
  }
  /** this < other (bool). */
  lt(other: Operand): Tensor {
    return bin.lt(this, other);
  }
  /** this <= other (bool). */
  le(other: Operand): Tensor {
    return bin.le(this, other);
  }
  /** this > other (bool). */
  gt(other: Operand): Tensor {
    return bin.gt(this, other);
  }
  /** this >= other (bool). */
  ge(other: Operand): Tensor {
    return bin.ge(this, other);
  }
  /** Elementwise AND of bool tensors. */
  logicalAnd(other: Tensor): Tensor {
    return bin.logicalAnd(this, other);
  }
  /** Elementwise OR of bool tensors. */
  logicalOr(other: Tensor): Tensor {
    return bin.logicalOr(this, other);
  }
  /** Clamps into [min, max] (either bound may be omitted). */
  clamp(min?: number, max?: number): Tensor {
    return bin.clamp(this, min, max);
  }
  /** `cond ? this : other` (torch's `x.where(cond, y)`). */
  where(cond: Tensor, other: Operand): Tensor {
    return bin.where(cond, this, other);
  }

  // ---- reductions -----------------------------------------------------------------------------------

  /** Sum over `axis` (all axes when omitted). */
  sum(axis?: number | readonly number[], keepdim = false): Tensor {
    return red.sum(this, axis, keepdim);
  }
  /** Mean over `axis` (all axes when omitted). */
  mean(axis?: number | readonly number[], keepdim = false): Tensor {
    return red.mean(this, axis, keepdim);
  }
  /** Maximum over `axis` (values only; gradient shared among ties). */
  max(axis?: number | readonly number[], keepdim = false): Tensor {
    return red.max(this, axis, keepdim);
  }
  /** Minimum over `axis`. */
  min(axis?: number | readonly number[], keepdim = false): Tensor {
    return red.min(this, axis, keepdim);
  }
  /** Index of the maximum along `axis` (of the flattened tensor when omitted); ties → lowest index. */
  argmax(axis?: number, keepdim = false): Tensor {
    return red.argmax(this, axis, keepdim);
  }
  /** Index of the minimum along `axis`; ties → lowest index. */
  argmin(axis?: number, keepdim = false): Tensor {
    return red.argmin(this, axis, keepdim);
  }
  /** log Σ exp over `axis`, computed stably. */
  logsumexp(axis?: number | readonly number[], keepdim = false): Tensor {
    return sm.logsumexp(this, axis, keepdim);
  }
  /** Softmax along `axis` (default last). */
  softmax(axis = -1): Tensor {
    return sm.softmax(this, axis);
  }
  /** Log-softmax along `axis` (default last). */
  logSoftmax(axis = -1): Tensor {
    return sm.logSoftmax(this, axis);
  }
  /** Inclusive cumulative sum along `axis`. */
  cumsum(axis: number, reverse = false): Tensor {
    return scan.cumsum(this, axis, reverse);
  }

  // ---- linear algebra -------------------------------------------------------------------------------

  /** Matrix product with NumPy/PyTorch semantics (batched, broadcast batch dims, 1-D operands). */
  matmul(other: Tensor): Tensor {
    return lin.matmul(this, other);
  }

  // ---- layout ---------------------------------------------------------------------------------------

  /** The same elements in a new shape (one entry may be −1). Shares storage. */
  reshape(...shape: number[] | [readonly number[]]): Tensor {
    return lay.reshape(this, shape.length === 1 && Array.isArray(shape[0]) ? shape[0] : (shape as number[]));
  }
  /** Flattens axes `start..end` into one. */
  flatten(start = 0, end = -1): Tensor {
    return lay.flatten(this, start, end);
  }
  /** Removes size-1 axes (all of them, or just `axis`). */
  squeeze(axis?: number): Tensor {
    return lay.squeeze(this, axis);
  }
  /** Inserts a size-1 axis at `axis`. */
  unsqueeze(axis: number): Tensor {
    return lay.unsqueeze(this, axis);
  }
  /** Reorders the axes. */
  permute(...dims: number[]): Tensor {
    return lay.permute(this, dims);
  }
  /** Swaps two axes (default the last two). */
  transpose(dim0 = -2, dim1 = -1): Tensor {
    return lay.transpose(this, dim0, dim1);
  }
  /** Broadcasts to `shape` (−1 keeps a size). */
  expand(...shape: number[]): Tensor {
    return lay.expand(this, shape);
  }
  /** Elements `start, start+step, …` before `end` along `axis` (negative indices count from the end). */
  slice(axis: number, start: number, end?: number, step = 1): Tensor {
    return lay.slice(this, axis, start, end, step);
  }
  /** `length` elements from `start` along `axis`. */
  narrow(axis: number, start: number, length: number): Tensor {
    return lay.narrow(this, axis, start, length);
  }
  /** Splits into pieces of `sizes` (a list) or of equal `size` (a number) along `axis`. */
  split(sizes: number | readonly number[], axis = 0): Tensor[] {
    return lay.split(this, sizes, axis);
  }

  // ---- indexing -------------------------------------------------------------------------------------

  /** torch.gather along `axis`. */
  gather(axis: number, index: Tensor): Tensor {
    return idx.gather(this, axis, index);
  }
  /** Out-of-place torch.scatter_add along `axis`. */
  scatterAdd(axis: number, index: Tensor, src: Tensor): Tensor {
    return idx.scatterAdd(this, axis, index, src);
  }
  /** Selects entries of `axis` by a 1-D index. */
  indexSelect(axis: number, index: Tensor): Tensor {
    return idx.indexSelect(this, axis, index);
  }
  /** Out-of-place torch.index_add along `axis`. */
  indexAdd(axis: number, index: Tensor, src: Tensor): Tensor {
    return idx.indexAdd(this, axis, index, src);
  }
  /** The `k` largest (or smallest) entries along `axis` and their indices. */
  topk(k: number, options?: srt.TopkOptions): srt.ValuesIndices {
    return srt.topk(this, k, options);
  }
  /** Sorted values and the permutation (stable). */
  sort(options?: srt.SortOptions): srt.ValuesIndices {
    return srt.sort(this, options);
  }
  /** The stable sorting permutation. */
  argsort(options?: srt.SortOptions): Tensor {
    return srt.argsort(this, options);
  }
}

function nest(data: TypedArray, shape: Shape): unknown {
  if (shape.length === 0) return data[0];
  const inner = sizeOf(shape.slice(1));
  const out: unknown[] = [];
  for (let i = 0; i < shape[0]; i++) out.push(nest(data.subarray(i * inner, (i + 1) * inner), shape.slice(1)));
  return out;
}
