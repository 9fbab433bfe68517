/**
 * Forward values of every op against hand-computed cases (expected numbers are worked out by hand or from
 * the defining formula with `Math`, never by running moegrad).
 */
import assert from "node:assert/strict";
import {
  abs,
  add,
  arange,
  argmax,
  argmin,
  argsort,
  clamp,
  concat,
  cos,
  crossEntropy,
  cumsum,
  div,
  dropout,
  embedding,
  eq,
  erf,
  exp,
  expand,
  flatten,
  full,
  fullLike,
  gather,
  ge,
  gelu,
  Generator,
  gt,
  indexAdd,
  indexSelect,
  isnan,
  le,
  log,
  logicalAnd,
  logicalNot,
  logicalOr,
  logSoftmax,
  logsumexp,
  lt,
  matmul,
  max,
  maximum,
  mean,
  min,
  minimum,
  mul,
  narrow,
  ne,
  neg,
  oneHot,
  ones,
  onesLike,
  permute,
  pow,
  rand,
  relu,
  reshape,
  rsqrt,
  scatterAdd,
  sigmoid,
  sign,
  silu,
  sin,
  slice,
  sliceScatter,
  softmax,
  sort,
  split,
  sqrt,
  squeeze,
  stack,
  sub,
  sum,
  tanh,
  type Tensor,
  tensor,
  topk,
  transpose,
  unsqueeze,
  where,
  zeros,
  zerosLike,
} from "../../mod.ts";

// ---- helpers ------------------------------------------------------------------------------------------

/** The elements as plain numbers, with −0 read as 0 (deepStrictEqual tells them apart). */
async function vals(x: Tensor): Promise<number[]> {
  return Array.from(await x.data(), (v) => (v === 0 ? 0 : v));
}

/** Exact elements (and optionally dtype and shape). */
async function same(x: Tensor, expected: readonly number[], dtype?: string, shape?: readonly number[]) {
  assert.deepEqual(await vals(x), [...expected]);
  if (dtype !== undefined) assert.equal(x.dtype, dtype);
  if (shape !== undefined) assert.deepEqual([...x.shape], [...shape]);
}

/** Elements within `tol`·max(1, |expected|); NaN and ±∞ must match exactly. */
async function close(x: Tensor, expected: readonly number[], tol = 1e-6) {
  const got = await vals(x);
  assert.equal(got.length, expected.length, `length ${got.length} vs ${expected.length}`);
  got.forEach((g, i) => {
    const e = expected[i];
    if (Number.isNaN(e) || !Number.isFinite(e)) {
      assert.ok(Object.is(g, e) || (e === 0 && g === 0), `element ${i}: got ${g}, expected ${e}`);
    } else {
      assert.ok(Math.abs(g - e) <= tol * Math.max(1, Math.abs(e)), `element ${i}: got ${g}, expected ${e} ± ${tol}`);
    }
  });
}

const f64 = { dtype: "f64" } as const;
const i32 = { dtype: "i32" } as const;
const f = Math.fround;

// ---- creation -----------------------------------------------------------------------------------------

Deno.test("creation ops", async (t) => {
  await t.step("tensor from nested arrays", async () => {
    const x = tensor([[1, 2, 3], [4, 5, 6]]);
    await same(x, [1, 2, 3, 4, 5, 6], "f32", [2, 3]);
    assert.equal(x.rank, 2);
    assert.equal(x.size, 6);
    assert.deepEqual(await x.array(), [[1, 2, 3], [4, 5, 6]]);
    await same(tensor([[[1], [2]]]), [1, 2], "f32", [1, 2, 1]);
  });
  await t.step("tensor from a scalar", async () => {
    const x = tensor(5);
    await same(x, [5], "f32", []);
    assert.equal(x.rank, 0);
    assert.equal(x.size, 1);
    assert.equal(await x.item(), 5);
    assert.equal(await x.array(), 5);
  });
  await t.step("tensor from flat data + shape", async () => {
    const x = tensor([1, 2, 3, 4, 5, 6], { shape: [3, 2] });
    assert.deepEqual(await x.array(), [[1, 2], [3, 4], [5, 6]]);
    await same(tensor([7], { shape: [] }), [7], "f32", []);
  });
  await t.step("tensor from typed arrays (copied)", async () => {
    const src = new Float64Array([1.5, -2.25]);
    const x = tensor(src, f64);
    src[0] = 100;
    await same(x, [1.5, -2.25], "f64", [2]);
    await same(tensor(new Int32Array([1, 2, 3, 4]), { shape: [2, 2], dtype: "i32" }), [1, 2, 3, 4], "i32", [2, 2]);
    await same(tensor(new Float32Array([0.5, 2])), [0.5, 2], "f32", [2]);
    assert.ok((await tensor(new Float32Array([1]), f64).data()) instanceof Float64Array);
  });
  await t.step("bool data gives a bool tensor", async () => {
    const m = tensor([[true, false], [false, true]]);
    await same(m, [1, 0, 0, 1], "bool", [2, 2]);
    assert.ok((await m.data()) instanceof Uint8Array);
    assert.deepEqual(await m.array(), [[1, 0], [0, 1]]);
  });
  await t.step("empty tensors", async () => {
    await same(tensor([]), [], "f32", [0]);
    await same(tensor([[]]), [], "f32", [1, 0]);
    await same(zeros([2, 0]), [], "f32", [2, 0]);
    assert.deepEqual(await zeros([2, 0]).array(), [[], []]);
  });
  await t.step("zeros, ones, full", async () => {
    await same(zeros([2, 2]), [0, 0, 0, 0], "f32", [2, 2]);
    await same(ones([3], f64), [1, 1, 1], "f64", [3]);
    await same(full([2], 7, i32), [7, 7], "i32", [2]);
    await same(full([], -2.5), [-2.5], "f32", []);
    await same(full([2], 0.1), [f(0.1), f(0.1)], "f32");
    await same(full([2], 0.1, f64), [0.1, 0.1], "f64");
    await same(full([2], Infinity), [Infinity, Infinity]);
  });
  await t.step("full stores what the dtype can hold (bool 0/1, i32 truncated)", async () => {
    await same(full([3], 2, { dtype: "bool" }), [1, 1, 1], "bool");
    await same(full([3], 2, { dtype: "bool" }).sum(), [3], "i32");
    await same(full([2], 0, { dtype: "bool" }), [0, 0], "bool");
    await same(full([2], 1.9, i32), [1, 1], "i32");
    await same(full([2], -1.9, i32), [-1, -1], "i32");
  });
  await t.step("zerosLike, onesLike, fullLike", async () => {
    const x = tensor([[1, 2, 3]], i32);
    await same(zerosLike(x), [0, 0, 0], "i32", [1, 3]);
    await same(onesLike(x), [1, 1, 1], "i32", [1, 3]);
    await same(fullLike(x, 4), [4, 4, 4], "i32", [1, 3]);
    await same(zerosLike(x, f64), [0, 0, 0], "f64", [1, 3]);
    await same(onesLike(tensor([true])), [1], "bool", [1]);
  });
  await t.step("arange with integer arguments gives i32", async () => {
    await same(arange(5), [0, 1, 2, 3, 4], "i32", [5]);
    await same(arange(2, 5), [2, 3, 4], "i32", [3]);
    await same(arange(0, 10, 3), [0, 3, 6, 9], "i32", [4]);
    await same(arange(3, 3), [], "i32", [0]);
    await same(arange(5, 2), [], "i32", [0]);
    await same(arange(0, 3, 1, f64), [0, 1, 2], "f64");
  });
  await t.step("arange with float steps", async () => {
    await same(arange(0, 1, 0.25), [0, 0.25, 0.5, 0.75], "f32", [4]);
    // ceil((1 − 0) / 0.1) = 10 elements; value i is i·0.1 rounded to f32.
    const x = arange(0, 1, 0.1);
    assert.equal(x.size, 10);
    await same(x, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => f(i * 0.1)), "f32");
    await same(arange(0, 1, 0.1, f64), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => i * 0.1), "f64");
    await same(arange(0.5, 3), [0.5, 1.5, 2.5], "f32");
  });
  await t.step("arange with negative steps", async () => {
    await same(arange(5, 0, -1), [5, 4, 3, 2, 1], "i32");
    await same(arange(5, 0, -2), [5, 3, 1], "i32");
    await same(arange(1, 0, -0.25), [1, 0.75, 0.5, 0.25], "f32");
    await same(arange(0, 5, -1), [], "i32", [0]);
  });
});

// ---- dtypes ----------------------------------------------------------------------------------------

Deno.test("dtypes", async (t) => {
  await t.step("f32 rounds to single precision, f64 does not", async () => {
    assert.equal((await tensor([0.1]).data())[0], f(0.1));
    assert.notEqual(f(0.1), 0.1);
    assert.equal((await tensor([0.1], f64).data())[0], 0.1);
    await same(tensor([16777217]), [16777216]); // 2^24 + 1 is not representable in f32
    await same(tensor([1e40]), [Infinity]);
    await same(tensor([0.1], f64).add(0.2), [0.30000000000000004], "f64");
    await same(tensor([0.1]).add(0.2), [f(f(0.1) + f(0.2))], "f32");
  });
  await t.step("i32 data and astype truncate toward zero", async () => {
    await same(tensor([1.9, -1.9, 0.5], i32), [1, -1, 0], "i32");
    await same(tensor([1.7, -1.7, 2.5, -0.5, 0, 3]).astype("i32"), [1, -1, 2, 0, 0, 3], "i32");
    await same(tensor([2.999999], f64).astype("i32"), [2], "i32");
  });
  await t.step("astype to bool tests ≠ 0; bool to numbers gives 0/1", async () => {
    await same(tensor([0, -0, 0.1, NaN, -3]).astype("bool"), [0, 0, 1, 1, 1], "bool");
    await same(tensor([5, 0], i32).astype("bool"), [1, 0], "bool");
    await same(tensor([true, false]).astype("f32"), [1, 0], "f32");
    await same(tensor([true, false]).astype("i32"), [1, 0], "i32");
  });
  await t.step("float casts", async () => {
    await same(tensor([0.1], f64).astype("f32"), [f(0.1)], "f32");
    await same(tensor([0.1]).astype("f64"), [f(0.1)], "f64");
    await same(tensor([3, -4], i32).astype("f64"), [3, -4], "f64");
    const x = tensor([1]);
    assert.equal(x.astype("f32"), x); // same dtype: no copy
  });
  await t.step("bool masks from comparisons", async () => {
    const m = tensor([1, 5, 3]).gt(2);
    await same(m, [0, 1, 1], "bool", [3]);
    await same(m.sum(), [2], "i32", []);
    await same(m.astype("f32").mul(tensor([10, 20, 30])), [0, 20, 30]);
  });
  await t.step("f64 keeps full precision through ops", async () => {
    const x = tensor([1e-17], f64);
    await same(x.add(1).sub(1), [0], "f64");
    await same(tensor([1 / 3], f64).mul(3), [1], "f64");
    await same(tensor([2], f64).sqrt(), [Math.SQRT2], "f64");
  });
});

// ---- metadata and rendering ----------------------------------------------------------------------------

Deno.test("toString, item, array, strides", async (t) => {
  await t.step("toString of a matrix", () => {
    assert.equal(
      tensor([[1, 2], [3, 4]]).toString(),
      "tensor([[1.0000, 2.0000],\n        [3.0000, 4.0000]], dtype=f32)",
    );
  });
  await t.step("toString of scalars, i32, bool, f64, empty", () => {
    assert.equal(tensor(3.5).toString(), "tensor(3.5000, dtype=f32)");
    assert.equal(tensor([1, -2, 3], i32).toString(), "tensor([1, -2, 3], dtype=i32)");
    assert.equal(tensor([true, false]).toString(), "tensor([true, false], dtype=bool)");
    assert.equal(tensor([0.25], f64).toString(), "tensor([0.2500], dtype=f64)");
    assert.equal(tensor([]).toString(), "tensor([], dtype=f32)");
  });
  await t.step("toString of special and extreme values", () => {
    assert.equal(
      tensor([NaN, Infinity, -Infinity, 1e5, -2.5, 0], f64).toString(),
      "tensor([nan, inf, -inf, 1.0000e+5, -2.5000, 0.0000], dtype=f64)",
    );
    assert.equal(tensor([1e-5, 12345.678], f64).toString(), "tensor([1.0000e-5, 12345.6780], dtype=f64)");
  });
  await t.step("toString of a 3-D tensor indents nested rows", () => {
    assert.equal(
      arange(8).reshape(2, 2, 2).toString(),
      "tensor([[[0, 1],\n         [2, 3]],\n        [[4, 5],\n         [6, 7]]], dtype=i32)",
    );
  });
  await t.step("toString summarises large tensors and shows requiresGrad", () => {
    assert.equal(arange(2000).toString(), "tensor([0, 1, 2, ..., 1997, 1998, 1999], dtype=i32)");
    assert.equal(arange(1000).toString().includes("..."), false);
    assert.equal(tensor([1]).requiresGrad_().toString(), "tensor([1.0000], dtype=f32, requiresGrad=true)");
  });
  await t.step("toString of a disposed tensor", () => {
    const x = zeros([2, 3]);
    x.dispose();
    assert.equal(x.toString(), "Tensor(shape=[2, 3], dtype=f32)");
  });
  await t.step("item", async () => {
    assert.equal(await tensor([[7]]).item(), 7);
    assert.equal(await tensor(-1.5, f64).item(), -1.5);
    assert.equal(await tensor([4], i32).item(), 4);
    assert.equal(await tensor([true]).item(), 1);
  });
  await t.step("array", async () => {
    assert.deepEqual(await arange(6).reshape(2, 3).array(), [[0, 1, 2], [3, 4, 5]]);
    assert.deepEqual(await arange(4).reshape(2, 1, 2).array(), [[[0, 1]], [[2, 3]]]);
    assert.deepEqual(await tensor(2, i32).array(), 2);
    assert.deepEqual(await tensor([[true], [false]]).array(), [[1], [0]]);
  });
  await t.step("strides are row-major", () => {
    assert.deepEqual(zeros([2, 3, 4]).strides, [12, 4, 1]);
    assert.deepEqual(zeros([5]).strides, [1]);
    assert.deepEqual(zeros([]).strides, []);
    assert.deepEqual(zeros([3, 1, 2]).strides, [2, 2, 1]);
    assert.deepEqual(zeros([2, 3, 4]).transpose(0, 2).strides, [6, 2, 1]); // layout ops materialise
  });
});

// ---- unary ---------------------------------------------------------------------------------------------

Deno.test("unary ops", async (t) => {
  await t.step("neg, abs, sign (float and i32)", async () => {
    await same(neg(tensor([1, -2, 0])), [-1, 2, 0]);
    await same(neg(tensor([1, -2], i32)), [-1, 2], "i32");
    await same(abs(tensor([-3, 2, -0.5])), [3, 2, 0.5]);
    await same(abs(tensor([-3, 4], i32)), [3, 4], "i32");
    await same(sign(tensor([-2, 0, 3, NaN, -Infinity])), [-1, 0, 1, NaN, -1]);
    await same(sign(tensor([-7, 0, 9], i32)), [-1, 0, 1], "i32");
  });
  await t.step("exp, log", async () => {
    await close(exp(tensor([0, 1, -1, -Infinity, Infinity], f64)), [1, Math.E, 1 / Math.E, 0, Infinity], 1e-15);
    await close(log(tensor([1, Math.E, 0, -1, Infinity], f64)), [0, 1, -Infinity, NaN, Infinity], 1e-15);
    await close(exp(tensor([1])), [Math.E], 1e-7);
  });
  await t.step("sqrt, rsqrt, square", async () => {
    await same(sqrt(tensor([4, 2, 0, -1], f64)), [2, Math.SQRT2, 0, NaN]);
    await same(rsqrt(tensor([4, 0.25, 0, 16], f64)), [0.5, 2, Infinity, 0.25]);
    await same(tensor([-3, 2, 0.5]).square(), [9, 4, 0.25]);
  });
  await t.step("tanh", async () => {
    // tanh(1) = (e² − 1)/(e² + 1)
    const t1 = (Math.E ** 2 - 1) / (Math.E ** 2 + 1);
    await close(tanh(tensor([0, 1, -1, 20, -Infinity], f64)), [0, t1, -t1, 1, -1], 1e-15);
  });
  await t.step("sigmoid, including large |x| without overflow", async () => {
    const s1 = 1 / (1 + Math.exp(-1));
    await close(sigmoid(tensor([0, 1, -1, 1000, -1000], f64)), [0.5, s1, 1 - s1, 1, 0], 1e-15);
    // σ(−40) = e⁻⁴⁰/(1 + e⁻⁴⁰): relative accuracy far below 1 − σ(40)'s rounding.
    const [tiny] = await vals(sigmoid(tensor([-40], f64)));
    assert.ok(Math.abs(tiny / (Math.exp(-40) / (1 + Math.exp(-40))) - 1) < 1e-14, `σ(−40) = ${tiny}`);
    const big = await vals(sigmoid(tensor([-1e30, -1000, -100, 100, 1000, 1e30])));
    assert.ok(big.every(Number.isFinite), `f32 sigmoid gave ${big}`);
    assert.deepEqual([big[0], big[1], big[4], big[5]], [0, 0, 1, 1]);
    assert.ok(big[2] >= 0 && big[2] < 1e-40);
    await same(sigmoid(tensor([NaN])), [NaN]);
  });
  await t.step("relu", async () => {
    await same(relu(tensor([-1, 0, 2, NaN, -Infinity])), [0, 0, 2, NaN, 0]);
  });
  await t.step("gelu, exact: x·Φ(x)", async () => {
    // Φ(0.5) = 0.6914624612740131, Φ(1) = 0.8413447460685429, Φ(2) = 0.9772498680518208 (normal tables).
    const x = [-2, -1, -0.5, 0, 0.5, 1, 2];
    const phi = [1 - 0.9772498680518208, 1 - 0.8413447460685429, 1 - 0.6914624612740131, 0.5, 0.6914624612740131];
    phi.push(0.8413447460685429, 0.9772498680518208);
    await close(gelu(tensor(x, f64)), x.map((v, i) => v * phi[i]), 1e-12);
    await close(gelu(tensor([1, -1])), [0.8413447460685429, -0.15865525393145707], 1e-6);
    await close(gelu(tensor([-20, 20], f64)), [0, 20], 1e-15);
  });
  await t.step("gelu, tanh approximation differs from the exact one", async () => {
    const x = [-3, -1, -0.5, 0, 0.5, 1, 2, 3];
    const approx = x.map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
    await close(gelu(tensor(x, f64), "tanh"), approx, 1e-14);
    // Published values: gelu_tanh(1) ≈ 0.841192, exact gelu(1) ≈ 0.841345.
    const [a1] = await vals(tensor([1], f64).gelu("tanh"));
    const [e1] = await vals(tensor([1], f64).gelu());
    assert.ok(Math.abs(a1 - 0.8411919906) < 1e-9 && Math.abs(e1 - 0.8413447461) < 1e-9);
    assert.ok(Math.abs(a1 - e1) > 1e-4);
  });
  await t.step("silu", async () => {
    const s1 = 1 / (1 + Math.exp(-1));
    await close(silu(tensor([0, 1, -1, -1000, 1000], f64)), [0, s1, -(1 - s1), 0, 1000], 1e-15);
  });
  await t.step("erf at known points to 1e-12 (f64)", async () => {
    // Reference values of erf from tables (Abramowitz & Stegun 7.1 / libm).
    const table: [number, number][] = [
      [0, 0],
      [0.01, 0.011283415555849616],
      [0.1, 0.1124629160182849],
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [1.5, 0.9661051464753108],
      [2, 0.9953222650189527],
      [2.5, 0.999593047982555],
      [2.999, 0.9999777698314002],
      [3, 0.9999779095030014],
      [3.001, 0.9999780483390822],
      [3.5, 0.9999992569016276],
      [4, 0.9999999845827421],
      [5, 0.9999999999984626],
      [6.5, 1],
      [Infinity, 1],
    ];
    const x = table.flatMap(([v]) => (v === 0 ? [0] : [v, -v]));
    const y = table.flatMap(([v, e]) => (v === 0 ? [0] : [e, -e]));
    await close(erf(tensor(x, f64)), y, 1e-12);
    await same(erf(tensor([NaN], f64)), [NaN]);
    await close(erf(tensor([0.5, 1])), [0.5204998778130465, 0.8427007929497149], 1e-6);
  });
  await t.step("sin, cos", async () => {
    await close(sin(tensor([0, Math.PI / 6, Math.PI / 2, -Math.PI / 2], f64)), [0, 0.5, 1, -1], 1e-15);
    await close(cos(tensor([0, Math.PI / 3, Math.PI], f64)), [1, 0.5, -1], 1e-15);
  });
  await t.step("logicalNot, isnan", async () => {
    await same(logicalNot(tensor([true, false])), [0, 1], "bool");
    await same(tensor([[true], [false]]).logicalNot(), [0, 1], "bool", [2, 1]);
    await same(isnan(tensor([NaN, 1, Infinity, -0])), [1, 0, 0, 0], "bool");
  });
  await t.step("unary ops keep the shape", () => {
    assert.deepEqual(exp(zeros([2, 3, 1])).shape, [2, 3, 1]);
    assert.deepEqual(gelu(zeros([])).shape, []);
  });
});

// ---- binary --------------------------------------------------------------------------------------------

Deno.test("binary ops", async (t) => {
  await t.step("add broadcasts [2,1] + [3]", async () => {
    const y = add(tensor([[1], [2]]), tensor([10, 20, 30]));
    assert.deepEqual(await y.array(), [[11, 21, 31], [12, 22, 32]]);
  });
  await t.step("mul broadcasts [2,1,3] · [4,1] to [2,4,3]", async () => {
    const a = arange(6).astype("f32").reshape(2, 1, 3);
    const b = tensor([[1], [2], [3], [4]]);
    const y = mul(a, b);
    assert.deepEqual(y.shape, [2, 4, 3]);
    assert.deepEqual(await y.array(), [
      [[0, 1, 2], [0, 2, 4], [0, 3, 6], [0, 4, 8]],
      [[3, 4, 5], [6, 8, 10], [9, 12, 15], [12, 16, 20]],
    ]);
  });
  await t.step("scalar operands on either side", async () => {
    const x = tensor([1, 2, 3]);
    await same(x.add(1), [2, 3, 4]);
    await same(add(1, x), [2, 3, 4]);
    await same(x.sub(1), [0, 1, 2]);
    await same(sub(10, x), [9, 8, 7]);
    await same(x.mul(-2), [-2, -4, -6]);
    await same(div(6, x), [6, 3, 2]);
    await same(x.add(tensor(5)), [6, 7, 8], "f32", [3]);
    await same(tensor([1, 2], i32).add(3), [4, 5], "i32");
  });
  await t.step("sub, div with broadcasting and IEEE edge cases", async () => {
    assert.deepEqual(await sub(tensor([[10, 20]]), tensor([[1], [2]])).array(), [[9, 19], [8, 18]]);
    await same(div(tensor([1, -1, 0, 6, 3]), tensor([0, 0, 0, 2, 2])), [Infinity, -Infinity, NaN, 3, 1.5]);
    await same(div(tensor([1], f64), 3), [1 / 3], "f64");
  });
  await t.step("i32 arithmetic is exact", async () => {
    await same(tensor([7, -3], i32).mul(tensor([6, 5], i32)), [42, -15], "i32");
    await same(tensor([7, -3], i32).sub(tensor([10], i32)), [-3, -13], "i32");
  });
  await t.step("pow", async () => {
    await same(pow(tensor([2, 3, 4]), 2), [4, 9, 16]);
    await same(pow(2, tensor([0, 1, 10, -1])), [1, 2, 1024, 0.5]);
    await same(pow(tensor([4, 0, -8], f64), tensor([0.5, 0, 1 / 3], f64)), [2, 1, NaN]);
    assert.deepEqual(await pow(tensor([[2], [3]]), tensor([1, 2])).array(), [[2, 4], [3, 9]]);
    await same(tensor([3]).pow(tensor([3])), [27]);
  });
  await t.step("maximum, minimum propagate NaN", async () => {
    const a = tensor([1, 5, NaN, 3, NaN]), b = tensor([4, 2, 1, NaN, NaN]);
    await same(maximum(a, b), [4, 5, NaN, NaN, NaN]);
    await same(minimum(a, b), [1, 2, NaN, NaN, NaN]);
    await same(tensor([-1, 2]).maximum(0), [0, 2]);
    await same(tensor([-1, 2]).minimum(0), [-1, 0]);
    assert.deepEqual(await maximum(tensor([[0], [5]]), tensor([1, 3, 6])).array(), [[1, 3, 6], [5, 5, 6]]);
    await same(maximum(tensor([1, 9], i32), tensor([4, 2], i32)), [4, 9], "i32");
  });
  await t.step("comparisons give bool", async () => {
    const x = tensor([1, 2, 3]), y = tensor([2, 2, 2]);
    await same(eq(x, y), [0, 1, 0], "bool");
    await same(ne(x, y), [1, 0, 1], "bool");
    await same(lt(x, y), [1, 0, 0], "bool");
    await same(le(x, y), [1, 1, 0], "bool");
    await same(gt(x, y), [0, 0, 1], "bool");
    await same(ge(x, y), [0, 1, 1], "bool");
    await same(x.gt(1.5), [0, 1, 1], "bool");
    await same(x.le(2), [1, 1, 0], "bool");
  });
  await t.step("comparisons broadcast and follow IEEE for NaN", async () => {
    const y = gt(tensor([[1], [3]]), tensor([0, 2, 4]));
    assert.deepEqual(y.shape, [2, 3]);
    assert.deepEqual(await y.array(), [[1, 0, 0], [1, 1, 0]]);
    const n = tensor([NaN]);
    await same(eq(n, n), [0], "bool");
    await same(ne(n, n), [1], "bool");
    await same(ge(n, n), [0], "bool");
    await same(tensor([1, 2], i32).eq(tensor([1, 3], i32)), [1, 0], "bool");
    await same(tensor([true, false]).eq(tensor([true, true])), [1, 0], "bool");
  });
  await t.step("logicalAnd, logicalOr broadcast", async () => {
    const a = tensor([[true], [false]]), b = tensor([true, false]);
    assert.deepEqual(await logicalAnd(a, b).array(), [[1, 0], [0, 0]]);
    assert.deepEqual(await logicalOr(a, b).array(), [[1, 1], [1, 0]]);
    assert.equal(a.logicalAnd(b).dtype, "bool");
    await same(tensor([true, false]).logicalOr(tensor([false, false])), [1, 0], "bool");
  });
  await t.step("where broadcasts cond, a, b", async () => {
    const cond = tensor([[true], [false]]);
    const y = where(cond, tensor([1, 2, 3]), tensor([[10, 20, 30], [40, 50, 60]]));
    assert.deepEqual(await y.array(), [[1, 2, 3], [40, 50, 60]]);
    const x = tensor([-1, 2, -3]);
    await same(where(x.gt(0), x, 0), [0, 2, 0]);
    await same(where(x.gt(0), 0, x), [-1, 0, -3]);
    await same(x.where(x.lt(0), 9), [-1, 9, -3]);
    await same(where(tensor([true, false]), tensor([1, 2], i32), tensor([3, 4], i32)), [1, 4], "i32");
  });
  await t.step("clamp", async () => {
    await same(clamp(tensor([-2, -0.5, 0.5, 2, NaN]), -1, 1), [-1, -0.5, 0.5, 1, NaN]);
    await same(tensor([-2, 3]).clamp(0), [0, 3]);
    await same(tensor([-2, 3]).clamp(undefined, 0), [-2, 0]);
    await same(tensor([-5, 0, 5], i32).clamp(-1, 1), [-1, 0, 1], "i32");
    await same(tensor([1, 2]).clamp(), [1, 2]);
  });
});

// ---- reductions ---------------------------------------------------------------------------------------

Deno.test("reductions", async (t) => {
  // x[b][r][c] = 12b + 4r + c
  const x = arange(24).astype("f64").reshape(2, 3, 4);
  await t.step("sum over all and single axes", async () => {
    await same(x.sum(), [276], "f64", []);
    await same(x.sum(0), [12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34], "f64", [3, 4]);
    await same(x.sum(1), [12, 15, 18, 21, 48, 51, 54, 57], "f64", [2, 4]);
    await same(x.sum(2), [6, 22, 38, 54, 70, 86], "f64", [2, 3]);
    await same(x.sum(-1), [6, 22, 38, 54, 70, 86], "f64", [2, 3]);
  });
  await t.step("sum over axis lists, keepdim", async () => {
    await same(x.sum([0, 2]), [60, 92, 124], "f64", [3]);
    await same(x.sum([2, 0]), [60, 92, 124], "f64", [3]);
    await same(x.sum([0, 2], true), [60, 92, 124], "f64", [1, 3, 1]);
    await same(x.sum(1, true), [12, 15, 18, 21, 48, 51, 54, 57], "f64", [2, 1, 4]);
    await same(x.sum([0, 1, 2], true), [276], "f64", [1, 1, 1]);
    await same(sum(x, [-1, -3]), [60, 92, 124], "f64", [3]);
  });
  await t.step("mean", async () => {
    await same(x.mean(), [11.5], "f64", []);
    await same(x.mean(1), [4, 5, 6, 7, 16, 17, 18, 19], "f64", [2, 4]);
    // Σ over b, r of (12b + 4r + c) = 6c + 60 → mean c + 10.
    await same(mean(x, [0, 1], true), [10, 11, 12, 13], "f64", [1, 1, 4]);
    await same(tensor([1, 2]).mean(), [1.5], "f32");
    await same(zeros([0]).mean(), [NaN]);
  });
  await t.step("max, min", async () => {
    await same(x.max(), [23], "f64", []);
    await same(x.max(1), [8, 9, 10, 11, 20, 21, 22, 23], "f64", [2, 4]);
    await same(max(x, [1, 2]), [11, 23], "f64", [2]);
    await same(min(x, 2, true), [0, 4, 8, 12, 16, 20], "f64", [2, 3, 1]);
    await same(x.min([0, 2]), [0, 4, 8], "f64", [3]);
    await same(tensor([[3, -1], [2, 5]], i32).max(0), [3, 5], "i32");
    await same(tensor([1, NaN, 3]).max(), [NaN]);
    await same(tensor([NaN, 1, 3]).min(), [NaN]);
    await same(tensor([[1, NaN], [2, 0]]).max(1), [NaN, 2]);
  });
  await t.step("sum of bool and i32 gives i32", async () => {
    const m = tensor([[true, false, true], [true, true, true]]);
    await same(m.sum(), [5], "i32", []);
    await same(m.sum(1), [2, 3], "i32", [2]);
    await same(m.sum([0, 1], true), [5], "i32", [1, 1]);
    await same(tensor([2, -7], i32).sum(), [-5], "i32");
  });
  await t.step("sum of empty and scalar tensors", async () => {
    await same(zeros([0]).sum(), [0], "f32", []);
    await same(zeros([2, 0]).sum(1), [0, 0], "f32", [2]);
    await same(tensor(3).sum(), [3], "f32", []);
  });
  await t.step("argmax, argmin with ties → lowest index", async () => {
    const y = tensor([[1, 3, 3], [2, 2, 1]]);
    await same(argmax(y, 1), [1, 0], "i32", [2]);
    await same(argmin(y, 1), [0, 2], "i32", [2]);
    await same(argmax(y, 0), [1, 0, 0], "i32", [3]);
    await same(argmax(y), [1], "i32", []);
    await same(argmin(y), [0], "i32", []);
    await same(y.argmax(1, true), [1, 0], "i32", [2, 1]);
    await same(y.argmax(-1), [1, 0], "i32", [2]);
    await same(argmax(tensor([4, 4, 4, 4])), [0]);
    await same(argmin(tensor([[5, 1], [1, 5]], i32), 0), [1, 0], "i32");
  });
  await t.step("argmax, argmin: NaN wins (like torch)", async () => {
    await same(argmax(tensor([1, NaN, 5, NaN])), [1]);
    await same(argmin(tensor([1, NaN, -5])), [1]);
    await same(argmax(tensor([NaN, 7])), [0]);
  });
});

// ---- softmax family -----------------------------------------------------------------------------------

Deno.test("softmax, logSoftmax, logsumexp", async (t) => {
  const ln3 = Math.log(3), ln4 = Math.log(4);
  await t.step("softmax values", async () => {
    await close(softmax(tensor([0, ln3], f64)), [0.25, 0.75], 1e-15);
    await same(softmax(tensor([1000, 1000])), [0.5, 0.5]);
    await same(softmax(tensor([-1000, 0])), [0, 1]);
    const x = tensor([[0, 0], [ln3, 0]], f64);
    await close(softmax(x, 0), [0.25, 0.5, 0.75, 0.5], 1e-15);
    await close(x.softmax(-1), [0.5, 0.5, 0.75, 0.25], 1e-15);
  });
  await t.step("softmax: −∞ gets exactly 0; an all −∞ row is NaN", async () => {
    const y = await vals(softmax(tensor([[1, 1, -Infinity], [-Infinity, -Infinity, -Infinity], [0, -Infinity, 0]])));
    assert.deepEqual(y.slice(0, 3), [0.5, 0.5, 0]);
    assert.ok(y.slice(3, 6).every(Number.isNaN));
    assert.deepEqual(y.slice(6), [0.5, 0, 0.5]);
  });
  await t.step("logSoftmax values", async () => {
    await close(logSoftmax(tensor([0, ln3], f64)), [-ln4, ln3 - ln4], 1e-15);
    await same(logSoftmax(tensor([-1000, 0], f64)), [-1000, 0]);
    // axis 0: column 0 is [0, 1] (lse = log(1 + e)), column 1 is [ln3, 1] (lse = log(3 + e)).
    const l1e = Math.log(1 + Math.E), l3e = Math.log(3 + Math.E);
    await close(logSoftmax(tensor([[0, ln3], [1, 1]], f64), 0), [-l1e, ln3 - l3e, 1 - l1e, 1 - l3e], 1e-15);
  });
  await t.step("logSoftmax: −∞ stays −∞; an all −∞ row is NaN", async () => {
    const y = await vals(logSoftmax(tensor([[0, -Infinity], [-Infinity, -Infinity]], f64)));
    assert.deepEqual(y.slice(0, 2), [0, -Infinity]);
    assert.ok(y.slice(2).every(Number.isNaN));
  });
  await t.step("logsumexp", async () => {
    await close(logsumexp(tensor([0, ln3], f64)), [ln4], 1e-15);
    await close(tensor([1000, 1000], f64).logsumexp(), [1000 + Math.log(2)], 1e-15);
    await close(tensor([-1000, -1000], f64).logsumexp(), [-1000 + Math.log(2)], 1e-15);
    await same(logsumexp(tensor([[-Infinity, -Infinity], [0, -Infinity]]), -1), [-Infinity, 0], "f32", [2]);
    await same(logsumexp(tensor([Infinity, 0])), [Infinity]);
    await close(logsumexp(zeros([2, 2], f64), [0, 1]), [ln4], 1e-15);
    const k = logsumexp(zeros([2, 3], f64), 1, true);
    assert.deepEqual(k.shape, [2, 1]);
    await close(k, [ln3, ln3], 1e-15);
  });
});

// ---- matmul --------------------------------------------------------------------------------------------

Deno.test("matmul", async (t) => {
  await t.step("2-D @ 2-D", async () => {
    const y = matmul(tensor([[1, 2], [3, 4]]), tensor([[5, 6], [7, 8]]));
    assert.deepEqual(await y.array(), [[19, 22], [43, 50]]);
    const r = matmul(tensor([[1, 2, 3]]), tensor([[1], [2], [3]]));
    await same(r, [14], "f32", [1, 1]);
  });
  await t.step("1-D operands are promoted and the added axis removed", async () => {
    await same(matmul(tensor([1, 2, 3]), tensor([4, 5, 6])), [32], "f32", []);
    await same(matmul(tensor([1, 2]), tensor([[1, 2, 3], [4, 5, 6]])), [9, 12, 15], "f32", [3]);
    await same(matmul(tensor([[1, 2, 3], [4, 5, 6]]), tensor([1, 0, -1])), [-2, -2], "f32", [2]);
  });
  await t.step("batched 3-D @ 3-D", async () => {
    const y = matmul(tensor([[[1, 2]], [[3, 4]]]), tensor([[[1], [1]], [[2], [0]]]));
    await same(y, [3, 6], "f32", [2, 1, 1]);
  });
  await t.step("batched @ 2-D weight", async () => {
    const a = tensor([[[1, 0], [0, 1]], [[1, 1], [0, 2]]]);
    const w = tensor([[1, 2], [3, 4]]);
    assert.deepEqual(await a.matmul(w).array(), [[[1, 2], [3, 4]], [[4, 6], [6, 8]]]);
  });
  await t.step("2-D @ batched", async () => {
    const b = tensor([[[1], [2]], [[3], [4]], [[5], [6]]]);
    await same(matmul(tensor([[1, 1]]), b), [3, 7, 11], "f32", [3, 1, 1]);
    await same(matmul(tensor([1, 2]), b), [5, 11, 17], "f32", [3, 1]);
  });
  await t.step("batched @ 1-D", async () => {
    await same(matmul(tensor([[[1, 2]], [[3, 4]]]), tensor([1, 1])), [3, 7], "f32", [2, 1]);
  });
  await t.step("batch dims broadcast ([2,1] with [3] → [2,3])", async () => {
    const a = tensor([[[[1, 0]]], [[[0, 1]]]]); // [2, 1, 1, 2]
    const b = tensor([[[1], [2]], [[3], [4]], [[5], [6]]]); // [3, 2, 1]
    const y = matmul(a, b);
    assert.deepEqual(y.shape, [2, 3, 1, 1]);
    await same(y, [1, 3, 5, 2, 4, 6]);
    const c = matmul(ones([1, 2, 2, 3]), ones([2, 1, 3, 4]));
    assert.deepEqual(c.shape, [2, 2, 2, 4]);
    assert.ok((await vals(c)).every((v) => v === 3));
  });
  await t.step("f64 and empty inner dimension", async () => {
    await same(matmul(tensor([[0.1, 0.2]], f64), tensor([[1], [1]], f64)), [0.1 + 0.2], "f64", [1, 1]);
    await same(matmul(zeros([2, 0]), zeros([0, 3])), [0, 0, 0, 0, 0, 0], "f32", [2, 3]);
  });
});

// ---- layout --------------------------------------------------------------------------------------------

Deno.test("layout ops", async (t) => {
  await t.step("reshape with -1 shares storage", async () => {
    const x = arange(6);
    const y = x.reshape(2, -1);
    assert.deepEqual(y.shape, [2, 3]);
    assert.equal(y.storage, x.storage);
    assert.deepEqual(await y.array(), [[0, 1, 2], [3, 4, 5]]);
    assert.deepEqual(reshape(x, [-1, 2]).shape, [3, 2]);
    assert.deepEqual(x.reshape([3, 2]).shape, [3, 2]);
    assert.deepEqual(y.reshape(-1).shape, [6]);
    assert.deepEqual(tensor([5]).reshape([]).shape, []);
    assert.deepEqual(zeros([0, 4]).reshape(-1, 2).shape, [0, 2]);
  });
  await t.step("flatten", () => {
    const x = zeros([2, 3, 4]);
    assert.deepEqual(x.flatten().shape, [24]);
    assert.deepEqual(flatten(x, 1).shape, [2, 12]);
    assert.deepEqual(x.flatten(0, 1).shape, [6, 4]);
    assert.deepEqual(x.flatten(-2, -1).shape, [2, 12]);
    assert.deepEqual(tensor(3).flatten().shape, [1]);
  });
  await t.step("squeeze, unsqueeze", () => {
    const x = zeros([1, 3, 1, 2]);
    assert.deepEqual(x.squeeze().shape, [3, 2]);
    assert.deepEqual(squeeze(x, 2).shape, [1, 3, 2]);
    assert.deepEqual(x.squeeze(-4).shape, [3, 1, 2]);
    assert.deepEqual(zeros([3]).unsqueeze(0).shape, [1, 3]);
    assert.deepEqual(unsqueeze(zeros([3]), -1).shape, [3, 1]);
    assert.deepEqual(zeros([3]).unsqueeze(1).shape, [3, 1]);
    assert.deepEqual(zeros([2, 3]).unsqueeze(-2).shape, [2, 1, 3]);
    assert.deepEqual(tensor(1).unsqueeze(0).shape, [1]);
  });
  await t.step("permute", async () => {
    // out[k][0][j] = x[0][j][k]
    const y = arange(6).reshape(1, 2, 3).permute(2, 0, 1);
    assert.deepEqual(y.shape, [3, 1, 2]);
    assert.deepEqual(await y.array(), [[[0, 3]], [[1, 4]], [[2, 5]]]);
    assert.deepEqual(await permute(arange(6).reshape(1, 2, 3), [-1, 0, 1]).array(), [[[0, 3]], [[1, 4]], [[2, 5]]]);
    const z = arange(24).reshape(2, 3, 4).permute(1, 2, 0);
    assert.deepEqual(z.shape, [3, 4, 2]);
    // z[r][c][b] = 12b + 4r + c
    await same(z.slice(0, 2, 3).slice(1, 1, 2), [9, 21]);
  });
  await t.step("transpose", async () => {
    assert.deepEqual(await tensor([[1, 2, 3], [4, 5, 6]]).transpose().array(), [[1, 4], [2, 5], [3, 6]]);
    const y = transpose(arange(6).reshape(2, 1, 3), 0, 2);
    assert.deepEqual(y.shape, [3, 1, 2]);
    assert.deepEqual(await y.array(), [[[0, 3]], [[1, 4]], [[2, 5]]]);
    await same(arange(3).transpose(0, 0), [0, 1, 2]);
  });
  await t.step("expand", async () => {
    assert.deepEqual(await tensor([[1], [2]]).expand(2, 3).array(), [[1, 1, 1], [2, 2, 2]]);
    assert.deepEqual(await tensor([1, 2, 3]).expand(2, 3).array(), [[1, 2, 3], [1, 2, 3]]);
    assert.deepEqual(await tensor([[1], [2]]).expand(-1, 2).array(), [[1, 1], [2, 2]]);
    const z = expand(tensor([1, 2]), [2, 1, 2]);
    assert.deepEqual(await z.array(), [[[1, 2]], [[1, 2]]]);
    await same(expand(tensor(4), [3]), [4, 4, 4]);
    assert.deepEqual(expand(tensor([1]), [0]).shape, [0]);
  });
  await t.step("slice with steps, negative indices and clipping", async () => {
    const x = arange(10);
    await same(x.slice(0, 1, -1, 3), [1, 4, 7]);
    await same(slice(x, 0, -3), [7, 8, 9]);
    await same(x.slice(0, 2, 100), [2, 3, 4, 5, 6, 7, 8, 9]);
    await same(x.slice(0, -100, 2), [0, 1]);
    await same(x.slice(0, 5, 2), [], "i32", [0]);
    await same(x.slice(0, 0, undefined, 4), [0, 4, 8]);
    await same(x.slice(0, 9, 10, 5), [9]);
    await same(x.slice(0, 20), [], "i32", [0]);
    const m = arange(8).reshape(2, 4);
    assert.deepEqual(await m.slice(1, 1, 3).array(), [[1, 2], [5, 6]]);
    assert.deepEqual(await m.slice(-1, -1).array(), [[3], [7]]);
    assert.deepEqual(await m.slice(1, 0, undefined, 2).array(), [[0, 2], [4, 6]]);
    assert.deepEqual(await m.slice(0, 1).array(), [[4, 5, 6, 7]]);
  });
  await t.step("narrow", async () => {
    const x = arange(12).reshape(3, 4);
    assert.deepEqual(await x.narrow(1, 1, 2).array(), [[1, 2], [5, 6], [9, 10]]);
    assert.deepEqual(await narrow(x, 0, 2, 1).array(), [[8, 9, 10, 11]]);
    assert.deepEqual(x.narrow(-1, 4, 0).shape, [3, 0]);
  });
  await t.step("sliceScatter (out of place)", async () => {
    const base = zeros([5]);
    await same(sliceScatter(base, tensor([1, 2]), 0, 1, undefined, 2), [0, 1, 0, 2, 0]);
    await same(base, [0, 0, 0, 0, 0]);
    const y = sliceScatter(zeros([2, 4]), ones([2, 2]), 1, -2);
    assert.deepEqual(await y.array(), [[0, 0, 1, 1], [0, 0, 1, 1]]);
    const z = sliceScatter(arange(6).reshape(3, 2), tensor([[9, 9]], i32), 0, 1, 2);
    assert.deepEqual(await z.array(), [[0, 1], [9, 9], [4, 5]]);
  });
  await t.step("concat", async () => {
    const y = concat([tensor([[1, 2]]), tensor([[3, 4], [5, 6]])]);
    assert.deepEqual(await y.array(), [[1, 2], [3, 4], [5, 6]]);
    const z = concat([tensor([[1], [2]]), tensor([[3, 4], [5, 6]])], 1);
    assert.deepEqual(await z.array(), [[1, 3, 4], [2, 5, 6]]);
    assert.deepEqual(await concat([tensor([[1], [2]]), tensor([[3], [4]])], -1).array(), [[1, 3], [2, 4]]);
    await same(concat([tensor([1, 2], i32)]), [1, 2], "i32");
    await same(concat([tensor([1], i32), tensor([], i32), tensor([2, 3], i32)]), [1, 2, 3], "i32", [3]);
  });
  await t.step("stack", async () => {
    const a = tensor([1, 2]), b = tensor([3, 4]);
    assert.deepEqual(await stack([a, b]).array(), [[1, 2], [3, 4]]);
    assert.deepEqual(await stack([a, b], 1).array(), [[1, 3], [2, 4]]);
    assert.deepEqual(await stack([a, b], -1).array(), [[1, 3], [2, 4]]);
    await same(stack([tensor(1), tensor(2), tensor(3)]), [1, 2, 3], "f32", [3]);
  });
  await t.step("split by a list of sizes and by a chunk size", async () => {
    const parts = arange(7).split([2, 0, 5]);
    assert.equal(parts.length, 3);
    await same(parts[0], [0, 1]);
    await same(parts[1], [], "i32", [0]);
    await same(parts[2], [2, 3, 4, 5, 6]);
    const chunks = split(arange(7), 3);
    assert.deepEqual(await Promise.all(chunks.map((c) => c.array())), [[0, 1, 2], [3, 4, 5], [6]]);
    const cols = arange(6).reshape(2, 3).split([1, 2], 1);
    assert.deepEqual(await cols[0].array(), [[0], [3]]);
    assert.deepEqual(await cols[1].array(), [[1, 2], [4, 5]]);
    assert.equal(split(arange(4), 2).length, 2);
    assert.equal(split(arange(4), 10).length, 1);
  });
});

// ---- indexing ------------------------------------------------------------------------------------------

Deno.test("indexing ops", async (t) => {
  const idx = (data: number[] | number[][]) => tensor(data, i32);
  await t.step("gather", async () => {
    const x = tensor([[1, 2, 3], [4, 5, 6]]);
    assert.deepEqual(await gather(x, 1, idx([[2, 0], [1, 1]])).array(), [[3, 1], [5, 5]]);
    assert.deepEqual(await gather(x, 0, idx([[1, 0, 1]])).array(), [[4, 2, 6]]);
    assert.deepEqual(await x.gather(-1, idx([[0]])).array(), [[1]]);
    await same(gather(tensor([10, 20, 30]), 0, idx([2, 2, 0])), [30, 30, 10]);
  });
  await t.step("scatterAdd accumulates repeated indices (out of place)", async () => {
    const base = zeros([2, 3]);
    const y = scatterAdd(base, 1, idx([[0, 0, 2], [1, 1, 1]]), tensor([[1, 2, 3], [4, 5, 6]]));
    assert.deepEqual(await y.array(), [[3, 0, 3], [0, 15, 0]]);
    await same(base, [0, 0, 0, 0, 0, 0]);
    await same(ones([3]).scatterAdd(0, idx([0, 0, 0, 2]), tensor([1, 1, 1, 5])), [4, 1, 6]);
    const z = scatterAdd(zeros([3, 2]), 0, idx([[2, 0]]), tensor([[7, 8]]));
    assert.deepEqual(await z.array(), [[0, 8], [0, 0], [7, 0]]);
  });
  await t.step("indexSelect", async () => {
    const x = tensor([[1, 2], [3, 4], [5, 6]]);
    assert.deepEqual(await indexSelect(x, 0, idx([2, 0, 2])).array(), [[5, 6], [1, 2], [5, 6]]);
    assert.deepEqual(await x.indexSelect(1, idx([1])).array(), [[2], [4], [6]]);
    assert.deepEqual(indexSelect(x, 0, tensor([], i32)).shape, [0, 2]);
  });
  await t.step("indexAdd accumulates repeated indices", async () => {
    const y = indexAdd(zeros([3, 2]), 0, idx([0, 2, 0]), tensor([[1, 1], [2, 2], [3, 3]]));
    assert.deepEqual(await y.array(), [[4, 4], [0, 0], [2, 2]]);
    const z = ones([2, 3]).indexAdd(1, idx([2, 2]), tensor([[1, 2], [3, 4]]));
    assert.deepEqual(await z.array(), [[1, 1, 4], [1, 1, 8]]);
  });
  await t.step("oneHot", async () => {
    const y = oneHot(idx([0, 2, 1]), 3);
    assert.equal(y.dtype, "i32");
    assert.deepEqual(await y.array(), [[1, 0, 0], [0, 0, 1], [0, 1, 0]]);
    const z = oneHot(idx([[1, 0], [0, 1]]), 2, "f32");
    assert.equal(z.dtype, "f32");
    assert.deepEqual(await z.array(), [[[0, 1], [1, 0]], [[1, 0], [0, 1]]]);
    // Out-of-range classes give all-zero rows (documented).
    assert.deepEqual(await oneHot(idx([3, -1]), 3).array(), [[0, 0, 0], [0, 0, 0]]);
  });
  await t.step("embedding", async () => {
    const w = tensor([[0, 1], [10, 11], [20, 21]]);
    const y = embedding(w, idx([[2, 0], [1, 2]]));
    assert.deepEqual(y.shape, [2, 2, 2]);
    assert.deepEqual(await y.array(), [[[20, 21], [0, 1]], [[10, 11], [20, 21]]]);
    assert.deepEqual(await embedding(w, tensor(1, i32)).array(), [10, 11]);
  });
});

// ---- order statistics and scans ------------------------------------------------------------------------

Deno.test("topk, sort, argsort, cumsum", async (t) => {
  await t.step("topk: ties → lowest index", async () => {
    const { values, indices } = topk(tensor([0.1, 0.5, 0.5, 0.2]), 3);
    await same(values, [f(0.5), f(0.5), f(0.2)], "f32", [3]);
    await same(indices, [1, 2, 3], "i32", [3]);
    const r = tensor([[3, 3, 3]]).topk(2);
    await same(r.indices, [0, 1], "i32", [1, 2]);
  });
  await t.step("topk largest=false", async () => {
    const { values, indices } = topk(tensor([3, 1, 2, 1]), 2, { largest: false });
    await same(values, [1, 1]);
    await same(indices, [1, 3]);
  });
  await t.step("topk along axis 0", async () => {
    const { values, indices } = topk(tensor([[1, 6], [5, 2], [3, 4]]), 2, { axis: 0 });
    assert.deepEqual(await values.array(), [[5, 6], [3, 4]]);
    assert.deepEqual(await indices.array(), [[1, 0], [2, 2]]);
    const s = topk(tensor([[1, 6], [5, 2], [3, 4]]), 1, { axis: 0, largest: false });
    assert.deepEqual(await s.values.array(), [[1, 2]]);
    assert.deepEqual(await s.indices.array(), [[0, 1]]);
  });
  await t.step("topk: NaN is the largest; k = 0; i32", async () => {
    const r = topk(tensor([1, NaN, 3]), 2);
    await same(r.values, [NaN, 3]);
    await same(r.indices, [1, 2]);
    assert.deepEqual(topk(tensor([1, 2]), 0).values.shape, [0]);
    const q = topk(tensor([[4, 9, 1]], i32), 2);
    await same(q.values, [9, 4], "i32");
    await same(q.indices, [1, 0], "i32");
  });
  await t.step("sort is stable in both directions", async () => {
    const x = tensor([3, 1, 2, 1]);
    const a = sort(x);
    await same(a.values, [1, 1, 2, 3]);
    await same(a.indices, [1, 3, 2, 0], "i32");
    const d = x.sort({ descending: true });
    await same(d.values, [3, 2, 1, 1]);
    await same(d.indices, [0, 2, 1, 3], "i32");
    await same(argsort(tensor([1, 0, 1, 0, 1, 0])), [1, 3, 5, 0, 2, 4], "i32");
    await same(argsort(tensor([1, 0, 1, 0, 1, 0]), { descending: true }), [0, 2, 4, 1, 3, 5], "i32");
  });
  await t.step("sort: NaN last ascending, first descending", async () => {
    const a = sort(tensor([2, NaN, 1]));
    await same(a.values, [1, 2, NaN]);
    await same(a.indices, [2, 0, 1]);
    const d = sort(tensor([2, NaN, 1]), { descending: true });
    await same(d.values, [NaN, 2, 1]);
    await same(d.indices, [1, 0, 2]);
  });
  await t.step("sort along axis 0", async () => {
    const r = sort(tensor([[3, 1], [1, 2], [2, 0]]), { axis: 0 });
    assert.deepEqual(await r.values.array(), [[1, 0], [2, 1], [3, 2]]);
    assert.deepEqual(await r.indices.array(), [[1, 2], [2, 0], [0, 1]]);
    assert.deepEqual(await tensor([[2, 1], [0, 3]]).argsort({ axis: 1 }).array(), [[1, 0], [0, 1]]);
  });
  await t.step("cumsum, reverse, axes, dtypes", async () => {
    await same(cumsum(tensor([1, 2, 3, 4]), 0), [1, 3, 6, 10]);
    await same(cumsum(tensor([1, 2, 3, 4]), 0, true), [10, 9, 7, 4]);
    assert.deepEqual(await tensor([[1, 2], [3, 4]]).cumsum(0).array(), [[1, 2], [4, 6]]);
    assert.deepEqual(await tensor([[1, 2], [3, 4]]).cumsum(-1, true).array(), [[3, 2], [7, 4]]);
    await same(cumsum(tensor([true, false, true, true]), 0), [1, 1, 2, 3], "i32");
    await same(cumsum(tensor([true, false, true]), 0, true), [2, 1, 1], "i32");
    await same(cumsum(tensor([5, -2], i32), 0), [5, 3], "i32");
    await same(cumsum(tensor([0.1, 0.2], f64), 0), [0.1, 0.1 + 0.2], "f64");
  });
});

// ---- losses and dropout --------------------------------------------------------------------------------

Deno.test("crossEntropy", async (t) => {
  const logits = tensor([[2, 0, 0], [0, 0, 0]], f64);
  const lse0 = Math.log(Math.exp(2) + 2), ln3 = Math.log(3);
  const nll0 = lse0 - 2; // −log(e²/(e² + 2))
  const tg = (data: number[]) => tensor(data, i32);
  await t.step("reductions", async () => {
    await close(crossEntropy(logits, tg([0, 1])), [(nll0 + ln3) / 2], 1e-14);
    await close(crossEntropy(logits, tg([0, 1]), { reduction: "sum" }), [nll0 + ln3], 1e-14);
    const none = crossEntropy(logits, tg([0, 1]), { reduction: "none" });
    assert.deepEqual(none.shape, [2]);
    await close(none, [nll0, ln3], 1e-14);
    await close(crossEntropy(logits, tg([1, 2]), { reduction: "none" }), [lse0, ln3], 1e-14);
  });
  await t.step("ignoreIndex: no loss, not counted in the mean", async () => {
    await close(crossEntropy(logits, tg([0, -100])), [nll0], 1e-14);
    await close(crossEntropy(logits, tg([0, -100]), { reduction: "none" }), [nll0, 0], 1e-14);
    await close(crossEntropy(logits, tg([0, -100]), { reduction: "sum" }), [nll0], 1e-14);
    await close(crossEntropy(logits, tg([0, 1]), { ignoreIndex: 1 }), [nll0], 1e-14);
    await same(crossEntropy(logits, tg([-100, -100])), [NaN]); // 0/0, like PyTorch
  });
  await t.step("labelSmoothing: (1−ε)·nll + ε·mean_c(−log p_c)", async () => {
    const eps = 0.1;
    // row 0: −log p = [lse0 − 2, lse0, lse0] → mean lse0 − 2/3; row 1: −log p = ln3 everywhere.
    const l0 = (1 - eps) * nll0 + eps * (lse0 - 2 / 3);
    const l1 = ln3;
    await close(crossEntropy(logits, tg([0, 1]), { labelSmoothing: eps }), [(l0 + l1) / 2], 1e-14);
    await close(crossEntropy(logits, tg([0, -100]), { labelSmoothing: eps }), [l0], 1e-14);
    const l0t1 = (1 - eps) * lse0 + eps * (lse0 - 2 / 3); // row 0 with target 1
    await close(crossEntropy(logits, tg([1, 1]), { labelSmoothing: eps, reduction: "none" }), [l0t1, l1], 1e-14);
    // ε = 1: the loss is the mean of −log p over classes, independent of the target.
    await close(crossEntropy(logits, tg([0, 2]), { labelSmoothing: 1, reduction: "none" }), [lse0 - 2 / 3, ln3], 1e-14);
  });
  await t.step("extra leading dims and f32", async () => {
    const x = tensor([[[2, 0, 0], [0, 0, 0]]]); // [1, 2, 3]
    const y = crossEntropy(x, tensor([[0, 1]], i32), { reduction: "none" });
    assert.deepEqual(y.shape, [1, 2]);
    await close(y, [nll0, ln3], 1e-6);
    await close(crossEntropy(tensor([[0, -Infinity]]), tg([0])), [0], 1e-7);
  });
});

Deno.test("dropout", async (t) => {
  const x = arange(1, 1001).astype("f32");
  await t.step("p = 0 and training = false are the identity", async () => {
    await same(dropout(x, 0), await vals(x));
    await same(dropout(x, 0.5, { training: false }), await vals(x));
    await same(dropout(x, 1, { training: false }), await vals(x));
  });
  await t.step("p = 1 gives zeros", async () => {
    const y = dropout(x, 1, { generator: new Generator(3) });
    assert.ok((await vals(y)).every((v) => v === 0));
    assert.deepEqual(y.shape, x.shape);
  });
  await t.step("kept entries are scaled by 1/(1−p), dropped ones are 0", async () => {
    const p = 0.25;
    const y = await vals(dropout(ones([4000]), p, { generator: new Generator(11) }));
    const scale = f(1 / (1 - p));
    assert.ok(y.every((v) => v === 0 || v === scale));
    const kept = y.filter((v) => v !== 0).length / y.length;
    // binomial: sd = √(0.75·0.25/4000) ≈ 0.0068
    assert.ok(Math.abs(kept - 0.75) < 0.035, `kept fraction ${kept}`);
    const z = await vals(dropout(x, 0.5, { generator: new Generator(5) }));
    const xs = await vals(x);
    z.forEach((v, i) => assert.ok(v === 0 || v === xs[i] * 2));
  });
  await t.step("same generator seed → same mask; the input is untouched", async () => {
    const a = await vals(dropout(x, 0.3, { generator: new Generator(42) }));
    const b = await vals(dropout(x, 0.3, { generator: new Generator(42) }));
    const c = await vals(dropout(x, 0.3, { generator: new Generator(43) }));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    await same(x.slice(0, 0, 3), [1, 2, 3]);
    const g = new Generator(42);
    const first = await vals(dropout(x, 0.3, { generator: g }));
    const second = await vals(dropout(x, 0.3, { generator: g }));
    assert.deepEqual(first, a);
    assert.notDeepEqual(second, first); // the generator advanced
  });
  await t.step("the mask is rand(shape) ≥ p from the same stream", async () => {
    const p = 0.4;
    const y = await vals(dropout(ones([64], f64), p, { generator: new Generator(9) }));
    const u = await vals(rand([64], { dtype: "f64", generator: new Generator(9) }));
    y.forEach((v, i) => assert.equal(v, u[i] >= p ? 1 / (1 - p) : 0));
  });
});
