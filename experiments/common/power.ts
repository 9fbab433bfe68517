/**
 * Power of the paired (one-sample) two-sided Student-t test, for stating up front what a comparison can detect:
 *
 * - {@link pairedTPower}: the probability that the test rejects at level α when the true mean difference is δ
 *   and the per-pair differences have standard deviation σ, with n pairs (seeds): 1 − F(t_c) + F(−t_c), F the
 *   CDF of the noncentral t with n − 1 degrees of freedom and noncentrality δ√n/σ, t_c the two-sided critical
 *   value. Exact (no normal approximation); n may be fractional, as in R's `power.t.test`.
 * - {@link minDetectableDifference}: the smallest |δ| detected with the given power (default 0.8) by n pairs of
 *   SD σ — what a comparison's seeds and observed variance can see.
 * - {@link seedsNeeded}: the fewest pairs (≥ 2) that detect an effect δ with the given power.
 * - {@link normalApproxSeeds}: the textbook normal approximation n ≈ ((z_{1−α/2} + z_{power}) σ/δ)², which
 *   underestimates the t-based n for small samples (kept for comparison and tests).
 *
 * The noncentral t CDF is P(T ≤ t) = E_S[Φ(t·S − λ)] with S = √(χ²_ν/ν), integrated numerically (composite
 * Simpson rule over the density of S, 4000 intervals around its mode, accurate to ~1e-7 for ν ≥ 1).
 *
 * @example
 * ```ts
 * import { minDetectableDifference, seedsNeeded } from "./power.ts";
 * console.log(seedsNeeded(1, 1)); // 10  (R: power.t.test(delta = 1, sd = 1, power = 0.8, type = "one.sample") → n = 9.94)
 * console.log(minDetectableDifference(1, 10).toFixed(3)); // 0.996
 * ```
 *
 * @module
 */
import { logGamma, normalCdf, tCdf, tCritical } from "./stats.ts";

/** Test settings: two-sided level α (default 0.05) and the power wanted (default 0.8). */
export interface PowerOptions {
  /** Two-sided significance level α ∈ (0, 1) (default 0.05). */
  alpha?: number;
  /** Power wanted ∈ (0, 1) (default 0.8). */
  power?: number;
}

function settings(opts: PowerOptions): { alpha: number; power: number } {
  const alpha = opts.alpha ?? 0.05;
  const power = opts.power ?? 0.8;
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`power: alpha must be in (0, 1), got ${alpha}`);
  if (!(power > 0 && power < 1)) throw new RangeError(`power: power must be in (0, 1), got ${power}`);
  return { alpha, power };
}

/** CDF of the noncentral t distribution with `df` > 0 degrees of freedom and noncentrality `ncp`. */
export function noncentralTCdf(t: number, df: number, ncp: number): number {
  if (!(df > 0)) throw new RangeError(`noncentralTCdf: df must be > 0, got ${df}`);
  if (ncp === 0) return tCdf(t, df);
  if (!Number.isFinite(df) || df > 1e7) return normalCdf(t - ncp);
  // S = √(χ²_ν/ν) has density 2 (ν/2)^{ν/2} / Γ(ν/2) · s^{ν−1} e^{−ν s²/2}; it concentrates near 1 (sd ≈ 1/√(2ν)).
  const half = df / 2;
  const logConst = Math.log(2) + half * Math.log(half) - logGamma(half);
  // Integrate over 14 of those widths on each side (the density beyond is below e^{-90} of its peak).
  const width = 14 / Math.sqrt(2 * df);
  const lo = Math.max(0, 1 - width);
  const hi = 1 + width;
  const intervals = 4000;
  const h = (hi - lo) / intervals;
  let sum = 0;
  for (let i = 0; i <= intervals; i++) {
    const s = lo + i * h;
    const density = s === 0
      ? (df === 1 ? Math.exp(logConst) : 0)
      : Math.exp(logConst + (df - 1) * Math.log(s) - df * s * s / 2);
    const w = i === 0 || i === intervals ? 1 : i % 2 ? 4 : 2;
    sum += w * density * normalCdf(t * s - ncp);
  }
  return Math.min(1, Math.max(0, (sum * h) / 3));
}

/**
 * Power of the two-sided paired t-test with `n` ≥ 2 pairs (may be fractional) when the true mean difference is
 * `effect` standard deviations of the differences (δ/σ).
 */
export function pairedTPower(effect: number, n: number, opts: PowerOptions = {}): number {
  const { alpha } = settings(opts);
  if (!(n >= 2)) throw new RangeError(`pairedTPower: needs n ≥ 2 pairs, got ${n}`);
  const df = n - 1;
  const tc = tCritical(df, 1 - alpha);
  const ncp = Math.abs(effect) * Math.sqrt(n);
  return 1 - noncentralTCdf(tc, df, ncp) + noncentralTCdf(-tc, df, ncp);
}

/**
 * The minimum detectable difference: the smallest |δ| that `n` pairs whose differences have SD `sd` detect with
 * the wanted power (two-sided paired t at level α). NaN for n < 2 or a non-finite SD; 0 for sd = 0.
 */
export function minDetectableDifference(sd: number, n: number, opts: PowerOptions = {}): number {
  const { power } = settings(opts);
  if (!(n >= 2) || !Number.isFinite(sd) || sd < 0) return NaN;
  if (sd === 0) return 0;
  let lo = 0, hi = 1;
  while (pairedTPower(hi, n, opts) < power) hi *= 2;
  for (let i = 0; i < 60 && hi - lo > 1e-7 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (pairedTPower(mid, n, opts) < power) lo = mid;
    else hi = mid;
  }
  return hi * sd;
}

/**
 * The fewest pairs (≥ 2) with which the two-sided paired t-test detects a true difference `effect` when the
 * differences have SD `sd`, with the wanted power; null when more than `max` (default 100 000) would be
 * needed or the inputs are not usable (effect 0, non-finite SD).
 */
export function seedsNeeded(effect: number, sd: number, opts: PowerOptions & { max?: number } = {}): number | null {
  const { power } = settings(opts);
  const max = opts.max ?? 100_000;
  if (!Number.isFinite(sd) || sd < 0 || !Number.isFinite(effect) || effect === 0) return null;
  if (sd === 0) return 2;
  const d = Math.abs(effect) / sd;
  const ok = (n: number) => pairedTPower(d, n, opts) >= power;
  if (ok(2)) return 2;
  // Double to a bracket, then bisect on integers: power grows with n.
  let lo = 2, hi = 4;
  while (!ok(hi)) {
    if (hi >= max) return null;
    lo = hi;
    hi = Math.min(max, hi * 2);
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (ok(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** The normal approximation n = ((z_{1−α/2} + z_{power}) σ / δ)² (not rounded). */
export function normalApproxSeeds(effect: number, sd: number, opts: PowerOptions = {}): number {
  const { alpha, power } = settings(opts);
  const zAlpha = tCritical(Infinity, 1 - alpha);
  // The one-sided quantile z_p from the two-sided critical value (z_p = −z_{1−p} below 0.5).
  const zPower = power === 0.5 ? 0 : Math.sign(power - 0.5) * tCritical(Infinity, Math.abs(2 * power - 1));
  return ((zAlpha + zPower) * sd / effect) ** 2;
}
