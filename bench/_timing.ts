/**
 * Shared by the `deno bench` files: deterministic inputs and a recorder of per-iteration times, so each bench
 * can print a GFLOP/s table from the very iterations deno bench ran.
 */

/** Deterministic values in [-1, 1) (an LCG: reproducible inputs, independent of the code under test). */
export function filled(size: number, seed: number): Float32Array {
  const x = new Float32Array(size);
  let s = seed;
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    x[i] = s / 2 ** 31 - 1;
  }
  return x;
}

/** The median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

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
