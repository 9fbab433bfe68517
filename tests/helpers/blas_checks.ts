/**
 * What the native-BLAS kernel tests share: whether they can run, running under given CPU options, bit
 * comparison, and the error bound they hold results to: two dot products over K computed in any order
 * (the reference rounds every step; the BLAS may fuse multiply-adds and block K) are each within the classical
 * worst-case bound γ_K·Σ|a||b| of the exact value (γ_K = K·u / (1 − K·u), u the unit roundoff), so they differ
 * by at most 2·γ_K·Σ|a||b|.
 */
import assert from "node:assert/strict";
import { blasHandle } from "../../kernels/cpu/blas_library.ts";
import { setCpuOptions } from "../../mod.ts";
import type { Float } from "./matmul_case.ts";

/** True when the BLAS tests must be ignored: no --allow-ffi, or no library found. */
export const noBlas = Deno.permissions.querySync({ name: "ffi" }).state !== "granted" || blasHandle() === null;

/** Runs `fn` under the given CPU options, restoring the previous ones after. */
export function withOptions<T>(options: Parameters<typeof setCpuOptions>[0], fn: () => T): T {
  const saved = setCpuOptions(options);
  try {
    return fn();
  } finally {
    setCpuOptions(saved);
  }
}

/**
 * Asserts bit-identical arrays, naming the first difference (assert.deepEqual's diff of two large typed arrays
 * that differ takes gigabytes).
 */
export function sameBits(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const i = Array.prototype.findIndex.call(got, (v: number, j: number) => !Object.is(v, want[j]));
  assert.equal(i, -1, `${what}: element ${i} is ${got[i]}, expected ${want[i]}`);
}

/** Unit roundoff of each dtype. */
const UNIT = { f32: 2 ** -24, f64: 2 ** -53 };

/** γ_K of `dtype`: the relative worst-case error of a K-term dot product. */
function gamma(dtype: Float, k: number): number {
  return (k * UNIT[dtype]) / (1 - k * UNIT[dtype]);
}

/**
 * Asserts |got[i] − want[i]| ≤ 2·γ_{K(i)}·scale[i] for every i, where `scale[i]` is Σ|a||b| of element i and
 * `k(i)` its number of terms; the failure names `what`, the element and both values.
 */
export function assertWithinDotBound(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  scale: ArrayLike<number>,
  dtype: Float,
  k: (i: number) => number,
  what: string,
): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= 2 * gamma(dtype, k(i)) * scale[i])) {
      assert.fail(`${what}: element ${i} is ${got[i]}, reference ${want[i]} (error ${err})`);
    }
  }
}
