import assert from "node:assert/strict";
import { main, routingRecoveryDefinition } from "../../experiments/routing_recovery.ts";
import { undocumentedFields } from "../../experiments/common/config.ts";
import { readJsonl } from "../../experiments/common/io.ts";
import { svgProblems } from "../../experiments/common/svg_check.ts";
import { planRuns, shardRuns } from "../../experiments/routing_recovery/plan.ts";
import { parseConfig } from "../../experiments/common/config.ts";
import { routingRecoverySchema } from "../../experiments/routing_recovery/config.ts";
import { trainRun } from "../../experiments/routing_recovery/train.ts";
import { runSpec } from "../../experiments/routing_recovery/plan.ts";
import type { RunRecord } from "../../experiments/routing_recovery/store.ts";
import { aggregate } from "../../experiments/routing_recovery/aggregate.ts";
import { buildReport } from "../../experiments/routing_recovery/report.ts";

const granted = (name: "read" | "write") => Deno.permissions.querySync({ name }).state === "granted";
const canRW = granted("read") && granted("write");
const canRun = canRW && Deno.permissions.querySync({ name: "run", command: Deno.execPath() }).state === "granted";
const quiet = () => {};
const smoke = parseConfig(routingRecoverySchema, routingRecoveryDefinition.presets.smoke);
const OUTPUTS = ["metrics.jsonl", "report.md", "summary.json"];

async function read(dir: string, names = OUTPUTS): Promise<string[]> {
  return await Promise.all(names.map((f) => Deno.readTextFile(`${dir}/${f}`)));
}

Deno.test("routing-recovery config: every field documented, every preset valid, bad names rejected", () => {
  assert.deepEqual(undocumentedFields(routingRecoverySchema), []);
  for (const [name, preset] of Object.entries(routingRecoveryDefinition.presets)) {
    parseConfig(routingRecoverySchema, preset, name);
  }
  assert.throws(
    () => parseConfig(routingRecoverySchema, { ...routingRecoveryDefinition.presets.smoke, estimators: "switch,nope" }),
    /field "estimators" must be "all" or a comma-separated list of switch, /,
  );
  assert.throws(
    () =>
      parseConfig(routingRecoverySchema, {
        ...routingRecoveryDefinition.presets.smoke,
        primary: { metric: "nmi", baseline: "nope", effect: 0.1 },
      }),
    /field "primary.baseline" must be one of \(or a comma-separated fallback list of\) switch/,
  );
});

Deno.test("routing-recovery runs are deterministic and share the task and initial weights across arms", async () => {
  const { runs } = planRuns(smoke);
  const [a, b] = [runs[0], runs.find((r) => r.arm.name === "switch" && r.seed === 0)!];
  const first = await trainRun(runSpec(smoke, a.cell, a.arm, 0));
  const again = await trainRun(runSpec(smoke, a.cell, a.arm, 0));
  assert.deepEqual(again, first, "same seed → identical metrics");
  const other = await trainRun(runSpec(smoke, b.cell, b.arm, 0));
  assert.equal(other.zeroLoss, first.zeroLoss, "same task and held-out set");
  assert.equal(other.nmi[0], first.nmi[0], "same initial router (argmax routing before training)");
  const seed1 = await trainRun(runSpec(smoke, a.cell, a.arm, 1));
  assert.notEqual(seed1.zeroLoss, first.zeroLoss, "another seed, another task");
});

Deno.test("a fallback baseline list gives each cell the first listed arm that runs in it", () => {
  const config = {
    ...smoke,
    topK: [1, 2],
    estimators: "switch,topk",
    primary: { ...smoke.primary, baseline: "switch,topk" },
  };
  const { runs, skipped } = planRuns(config);
  const agg = aggregate(config, runs, skipped, new Map(), new Map());
  assert.deepEqual(agg.cells.map((c) => [c.cell.id, c.baseline]), [["E4-m1-s0.5-k1", "switch"], [
    "E4-m1-s0.5-k2",
    "topk",
  ]]);
  assert.deepEqual(skipped.map((s) => [s.cell, s.arm]), [["E4-m1-s0.5-k2", "switch"]]);
  assert.equal(agg.missing.length, runs.length, "nothing finished: every run missing, none in any number");
  const report = buildReport(config, agg, "test").find((f) => f.path === "report.md")!.text;
  assert.match(report, /### Overview: final `nmi` \(mean over seeds\) by cell/);
  assert.match(report, /Incomplete:\*\* 0 of 14 runs finished/);
  assert.match(report, /`switch`: K = 2 not allowed \(allows 1\) \(E4-m1-s0.5-k2\)/);
});

Deno.test("shards are disjoint and cover every run", () => {
  const { runs } = planRuns({ ...smoke, seeds: 5 });
  const parts = [1, 2, 3].map((index) => shardRuns(runs, { index, count: 3 }).map((r) => r.id));
  assert.deepEqual(parts.flat().sort(), runs.map((r) => r.id).sort());
  assert.equal(new Set(parts.flat()).size, runs.length);
});

Deno.test({
  name: "routing-recovery smoke: outputs, report before results, resume no-op, refusals, shards + --aggregate-only",
  ignore: !canRW,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const whole = `${dir}/whole`;
      const t0 = performance.now();
      assert.equal(await main(["--preset=smoke", `--out=${whole}`, "--jobs=1"], quiet), 0);
      assert.ok(performance.now() - t0 < 30_000, "smoke must take seconds");
      const { runs } = planRuns(smoke);
      const records = await readJsonl<RunRecord>(`${whole}/metrics.jsonl`);
      assert.deepEqual(records.map((r) => r.id), runs.map((r) => r.id));
      for (const r of records) {
        assert.equal(r.step.length, smoke.steps / smoke.evalEvery + 1);
        assert.ok(r.final.nmi >= 0 && r.final.nmi <= 1 && r.final.accuracy > 0 && r.final.accuracy <= 1, r.id);
        assert.ok(Number.isFinite(r.final.heldLoss), r.id);
      }
      const report = await Deno.readTextFile(`${whole}/report.md`);
      const order = ["## Primary test", "## Power of the primary test", "## Null controls", "## Results"]
        .map((h) => report.indexOf(h));
      assert.ok(order.every((i, j) => i >= 0 && (j === 0 || i > order[j - 1])), `section order ${order}`);
      assert.match(report, /Baseline arm:\*\* `switch`/);
      const images = [...report.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]);
      assert.equal(images.length, 3);
      for (const img of images) assert.deepEqual(svgProblems(await Deno.readTextFile(`${whole}/${img}`)), [], img);
      const summary = JSON.parse(await Deno.readTextFile(`${whole}/summary.json`));
      assert.equal(summary.runs.finished, runs.length);
      assert.equal(summary.cells[0].comparisons.length, 2, "two learned arms compared with the baseline");
      assert.equal(summary.cells[0].controls.length, 9, "three learned arms × three controls");
      for (const name of ["config.json", "env.json", "timing.json"]) {
        JSON.parse(await Deno.readTextFile(`${whole}/${name}`));
      }

      // --resume of a finished folder trains nothing and rewrites the same report.
      const before = await read(whole);
      assert.equal(await main(["--preset=smoke", `--out=${whole}`, "--resume"], quiet), 0);
      assert.deepEqual(await read(whole), before);
      // A failed run is in no number: named in the report, left out of the arm's seeds, and the command fails.
      const lost = `${whole}/runs/${runs[1].cell.id}/${runs[1].arm.name}-seed${runs[1].seed}`;
      await Deno.remove(`${lost}.json`);
      await Deno.writeTextFile(
        `${lost}.failed.json`,
        JSON.stringify({ kind: "failed", id: runs[1].id, error: "boom" }),
      );
      await assert.rejects(
        () => main(["--aggregate-only", `--out=${whole}`], quiet),
        /1 run\(s\) failed and 0 are missing/,
      );
      const partial = await Deno.readTextFile(`${whole}/report.md`);
      assert.match(partial, /\*\*Incomplete:\*\* 13 of 14 runs finished/);
      assert.match(partial, new RegExp(`\`${runs[1].id}\`: boom`));
      const summary5 = JSON.parse(await Deno.readTextFile(`${whole}/summary.json`));
      assert.equal(summary5.runs.finished, 13);
      const armRow = summary5.cells[0].arms.find((a: { arm: string }) => a.arm === runs[1].arm.name);
      assert.deepEqual(armRow.seeds, [0, 1].filter((s) => s !== runs[1].seed));
      // --resume trains it again, to the same bytes, and removes the failure record.
      await main(["--preset=smoke", `--out=${whole}`, "--resume", "--jobs=1"], quiet);
      assert.deepEqual(await read(whole), before);
      await assert.rejects(() => Deno.stat(`${lost}.failed.json`), Deno.errors.NotFound);
      // Refusals: a folder with runs without --resume/--force; --resume with another config.
      await assert.rejects(
        () => main(["--preset=smoke", `--out=${whole}`], quiet),
        /holds 14 run file\(s\) \(14 finished\)/,
      );
      await assert.rejects(
        () => main(["--preset=smoke", `--out=${whole}`, "--resume", "--steps=20"], quiet),
        /config differs .*fields: steps/,
      );

      // Two shards into one folder, then --aggregate-only: the same metrics and report as the whole run.
      const sharded = `${dir}/sharded`;
      await main(["--preset=smoke", `--out=${sharded}`, "--shard", "1/2"], quiet);
      const lines: string[] = [];
      await assert.rejects(() => main(["--aggregate-only", "--out", sharded], (l) => lines.push(l)), /7 are missing/);
      assert.match(await Deno.readTextFile(`${sharded}/report.md`), /Missing runs .*: 7/);
      await assert.rejects(
        () => main(["--preset=smoke", `--out=${sharded}`, "--shard=1/2"], quiet),
        /already holds 7 of the 7 runs of shard 1\/2; pass --resume/,
      );
      await assert.rejects(
        () => main(["--preset=smoke", `--out=${sharded}`, "--shard=2/2", "--seeds=3"], quiet),
        /--shard 2\/2: the config differs .*fields: seeds/,
      );
      await main(["--preset=smoke", `--out=${sharded}`, "--shard=2/2"], quiet);
      for (const i of [1, 2]) JSON.parse(await Deno.readTextFile(`${sharded}/env.shard-${i}-of-2.json`));
      assert.equal(await main(["--aggregate-only", `--out=${sharded}`], quiet), 0);
      assert.deepEqual(await read(sharded), before);
      await assert.rejects(() => main(["--aggregate-only", "--out", sharded, "--seeds=3"], quiet), /takes only --out/);
      await assert.rejects(() => main(["--shard=3/2"], quiet), /--shard must be i\/n with 1 ≤ i ≤ n/);

      // --force moves the folder aside, never deletes it.
      await main(["--preset=smoke", `--out=${whole}`, "--force", "--jobs=1"], quiet);
      const aside = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.startsWith("whole.replaced-"));
      assert.equal(aside.length, 1);
      assert.deepEqual(await read(whole), before);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "routing-recovery --jobs 2: worker subprocesses give the same results as one process",
  ignore: !canRun,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      await main(["--preset=smoke", `--out=${dir}/one`, "--jobs=1"], quiet);
      const lines: string[] = [];
      await main(["--preset=smoke", `--out=${dir}/two`, "--jobs=2"], (l) => lines.push(l));
      assert.ok(lines.some((l) => l.includes("2 worker processes")), lines.join("\n"));
      assert.ok(lines.some((l) => l.startsWith("[worker 2/2]")), lines.join("\n"));
      assert.deepEqual(await read(`${dir}/two`), await read(`${dir}/one`));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
