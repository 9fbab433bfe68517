/**
 * What two threads can give on this machine at all: the same work on one thread and split over two, for
 * - `compute`: a pure arithmetic loop in two `node:worker_threads` Workers vs one (no memory traffic, no
 *   pool: the cores' own ceiling, which noisy neighbours lower);
 * - `matmul (FMA-bound)`: the WebAssembly matmul kernel on L2-resident 192³ products, one thread each, in two
 *   module Workers vs one (`_fma_ceiling.ts`): what two cores give work bound by vector multiply-add throughput,
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
import { type Ask, type Ceiling, CEILING_PRODUCTS, fmaCeiling, oneVersusTwo } from "./_fma_ceiling.ts";

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
/** Prints one table row. */
function row(name: string, units: number, c: Ceiling): void {
  console.log(`| ${name} | ${units} | ${c.one.toFixed(1)} | ${c.two.toFixed(1)} | ${c.speedup.toFixed(2)}× |`);
}

console.log("| job | elements | 1 thread (ms) | 2 threads (ms) | speed-up |");
console.log("| --- | --- | --- | --- | --- |");
const workers = [0, 1].map(() => new Worker(LOOP, { eval: true }));
const asks = workers.map((w): Ask => (n) =>
  new Promise<void>((done) => (w.once("message", () => done()), w.postMessage(n)))
);
row("compute (raw Workers)", 200_000_000, await oneVersusTwo(asks, 200_000_000, 1e6, Math.min(reps, 5)));
workers.forEach((w) => w.terminate());

// Module Workers, each importing its own moegrad (`_fma_ceiling.ts`).
row("matmul (FMA-bound, 192³ products)", CEILING_PRODUCTS, await fmaCeiling(Math.min(reps, 5)));

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
