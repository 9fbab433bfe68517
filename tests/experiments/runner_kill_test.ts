// Workers end with their parent: exp:switch-vs-sparsemixer (smoke model, 2 parallel subprocesses) is killed
// mid-run with SIGKILL, SIGTERM and SIGINT; within a few seconds no process of that output folder remains, no
// run lock is left held, and --resume then completes every run with strictly ordered, non-duplicated records
// identical (timings aside) to an uninterrupted run. Before, the workers lived on and a --resume started beside
// them wrote duplicated, out-of-order metrics.
import assert from "node:assert/strict";
import { readJsonl } from "../../experiments/common/io.ts";
import { lockHolder } from "../../experiments/common/lock.ts";
import { type MetricsRecord, withoutTiming } from "../../experiments/lm/run_metrics.ts";
import { canSpawnEntries, entryCommand, runEntryFile } from "../helpers/entry_process.ts";

const STEPS = 300;
const ARGS = [
  "--preset",
  "smoke",
  "--seeds=1",
  `--steps=${STEPS}`,
  "--logEvery=10",
  "--evalEvery=100",
  "--checkpointEvery=20",
  "--jobs",
  "2",
];
const RUNS = ["switch-seed0", "sparsemixer-seed0"];

/** Pids of the processes whose command line mentions `needle` (via `ps`: Deno reads /proc only with --allow-all). */
async function processesMentioning(needle: string): Promise<string[]> {
  const out = await new Deno.Command("ps", { args: ["-eo", "pid=,args="], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.includes(needle)).map((l) => l.trim());
}

const hasPs = await (async () => {
  try {
    return canSpawnEntries && (await new Deno.Command("ps", { args: ["-p", "1"], stdout: "null" }).output()).success;
  } catch {
    return false;
  }
})();

/** Starts the experiment into `out` and kills it with `signal` once a run has passed its second checkpoint. */
async function startAndKill(out: string, cwd: string, signal: Deno.Signal): Promise<Deno.CommandStatus> {
  const child = entryCommand("switch_vs_sparsemixer.ts", [...ARGS, "--out", out], cwd).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the experiment ended before it could be killed:\n${seen}\n${await stderr}`);
    seen += value;
    const m = [...seen.matchAll(/\] step (\d+)\/\d+ \(/g)].map((x) => Number(x[1]));
    if (m.some((s) => s >= 50)) break;
  }
  child.kill(signal);
  await reader.cancel();
  await stderr;
  return await child.status;
}

function checkOrder(records: MetricsRecord[], where: string): void {
  const keys = records.map((r) => `${r.kind}:${r.step}:${r.kind === "eval" ? r.split : ""}`);
  assert.equal(new Set(keys).size, keys.length, `${where}: duplicated records`);
  const train = records.filter((r) => r.kind === "train").map((r) => r.step);
  train.forEach((s, i) => assert.ok(i === 0 || s > train[i - 1], `${where}: train steps not increasing: ${train}`));
  const steps = records.map((r) => r.step);
  steps.forEach((s, i) => assert.ok(i === 0 || s >= steps[i - 1], `${where}: records out of order: ${steps}`));
}

Deno.test({
  name: "runner: killing the parent (SIGKILL, SIGTERM, SIGINT) ends its workers; --resume equals an uninterrupted run",
  ignore: !hasPs,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "moegrad-kill-" });
    try {
      const ref = await runEntryFile("switch_vs_sparsemixer.ts", [...ARGS, "--out", `${tmp}/ref`], tmp);
      assert.equal(ref.code, 0, ref.stderr);
      for (const signal of ["SIGKILL", "SIGTERM", "SIGINT"] as const) {
        const out = `${tmp}/out-${signal}-${crypto.randomUUID()}`;
        const status = await startAndKill(out, tmp, signal);
        assert.ok(!status.success, `${signal}: the experiment finished before the kill`);
        // Workers notice (SIGKILL: their stdin pipe closes; SIGTERM/SIGINT: the parent stops them) and exit.
        let left = await processesMentioning(out);
        for (let i = 0; i < 50 && left.length; i++) {
          await new Promise((r) => setTimeout(r, 100));
          left = await processesMentioning(out);
        }
        assert.deepEqual(left, [], `${signal}: processes of ${out} still running`);
        for (const run of RUNS) assert.equal(lockHolder(`${out}/runs/${run}`), null, `${signal}: ${run} still locked`);
        const partial = await readJsonl<MetricsRecord>(`${out}/runs/${RUNS[0]}/metrics.jsonl`);
        assert.ok(partial.length > 0 && partial.at(-1)!.step < STEPS, `${signal}: killed mid-run`);

        const resumed = await runEntryFile("switch_vs_sparsemixer.ts", [...ARGS, "--out", out, "--resume"], tmp);
        assert.equal(resumed.code, 0, `${signal}: --resume failed:\n${resumed.stderr}`);
        for (const run of RUNS) {
          const got = await readJsonl<MetricsRecord>(`${out}/runs/${run}/metrics.jsonl`);
          checkOrder(got, `${signal} ${run}`);
          const want = await readJsonl<MetricsRecord>(`${tmp}/ref/runs/${run}/metrics.jsonl`);
          assert.deepEqual(got.map(withoutTiming), want.map(withoutTiming), `${signal} ${run}: differs`);
        }
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
