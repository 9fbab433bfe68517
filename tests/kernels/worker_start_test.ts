/**
 * Starting the first kernel Worker inside an op runs no other pending JavaScript (`kernels/cpu/start_worker.ts`).
 *
 * Deno loads `node:stream` lazily on the first `Worker` construction, which runs a microtask checkpoint; before
 * the fix, a kernel that started the first Worker inside one loop's `noGrad` resumed another async loop there,
 * and that loop's training step ran with recording off. The first Worker is started only once per runtime (and
 * every test file has its own), so this file holds this one test; it runs in a timer callback, where a
 * checkpoint runs the pending continuations (a promise continuation would suppress it).
 */
import assert from "node:assert/strict";
import { noGrad, setCpuOptions, tensor } from "../../mod.ts";
import { kernelPool, setThreadMinimums } from "../../kernels/cpu/threads/pool.ts";

Deno.test({
  name: "the first kernel Worker starts inside noGrad without resuming another async training loop there",
  ignore: kernelPool() === null,
  async fn() {
    assert.equal(kernelPool()!.size, 0, "this test must start the runtime's first Worker");
    const before = setCpuOptions({ threads: 2 });
    const minimums = setThreadMinimums({ softmax: 1 });
    try {
      const w = tensor([0.5, -1, 2, 0.25], { shape: [2, 2] }).requiresGrad_();
      const x = tensor([1, 2, 3, 4, 5, 6, 7, 8], { shape: [4, 2] });
      const order: string[] = [];
      const { other } = await new Promise<{ other: Promise<string> }>((resolve) =>
        setTimeout(() => {
          // Another loop, waiting for a settled promise: it must resume after this callback, not inside it.
          const other = (async () => {
            await null;
            order.push("other loop's step");
            try {
              x.matmul(w).square().sum().backward();
              return w.grad === null ? "no gradient" : "ok";
            } catch (e) {
              return String(e);
            }
          })();
          noGrad(() => {
            // Four rows with a minimum of 1: the softmax is split over the pool, which starts its first Worker.
            x.softmax(-1).dispose();
            order.push("evaluation's softmax");
          });
          resolve({ other });
        }, 0)
      );
      assert.equal(await other, "ok", "the other loop's step recorded its tape");
      assert.deepEqual(order, ["evaluation's softmax", "other loop's step"], "the other loop ran inside the kernel");
      assert.ok(kernelPool()!.size > 0, "the softmax started a Worker");
    } finally {
      setThreadMinimums(minimums);
      setCpuOptions(before);
    }
  },
});
