/**
 * f32 matmul at 256³, 512³ and 1024³ through the public `matmul` op on the CPU backend (the WebAssembly SIMD
 * kernel): ours on one thread and on all cores (`setCpuOptions({ threads })`), against
 * `@tensorflow/tfjs-backend-wasm` 4.22.0 on one thread (XNNPACK) as the external peer, and our plain
 * TypeScript blocked kernel (`matmulBlocked`, the fallback) at 256³ and 512³. Every timed call includes
 * copying in and out (ours: the op allocates its output; tfjs: `matMul` + `dataSync`).
 *
 *     deno bench --allow-read --allow-env bench/wasm_matmul_bench.ts
 *
 * tfjs needs --allow-read (its .wasm is read from node_modules/the npm cache); without it that row is
 * skipped. A GFLOP/s table (2·n³ / median ms of the iterations deno bench ran) is printed after deno bench's
 * own table. Wall times: on a machine shared with other work, the all-cores row suffers most.
 */
import * as tf from "@tensorflow/tfjs-core";
import { setThreadsCount } from "@tensorflow/tfjs-backend-wasm";
import { matmulBlocked } from "../kernels/cpu/matmul.ts";
import { cpuOptions, matmul, setCpuOptions, tensor } from "../core/mod.ts";
import { filled } from "../tests/helpers/host_rng.ts";
import { MatmulTimes } from "./_timing.ts";

const SIZES = [256, 512, 1024];
const CORES = Math.max(1, navigator.hardwareConcurrency ?? 1);

let tfjsReady = false;
try {
  setThreadsCount(1);
  tfjsReady = await tf.setBackend("wasm");
  await tf.ready();
} catch (e) {
  console.warn(`tfjs-backend-wasm unavailable: ${(e as Error).message}`);
}

const times = new MatmulTimes();
const ONE = "ours: 1 thread", ALL = `ours: ${CORES} threads`, TS = "ours: ts blocked", TFJS = "tfjs-backend-wasm";
const NAMES = [ONE, ALL, TFJS, TS];
const saved = cpuOptions();

/** Runs `fn` with the CPU backend allowed `threads` threads. */
function withThreads(threads: number, fn: () => void): () => void {
  return () => {
    setCpuOptions({ threads });
    try {
      fn();
    } finally {
      setCpuOptions(saved);
    }
  };
}

function checkClose(what: string, got: ArrayLike<number>, want: ArrayLike<number>): void {
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= 1e-3 * (1 + Math.abs(want[i])))) {
      throw new Error(`${what}: ${got[i]} vs ${want[i]} at ${i}`);
    }
  }
}

for (const size of SIZES) {
  const a = filled(size * size, 1), b = filled(size * size, 2);
  const ta = tensor(a, { shape: [size, size] }), tb = tensor(b, { shape: [size, size] });
  const outTs = new Float32Array(size * size);
  const runOp = () => matmul(ta, tb).dispose();
  const runTs = () => matmulBlocked(a, 0, b, 0, outTs, 1, size, size, size, false, false);
  // Benchmark only results that agree: 1 thread, all threads (bit-identical) and the TypeScript kernel.
  runTs();
  let one: Float32Array = new Float32Array(0);
  withThreads(1, () => one = matmul(ta, tb).dataSync() as Float32Array)();
  withThreads(CORES, () => checkClose(`${size}³ ${CORES} threads`, matmul(ta, tb).dataSync(), one))();
  checkClose(`${size}³ ts blocked`, outTs, one);

  const group = `matmul f32 ${size}³`;
  const opts = { group, n: size >= 1024 ? 5 : size >= 512 ? 15 : 40, warmup: 2 };
  const bench = (name: string, fn: () => void, baseline = false) =>
    Deno.bench({ ...opts, name: `${name} ${size}`, baseline, fn: times.timed(`${name} ${size}`, size, fn) });
  bench(ONE, withThreads(1, runOp), true);
  bench(ALL, withThreads(CORES, runOp));
  if (size <= 512) bench(TS, runTs);
  if (tfjsReady) {
    const x = tf.tensor2d(a, [size, size]), y = tf.tensor2d(b, [size, size]);
    const runTfjs = () => {
      const c = tf.matMul(x, y);
      c.dataSync();
      c.dispose();
    };
    checkClose(`${size}³ tfjs`, tf.matMul(x, y).dataSync(), one);
    bench(TFJS, runTfjs);
  }
}

globalThis.addEventListener("unload", () => {
  const rows: string[] = [];
  for (const size of SIZES) {
    for (const name of NAMES) {
      const r = times.stats(`${name} ${size}`);
      if (!r) continue;
      rows.push(
        `| ${`${size}³`.padEnd(5)} | ${name.padEnd(17)} | ${r.ms.toFixed(2).padStart(9)} | ${
          r.gflops.toFixed(2).padStart(7)
        } |`,
      );
    }
  }
  if (rows.length === 0) return;
  console.log("\nGFLOP/s = 2·n³ / median ms per iteration (of the iterations deno bench ran above)\n");
  console.log("| size  | implementation    | median ms | GFLOP/s |");
  console.log("| ----- | ----------------- | --------- | ------- |");
  for (const r of rows) console.log(r);
});
