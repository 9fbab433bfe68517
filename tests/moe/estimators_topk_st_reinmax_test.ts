import assert from "node:assert/strict";
import { gradients, type Tensor, tensor } from "../../mod.ts";
import { GeneratorDraws, type LoggedDraw, ReplayDraws } from "../../moe/estimators/estimator.ts";
import { TopKEstimator } from "../../moe/estimators/topk.ts";
import {
  ReinMaxEstimator,
  StGumbelEstimator,
  StraightThroughEstimator,
} from "../../moe/estimators/straight_through.ts";
import { BalanceStats, routerZLoss, switchBalanceLoss, topkBalanceLoss } from "../../moe/aux_losses.ts";
import { routingMetrics } from "../../moe/metrics.ts";
import { Generator } from "../../core/random/generator.ts";
import { replayF64 } from "./estimators_replay.ts";
import reinmaxV from "../../vectors/reinmax_tau1_8x4.json" with { type: "json" };
import stV from "../../vectors/straight_through_tau1_8x4.json" with { type: "json" };
import gumbelV from "../../vectors/st_gumbel_softmax_tau0.5_8x4.json" with { type: "json" };
import formulaV from "../../vectors/formula_topk_softmax_and_aux_losses_8x16.json" with { type: "json" };

const f64 = (data: unknown) => tensor(data as number[][], { dtype: "f64" });
const noDraws = () => new GeneratorDraws(new Generator(0));

/** Asserts |a − b| ≤ atol + rtol·|b| elementwise; returns the max abs error. */
async function close(name: string, actual: Tensor, expected: unknown, atol = 1e-9, rtol = 1e-9): Promise<number> {
  const want = [expected].flat(Infinity as 1) as number[];
  const got = Array.from(await actual.data(), Number);
  assert.equal(got.length, want.length, `${name}: ${got.length} values, expected ${want.length}`);
  let maxErr = 0;
  got.forEach((a, i) => {
    const err = Math.abs(a - want[i]);
    maxErr = Math.max(maxErr, err);
    assert.ok(err <= atol + rtol * Math.abs(want[i]), `${name}[${i}]: ${a} vs ${want[i]} (|Δ| = ${err})`);
  });
  return maxErr;
}

/** Prints the largest error of each quantity of `file`. */
function report(file: string, errs: Record<string, number>): void {
  console.log(`${file}: ${Object.entries(errs).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(", ")}`);
}

// Outputs, gradients, the logged multinomial index and draw consumption come from the shared replay; each
// test adds what is specific to its file.

Deno.test("ReinMax τ=1 replays reinmax_tau1_8x4.json", async () => {
  const v = reinmaxV;
  report(v.name, await replayF64(v));
  const draws = new ReplayDraws(v.random_draws as LoggedDraw[]);
  const r = new ReinMaxEstimator({ tau: v.params.tau }).route(f64(v.inputs.logits), { training: true, draws });
  assert.deepEqual(r.experts.shape, [8, 4]);
  assert.deepEqual(Array.from(await r.experts.data()).slice(0, 4), [0, 1, 2, 3]);
});

Deno.test("ReinMax rejects τ < 1", () => {
  assert.throws(() => new ReinMaxEstimator({ tau: 0.5 }), /tau >= 1/);
});

Deno.test("Straight-Through τ=1 replays straight_through_tau1_8x4.json (reference in float32)", async () => {
  const v = stV;
  // The replay compares this file at 1e-6 (float32 reference); the one-hot sample is exact all the same.
  const errs = await replayF64(v);
  report(v.name, errs);
  assert.ok(errs["outputs.one_hot_sample"] <= 1e-9, `one_hot: ${errs["outputs.one_hot_sample"]}`);
});

Deno.test("ST-Gumbel-Softmax τ=0.5 replays st_gumbel_softmax_tau0.5_8x4.json", async () => {
  const v = gumbelV;
  const errs = await replayF64(v);
  const draws = new ReplayDraws(v.random_draws as LoggedDraw[]);
  const r = new StGumbelEstimator({ tau: v.params.tau }).route(f64(v.inputs.logits), { training: true, draws });
  errs.y_soft = await close("y_soft", r.extra!.ySoft, v.intermediates_numpy.y_soft);
  report(v.name, errs);
});

Deno.test("top-2 softmax routing, balance losses and z-loss replay the formula vectors", async () => {
  const v = formulaV;
  const errs = await replayF64(v);
  report(v.name, errs);
  assert.equal(errs["outputs.topk_indices"], 0, "top-k indices are exact");
});

Deno.test("top-k with k = E and renormalisation gives softmax (sorted)", async () => {
  const z = f64([[0.3, -1.2, 2.0, 0.1], [1, 1, 1, 1]]).requiresGrad_();
  const r = new TopKEstimator({ topK: 4 }).route(z, { training: false, draws: noDraws() });
  const p = z.softmax(-1);
  await close("gates", r.gates, Array.from(await p.gather(1, r.experts).data()), 1e-15, 1e-15);
  // Σ gates ≡ 1, so its gradient vanishes.
  const [g] = gradients(r.gates.sum(), [z]);
  await close("grad", g, [0, 0, 0, 0, 0, 0, 0, 0], 1e-15, 0);
});

Deno.test("balance losses are 1 (top-1) and K (top-k) at perfectly uniform routing", async () => {
  const e = 4;
  const probs = f64(Array.from({ length: 8 }, () => [0.25, 0.25, 0.25, 0.25]));
  const top1 = tensor([0, 1, 2, 3, 0, 1, 2, 3], { dtype: "i32" });
  await close("top-1", switchBalanceLoss(probs, top1, e), 1, 1e-15, 0);
  await close("top-1 [N,1]", switchBalanceLoss(probs, top1.reshape(8, 1), e), 1, 1e-15, 0);
  const top2 = tensor([[0, 1], [2, 3], [1, 0], [3, 2], [0, 2], [1, 3], [2, 0], [3, 1]], { dtype: "i32" });
  await close("top-2", topkBalanceLoss(probs, top2, e), 2, 1e-15, 0);
  // With the reference's +1e-6 in the denominator.
  await close("eps", switchBalanceLoss(probs, top1, e, { eps: 1e-6 }), 8 / (8 + 1e-6), 1e-15, 0);
});

Deno.test("global balance stats accumulate counts across micro-batches", async () => {
  const e = 4;
  const stats = new BalanceStats(e);
  const a = tensor([0, 0, 0, 0], { dtype: "i32" });
  const b = tensor([1, 2, 3, 1], { dtype: "i32" });
  stats.add(a).add(b);
  assert.equal(stats.tokens, 8);
  assert.deepEqual(Array.from(await stats.counts().data()), [4, 2, 1, 1]);
  const z = f64([[1, 2, 3, 4], [0, 0, 0, 0], [4, 3, 2, 1], [1, 0, 1, 0]]).requiresGrad_();
  const p = z.softmax(-1);
  const loss = switchBalanceLoss(p, a, e, { global: stats });
  const pbar = Array.from(await p.mean(0).data());
  const want = 4 * (0.5 * pbar[0] + 0.25 * pbar[1] + 0.125 * pbar[2] + 0.125 * pbar[3]);
  await close("global", loss, want, 1e-12, 1e-12);
  stats.reset();
  assert.equal(stats.tokens, 0);
});

Deno.test("z-loss gradient is 2·LSE·softmax/N", async () => {
  const zs = [[0.5, -1, 2], [3, 3, 3], [-2, 0.1, 0.7], [1e-3, 4, -4]];
  const z = f64(zs).requiresGrad_();
  const [g] = gradients(routerZLoss(z), [z]);
  const want = zs.flatMap((row) => {
    const m = Math.max(...row);
    const s = row.reduce((acc, x) => acc + Math.exp(x - m), 0);
    const lse = m + Math.log(s);
    return row.map((x) => (2 * lse * Math.exp(x - lse)) / zs.length);
  });
  await close("grad", g, want, 1e-12, 1e-12);
});

Deno.test("routing metrics on hand-made routings", async () => {
  // 5 experts, 10 tokens top-1: loads 0.4, 0.3, 0.3, 0, 0.
  const experts = tensor([[0], [0], [0], [0], [1], [1], [1], [2], [2], [2]], { dtype: "i32" });
  const uniform = f64(Array.from({ length: 10 }, () => [0.2, 0.2, 0.2, 0.2, 0.2]));
  const m = routingMetrics({
    experts,
    probs: uniform,
    stats: {
      sampledNotArgmax: tensor([1, 0, 0, 0, 1, 0, 0, 0, 0, 0], { dtype: "f64" }).gt(0),
      candidates: tensor([1, 2, 3, 1, 1, 1, 1, 1, 5, 1], { dtype: "i32" }),
    },
  });
  await close("load", m.load, [0.4, 0.3, 0.3, 0, 0], 1e-15, 0);
  await close("entropy", m.gateEntropy, Math.log(5), 1e-12, 0);
  await close("unused", m.unusedExperts, 2, 0, 0);
  await close("top", m.topShare, 0.4, 1e-15, 0);
  await close("bottom", m.bottomShare, 0, 0, 0);
  await close("not argmax", m.sampledNotArgmax!, 0.2, 1e-15, 0);
  await close("multi", m.multiCandidate!, 0.3, 1e-15, 0);
  // One-hot probabilities have zero entropy (0·log 0 = 0); top-2 over 10 experts: top/bottom 2 experts.
  const oneHotP = f64([[1, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]]);
  const m2 = routingMetrics({ experts: tensor([[0, 1], [0, 2]], { dtype: "i32" }), probs: oneHotP });
  await close("entropy 0", m2.gateEntropy, 0, 0, 0);
  await close("top 2 of 10", m2.topShare, 0.75, 1e-15, 0);
  await close("bottom 2 of 10", m2.bottomShare, 0, 0, 0);
  await close("unused 7", m2.unusedExperts, 7, 0, 0);
  assert.equal(m2.sampledNotArgmax, undefined);
});

Deno.test("dense estimators route with generated draws too", async () => {
  const z = f64([[0.3, -1.2, 2.0, 0.1], [1, 1, 1, 1], [5, 0, 0, 0]]);
  const draws = new GeneratorDraws(new Generator(7));
  for (const est of [new StraightThroughEstimator(), new StGumbelEstimator({ tau: 0.5 }), new ReinMaxEstimator()]) {
    const r = est.route(z, { training: true, draws });
    assert.equal(est.dense, true);
    assert.deepEqual(r.gates.shape, [3, 4]);
    const rows = await r.gates.sum(-1).data();
    assert.deepEqual(Array.from(rows), [1, 1, 1]);
    assert.deepEqual(r.stats!.sampledNotArgmax.shape, [3]);
  }
});

Deno.test("ReinMax τ=2 backward equals the autograd form softmax(sg(log π½ − z) + z)", async () => {
  const zs = [[0.3, -1.2, 2.0, 0.1], [1, 1, 1, 1], [5, 0, 0, 0], [-0.4, 0.9, 0.2, -2]];
  const gD = f64([[0.5, -1, 0.3, 2], [1, 0.2, -0.7, 0.1], [0.3, 0.3, -2, 1], [-1, 0.4, 0.8, 0]]);
  const gPi = f64([[1, 0.1, -0.2, 0.4], [-0.3, 0.6, 0, 2], [0.7, -1, 0.2, 0.5], [0.1, 0.2, 0.3, 0.4]]);
  const z = f64(zs).requiresGrad_();
  const r = new ReinMaxEstimator({ tau: 2 }).route(z, { training: true, draws: new GeneratorDraws(new Generator(3)) });
  const [g] = gradients(r.gates.mul(gD).sum().add(r.extra!.ySoft.mul(gPi).sum()), [z]);
  const z2 = f64(zs).requiresGrad_();
  const hard = r.gates.detach();
  const pi0 = z2.softmax(-1);
  const piHalf = z2.detach().div(2).softmax(-1).add(hard).mul(0.5);
  const pi1 = piHalf.log().sub(z2.detach()).add(z2).softmax(-1);
  const pi2 = pi1.mul(2).sub(pi0.mul(0.5));
  const dHat = pi2.sub(pi2.detach()).add(hard);
  const [g2] = gradients(dHat.mul(gD).sum().add(pi0.mul(gPi).sum()), [z2]);
  await close("reinmax τ=2", g, Array.from(await g2.data()), 1e-12, 1e-12);
});
