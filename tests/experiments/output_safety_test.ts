// Nothing is lost or corrupted: the folder lock (a second writer is refused, a stale lock is taken over), the
// claim of --out (runs are refused without --resume/--force, --force moves them aside), and a damaged newest
// checkpoint that --resume skips is reported and kept aside instead of being overwritten.
import assert from "node:assert/strict";
import { acquireLock, LOCK_FILE, LockedError } from "../../experiments/common/lock.ts";
import { claimOutFolder } from "../../experiments/common/out_folder.ts";
import { UserError } from "../../experiments/common/errors.ts";
import { readJsonl } from "../../experiments/common/io.ts";
import { runLmExperiment } from "../../experiments/lm/experiment_runner.ts";
import { switchVsSparseMixer } from "../../experiments/lm/presets.ts";
import { parseRunConfig } from "../../experiments/lm/run_config.ts";
import { runLm } from "../../experiments/lm/run.ts";
import { type MetricsRecord, withoutTiming } from "../../experiments/lm/run_metrics.ts";

const granted = (name: "read" | "write") => Deno.permissions.querySync({ name }).state === "granted";
const ignore = !granted("read") || !granted("write");
const canSpawn = Deno.permissions.querySync({ name: "run", command: Deno.execPath() }).state === "granted";
const LOCK_MODULE = new URL("../../experiments/common/lock.ts", import.meta.url).href;

/** Another process that locks `dir` and holds it until killed; resolves once the lock is taken. */
async function foreignHolder(dir: string): Promise<Deno.ChildProcess> {
  const code = `const { acquireLock } = await import(${JSON.stringify(LOCK_MODULE)});
acquireLock(${JSON.stringify(dir)}); console.log("locked"); setInterval(() => {}, 1000);`;
  const child = new Deno.Command(Deno.execPath(), { args: ["eval", code], stdout: "piped", stderr: "inherit" }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const first = await reader.read();
  assert.match(first.value ?? "", /locked/);
  await reader.cancel(); // the child prints nothing more; close our end of its stdout
  return child;
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "moegrad-safety-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "lock: one writer at a time; a live holder is named, the lock of a killed process is taken over with a warning",
  ignore: ignore || !canSpawn,
  async fn() {
    await withTempDir(async (dir) => {
      const lock = acquireLock(dir);
      const held = JSON.parse(await Deno.readTextFile(`${dir}/${LOCK_FILE}`));
      assert.equal(held.pid, Deno.pid);
      assert.throws(() => acquireLock(dir), /held by this process/);
      lock.release();
      lock.release(); // idempotent
      await assert.rejects(Deno.stat(`${dir}/${LOCK_FILE}`), Deno.errors.NotFound);

      // Another live process holds it: refused, naming its pid.
      const other = await foreignHolder(dir);
      assert.throws(() => acquireLock(dir), (e: Error) => {
        assert.ok(e instanceof LockedError);
        assert.match(e.message, new RegExp(`held by pid ${other.pid} on `));
        assert.doesNotMatch(e.message, /\n/);
        return true;
      });
      // Killed without a chance to clean up: its lock file stays, stale, and is taken over with a warning.
      other.kill("SIGKILL");
      await other.status;
      assert.equal(JSON.parse(await Deno.readTextFile(`${dir}/${LOCK_FILE}`)).pid, other.pid);
      const warnings: string[] = [];
      const taken = acquireLock(dir, (w) => warnings.push(w));
      assert.equal(JSON.parse(await Deno.readTextFile(`${dir}/${LOCK_FILE}`)).pid, Deno.pid);
      assert.match(warnings.join("\n"), new RegExp(`stale lock .*pid ${other.pid} .*no longer running`));
      taken.release();
    });
  },
});

Deno.test({
  name: "--out: runs are refused without --resume/--force; --force moves the folder aside; unusable paths are one line",
  ignore,
  async fn() {
    await withTempDir(async (root) => {
      const out = `${root}/exp`;
      const run = `${out}/runs/switch-seed0`;
      await Deno.mkdir(run, { recursive: true });
      await Deno.writeTextFile(`${run}/final.json`, JSON.stringify({ done: true }));
      await Deno.mkdir(`${out}/runs/sparsemixer-seed0`);
      const argv = ["--preset", "smoke", "--out", out, "--jobs", "1"];
      const quiet = { log: () => {}, dataCacheDir: `${root}/cache` };
      await assert.rejects(runLmExperiment(switchVsSparseMixer, argv, quiet), (e: Error) => {
        assert.ok(e instanceof UserError, String(e));
        assert.equal(
          e.message,
          `${out} holds 2 runs (1 finished); pass --resume to continue, or --force to replace it (moved aside)`,
        );
        return true;
      });
      assert.ok((await Deno.stat(`${run}/final.json`)).isFile, "refusal must not touch the runs");

      // A live writer in a run folder is refused even with --force, before anything moves.
      const runLock = acquireLock(run);
      await assert.rejects(
        runLmExperiment(switchVsSparseMixer, [...argv, "--force"], quiet),
        new RegExp(`switch-seed0/\\${LOCK_FILE} is held by this process \\(pid ${Deno.pid}\\)`),
      );
      runLock.release();

      // --force (checked on the claim alone, without training): the old folder is moved aside intact.
      const lines: string[] = [];
      const opts = {
        resume: false,
        force: true,
        holds: () => Promise.resolve("2 runs"),
        log: (l: string) => lines.push(l),
      };
      const lock = await claimOutFolder(out, opts);
      lock.release();
      const aside = [...Deno.readDirSync(root)].map((e) => e.name).find((n) => n.startsWith("exp.replaced-"));
      assert.ok(aside, "the old folder must be moved aside");
      assert.deepEqual(JSON.parse(await Deno.readTextFile(`${root}/${aside}/runs/switch-seed0/final.json`)), {
        done: true,
      });
      assert.match(lines.join("\n"), new RegExp(`moved the earlier ${out} \\(2 runs\\) aside to ${root}/${aside}`));
      assert.deepEqual([...Deno.readDirSync(out)], [], "a fresh, empty --out");

      // An --out below a file is a one-line UserError naming the flag.
      await Deno.writeTextFile(`${root}/afile`, "x");
      await assert.rejects(claimOutFolder(`${root}/afile/sub`, opts), (e: Error) => {
        assert.ok(e instanceof UserError);
        assert.match(e.message, new RegExp(`^--out ${root}/afile/sub: Not a directory`));
        assert.doesNotMatch(e.message, /\n/);
        return true;
      });
    });
  },
});

const CONFIG = parseRunConfig({
  seed: 3,
  steps: 12,
  logEvery: 2,
  evalEvery: 4,
  checkpointEvery: 4,
  data: { vocabSize: 300, maxDocuments: 12, seqLen: 16, batchSize: 4, evalBatches: 1, validFraction: 0.2 },
  model: { dim: 16, layers: 2, heads: 2, experts: 4, estimator: "switch" },
  optim: { lr: 3e-3, warmupSteps: 2 },
});

Deno.test({
  name: "runLm: a locked run folder is refused; a damaged newest checkpoint is reported and kept aside on resume",
  ignore,
  async fn() {
    await withTempDir(async (root) => {
      const opts = { dataCacheDir: `${root}/cache`, onWarning: () => {} };
      const metrics = (d: string) => readJsonl<MetricsRecord>(`${d}/metrics.jsonl`);
      await runLm(CONFIG, `${root}/ref`, { resume: false, ...opts });
      await assert.rejects(Deno.stat(`${root}/ref/${LOCK_FILE}`), Deno.errors.NotFound, "released when done");

      const dir = `${root}/c`;
      await Deno.mkdir(dir);
      const held = acquireLock(dir);
      await assert.rejects(runLm(CONFIG, dir, { resume: false, ...opts }), LockedError);
      held.release();

      // "Kill" after step 8 and truncate the newest checkpoint (step 8): resume falls back to step 4.
      await runLm(CONFIG, dir, { resume: false, stopAfterStep: 8, ...opts });
      const newest = `${dir}/ckpt/step-000008.safetensors`;
      const bytes = await Deno.readFile(newest);
      const truncated = bytes.subarray(0, Math.floor(bytes.length / 2));
      await Deno.writeFile(newest, truncated);
      const warnings: string[] = [];
      const resumedFrom: number[] = [];
      await runLm(CONFIG, dir, {
        ...opts,
        resume: true,
        onWarning: (w) => warnings.push(w),
        onProgress: (p) => p.kind === "resume" && resumedFrom.push(p.step),
      });
      assert.deepEqual(resumedFrom, [4]);
      assert.equal(warnings.length, 1, warnings.join("\n"));
      assert.match(warnings[0], /skipped the damaged checkpoint .*step-000008\.safetensors \(.+\); kept it as /);
      const kept = [...Deno.readDirSync(`${dir}/ckpt`)].map((e) => e.name).filter((n) => n.includes(".damaged-"));
      assert.equal(kept.length, 1);
      assert.ok(warnings[0].includes(kept[0]));
      // The evidence survives the resumed run's own step-8 checkpoint and the pruning of old checkpoints.
      assert.deepEqual(await Deno.readFile(`${dir}/ckpt/${kept[0]}`), truncated);
      assert.deepEqual((await metrics(dir)).map(withoutTiming), (await metrics(`${root}/ref`)).map(withoutTiming));
    });
  },
});
