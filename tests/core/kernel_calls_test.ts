/**
 * Kernel calls from ops are typed by the registry (`kernels/registry.ts`): the number of inputs and outputs
 * and the attributes of kernel K come from its declaration. Each `@ts-expect-error` below fails the type
 * check (and so `deno test`) if the call it marks ever compiles.
 */
import assert from "node:assert/strict";
import { type OutSpec, run1, runKernel, runKernelInto } from "../../core/engine.ts";
import { tensor } from "../../mod.ts";

const f32: OutSpec = { shape: [2], dtype: "f32" };
const i32: OutSpec = { shape: [2], dtype: "i32" };

Deno.test("kernel calls: inputs, outputs and attributes follow the registry's declaration", () => {
  const x = tensor([2, 1]);
  const y = run1("test", "unary", [x], f32, { op: "neg" });
  assert.deepEqual([...y.dataSync()], [-2, -1]);
  // A two-output kernel gives a typed pair.
  const [values, indices] = runKernel("test", "sort", [x], [f32, i32], { descending: false });
  assert.deepEqual([...values.dataSync(), ...indices.dataSync()], [1, 2, 1, 0]);
  // A variadic kernel takes a list.
  const list = [x, x, x];
  assert.deepEqual(run1("test", "concat", list, { shape: [6], dtype: "f32" }, { axis: 0 }).shape, [6]);
  runKernelInto("test", "cast", [y], [x], {});
  assert.deepEqual([...x.dataSync()], [-2, -1]);
});

Deno.test("kernel calls: a call that does not match the registry does not type-check", () => {
  const x = tensor([2, 1]);
  const wrong = () => {
    // @ts-expect-error unary takes one input
    run1("test", "unary", [x, x], f32, { op: "neg" });
    // @ts-expect-error where takes three inputs
    run1("test", "where", [x, x], f32, {});
    // @ts-expect-error unary's attributes are { op }
    run1("test", "unary", [x], f32, { axis: 0 });
    // @ts-expect-error the input must be a tensor
    run1("test", "unary", [[2, 1]], f32, { op: "neg" });
    // @ts-expect-error topk has two outputs, so run1 (one output) cannot run it
    run1("test", "topk", [x], f32, { k: 1, largest: true });
    // @ts-expect-error sort needs one output spec per output
    runKernel("test", "sort", [x], [f32], { descending: false });
    // @ts-expect-error sort gives two tensors, not three
    const [, , _third] = runKernel("test", "sort", [x], [f32, i32], { descending: false });
    // @ts-expect-error fill takes no inputs
    runKernelInto("test", "fill", [x], [x], { value: 0 });
  };
  assert.equal(typeof wrong, "function"); // never called: the point is that it does not compile
});
