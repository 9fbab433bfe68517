/**
 * Table-driven erf, exp and tanh for the f32 fast path of the CPU kernels.
 *
 * ## Reproducible by construction
 * All three functions use only operations that IEEE 754 defines exactly — +, −, ×, ÷ on doubles, comparisons,
 * `abs`, truncation of a small positive double, table loads and integer bit work — and no `Math.exp`,
 * `Math.round` or other library call whose result could differ between engines or instruction sets. So the
 * JavaScript loops (`kernels/expr/js.ts`, math `"fast"`) and the WebAssembly f64x2 kernels
 * (`wasm/transcendental.ts`), which spell out the same operations in the same order on the same tables,
 * give the same bits. The reference kernels (`fastKernels: false`) keep `Math.exp` and the series erf of
 * `math.ts`: they are the oracle these are tested against.
 *
 * ## erf The reference `erf` (`math.ts`) sums a
 * series of up to dozens of terms per call, which made exact GELU the most expensive elementwise op of an
 * MoE training step. Here erf is a degree-6 Taylor polynomial around the nearest point of a 1/64 grid on
 * [0, 6] (ties to even); the coefficients come from the reference erf and the closed form of its derivatives,
 * erf⁽ᵏ⁺¹⁾(x) = (2/√π)·(−1)ᵏ·Hₖ(x)·e^(−x²) (Hₖ: physicists' Hermite polynomials). The truncation error is
 * below 1e-16 and the coefficients are accurate to about 1e-16, so after rounding to f32 the result equals
 * the reference's except in rare ties of the last bit (tests check within 1 ulp).
 * The nearest grid point is found with the 1.5·2⁵² shifter ({@link ROUND_SHIFT}), ties to even; until
 * 2026-12-07 ties rounded up, and the two differ only at the exact ties |x|·64 = k + ½, where either
 * neighbour's polynomial is accurate (they differ by ~1e-16 at most in double; within 1 f32 ulp after rounding).
 *
 * ## exp
 * eˣ = 2ᵐ · 2^(j/64) · eʳ with k = m·64 + j the integer nearest x·64/ln 2 and r = x − k·ln2/64
 * (|r| ≤ ln2/128; ln2/64 split in two parts, the first short enough that k times it is exact). 2^(j/64)
 * comes from a 64-entry table rounded correctly (built with BigInt arithmetic), eʳ − 1 from its degree-6
 * Taylor polynomial (truncation below 1e-19), and 2ᵐ from two exact powers of two so that the product may
 * fall into the subnormal range. The error is about 1 ulp of a double (tests: ≤ 2 ulp from `Math.exp`,
 * itself within 1 ulp), so after rounding to f32 the result is the reference's except in rare ties
 * (tests check within 1 ulp). Beyond the double range it gives 0 or +∞, NaN for NaN, as `Math.exp`.
 *
 * ## tanh
 * tanh(a) = E/(E + 2) for a = |x| with E = e^(2a) − 1, from the same reduction: with s = 2ᵐ·2^(j/64) (exact),
 * E = (s − 1) + s·(eʳ − 1), where s − 1 is exact for m = 0 and the polynomial keeps its relative accuracy as
 * r → 0, so small arguments lose nothing to cancellation. The table's rounding (½ ulp of s) makes the
 * relative error up to ~1e-14 where 2a is just above ln2/128 (E ≈ 0.01); elsewhere a few ulp. After
 * rounding to f32 that is within 1 ulp of `Math.tanh` (tests). tanh is ±1 from |x| ≥ 22, x itself for
 * ±0 (the sign kept), NaN for NaN.
 *
 * @module
 */
import { erf } from "./math.ts";

const STEPS = 64, MAX = 6, DEGREE = 6, WIDTH = DEGREE + 1;
let table: Float64Array | null = null;

/** Builds the Taylor coefficients c₀…c₆ of every grid point (once, ~0.1 ms). */
function buildTable(): Float64Array {
  const t = new Float64Array((MAX * STEPS + 1) * WIDTH);
  const c = 2 / Math.sqrt(Math.PI);
  for (let i = 0; i <= MAX * STEPS; i++) {
    const x = i / STEPS, g = c * Math.exp(-x * x);
    t[i * WIDTH] = erf(x);
    // H₀ = 1, H₁ = 2x, Hₖ₊₁ = 2x·Hₖ − 2k·Hₖ₋₁; coefficient k+1 is (2/√π)(−1)ᵏHₖ(x)e^(−x²)/(k+1)!.
    let hPrev = 0, h = 1, fact = 1;
    for (let k = 0; k < DEGREE; k++) {
      fact *= k + 1;
      t[i * WIDTH + k + 1] = (k % 2 === 0 ? 1 : -1) * h * g / fact;
      const next = 2 * x * h - 2 * k * hPrev;
      hPrev = h;
      h = next;
    }
  }
  return t;
}

/**
 * Adding and subtracting 1.5·2⁵² rounds a double of magnitude below 2⁵¹ to the nearest integer, ties to
 * even — exactly, with two IEEE additions (no `Math.round`, which V8 does not inline on doubles, and which
 * the SIMD rendering would need a longer sequence for). The sum's low 32 bits hold that integer, which the
 * SIMD rendering reads as the table index instead of converting the double.
 */
export const ROUND_SHIFT = 1.5 * 2 ** 52;

/** The erf table: Taylor coefficients c₀…c₆ of every point of the 1/64 grid on [0, 6], 7 doubles each. */
export function erfTable(): Float64Array {
  if (table) return table;
  const t = buildTable();
  // The SIMD rendering relies on the last point's value being exactly 1 (see fastErf).
  if (t[MAX * STEPS * WIDTH] !== 1) throw new Error("fast_math: erf(6) in the table is not 1");
  return table = t;
}

/** Layout of {@link erfTable} and of fastErf's argument reduction (for the SIMD rendering). */
export const ERF_GRID = { steps: STEPS, max: MAX, width: WIDTH } as const;

/**
 * erf(x) to ~1e-16 (see the module docs); NaN for NaN, ±1 from |x| = 6 on (as the reference; the grid's
 * last point is 6, whose value in the table is exactly 1, so the SIMD rendering clamps |x| to 6 instead).
 */
export function fastErf(x: number): number {
  const t = table ?? erfTable();
  const ax = Math.abs(x);
  if (!(ax < MAX)) return ax === ax ? (x < 0 ? -1 : 1) : NaN;
  // i: the grid point nearest ax (ties to even); i/64 and d are exact.
  const i = (ax * STEPS + ROUND_SHIFT) - ROUND_SHIFT, d = ax - i * (1 / STEPS), o = (i | 0) * WIDTH;
  const r = t[o] + d * (t[o + 1] + d * (t[o + 2] + d * (t[o + 3] + d * (t[o + 4] + d * (t[o + 5] + d * t[o + 6])))));
  return x < 0 ? -r : r;
}

/** Exact GELU x·Φ(x) with {@link fastErf}. */
export function fastGelu(x: number): number {
  return 0.5 * x * (1 + fastErf(x * Math.SQRT1_2));
}

/** Entries of the exp table: 2^(j/64) for j = 0…63. */
export const EXP_STEPS = 64;

/**
 * The constants of {@link fastExp}, shared with its SIMD rendering: the argument range, 64/ln 2, the
 * round-to-nearest shifter 1.5·2⁵², ln2/64 as hi + lo (hi has 36 significant bits, so k·hi is exact for
 * |k| < 2¹⁷) and the Taylor coefficients 1/2!…1/6! of eʳ − 1 beyond r.
 */
export const EXP_CONST = (() => {
  const hi = Math.round((Math.LN2 / EXP_STEPS) * 2 ** 42) / 2 ** 42;
  // ln 2 − fl(ln 2), so lo carries the bits of ln 2 that the double Math.LN2 lacks.
  const ln2Tail = 2.319046813846299558e-17;
  return {
    /** Below this eˣ rounds to 0 in double; above `max` it overflows. */
    min: -745.1332191019412,
    max: 709.782712893384,
    invL: EXP_STEPS / Math.LN2,
    shift: ROUND_SHIFT,
    lHi: hi,
    lLo: (Math.LN2 - EXP_STEPS * hi + ln2Tail) / EXP_STEPS,
    c2: 1 / 2,
    c3: 1 / 6,
    c4: 1 / 24,
    c5: 1 / 120,
    c6: 1 / 720,
  } as const;
})();

let exp2Table: Float64Array | null = null;

/** 2^(j/64), j = 0…63, each rounded correctly (exact integer arithmetic; ~1 ms, once). */
export function expTable(): Float64Array {
  if (exp2Table) return exp2Table;
  const t = new Float64Array(EXP_STEPS);
  for (let j = 0; j < EXP_STEPS; j++) {
    // y = the 53-bit integer nearest 2^(52 + j/64): y⁶⁴ ≤ 2^(64·52 + j) < (y + 1)⁶⁴, then round.
    const target = 1n << BigInt(64 * 52 + j);
    let y = BigInt(Math.floor(2 ** (j / EXP_STEPS) * 2 ** 52));
    while (y ** 64n > target) y--;
    while ((y + 1n) ** 64n <= target) y++;
    if ((2n * y + 1n) ** 64n <= target << 64n) y++;
    t[j] = Number(y) / 2 ** 52;
  }
  return exp2Table = t;
}

/** 2ᵉ for −600 ≤ e ≤ 600 (exact powers of two; the SIMD rendering builds them from bits instead). */
const POW2_OFFSET = 600;
const pow2 = (() => {
  const t = new Float64Array(2 * POW2_OFFSET + 1);
  for (let e = -POW2_OFFSET; e <= POW2_OFFSET; e++) t[e + POW2_OFFSET] = 2 ** e;
  return t;
})();

/** The integer k nearest y·64/ln 2, as a double (round to nearest even by the 1.5·2⁵² shifter). */
function expK(y: number): number {
  return (y * EXP_CONST.invL + EXP_CONST.shift) - EXP_CONST.shift;
}

/** e^r − 1 for r = y − k·ln2/64 (|r| ≤ ln2/128): the reduced argument and its degree-6 Taylor polynomial. */
function expM1Reduced(y: number, kf: number): number {
  const c = EXP_CONST;
  const r = (y - kf * c.lHi) - kf * c.lLo;
  return r + (r * r) * (c.c2 + r * (c.c3 + r * (c.c4 + r * (c.c5 + r * c.c6))));
}

/** eˣ to about 1 ulp of a double with IEEE-exact operations only (see the module docs). */
export function fastExp(x: number): number {
  if (!(x >= EXP_CONST.min && x <= EXP_CONST.max)) return x !== x ? x : x > 0 ? Infinity : 0;
  const t = exp2Table ?? expTable();
  const kf = expK(x), p = expM1Reduced(x, kf);
  const k = kf | 0, m = k >> 6, e1 = m >> 1, tj = t[k & 63];
  return ((tj + tj * p) * pow2[e1 + POW2_OFFSET]) * pow2[m - e1 + POW2_OFFSET];
}

/** From here tanh(x) is ±1 in double (1 − tanh(22) < 2⁻⁵³). */
export const TANH_SATURATES = 22;

/** tanh(x) with IEEE-exact operations only (see the module docs). */
export function fastTanh(x: number): number {
  const a = Math.abs(x);
  if (!(a < TANH_SATURATES)) return a === a ? (x < 0 ? -1 : 1) : x;
  const y = a + a, t = exp2Table ?? expTable();
  const kf = expK(y), p = expM1Reduced(y, kf);
  const k = kf | 0, s = t[k & 63] * pow2[(k >> 6) + POW2_OFFSET];
  const em = (s - 1) + s * p;
  const th = em / (em + 2);
  return x < 0 ? -th : x === 0 ? x : th;
}
