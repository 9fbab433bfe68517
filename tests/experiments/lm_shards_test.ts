// Sharded LM sweeps: two shards of the smoke preset into one folder, then --aggregate-only, give the same report
// and summary as one whole run (except the timings, the command and the execution row); --aggregate-only before
// every shard finished names the missing runs and counts none of them; a shard refuses a folder made with
// another config, its own runs without --resume, and bad --shard values (one-line ConfigErrors).
import assert from "node:assert/strict";
import { ConfigError } from "../../experiments/common/config.ts";
import { UserError } from "../../experiments/common/errors.ts";
import { inShard, parseShard, shardItems } from "../../experiments/common/shard.ts";
import { runLmExperiment } from "../../experiments/lm/experiment_runner.ts";
import { switchVsSparseMixer } from "../../experiments/lm/presets.ts";

const granted = (name: "read" | "write") => Deno.permissions.querySync({ name }).state === "granted";
const canWrite = granted("read") && granted("write");

/** The report without what legitimately differs: the command, the execution row and every timing. */
function comparableReport(md: string): string {
  const out: string[] = [];
  let timingColumn = false, inTimeSection = false;
  for (const line of md.split("\n")) {
    if (line.startsWith("## ")) inTimeSection = line === "## Time per step";
    if (inTimeSection) continue;
    if (line.startsWith("deno task exp:")) out.push("<command>");
    else if (line.startsWith("| execution ")) out.push("<execution>");
    else if (line.startsWith("|") && line.trimEnd().endsWith("| ms/step |")) {
      timingColumn = true;
      out.push(line);
    } else if (timingColumn && line.startsWith("|")) out.push(line.replace(/\|[^|]*\|\s*$/, "| <ms> |"));
    else {
      timingColumn = false;
      out.push(line);
    }
  }
  return out.join("\n");
}

/** summary.json without the command and the timings. */
function comparableSummary(json: string): unknown {
  const s = JSON.parse(json);
  delete s.command;
  for (const a of Object.values(s.arms) as Record<string, unknown>[]) {
    delete a.msPerStep;
    delete a.tokensPerSec;
  }
  return s;
}

Deno.test("--shard values: parsed i/n with 1 ≤ i ≤ n, shards disjoint and covering", () => {
  assert.deepEqual(parseShard("3/16"), { index: 3, count: 16 });
  for (const bad of ["0/2", "3/2", "1/0", "a/b", "1", "-1/2", "1/2/3", ""]) {
    assert.throws(() => parseShard(bad), /--shard must be i\/n with 1 ≤ i ≤ n \(e\.g\. 3\/16\), got/, bad);
  }
  const items = Array.from({ length: 11 }, (_, i) => i);
  const parts = [1, 2, 3].map((index) => shardItems(items, { index, count: 3 }));
  assert.deepEqual(parts.flat().sort((a, b) => a - b), items);
  assert.ok(inShard(4, { index: 2, count: 3 }) && !inShard(4, { index: 1, count: 3 }));
});

Deno.test("LM experiments: bad --shard / --aggregate-only command lines are one-line ConfigErrors", async () => {
  const run = (argv: string[]) => runLmExperiment(switchVsSparseMixer, argv, { log: () => {} });
  const cases: [string[], RegExp][] = [
    [["--preset", "smoke", "--shard", "0/4"], /--shard must be i\/n with 1 ≤ i ≤ n/],
    [["--preset", "smoke", "--shard=5/4"], /--shard must be i\/n with 1 ≤ i ≤ n \(e\.g\. 3\/16\), got "5\/4"/],
    [["--preset", "smoke", "--shard"], /--shard needs a value i\/n/],
    [["--preset", "smoke", "--shard", "x"], /--shard must be i\/n/],
    [["--aggregate-only", "--shard", "1/2"], /--aggregate-only and --shard exclude each other/],
    [["--aggregate-only", "--out", "x", "--seeds=3"], /--aggregate-only takes only --out DIR/],
    [["--aggregate-only"], /--aggregate-only takes only --out DIR/],
  ];
  for (const [argv, pattern] of cases) {
    await assert.rejects(run(argv), (e: Error) => {
      assert.ok(e instanceof ConfigError, `${argv.join(" ")}: ${e}`);
      assert.match(e.message, pattern, argv.join(" "));
      assert.ok(!e.message.includes("\n"), "one line");
      return true;
    });
  }
});

Deno.test({
  name: "LM experiments: two shards + --aggregate-only == one whole run; refusals; missing runs named",
  ignore: !canWrite,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "moegrad-lm-shards-" });
    try {
      const opts = (lines: string[] = []) => ({ log: (l: string) => lines.push(l), dataCacheDir: `${dir}/cache` });
      const run = (argv: string[], lines?: string[]) => runLmExperiment(switchVsSparseMixer, argv, opts(lines));
      // --jobs 1 everywhere: the same matmul thread count, hence bit-identical runs.
      const whole = `${dir}/whole`, sharded = `${dir}/sharded`;
      await run(["--preset", "smoke", "--out", whole, "--jobs", "1"]);

      const shard = (i: string, extra: string[] = []) =>
        run(["--preset", "smoke", "--out", sharded, "--jobs", "1", "--shard", i, ...extra]);
      const first = await shard("1/2");
      assert.ok(first);
      const arms = ["switch", "sparsemixer", "random", "hash", "frozen"];
      const all = arms.flatMap((a) => [`${a}-seed0`, `${a}-seed1`]);
      assert.deepEqual(first.runs.map((r) => r.name), all.filter((_, i) => i % 2 === 0));
      await assert.rejects(Deno.stat(`${sharded}/report.md`), Deno.errors.NotFound, "a shard writes no report");
      JSON.parse(await Deno.readTextFile(`${sharded}/env.shard-1-of-2.json`));

      // Before shard 2: the report names its five runs as not started, and counts none of them.
      await assert.rejects(run(["--aggregate-only", "--out", sharded]), (e: Error) => {
        assert.ok(e instanceof UserError, String(e));
        assert.match(e.message, /^5 run\(s\) did not finish .*switch-seed1 \(step 0\/4\)/);
        return true;
      });
      const partial = await Deno.readTextFile(`${sharded}/report.md`);
      assert.match(partial, /5 run\(s\) did not finish and are left out of every statistic/);
      assert.match(
        partial,
        /\| switch \| 1 \| 0 \/ 4 \| no records \(not started.*\| no run folder: its shard has not run/,
      );
      const partialSummary = JSON.parse(await Deno.readTextFile(`${sharded}/summary.json`));
      assert.equal(partialSummary.arms.switch.finalValidLoss.n, 1);

      // Refusals: shard 1 again without --resume; shard 2 with another config; --force.
      await assert.rejects(shard("1/2"), /already holds 5 of the 5 runs of shard 1\/2; pass --resume/);
      await assert.rejects(shard("2/2", ["--seeds=3"]), (e: Error) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.match(e.message, /--shard 2\/2: the config differs from the one in .*config\.json \(fields: seeds\)/);
        return true;
      });
      await assert.rejects(shard("2/2", ["--force"]), /--force cannot be combined with --shard/);
      const resumed = await shard("1/2", ["--resume"]);
      assert.ok(resumed && resumed.runs.every((r) => r.skipped), "--resume skips the finished runs");

      await shard("2/2");
      const lines: string[] = [];
      const agg = await run(["--aggregate-only", "--out", sharded], lines);
      assert.ok(agg);
      assert.match(lines.join("\n"), /report of 10\/10 runs \(0 not started, 0 unfinished or failed\)/);
      for (const f of ["report.md", "summary.json"]) {
        const [a, b] = [await Deno.readTextFile(`${whole}/${f}`), await Deno.readTextFile(`${sharded}/${f}`)];
        if (f === "report.md") assert.equal(comparableReport(b), comparableReport(a));
        else assert.deepEqual(comparableSummary(b), comparableSummary(a));
      }
      // Every plot but the timing one is byte-identical.
      const plots = [...Deno.readDirSync(`${whole}/plots`)].map((e) => e.name).sort();
      assert.deepEqual([...Deno.readDirSync(`${sharded}/plots`)].map((e) => e.name).sort(), plots);
      for (const f of plots.filter((f) => f !== "ms_per_step.svg")) {
        assert.equal(
          await Deno.readTextFile(`${sharded}/plots/${f}`),
          await Deno.readTextFile(`${whole}/plots/${f}`),
          f,
        );
      }
      // The stored command is the sweep's, without --shard.
      const stored = JSON.parse(await Deno.readTextFile(`${sharded}/config.json`));
      assert.doesNotMatch(stored.command, /--shard/);
      // A whole run's folder aggregates the same way (its own config.json); a whole-mode --resume of the shared
      // folder with another config is refused too.
      await run(["--aggregate-only", "--out", whole]);
      await assert.rejects(
        run(["--preset", "smoke", "--out", sharded, "--jobs", "1", "--resume", "--steps=5"]),
        /--resume: the config differs .*\(fields: steps\)/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
