/**
 * f32 matmul at 512² and 1024²: our run-time-emitted WebAssembly SIMD kernel against the TypeScript
 * blocked kernel (`matmulBlocked`) and, as the external peer, `@tensorflow/tfjs-backend-wasm` 4.22.0 on one
 * thread (XNNPACK). Every timed call includes packing/copying in and out (tfjs: `matMul` + `dataSync`).
 *
 *     deno bench --allow-read --allow-env bench/wasm_matmul_bench.ts
 *
 * tfjs needs --allow-read (its .wasm is read from node_modules/the npm cache); without it that row is
 * skipped. A GFLOP/s table (2·n³ / median ms) is printed after deno bench's own table.
 */
import * as tf from "@tensorflow/tfjs-core";
import { setThreadsCount } from "@tensorflow/tfjs-backend-wasm";
import { matmulBlocked } from "../kernels/cpu/matmul.ts";
import { createWasmMatmul } from "../kernels/cpu/wasm/matmul.ts";
import { filled, MatmulTimes } from "./_timing.ts";

const SIZES = [512, 1024];

let tfjsReady = false;
try {
  setThreadsCount(1);
  tfjsReady = await tf.setBackend("wasm");
  await tf.ready();
} catch (e) {
  console.warn(`tfjs-backend-wasm unavailable: ${(e as Error).message}`);
}

const times = new MatmulTimes();

const WASM = "ours: wasm simd", TS = "ours: ts blocked", TFJS = "tfjs-backend-wasm";
const wasm = createWasmMatmul();

for (const size of SIZES) {
  const a = filled(size * size, 1), b = filled(size * size, 2);
  const outWasm = new Float32Array(size * size), outTs = new Float32Array(size * size);
  const runWasm = () => wasm.matmul(a, b, outWasm, size, size, size);
  const runTs = () => matmulBlocked(a, 0, b, 0, outTs, 1, size, size, size, false, false);
  runWasm();
  runTs();
  for (let i = 0; i < size * size; i++) {
    if (!(Math.abs(outWasm[i] - outTs[i]) <= 1e-3 * (1 + Math.abs(outTs[i])))) {
      throw new Error(`${size}²: wasm ${outWasm[i]} vs ts ${outTs[i]} at ${i}`);
    }
  }
  const group = `matmul f32 ${size}³`;
  const opts = { group, n: size >= 1024 ? 5 : 15, warmup: 2 };
  Deno.bench({ ...opts, name: `${WASM} ${size}`, baseline: true, fn: times.timed(`${WASM} ${size}`, size, runWasm) });
  Deno.bench({ ...opts, name: `${TS} ${size}`, fn: times.timed(`${TS} ${size}`, size, runTs) });
  if (tfjsReady) {
    const ta = tf.tensor2d(a, [size, size]), tb = tf.tensor2d(b, [size, size]);
    const runTfjs = () => {
      const c = tf.matMul(ta, tb);
      c.dataSync();
      c.dispose();
    };
    const got = tf.matMul(ta, tb).dataSync();
    for (let i = 0; i < size * size; i++) {
      if (!(Math.abs(got[i] - outTs[i]) <= 1e-3 * (1 + Math.abs(outTs[i])))) {
        throw new Error(`${size}²: tfjs ${got[i]} vs ts ${outTs[i]} at ${i}`);
      }
    }
    Deno.bench({ ...opts, name: `${TFJS} ${size}`, fn: times.timed(`${TFJS} ${size}`, size, runTfjs) });
  }
}

globalThis.addEventListener("unload", () => {
  const rows: string[] = [];
  for (const size of SIZES) {
    for (const name of [WASM, TS, TFJS]) {
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
