/**
 * One set of Workers for every CPU kernel (`kernels/cpu/threads/pool.ts`, "One set of Workers"): where the
 * kernel Workers can load the kernels (`--allow-read`), the WebAssembly matmul borrows them instead of starting
 * its own, and the same Workers run matmul and elementwise jobs interleaved, with the same bits as one thread.
 * Without the permission the matmul keeps its own pool (checked in `wasm_threads_test.ts`).
 */
import assert from "node:assert/strict";
import { gelu, Generator, randn, setCpuOptions } from "../../mod.ts";
import { kernelPool } from "../../kernels/cpu/threads/pool.ts";
import { createWasmMatmul } from "../../kernels/cpu/wasm/matmul.ts";
import { sharedMemorySupported } from "../../kernels/cpu/wasm/emit.ts";
import { threadsSupported } from "../../kernels/cpu/threads/waiting.ts";
import { filled } from "../helpers/host_rng.ts";

const workerUrl = new URL("../../kernels/cpu/threads/worker.ts", import.meta.url);
const canLoad = Deno.permissions.querySync({ name: "read", path: workerUrl }).state === "granted";

Deno.test({
  name: "shared Workers: matmul and elementwise jobs interleave on the kernel pool's Workers, bits as one thread",
  ignore: !canLoad || !threadsSupported() || !sharedMemorySupported(),
  fn() {
    const before = setCpuOptions({ threads: 2 });
    try {
      const w = createWasmMatmul();
      const [m, k, n] = [192, 160, 224];
      const a = filled(m * k, 21), b = filled(k * n, 22);
      const one = new Float32Array(m * n), many = new Float32Array(m * n);
      w.matmul(a, b, one, m, k, n, { threads: 1 });
      const x = randn([256, 1024], { generator: new Generator(23) });
      const geluOne = (() => {
        setCpuOptions({ threads: 1 });
        const y = gelu(x), bits = y.dataSync().slice();
        y.dispose();
        setCpuOptions({ threads: 2 });
        return bits;
      })();
      const pool = kernelPool()!;
      const start = { matmul: w.workerUnits, kernels: pool.workerUnits, rings: pool.stats.rings };
      const deadline = performance.now() + 30_000;
      // Workers load asynchronously: alternate the two kinds until each has had a Worker's help.
      while (
        (w.workerUnits === start.matmul || pool.workerUnits === start.kernels) && performance.now() < deadline
      ) {
        many.fill(NaN);
        w.matmul(a, b, many, m, k, n, { threads: 2 });
        assert.deepStrictEqual(many, one);
        const y = gelu(x);
        assert.deepStrictEqual(y.dataSync(), geluOne);
        y.dispose();
      }
      assert.ok(w.workerUnits > start.matmul, "no Worker joined a matmul job within 30 s");
      assert.ok(pool.workerUnits > start.kernels, "no Worker joined an elementwise job within 30 s");
      assert.ok(w.borrowing, "the matmul started Workers of its own");
      assert.equal(w.workers, pool.size);
      assert.ok(pool.stats.rings > start.rings);
    } finally {
      setCpuOptions(before);
    }
  },
});
