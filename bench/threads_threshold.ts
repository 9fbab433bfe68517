/**
 * Where threading a WebAssembly matmul starts to pay: square-ish f32 products from 2^14 to 2^24
 * multiply-adds, each timed on 1 and on N threads of the shared instance, interleaved. The smallest rows
 * are one unit of work, so their N-thread time minus their 1-thread time is the pool's fixed cost (waking
 * the Workers, `Atomics.notify` and the final wait). The kernel's `THREADS_MIN_FLOPS` is chosen from this.
 *
 * `deno run --allow-read --allow-env bench/threads_threshold.ts [--threads N] [--repeats R]`
 */
import { parseArgs } from "node:util";
import { sharedWasmMatmul } from "../kernels/cpu/wasm/matmul.ts";
import { interleaved } from "./matmul_threads.ts";
import { filled } from "../tests/helpers/host_rng.ts";

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { threads: { type: "string", default: "2" }, repeats: { type: "string", default: "41" } },
  });
  const threads = Number(values.threads), repeats = Number(values.repeats);
  const wasm = sharedWasmMatmul();
  if (!wasm) throw new Error("no WebAssembly SIMD here");
  console.log(`| M×K×N | multiply-adds | µs, 1 thread | µs, ${threads} threads | speed-up |`);
  console.log("| --- | --- | --- | --- | --- |");
  for (
    const [m, k, n] of [
      [8, 32, 64],
      [32, 32, 64],
      [64, 64, 64],
      [64, 128, 64],
      [128, 128, 64],
      [128, 128, 128],
      [
        128,
        256,
        128,
      ],
      [256, 256, 128],
      [256, 256, 256],
    ]
  ) {
    const a = filled(m * k, 1), b = filled(k * n, 2), out = new Float32Array(m * n);
    // Ten calls per sample: a single small call is near the timer's resolution. µs per call.
    const tenCalls = (t: number) => () => {
      for (let i = 0; i < 10; i++) wasm.matmul(a, b, out, m, k, n, { threads: t });
    };
    const [one, many] = interleaved([tenCalls(1), tenCalls(threads)], repeats, 3).map((ms) => ms * 100);
    console.log(
      `| ${m}×${k}×${n} | 2^${Math.log2(m * k * n).toFixed(0)} | ${one.toFixed(1)} | ${many.toFixed(1)} | ${
        (one / many).toFixed(2)
      } |`,
    );
  }
}
