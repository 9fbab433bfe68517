/**
 * The moegrad side of the side-by-side benchmark, run as a child process by `step_vs_torch.ts`: builds the
 * `train_moe.ts` trainer at the requested sizes with `setCpuOptions({ threads, matmul })`, times its steps and
 * prints ONE JSON line (`step_protocol.ts`), naming the native BLAS its matmuls ran on, if any.
 *
 *     deno run --allow-read --allow-env --allow-sys=cpus bench/step_child.ts --vocab 256 --dim 128 … --repeats 3
 *     deno run --allow-read --allow-env --allow-ffi --allow-sys=cpus bench/step_child.ts … --matmul blas
 *
 * The peak RSS is getrusage's `ru_maxrss` of this process (`process.resourceUsage().maxRSS`, KiB), which needs
 * no permission, unlike `/proc/self/status` (Deno asks for `--allow-all` there). It covers the whole process:
 * the V8 heap, the WebAssembly memories and the matmul Workers (threads of this process).
 *
 * @module
 */
import process from "node:process";
import { cpuOptions, setCpuOptions } from "../core/mod.ts";
import { detectBlas } from "../kernels/cpu/blas_library.ts";
import { DEFAULT_TRAIN, makeTrainer, stepTimes } from "./train_moe.ts";
import { formatReport, parseRequestArgs, type StepReport } from "./step_protocol.ts";

/** Runs the request on this process and returns the answer. */
export function runMoegradStep(args: readonly string[]): StepReport {
  const request = parseRequestArgs(args);
  setCpuOptions(request.matmul ? { threads: request.threads, matmul: request.matmul } : { threads: request.threads });
  const trainer = makeTrainer({ ...DEFAULT_TRAIN, ...request.sizes });
  const { ms, losses } = stepTimes(trainer, request.warmup, request.repeats);
  return {
    side: "moegrad",
    sizes: request.sizes,
    threads: request.threads,
    parameters: trainer.parameters,
    stepMs: ms,
    losses,
    peakRssKiB: process.resourceUsage().maxRSS,
    runtime: `Deno ${Deno.version.deno}`,
    blas: blasInUse(),
  };
}

/** The library the matmuls ran on (`vendor (build) at path`), or null when they ran on the built-in kernels. */
function blasInUse(): string | null {
  const lib = cpuOptions().matmul === "wasm" ? null : detectBlas().library;
  return lib && `${lib.vendor}${lib.config ? ` (${lib.config})` : ""} at ${lib.path}`;
}

if (import.meta.main) {
  console.log(formatReport(runMoegradStep(Deno.args)));
  // The matmul Workers would keep the process alive.
  Deno.exit(0);
}
