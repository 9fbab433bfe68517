/**
 * Times the public `matmul` op on the CPU backend at a given size and thread count: what `bench/report.ts`
 * and the deno bench files call, so the path measured is the path the models take (op → CPU kernel →
 * WebAssembly SIMD kernel, spread over `threads` threads with `setCpuOptions({ threads })`).
 *
 * @example
 * ```ts
 * import { measureMatmul } from "./_matmul_measure.ts";
 * const { gflops } = measureMatmul({ m: 64, threads: 1, repeats: 3 });
 * console.log(`${gflops.toFixed(1)} GFLOP/s`);
 * ```
 */
import { cpuOptions, matmul, setCpuOptions, type Tensor, tensor } from "../core/mod.ts";
import { median } from "../experiments/common/stats.ts";
import { filled } from "../tests/helpers/host_rng.ts";

/** What to time: [batch, m, k] × [batch, k, n] (batch 1: plain 2-D operands). */
export interface MatmulMeasureOptions {
  /** Rows of A and of the result. */
  m: number;
  /** Defaults to m. */
  k?: number;
  /** Defaults to m. */
  n?: number;
  /** Batch items (default 1). */
  batch?: number;
  /** Threads the CPU backend may use (calling thread included); restored afterwards. */
  threads: number;
  /** Untimed calls first (default 2: the first may start Workers and compile). */
  warmup?: number;
  /** Timed calls (default 5); the median is reported. */
  repeats?: number;
}

/** The median time of one call and its rate. */
export interface MatmulMeasure {
  /** Median milliseconds per call (including the output's allocation, as a model would see it). */
  ms: number;
  /** 2·batch·m·n·k / ms, in GFLOP/s. */
  gflops: number;
  /** Every timed call's milliseconds, in order. */
  samples: number[];
}

/** Times `matmul` on f32 operands of the given size with `threads` threads (see the module docs). */
export function measureMatmul(options: MatmulMeasureOptions): MatmulMeasure {
  const { m, k = m, n = m, batch = 1, threads, warmup = 2, repeats = 5 } = options;
  const shapeA = batch === 1 ? [m, k] : [batch, m, k], shapeB = batch === 1 ? [k, n] : [batch, k, n];
  const a = tensor(filled(batch * m * k, 1), { shape: shapeA });
  const b = tensor(filled(batch * k * n, 2), { shape: shapeB });
  const saved = cpuOptions();
  setCpuOptions({ threads });
  try {
    const once = () => {
      const c: Tensor = matmul(a, b);
      c.dispose();
    };
    for (let i = 0; i < warmup; i++) once();
    const samples: number[] = [];
    for (let i = 0; i < repeats; i++) {
      const t0 = performance.now();
      once();
      samples.push(performance.now() - t0);
    }
    const ms = median(samples);
    return { ms, gflops: (2 * batch * m * n * k) / ms / 1e6, samples };
  } finally {
    setCpuOptions(saved);
    a.dispose();
    b.dispose();
  }
}
