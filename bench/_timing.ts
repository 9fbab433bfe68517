/**
 * Shared by the `deno bench` files: a recorder of per-iteration times, so each bench can print a GFLOP/s table
 * from the very iterations deno bench ran. (Deterministic operands: `filled` in `tests/helpers/host_rng.ts`.)
 */
import { median } from "../experiments/common/stats.ts";

/** Records each bench iteration's wall time under a name, for an n³ matmul of the given size. */
export class MatmulTimes {
  readonly #records = new Map<string, { flops: number; ms: number[] }>();
  /** Wraps `fn` so every call records its duration under `name`. */
  timed(name: string, size: number, fn: () => void): () => void {
    const rec = { flops: 2 * size ** 3, ms: [] as number[] };
    this.#records.set(name, rec);
    return () => {
      const t0 = performance.now();
      fn();
      rec.ms.push(performance.now() - t0);
    };
  }
  /** Median ms and GFLOP/s of `name`, or null when it never ran. */
  stats(name: string): { ms: number; gflops: number } | null {
    const rec = this.#records.get(name);
    if (!rec?.ms.length) return null;
    const ms = median(rec.ms);
    return { ms, gflops: rec.flops / ms / 1e6 };
  }
}
