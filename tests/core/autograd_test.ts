import assert from "node:assert/strict";
import {
  customGrad,
  customGradMulti,
  enableGrad,
  full,
  grad,
  gradients,
  isGradEnabled,
  noGrad,
  ones,
  type Tensor,
  tensor,
  valueAndGrad,
  zeros,
} from "../../mod.ts";

const f64 = (data: number[] | number[][]) => tensor(data, { dtype: "f64" });
const values = async (t: Tensor | null) => Array.from(await t!.data());

Deno.test("backward accumulates into .grad across calls, like PyTorch", async () => {
  const w = f64([1, 2, 3]).requiresGrad_();
  w.mul(w).sum().backward();
  assert.deepEqual(await values(w.grad), [2, 4, 6]);
  w.mul(3).sum().backward();
  assert.deepEqual(await values(w.grad), [5, 7, 9]);
});

Deno.test("a tensor used twice receives the sum of both paths", async () => {
  const x = f64([2]).requiresGrad_();
  const y = x.mul(x).add(x.exp()); // d/dx = 2x + e^x
  y.sum().backward();
  assert.ok(Math.abs((await values(x.grad))[0] - (4 + Math.exp(2))) < 1e-12);
});

Deno.test("only leaves (and retainGrad tensors) get .grad", async () => {
  const x = f64([1, 2]).requiresGrad_();
  const h = x.mul(2).retainGrad();
  const z = x.mul(3);
  h.mul(z).sum().backward(); // d/dh = z = 3x, d/dx = 2·3x + 3·2x = 12x
  assert.deepEqual(await values(h.grad), [3, 6]);
  assert.equal(z.grad, null);
  assert.deepEqual(await values(x.grad), [12, 24]);
});

Deno.test("noGrad records nothing, enableGrad re-enables, async callbacks are rejected", () => {
  const x = f64([1]).requiresGrad_();
  const y = noGrad(() => {
    assert.equal(isGradEnabled(), false);
    const inner = enableGrad(() => x.mul(2));
    assert.equal(inner.requiresGrad, true);
    return x.mul(2);
  });
  assert.equal(y.requiresGrad, false);
  assert.equal(y.node, null);
  assert.equal(isGradEnabled(), true);
  assert.throws(() => noGrad(() => Promise.resolve(1)), /noGrad: the callback must be synchronous/);
  assert.equal(isGradEnabled(), true);
});

Deno.test("detach cuts the graph and shares storage", async () => {
  const x = f64([1, 2]).requiresGrad_();
  const d = x.mul(2).detach();
  assert.equal(d.requiresGrad, false);
  const y = x.mul(d).sum(); // d is a constant: dy/dx = d
  y.backward();
  assert.deepEqual(await values(x.grad), [2, 4]);
  assert.equal(x.stopGradient().storage, x.storage);
});

Deno.test("integer and comparison results never require grad", () => {
  const x = f64([1, -2]).requiresGrad_();
  assert.equal(x.gt(0).requiresGrad, false);
  assert.equal(x.argmax().requiresGrad, false);
  assert.equal(x.astype("i32").requiresGrad, false);
  assert.equal(x.topk(1).indices.requiresGrad, false);
  assert.equal(x.topk(1).values.requiresGrad, true);
});

Deno.test("backward on a non-scalar needs an explicit gradient of the same shape", async () => {
  const x = f64([1, 2, 3]).requiresGrad_();
  const y = x.mul(x);
  assert.throws(() => y.backward(), /backward: a gradient must be given for a non-scalar output of shape \[3\]/);
  assert.throws(() => y.backward(ones([2], { dtype: "f64" })), /backward: gradient of shape \[2\] does not match/);
  y.backward(f64([1, 0, 2]));
  assert.deepEqual(await values(x.grad), [2, 0, 12]);
  assert.throws(() => f64([1]).sum().backward(), /does not depend on any tensor that requires grad/);
});

Deno.test("gradients() leaves .grad alone and returns zeros for unused inputs", async () => {
  const a = f64([1, 2]).requiresGrad_();
  const b = f64([5]).requiresGrad_();
  const [ga, gb] = gradients(a.mul(a).sum(), [a, b]);
  assert.deepEqual(await values(ga), [2, 4]);
  assert.deepEqual(await values(gb), [0]);
  assert.equal(a.grad, null);
});

Deno.test("grad and valueAndGrad: argnums, values, and no leak into the caller's graph", async () => {
  const f = (x: Tensor, y: Tensor) => x.mul(y).sum().add(y.square().sum());
  const x = f64([1, 2]), y = f64([3, 4]);
  assert.deepEqual(await values(grad(f)(x, y)), [3, 4]);
  const [gx, gy] = grad(f, [0, 1])(x, y);
  assert.deepEqual(await values(gx), [3, 4]);
  assert.deepEqual(await values(gy), [1 + 6, 2 + 8]);
  const { value, grads } = valueAndGrad(f)(x, y);
  assert.equal(await value.item(), 3 + 8 + 9 + 16);
  assert.equal(grads.length, 2);
  assert.equal(value.requiresGrad, false);
  assert.equal(x.requiresGrad, false);
  assert.throws(
    () => grad((t: Tensor) => t.mul(2))(x),
    /grad: the function must return a scalar Tensor, got shape \[2\]/,
  );
  assert.throws(() => grad(f, 2)(x, y), /argnum 2 is out of range/);
  assert.throws(() => grad((t: Tensor) => t.sum())(tensor([1], { dtype: "i32" })), /gradients need f32 or f64/);
});

Deno.test("grad works inside noGrad (it enables recording for its own function)", async () => {
  const g = noGrad(() => grad((t: Tensor) => t.square().sum())(f64([3])));
  assert.deepEqual(await values(g), [6]);
});

Deno.test("grad of grad of grad: d³/dx³ x⁴ = 24x", async () => {
  const d1 = grad((x: Tensor) => x.pow(4).sum()); // 4x³ elementwise
  const d2 = grad((x: Tensor) => d1(x).sum()); // 12x²
  const d3 = grad((x: Tensor) => d2(x).sum()); // 24x
  assert.deepEqual(await values(d3(f64([0.5, 2]))), [12, 48]);
});

Deno.test("backward with createGraph makes .grad differentiable", async () => {
  const x = f64([1.5]).requiresGrad_();
  x.pow(3).sum().backward(undefined, { createGraph: true });
  const g = x.grad!; // 3x²
  assert.equal(g.requiresGrad, true);
  const [h] = gradients(g.sum(), [x]); // 6x
  assert.deepEqual(await values(h), [9]);
});

Deno.test("customGrad: the custom VJP replaces the derivative; several outputs, int outputs skipped", async () => {
  // Forward: (round(x), argmax index); backward: straight-through ×2.
  const op = customGradMulti((x: Tensor) => ({
    value: [x.gt(0.5).astype("f64"), x.argmax()],
    grad: ([g]) => [g.mul(2)],
  }));
  const x = f64([0.2, 0.9]).requiresGrad_();
  const [r, idx] = op(x);
  assert.equal(r.requiresGrad, true);
  assert.equal(idx.requiresGrad, false);
  assert.equal(await idx.item(), 1);
  r.mul(f64([1, 3])).sum().backward();
  assert.deepEqual(await values(x.grad), [2, 6]);
  const bad = customGrad((t: Tensor) => ({ value: t.mul(1), grad: () => [zeros([5], { dtype: "f64" })] }));
  assert.throws(
    () => bad(f64([1, 2]).requiresGrad_()).sum().backward(),
    /customGrad: gradient 0 has shape \[5\] but input 0 has shape \[2\]/,
  );
});

Deno.test("customGrad can return an input unchanged without corrupting the graph", async () => {
  const identity = customGrad((t: Tensor) => ({ value: t, grad: (g) => [g.mul(10)] }));
  const x = f64([1]).requiresGrad_();
  identity(x).sum().backward();
  assert.equal(x.node, null);
  assert.deepEqual(await values(x.grad), [10]);
});

Deno.test("a 20000-op chain backpropagates without overflowing the stack", async () => {
  const x = full([1], 1, { dtype: "f64" }).requiresGrad_();
  let y = x;
  for (let i = 0; i < 20000; i++) y = y.add(1);
  y.sum().backward();
  assert.deepEqual(await values(x.grad), [1]);
});

Deno.test("float casts are differentiable and give the gradient in the input dtype", async () => {
  const x = f64([1, 2]).requiresGrad_();
  const y = x.astype("f32").mul(2).astype("f64").sum();
  y.backward();
  assert.equal(x.grad!.dtype, "f64");
  assert.deepEqual(await values(x.grad), [2, 2]);
});

Deno.test("clone copies storage and passes gradients; to() moves between devices without a graph link", async () => {
  const x = f64([1, 2]).requiresGrad_();
  const c = x.clone();
  assert.notEqual(c.storage, x.storage);
  c.mul(3).sum().backward();
  assert.deepEqual(await values(x.grad), [3, 3]);
  const { cpu } = await import("../../mod.ts");
  assert.equal(await x.to(cpu), x);
});
