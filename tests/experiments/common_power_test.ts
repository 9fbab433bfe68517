import assert from "node:assert/strict";
import {
  minDetectableDifference,
  noncentralTCdf,
  normalApproxSeeds,
  pairedTPower,
  seedsNeeded,
} from "../../experiments/common/power.ts";
import { pairedTTest, seededRandom, tCdf, tCritical } from "../../experiments/common/stats.ts";

const close = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tol ${tol})`);

Deno.test("noncentral t: ncp → 0 is Student's t; a large df is the shifted normal", () => {
  for (const df of [1, 2, 5, 30]) {
    for (const t of [-2.5, -0.3, 0.7, 3]) close(noncentralTCdf(t, df, 1e-9), tCdf(t, df), 1e-7, `df ${df} t ${t}`);
  }
  // T' = (Z + λ)/S with S → 1: P(T' ≤ t) → Φ(t − λ).
  close(noncentralTCdf(2, 1e6, 1.5), 0.6914624612740131, 1e-6, "normal limit");
  close(noncentralTCdf(2, 5000, 1.5), 0.6914624612740131, 2e-3, "near the normal limit");
});

Deno.test("paired t power matches R's power.t.test (type = 'one.sample') at its solved n", () => {
  // power.t.test(delta = δ, sd = 1, sig.level = 0.05, power = 0.8, type = "one.sample")$n:
  // δ = 1 → 9.937864, δ = 0.5 → 33.36713, δ = 0.8 → 14.30276 (R includes only the upper tail; the lower one is
  // below 1e-5 here).
  close(pairedTPower(1, 9.937864), 0.8, 1e-4, "δ = 1");
  close(pairedTPower(0.5, 33.36713), 0.8, 1e-4, "δ = 0.5");
  close(pairedTPower(0.8, 14.30276), 0.8, 1e-4, "δ = 0.8");
  // No effect: the test rejects at its level.
  close(pairedTPower(0, 8), 0.05, 1e-9, "size");
});

Deno.test("seeds needed: the textbook t-based values, above the normal approximation", () => {
  assert.equal(seedsNeeded(1, 1), 10);
  assert.equal(seedsNeeded(0.5, 1), 34);
  assert.equal(seedsNeeded(0.8, 1), 15);
  assert.equal(seedsNeeded(2, 4), 34, "only δ/σ matters");
  assert.equal(seedsNeeded(-0.5, 1), 34, "the sign does not matter");
  // Normal approximation ((1.96 + 0.8416)/δ)²: 7.85 for δ = 1; the t-based n is larger for small samples.
  close(normalApproxSeeds(1, 1), 7.8489, 1e-3, "normal approximation");
  assert.ok(seedsNeeded(1, 1)! > normalApproxSeeds(1, 1));
  // The answer is the smallest n that reaches the power.
  for (const d of [0.3, 0.7, 1.5]) {
    const n = seedsNeeded(d, 1)!;
    assert.ok(pairedTPower(d, n) >= 0.8 && (n === 2 || pairedTPower(d, n - 1) < 0.8), `δ = ${d}: n = ${n}`);
  }
  assert.equal(seedsNeeded(1, 0), 2, "no spread: 2 seeds suffice");
  assert.equal(seedsNeeded(0, 1), null, "a zero effect is never detected");
  assert.equal(seedsNeeded(1e-4, 1, { max: 1000 }), null, "more than max");
});

Deno.test("minimum detectable difference: has the asked power, scales with σ, tends to the normal formula", () => {
  const mdd = minDetectableDifference(1, 10);
  close(pairedTPower(mdd, 10), 0.8, 1e-6, "power at the MDD");
  close(minDetectableDifference(3, 10), 3 * mdd, 1e-5, "linear in σ");
  // (z_0.975 + z_0.8)/√n for large n.
  close(minDetectableDifference(1, 2000), (1.959964 + 0.841621) / Math.sqrt(2000), 2e-4, "large n");
  assert.ok(minDetectableDifference(1, 8) > minDetectableDifference(1, 16));
  assert.ok(Number.isNaN(minDetectableDifference(1, 1)), "one pair: no test");
  assert.equal(minDetectableDifference(0, 8), 0);
  assert.throws(() => pairedTPower(1, 8, { alpha: 0 }), /alpha must be in \(0, 1\)/);
});

Deno.test("minimum detectable difference: above the shifted-central-t approximation, which it meets for many seeds", () => {
  // The common approximation MDD ≈ (t_{1−α/2, n−1} + t_{power, n−1}) σ/√n ignores the noncentral t's skew and is
  // optimistic for few seeds; the exact value must lie above it and converge to it as n grows.
  // (tCritical(df, L) is the (1 + L)/2 quantile: L = 0.95 gives t_0.975, L = 0.6 gives t_0.8.)
  const approx = (sd: number, n: number) => (tCritical(n - 1, 0.95) + tCritical(n - 1, 0.6)) * sd / Math.sqrt(n);
  close(approx(0.1, 3), (4.302653 + 1.060660) * 0.1 / Math.sqrt(3), 1e-5, "approximation at n = 3");
  for (const n of [3, 5, 8, 16]) {
    assert.ok(minDetectableDifference(0.1, n) > approx(0.1, n), `n = ${n}: exact above the approximation`);
  }
  close(minDetectableDifference(1, 400) / approx(1, 400), 1, 2e-3, "n = 400");
  // The seeds needed are consistent with the MDD: the smallest n whose MDD is at most the effect.
  const n = seedsNeeded(0.05, 0.1)!;
  assert.ok(minDetectableDifference(0.1, n) <= 0.05 && minDetectableDifference(0.1, n - 1) > 0.05, `n = ${n}`);
});

Deno.test("power: at the stated n and effect, a simulated paired t-test rejects as often as pairedTPower says", () => {
  const sd = 1, effect = 0.8, n = seedsNeeded(effect, sd)!;
  const rand = seededRandom(4);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  let rejected = 0;
  const trials = 4000;
  for (let i = 0; i < trials; i++) {
    const t = pairedTTest(Array.from({ length: n }, () => effect + sd * normal()));
    if (t.lo > 0 || t.hi < 0) rejected++;
  }
  // Exact power at n (≥ 0.8); the simulation's SE is √(0.8·0.2/4000) ≈ 0.0063: allow 4 SE.
  const want = pairedTPower(effect, n);
  assert.ok(want >= 0.8);
  close(rejected / trials, want, 0.026, `simulated power at n = ${n}`);
});
