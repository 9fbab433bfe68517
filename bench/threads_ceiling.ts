/**
 * What two threads can give on this machine at all: the same work on one thread and split over two, for
 * - `compute`: a pure arithmetic loop in two `node:worker_threads` Workers vs one (no memory traffic, no
 *   pool: the cores' own ceiling, which noisy neighbours lower);
 * - `matmul (FMA-bound)`: the WebAssembly matmul kernel on L2-resident 192³ products, one thread each, in two
 *   module Workers vs one (`_matmul_worker.ts`): what two cores give work bound by vector multiply-add throughput,
 *   the step's matmuls (lower than `compute` where the two vCPUs share a physical core's vector units);
 * - `gelu (JS)`, `exp (JS)`: compute-bound elementwise jobs on the kernel pool (`kernels/cpu/threads/`);
 * - `scale`: a memory-bound in-place job on the kernel pool (clipping's scaling, ≈ 1 ns per element).
 * Best of `--reps` alternated runs. Indicative only on a shared machine.
 *
 * `deno run --allow-read bench/threads_ceiling.ts [--reps N]`
 */
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import { exp, gelu, Generator, randn, setCpuOptions } from "../mod.ts";
import { kernelPool, setThreadMinimums } from "../kernels/cpu/threads/pool.ts";
import { scaleF32 } from "../kernels/cpu/sum_squares.ts";

const { values } = parseArgs({ args: Deno.args, options: { reps: { type: "string" } } });
const reps = Number(values.reps ?? 10);

/** A Worker that runs `iterations` of an arithmetic loop whenever posted a number, and replies when done. */
const LOOP = `
const { parentPort } = require("node:worker_threads");
parentPort.on("message", (n) => {
  let x = 1.0001, y = 0;
  for (let i = 0; i < n; i++) { x = x * 1.0000001 + 1e-9; y += x; }
  parentPort.postMessage(y);
});
`;
/** Posts `n` to one Worker; resolves when it replies. */
type Ask = (n: number) => Promise<void>;

/**
 * Runs `total` iterations on one Worker, then half on each of two at once, best of `min(reps, 5)` rounds
 * after a warm-up of `warm` on both; prints the table row.
 */
async function oneVersusTwo(name: string, asks: Ask[], total: number, warm: number): Promise<void> {
  const run = (count: number, n: number) => Promise.all(asks.slice(0, count).map((ask) => ask(n)));
  await run(2, warm);
  let one = Infinity, two = Infinity;
  for (let r = 0; r < Math.min(reps, 5); r++) {
    let t0 = performance.now();
    await run(1, total);
    one = Math.min(one, performance.now() - t0);
    t0 = performance.now();
    await run(2, total / 2);
    two = Math.min(two, performance.now() - t0);
  }
  console.log(`| ${name} | ${total} | ${one.toFixed(1)} | ${two.toFixed(1)} | ${(one / two).toFixed(2)}× |`);
}

console.log("| job | elements | 1 thread (ms) | 2 threads (ms) | speed-up |");
console.log("| --- | --- | --- | --- | --- |");
const workers = [0, 1].map(() => new Worker(LOOP, { eval: true }));
await oneVersusTwo(
  "compute (raw Workers)",
  workers.map((w) => (n) => new Promise<void>((done) => (w.once("message", () => done()), w.postMessage(n)))),
  200_000_000,
  1e6,
);
workers.forEach((w) => w.terminate());

// Web Workers (`Worker` here is node:worker_threads'): module Workers, each importing its own moegrad.
const matmulWorkers = [0, 1].map(() =>
  new globalThis.Worker(new URL("./_matmul_worker.ts", import.meta.url), { type: "module" })
);
await oneVersusTwo(
  "matmul (FMA-bound, 192³ products)",
  matmulWorkers.map((w) => (n) => new Promise<void>((done) => (w.onmessage = () => done(), w.postMessage(n)))),
  2000,
  400,
);
matmulWorkers.forEach((w) => w.terminate());

setCpuOptions({ threads: 2 });
setThreadMinimums({ elementwiseJs: 1, elementwiseSimd: 1, adam: 1 });
const n = 1 << 22;
const a = randn([n / 1024, 1024], { generator: new Generator(1) }), small = a.mul(0.001);
const warmEnd = performance.now() + 10_000;
while (kernelPool()!.workerUnits === 0 && performance.now() < warmEnd) gelu(a).dispose();
const g = a.storage.buf as Float32Array;
const jobs: Record<string, () => void> = {
  "gelu (JS)": () => gelu(a).dispose(),
  "exp (JS)": () => exp(small).dispose(),
  "scale (memory)": () => scaleF32(g, n, 1),
};
for (const [name, job] of Object.entries(jobs)) {
  const t = [Infinity, Infinity];
  for (let r = 0; r < reps; r++) {
    for (const k of [0, 1]) {
      setCpuOptions({ threads: k + 1 });
      const t0 = performance.now();
      job();
      t[k] = Math.min(t[k], performance.now() - t0);
    }
  }
  console.log(`| ${name} | ${n} | ${t[0].toFixed(2)} | ${t[1].toFixed(2)} | ${(t[0] / t[1]).toFixed(2)}× |`);
}
