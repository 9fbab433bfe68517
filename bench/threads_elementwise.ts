/**
 * Where splitting the non-matmul CPU kernels over Workers starts to pay (`threadMinimums` in
 * `kernels/cpu/threads/pool.ts`): for each kind of job and size, the best of `--reps` runs with one thread
 * and with `--threads` (default 2), alternated in one process on the same shared buffers, with every
 * job split (minimums set to 1). Indicative only on a shared machine.
 *
 * `deno run --allow-read bench/threads_elementwise.ts [--threads N] [--reps N]`
 */
import { parseArgs } from "node:util";
import { gelu, Generator, randn, setCpuOptions, softmax, sum, type Tensor } from "../mod.ts";
import { kernelPool, setThreadMinimums } from "../kernels/cpu/threads/pool.ts";
import { adamStep } from "../kernels/cpu/adam.ts";

const { values } = parseArgs({ args: Deno.args, options: { threads: { type: "string" }, reps: { type: "string" } } });
const threads = Number(values.threads ?? 2), reps = Number(values.reps ?? 30);
setCpuOptions({ threads });
setThreadMinimums({ elementwiseJs: 1, gather: 1, elementwiseSimd: 1, adam: 1, softmax: 1, rows: 1, sum: 1 });

const scalars = { decay: "decoupled", wd: 0.01, shrink: 0.99999, b1: 0.9, c1: 0.1, b2: 0.999, c2: 0.001 } as const;
const adamScalars = { ...scalars, bc2: Math.fround(0.03), eps: Math.fround(1e-8), step: Math.fround(1e-3) };

/** The best time (ms) of `reps` runs of `fn` with 1 and with `threads` threads, alternated. */
function best(fn: () => void): [number, number] {
  const t = [Infinity, Infinity];
  for (let r = 0; r < reps; r++) {
    for (const [k, n] of [[0, 1], [1, threads]]) {
      setCpuOptions({ threads: n });
      const t0 = performance.now();
      fn();
      t[k] = Math.min(t[k], performance.now() - t0);
    }
  }
  setCpuOptions({ threads });
  return [t[0], t[1]];
}

// Let the Workers load before timing.
const warm = randn([256, 1024], { generator: new Generator(1) });
const warmEnd = performance.now() + 10_000;
while (kernelPool()!.workerUnits === 0 && performance.now() < warmEnd) gelu(warm).dispose();

console.log(`| job | elements | 1 thread (ms) | ${threads} threads (ms) | speed-up |`);
console.log("| --- | --- | --- | --- | --- |");
for (const n of [1 << 14, 1 << 16, 1 << 18, 1 << 20]) {
  const g = new Generator(2);
  const a = randn([n / 256, 256], { generator: g }), b = randn([256], { generator: g });
  const [p, grad, m, v] = [0, 1, 2, 3].map(() => randn([n], { generator: g }).abs().storage.buf as Float32Array);
  const jobs: Record<string, () => Tensor | void> = {
    "mul (SIMD)": () => a.mul(b),
    "gelu (JS)": () => gelu(a),
    softmax: () => softmax(a, -1),
    "sum axis 0": () => sum(a, 0),
    "sum axis -1": () => sum(a, -1),
    adamw: () => void adamStep(p, grad, m, v, n, adamScalars),
  };
  for (const [name, job] of Object.entries(jobs)) {
    const [one, many] = best(() => job()?.dispose());
    console.log(`| ${name} | ${n} | ${one.toFixed(3)} | ${many.toFixed(3)} | ${(one / many).toFixed(2)}× |`);
  }
}
