/**
 * What the matmul kernel tests share: one case (batches, sizes, transposes, dtype), its operands filled from a
 * host generator, and the `TensorRef` the registry kernels take.
 */
import type { TensorRef } from "../../internals.ts";

/** A float dtype of the matmul kernels. */
export type Float = "f32" | "f64";

/** A float array of either dtype. */
export type FloatArray = Float32Array | Float64Array;

/** One matmul case: `[ba, m, k] @ [bb, k, n]` (before the transposes). */
export interface MatmulCase {
  /** Dtype of both operands. */
  dtype: Float;
  /** Batch of A. */
  ba: number;
  /** Batch of B. */
  bb: number;
  /** Rows of the product. */
  m: number;
  /** Contracted size. */
  k: number;
  /** Columns of the product. */
  n: number;
  /** A is stored transposed. */
  transA: boolean;
  /** B is stored transposed. */
  transB: boolean;
}

/** A zeroed array of `size` elements of `dtype`. */
export function alloc(dtype: Float, size: number): FloatArray {
  return dtype === "f32" ? new Float32Array(size) : new Float64Array(size);
}

/** An array of `size` elements of `dtype` drawn from `next`. */
export function randomArray(dtype: Float, size: number, next: () => number): FloatArray {
  const x = alloc(dtype, size);
  for (let i = 0; i < size; i++) x[i] = next();
  return x;
}

/** The registry kernels' view of a buffer. */
export function ref<B>(buf: B, shape: number[], dtype: Float): TensorRef<B> {
  return { buf, shape, dtype };
}
