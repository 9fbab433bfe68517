/**
 * Small-sample statistics for experiment reports: means with Student-t confidence intervals, Welch's and the
 * paired t-test, a seeded (deterministic) bootstrap of a ratio of means, steps-to-target on a loss curve, and the
 * honesty rules the reports share: the minimum seeds an interval needs ({@link MIN_SEEDS_T},
 * {@link MIN_SEEDS_BOOTSTRAP}) and intervals kept inside the range of their quantity ({@link clampInterval}).
 *
 * The t distribution is computed from the regularized incomplete beta function (continued fraction), and the
 * normal limit (df = ∞) from the regularized incomplete gamma function; quantiles are found by bisection, which
 * is slow-ish (~100 CDF evaluations) but exact to ~1e-12 and never fails to converge.
 *
 * @example
 * ```ts
 * import { meanCI, tCritical } from "./stats.ts";
 * console.log(tCritical(4).toFixed(3)); // 2.776
 * const ci = meanCI([1, 2, 3, 4, 5]);
 * console.log(ci.mean, ci.lo.toFixed(3), ci.hi.toFixed(3)); // 3 1.037 4.963
 * ```
 *
 * @module
 */

/** The closed range of values a quantity can take (`±Infinity` for an open end). */
export interface ValueRange {
  /** Smallest possible value. */
  min: number;
  /** Largest possible value. */
  max: number;
}

/** Seeds needed for a Student-t interval: two values give one degree of freedom, the least a t interval has. */
export const MIN_SEEDS_T = 2;

/**
 * Seeds needed per group for a percentile-bootstrap interval. n values have only C(2n − 1, n) distinct
 * resamples (3 seeds: 10, 4: 35, 5: 126), and the 2.5% / 97.5% percentiles of a handful of distinct values are
 * set by one or two extreme resamples; from 5 on the percentile interval has enough distinct values to mean
 * something, which is also the `paper` presets' seed count.
 */
export const MIN_SEEDS_BOOTSTRAP = 5;

/** What a report prints instead of an interval that `n` values cannot support (`needed` = the minimum). */
export function tooFewSeeds(n: number, needed: number): string {
  return `too few seeds (n = ${n}; needs ≥ ${needed})`;
}

/**
 * Intersects an interval with the range of the quantity (NaN edges stay NaN). The true mean of a quantity that
 * lives in [min, max] lies in [min, max] too, so removing the part of a confidence interval outside the range
 * never removes the true value: the clamped interval keeps the coverage of the original one, and a band no longer
 * shows impossible values (a fraction below 0, a max/mean load ratio below 1) that only reflect the t
 * approximation with few seeds.
 */
export function clampInterval(lo: number, hi: number, range: ValueRange): { lo: number; hi: number } {
  const clamp = (x: number) => (Number.isNaN(x) ? x : Math.min(range.max, Math.max(range.min, x)));
  return { lo: clamp(lo), hi: clamp(hi) };
}

/** Arithmetic mean (NaN for an empty list). */
export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/**
 * The median of the finite values (NaN when there are none); non-finite values are skipped and the input is not
 * modified.
 */
export function median(xs: readonly number[]): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/** Sample standard deviation (divisor n − 1; NaN for fewer than 2 values). */
export function sampleStd(xs: readonly number[]): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) ** 2;
  return Math.sqrt(s / (xs.length - 1));
}

/** ln Γ(x) for x > 0 (Lanczos approximation, g = 7, 9 terms; relative error ~1e-15). */
export function logGamma(x: number): number {
  const c = [
    0.99999999999980993,
    676.5203681218851,
    -1259.1392167224028,
    771.32342877765313,
    -176.61502916214059,
    12.507343278686905,
    -0.13857109526572012,
    9.9843695780195716e-6,
    1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta function (modified Lentz). */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 1000; m++) {
    const m2 = 2 * m;
    let num = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + num * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + num / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    num = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + num * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + num / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return h;
}

/** Regularized incomplete beta function I_x(a, b), 0 ≤ x ≤ 1, a, b > 0. */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const lnFront = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x);
  // The continued fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry otherwise.
  if (x < (a + 1) / (a + b + 2)) return (Math.exp(lnFront) * betaContinuedFraction(a, b, x)) / a;
  return 1 - (Math.exp(lnFront) * betaContinuedFraction(b, a, 1 - x)) / b;
}

/** Standard normal CDF Φ(x), via erf(x/√2) = P(1/2, x²/2) (regularized lower incomplete gamma). */
export function normalCdf(x: number): number {
  if (!Number.isFinite(x)) return x > 0 ? 1 : x < 0 ? 0 : NaN;
  const p = lowerGammaRegularized(0.5, (x * x) / 2);
  return x >= 0 ? 0.5 + 0.5 * p : 0.5 - 0.5 * p;
}

/** Regularized lower incomplete gamma P(a, x): series for x < a + 1, continued fraction otherwise. */
function lowerGammaRegularized(a: number, x: number): number {
  if (x <= 0) return 0;
  const lnFront = -x + a * Math.log(x) - logGamma(a);
  if (x < a + 1) {
    let sum = 1 / a;
    let term = sum;
    for (let n = 1; n < 1000; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-16) break;
    }
    return sum * Math.exp(lnFront);
  }
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return 1 - Math.exp(lnFront) * h;
}

/** CDF of Student's t distribution with `df` > 0 degrees of freedom (df = Infinity: the standard normal). */
export function tCdf(t: number, df: number): number {
  if (!(df > 0)) throw new RangeError(`tCdf: df must be > 0, got ${df}`);
  if (Number.isNaN(t)) return NaN;
  if (!Number.isFinite(df) || df > 1e7) return normalCdf(t);
  if (!Number.isFinite(t)) return t > 0 ? 1 : 0;
  const tail = tUpperTail(Math.abs(t), df);
  return t >= 0 ? 1 - tail : tail;
}

/** P(T > t) for t ≥ 0, computed directly (no 1 − CDF cancellation for small tails). */
function tUpperTail(t: number, df: number): number {
  if (!Number.isFinite(df) || df > 1e7) return 1 - normalCdf(t);
  if (!Number.isFinite(t)) return 0;
  return 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
}

/**
 * The two-sided critical value of Student's t: the `(1 + level) / 2` quantile, so that
 * `P(|T| ≤ tCritical(df, level)) = level`. `df` may be fractional (Welch) or Infinity (normal).
 */
export function tCritical(df: number, level = 0.95): number {
  if (!(df > 0)) throw new RangeError(`tCritical: df must be > 0, got ${df}`);
  if (!(level > 0 && level < 1)) throw new RangeError(`tCritical: level must be in (0, 1), got ${level}`);
  const target = (1 + level) / 2;
  let lo = 0;
  let hi = 1;
  while (tCdf(hi, df) < target) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-13 * Math.max(1, hi); i++) {
    const mid = (lo + hi) / 2;
    if (tCdf(mid, df) < target) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Mean and its two-sided Student-t confidence interval (lo = hi = NaN for fewer than 2 values). */
export function meanCI(xs: readonly number[], level = 0.95): { mean: number; lo: number; hi: number; n: number } {
  const n = xs.length;
  const m = mean(xs);
  if (n < 2) return { mean: m, lo: NaN, hi: NaN, n };
  const half = (tCritical(n - 1, level) * sampleStd(xs)) / Math.sqrt(n);
  return { mean: m, lo: m - half, hi: m + half, n };
}

/**
 * Paired two-sided Student-t test of mean(d) = 0 on per-pair differences `d` (e.g. arm − baseline per seed):
 * the mean difference, its t-95% interval (df = n − 1) and p. Fewer than {@link MIN_SEEDS_T} differences give
 * NaN interval and p; zero spread gives a zero-width interval and p = 0 (or 1 when every difference is 0).
 */
export function pairedTTest(d: readonly number[], level = 0.95): {
  diff: number;
  lo: number;
  hi: number;
  p: number;
  n: number;
} {
  const n = d.length;
  const diff = mean(d);
  if (n < MIN_SEEDS_T) return { diff, lo: NaN, hi: NaN, p: NaN, n };
  const se = sampleStd(d) / Math.sqrt(n);
  if (se === 0) return { diff, lo: diff, hi: diff, p: diff === 0 ? 1 : 0, n };
  const half = tCritical(n - 1, level) * se;
  const p = 2 * tUpperTail(Math.abs(diff / se), n - 1);
  return { diff, lo: diff - half, hi: diff + half, p: Math.min(1, Math.max(0, p)), n };
}

/**
 * The first step at which a curve reaches `target` (value ≤ target), linearly interpolated between the two
 * evaluation points around the crossing; the first step itself if the curve starts at or below the target;
 * `null` if it never gets there. Non-finite values are skipped.
 */
export function stepsToTarget(steps: readonly number[], values: readonly number[], target: number): number | null {
  if (steps.length !== values.length) {
    throw new RangeError(`stepsToTarget: ${steps.length} steps but ${values.length} values`);
  }
  let prev = -1;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    if (v <= target) {
      if (prev < 0) return steps[i];
      const v0 = values[prev];
      const frac = (v0 - target) / (v0 - v);
      return steps[prev] + frac * (steps[i] - steps[prev]);
    }
    prev = i;
  }
  return null;
}

/** A small seeded PRNG (SplitMix32-style mixing of a counter): uniform floats in [0, 1). Deterministic. */
export function seededRandom(seed: number): () => number {
  let state = (Math.trunc(seed) ^ 0x9e3779b9) >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    z = (z ^ (z >>> 16)) >>> 0;
    return z / 4294967296;
  };
}

/** The `q`-quantile of sorted values, linear interpolation between order statistics (NumPy's default). */
export function quantileSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = q * (sorted.length - 1);
  const i = Math.floor(pos);
  const frac = pos - i;
  return i + 1 < sorted.length ? sorted[i] + frac * (sorted[i + 1] - sorted[i]) : sorted[i];
}

/**
 * Percentile-bootstrap confidence interval of `mean(num) / mean(den)`: each iteration resamples the two groups
 * independently (with replacement, same sizes) from a seeded PRNG, so the same inputs and seed give the same
 * interval. Defaults: 2000 iterations, seed 0, level 0.95.
 */
export function bootstrapRatioCI(
  num: readonly number[],
  den: readonly number[],
  opts: { iters?: number; seed?: number; level?: number } = {},
): { ratio: number; lo: number; hi: number } {
  const iters = opts.iters ?? 2000;
  const level = opts.level ?? 0.95;
  if (num.length === 0 || den.length === 0) throw new RangeError("bootstrapRatioCI: both groups need values");
  if (!Number.isInteger(iters) || iters < 1) throw new RangeError(`bootstrapRatioCI: iters must be ≥ 1, got ${iters}`);
  const rand = seededRandom(opts.seed ?? 0);
  const resampledMean = (xs: readonly number[]) => {
    let s = 0;
    for (let i = 0; i < xs.length; i++) s += xs[Math.floor(rand() * xs.length)];
    return s / xs.length;
  };
  const ratios: number[] = [];
  for (let it = 0; it < iters; it++) ratios.push(resampledMean(num) / resampledMean(den));
  ratios.sort((a, b) => a - b);
  return {
    ratio: mean(num) / mean(den),
    lo: quantileSorted(ratios, (1 - level) / 2),
    hi: quantileSorted(ratios, (1 + level) / 2),
  };
}

/**
 * Welch's two-sided t-test of equal means (unequal variances): t = (mean a − mean b) / √(s²a/na + s²b/nb), df by
 * Welch–Satterthwaite, p = 2·P(T > |t|). Needs ≥ 2 values per group; if both variances are 0, t = ±∞ (p = 0) for
 * different means and NaN (p = 1) for equal ones.
 */
export function welchTTest(a: readonly number[], b: readonly number[]): { t: number; df: number; p: number } {
  if (a.length < 2 || b.length < 2) throw new RangeError("welchTTest: each group needs at least 2 values");
  const va = sampleStd(a) ** 2 / a.length;
  const vb = sampleStd(b) ** 2 / b.length;
  const diff = mean(a) - mean(b);
  const se2 = va + vb;
  if (se2 === 0) {
    return diff === 0 ? { t: NaN, df: a.length + b.length - 2, p: 1 } : {
      t: diff > 0 ? Infinity : -Infinity,
      df: a.length + b.length - 2,
      p: 0,
    };
  }
  const t = diff / Math.sqrt(se2);
  const df = (se2 * se2) / ((va * va) / (a.length - 1) + (vb * vb) / (b.length - 1));
  const p = 2 * tUpperTail(Math.abs(t), df);
  return { t, df, p: Math.min(1, Math.max(0, p)) };
}
