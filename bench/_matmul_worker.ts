/**
 * A module Worker for `_fma_ceiling.ts`: its own moegrad, on one thread, multiplying two 192 × 192 f32
 * matrices (the WebAssembly SIMD kernel, L2-resident, so bound by the core's multiply-add throughput rather than
 * by memory) as many times as each message says, replying when done. Two such Workers side by side show what
 * two cores give FMA-bound work, which a pure arithmetic loop does not (it waits on latency, not on the vector
 * units that SMT siblings share).
 *
 * @module
 */
import { Generator, matmul, randn, scope, setCpuOptions } from "../mod.ts";

setCpuOptions({ threads: 1, matmul: "wasm" });
const gen = new Generator(1);
const a = randn([192, 192], { generator: gen }), b = randn([192, 192], { generator: gen });

/** The Worker's global scope (its type is not in the default lib this file is checked with). */
const worker = self as unknown as {
  onmessage: (e: MessageEvent<number>) => void;
  postMessage(message: number): void;
};
worker.onmessage = (e) => {
  for (let i = 0; i < e.data; i++) scope(() => matmul(a, b));
  worker.postMessage(e.data);
};
