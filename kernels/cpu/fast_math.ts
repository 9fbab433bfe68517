/**
 * A table-driven erf for the f32 fast path of the CPU kernels. The reference `erf` (`math.ts`) sums a
 * series of up to dozens of terms per call, which made exact GELU the most expensive elementwise op of an
 * MoE training step. Here erf is a degree-6 Taylor polynomial around the nearest point of a 1/64 grid on
 * [0, 6]; the coefficients come from the reference erf and the closed form of its derivatives,
 * erf⁽ᵏ⁺¹⁾(x) = (2/√π)·(−1)ᵏ·Hₖ(x)·e^(−x²) (Hₖ: physicists' Hermite polynomials). The truncation error is
 * below 1e-16 and the coefficients are accurate to about 1e-16, so after rounding to f32 the result equals
 * the reference's except in rare ties of the last bit (tests check within 1 ulp).
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
 * `Math.round(v)` for 0 ≤ v < 2³⁰, without calling it: V8 does not inline `Math.round` on doubles, and the
 * call cost half of fastErf's time. `(v + 0.5) | 0` is the same except where the sum rounds up to the next
 * integer (v just below k − ½); `i − ½ > v` (exact for such i) detects that case.
 */
export function roundHalfUp(v: number): number {
  const i = (v + 0.5) | 0;
  return i - 0.5 > v ? i - 1 : i;
}

/** erf(x) to ~1e-16 (see the module docs); NaN for NaN, ±1 beyond |x| = 6 (as the reference). */
export function fastErf(x: number): number {
  const t = table ?? (table = buildTable());
  const ax = Math.abs(x);
  if (!(ax < MAX)) return ax === ax ? (x < 0 ? -1 : 1) : NaN;
  const i = roundHalfUp(ax * STEPS), d = ax - i / STEPS, o = i * WIDTH;
  const r = t[o] + d * (t[o + 1] + d * (t[o + 2] + d * (t[o + 3] + d * (t[o + 4] + d * (t[o + 5] + d * t[o + 6])))));
  return x < 0 ? -r : r;
}

/** Exact GELU x·Φ(x) with {@link fastErf}. */
export function fastGelu(x: number): number {
  return 0.5 * x * (1 + fastErf(x * Math.SQRT1_2));
}
