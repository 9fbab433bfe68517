/**
 * The native-BLAS matmul path (`cpuOptions().matmul`, see `kernels/cpu/blas_matmul.ts`) against the built-in
 * WebAssembly one, in one process: f32 matmul GFLOP/s at equal thread counts (the BLAS's thread count follows
 * `setCpuOptions({ threads })`, so the comparison is fair), and the training step of `train_moe.ts` on each.
 * `bench/report.ts` appends this section when a library is loaded; alone:
 *
 *     deno run --allow-read --allow-env --allow-ffi --allow-sys=cpus bench/blas.ts [--sizes 256,512,1024] [--steps 3]
 *
 * Without `--allow-ffi` or a library it says so and exits. Wall times on a shared machine: indicative only.
 */
import { parseArgs } from "node:util";
import { cpuOptions, type MatmulChoice, setCpuOptions } from "../core/mod.ts";
import { detectBlas } from "../kernels/cpu/blas_library.ts";
import { measureMatmul } from "./_matmul_measure.ts";
import { makeTrainer, timeSteps } from "./train_moe.ts";

/** Runs `fn` with the matmul kernel (and optionally the thread count) set, restoring the options after. */
function under<T>(matmul: MatmulChoice, threads: number | undefined, fn: () => T): T {
  const saved = setCpuOptions(threads === undefined ? { matmul } : { matmul, threads });
  try {
    return fn();
  } finally {
    setCpuOptions(saved);
  }
}

/**
 * The BLAS section as markdown: a GFLOP/s table (rows WebAssembly and BLAS at 1 and `cores` threads,
 * columns `sizes`³; median of a few calls through the public `matmul` op, output allocation included) and
 * ms/step of the training step on each path with the current thread count. Null when no library is loaded.
 */
export function blasReport(sizes: number[], steps = 3): string | null {
  const lib = detectBlas().library;
  if (!lib) return null;
  const cores = navigator.hardwareConcurrency ?? 1;
  const lines = [
    `## Native BLAS (${lib.vendor} at ${lib.path}) vs WebAssembly\n`,
    "f32 matmul, GFLOP/s (2·n³ / median time per call through the `matmul` op):\n",
    `| kernel, threads | ${sizes.map((s) => `${s}³`).join(" | ")} |`,
    `| --- | ${sizes.map(() => "---:").join(" | ")} |`,
  ];
  const threadCounts = cores > 1 ? [1, cores] : [1];
  for (const matmul of ["wasm", "blas"] as const) {
    for (const threads of threadCounts) {
      const gflops = sizes.map((m) =>
        under(matmul, undefined, () => measureMatmul({ m, threads, repeats: m >= 1024 ? 3 : 7 }).gflops)
      );
      const name = matmul === "wasm" ? "WebAssembly" : lib.vendor;
      lines.push(
        `| ${name}, ${threads} thread${threads > 1 ? "s" : ""} | ${gflops.map((g) => g.toFixed(2)).join(" | ")} |`,
      );
    }
  }
  const threads = cpuOptions().threads;
  lines.push(`\nTraining step of train_moe.ts (${threads} threads; median of ${steps} steps after 1):\n`);
  lines.push("| matmul | ms / step | tokens/s |", "| --- | ---: | ---: |");
  const ms: number[] = [];
  for (const matmul of ["wasm", "blas"] as const) {
    const t = under(matmul, undefined, () => timeSteps(makeTrainer(), 1, steps));
    ms.push(t.ms);
    lines.push(
      `| ${matmul === "wasm" ? "WebAssembly" : lib.vendor} | ${t.ms.toFixed(0)} | ${t.tokensPerS.toFixed(0)} |`,
    );
  }
  lines.push(`\nStep speed-up with ${lib.vendor}: ${(ms[0] / ms[1]).toFixed(2)}×`);
  return lines.join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { sizes: { type: "string", default: "256,512,1024" }, steps: { type: "string", default: "3" } },
  });
  const report = blasReport(values.sizes.split(",").map(Number), Number(values.steps));
  console.log(report ?? `no native BLAS: ${detectBlas().message}`);
}
