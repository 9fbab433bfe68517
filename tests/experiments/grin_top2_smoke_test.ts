// The `smoke` preset of exp:grin-top2 end to end, in-process (--jobs 1): every output exists and parses, the
// runs use GRIN's layout (16 GLU experts, top-2, dropless, global balance), and bad command lines raise a
// ConfigError naming the field.
import assert from "node:assert/strict";
import { ConfigError } from "../../experiments/common/config.ts";
import { runLmExperiment } from "../../experiments/lm/experiment_runner.ts";
import { checkExperimentOutputs } from "../../experiments/lm/experiment_outputs.ts";
import { grinTop2 } from "../../experiments/lm/presets.ts";

const granted = (name: "read" | "write") => Deno.permissions.querySync({ name }).state === "granted";
const canWrite = granted("read") && granted("write");

Deno.test({
  name: "grin-top2 smoke preset writes config, env, runs, report, plots and summary",
  ignore: !canWrite,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "moegrad-grin-smoke-" });
    try {
      const lines: string[] = [];
      const result = await runLmExperiment(grinTop2, ["--preset", "smoke", "--out", out, "--jobs", "1"], {
        log: (l) => lines.push(l),
        dataCacheDir: `${out}/cache`,
      });
      assert.ok(result);
      assert.equal(result.runs.length, 10);
      const summary = await checkExperimentOutputs(out, ["topk", "sparsemixer-v2", "random", "hash", "frozen"], 2, 4);
      assert.equal(summary.baseline, "topk");
      assert.deepEqual(summary.comparisons.map((c) => c.arm), ["sparsemixer-v2"]);
      assert.equal(summary.nullControls.length, 6);
      assert.equal(summary.claimedEffect, null); // GRIN gives no number for loss or speed

      // The controls route top-2 like the baseline, without ε; frozen is topk with a frozen router.
      for (const [arm, estimator] of [["random", "random"], ["hash", "hash"], ["frozen", "topk"]]) {
        const c = JSON.parse(await Deno.readTextFile(`${out}/runs/${arm}-seed0/config.json`));
        assert.equal(c.model.estimator, estimator, arm);
        assert.equal(c.model.topK, 2, arm);
        assert.equal(c.model.frozenRouter, arm === "frozen", arm);
        assert.equal(c.model.estimatorOptions.jitterEps, undefined, arm);
      }

      const run = JSON.parse(await Deno.readTextFile(`${out}/runs/sparsemixer-v2-seed1/config.json`));
      assert.equal(run.seed, 1);
      assert.equal(run.model.experts, 16);
      assert.equal(run.model.expert, "glu");
      assert.equal(run.model.topK, 2);
      assert.equal(run.model.capacityFactor, null);
      assert.deepEqual(run.model.balance, { coef: 0.01, form: "topk", scope: "global" });
      assert.equal(run.model.estimator, "sparsemixer-v2");
      assert.equal(run.model.outputScale, false);
      const topk = JSON.parse(await Deno.readTextFile(`${out}/runs/topk-seed0/config.json`));
      assert.equal(topk.model.estimator, "topk");
      assert.equal(topk.model.estimatorOptions.jitterEps, undefined);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test("grin-top2 rejects bad fields with a ConfigError naming them", async () => {
  const run = (argv: string[]) => runLmExperiment(grinTop2, argv, { log: () => {} });
  await assert.rejects(run(["--preset", "smoke", "--model.dim=abc"]), (e: Error) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.match(e.message, /model\.dim/);
    return true;
  });
  await assert.rejects(run(["--preset", "smoke", "--model.estimator=switch"]), (e: Error) => {
    // The estimator is the arm's business: it is not a field of the experiment config.
    assert.ok(e instanceof ConfigError, String(e));
    assert.match(e.message, /model\.estimator/);
    return true;
  });
  await assert.rejects(run(["--preset", "huge"]), (e: Error) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /smoke, quick, paper/);
    return true;
  });
  await assert.rejects(run(["--preset", "smoke", "--arms=switch"]), (e: Error) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /arms\.0.*"sparsemixer-v2-heun"/);
    return true;
  });
});
