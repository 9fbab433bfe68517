/**
 * `deno task bench`: the issue-6 table, measured in one process.
 *
 * 1. f32 matmul GFLOP/s at 256³, 512³, 1024³: ours on one thread, ours on all cores (`setCpuOptions({ threads })`),
 *    tfjs-backend-wasm (one thread, XNNPACK) and tfjs-backend-cpu (plain JS), each timed from the JS side
 *    including the copy out (`dataSync`). Median of a few repeats after a warm-up.
 * 2. Training throughput (tokens/s) of the small MoE decoder LM of `train_moe.ts` on the fast path (defaults)
 *    and on the plain-TypeScript path (`{ wasm: false, threads: 1, fastKernels: false }`), and their ratio.
 * 3. The per-op time breakdown of one fast-path training step (top 15 ops, % of the step).
 * 4. With `--allow-ffi` and a native BLAS: the BLAS against WebAssembly (`./blas.ts`); sections 1–3 measure
 *    the built-in kernels either way.
 * 5. The side-by-side benchmark (`step_vs_torch.ts`): the step at d = 128, 256, 512 with one thread and two,
 *    against the same step in PyTorch when `python3-torch` is installed, each measurement a child process
 *    (hence `--allow-run`); without PyTorch it times moegrad alone and says how to install it.
 *
 *     deno run --allow-read --allow-env --allow-ffi --allow-run --allow-sys=cpus bench/report.ts [--quick]
 *
 * `--quick` skips 1024³ and the plain-path training, and compares at d = 128 only (a smoke run). The numbers are wall times on a shared
 * machine: run it on an idle one for stable results.
 */
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { setThreadsCount } from "@tensorflow/tfjs-backend-wasm";
import { cpuOptions, formatProfile, matmul, setCpuOptions, startProfile, stopProfile, tensor } from "../core/mod.ts";
import { median } from "../experiments/common/stats.ts";
import { filled } from "../tests/helpers/host_rng.ts";
import { DEFAULT_TRAIN, makeTrainer, timeSteps } from "./train_moe.ts";
import { blasReport } from "./blas.ts";
import { machine } from "./_machine.ts";
import { defaultPlan, printComparison } from "./step_vs_torch.ts";

const { values: flags } = parseArgs({ args: Deno.args, options: { quick: { type: "boolean", default: false } } });
const SIZES = flags.quick ? [256, 512] : [256, 512, 1024];
const PLAIN = { wasm: false, threads: 1, fastKernels: false } as const;

/** Runs `fn` with console.warn muted (tfjs-backend-cpu greets Node users with a banner on its first tensor). */
function quietly<T>(fn: () => T): T {
  const warn = console.warn;
  console.warn = () => {};
  try {
    return fn();
  } finally {
    console.warn = warn;
  }
}

/** Median ms of `repeats` calls of `fn` after `warmup` calls. */
function timeIt(fn: () => void, warmup: number, repeats: number): number {
  for (let i = 0; i < warmup; i++) fn();
  const ms: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    fn();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}

function repeatsFor(size: number): number {
  return size >= 1024 ? 3 : size >= 512 ? 7 : 15;
}

function checkClose(name: string, got: ArrayLike<number>, want: ArrayLike<number>): void {
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= 1e-3 * (1 + Math.abs(want[i])))) {
      throw new Error(`${name}: result differs from ours at ${i}: ${got[i]} vs ${want[i]}`);
    }
  }
}

type Row = { name: string; gflops: (number | null)[] };

async function matmulTable(): Promise<Row[]> {
  const cores = navigator.hardwareConcurrency ?? 1;
  const saved = cpuOptions();
  const rows: Row[] = [
    { name: "ours, 1 thread", gflops: [] },
    { name: `ours, ${cores} threads (all cores)`, gflops: [] },
    { name: "tfjs-backend-wasm 4.22, 1 thread", gflops: [] },
    { name: "tfjs-backend-cpu 4.22", gflops: [] },
  ];
  let wasmOk = false;
  try {
    setThreadsCount(1);
    wasmOk = await tf.setBackend("wasm");
    await tf.ready();
  } catch (e) {
    console.warn(`tfjs-backend-wasm unavailable: ${(e as Error).message}`);
  }
  for (const size of SIZES) {
    const a = filled(size * size, 1), b = filled(size * size, 2);
    const flops = 2 * size ** 3;
    const reps = repeatsFor(size);
    const ta = tensor(a, { shape: [size, size] }), tb = tensor(b, { shape: [size, size] });
    let ours: Float32Array | null = null;
    for (const [row, threads] of [[0, 1], [1, cores]] as const) {
      setCpuOptions({ ...saved, threads });
      ours = matmul(ta, tb).dataSync() as Float32Array;
      const ms = timeIt(() => matmul(ta, tb).dispose(), 2, reps);
      rows[row].gflops.push(flops / ms / 1e6);
    }
    setCpuOptions(saved);
    for (const [row, backend, ok] of [[2, "wasm", wasmOk], [3, "cpu", true]] as const) {
      if (!ok || !(await tf.setBackend(backend))) {
        rows[row].gflops.push(null);
        continue;
      }
      const x = quietly(() => tf.tensor2d(a, [size, size])), y = tf.tensor2d(b, [size, size]);
      const run = () => {
        const c = tf.matMul(x, y);
        c.dataSync();
        c.dispose();
      };
      // tfjs-backend-cpu takes tens of seconds at 1024³: there the checked call is also the only timed one.
      const slow = backend === "cpu" && size >= 1024;
      const t1 = performance.now();
      const got = tf.matMul(x, y);
      const data = got.dataSync();
      const once = performance.now() - t1;
      got.dispose();
      checkClose(`tfjs-${backend} ${size}³`, data, ours!);
      const ms = slow ? once : timeIt(run, 1, backend === "cpu" ? Math.min(reps, 3) : reps);
      rows[row].gflops.push(flops / ms / 1e6);
      x.dispose();
      y.dispose();
    }
    ta.dispose();
    tb.dispose();
  }
  return rows;
}

console.log(`# moegrad benchmark\n\nMachine: ${await machine()}\n`);
// The tables measure the built-in kernels even when --allow-ffi finds a BLAS; section 4 compares the two.
setCpuOptions({ matmul: "wasm" });

const t0 = performance.now();
const rows = await matmulTable();
console.log("## f32 matmul, GFLOP/s (2·n³ / median time per call, including the copy out)\n");
console.log(`| implementation | ${SIZES.map((s) => `${s}³`).join(" | ")} |`);
console.log(`| --- | ${SIZES.map(() => "---:").join(" | ")} |`);
for (const r of rows) {
  console.log(`| ${r.name} | ${r.gflops.map((g) => (g === null ? "n/a" : g.toFixed(2))).join(" | ")} |`);
}

const c = DEFAULT_TRAIN;
const what =
  `DecoderLM vocab ${c.vocab}, d ${c.dim}, ${c.layers} layers, ${c.heads} heads, RoPE; MoE FFN (hidden 4d, ` +
  `${c.experts} experts, top-1 ${c.estimator}) in every layer; batch ${c.batch} × seq ${c.seq} = ` +
  `${c.batch * c.seq} tokens; f32; forward + cross-entropy + balance loss, backward, clip 1.0, AdamW`;
console.log(`\n## Training throughput\n\n${what}\n`);
const saved = cpuOptions();
const fast = makeTrainer();
const fastT = timeSteps(fast, 1, 3);
let plainT: { ms: number; tokensPerS: number } | null = null;
if (!flags.quick) {
  setCpuOptions(PLAIN);
  try {
    plainT = timeSteps(makeTrainer(), 1, 1);
  } finally {
    setCpuOptions(saved);
  }
}
console.log("| path | ms / step | tokens/s |");
console.log("| --- | ---: | ---: |");
console.log(
  `| fast (defaults: wasm, ${saved.threads} threads, fast kernels) | ${fastT.ms.toFixed(0)} | ${
    fastT.tokensPerS.toFixed(0)
  } |`,
);
if (plainT) {
  console.log(
    `| plain TypeScript (wasm off, 1 thread, reference kernels) | ${plainT.ms.toFixed(0)} | ${
      plainT.tokensPerS.toFixed(0)
    } |`,
  );
  console.log(`\nSpeed-up of the fast path: ${(fastT.tokensPerS / plainT.tokensPerS).toFixed(2)}×`);
}

startProfile();
fast.step();
const table = stopProfile();
console.log(
  `\n## Time per op, one fast-path step (${table.wallMs.toFixed(0)} ms; backward ops under their own names)\n`,
);
console.log(formatProfile(table, { top: 15, by: ["op", "kernel"] }));
console.log(
  `\n${blasReport(SIZES, flags.quick ? 1 : 3) ?? "Native BLAS: none loaded (run with --allow-ffi and OpenBLAS)."}`,
);
console.log();
await printComparison(defaultPlan(flags.quick));
console.log(`\nTotal benchmark time: ${((performance.now() - t0) / 1000).toFixed(0)} s`);
