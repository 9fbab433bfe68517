/**
 * Run-time switches of the CPU backend: which fast paths the kernels may take. The plain TypeScript kernels
 * are always present as the reference and fallback; these switches exist so tests can compare the paths and
 * the benchmark can measure the plain-TypeScript path against the fast one in the same process.
 *
 * @example
 * ```ts
 * import { cpuOptions, setCpuOptions } from "./config.ts";
 * const before = cpuOptions();
 * setCpuOptions({ threads: 1 }); // single-threaded matmul from here on
 * setCpuOptions(before);
 * ```
 *
 * @module
 */
import { DEFAULT_POOL_BYTES, setPoolLimit, setPoolShared } from "./pool.ts";
import { blasHandle, detectBlas } from "./blas_library.ts";

/**
 * Which kernel runs matmuls: `auto` (default) uses a native BLAS when {@link detectBlas} finds one (only with
 * `--allow-ffi`) and `wasm` is on, else the built-in kernels; `wasm` always uses the built-in kernels
 * (WebAssembly SIMD when `wasm` is on, else TypeScript); `blas` uses the BLAS for every f32/f64 matmul.
 */
export type MatmulChoice = "auto" | "wasm" | "blas";

/** What the CPU kernels may use. */
export interface CpuOptions {
  /**
   * f32 matmuls, and f32 elementwise programs it computes exactly, may run on WebAssembly SIMD (default
   * true; it falls back when SIMD is missing). Elementwise results are the same either way.
   */
  wasm: boolean;
  /**
   * Threads (including the calling thread) a large matmul, elementwise program, Adam update, softmax or sum
   * may be split over; 1 = the calling thread only. Results are the same for every value. Above 1, new CPU
   * buffers are shared memory (see `threads/pool.ts`).
   */
  threads: number;
  /** Specialised fast paths of the non-matmul kernels (contiguous elementwise, fused rows, …) (default true). */
  fastKernels: boolean;
  /**
   * Most bytes of released buffers the backend keeps for reuse (default 1 GiB; 0 turns reuse off). A
   * buffer is released when the last tensor viewing it is disposed (by `dispose()`, `scope()` or
   * `backward()`); the next allocation of the same dtype and length takes it instead of a fresh array.
   * With more than one thread, released buffers are regions of the WebAssembly matmul's memory, which
   * cannot shrink: those stay reserved for reuse whatever this limit (0 only stops handing them out).
   */
  poolBytes: number;
  /** Which matmul kernel runs (see {@link MatmulChoice}; default `auto`). */
  matmul: MatmulChoice;
}

function defaultThreads(): number {
  const n = (globalThis.navigator as { hardwareConcurrency?: number } | undefined)?.hardwareConcurrency ?? 1;
  return Math.max(1, Math.min(16, Math.floor(n)));
}

const current: CpuOptions = {
  wasm: true,
  threads: defaultThreads(),
  fastKernels: true,
  poolBytes: DEFAULT_POOL_BYTES,
  matmul: "auto",
};

// With several threads, pooled buffers are shared memory the kernel Workers can see (pool.ts).
setPoolShared(current.threads > 1);

/** The live options object, for kernels' hot paths (read-only; change it with {@link setCpuOptions}). */
export const liveCpuOptions: Readonly<CpuOptions> = current;

/** The CPU backend's current options (a copy). */
export function cpuOptions(): CpuOptions {
  return { ...current };
}

/**
 * Changes some CPU backend options and returns the previous ones. `threads` must be an integer in [1, 64];
 * `matmul: "blas"` throws unless a BLAS library is loaded (`--allow-ffi` and a library, see {@link detectBlas}).
 * The plain-TypeScript path is `{ wasm: false, threads: 1, fastKernels: false }` (under `matmul: "auto"`,
 * `wasm: false` keeps matmuls off the BLAS too).
 */
export function setCpuOptions(options: Partial<CpuOptions>): CpuOptions {
  const previous = cpuOptions();
  const t = options.threads, m = options.matmul, b = options.poolBytes;
  if (b !== undefined && (!Number.isSafeInteger(b) || b < 0)) {
    throw new RangeError(`setCpuOptions: poolBytes must be a non-negative integer, got ${b}`);
  }
  if (t !== undefined && (!Number.isInteger(t) || t < 1 || t > 64)) {
    throw new RangeError(`setCpuOptions: threads must be an integer in [1, 64], got ${t}`);
  }
  if (m !== undefined && m !== "auto" && m !== "wasm" && m !== "blas") {
    throw new RangeError(`setCpuOptions: matmul must be "auto", "wasm" or "blas", got ${JSON.stringify(m)}`);
  }
  if (m === "blas" && blasHandle() === null) {
    throw new Error(`setCpuOptions: matmul "blas" needs a BLAS library; detection said: ${detectBlas().message}`);
  }
  if (t !== undefined) {
    current.threads = t;
    setPoolShared(t > 1);
  }
  if (m !== undefined) current.matmul = m;
  if (options.wasm !== undefined) current.wasm = options.wasm;
  if (options.fastKernels !== undefined) current.fastKernels = options.fastKernels;
  if (b !== undefined) {
    current.poolBytes = b;
    setPoolLimit(b);
  }
  return previous;
}
