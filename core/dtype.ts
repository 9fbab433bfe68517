/**
 * Element types. `f32` is the default float; `f64` exists on the CPU for gradient checks; `i32` holds
 * indices; `bool` holds masks (one byte per element on the CPU).
 *
 * @module
 */

/** The element type of a tensor. */
export type DType = "f32" | "f64" | "i32" | "bool";

/** The floating-point element types (the only ones that carry gradients). */
export type FloatDType = "f32" | "f64";

/** The typed array that stores each dtype on the CPU. */
export type TypedArray = Float32Array | Float64Array | Int32Array | Uint8Array;

/** Every dtype, in a fixed order (useful for validation messages). */
export const DTYPES: readonly DType[] = ["f32", "f64", "i32", "bool"];

/** True for `f32` and `f64`. */
export function isFloat(dtype: DType): dtype is FloatDType {
  return dtype === "f32" || dtype === "f64";
}

/** Bytes per element of `dtype` as stored on the CPU. */
export function bytesPerElement(dtype: DType): number {
  return dtype === "f64" ? 8 : dtype === "bool" ? 1 : 4;
}

/** Allocates a zero-filled typed array of `size` elements for `dtype`. */
export function allocArray(dtype: DType, size: number): TypedArray {
  switch (dtype) {
    case "f32":
      return new Float32Array(size);
    case "f64":
      return new Float64Array(size);
    case "i32":
      return new Int32Array(size);
    case "bool":
      return new Uint8Array(size);
  }
}

/** Copies `values` into a new typed array of `dtype` (booleans become 0/1, numbers are truncated for i32). */
export function toArray(dtype: DType, values: ArrayLike<number | boolean>): TypedArray {
  const out = allocArray(dtype, values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    // Booleans follow astype("bool"): any non-zero number (NaN included) is true, as in PyTorch.
    out[i] = dtype === "bool" ? (typeof v === "boolean" ? Number(v) : v !== 0 ? 1 : 0) : Number(v);
  }
  return out;
}

/** Throws a clear error unless `value` is a known dtype name. */
export function assertDType(value: unknown, where: string): asserts value is DType {
  if (!DTYPES.includes(value as DType)) {
    throw new TypeError(`${where}: unknown dtype ${JSON.stringify(value)}; expected one of ${DTYPES.join(", ")}`);
  }
}
