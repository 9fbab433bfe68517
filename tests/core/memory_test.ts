import assert from "node:assert/strict";
import { cpu, keep, memoryStats, ones, randn, scope, type Tensor, tensor } from "../../mod.ts";
import { snapshot, trainMlp } from "../helpers/mlp_loop.ts";

Deno.test("scope disposes what it created except its result, which moves to the parent scope", () => {
  const before = snapshot();
  let inner: Tensor | undefined;
  const outer = scope(() => {
    inner = scope(() => {
      const a = ones([4]);
      return a.mul(2).add(1); // a and a.mul(2) die here
    });
    assert.equal(memoryStats.liveTensors - before.tensors, 1);
    return inner.sum();
  });
  assert.equal(inner!.isDisposed, true); // not returned by the outer scope
  assert.equal(outer.isDisposed, false);
  assert.equal(memoryStats.liveTensors - before.tensors, 1);
  outer.dispose();
  assert.deepEqual(snapshot(), before);
});

Deno.test("scope keeps tensors inside returned arrays, objects and maps, and keep() exempts one", () => {
  const before = snapshot();
  let kept: Tensor | undefined;
  const out = scope(() => {
    kept = keep(ones([2]));
    ones([3]);
    return { list: [ones([1]), ones([1])], map: new Map([["a", ones([1])]]) };
  });
  assert.equal(memoryStats.liveTensors - before.tensors, 4);
  for (const t of [...out.list, out.map.get("a")!, kept!]) t.dispose();
  assert.deepEqual(snapshot(), before);
});

Deno.test("async scopes stay correct across await and do not see each other's tensors", async () => {
  const before = snapshot();
  const tick = () => new Promise((r) => setTimeout(r, 1));
  const work = (n: number) =>
    scope(async () => {
      let acc = ones([8]);
      for (let i = 0; i < 5; i++) {
        await tick(); // the other scope runs here
        acc = acc.add(n);
      }
      return acc;
    });
  const [a, b] = await Promise.all([work(1), work(10)]);
  assert.deepEqual(Array.from(await a.data()), new Array(8).fill(6));
  assert.deepEqual(Array.from(await b.data()), new Array(8).fill(51));
  assert.equal(memoryStats.liveTensors - before.tensors, 2);
  a.dispose();
  b.dispose();
  assert.deepEqual(snapshot(), before);
});

Deno.test("a scope that throws still disposes, and the error propagates", async () => {
  const before = snapshot();
  assert.throws(() =>
    scope(() => {
      ones([3]);
      throw new Error("boom");
    }), /boom/);
  await assert.rejects(() =>
    scope(async () => {
      ones([3]);
      await Promise.resolve();
      throw new Error("async boom");
    }), /async boom/);
  assert.deepEqual(snapshot(), before);
});

Deno.test("dispose is idempotent, shared storage survives until its last view, use after dispose fails", () => {
  const before = snapshot();
  const a = tensor([1, 2, 3, 4]);
  const r = a.reshape(2, 2);
  a.dispose();
  a.dispose();
  assert.equal(memoryStats.liveBuffers - before.buffers, 1); // r still holds the storage
  assert.deepEqual(Array.from(r.dataSync()), [1, 2, 3, 4]);
  r.dispose();
  assert.deepEqual(snapshot(), before);
  assert.throws(() => r.add(1), /a disposed tensor of shape \[2, 2\] was used/);
});

Deno.test("assign_ updates in place, checks shapes, and refuses tracked tensors outside noGrad", async () => {
  const p = tensor([1, 2]).requiresGrad_();
  assert.throws(() => p.assign_(tensor([0, 0])), /assign_: in-place update of a tensor that requires grad/);
  const q = tensor([1, 2]);
  q.assign_(tensor([5, 6]));
  assert.deepEqual(Array.from(await q.data()), [5, 6]);
  assert.throws(() => q.assign_(tensor([1, 2, 3])), /assign_: source f32 \[3\] does not match target f32 \[2\]/);
});

Deno.test(".grad survives the scope that ran backward, and accumulation frees the old gradient", () => {
  const w = randn([3]).requiresGrad_();
  const before = snapshot();
  scope(() => w.mul(w).sum().backward());
  assert.equal(memoryStats.liveTensors - before.tensors, 1); // only w.grad
  scope(() => w.mul(2).sum().backward()); // accumulates: the new sum replaces (and frees) the old grad
  assert.equal(memoryStats.liveTensors - before.tensors, 1);
  w.grad!.dispose();
  w.grad = null;
  assert.deepEqual(snapshot(), before);
});

Deno.test("1000 steps of MLP forward + backward + SGD on the CPU leave the live counters flat", async () => {
  const warm = await trainMlp(cpu, 5);
  warm.params.forEach((t) => t.dispose());
  const before = snapshot();
  const { first, last, params } = await trainMlp(cpu, 1000);
  assert.ok(last < first * 0.5, `loss should fall: ${first} → ${last}`);
  params.forEach((t) => t.dispose());
  assert.deepEqual(snapshot(), before);
});
