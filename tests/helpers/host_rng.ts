/**
 * A tiny seeded host-side generator (mulberry32) for test inputs that must not depend on the code under
 * test (moegrad's own Philox stream), so a failure reproduces from its seed.
 */

/** Uniform values in [0, 1). */
export function rng01(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Uniform values in [-1, 1). */
export function rngSigned(seed: number): () => number {
  const next = rng01(seed);
  return () => next() * 2 - 1;
}

/**
 * `size` deterministic f32 values in [-1, 1) from a 32-bit LCG (the operands of the matmul tests and of the
 * benches in `bench/`, which import it from here).
 */
export function filled(size: number, seed: number): Float32Array {
  const x = new Float32Array(size);
  let s = seed;
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    x[i] = s / 2 ** 31 - 1;
  }
  return x;
}
