/**
 * The LM aggregation's null-control comparisons, power rows and routing diagnostics on synthetic runs with known
 * answers: learned − control paired by seed, the one-sentence verdict never claiming more than the intervals
 * (and never counting a failed run), the claimed effect translated from the baseline's curve, saturation from
 * routing snapshots, and the per-layer load heatmap.
 */
import assert from "node:assert/strict";
import { aggregateRuns, type RunData } from "../../experiments/lm/aggregate.ts";
import { controlsSummary } from "../../experiments/common/control_verdicts.ts";

/** A finished run whose validation loss falls linearly from 6 to `final` at step 400. */
function run(arm: string, seed: number, final: number, opts: { done?: boolean; load?: number[] } = {}): RunData {
  const steps = [0, 100, 200, 300, 400];
  const loss = (step: number) => 6 + (final - 6) * step / 400;
  const routing = (step: number) => [{
    layer: 0,
    load: opts.load ?? [0.5, 0.25, 0.25, 0],
    unusedExperts: 1,
    maxVio: 1,
    loadCv: 0.5,
    step,
  }];
  return {
    arm,
    seed,
    train: [100, 200, 300, 400].map((step) => ({ kind: "train" as const, step, loss: 5, routing: routing(step) })),
    evals: steps.flatMap((step) =>
      (["valid", "ood"] as const).map((split) => ({
        kind: "eval" as const,
        step,
        split,
        loss: loss(step),
        ppl: Math.exp(loss(step)),
        ...(split === "valid" ? { routing: [{ layer: 0, mi: 0.3, miCorrected: 0.2, expertEntropy: 1 }] } : {}),
      }))
    ),
    final: opts.done === false ? null : { done: true, steps: 400 },
    // The routing of 4 tokens, one more of them as at the end at each evaluation.
    snapshots: [100, 200, 300, 400].map((step, i) => ({
      step,
      layers: [{ layer: 0, topK: 1, experts: [0, 1, 2, 3].map((e, t) => (t <= i ? e : (e + 1) % 4)) }],
    })),
  };
}

const seeds = [0, 1, 2, 3];
const noise = [0, 0.01, -0.01, 0.005];

function aggregate(runs: RunData[], controls = ["random", "hash"]) {
  return aggregateRuns(runs, {
    arms: ["a", "b", ...controls],
    baseline: "a",
    steps: 400,
    targetLoss: "auto",
    controls,
    claimedEffect: { kind: "speedup", factor: 2, source: "a paper" },
  });
}

Deno.test("null controls: every learned arm against every control, paired by seed; the verdict follows the CIs", () => {
  const runs = seeds.flatMap((s) => [
    run("a", s, 4 + noise[s]),
    run("b", s, 4.1 + noise[s]),
    run("random", s, 4.5 + noise[s] * 0.5),
    run("hash", s, 4.05 - noise[s] * 0.3),
  ]);
  const agg = aggregate(runs);
  assert.deepEqual(agg.controlArms, ["random", "hash"]);
  // The headline compares the learned arms only.
  assert.deepEqual(agg.comparisons.map((c) => c.arm), ["b"]);
  assert.deepEqual(agg.controls.map((c) => `${c.learned}-${c.control}`), ["a-random", "a-hash", "b-random", "b-hash"]);
  const [aRandom, aHash, bRandom, bHash] = agg.controls;
  assert.ok(Math.abs(aRandom.paired.diff + 0.5 - 0.000625) < 1e-9 && aRandom.paired.hi < 0, "a beats random");
  assert.ok(aHash.paired.hi < 0, "a beats hash");
  assert.ok(bRandom.paired.hi < 0, "b beats random");
  assert.ok(bHash.paired.lo > 0, "hash beats b");
  assert.match(
    controlsSummary(agg.controls, agg.controlArms),
    /beat some null controls but not all: not beaten beyond seed noise: b vs hash/,
  );
  // The target comes from the learned arms: the slowest of a and b (b), not the random control.
  assert.match(agg.target.rule, /here: b/);
});

Deno.test("null controls: all beaten, none beaten, too few seeds, failed runs left out", () => {
  const all = aggregate(seeds.flatMap((s) => [
    run("a", s, 4 + noise[s]),
    run("b", s, 4.02 + noise[s]),
    run("random", s, 4.5 + noise[s]),
    run("hash", s, 4.3 + noise[s] * 2),
  ]));
  assert.match(controlsSummary(all.controls, all.controlArms), /^Every learned router beats every null control/);

  const none = aggregate(seeds.flatMap((s) => [
    run("a", s, 4 + noise[s]),
    run("b", s, 4 - noise[s]),
    run("random", s, 4 + noise[s] * 1.5),
    run("hash", s, 4 - noise[s] * 1.5),
  ]));
  assert.match(controlsSummary(none.controls, none.controlArms), /^No learned router beats any null control/);

  // The control's seeds 1-3 failed: only seed 0 pairs, so no claim either way (the failed runs count nowhere).
  const failed = aggregate(seeds.flatMap((s) => [
    run("a", s, 4 + noise[s]),
    run("b", s, 4.02 + noise[s]),
    run("random", s, 4.5, { done: s === 0 }),
    run("hash", s, 4.5, { done: s === 0 }),
  ]));
  assert.ok(failed.controls.every((c) => c.paired.n === 1));
  assert.deepEqual(failed.controls[0].paired.unpairedArm, [1, 2, 3]);
  assert.match(controlsSummary(failed.controls, failed.controlArms), /^Too few seeds finished/);
  assert.match(controlsSummary([], []), /^No null control ran/);
});

Deno.test("power rows: SD of the per-seed differences, MDD, seeds for the claimed effect from the baseline's curve", () => {
  const agg = aggregate(seeds.flatMap((s) => [
    run("a", s, 4 + noise[s]),
    run("b", s, 4.1 + 2 * noise[s]),
    run("random", s, 4.5),
    run("hash", s, 4.5),
  ]));
  // A 2× speed-up = the baseline's mean loss at step 200 minus at step 400: (6 + 4.00125)/2 − 4.00125.
  const meanFinal = 4 + (0 + 0.01 - 0.01 + 0.005) / 4;
  assert.ok(Math.abs(agg.claimedEffect!.nats - ((6 + meanFinal) / 2 - meanFinal)) < 1e-9, `${agg.claimedEffect!.nats}`);
  assert.match(agg.claimedEffect!.rule, /a paper: a 2× speed-up/);
  // A curve without an evaluation at or before T / f cannot translate the claim (no clamped number instead).
  const late = aggregate(
    seeds.flatMap((s) => [run("a", s, 4), run("b", s, 4.1), run("random", s, 4.5), run("hash", s, 4.5)])
      .map((r) => ({ ...r, evals: r.evals.filter((e) => e.step >= 300) })),
  );
  assert.ok(Number.isNaN(late.claimedEffect!.nats));
  assert.match(late.claimedEffect!.rule, /cannot be translated here: the baseline has no validation evaluation/);
  assert.ok(late.power.every((p) => p.seedsForClaim === null));
  assert.deepEqual(agg.power.map((p) => p.arm), ["b"], "learned arms only");
  const p = agg.power[0];
  assert.equal(p.n, 4);
  // Per-seed differences = 0.1 + noise: SD of [0, 0.01, −0.01, 0.005].
  const d = noise, m = d.reduce((x, y) => x + y) / 4;
  const sd = Math.sqrt(d.reduce((s, x) => s + (x - m) ** 2, 0) / 3);
  assert.ok(Math.abs(p.sd - sd) < 1e-12);
  assert.ok(p.minDetectable > 0 && p.seedsForReference.length === 3 && p.seedsForClaim === 2);
});

Deno.test("routing diagnostics: bands, MaxVio over the run, saturation from snapshots, and the load heatmap", () => {
  const agg = aggregate(seeds.flatMap((s) => [
    run("a", s, 4, { load: [0.4, 0.2, 0.2, 0.2] }),
    run("b", s, 4),
    run("random", s, 4.5),
    run("hash", s, 4.5),
  ]));
  const d = agg.arms[0].diagnostics!;
  assert.deepEqual(d.maxVio.mean, [1, 1, 1, 1]);
  assert.deepEqual(d.loadCv.mean, [0.5, 0.5, 0.5, 0.5]);
  assert.ok(Math.abs(d.runMaxVio.mean - 0.6) < 1e-12, "max 0.4 / mean 0.25 − 1");
  assert.deepEqual(d.mi.steps, [0, 100, 200, 300, 400]);
  assert.equal(d.finalMi.mean, 0.2);
  assert.equal(d.finalMiPlugin.mean, 0.3);
  assert.deepEqual(d.saturation.steps, [100, 200, 300, 400]);
  assert.deepEqual(d.saturation.mean, [0.25, 0.5, 0.75, 1]);
  assert.equal(d.heatmaps.length, 1);
  assert.deepEqual(d.heatmaps[0].steps, [100, 200, 300, 400]);
  assert.deepEqual(d.heatmaps[0].load.map((row) => row[0]), [0.4, 0.2, 0.2, 0.2]);
});
