// The experiment entry files, spawned as `deno task` would run them: every bad flag, an unusable --out and
// a flag --help no longer offers (estimator-bias --device webgpu) end in exit code 2 and one `error: …` line on
// stderr, never a stack trace; --help lists only what works.
import assert from "node:assert/strict";
import { canSpawnEntries, runEntryFile } from "../helpers/entry_process.ts";

Deno.test({
  name: "entry files: bad flags and an unusable --out exit 2 with one error line and no stack trace",
  ignore: !canSpawnEntries,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "moegrad-cli-errors-" });
    try {
      await Deno.writeTextFile(`${tmp}/afile`, "a file, not a folder\n");
      const cases: [string, string[], RegExp][] = [
        ["estimator_bias.ts", ["--device", "webgpu"], /field "device" must be one of "auto", "cpu", got "webgpu"/],
        ["estimator_bias.ts", ["--jobs", "2"], /--jobs is not supported by estimator-bias/],
        ["estimator_bias.ts", ["--preset", "smoke", "--out", "afile/sub"], /^error: --out afile\/sub: Not a directory/],
        ["estimator_bias.ts", ["--bogus"], /unknown option --bogus/],
        ["grin_top2.ts", ["--preset", "smoke", "--out", "afile/sub"], /^error: --out afile\/sub: Not a directory/],
        ["grin_top2.ts", ["--jobs", "0"], /--jobs must be an integer ≥ 1/],
        ["grin_top2.ts", ["--preset", "smoke", "--resume", "--force"], /--resume and --force exclude each other/],
        ["switch_vs_sparsemixer.ts", ["--model.dim=abc"], /field "model\.dim"/],
        ["switch_vs_sparsemixer.ts", ["--preset", "huge"], /unknown preset "huge"/],
        ["switch_vs_sparsemixer.ts", ["--device", "gpu"], /field "device" must be one of/],
        ["switch_vs_sparsemixer.ts", ["positional"], /unexpected argument "positional"/],
        [
          "switch_vs_sparsemixer.ts",
          ["--preset", "smoke", "--out", "afile"],
          /--out afile: exists and is not a folder/,
        ],
        ["routing_recovery.ts", ["--shard", "0/4"], /--shard must be i\/n with 1 ≤ i ≤ n/],
        ["routing_recovery.ts", ["--shard"], /--shard needs a value/],
        ["routing_recovery.ts", ["--shard=1/2", "--force"], /--force cannot be combined with --shard/],
        ["routing_recovery.ts", ["--aggregate-only", "--out", "nowhere"], /nowhere\/config.json not found/],
        ["routing_recovery.ts", ["--aggregate-only", "--seeds=3"], /--aggregate-only takes only --out DIR/],
        ["switch_vs_sparsemixer.ts", ["--shard", "3/2"], /--shard must be i\/n with 1 ≤ i ≤ n/],
        ["grin_top2.ts", ["--preset", "smoke", "--shard=1/2", "--force"], /--force cannot be combined with --shard/],
        ["grin_top2.ts", ["--aggregate-only", "--out", "nowhere"], /nowhere\/config.json not found/],
        ["switch_vs_sparsemixer.ts", ["--aggregate-only", "--shard=1/2"], /--aggregate-only and --shard exclude/],
        ["routing_recovery.ts", ["--estimators=nope"], /field "estimators" must be "all" or a comma-separated/],
      ];
      for (const [entry, args, pattern] of cases) {
        const what = `${entry} ${args.join(" ")}`;
        const r = await runEntryFile(entry, args, tmp);
        assert.equal(r.code, 2, `${what}: exit ${r.code}\n${r.stderr}`);
        const lines = r.stderr.trimEnd().split("\n");
        assert.equal(lines.length, 1, `${what}: stderr is not one line:\n${r.stderr}`);
        assert.match(lines[0], /^error: /, what);
        assert.match(lines[0], pattern, what);
        assert.doesNotMatch(r.stderr, /^\s+at /m, `${what}: stack trace`);
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "entry files: --help offers --force, and only the devices and flags the experiment accepts",
  ignore: !canSpawnEntries,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "moegrad-cli-help-" });
    try {
      const eb = await runEntryFile("estimator_bias.ts", ["--help"], tmp);
      assert.equal(eb.code, 0, eb.stderr);
      assert.match(eb.stdout, /\[--device auto\|cpu\] \[--resume \| --force\] \[--help\]/);
      assert.doesNotMatch(eb.stdout, /webgpu|--jobs/);
      for (const entry of ["grin_top2.ts", "switch_vs_sparsemixer.ts"]) {
        const r = await runEntryFile(entry, ["--help"], tmp);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /\[--device auto\|cpu\|webgpu\] \[--resume \| --force\] \[--jobs N\]/, entry);
      }
      const rr = await runEntryFile("routing_recovery.ts", ["--help"], tmp);
      assert.equal(rr.code, 0, rr.stderr);
      assert.match(rr.stdout, /\[--device auto\|cpu\] \[--resume \| --force\] \[--jobs N\]/);
      assert.match(rr.stdout, /--shard i\/n/);
      assert.match(rr.stdout, /--aggregate-only/);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
