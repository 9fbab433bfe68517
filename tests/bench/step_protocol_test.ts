/**
 * The side-by-side benchmark's plumbing, timing nothing: the request round trip, the answer's validation, the
 * report's layout, a tiny moegrad child end to end (needs --allow-run and --allow-read), and — only where
 * `/usr/bin/python3` can import torch — that `bench/torch_step.py` builds a model with exactly moegrad's
 * parameter count and answers in the same protocol. CI machines have no PyTorch: that test is ignored there.
 * The moegrad+BLAS column: its table layout, and a tiny child asked for the BLAS (which names the library it
 * ran on, where the machine has one).
 */
import assert from "node:assert/strict";
import {
  parseReport,
  parseRequestArgs,
  requestArgs,
  type StepReport,
  type StepRequest,
} from "../../bench/step_protocol.ts";
import { probeTorch, runSide } from "../../bench/step_runner.ts";
import { formatComparison } from "../../bench/step_table.ts";
import type { Comparison, SideResult } from "../../bench/step_vs_torch.ts";

/** `text` contains `part` (the failure shows the whole text). */
function includes(text: string, part: string): void {
  assert.ok(text.includes(part), `${JSON.stringify(part)} not in:\n${text}`);
}

const TINY: StepRequest = {
  sizes: { vocab: 32, dim: 16, layers: 1, heads: 2, experts: 2, batch: 1, seq: 8 },
  threads: 1,
  warmup: 0,
  repeats: 1,
};

const canSpawn = Deno.permissions.querySync({ name: "run" }).state === "granted" &&
  Deno.permissions.querySync({ name: "read" }).state === "granted";
const torch = canSpawn ? await probeTorch() : null;

function report(side: StepReport["side"], ms: number, rssKiB: number): StepReport {
  return {
    side,
    sizes: { ...TINY.sizes, dim: 256 },
    threads: 1,
    parameters: 1000,
    stepMs: [ms],
    losses: [5.5, 5.4],
    peakRssKiB: rssKiB,
    runtime: side === "torch" ? "PyTorch 1.13.0, Python 3.11.2, OMP_WAIT_POLICY=PASSIVE" : "Deno 2.9.6",
    blas: side === "torch" ? "/usr/lib/libopenblasp.so" : null,
  };
}

function side(r: StepReport): SideResult {
  return {
    ms: r.stepMs[0],
    steps: 1,
    processMs: [r.stepMs[0]],
    peakRssKiB: r.peakRssKiB,
    parameters: r.parameters,
    firstLoss: 5.5,
    report: r,
  };
}

Deno.test("step protocol: the request survives the command line, and a bad one is refused", () => {
  assert.deepEqual(parseRequestArgs(requestArgs(TINY)), TINY);
  assert.deepEqual(parseRequestArgs(requestArgs({ ...TINY, matmul: "blas" })), { ...TINY, matmul: "blas" });
  assert.throws(() => parseRequestArgs([...requestArgs(TINY), "--matmul", "fast"]), /--matmul must be/);
  assert.throws(() => parseRequestArgs([...requestArgs(TINY), "--speed", "9"]), /--speed/);
  assert.throws(() => parseRequestArgs(requestArgs(TINY).slice(2))); // --vocab missing
  assert.throws(() => parseRequestArgs(["--dim", "1.5"]), /integer/);
});

Deno.test("step protocol: the answer is the last stdout line, validated", () => {
  const good = report("torch", 12, 2048);
  assert.deepEqual(parseReport(`a warning\n${JSON.stringify(good)}\n\n`), good);
  assert.throws(() => parseReport("no json here"), /not JSON/);
  assert.throws(() => parseReport(JSON.stringify({ ...good, peakRssKiB: -1 })), /malformed/);
  assert.throws(() => parseReport(JSON.stringify({ ...good, extra: 1 })), /malformed/);
});

/**
 * A comparison at d = 256 on 1 and 2 threads: moegrad 300 / 200 ms (4 MiB), PyTorch 100 / 80 ms (2 MiB), and
 * moegrad+BLAS 150 / 100 ms (3 MiB) when `blas` is a library.
 */
function comparison(blas: Comparison["blas"]): Comparison {
  const cells = [1, 2].map((threads) => ({
    dim: 256,
    threads,
    moegrad: side(report("moegrad", threads === 1 ? 300 : 200, 4096)),
    moegradBlas: blas.ok ? side(report("moegrad", threads === 1 ? 150 : 100, 3072)) : null,
    torch: side(report("torch", threads === 1 ? 100 : 80, 2048)),
  }));
  return {
    plan: { dims: [256], threads: [1, 2], rounds: 1, warmup: 1, repeats: 1 },
    machine: "test CPU",
    torch: { ok: true, python: "/usr/bin/python3", version: "1.13.0" },
    blas,
    cells,
    seconds: 1,
  };
}

/** The comparison without PyTorch. */
function withoutTorch(c: Comparison): Comparison {
  const torch = { ok: false as const, python: "/usr/bin/python3", reason: "no torch" };
  return { ...c, torch, cells: c.cells.map((cell) => ({ ...cell, torch: null })) };
}

Deno.test("step table: ratios are moegrad ÷ PyTorch; a skipped PyTorch says how to install it", () => {
  const ok = comparison({ ok: false, reason: "the benchmark was run without --allow-ffi" });
  const text = formatComparison(ok);
  includes(text, "| 256 | 1 | 300 | 100 | 3.00× | 4 | 2 | 2.00× |");
  includes(text, "| 256 | 1.50× | 1.25× |"); // two threads vs one, each side
  includes(text, "step time at d = 256: 1 thread 3.00×, 2 threads 2.50×");
  includes(text, "BLAS loaded: /usr/lib/libopenblasp.so");
  const skipped = formatComparison(withoutTorch(ok));
  includes(skipped, "comparison skipped, no torch");
  includes(skipped, "apt-get install -y python3-torch libopenblas0-pthread");
  includes(skipped, "| 256 | 1 | 300 | — | — | 4 | — | — |");
  assert.ok(!skipped.includes("Headline"));
  // No BLAS measured: no moegrad+BLAS columns, and the reason is given.
  includes(text, "moegrad+BLAS: not measured, the benchmark was run without --allow-ffi");
  assert.ok(!text.includes("moegrad+BLAS ms/step") && !text.includes("with moegrad on the native BLAS"));
});

Deno.test("step table: a moegrad+BLAS run adds its columns, ratios and two-threads speed-up", () => {
  const withTorch = comparison({ ok: true, library: "OpenBLAS at /usr/lib/libopenblas.so.0" });
  const text = formatComparison(withTorch);
  includes(text, "| time moegrad ÷ PyTorch | moegrad peak RSS MiB | PyTorch peak RSS MiB | RSS moegrad ÷ PyTorch | ");
  includes(text, "| moegrad+BLAS ms/step | time moegrad+BLAS ÷ PyTorch | moegrad+BLAS peak RSS MiB |");
  includes(text, "| 256 | 1 | 300 | 100 | 3.00× | 4 | 2 | 2.00× | 150 | 1.50× | 3 |");
  includes(text, "| 256 | 2 | 200 | 80 | 2.50× | 4 | 2 | 2.00× | 100 | 1.25× | 3 |");
  includes(text, "| d | moegrad | moegrad+BLAS | PyTorch |");
  includes(text, "| 256 | 1.50× | 1.50× | 1.25× |");
  includes(text, "step time at d = 256: 1 thread 3.00×, 2 threads 2.50×");
  includes(text, "with moegrad on the native BLAS, step time at d = 256: 1 thread 1.50×, 2 threads 1.25×");
  includes(text, "on OpenBLAS at /usr/lib/libopenblas.so.0");
  // Without PyTorch the BLAS columns still show moegrad's own numbers.
  const alone = formatComparison(withoutTorch(withTorch));
  includes(alone, "| 256 | 1 | 300 | — | — | 4 | — | — | 150 | — | 3 |");
  assert.ok(!alone.includes("Headline"));
});

Deno.test("step table: the machine's two-thread ceiling is printed next to the speed-ups, or why it is missing", () => {
  const base = comparison({ ok: false, reason: "no ffi" });
  const ceiling = { before: { one: 600, two: 400, speedup: 1.5 }, after: { one: 600, two: 333, speedup: 1.8 } };
  const text = formatComparison({ ...base, ceiling });
  includes(text, "measured before and after the comparison: 1.50× before, 1.80× after.");
  includes(
    text,
    "two threads vs one on the step at d = 256: moegrad 1.50×, PyTorch 1.25× (this machine's ceiling: 1.50×",
  );
  assert.ok(!text.includes("Round by round"), "one round: no per-round ratios");
  const failed = formatComparison({ ...base, ceiling: "the matmul Workers failed: no permission" });
  includes(failed, "ceiling for vector multiply-add work: not measured, the matmul Workers failed: no permission.");
  assert.ok(!formatComparison(base).includes("ceiling"));
});

Deno.test("step table: with several rounds, two threads vs one is also given round by round", () => {
  const base = comparison({ ok: false, reason: "no ffi" });
  // Process medians by threads: moegrad 320, 300 ms on one thread and 200, 250 on two; PyTorch 120, 99 and 100, 90.
  const processMs = { moegrad: { 1: [320, 300], 2: [200, 250] }, torch: { 1: [120, 99], 2: [100, 90] } } as const;
  const cells = base.cells.map((cell) => {
    const t = cell.threads as 1 | 2;
    return {
      ...cell,
      moegrad: { ...cell.moegrad, processMs: [...processMs.moegrad[t]] },
      torch: { ...cell.torch!, processMs: [...processMs.torch[t]] },
    };
  });
  const text = formatComparison({ ...base, plan: { ...base.plan, rounds: 2 }, cells });
  includes(text, "- d = 256: moegrad 1.60×, 1.20×; PyTorch 1.20×, 1.10×");
});

Deno.test({
  name: "step child: a tiny moegrad step answers in the protocol",
  ignore: !canSpawn,
  async fn() {
    // Make this process's high-water mark large (512 MiB): a child forked from it directly would report at
    // least that (Linux keeps ru_maxrss across execve); the runner's shell keeps the child's peak its own.
    let ballast: Float32Array | null = new Float32Array(128 * 1024 * 1024).fill(1);
    const r = await runSide("moegrad", TINY);
    ballast = null;
    assert.ok(r.peakRssKiB < 400 * 1024, `the tiny child's peak RSS is ${r.peakRssKiB} KiB: inherited?`);
    assert.deepEqual([r.side, r.sizes, r.threads, r.stepMs.length, r.losses.length], ["moegrad", TINY.sizes, 1, 1, 1]);
    // tokEmb 32·16, one block (2 LayerNorms, 4 projections with biases, router 16·2, 2 experts with biases),
    // final LayerNorm, head 16·32.
    const block = 4 * 16 + 4 * (16 * 16 + 16) + 16 * 2 + 2 * (16 * 64 + 64 + 64 * 16 + 16);
    assert.equal(r.parameters, 32 * 16 + block + 2 * 16 + 16 * 32);
    assert.ok(r.peakRssKiB > 0 && r.blas === null && ballast === null);
  },
});

Deno.test({
  name: "step child: asked for the BLAS, a tiny moegrad step names the library it ran on (where there is one)",
  ignore: !canSpawn,
  async fn() {
    // "auto" with --allow-ffi: the BLAS where the machine has one, else WebAssembly (blas null), never an error.
    const auto = await runSide("moegrad", { ...TINY, matmul: "auto" });
    if (auto.blas === null) return; // no library here: the benchmark would not ask for "blas"
    const [blas, wasm] = [await runSide("moegrad", { ...TINY, matmul: "blas" }), await runSide("moegrad", TINY)];
    assert.equal(blas.blas, auto.blas);
    assert.match(blas.blas!, / at \//);
    assert.equal(wasm.blas, null);
    assert.equal(blas.parameters, wasm.parameters);
    assert.ok(Math.abs(blas.losses[0] - wasm.losses[0]) < 1e-4, `losses ${blas.losses[0]} vs ${wasm.losses[0]}`);
  },
});

Deno.test({
  name: "step child: bench/torch_step.py builds moegrad's parameter count (only where PyTorch is installed)",
  ignore: !torch?.ok,
  async fn() {
    const [m, t] = [await runSide("moegrad", TINY), await runSide("torch", TINY, torch!.python)];
    assert.equal(t.parameters, m.parameters);
    assert.deepEqual([t.sizes, t.stepMs.length, t.losses.length], [TINY.sizes, 1, 1]);
    includes(t.runtime, "PyTorch");
    // Both start near chance, ln 32 ≈ 3.47 (plus a balance loss of about 0.01).
    for (const loss of [m.losses[0], t.losses[0]]) assert.ok(Math.abs(loss - Math.log(32)) < 0.5, `loss ${loss}`);
  },
});
