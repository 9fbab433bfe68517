/**
 * Power of the LM experiments' primary test (a two-sided paired t-test over seeds): the smallest paired
 * difference that n seeds could detect given the observed spread of the per-seed differences, and the seeds it
 * would take to detect a stated effect.
 *
 * With per-seed differences of standard deviation σ, n seeds, level α and power 1 − β, the standard
 * approximation of the paired t-test's power (the non-central t replaced by a shifted central t) gives
 *
 *   MDD(σ, n) = (t_{1−α/2, n−1} + t_{1−β, n−1}) · σ / √n,
 *
 * and the seeds needed for an effect δ are the smallest n ≥ 2 with MDD(σ, n) ≤ |δ|. The approximation is slightly
 * optimistic for very small n (it ignores the non-centrality's skew), so the numbers are a floor, not a promise;
 * σ itself is estimated from the same few seeds, so they are rough.
 *
 * (A shared `experiments/common/power.ts` may replace this file; the API is kept to these two functions.)
 *
 * @example
 * ```ts
 * import { minDetectableDiff, seedsNeeded } from "./power.ts";
 * console.log(minDetectableDiff(0.1, 3).toFixed(3)); // 0.310: 3 seeds detect only differences ≳ 3σ
 * console.log(seedsNeeded(0.1, 0.05)); // 34
 * ```
 *
 * @module
 */
import { tCritical } from "../common/stats.ts";

/** The largest number of seeds {@link seedsNeeded} searches (beyond it: Infinity). */
export const MAX_SEEDS = 100_000;

function check(sd: number, alpha: number, power: number): void {
  if (!(sd >= 0) || !Number.isFinite(sd)) throw new RangeError(`power: sd must be a finite number ≥ 0, got ${sd}`);
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`power: alpha must be in (0, 1), got ${alpha}`);
  if (!(power > 0.5 && power < 1)) throw new RangeError(`power: power must be in (0.5, 1), got ${power}`);
}

/**
 * The minimum paired difference a two-sided paired t-test over `n` seeds detects with probability `power` at
 * level `alpha`, when the per-seed differences have standard deviation `sd` (module docs). NaN for n < 2.
 */
export function minDetectableDiff(sd: number, n: number, alpha = 0.05, power = 0.8): number {
  check(sd, alpha, power);
  if (!Number.isInteger(n) || n < 2) return NaN;
  // tCritical(df, L) is the (1 + L)/2 quantile: L = 1 − α gives t_{1−α/2}, L = 2·power − 1 gives t_{power}.
  const tAlpha = tCritical(n - 1, 1 - alpha);
  const tBeta = tCritical(n - 1, 2 * power - 1);
  return (tAlpha + tBeta) * sd / Math.sqrt(n);
}

/**
 * The smallest number of seeds (≥ 2) whose paired t-test detects a difference `effect` (either sign) with
 * probability `power` at level `alpha`, given a per-seed difference SD `sd`; Infinity past {@link MAX_SEEDS}
 * or for an effect of 0 with sd > 0.
 */
export function seedsNeeded(sd: number, effect: number, alpha = 0.05, power = 0.8): number {
  check(sd, alpha, power);
  const target = Math.abs(effect);
  if (sd === 0) return 2;
  if (target === 0 || !Number.isFinite(target)) return target === Infinity ? 2 : Infinity;
  const ok = (n: number) => minDetectableDiff(sd, n, alpha, power) <= target;
  // MDD falls monotonically in n: double up to a bracket, then bisect.
  let hi = 2;
  while (!ok(hi)) {
    if (hi >= MAX_SEEDS) return Infinity;
    hi = Math.min(MAX_SEEDS, hi * 2);
  }
  let lo = Math.max(1, hi / 2);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (ok(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}
