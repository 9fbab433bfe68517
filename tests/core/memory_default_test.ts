/**
 * Memory is safe by default: a CPU training loop written without `scope()` does not grow, and backward
 * frees the graph it consumed (a second backward through it is an error, as in PyTorch).
 *
 * The loop test cannot force a garbage collection (`deno test` takes no per-file V8 flags), so it lets the
 * event loop turn every 100 steps, as a real loop's logging and I/O do: that is when the collector's
 * finalization callbacks run. When a collection comes depends on everything else the process did, so the
 * live counts rise and fall in a saw-tooth: in plain `deno test` (every file in one process) step 3000's live
 * bytes were 4.5–8.8 MB over step 100's in three runs, against an 8 MB bound. What a leak raises step after
 * step is the saw-tooth's floor, so the test compares the lowest counts of the first and of the last ten
 * snapshots. What backward itself creates is released deterministically (the last tests).
 */
import assert from "node:assert/strict";
import { AdamW, backward, Generator, gradients, Linear, memoryStats, randn, tensor } from "../../mod.ts";
import { snapshot } from "../helpers/mlp_loop.ts";

const turnEventLoop = () => new Promise((r) => setTimeout(r, 0));
const MB = 1024 * 1024;

Deno.test("3000 CPU training steps without scope(): live counters stay flat and RSS does not grow", async () => {
  const gen = new Generator(7);
  const x = randn([32, 16], { generator: gen });
  const y = randn([32, 16], { generator: gen });
  const l1 = new Linear(16, 64, { generator: gen }), l2 = new Linear(64, 16, { generator: gen });
  const params = [...l1.parameters(), ...l2.parameters()];
  const opt = new AdamW(params, { lr: 1e-3 });
  const at = new Map<number, { tensors: number; buffers: number; bytes: number; rss: number }>();
  let first = NaN, last = NaN;
  for (let step = 1; step <= 3000; step++) {
    const loss = l2.forward(l1.forward(x).relu()).sub(y).square().mean();
    loss.backward();
    opt.step();
    opt.zeroGrad();
    if (step === 1) first = loss.dataSync()[0];
    if (step === 3000) last = loss.dataSync()[0];
    if (step % 100 === 0) {
      await turnEventLoop();
      at.set(step, { ...snapshot(), rss: Deno.memoryUsage().rss });
    }
  }
  assert.ok(last < first * 0.5, `loss should fall: ${first} → ${last}`);
  const [s500, s3000] = [at.get(500)!, at.get(3000)!];
  const floor = (from: number) => {
    const snaps = Array.from({ length: 10 }, (_, i) => at.get(from + 100 * i)!);
    return {
      tensors: Math.min(...snaps.map((x) => x.tensors)),
      buffers: Math.min(...snaps.map((x) => x.buffers)),
      bytes: Math.min(...snaps.map((x) => x.bytes)),
    };
  };
  const [early, late] = [floor(100), floor(2100)];
  const report = `floor of steps 100–1000: ${JSON.stringify(early)}; of steps 2100–3000: ${JSON.stringify(late)}`;
  // Before the fix, every step left ~40 tensors alive for good (+120 000 over the run). What remains now is
  // the forward garbage that the collector has not reached yet: bounded, whatever the number of steps.
  assert.ok(late.tensors - early.tensors < 5000, `liveTensors grew: ${report}`);
  assert.ok(late.buffers - early.buffers < 3000, `liveBuffers grew: ${report}`);
  assert.ok(late.bytes - early.bytes < 8 * MB, `liveBytes grew: ${report}`);
  // Before the fix RSS rose by ~200 MB here; now by 3–40 MB (allocator and heap noise, seen on a busy host).
  assert.ok(s3000.rss - s500.rss < 100 * MB, `RSS grew by ${((s3000.rss - s500.rss) / MB).toFixed(1)} MB`);
  opt.dispose();
});

Deno.test("backward disposes its own temporaries: only the new .grad tensors stay alive", () => {
  const w = randn([8, 8]).requiresGrad_();
  const b = randn([8]).requiresGrad_();
  const x = randn([4, 8]);
  const loss = x.matmul(w).add(b).tanh().square().mean();
  const other = x.matmul(w).sum();
  const before = snapshot();
  loss.backward();
  assert.equal(memoryStats.liveTensors - before.tensors, 2); // w.grad and b.grad
  const [gw] = gradients(other, [w]);
  assert.equal(memoryStats.liveTensors - before.tensors, 3); // + gw
  gw.dispose();
  w.grad!.dispose();
  b.grad!.dispose();
  assert.deepEqual(snapshot(), before);
});

Deno.test("a second backward through a freed graph throws and says how to keep it", () => {
  const w = tensor([1, 2]).requiresGrad_();
  const h = w.mul(3);
  const loss = h.sum();
  loss.backward();
  assert.equal(loss.node!.freed, true);
  assert.deepEqual(loss.node!.inputs, []); // the saved tensors are no longer reachable through the graph
  assert.deepEqual(Array.from(h.dataSync()), [3, 6]); // the tensors themselves stay readable
  const again =
    /backward: this graph \(at op "sum"\) was already freed by an earlier backward\(\); pass \{ retainGraph: true \}/;
  assert.throws(() => loss.backward(), again);
  assert.deepEqual(Array.from(w.grad!.dataSync()), [3, 3]); // not doubled
  // Another output that shares part of the graph cannot go back through the freed part either.
  assert.throws(() => h.square().sum().backward(), /this graph \(at op "mul"\) was already freed/);
  assert.throws(() => gradients(loss, [w]), /gradients: this graph .* was already freed/);
});

Deno.test("retainGraph keeps the graph: a second backward accumulates, as in PyTorch", () => {
  const w = tensor([1, 2]).requiresGrad_();
  const loss = w.square().sum();
  backward(loss, undefined, { retainGraph: true });
  assert.equal(loss.node!.freed, false);
  backward(loss);
  assert.deepEqual(Array.from(w.grad!.dataSync()), [4, 8]);
  assert.equal(loss.node!.freed, true);
  // gradients() follows the same rule; createGraph implies retainGraph.
  const v = tensor([3]).requiresGrad_();
  const out = v.mul(v).sum();
  gradients(out, [v], undefined, { createGraph: true });
  const [g] = gradients(out, [v]);
  assert.deepEqual(Array.from(g.dataSync()), [6]);
  assert.throws(() => gradients(out, [v]), /already freed/);
});
