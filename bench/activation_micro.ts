/**
 * ns per element of the activation programs on one thread (the f32 fast path): forward and backward of
 * exact GELU, tanh-GELU and SiLU, erf and exp alone, and the bias-fused forms, each on the WebAssembly
 * f64x2 kernel and on the JavaScript fast loop, at 2M elements (an MoE training step's FFN hidden size).
 * The best of `--reps` runs; indicative only on a shared machine.
 *
 * `deno run --allow-read --allow-env bench/activation_micro.ts [--n N] [--reps N] [--only erf,gelu,…]`
 */
import { parseArgs } from "node:util";
import type { TensorRef } from "../kernels/registry.ts";
import type { ElementwiseProgram } from "../kernels/expr/ir.ts";
import { unaryProgram } from "../kernels/expr/ops.ts";
import { actGradProgram, biasActProgram } from "../kernels/expr/fused.ts";
import { runFast } from "../kernels/cpu/expr_run.ts";
import type { CpuBuffer } from "../kernels/cpu/buffer.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { n: { type: "string" }, reps: { type: "string" }, only: { type: "string" } },
});
const n = Number(values.n ?? 1 << 21), reps = Number(values.reps ?? 7), cols = 1024;

// Pre-activations of a trained FFN are roughly N(0, 1); a fixed LCG keeps the operands the same every run.
let seed = 12345;
const uniform = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
const normal = () => Math.sqrt(-2 * Math.log(uniform() + 1e-12)) * Math.cos(2 * Math.PI * uniform());
const filled = (len: number) => Float32Array.from({ length: len }, normal);
const ref = (buf: CpuBuffer, shape: number[]): TensorRef<CpuBuffer> => ({ buf, shape, dtype: "f32" });
const x = ref(filled(n), [n / cols, cols]), g = ref(filled(n), [n / cols, cols]), b = ref(filled(cols), [cols]);
const out = ref(new Float32Array(n), [n / cols, cols]);

const jobs: [string, ElementwiseProgram, TensorRef<CpuBuffer>[]][] = [
  ["erf", unaryProgram("erf", "f32"), [x]],
  ["exp", unaryProgram("exp", "f32"), [x]],
  ["gelu", unaryProgram("gelu", "f32"), [x]],
  ["actGrad gelu", actGradProgram("gelu", "f32", false), [x, g]],
  ["biasAct gelu", biasActProgram("gelu", "f32"), [x, b]],
  ["actGrad gelu +b", actGradProgram("gelu", "f32", true), [x, g, b]],
  ["gelu_tanh", unaryProgram("gelu_tanh", "f32"), [x]],
  ["actGrad gelu_tanh", actGradProgram("gelu_tanh", "f32", false), [x, g]],
  ["silu", unaryProgram("silu", "f32"), [x]],
  ["actGrad silu", actGradProgram("silu", "f32", false), [x, g]],
];

console.log(`${n} elements, best of ${reps}, one thread: ns/element`);
console.log("| program | wasm f64x2 | JS loop |");
console.log("| --- | --- | --- |");
for (const [name, p, inputs] of jobs) {
  if (values.only && !values.only.split(",").includes(name)) continue;
  const ns = [true, false].map((wasm) => {
    let best = Infinity;
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      runFast(p, inputs, out, wasm, 1);
      best = Math.min(best, performance.now() - t0);
    }
    return (best * 1e6 / n).toFixed(2);
  });
  console.log(`| ${name} | ${ns[0]} | ${ns[1]} |`);
}
