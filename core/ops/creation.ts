/**
 * Creation ops: tensors from JavaScript data, constants and ranges.
 *
 * @module
 */
import { allocArray, assertDType, type DType, toArray, type TypedArray } from "../dtype.ts";
import { type Device, resolveDevice } from "../device.ts";
import { fmtShape, OpError } from "../errors.ts";
import { assertShape, type Shape, sizeOf } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { run1, Storage } from "../engine.ts";

/** Where and as what to create a tensor. */
export interface CreateOptions {
  /** Element type (default `f32`, or `bool` for boolean data). */
  dtype?: DType;
  /** Device or registered device name (default: the default device). */
  device?: Device | string;
}

/** Nested arrays of numbers or booleans, as accepted by {@link tensor}. */
export type NestedArray = number | boolean | readonly NestedArray[];

function inferShape(data: NestedArray): number[] {
  const shape: number[] = [];
  let cur: NestedArray = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0];
  }
  return shape;
}

function flattenInto(op: string, data: NestedArray, shape: Shape, depth: number, out: (number | boolean)[]): void {
  if (depth === shape.length) {
    if (typeof data !== "number" && typeof data !== "boolean") {
      throw new OpError(
        op,
        `data is ragged or holds a non-number at depth ${depth} (expected shape ${fmtShape(shape)})`,
      );
    }
    out.push(data);
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[depth]) {
    throw new OpError(
      op,
      `data is ragged: expected ${shape[depth]} entries at depth ${depth} (shape ${fmtShape(shape)})`,
    );
  }
  for (const d of data) flattenInto(op, d, shape, depth + 1, out);
}

/** The dtype implied by the data: that of a Float64Array / Int32Array, bool for booleans, else f32. */
function inferDType(data: NestedArray | TypedArray, flat: ArrayLike<number | boolean>): DType {
  if (data instanceof Float64Array) return "f64";
  if (data instanceof Int32Array) return "i32";
  return flat.length > 0 && typeof flat[0] === "boolean" ? "bool" : "f32";
}

/** Uploads host data as a new tensor (the array is copied). */
export function fromArray(data: TypedArray, shape: Shape, dtype: DType, device?: Device | string): Tensor {
  const dev = resolveDevice(device);
  const size = sizeOf(shape);
  const storage = new Storage(dev, dev.backend.upload(dtype, data), dtype, size);
  return new Tensor(storage, shape, dtype);
}

/**
 * A tensor from nested arrays, a flat array or a typed array (pass `shape` for flat data). The dtype
 * defaults to f32, to bool for boolean data, and to f64 / i32 for a Float64Array / Int32Array.
 *
 * @example
 * ```ts
 * import { tensor } from "@moegrad/moegrad";
 * const a = tensor([[1, 2, 3], [4, 5, 6]]);           // f32, shape [2, 3]
 * const i = tensor([0, 2], { dtype: "i32" });          // indices
 * const m = tensor([true, false]);                     // bool mask
 * console.log(a.shape, i.dtype, m.dtype);
 * ```
 */
export function tensor(
  data: NestedArray | TypedArray,
  options: CreateOptions & { shape?: Shape } = {},
): Tensor {
  let flat: ArrayLike<number | boolean>;
  let shape: Shape;
  if (ArrayBuffer.isView(data)) {
    flat = data;
    shape = options.shape ?? [data.length];
  } else {
    const inferred = inferShape(data);
    const out: (number | boolean)[] = [];
    flattenInto("tensor", data, inferred, 0, out);
    flat = out;
    shape = options.shape ?? inferred;
  }
  assertShape("tensor", shape);
  if (sizeOf(shape) !== flat.length) {
    throw new OpError("tensor", `shape ${fmtShape(shape)} needs ${sizeOf(shape)} elements, data has ${flat.length}`);
  }
  const dtype = options.dtype ?? inferDType(data, flat);
  assertDType(dtype, "tensor");
  return fromArray(toArray(dtype, flat), shape, dtype, options.device);
}

/**
 * A tensor of `shape` filled with `value`.
 *
 * @example
 * ```ts
 * import { full } from "@moegrad/moegrad";
 * console.log(full([2, 2], 7).toString());
 * ```
 */
export function full(shape: Shape, value: number, options: CreateOptions = {}): Tensor {
  assertShape("full", shape);
  const dtype = options.dtype ?? "f32";
  assertDType(dtype, "full");
  // Store what the dtype can hold: bool is 0/1 (`≠ 0`, like astype), i32 wraps like an Int32Array.
  const v = dtype === "bool" ? (value !== 0 ? 1 : 0) : dtype === "i32" ? value | 0 : value;
  return run1("full", "fill", [], { shape, dtype }, { value: v }, resolveDevice(options.device));
}

/** A tensor of zeros. */
export function zeros(shape: Shape, options: CreateOptions = {}): Tensor {
  return full(shape, 0, options);
}

/** A tensor of ones. */
export function ones(shape: Shape, options: CreateOptions = {}): Tensor {
  return full(shape, 1, options);
}

/** A tensor like `x` (shape, dtype, device unless overridden) filled with `value`. */
export function fullLike(x: Tensor, value: number, options: CreateOptions = {}): Tensor {
  return full(x.shape, value, { dtype: options.dtype ?? x.dtype, device: options.device ?? x.device });
}

/** Zeros shaped like `x`. */
export function zerosLike(x: Tensor, options: CreateOptions = {}): Tensor {
  return fullLike(x, 0, options);
}

/** Ones shaped like `x`. */
export function onesLike(x: Tensor, options: CreateOptions = {}): Tensor {
  return fullLike(x, 1, options);
}

/**
 * Evenly spaced values in [start, end) (`arange(n)` is 0..n−1). Integer arguments give i32 by default.
 *
 * @example
 * ```ts
 * import { arange } from "@moegrad/moegrad";
 * console.log(await arange(5).data());          // Int32Array [0, 1, 2, 3, 4]
 * console.log(await arange(0, 1, 0.25).data()); // Float32Array [0, 0.25, 0.5, 0.75]
 * ```
 */
export function arange(start: number, end?: number, step = 1, options: CreateOptions = {}): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (!Number.isFinite(start) || !Number.isFinite(end) || !Number.isFinite(step) || step === 0) {
    throw new OpError("arange", `start, end and step must be finite and step non-zero (got ${start}, ${end}, ${step})`);
  }
  const n = Math.max(0, Math.ceil((end - start) / step));
  const dtype = options.dtype ?? ([start, end, step].every(Number.isInteger) ? "i32" : "f32");
  const values = allocArray(dtype, n);
  for (let i = 0; i < n; i++) values[i] = start + i * step;
  return fromArray(values, [n], dtype, options.device);
}
