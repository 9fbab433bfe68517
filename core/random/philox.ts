/**
 * Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a counter-based
 * generator. Output block = Philox(key, counter); no state besides the counter, so any element of any
 * stream can be computed independently, on the CPU or in a WGSL shader, with identical bits.
 *
 * Stream layout shared by every backend (the `random` kernel): element i of a draw that starts at counter
 * c uses block c + floor(i / 4) (a 64-bit counter in words 0–1; words 2–3 are 0) and lane i % 4.
 * - uniform: loc + scale · u with u = (lane >>> 8) · 2⁻²⁴ ∈ [0, 1), exact in f32 and f64;
 * - normal: loc + scale · z, z from Box–Muller on the lane pair (2j, 2j+1) of the block with
 *   j = floor((i % 4) / 2), cos for even i, sin for odd i, using 1 − u for the radius (never log 0);
 * - int: loc + floor(lane · scale / 2³²) ∈ [loc, loc + scale), computed exactly.
 *
 * @module
 */

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two u32 (exact, via 16-bit halves). */
export function mulhi32(a: number, b: number): number {
  const aLo = a & 0xffff, aHi = a >>> 16, bLo = b & 0xffff, bHi = b >>> 16;
  const lolo = aLo * bLo;
  const mid1 = aHi * bLo;
  const mid2 = aLo * bHi;
  const carry = ((lolo >>> 16) + (mid1 & 0xffff) + (mid2 & 0xffff)) >>> 16;
  return (aHi * bHi + (mid1 >>> 16) + (mid2 >>> 16) + carry) >>> 0;
}

/** One Philox4x32-10 block: four u32 outputs for a 128-bit counter and a 64-bit key (written into `out`). */
export function philox4x32(
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  k0: number,
  k1: number,
  out: Uint32Array,
): void {
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi32(M0, c0), lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi32(M1, c2), lo1 = Math.imul(M1, c2) >>> 0;
    const n0 = (hi1 ^ c1 ^ k0) >>> 0;
    const n2 = (hi0 ^ c3 ^ k1) >>> 0;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

/** Uniform in [0, 1) from one u32 lane (24 bits, exact in f32). */
export function laneToUniform(x: number): number {
  return (x >>> 8) * 5.9604644775390625e-8;
}

/** Integer in [0, range) from one u32 lane (multiply-high: no modulo, bias below range · 2⁻³²). */
export function laneToInt(x: number, range: number): number {
  return mulhi32(x >>> 0, range >>> 0);
}

/**
 * Fills `out` with a draw of the given distribution starting at 64-bit counter `[lo, hi]` with key
 * `[k0, k1]`. This is the CPU `random` kernel and the reference for every other backend.
 */
export function fillRandom(
  out: { length: number; [i: number]: number },
  dist: "uniform" | "normal" | "int",
  key: readonly [number, number],
  counter: readonly [number, number],
  loc: number,
  scale: number,
): void {
  const block = new Uint32Array(4);
  const n = out.length;
  for (let b = 0; b * 4 < n; b++) {
    const lo = counter[0] + b;
    const c0 = lo >>> 0;
    const c1 = (counter[1] + Math.floor(lo / 4294967296)) >>> 0;
    philox4x32(c0, c1, 0, 0, key[0] >>> 0, key[1] >>> 0, block);
    for (let lane = 0; lane < 4 && b * 4 + lane < n; lane++) {
      const i = b * 4 + lane;
      if (dist === "uniform") out[i] = loc + scale * laneToUniform(block[lane]);
      else if (dist === "int") out[i] = loc + laneToInt(block[lane], scale);
      else {
        const j = lane & 2;
        const r = Math.sqrt(-2 * Math.log(1 - laneToUniform(block[j])));
        const theta = 2 * Math.PI * laneToUniform(block[j + 1]);
        out[i] = loc + scale * ((lane & 1) === 0 ? r * Math.cos(theta) : r * Math.sin(theta));
      }
    }
  }
}
