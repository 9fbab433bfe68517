import assert from "node:assert/strict";
import {
  bootstrapRatioCI,
  clampInterval,
  mean,
  meanCI,
  median,
  MIN_SEEDS_BOOTSTRAP,
  MIN_SEEDS_T,
  normalCdf,
  pairedTTest,
  sampleStd,
  seededRandom,
  stepsToTarget,
  tCdf,
  tCritical,
  tooFewSeeds,
  welchTTest,
} from "../../experiments/common/stats.ts";

const close = (a: number, b: number, tol: number, what = "") =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tol ${tol})`);

Deno.test("stats: mean and sample std against hand-computed values", () => {
  assert.equal(mean([1, 2, 3, 4]), 2.5);
  close(sampleStd([2, 4, 4, 4, 5, 5, 7, 9]), Math.sqrt(32 / 7), 1e-15, "std");
  assert.ok(Number.isNaN(mean([])));
  assert.ok(Number.isNaN(sampleStd([1])));
});

Deno.test("stats: median of the finite values, NaN for none, input left as it was", () => {
  const xs = [3, 1, 2];
  assert.equal(median(xs), 2);
  assert.deepEqual(xs, [3, 1, 2]);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([5, NaN, 1, Infinity, 3]), 3);
  assert.ok(Number.isNaN(median([])));
  assert.ok(Number.isNaN(median([NaN, -Infinity])));
});

Deno.test("stats: t critical values match the published tables (two-sided)", () => {
  // Standard t tables, 0.975 and 0.995 quantiles.
  const table: [number, number, number][] = [
    [1, 12.7062047362, 63.6567411629],
    [2, 4.3026527297, 9.9248432009],
    [4, 2.7764451052, 4.6040948714],
    [5, 2.5705818366, 4.0321429836],
    [10, 2.2281388520, 3.1692726726],
    [30, 2.0422724563, 2.7499956536],
    [Infinity, 1.9599639845, 2.5758293035],
  ];
  for (const [df, t95, t99] of table) {
    close(tCritical(df), t95, 1e-8, `t(0.95, ${df})`);
    close(tCritical(df, 0.99), t99, 1e-7, `t(0.99, ${df})`);
  }
  close(tCritical(2.5), 3.5746548420, 1e-8, "fractional df");
  close(tCdf(-2, 3), 0.0696629842794, 1e-12, "tCdf");
  close(tCdf(0, 7), 0.5, 1e-15, "tCdf(0)");
  close(normalCdf(1.96), 0.9750021048517795, 1e-13, "Φ(1.96)");
  assert.throws(() => tCritical(0), /df must be > 0/);
  assert.throws(() => tCritical(3, 1), /level must be in/);
});

Deno.test("stats: meanCI by hand", () => {
  // mean 3, s = √2.5, half-width = t(0.975, 4) · s / √5 = 2.7764451 · 0.7071068 = 1.9632432
  const ci = meanCI([1, 2, 3, 4, 5]);
  assert.equal(ci.mean, 3);
  assert.equal(ci.n, 5);
  close(ci.lo, 3 - 1.9632432, 1e-6, "lo");
  close(ci.hi, 3 + 1.9632432, 1e-6, "hi");
  const one = meanCI([7]);
  assert.equal(one.mean, 7);
  assert.ok(Number.isNaN(one.lo) && Number.isNaN(one.hi));
});

Deno.test("stats: Welch's t-test against a hand-computed example", () => {
  // a: mean 3, var 2.5; b: mean 6, var 10; se² = 2.5/5 + 10/5 = 2.5; t = −3/√2.5; df = 2.5² / (0.5²/4 + 2²/4).
  const r = welchTTest([1, 2, 3, 4, 5], [2, 4, 6, 8, 10]);
  close(r.t, -3 / Math.sqrt(2.5), 1e-12, "t");
  close(r.df, 6.25 / (0.0625 + 1), 1e-12, "df");
  close(r.p, 0.10753119493, 1e-9, "p");
  const same = welchTTest([1, 2, 3], [1, 2, 3]);
  assert.equal(same.t, 0);
  close(same.p, 1, 1e-12, "p equal");
  assert.equal(welchTTest([1, 1], [2, 2]).p, 0);
  assert.throws(() => welchTTest([1], [1, 2]), /at least 2/);
});

Deno.test("stats: stepsToTarget interpolates the first crossing", () => {
  // Crosses 2.5 between step 100 (3.0) and step 200 (2.0): 100 + 0.5·100.
  assert.equal(stepsToTarget([0, 100, 200, 300], [4, 3, 2, 1], 2.5), 150);
  assert.equal(stepsToTarget([0, 100], [1, 0.5], 2), 0); // already there
  assert.equal(stepsToTarget([0, 100, 200], [4, 3, 2.1], 2), null);
  assert.equal(stepsToTarget([0, 100, 200], [4, NaN, 2], 3), 0 + (1 / 2) * 200); // NaN skipped
  assert.equal(stepsToTarget([0, 10, 20, 30], [3, 2, 2.5, 1], 2), 10); // first crossing, exactly on a point
  assert.throws(() => stepsToTarget([0], [1, 2], 1), /1 steps but 2 values/);
});

Deno.test("stats: bootstrapRatioCI is deterministic and matches a hand-computed distribution", () => {
  // num = [1, 3], den = [1, 1]: a resampled mean of num is 1, 2 or 3 with probabilities ¼, ½, ¼; den's is 1.
  // So the 2.5% quantile is 1, the 97.5% quantile 3 and the ratio of means 2.
  const r = bootstrapRatioCI([1, 3], [1, 1], { iters: 4000, seed: 11 });
  assert.deepEqual(r, { ratio: 2, lo: 1, hi: 3 });
  // The 50% interval is [quantile 0.25, quantile 0.75] of {1 (¼), 2 (½), 3 (¼)}: inside [1, 3], containing 2.
  const mid = bootstrapRatioCI([1, 3], [1, 1], { iters: 4000, seed: 11, level: 0.5 });
  assert.ok(mid.lo >= 1 && mid.lo <= 2 && mid.hi >= 2 && mid.hi <= 3, JSON.stringify(mid));
  const a = [3.1, 2.9, 3.4, 3.0, 3.3];
  const b = [2.0, 2.2, 1.9, 2.1];
  const x = bootstrapRatioCI(a, b, { seed: 5 });
  assert.deepEqual(bootstrapRatioCI(a, b, { seed: 5 }), x); // same seed, same bits
  assert.notDeepEqual(bootstrapRatioCI(a, b, { seed: 6 }), x);
  close(x.ratio, mean(a) / mean(b), 1e-15, "ratio");
  assert.ok(x.lo < x.ratio && x.ratio < x.hi);
  assert.deepEqual(bootstrapRatioCI([2, 2], [4, 4, 4]), { ratio: 0.5, lo: 0.5, hi: 0.5 });
  assert.throws(() => bootstrapRatioCI([], [1]), /both groups/);
});

Deno.test("stats: seededRandom is deterministic and roughly uniform", () => {
  const r1 = seededRandom(42);
  const r2 = seededRandom(42);
  const xs = Array.from({ length: 10000 }, () => r1());
  assert.deepEqual(Array.from({ length: 10000 }, () => r2()), xs);
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  close(mean(xs), 0.5, 0.02, "mean of uniforms");
});

Deno.test("stats: pairedTTest by hand", () => {
  // d = [1, 2, 3, 6]: mean 3, s = √(14/3), se = s / 2, t = 3 / se with 3 degrees of freedom; t(0.975, 3) = 3.18245.
  const r = pairedTTest([1, 2, 3, 6]);
  const se = Math.sqrt(14 / 3) / 2;
  assert.equal(r.n, 4);
  assert.equal(r.diff, 3);
  close(r.lo, 3 - 3.1824463053 * se, 1e-8, "lo");
  close(r.hi, 3 + 3.1824463053 * se, 1e-8, "hi");
  close(r.p, 2 * (1 - tCdf(3 / se, 3)), 1e-12, "p");
  assert.ok(r.p > 0.05 && r.p < 0.1, String(r.p)); // t ≈ 2.78 on 3 df: p ≈ 0.069
  // One pair cannot give an interval; zero spread gives a zero-width one.
  const one = pairedTTest([0.5]);
  assert.ok(one.diff === 0.5 && Number.isNaN(one.lo) && Number.isNaN(one.p));
  assert.deepEqual(pairedTTest([0.2, 0.2]), { diff: 0.2, lo: 0.2, hi: 0.2, p: 0, n: 2 });
});

Deno.test("stats: intervals are clamped to the range of their quantity, and need enough seeds", () => {
  assert.deepEqual(clampInterval(-0.1, 0.4, { min: 0, max: 1 }), { lo: 0, hi: 0.4 });
  assert.deepEqual(clampInterval(0.8, 1.3, { min: 1, max: 4 }), { lo: 1, hi: 1.3 });
  assert.deepEqual(clampInterval(-5, 5, { min: -Infinity, max: Infinity }), { lo: -5, hi: 5 });
  const nan = clampInterval(NaN, NaN, { min: 0, max: 1 });
  assert.ok(Number.isNaN(nan.lo) && Number.isNaN(nan.hi));
  assert.equal(MIN_SEEDS_T, 2);
  // 3 seeds have C(5, 3) = 10 distinct bootstrap resamples: too few; the minimum is 5 (126).
  assert.equal(MIN_SEEDS_BOOTSTRAP, 5);
  assert.equal(tooFewSeeds(3, MIN_SEEDS_BOOTSTRAP), "too few seeds (n = 3; needs ≥ 5)");
});
