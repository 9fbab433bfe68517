/**
 * f64 central-difference gradient checks of every differentiable op: the analytic VJP (via `gradients()`,
 * and `backward()` for the same numbers) against numeric derivatives of L = Σ op(...xs) ⊙ W, on several
 * seeded random shapes, with broadcasting wherever the op broadcasts.
 */
import assert from "node:assert/strict";
import {
  abs,
  add,
  astype,
  clamp,
  concat,
  cos,
  crossEntropy,
  type CrossEntropyOptions,
  cumsum,
  customGrad,
  customGradMulti,
  div,
  dropout,
  embedding,
  erf,
  exp,
  expand,
  flatten,
  gather,
  gelu,
  Generator,
  gradients,
  indexAdd,
  indexSelect,
  log,
  logSoftmax,
  logsumexp,
  matmul,
  max,
  maximum,
  mean,
  min,
  minimum,
  mul,
  narrow,
  neg,
  ones,
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
  sumTo,
  tanh,
  type Tensor,
  topk,
  transpose,
  unsqueeze,
  where,
  zeros,
} from "../../mod.ts";
import {
  awayFrom,
  broadcastShapesFrom,
  distinctF64,
  f64Tensor,
  gradcheck,
  i32Tensor,
  randnF64,
  randomIndex,
  randomShape,
  uniformF64,
} from "../helpers/gradcheck.ts";

type Shape = readonly number[];
type Fn = (...xs: Tensor[]) => Tensor;

/** A scalar, a random rank ≥ 1 shape and a random rank ≥ 2 shape, all from `seed`. */
function someShapes(seed: number): Shape[] {
  return [[], randomShape(seed, { minRank: 1 }), randomShape(seed + 1, { minRank: 2 })];
}

function data(t: Tensor): Float64Array {
  return Float64Array.from(t.dataSync());
}

/** The analytic gradient of Σ fn(...xs) ⊙ gOut (gOut defaults to ones) with respect to each input. */
function vjp(fn: Fn, xs: Tensor[], gOut?: Tensor): Float64Array[] {
  const leaves = xs.map((x) => x.detach().requiresGrad_());
  const y = fn(...leaves);
  return gradients(y, leaves, [gOut ?? ones(y.shape, { dtype: "f64" })]).map(data);
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-12, what = "values"): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} vs ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tol * (1 + Math.abs(expected[i])),
      `${what}[${i}]: got ${actual[i]}, expected ${expected[i]}`,
    );
  }
}

/** Shifts `b` until no broadcast pair (a, b) is within 1e-3 of a tie. */
function noTies(a: Tensor, b: Tensor): Tensor {
  while (data(sub(a, b).abs().min())[0] < 1e-3) b = b.add(0.0137);
  return b;
}

// ---- elementwise, one input ------------------------------------------------------------------------

const UNARY: [string, Fn, (shape: Shape, seed: number) => Tensor][] = [
  ["neg", neg, (s, g) => randnF64(s, g)],
  ["abs (away from 0)", abs, (s, g) => awayFrom(s, g, [0], 0.05)],
  ["exp", exp, (s, g) => randnF64(s, g)],
  ["log (positive)", log, (s, g) => uniformF64(s, g, 0.2, 3)],
  ["sqrt (positive)", sqrt, (s, g) => uniformF64(s, g, 0.2, 3)],
  ["rsqrt (positive)", rsqrt, (s, g) => uniformF64(s, g, 0.2, 3)],
  ["tanh", tanh, (s, g) => randnF64(s, g, 1.5)],
  ["sigmoid", sigmoid, (s, g) => randnF64(s, g, 2)],
  ["relu (away from 0)", relu, (s, g) => awayFrom(s, g, [0], 0.05)],
  ["gelu exact", (x) => gelu(x), (s, g) => randnF64(s, g, 2)],
  ["gelu tanh", (x) => gelu(x, "tanh"), (s, g) => randnF64(s, g, 2)],
  ["silu", silu, (s, g) => randnF64(s, g, 2)],
  ["erf", erf, (s, g) => randnF64(s, g, 1.5)],
  ["sin", sin, (s, g) => randnF64(s, g, 2)],
  ["cos", cos, (s, g) => randnF64(s, g, 2)],
  ["sign (no gradient)", sign, (s, g) => awayFrom(s, g, [0], 0.05)],
  ["square (x·x, one tensor twice)", (x) => x.square(), (s, g) => randnF64(s, g)],
];

Deno.test("gradcheck: unary elementwise ops", async (t) => {
  for (const [k, [name, fn, input]] of UNARY.entries()) {
    await t.step(name, () => {
      for (const [j, shape] of someShapes(100 + 10 * k).entries()) {
        gradcheck(fn, [input(shape, 1000 + 10 * k + j)], { name: `${name} ${JSON.stringify(shape)}` });
      }
    });
  }

  await t.step("erf and gelu across erf's series / continued-fraction / saturated branches", () => {
    const x = f64Tensor([-7, -4.5, -3.2, -3.0001, -2.9999, -1, 0, 0.3, 2.9999, 3.0001, 4.5, 5.9, 6.1, 7]);
    gradcheck(erf, [x], { name: "erf" });
    gradcheck((v) => gelu(v), [x.mul(Math.SQRT2)], { name: "gelu exact" });
    gradcheck((v) => gelu(v, "tanh"), [x], { name: "gelu tanh" });
  });

  await t.step("saturating ops far out (sigmoid, tanh, silu) stay finite and correct", () => {
    const x = f64Tensor([-30, -12, -5, 5, 12, 30]);
    for (const [name, fn] of [["sigmoid", sigmoid], ["tanh", tanh], ["silu", silu]] as const) {
      gradcheck(fn, [x], { name });
    }
  });

  await t.step("abs and relu at exactly 0 give gradient 0 (PyTorch convention)", () => {
    const x = f64Tensor([-1, 0, 2]);
    assert.deepEqual([...vjp(abs, [x])[0]], [-1, 0, 1]);
    assert.deepEqual([...vjp(relu, [x])[0]], [0, 0, 1]);
  });
});

// ---- elementwise, two inputs with broadcasting -------------------------------------------------------

const BINARY: [string, Fn, (shape: Shape, seed: number) => Tensor, (shape: Shape, seed: number) => Tensor][] = [
  ["add", add, (s, g) => randnF64(s, g), (s, g) => randnF64(s, g)],
  ["sub", sub, (s, g) => randnF64(s, g), (s, g) => randnF64(s, g)],
  ["mul", mul, (s, g) => randnF64(s, g), (s, g) => randnF64(s, g)],
  ["div", div, (s, g) => randnF64(s, g), (s, g) => awayFrom(s, g, [0], 0.3)],
  ["pow tensor^tensor", pow, (s, g) => uniformF64(s, g, 0.3, 2), (s, g) => randnF64(s, g)],
  ["maximum (no ties)", maximum, (s, g) => randnF64(s, g), (s, g) => randnF64(s, g)],
  ["minimum (no ties)", minimum, (s, g) => randnF64(s, g), (s, g) => randnF64(s, g)],
];

Deno.test("gradcheck: binary elementwise ops with broadcasting", async (t) => {
  for (const [k, [name, fn, inA, inB]] of BINARY.entries()) {
    await t.step(name, () => {
      const pairs: Shape[][] = [[[2, 3], [2, 3]], [[2, 3], [3]], [[4, 1], [1, 3]], [[], [2, 2]], [[2, 1, 3], [4, 1]]];
      for (let j = 0; j < 4; j++) pairs.push(broadcastShapesFrom(200 + 10 * k + j, 2));
      for (const [j, [sa, sb]] of pairs.entries()) {
        const a = inA(sa, 2000 + 20 * k + j);
        let b = inB(sb, 3000 + 20 * k + j);
        if (name.startsWith("max") || name.startsWith("min")) b = noTies(a, b);
        gradcheck(fn, [a, b], { name: `${name} ${JSON.stringify(sa)} ⊕ ${JSON.stringify(sb)}` });
      }
    });
  }

  await t.step("scalar (number) operands on either side", () => {
    const x = randnF64([3, 4], 11);
    const xNz = awayFrom([3, 4], 13, [0, 0.3], 0.1);
    const cases: [string, Fn, Tensor][] = [
      ["add(x, 2.5)", (v) => add(v, 2.5), x],
      ["add(2.5, x)", (v) => add(2.5, v), x],
      ["sub(x, 1)", (v) => sub(v, 1), x],
      ["sub(1, x)", (v) => sub(1, v), x],
      ["mul(x, -1.5)", (v) => mul(v, -1.5), x],
      ["mul(-1.5, x)", (v) => mul(-1.5, v), x],
      ["div(x, 2)", (v) => div(v, 2), x],
      ["div(3, x)", (v) => div(3, v), xNz],
      ["maximum(x, 0.3)", (v) => maximum(v, 0.3), xNz],
      ["minimum(0.3, x)", (v) => minimum(0.3, v), xNz],
    ];
    for (const [name, fn, input] of cases) gradcheck(fn, [input], { name });
  });

  await t.step("pow tensor^number and number^tensor", () => {
    const x = randnF64([2, 3, 2], 21);
    const xPos = uniformF64([2, 3, 2], 22, 0.3, 2.5);
    gradcheck((v) => pow(v, 2), [x], { name: "x^2" });
    gradcheck((v) => pow(v, 3), [x], { name: "x^3" });
    gradcheck((v) => pow(v, 0), [x], { name: "x^0" });
    gradcheck((v) => pow(v, 0.5), [xPos], { name: "x^0.5" });
    gradcheck((v) => pow(v, -1.5), [xPos], { name: "x^-1.5" });
    gradcheck((v) => v.pow(2.7), [xPos], { name: "x.pow(2.7)" });
    gradcheck((v) => pow(2.5, v), [x], { name: "2.5^x" });
    gradcheck((v) => pow(0.4, v), [x], { name: "0.4^x" });
  });

  await t.step("pow: d/db of 0^b is 0 for b ≥ 0 (PyTorch convention), finite", () => {
    const a = f64Tensor([0, 0, 2]), b = f64Tensor([2, 0.5, 1.5]);
    const [, gb] = vjp(pow, [a, b]);
    assertClose(gb, [0, 0, Math.pow(2, 1.5) * Math.log(2)]);
  });

  await t.step("pow: d/da of a^0 is 0, also at a = 0 (PyTorch), and 0^1 has slope 1", () => {
    const [ga] = vjp((v) => pow(v, 0), [f64Tensor([0, 1.5, -2])]);
    assert.deepEqual([...ga].map((v) => v + 0), [0, 0, 0]);
    const [ga2, gb2] = vjp(pow, [f64Tensor([0, 0, 3]), f64Tensor([0, 1, 0])]);
    assert.deepEqual([...ga2].map((v) => v + 0), [0, 1, 0]);
    assertClose(gb2, [0, 0, Math.log(3)]);
  });

  await t.step("maximum / minimum ties split the gradient 0.5 / 0.5 (PyTorch)", () => {
    const a = f64Tensor([1, 2, 3, -1]), b = f64Tensor([1, 5, 3, -2]);
    const [ga, gb] = vjp(maximum, [a, b]);
    assert.deepEqual([...ga], [0.5, 0, 0.5, 1]);
    assert.deepEqual([...gb], [0.5, 1, 0.5, 0]);
    const [ha, hb] = vjp(minimum, [a, b]);
    assert.deepEqual([...ha], [0.5, 1, 0.5, 0]);
    assert.deepEqual([...hb], [0.5, 0, 0.5, 1]);
    // Broadcast ties: b [3] against a [2, 3]; b's gradient sums the halves over the broadcast axis.
    const a2 = f64Tensor([[1, 2, 3], [1, 0, 4]]), b2 = f64Tensor([1, 2, 0]);
    const [ga2, gb2] = vjp(maximum, [a2, b2]);
    assert.deepEqual([...ga2], [0.5, 0.5, 1, 0.5, 0, 1]);
    assert.deepEqual([...gb2], [1, 1.5, 0]);
    // max(x, x) = x: the two halves add back up to 1.
    const x = randnF64([5], 31);
    assert.deepEqual([...vjp((v) => maximum(v, v), [x])[0]], [1, 1, 1, 1, 1]);
    assert.deepEqual([...vjp((v) => minimum(v, v), [x])[0]], [1, 1, 1, 1, 1]);
  });

  await t.step("where: both branches, broadcast cond and branches", () => {
    const triples: Shape[][] = [[[2, 3], [2, 3], [2, 3]], [[3], [2, 1], [1]], [[2, 1, 3], [], [4, 1]]];
    for (let j = 0; j < 5; j++) triples.push(broadcastShapesFrom(400 + j, 3));
    for (const [j, [sc, sa, sb]] of triples.entries()) {
      const cond = rand(sc, { dtype: "f64", generator: new Generator(410 + j) }).gt(0.5);
      const a = randnF64(sa, 420 + j), b = randnF64(sb, 430 + j);
      const name = `where ${JSON.stringify([sc, sa, sb])}`;
      gradcheck((x, y) => where(cond, x, y), [a, b], { name });
      gradcheck((x) => where(cond, x, 0), [a], { name: `${name}, b = 0` });
      gradcheck((y) => where(cond, 2, y), [b], { name: `${name}, a = 2` });
      gradcheck((x, y) => x.where(cond, y), [a, b], { name: `Tensor.where ${name}` });
    }
  });

  await t.step("clamp (inputs away from the bounds) and its gradient at the bounds", () => {
    for (const [j, shape] of someShapes(500).entries()) {
      const x = awayFrom(shape, 510 + j, [-0.5, 0.5], 0.05);
      gradcheck((v) => clamp(v, -0.5, 0.5), [x], { name: "clamp(-0.5, 0.5)" });
      gradcheck((v) => clamp(v, -0.5), [x], { name: "clamp(min)" });
      gradcheck((v) => clamp(v, undefined, 0.5), [x], { name: "clamp(max)" });
      gradcheck((v) => v.clamp(-0.5, 0.5), [x], { name: "Tensor.clamp" });
    }
    // PyTorch: the gradient passes where min ≤ x ≤ max (bounds included).
    assert.deepEqual([...vjp((v) => clamp(v, -0.5, 0.5), [f64Tensor([-0.5, 0.5, 0.7, -0.9, 0])])[0]], [1, 1, 0, 0, 1]);
  });
});

// ---- reductions ---------------------------------------------------------------------------------------

const AXES: (number | number[] | undefined)[] = [undefined, 0, 1, -1, [0, 2], [-1, 0], [0, 1, 2], []];

Deno.test("gradcheck: reductions", async (t) => {
  const reducers: [string, (x: Tensor, axis: number | number[] | undefined, keepdim: boolean) => Tensor][] = [
    ["sum", (x, a, k) => sum(x, a, k)],
    ["mean", (x, a, k) => mean(x, a, k)],
    ["max (distinct values)", (x, a, k) => max(x, a, k)],
    ["min (distinct values)", (x, a, k) => min(x, a, k)],
    ["logsumexp", (x, a, k) => logsumexp(x, a, k)],
  ];
  for (const [k, [name, op]] of reducers.entries()) {
    await t.step(name, () => {
      const x = distinctF64([2, 3, 4], 600 + k, 0.15);
      for (const axis of AXES) {
        for (const keepdim of [false, true]) {
          gradcheck((v) => op(v, axis, keepdim), [x], {
            name: `${name} axis ${JSON.stringify(axis)} keepdim ${keepdim}`,
          });
        }
      }
      for (const [j, shape] of someShapes(620 + 10 * k).entries()) {
        const y = distinctF64(shape, 640 + 10 * k + j, 0.15);
        gradcheck((v) => op(v, undefined, false), [y], { name: `${name} all ${JSON.stringify(shape)}` });
        if (shape.length > 0) gradcheck((v) => op(v, -1, true), [y], { name: `${name} -1 ${JSON.stringify(shape)}` });
      }
    });
  }

  await t.step("Tensor methods sum/mean/max/min/logsumexp", () => {
    const x = distinctF64([3, 4], 690);
    gradcheck((v) => v.sum(1), [x], { name: "x.sum(1)" });
    gradcheck((v) => v.mean(0, true), [x], { name: "x.mean(0, true)" });
    gradcheck((v) => v.max(-1), [x], { name: "x.max(-1)" });
    gradcheck((v) => v.min(), [x], { name: "x.min()" });
    gradcheck((v) => v.logsumexp([0, 1]), [x], { name: "x.logsumexp([0, 1])" });
  });

  await t.step("max / min ties share the gradient evenly (torch.amax)", () => {
    const x = f64Tensor([[1, 3, 3], [2, 2, 0]]);
    assert.deepEqual([...vjp((v) => max(v, 1), [x])[0]], [0, 0.5, 0.5, 0.5, 0.5, 0]);
    assert.deepEqual([...vjp((v) => max(v), [x])[0]], [0, 0.5, 0.5, 0, 0, 0]);
    assert.deepEqual([...vjp((v) => min(v, 0), [x])[0]], [1, 0, 0, 0, 1, 1]);
    assert.deepEqual([...vjp((v) => min(v, 1), [f64Tensor([[1, 3, 1], [2, 2, 5]])])[0]], [0.5, 0, 0.5, 0.5, 0.5, 0]);
  });

  await t.step("sumTo (the adjoint of broadcasting)", () => {
    const x = randnF64([2, 3, 4], 695);
    for (const target of [[3, 4], [3, 1], [1, 4], [2, 1, 4], [1], []]) {
      gradcheck((v) => sumTo(v, target), [x], { name: `sumTo ${JSON.stringify(target)}` });
    }
  });

  await t.step("logsumexp with −∞ entries: gradient 0 there, finite elsewhere", () => {
    const x = f64Tensor([[0.3, -Infinity, 1.2, -Infinity], [0.1, 0.5, -0.7, 2], [-Infinity, -Infinity, 0.4, -1]]);
    const inf = [...x.dataSync()].map((v) => v === -Infinity);
    for (const axis of [1, -1, undefined, [0, 1], 0]) {
      for (const keepdim of [false, true]) {
        const r = gradcheck((v) => logsumexp(v, axis, keepdim), [x], {
          name: `logsumexp −∞ axis ${JSON.stringify(axis)}`,
        });
        r.analytic[0].forEach((g, i) => {
          assert.ok(Number.isFinite(g), `gradient ${i} is ${g}`);
          if (inf[i]) assert.ok(g === 0, `gradient at −∞ entry ${i} is ${g}`);
        });
      }
    }
  });

  await t.step("logsumexp over an empty axis is −∞ (PyTorch); gradients of empty inputs are empty", () => {
    const e = zeros([2, 0], { dtype: "f64" });
    assert.deepEqual([...logsumexp(e, 1).dataSync()], [-Infinity, -Infinity]);
    const leaf = e.detach().requiresGrad_(), w = randnF64([3], 1);
    const fns: [string, (v: Tensor) => Tensor][] = [
      ["logsumexp", (v) => logsumexp(v, 1).sum()],
      ["sum", (v) => sum(v, 1).mul(f64Tensor([1.5, -2])).sum()],
      ["softmax", (v) => softmax(v, 1).sum()],
      ["matmul K = 0", (v) => matmul(v, zeros([0, 3], { dtype: "f64" })).mul(w).sum()],
    ];
    for (const [name, fn] of fns) {
      const [g] = gradients(fn(leaf), [leaf]);
      assert.deepEqual(g.shape, [2, 0], name);
    }
  });

  await t.step("logsumexp of large values is stable and its gradient is the softmax", () => {
    const x = f64Tensor([[1000, 1000.5, 999], [-1000, -1001, -999.5]]);
    const g = vjp((v) => logsumexp(v, 1), [x])[0];
    assertClose(g, data(softmax(x, 1)), 1e-12, "d logsumexp");
  });
});

// ---- softmax family ---------------------------------------------------------------------------------

Deno.test("gradcheck: softmax and logSoftmax", async (t) => {
  const cases: [Shape, number][] = [
    [[5], 0],
    [[5], -1],
    [[3, 4], -1],
    [[3, 4], 0],
    [[2, 3, 4], 0],
    [[2, 3, 4], 1],
    [[2, 3, 4], -1],
    [[1, 1], 0],
  ];
  await t.step("softmax along different axes", () => {
    for (const [j, [shape, axis]] of cases.entries()) {
      gradcheck((v) => softmax(v, axis), [randnF64(shape, 700 + j, 2)], { name: `softmax ${shape} axis ${axis}` });
      gradcheck((v) => v.softmax(axis), [randnF64(shape, 720 + j, 2)], { name: `x.softmax ${shape} axis ${axis}` });
    }
  });
  await t.step("logSoftmax along different axes", () => {
    for (const [j, [shape, axis]] of cases.entries()) {
      gradcheck((v) => logSoftmax(v, axis), [randnF64(shape, 740 + j, 2)], {
        name: `logSoftmax ${shape} axis ${axis}`,
      });
      gradcheck((v) => v.logSoftmax(axis), [randnF64(shape, 760 + j, 2)], {
        name: `x.logSoftmax ${shape} axis ${axis}`,
      });
    }
  });

  const masked = f64Tensor([[0.3, -Infinity, 1.2, -0.4], [-Infinity, 0.5, -Infinity, 2], [0.7, -1.1, 0.2, -Infinity]]);
  const isInf = [...masked.dataSync()].map((v) => v === -Infinity);
  const finite = masked.ne(-Infinity);

  await t.step("softmax with −∞ entries: gradient 0 there, finite elsewhere", () => {
    for (const axis of [-1, 0]) {
      const r = gradcheck((v) => softmax(v, axis), [masked], { name: `softmax −∞ axis ${axis}` });
      r.analytic[0].forEach((g, i) => {
        assert.ok(Number.isFinite(g), `gradient ${i} is ${g}`);
        if (isInf[i]) assert.ok(g === 0, `gradient at −∞ entry ${i} is ${g}`);
      });
    }
  });

  await t.step("logSoftmax with −∞ entries (masked outputs unused): gradient 0 there, finite elsewhere", () => {
    // log p = −∞ at masked entries, so a loss can only use the finite outputs (as cross-entropy does). The
    // gradient reaching a −∞ input is then exactly 0. (With a non-zero upstream gradient at a −∞ output,
    // PyTorch's and moegrad's VJP pass it through unchanged: ∂(x_i − lse)/∂x_i = 1.)
    for (const axis of [-1, 0]) {
      const r = gradcheck((v) => where(finite, logSoftmax(v, axis), 0), [masked], {
        name: `logSoftmax −∞ axis ${axis}`,
      });
      r.analytic[0].forEach((g, i) => {
        assert.ok(Number.isFinite(g), `gradient ${i} is ${g}`);
        if (isInf[i]) assert.ok(g === 0, `gradient at −∞ entry ${i} is ${g}`);
      });
    }
  });
});

// ---- matmul -----------------------------------------------------------------------------------------

Deno.test("gradcheck: matmul", async (t) => {
  const cases: [string, Shape, Shape][] = [
    ["2-D", [3, 4], [4, 2]],
    ["2-D, 1×1", [1, 1], [1, 1]],
    ["batched", [2, 3, 4], [2, 4, 5]],
    ["broadcast batch dims", [2, 1, 3, 4], [3, 4, 2]],
    ["broadcast batch dims, both sides", [2, 1, 3, 2], [1, 3, 2, 3]],
    ["2-D @ batched", [3, 4], [2, 4, 5]],
    ["batch-1 @ batched", [1, 3, 4], [2, 4, 2]],
    ["batched @ batch-1", [2, 3, 4], [1, 4, 2]],
    ["x[B,T,d] @ W[d,n]", [2, 3, 4], [4, 5]],
    ["4-D", [2, 2, 3, 4], [2, 2, 4, 3]],
    ["1-D @ 2-D", [4], [4, 3]],
    ["2-D @ 1-D", [3, 4], [4]],
    ["1-D @ 1-D (dot)", [4], [4]],
    ["1-D @ batched", [4], [2, 4, 3]],
    ["batched @ 1-D", [2, 3, 4], [4]],
  ];
  for (const [j, [name, sa, sb]] of cases.entries()) {
    await t.step(`${name}: ${JSON.stringify(sa)} @ ${JSON.stringify(sb)}`, () => {
      const a = randnF64(sa, 800 + j), b = randnF64(sb, 830 + j);
      gradcheck(matmul, [a, b], { name: `matmul ${name}` });
      gradcheck((x, y) => x.matmul(y), [a, b], { name: `Tensor.matmul ${name}`, wrt: [1] });
    });
  }
  await t.step("same tensor on both sides (x @ xᵀ)", () => {
    gradcheck((x) => matmul(x, transpose(x)), [randnF64([3, 4], 870)], { name: "x @ xᵀ" });
  });
});

// ---- layout -----------------------------------------------------------------------------------------

Deno.test("gradcheck: layout ops", async (t) => {
  const x = randnF64([2, 3, 4], 900);
  await t.step("reshape", () => {
    for (const target of [[4, 6], [-1, 2], [24], [2, -1, 3], [1, 24, 1]]) {
      gradcheck((v) => reshape(v, target), [x], { name: `reshape ${JSON.stringify(target)}` });
    }
    gradcheck((v) => v.reshape(6, 4), [x], { name: "x.reshape(6, 4)" });
    gradcheck((v) => reshape(v, []), [randnF64([1, 1], 901)], { name: "reshape to scalar" });
    gradcheck((v) => reshape(v, [1, 1, 1]), [randnF64([], 902)], { name: "reshape from scalar" });
  });
  await t.step("flatten", () => {
    for (const [s, e] of [[0, -1], [1, 2], [0, 1], [-2, -1], [1, 1]]) {
      gradcheck((v) => flatten(v, s, e), [x], { name: `flatten(${s}, ${e})` });
    }
    gradcheck((v) => flatten(v), [randnF64([], 903)], { name: "flatten scalar" });
  });
  await t.step("squeeze / unsqueeze", () => {
    const y = randnF64([1, 3, 1, 2], 904);
    gradcheck((v) => squeeze(v), [y], { name: "squeeze()" });
    gradcheck((v) => squeeze(v, 2), [y], { name: "squeeze(2)" });
    gradcheck((v) => squeeze(v, -4), [y], { name: "squeeze(-4)" });
    for (const axis of [0, 1, 3, -1, -2]) gradcheck((v) => unsqueeze(v, axis), [x], { name: `unsqueeze(${axis})` });
    gradcheck((v) => v.unsqueeze(0).squeeze(0), [x], { name: "unsqueeze∘squeeze" });
  });
  await t.step("permute / transpose", () => {
    for (const dims of [[2, 0, 1], [1, 2, 0], [0, 2, 1], [-1, 0, 1], [0, 1, 2]]) {
      gradcheck((v) => permute(v, dims), [x], { name: `permute ${JSON.stringify(dims)}` });
    }
    gradcheck((v) => permute(v, [1, 0]), [randnF64([3, 5], 905)], { name: "permute 2-D" });
    gradcheck((v) => transpose(v), [x], { name: "transpose()" });
    gradcheck((v) => transpose(v, 0, 2), [x], { name: "transpose(0, 2)" });
    gradcheck((v) => v.transpose(0, -2), [x], { name: "x.transpose(0, -2)" });
  });
  await t.step("expand", () => {
    gradcheck((v) => expand(v, [2, 3, 4]), [randnF64([3, 1], 906)], { name: "expand [3,1]→[2,3,4]" });
    gradcheck((v) => expand(v, [5]), [randnF64([1], 907)], { name: "expand [1]→[5]" });
    gradcheck((v) => expand(v, [2, 2]), [randnF64([], 908)], { name: "expand []→[2,2]" });
    gradcheck((v) => expand(v, [-1, 3, -1]), [randnF64([2, 1, 4], 909)], { name: "expand with −1" });
    gradcheck((v) => expand(v, [2, -1]), [randnF64([3], 910)], { name: "expand new leading axis, −1" });
    gradcheck((v) => v.expand(2, 3, 4), [x], { name: "expand to the same shape" });
  });
  await t.step("slice (steps > 1, negative indices, clipping, empty)", () => {
    const y = randnF64([5, 6], 911);
    const specs: [number, number, number | undefined, number][] = [
      [1, 1, 5, 2],
      [0, -3, -1, 1],
      [-1, -5, undefined, 3],
      [0, 0, 100, 2],
      [1, -100, 3, 1],
      [1, 4, 2, 1],
      [0, 4, undefined, 1],
      [-2, 0, undefined, 4],
    ];
    for (const [axis, start, end, step] of specs) {
      gradcheck((v) => slice(v, axis, start, end, step), [y], {
        name: `slice(${axis}, ${start}, ${end}, ${step})`,
      });
    }
    gradcheck((v) => v.slice(1, 0, 3, 2), [x], { name: "x.slice on 3-D" });
  });
  await t.step("narrow", () => {
    gradcheck((v) => narrow(v, 0, 1, 1), [x], { name: "narrow(0, 1, 1)" });
    gradcheck((v) => narrow(v, -1, 1, 2), [x], { name: "narrow(-1, 1, 2)" });
    gradcheck((v) => v.narrow(1, 0, 3), [x], { name: "x.narrow(1, 0, 3)" });
  });
  await t.step("sliceScatter (base and src)", () => {
    const base = randnF64([5, 6], 912);
    const specs: [number, number, number | undefined, number][] = [
      [1, 1, 5, 2],
      [0, -3, -1, 1],
      [-1, -5, undefined, 3],
      [0, 0, undefined, 1],
    ];
    for (const [j, [axis, start, end, step]] of specs.entries()) {
      const srcShape = slice(base, axis, start, end, step).shape;
      const src = randnF64(srcShape, 913 + j);
      gradcheck((b, s) => sliceScatter(b, s, axis, start, end, step), [base, src], {
        name: `sliceScatter(${axis}, ${start}, ${end}, ${step})`,
      });
    }
  });
  await t.step("concat", () => {
    const a = randnF64([2, 1, 3], 920), b = randnF64([2, 4, 3], 921), c = randnF64([2, 2, 3], 922);
    gradcheck((p, q, r) => concat([p, q, r], 1), [a, b, c], { name: "concat axis 1" });
    gradcheck((p, q) => concat([p, q], 0), [a, randnF64([3, 1, 3], 923)], { name: "concat axis 0" });
    gradcheck((p, q) => concat([p, q], -1), [a, randnF64([2, 1, 2], 924)], { name: "concat axis −1" });
    gradcheck((p) => concat([p, p.mul(2), p], 1), [a], { name: "concat of one tensor three times" });
    gradcheck((p, q) => concat([p, q], 1), [a, b], { name: "concat, only one input watched", wrt: [0] });
  });
  await t.step("stack", () => {
    const a = randnF64([2, 3], 925), b = randnF64([2, 3], 926), c = randnF64([2, 3], 927);
    for (const axis of [0, 1, 2, -1]) {
      gradcheck((p, q, r) => stack([p, q, r], axis), [a, b, c], { name: `stack axis ${axis}` });
    }
    gradcheck((p, q) => stack([p, q]), [randnF64([], 928), randnF64([], 929)], { name: "stack scalars" });
  });
  await t.step("split", () => {
    const y = randnF64([5, 4], 930);
    for (const [sizes, axis] of [[[2, 3], 0], [2, 1], [3, 0], [[1, 0, 3], 1]] as [number | number[], number][]) {
      const n = split(y, sizes, axis).length;
      for (let k = 0; k < n; k++) {
        gradcheck((v) => split(v, sizes, axis)[k], [y], { name: `split ${JSON.stringify(sizes)} axis ${axis} #${k}` });
      }
      gradcheck((v) => concat(split(v, sizes, axis).map((p, i) => p.mul(i + 1)), axis), [y], {
        name: `split ${JSON.stringify(sizes)} recombined`,
      });
    }
    gradcheck((v) => v.split(2, 1)[1], [y], { name: "x.split" });
  });
});

// ---- indexing ---------------------------------------------------------------------------------------

Deno.test("gradcheck: indexing ops", async (t) => {
  await t.step("gather (repeated indices, index smaller than the input)", () => {
    const x = randnF64([3, 4], 1100);
    gradcheck((v) => gather(v, 1, i32Tensor([[0, 3, 3, 1, 0], [2, 2, 2, 2, 2], [1, 0, 3, 3, 1]])), [x], {
      name: "gather axis 1",
    });
    gradcheck((v) => gather(v, 1, i32Tensor([[3], [0]])), [x], { name: "gather axis 1, index [2, 1]" });
    gradcheck((v) => gather(v, 0, randomIndex([5, 4], 3, 1101)), [x], { name: "gather axis 0" });
    gradcheck((v) => gather(v, -2, randomIndex([2, 3], 3, 1102)), [x], { name: "gather axis −2" });
    const y = randnF64([2, 3, 4], 1103);
    gradcheck((v) => gather(v, -1, randomIndex([2, 2, 6], 4, 1104)), [y], { name: "gather 3-D axis −1" });
    gradcheck((v) => v.gather(1, randomIndex([2, 5, 4], 3, 1105)), [y], { name: "x.gather 3-D axis 1" });
  });
  await t.step("scatterAdd (input and src, repeated indices)", () => {
    const x = randnF64([3, 4], 1110);
    const idx1 = i32Tensor([[0, 3, 3, 1, 0], [2, 2, 2, 2, 2], [1, 0, 3, 3, 1]]);
    gradcheck((b, s) => scatterAdd(b, 1, idx1, s), [x, randnF64([3, 5], 1111)], { name: "scatterAdd axis 1" });
    const idx0 = randomIndex([2, 3], 3, 1112);
    gradcheck((b, s) => scatterAdd(b, 0, idx0, s), [x, randnF64([2, 3], 1113)], { name: "scatterAdd axis 0" });
    const y = randnF64([2, 3, 4], 1114), idx2 = randomIndex([2, 3, 6], 4, 1115);
    gradcheck((b, s) => b.scatterAdd(-1, idx2, s), [y, randnF64([2, 3, 6], 1116)], { name: "scatterAdd 3-D" });
    gradcheck((s) => scatterAdd(y, -1, idx2, s), [randnF64([2, 3, 6], 1117)], { name: "scatterAdd src only" });
  });
  await t.step("indexSelect (repeated indices)", () => {
    const x = randnF64([4, 3], 1120);
    gradcheck((v) => indexSelect(v, 0, i32Tensor([2, 0, 2, 3, 2])), [x], { name: "indexSelect axis 0" });
    gradcheck((v) => indexSelect(v, 1, i32Tensor([1, 1])), [x], { name: "indexSelect axis 1" });
    const y = randnF64([2, 4, 3], 1121);
    gradcheck((v) => indexSelect(v, 1, i32Tensor([3, 3, 0, 1, 3])), [y], { name: "indexSelect 3-D axis 1" });
    gradcheck((v) => v.indexSelect(-1, i32Tensor([2, 0, 2, 2])), [y], { name: "indexSelect 3-D axis −1" });
  });
  await t.step("indexAdd (input and src, repeated indices)", () => {
    const x = randnF64([4, 3], 1130);
    gradcheck((b, s) => indexAdd(b, 0, i32Tensor([1, 1, 3]), s), [x, randnF64([3, 3], 1131)], {
      name: "indexAdd axis 0",
    });
    const y = randnF64([2, 4, 3], 1132);
    gradcheck((b, s) => indexAdd(b, 1, i32Tensor([3, 0, 3, 3, 2]), s), [y, randnF64([2, 5, 3], 1133)], {
      name: "indexAdd 3-D axis 1",
    });
    gradcheck((b, s) => b.indexAdd(-1, i32Tensor([2, 2]), s), [y, randnF64([2, 4, 2], 1134)], {
      name: "indexAdd 3-D axis −1",
    });
  });
  await t.step("embedding (repeated ids, 1-D and 2-D ids)", () => {
    const w = randnF64([5, 3], 1140);
    gradcheck((v) => embedding(v, i32Tensor([[1, 4, 1], [0, 1, 1]])), [w], { name: "embedding 2-D ids" });
    gradcheck((v) => embedding(v, i32Tensor([3, 3, 3, 0])), [w], { name: "embedding 1-D ids" });
  });
});

// ---- order statistics and scans ------------------------------------------------------------------------

Deno.test("gradcheck: topk, sort, cumsum", async (t) => {
  await t.step("topk values", () => {
    const x = distinctF64([3, 5], 1200);
    gradcheck((v) => topk(v, 2).values, [x], { name: "topk k=2 largest" });
    gradcheck((v) => topk(v, 3, { largest: false }).values, [x], { name: "topk k=3 smallest" });
    gradcheck((v) => topk(v, 5).values, [x], { name: "topk k=n" });
    gradcheck((v) => topk(v, 2, { axis: 0 }).values, [x], { name: "topk axis 0" });
    const y = distinctF64([2, 4, 3], 1201);
    gradcheck((v) => v.topk(2, { axis: 1 }).values, [y], { name: "topk 3-D axis 1" });
    gradcheck((v) => topk(v, 1, { axis: -1, largest: false }).values, [y], { name: "topk 3-D k=1 smallest" });
    gradcheck((v) => topk(v, 3).values, [distinctF64([6], 1202)], { name: "topk 1-D" });
  });
  await t.step("sort values", () => {
    const x = distinctF64([3, 5], 1210);
    gradcheck((v) => sort(v).values, [x], { name: "sort ascending" });
    gradcheck((v) => sort(v, { descending: true }).values, [x], { name: "sort descending" });
    gradcheck((v) => sort(v, { axis: 0 }).values, [x], { name: "sort axis 0" });
    const y = distinctF64([2, 4, 3], 1211);
    gradcheck((v) => v.sort({ axis: 1, descending: true }).values, [y], { name: "sort 3-D axis 1" });
    gradcheck((v) => sort(v).values, [distinctF64([7], 1212)], { name: "sort 1-D" });
  });
  await t.step("cumsum forward and reverse", () => {
    const x = randnF64([3, 4], 1220), y = randnF64([2, 3, 4], 1221);
    for (const reverse of [false, true]) {
      gradcheck((v) => cumsum(v, 0, reverse), [x], { name: `cumsum axis 0 reverse ${reverse}` });
      gradcheck((v) => cumsum(v, -1, reverse), [x], { name: `cumsum axis −1 reverse ${reverse}` });
      gradcheck((v) => v.cumsum(1, reverse), [y], { name: `cumsum 3-D axis 1 reverse ${reverse}` });
      gradcheck((v) => cumsum(v, 0, reverse), [randnF64([5], 1222)], { name: `cumsum 1-D reverse ${reverse}` });
    }
  });
});

// ---- losses -----------------------------------------------------------------------------------------

Deno.test("gradcheck: crossEntropy", async (t) => {
  const logits = randnF64([5, 4], 1300, 1.5);
  const targets = i32Tensor([1, -100, 3, 0, 2]);
  const cases: [string, Tensor, Tensor, CrossEntropyOptions][] = [
    ["mean, one ignored", logits, targets, {}],
    ["sum, one ignored", logits, targets, { reduction: "sum" }],
    ["none, one ignored", logits, targets, { reduction: "none" }],
    ["label smoothing 0.1, mean", logits, targets, { labelSmoothing: 0.1 }],
    ["label smoothing 0.2, sum", logits, targets, { labelSmoothing: 0.2, reduction: "sum" }],
    ["label smoothing 0.3, none", logits, targets, { labelSmoothing: 0.3, reduction: "none" }],
    ["label smoothing 1", logits, targets, { labelSmoothing: 1 }],
    ["ignoreIndex 2", logits, i32Tensor([2, 0, 2, 1, 3]), { ignoreIndex: 2 }],
    ["no ignored targets", logits, i32Tensor([0, 1, 2, 3, 3]), {}],
    ["3-D logits [B, T, C]", randnF64([2, 3, 4], 1301), i32Tensor([[0, 3, -100], [2, 2, 1]]), {}],
    ["3-D, label smoothing, none", randnF64([2, 3, 4], 1302), i32Tensor([[0, 3, -100], [2, 2, 1]]), {
      labelSmoothing: 0.1,
      reduction: "none",
    }],
    ["1-D logits, scalar target", randnF64([4], 1303), i32Tensor([2], []), {}],
  ];
  for (const [name, x, tg, opts] of cases) {
    await t.step(name, () => {
      const r = gradcheck((v) => crossEntropy(v, tg, opts), [x], { name: `crossEntropy ${name}` });
      // Ignored targets get exactly zero gradient in their whole row.
      const ignore = opts.ignoreIndex ?? -100, c = x.shape[x.shape.length - 1];
      [...tg.dataSync()].forEach((v, row) => {
        if (v !== ignore) return;
        for (let j = 0; j < c; j++) assert.equal(r.analytic[0][row * c + j], 0, `row ${row} is ignored`);
      });
    });
  }
});

// ---- casts, dropout, customGrad ------------------------------------------------------------------------

Deno.test("gradcheck: astype, dropout, customGrad", async (t) => {
  await t.step('astype("f64") is the identity', () => {
    const x = randnF64([3, 4], 1400);
    gradcheck((v) => astype(v, "f64"), [x], { name: "astype f64" });
    gradcheck((v) => v.astype("f64").mul(2), [x], { name: "x.astype(f64)·2" });
  });

  await t.step("astype f64 → f32 → f64 passes the gradient back, rounded to f32", () => {
    const x = randnF64([6], 1401), w = randnF64([6], 1402);
    const [g] = vjp((v) => v.astype("f32").astype("f64"), [x], w);
    assert.deepEqual([...g], [...w.dataSync()].map(Math.fround));
  });

  await t.step("dropout with a fixed generator: gradient = mask / (1 − p)", () => {
    for (const [j, [shape, p]] of ([[[4, 5], 0.3], [[3, 2, 4], 0.5], [[7], 0.9]] as [Shape, number][]).entries()) {
      const x = randnF64(shape, 1410 + j), seed = 1420 + j;
      const r = gradcheck((v) => dropout(v, p, { generator: new Generator(seed) }), [x], { name: `dropout p=${p}` });
      const u = rand(shape, { dtype: "f64", generator: new Generator(seed) }).dataSync();
      const expected = r.weights.map((w, i) => (u[i] >= p ? w / (1 - p) : 0));
      assertClose(r.analytic[0], expected, 1e-15, `dropout p=${p} gradient`);
      assert.ok(expected.some((v) => v === 0) && expected.some((v) => v !== 0), "the mask is not trivial");
    }
    const x = randnF64([3, 3], 1430);
    const id = gradcheck((v) => dropout(v, 0.5, { training: false }), [x], { name: "dropout eval" });
    assertClose(id.analytic[0], id.weights, 0, "eval-mode dropout is the identity");
    const p0 = gradcheck((v) => dropout(v, 0), [x], { name: "dropout p=0" });
    assertClose(p0.analytic[0], p0.weights, 0, "p = 0 dropout is the identity");
    const p1 = gradcheck((v) => dropout(v, 1), [x], { name: "dropout p=1" });
    assert.ok(p1.analytic[0].every((v) => v === 0), "p = 1 dropout passes no gradient");
  });

  await t.step("customGrad: the custom gradient (not the derivative) is what arrives", () => {
    // Forward x², backward 3·g: deliberately not the derivative 2x·g.
    const tripled = customGrad((x: Tensor) => ({ value: x.mul(x), grad: (g: Tensor) => [g.mul(3)] }));
    const x = randnF64([2, 3], 1440), w = randnF64([2, 3], 1441);
    const [g] = vjp(tripled, [x], w);
    assertClose(g, [...w.dataSync()].map((v) => 3 * v), 0, "custom gradient");
    // ... the forward value is still x², and gradcheck notices that the gradient is not its derivative.
    assertClose(data(tripled(x)), data(x.mul(x)), 0, "custom forward");
    assert.throws(
      () => gradcheck(tripled, [x], { name: "tripled" }),
      (e: Error) =>
        /gradcheck\[tripled\]: 6 gradient element\(s\) disagree/.test(e.message) && /input 0/.test(e.message),
    );
    // Inside a chain: tanh(custom(2x)) gets tanh' · 3 · 2.
    const [gc] = vjp((v) => tanh(tripled(v.mul(2))), [x], w);
    const y = data(x.mul(2).square().tanh()), wd = w.dataSync();
    assertClose(gc, y.map((t, i) => (1 - t * t) * 3 * 2 * wd[i]), 1e-12, "custom gradient in a chain");
  });

  await t.step("customGrad with several inputs and outputs; null gives zeros", () => {
    const op = customGradMulti((a: Tensor, b: Tensor) => ({
      value: [a.add(b), a.mul(b)],
      grad: ([g1, g2]) => [g1.add(g2), null],
    }));
    const a = randnF64([3], 1450), b = randnF64([3], 1451);
    const la = a.detach().requiresGrad_(), lb = b.detach().requiresGrad_();
    const [o1, o2] = op(la, lb);
    const w1 = randnF64([3], 1452), w2 = randnF64([3], 1453);
    const [ga, gb] = gradients([o1, o2], [la, lb], [w1, w2]).map(data);
    assertClose(ga, data(w1.add(w2)), 0, "first input");
    assert.deepEqual([...gb], [0, 0, 0]);
    // Only one output used: the other gets a zero gradient.
    const [ga2] = gradients(op(la, lb)[1], [la], [w2]).map(data);
    assertClose(ga2, data(w2), 0, "second output only");
  });

  await t.step("customGrad whose gradient is the true derivative passes gradcheck", () => {
    const softplus = customGrad((x: Tensor) => ({
      value: x.exp().add(1).log(),
      grad: (g: Tensor) => [g.mul(x.sigmoid())],
    }));
    gradcheck(softplus, [randnF64([3, 4], 1460, 2)], { name: "softplus (custom)" });
    const ste = customGrad((x: Tensor) => ({ value: x.gt(0).astype("f64"), grad: (g: Tensor) => [g] }));
    const x = awayFrom([5], 1461, [0]), w = randnF64([5], 1462);
    assertClose(vjp(ste, [x], w)[0], data(w), 0, "straight-through estimator");
  });
});
