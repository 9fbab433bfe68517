// The `smoke` preset of exp:switch-vs-sparsemixer end to end, in-process (--jobs 1): every output exists and
// parses, --resume skips completed runs, bad command lines raise a ConfigError naming the field; plus the
// aggregation's statistics on synthetic runs with known answers.
import assert from "node:assert/strict";
import { ConfigError } from "../../experiments/common/config.ts";
import { UserError } from "../../experiments/common/errors.ts";
import { runLmExperiment } from "../../experiments/lm/experiment_runner.ts";
import { switchVsSparseMixer } from "../../experiments/lm/presets.ts";
import { aggregateRuns, type RunData } from "../../experiments/lm/aggregate.ts";
import { checkExperimentOutputs } from "../../experiments/lm/experiment_outputs.ts";

const granted = (name: "read" | "write") => Deno.permissions.querySync({ name }).state === "granted";
const canWrite = granted("read") && granted("write");

Deno.test({
  name: "switch-vs-sparsemixer smoke preset writes config, env, runs, report, plots and summary",
  ignore: !canWrite,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "moegrad-svs-smoke-" });
    try {
      const lines: string[] = [];
      const argv = ["--preset", "smoke", "--out", out, "--jobs", "1"];
      const opts = { log: (l: string) => lines.push(l), dataCacheDir: `${out}/cache` };
      const result = await runLmExperiment(switchVsSparseMixer, argv, opts);
      assert.ok(result);
      const arms = ["switch", "sparsemixer", "random", "hash", "frozen"];
      assert.deepEqual(result.runs.map((r) => r.name), arms.flatMap((a) => [`${a}-seed0`, `${a}-seed1`]));
      assert.ok(lines.some((l) => /\[switch-seed0\] step \d+\/4 .*loss .*tok\/s .*ETA/.test(l)), lines.join("\n"));
      const summary = await checkExperimentOutputs(out, arms, 2, 4);
      assert.equal(summary.baseline, "switch");
      // The headline compares the learned routers; the null controls are compared with each of them.
      assert.equal(summary.comparisons.length, 1);
      assert.equal(summary.comparisons[0].arm, "sparsemixer");
      assert.deepEqual(summary.controlArms, ["random", "hash", "frozen"]);
      assert.deepEqual(
        summary.nullControls.map((c) => `${c.learned}-${c.control}`),
        [
          "switch-random",
          "switch-hash",
          "switch-frozen",
          "sparsemixer-random",
          "sparsemixer-hash",
          "sparsemixer-frozen",
        ],
      );
      assert.ok(summary.nullControls.every((c) => c.n === 2));
      assert.match(summary.nullControlsVerdict, /null control/);
      assert.deepEqual(summary.power.map((p) => p.arm), ["sparsemixer"]);
      assert.ok(summary.claimedEffect !== null && summary.claimedEffect.nats! > 0, "2× speed-up translated");
      const report = await Deno.readTextFile(`${out}/report.md`);
      const at = (heading: string) => report.indexOf(heading);
      assert.ok(at("## Primary test (declared before the runs) and power") > 0, "the power section");
      assert.ok(at("## Primary test (declared before the runs) and power") < at("## Headline"), "declared first");
      assert.ok(at("## Null controls") > 0 && at("## Routing diagnostics") > 0);
      assert.match(report, /plots\/routing_load_heatmap_layer0\.svg/);
      // The frozen control's routers never moved: its final checkpoint holds the initial router weights.
      const frozen = JSON.parse(await Deno.readTextFile(`${out}/runs/frozen-seed0/config.json`));
      assert.equal(frozen.model.frozenRouter, true);
      assert.equal(frozen.model.estimator, "switch");

      // --resume: every run has its final.json, so nothing is trained again and the numbers are unchanged.
      const again = await runLmExperiment(switchVsSparseMixer, [...argv, "--resume"], opts);
      assert.ok(again && again.runs.every((r) => r.skipped));
      const summary2 = JSON.parse(await Deno.readTextFile(`${out}/summary.json`));
      assert.deepEqual(summary2.arms.switch.finalValidLoss, summary.arms.switch.finalValidLoss);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "switch-vs-sparsemixer: a run that fails on --resume is named, left out of the statistics, and fails the command",
  ignore: !canWrite,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "moegrad-svs-failed-" });
    try {
      const argv = ["--preset", "smoke", "--out", out, "--jobs", "1"];
      const opts = { log: () => {}, dataCacheDir: `${out}/cache` };
      await runLmExperiment(switchVsSparseMixer, argv, opts);
      // Make one run unfinished and unresumable: no final.json, and every checkpoint unreadable.
      const run = `${out}/runs/sparsemixer-seed1`;
      await Deno.remove(`${run}/final.json`);
      for await (const e of Deno.readDir(`${run}/ckpt`)) await Deno.writeTextFile(`${run}/ckpt/${e.name}`, "damaged");
      await assert.rejects(runLmExperiment(switchVsSparseMixer, [...argv, "--resume"], opts), (e: Error) => {
        assert.ok(e instanceof UserError, String(e));
        assert.match(e.message, /1 run\(s\) did not finish .*sparsemixer-seed1/);
        return true;
      });
      // The report was still written: it names the run at the top and pairs only the seeds both arms finished.
      const report = await Deno.readTextFile(`${out}/report.md`);
      const firstSection = report.indexOf("\n## ");
      assert.ok(report.slice(0, firstSection).includes("sparsemixer"), report.slice(0, 800));
      const summary = JSON.parse(await Deno.readTextFile(`${out}/summary.json`));
      assert.deepEqual(summary.incomplete.map((r: { arm: string; seed: number }) => [r.arm, r.seed]), [[
        "sparsemixer",
        1,
      ]]);
      assert.equal(summary.arms.sparsemixer.finalValidLoss.n, 1);
      assert.equal(summary.arms.switch.finalValidLoss.n, 2);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test("switch-vs-sparsemixer rejects bad fields with a ConfigError naming them", async () => {
  const run = (argv: string[]) => runLmExperiment(switchVsSparseMixer, argv, { log: () => {} });
  await assert.rejects(run(["--preset", "smoke", "--model.dim=abc"]), (e: Error) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.match(e.message, /model\.dim/);
    assert.match(e.message, /integer/);
    return true;
  });
  await assert.rejects(run(["--preset", "smoke", "--model.bogus=1"]), (e: Error) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.match(e.message, /model\.bogus/);
    return true;
  });
  await assert.rejects(run(["--preset", "smoke", "--arms=switch,topk"]), (e: Error) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /arms\.1.*"switch-omega"/);
    return true;
  });
  await assert.rejects(run(["--preset", "smoke", "--targetLoss=low"]), (e: Error) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /targetLoss.*"auto"/);
    return true;
  });
  // A cross-field rule of the runner's schema, reported under the experiment's field path.
  await assert.rejects(run(["--preset", "smoke", "--model.heads=3"]), (e: Error) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.match(e.message, /model\.heads/);
    return true;
  });
});

Deno.test("switch-vs-sparsemixer --help lists the presets and the fields", async () => {
  const lines: string[] = [];
  const r = await runLmExperiment(switchVsSparseMixer, ["--help"], { log: (l) => lines.push(l) });
  assert.equal(r, null);
  const help = lines.join("\n");
  for (const s of ["smoke", "quick (default)", "paper", "--arms", "--model.dim", "--targetLoss", "--optim.lr"]) {
    assert.ok(help.includes(s), `help lacks ${s}`);
  }
});

/** A synthetic run whose validation loss falls linearly from 6 at step 0 at `slope` per step. */
function syntheticRun(arm: string, seed: number, slope: number, final: number): RunData {
  const steps = [0, 100, 200, 300, 400];
  const evals = steps.flatMap((step) => {
    const loss = step === 400 ? final : 6 - slope * step;
    return (["valid", "ood"] as const).map((split) => ({
      kind: "eval" as const,
      step,
      split,
      loss,
      ppl: Math.exp(loss),
    }));
  });
  const train = [100, 200, 300, 400].map((step) => ({
    kind: "train" as const,
    step,
    loss: 5,
    msPerStep: 10 + seed,
    routing: [{ layer: 0, load: [0.5, 0.25, 0.25, 0], entropy: 1, unusedExperts: 1, candidateFraction: 0.2 }],
  }));
  return { arm, seed, train, evals, final: { done: true, steps: 400 } };
}

Deno.test("aggregateRuns: steps to target, speed-up, Welch difference and routing bands", () => {
  // Arm b descends twice as fast as arm a; final losses differ by a clear margin with small seed noise.
  const runs = [
    syntheticRun("a", 0, 0.005, 4.0),
    syntheticRun("a", 1, 0.005, 4.02),
    syntheticRun("a", 2, 0.005, 4.01),
    syntheticRun("b", 0, 0.01, 3.5),
    syntheticRun("b", 1, 0.01, 3.52),
    syntheticRun("b", 2, 0.01, 3.51),
  ];
  const agg = aggregateRuns(runs, { arms: ["a", "b"], baseline: "a", steps: 400, targetLoss: 5 });
  assert.equal(agg.target.loss, 5);
  assert.deepEqual(agg.arms[0].stepsToTarget, [200, 200, 200]);
  assert.deepEqual(agg.arms[1].stepsToTarget, [100, 100, 100]);
  const c = agg.comparisons[0];
  assert.equal(c.speedup!.ratio, 2);
  assert.ok(Math.abs(c.finalValidLoss.diff + 0.5) < 1e-12);
  assert.ok(c.finalValidLoss.hi < 0 && c.finalValidLoss.p < 0.001);
  assert.ok(c.verdict.separates);
  assert.match(c.verdict.primary, /separate beyond seed noise/);
  // Paired by seed: every seed of b is exactly 0.5 below the same seed of a.
  assert.equal(c.finalValidLossPaired.n, 3);
  assert.ok(Math.abs(c.finalValidLossPaired.diff + 0.5) < 1e-12);
  // load [0.5, 0.25, 0.25, 0]: max / mean = 2.
  assert.deepEqual(agg.arms[0].routing!.loadImbalance.mean, [2, 2, 2, 2]);
  assert.deepEqual(agg.arms[0].msPerStep.values, [10, 11, 12]);

  // "auto": the highest mean validation loss at 80% of training (step 320) — arm a's 6 − 0.005·320 = 4.4 on
  // the segment 300 → 400 towards its final ≈ 4.01, whatever arm is the baseline.
  const auto = aggregateRuns(runs, { arms: ["a", "b"], baseline: "b", steps: 400, targetLoss: "auto" });
  const expected = 4.5 + 0.2 * (4.01 - 4.5);
  assert.ok(Math.abs(auto.target.loss - expected) < 1e-9, `${auto.target.loss} vs ${expected}`);
  assert.match(auto.target.rule, /here: a/);
});

Deno.test("aggregateRuns: overlapping arms do not separate", () => {
  const runs = [
    syntheticRun("a", 0, 0.005, 4.0),
    syntheticRun("a", 1, 0.005, 4.2),
    syntheticRun("b", 0, 0.005, 4.1),
    syntheticRun("b", 1, 0.005, 4.15),
  ];
  const agg = aggregateRuns(runs, { arms: ["a", "b"], baseline: "a", steps: 400, targetLoss: 5 });
  const c = agg.comparisons[0];
  assert.ok(c.finalValidLoss.lo < 0 && c.finalValidLoss.hi > 0);
  assert.equal(c.verdict.separates, false);
  assert.match(c.verdict.primary, /do NOT separate/);
  // Paired differences per seed: 4.1 − 4.0 = 0.1 and 4.15 − 4.2 = −0.05.
  assert.ok(Math.abs(c.finalValidLossPaired.diff - 0.025) < 1e-12);
  assert.ok(c.finalValidLossPaired.lo < 0 && c.finalValidLossPaired.hi > 0);
});
