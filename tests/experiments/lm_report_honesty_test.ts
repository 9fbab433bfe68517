// The LM report's honesty rules on fabricated runs: unfinished runs are left out of every statistic and named,
// the verdict comes from the declared primary test (paired by seed), intervals stay inside the range of their
// quantity and are withheld below the minimum number of seeds, every arm's router entropy is the full-softmax
// one, and an arm has one colour in every plot.
import assert from "node:assert/strict";
import { join } from "node:path";
import { appendJsonl, writeJsonAtomic } from "../../experiments/common/io.ts";
import { PALETTE } from "../../experiments/common/svg.ts";
import { aggregateRuns, loadRunData, type RunData } from "../../experiments/lm/aggregate.ts";
import { writeReport } from "../../experiments/lm/report.ts";

const STEPS = 1000;

/**
 * A run evaluated every 100 steps up to `stopAt` (the run's last step), with the validation loss falling
 * linearly from 6 to `finalLoss` at step 1000; finished (with final.json) only when `stopAt` is 1000.
 */
function run(arm: string, seed: number, finalLoss: number, stopAt = STEPS, routing: Record<string, unknown> = {}) {
  const evalSteps = Array.from({ length: stopAt / 100 + 1 }, (_, i) => i * 100);
  const lossAt = (step: number) => 6 - (6 - finalLoss) * step / STEPS;
  const evals = evalSteps.flatMap((step) =>
    (["valid", "ood"] as const).map((split) => ({
      kind: "eval" as const,
      step,
      split,
      loss: lossAt(step) + (split === "ood" ? 0.5 : 0),
      ppl: Math.exp(lossAt(step) + (split === "ood" ? 0.5 : 0)),
    }))
  );
  const train = evalSteps.filter((s) => s > 0).map((step) => ({
    kind: "train" as const,
    step,
    loss: lossAt(step),
    msPerStep: 10,
    routing: [{ layer: 0, load: [0.4, 0.3, 0.2, 0.1], unusedExperts: 0, routerEntropy: 1.2, entropy: 1.2, ...routing }],
  }));
  const data: RunData = {
    arm,
    seed,
    train,
    evals,
    final: stopAt === STEPS ? { done: true, steps: STEPS } : null,
  };
  return data;
}

const opts = { arms: ["a", "b"], baseline: "a", steps: STEPS, targetLoss: 5 };

const canWrite = Deno.permissions.querySync({ name: "write" }).state === "granted"; // plain `deno test`

Deno.test("aggregate: an arm whose runs stopped at step 300 of 1000 is left out, named, and never 'separates'", () => {
  const runs = [
    run("a", 0, 4.0),
    run("a", 1, 4.01),
    run("a", 2, 4.02),
    // Every b run stopped at step 300: its last evaluation (≈ 5.4) is not a final one.
    run("b", 0, 4.0, 300),
    run("b", 1, 4.01, 300),
    run("b", 2, 4.02, 300),
  ];
  const agg = aggregateRuns(runs, opts);
  assert.deepEqual(agg.incomplete.map((r) => [r.arm, r.seed, r.lastStep]), [["b", 0, 300], ["b", 1, 300], [
    "b",
    2,
    300,
  ]]);
  const b = agg.arms[1];
  assert.equal(b.completed, 0);
  assert.equal(b.attempted, 3);
  assert.equal(b.final.validLoss.n, 0);
  assert.equal(b.valid.loss.steps.length, 0, "no band from unfinished runs");
  const c = agg.comparisons[0];
  assert.equal(c.verdict.separates, false);
  assert.doesNotMatch(c.verdict.primary, /separate beyond/);
  assert.match(c.verdict.primary, /too few seeds \(n = 0; needs ≥ 2\)/);
});

Deno.test("aggregate: a seed missing from one arm is left out of the pairing, and the verdict says so", () => {
  const runs = [
    run("a", 0, 4.0),
    run("a", 1, 4.2),
    run("a", 2, 4.4),
    run("b", 0, 3.9),
    run("b", 1, 4.1),
    run("b", 2, 3.0, 300, {}), // stopped: must not pair with a's seed 2
  ];
  const agg = aggregateRuns(runs, opts);
  const p = agg.comparisons[0].primary;
  assert.equal(p.n, 2);
  assert.deepEqual(p.seeds, [0, 1]);
  assert.deepEqual(p.unpairedBaseline, [2]);
  assert.ok(Math.abs(p.diff + 0.1) < 1e-9, String(p.diff));
  assert.match(
    agg.comparisons[0].verdict.primary,
    /Only seeds finished in both arms are paired \(seeds: 0, 1\); left out: a seed\(s\) 2/,
  );
});

Deno.test({
  name: "report: unfinished runs are named at the top with their last step and error, and excluded",
  ignore: !canWrite,
}, async () => {
  const out = await Deno.makeTempDir({ prefix: "moegrad-report-incomplete-" });
  try {
    // A run folder on disk: b seed 1 stopped at step 300 of 1000 (no final.json), and the runner saw it fail.
    const runs = [run("a", 0, 4.0), run("a", 1, 4.02), run("b", 0, 4.01), run("b", 1, 2.0, 300)];
    for (const r of runs) {
      const dir = join(out, "runs", `${r.arm}-seed${r.seed}`);
      for (const rec of [...r.train, ...r.evals].sort((x, y) => x.step - y.step)) {
        await appendJsonl(join(dir, "metrics.jsonl"), rec);
      }
      if (r.final) await writeJsonAtomic(join(dir, "final.json"), r.final);
    }
    const loaded = await Promise.all(
      runs.map((r) => loadRunData(join(out, "runs", `${r.arm}-seed${r.seed}`), r.arm, r.seed)),
    );
    const agg = aggregateRuns(loaded, { ...opts, errors: { "b-seed1": "Error: out of memory\n    at step 301" } });
    const md = await writeReport(out, agg, {
      experiment: "t",
      title: "T",
      question: "Q?",
      preset: "smoke",
      command: "x",
      armDescriptions: {},
      setup: [],
    });
    const top = md.slice(0, md.indexOf("Q?"));
    assert.match(top, /1 run\(s\) did not finish and are left out of every statistic/);
    assert.match(top, /\| b \| 1 \| 300 \/ 1000 \| no final\.json[^|]*\| Error: out of memory \|/);
    assert.match(md, /b 1 finished of 2/);
    // b's only finished seed is 4.01: its final loss is that one value, not a mean with the step-300 run's 2.3.
    assert.equal(agg.arms[1].final.validLoss.mean, 4.01);
    assert.doesNotMatch(md, /separate beyond seed noise/);
    const summary = JSON.parse(await Deno.readTextFile(join(out, "summary.json")));
    assert.equal(summary.incomplete[0].error, "Error: out of memory");
    assert.equal(summary.separates, false);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("aggregate: the verdict comes from the primary paired test, Welch is secondary", () => {
  // Large seed-to-seed spread shared by both arms, b consistently 0.05 lower: Welch cannot see it, pairing can.
  const a = [4.0, 4.5, 5.0];
  const b = [3.95, 4.46, 4.94];
  const runs = [...a.map((l, s) => run("a", s, l)), ...b.map((l, s) => run("b", s, l))];
  const agg = aggregateRuns(runs, opts);
  const c = agg.comparisons[0];
  assert.ok(c.finalValidLoss.lo < 0 && c.finalValidLoss.hi > 0, "Welch CI contains 0");
  assert.ok(c.primary.hi < 0, "paired CI excludes 0");
  assert.equal(c.verdict.separates, true);
  assert.match(c.verdict.primary, /^Primary test \(final validation loss, b − a, paired t over seeds\): b ends lower/);
  assert.match(c.verdict.primary, new RegExp(`p = ${c.primary.p.toPrecision(2).replace(".", "\\.")}`));
  assert.ok(c.verdict.secondary.every((s) => s.startsWith("Secondary")));
  assert.equal(agg.primaryTest.endpoint, "finalValidLoss");

  // Declaring the OOD loss as primary makes the verdict follow the OOD paired test instead.
  const ood = aggregateRuns(runs, { ...opts, primary: { endpoint: "finalOodLoss", test: "paired-t" } });
  assert.equal(ood.comparisons[0].primary, ood.comparisons[0].finalOodLossPaired);
  assert.match(ood.comparisons[0].verdict.primary, /final out-of-domain loss/);
});

Deno.test("aggregate: no bootstrap speed-up interval from fewer than 5 seeds", () => {
  const three = aggregateRuns([0, 1, 2].flatMap((s) => [run("a", s, 4.0 + s / 100), run("b", s, 3.5 + s / 100)]), opts);
  const sp = three.comparisons[0].speedup!;
  assert.ok(Number.isFinite(sp.ratio) && sp.ratio > 1);
  assert.ok(Number.isNaN(sp.lo) && Number.isNaN(sp.hi));
  assert.match(three.comparisons[0].verdict.speedup, /too few seeds \(n = 3; needs ≥ 5\)/);
  assert.doesNotMatch(three.comparisons[0].verdict.speedup, /faster|excludes/);

  const five = aggregateRuns(
    [0, 1, 2, 3, 4].flatMap((s) => [run("a", s, 4.0 + s / 100), run("b", s, 3.5 + s / 100)]),
    opts,
  );
  const sp5 = five.comparisons[0].speedup!;
  assert.ok(sp5.lo > 1 && sp5.hi >= sp5.lo, JSON.stringify(sp5));
});

Deno.test("aggregate: bands stay inside each metric's range", () => {
  // Two seeds with very different fractions: the raw t interval reaches below 0 and the load ratio below 1.
  const runs = [
    run("a", 0, 4.0, STEPS, { candidateFraction: 0.0, load: [0.25, 0.25, 0.25, 0.25], routerEntropy: Math.log(4) }),
    run("a", 1, 4.1, STEPS, { candidateFraction: 0.3, load: [0.7, 0.1, 0.1, 0.1], routerEntropy: 0.2 }),
    run("b", 0, 4.0),
    run("b", 1, 4.1),
  ];
  const r = aggregateRuns(runs, opts).arms[0].routing!;
  assert.ok(r.candidateFraction!.lo.every((x) => x >= 0) && r.candidateFraction!.hi.every((x) => x <= 1));
  assert.ok(r.loadImbalance.lo.every((x) => x >= 1) && r.loadImbalance.hi.every((x) => x <= 4));
  assert.ok(r.routerEntropy.lo.every((x) => x >= 0) && r.routerEntropy.hi.every((x) => x <= Math.log(4) + 1e-12));
  assert.ok(r.unusedExperts.lo.every((x) => x >= 0));
  // The clamped edge sits exactly on the bound (the interval really did reach past it).
  assert.equal(r.candidateFraction!.lo[0], 0);
  assert.equal(r.loadImbalance.lo[0], 1);
});

Deno.test("aggregate: router entropy is the full-softmax one for every arm, never the estimator's", () => {
  // The estimator's entropy of a masked softmax (0.1) differs from the full softmax's (1.3).
  const runs = [
    run("a", 0, 4.0, STEPS, { entropy: 1.3, routerEntropy: 1.3 }),
    run("a", 1, 4.0, STEPS, { entropy: 1.3, routerEntropy: 1.3 }),
    run("b", 0, 4.0, STEPS, { entropy: 0.1, routerEntropy: 1.3 }),
    run("b", 1, 4.0, STEPS, { entropy: 0.1, routerEntropy: 1.3 }),
  ];
  const agg = aggregateRuns(runs, opts);
  for (const arm of agg.arms) assert.ok(arm.routing!.routerEntropy.mean.every((m) => Math.abs(m - 1.3) < 1e-12));
});

Deno.test({
  name: "report: an arm has the same colour in every plot, even where another arm has no data",
  ignore: !canWrite,
}, async () => {
  const out = await Deno.makeTempDir({ prefix: "moegrad-report-colours-" });
  try {
    // Only b (the second arm) reports candidate fractions, as only the sampling routers do.
    const runs = [0, 1].flatMap((s) => [run("a", s, 4.0), run("b", s, 4.0, STEPS, { candidateFraction: 0.2 })]);
    const agg = aggregateRuns(runs, opts);
    await writeReport(out, agg, {
      experiment: "t",
      title: "T",
      question: "Q",
      preset: "smoke",
      command: "x",
      armDescriptions: {},
      setup: [],
    });
    const [colorA, colorB] = [PALETTE[0], PALETTE[1]];
    const plots = [...Deno.readDirSync(join(out, "plots"))].map((e) => e.name);
    assert.ok(plots.includes("routing_candidates.svg") && plots.includes("valid_loss.svg"));
    for (const file of plots) {
      const svg = await Deno.readTextFile(join(out, "plots", file));
      // The legend entry of each arm: a line in the arm's colour right before its label.
      const legendColor = (arm: string) =>
        svg.match(new RegExp(`stroke="(#[0-9a-f]{6})" stroke-width="2.5"/>\\n<text[^>]*>${arm}</text>`))?.[1];
      const a = legendColor("a");
      const b = legendColor("b");
      if (a) assert.equal(a, colorA, `${file}: arm a`);
      if (b) assert.equal(b, colorB, `${file}: arm b`);
      if (file === "routing_candidates.svg") assert.equal(b, colorB);
    }
    // The timing bars are one group per arm, coloured like the arm.
    const ms = await Deno.readTextFile(join(out, "plots", "ms_per_step.svg"));
    assert.match(ms, new RegExp(`fill="${colorB}"><title>b /`));
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
