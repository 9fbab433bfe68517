/**
 * Thread scaling of the training step's matmuls, op by op: records every `matmul`, `groupedMatmul` and
 * `groupedOuter` call of one step of `train_moe.ts` (shapes, attributes, group offsets), then replays each
 * distinct call on fresh operands with 1 and with N threads, interleaved (1, N, 1, N, …) so a load change on
 * a shared machine hits both sides alike, and prints the median per call and per step.
 *
 * `deno run --allow-read --allow-env bench/matmul_threads.ts [--threads N] [--repeats R]`
 *
 * Why a replay and not the step's own profile: the profile of a whole step mixes the matmuls with the
 * single-threaded rest, which another process on the same cores slows as much as the matmuls; a replay of the
 * same shapes isolates what the Worker pool gains or loses per product.
 */
import { parseArgs } from "node:util";
import { cpuOptions, setCpuOptions } from "../core/mod.ts";
import type { TensorRef } from "../kernels/registry.ts";
import { cpuKernels } from "../kernels/cpu/mod.ts";
import type { CpuBuffer } from "../kernels/cpu/buffer.ts";
import { median } from "../experiments/common/stats.ts";
import { makeTrainer } from "./train_moe.ts";

/** The kernels replayed. */
const OPS = ["matmul", "groupedMatmul", "groupedOuter"] as const;
/** A replayed kernel's name. */
export type Op = typeof OPS[number];
type Kernel = (i: TensorRef<CpuBuffer>[], o: TensorRef<CpuBuffer>[], a: unknown) => void;

/** One distinct call: its op, operand shapes, attributes, and the offsets operand (copied) if any. */
export interface Call {
  op: Op;
  key: string;
  inputs: { shape: readonly number[]; dtype: TensorRef<CpuBuffer>["dtype"]; offsets?: CpuBuffer }[];
  output: readonly number[];
  attrs: unknown;
  perStep: number;
}

/** Runs one step with the kernels wrapped, returning the distinct calls in first-seen order. */
export function recordCalls(step: () => void): Call[] {
  const calls = new Map<string, Call>();
  const table = cpuKernels as unknown as Record<Op, Kernel>;
  const saved = OPS.map((op) => table[op]);
  for (const op of OPS) {
    const inner = table[op];
    table[op] = (inputs, outputs, attrs) => {
      // Offsets decide the group sizes, so they are part of the key.
      const offsets = op === "matmul" ? undefined : inputs[2].buf.slice();
      const key = `${op} ${inputs.map((t) => `[${t.shape}]`).join(" ")} ${JSON.stringify(attrs)} ${offsets ?? ""}`;
      const seen = calls.get(key);
      if (seen) seen.perStep++;
      else {
        calls.set(key, {
          op,
          key,
          inputs: inputs.map((t, i) => ({ shape: t.shape, dtype: t.dtype, offsets: i === 2 ? offsets : undefined })),
          output: outputs[0].shape,
          attrs,
          perStep: 1,
        });
      }
      inner(inputs, outputs, attrs);
    };
  }
  try {
    step();
  } finally {
    OPS.forEach((op, i) => table[op] = saved[i]);
  }
  return [...calls.values()];
}

/**
 * A closure running the call once on fixed pseudo-random operands, through `kernels` (default: this
 * checkout's CPU kernels; another checkout's table compares two versions in one process).
 */
export function replay(call: Call, kernels: unknown = cpuKernels): () => void {
  const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  let seed = 1;
  const inputs = call.inputs.map((t) => {
    if (t.offsets) return { shape: t.shape, dtype: t.dtype, buf: t.offsets };
    const buf = new Float32Array(size(t.shape));
    for (let i = 0; i < buf.length; i++) buf[i] = ((seed = (seed * 16807) % 2147483647) / 2147483647) - 0.5;
    return { shape: t.shape, dtype: t.dtype, buf: buf as CpuBuffer };
  });
  const outputs = [{ shape: call.output, dtype: "f32" as const, buf: new Float32Array(size(call.output)) }];
  const kernel = (kernels as Record<Op, Kernel>)[call.op];
  return () => kernel(inputs, outputs, call.attrs);
}

/**
 * Median ms of each of two runs, measured interleaved (first, second, first, …) so a load change on a
 * shared machine hits both alike; the first `warmup` rounds (code and Worker warm-up) are not counted.
 */
export function interleaved(runs: [() => void, () => void], repeats: number, warmup = 1): [number, number] {
  const times: [number[], number[]] = [[], []];
  for (let r = 0; r < repeats + warmup; r++) {
    for (const side of [0, 1] as const) {
      const t0 = performance.now();
      runs[side]();
      if (r >= warmup) times[side].push(performance.now() - t0);
    }
  }
  return [median(times[0]), median(times[1])];
}

/** `fn` on `threads` matmul threads. */
function onThreads(fn: () => void, threads: number): () => void {
  return () => {
    setCpuOptions({ threads });
    fn();
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { threads: { type: "string", default: "2" }, repeats: { type: "string", default: "9" } },
  });
  const threads = Number(values.threads), repeats = Number(values.repeats);
  const before = cpuOptions();
  const trainer = makeTrainer();
  trainer.step();
  const calls = recordCalls(() => trainer.step());
  const perOp = new Map<Op, [number, number]>();
  console.log(`| call | per step | ms, 1 thread | ms, ${threads} threads | speed-up |`);
  console.log("| --- | --- | --- | --- | --- |");
  for (const call of calls) {
    const fn = replay(call);
    const [one, many] = interleaved([onThreads(fn, 1), onThreads(fn, threads)], repeats);
    const sum = perOp.get(call.op) ?? [0, 0];
    perOp.set(call.op, [sum[0] + one * call.perStep, sum[1] + many * call.perStep]);
    const key = call.key.length > 90 ? `${call.key.slice(0, 90)}…` : call.key;
    console.log(
      `| ${key} | ${call.perStep} | ${one.toFixed(3)} | ${many.toFixed(3)} | ${(one / many).toFixed(2)} |`,
    );
  }
  console.log(`\n| op | ms/step, 1 thread | ms/step, ${threads} threads | speed-up |\n| --- | --- | --- | --- |`);
  for (const [op, [one, many]] of perOp) {
    console.log(`| ${op} | ${one.toFixed(1)} | ${many.toFixed(1)} | ${(one / many).toFixed(2)} |`);
  }
  setCpuOptions(before);
}
