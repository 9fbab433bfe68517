/**
 * The CPU backend's pool of released buffers (kernels/cpu/pool.ts) and the backward pass's early disposal
 * (core/autograd.ts): reuse happens, never changes a result, and never frees what the caller still holds.
 */
import assert from "node:assert/strict";
import {
  backward,
  customGrad,
  Generator,
  gradients,
  memoryStats,
  randn,
  scope,
  setCpuOptions,
  type Tensor,
  tensor,
} from "../../mod.ts";
import { MIN_POOLED_BYTES, setPoolPoison, sizeClass } from "../../kernels/cpu/pool.ts";
import { trainMlp } from "../helpers/mlp_loop.ts";
import { sharedWasmMatmul } from "../../kernels/cpu/wasm/matmul.ts";
import { cpu } from "../../mod.ts";

Deno.test("pool: size classes are 8 per power of two and never smaller than asked", () => {
  for (const bytes of [4096, 4100, 5000, 8191, 8192, 123457, 8 * 261 * 1024 * 4]) {
    const c = sizeClass(bytes);
    assert.ok(c >= bytes && c <= bytes * 1.125, `${bytes} → ${c}`);
    assert.equal(sizeClass(c), c, "a class is its own class");
  }
  assert.equal(sizeClass(8 * 261 * 1024 * 4), sizeClass(8 * 268 * 1024 * 4), "neighbouring MoE shapes share one");
});

Deno.test("pool: a disposed buffer is handed out again, as a view of the length asked for", () => {
  const x = randn([2000]);
  const buf = x.storage.buf as Float32Array;
  const before = memoryStats.reusedBuffers;
  x.dispose();
  const y = randn([1990]); // same size class
  assert.equal(memoryStats.reusedBuffers, before + 1);
  const ybuf = y.storage.buf as Float32Array;
  assert.equal(ybuf.buffer, buf.buffer);
  assert.equal(ybuf.length, 1990);
  y.dispose();
  const z = tensor([1, 2, 3]); // small buffers are not pooled
  assert.notEqual((z.storage.buf as Float32Array).buffer, buf.buffer);
});

Deno.test("pool: poisoned reuse and no reuse give bit-identical training", async () => {
  const run = async () => {
    const { first, last, params } = await trainMlp(cpu, 6);
    return { first, last, w: await Promise.all(params.map((p) => p.data())) };
  };
  const plain = await run();
  const poisoned = setPoolPoison(true);
  try {
    assert.deepEqual(await run(), plain);
  } finally {
    setPoolPoison(poisoned);
  }
  const previous = setCpuOptions({ poolBytes: 0 });
  try {
    // Only the regions of the matmul's WebAssembly memory stay (it cannot shrink; see kernels/cpu/pool.ts).
    assert.equal(memoryStats.pooledBytes, sharedWasmMatmul()?.heap.freeBytes ?? 0);
    assert.deepEqual(await run(), plain);
  } finally {
    setCpuOptions(previous);
  }
});

Deno.test("pool: setCpuOptions validates poolBytes", () => {
  assert.throws(() => setCpuOptions({ poolBytes: -1 }), /poolBytes/);
  assert.throws(() => setCpuOptions({ poolBytes: 1.5 }), /poolBytes/);
});

Deno.test("backward frees consumed gradients early but never the caller's tensors", async () => {
  const gen = new Generator(5);
  const x = randn([64, 64], { generator: gen }).requiresGrad_();
  const saved = randn([64, 64], { generator: gen });
  // A custom VJP that returns a tensor the caller owns: backward must not dispose it.
  const passSaved = customGrad((t: Tensor) => ({ value: t.mul(1), grad: () => [saved] }));
  const seed = randn([64, 64], { generator: gen });
  const [g] = gradients(passSaved(x.tanh()).mul(x).exp(), [x], [seed]);
  assert.equal(saved.isDisposed, false);
  assert.equal(seed.isDisposed, false);
  assert.equal(g.isDisposed, false);
  await saved.data();
  await seed.data();
  // The same gradient with early freeing and without pooling (nothing reused) agrees bit for bit.
  const previous = setCpuOptions({ poolBytes: 0 });
  try {
    const [g2] = gradients(passSaved(x.tanh()).mul(x).exp(), [x], [seed]);
    assert.deepEqual(await g2.data(), await g.data());
  } finally {
    setCpuOptions(previous);
  }
});

Deno.test("backward: a step reuses the previous step's buffers", () => {
  const gen = new Generator(9);
  const w = randn([128, 128], { generator: gen }).requiresGrad_();
  const x = randn([64, 128], { generator: gen });
  const step = () =>
    scope(() => {
      backward(x.matmul(w).gelu().matmul(w).square().mean());
      w.grad!.dispose();
      w.grad = null;
    });
  step();
  const before = { fresh: memoryStats.allocatedBytes, reused: memoryStats.reusedBuffers };
  step();
  assert.ok(memoryStats.reusedBuffers > before.reused);
  // Only buffers too small to pool (scalars, a few bytes each) are allocated again.
  assert.ok(memoryStats.allocatedBytes - before.fresh < MIN_POOLED_BYTES, "the second step allocates no large buffer");
});
