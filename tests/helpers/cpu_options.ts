/**
 * Runs test code under other CPU backend options and restores the previous ones afterwards.
 *
 * @module
 */
import { type CpuOptions, setCpuOptions } from "../../mod.ts";

/** Runs `fn` with `options` applied, then restores the options that were in force (also when `fn` throws). */
export function withCpuOptions<T>(options: Partial<CpuOptions>, fn: () => T): T {
  const prev = setCpuOptions(options);
  try {
    return fn();
  } finally {
    setCpuOptions(prev);
  }
}

/** {@link withCpuOptions} for the `fastKernels` switch: the fast paths (true) or the reference loops (false). */
export function withFast<T>(fast: boolean, fn: () => T): T {
  return withCpuOptions({ fastKernels: fast }, fn);
}
