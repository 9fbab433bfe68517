/**
 * Second (and third) derivatives: `grad(grad(f))` and `gradients(..., {createGraph: true})` against
 * central differences of the first derivative and against closed forms (tanh, sigmoid, gelu, softmax,
 * logsumexp, matmul, a tiny MLP), plus a sweep showing that every op's VJP is itself differentiable.
 */
import assert from "node:assert/strict";
import {
  concat,
  cos,
  crossEntropy,
  cumsum,
  div,
  embedding,
  erf,
  exp,
  expand,
  gather,
  gelu,
  grad,
  gradients,
  indexAdd,
  indexSelect,
  layerNorm,
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
  permute,
  pow,
  relu,
  rsqrt,
  scatterAdd,
  sigmoid,
  silu,
  sin,
  slice,
  sliceScatter,
  softmax,
  sort,
  sqrt,
  stack,
  sum,
  tanh,
  type Tensor,
  topk,
  valueAndGrad,
  where,
} from "../../mod.ts";
import {
  awayFrom,
  distinctF64,
  f64Tensor,
  gradgradcheck,
  i32Tensor,
  randnF64,
  uniformF64,
} from "../helpers/gradcheck.ts";

type Fn = (...xs: Tensor[]) => Tensor;

function data(t: Tensor): Float64Array {
  return Float64Array.from(t.dataSync());
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} vs ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tol * (1 + Math.abs(expected[i])),
      `${what}[${i}]: got ${actual[i]}, expected ${expected[i]}`,
    );
  }
}

/** H·v with the `grad` transform nested: ∇ₓ ⟨∇f(x), v⟩. */
function hvpByGrad(f: (x: Tensor) => Tensor, x: Tensor, v: Tensor): Float64Array {
  return data(grad((y: Tensor) => sum(mul(grad(f)(y), v)))(x));
}

/** H·v with `gradients(..., {createGraph: true})` and a second `gradients`. */
function hvpByGradients(f: (x: Tensor) => Tensor, x: Tensor, v: Tensor): Float64Array {
  const leaf = x.detach().requiresGrad_();
  const [g] = gradients(f(leaf), [leaf], undefined, { createGraph: true });
  assert.ok(g.requiresGrad, "a createGraph gradient is itself differentiable");
  return data(gradients(sum(mul(g, v)), [leaf])[0]);
}

/** H·v by central differences of the (analytic) first derivative along v. */
function hvpNumeric(f: (x: Tensor) => Tensor, x: Tensor, v: Tensor, h = 1e-6): Float64Array {
  const gp = data(grad(f)(x.add(v.mul(h))));
  const gm = data(grad(f)(x.sub(v.mul(h))));
  return gp.map((p, i) => (p - gm[i]) / (2 * h));
}

/** Checks H·v three ways (grad∘grad, createGraph gradients, numeric), and against `expected` if given. */
function checkHvp(name: string, f: (x: Tensor) => Tensor, x: Tensor, v: Tensor, expected?: ArrayLike<number>): void {
  const a = hvpByGrad(f, x, v), b = hvpByGradients(f, x, v), n = hvpNumeric(f, x, v);
  assertClose(a, b, 1e-12, `${name}: grad(grad) vs gradients(createGraph)`);
  for (let i = 0; i < a.length; i++) {
    assert.ok(
      Math.abs(a[i] - n[i]) <= 1e-6 + 1e-5 * Math.abs(n[i]),
      `${name}: Hv[${i}] analytic ${a[i]} vs central differences ${n[i]}`,
    );
  }
  if (expected) assertClose(a, expected, 1e-10, `${name}: closed form`);
}

/** The elementwise second derivative of Σ op(x): the diagonal Hessian summed, via grad∘grad. */
function d2(op: Fn, x: Tensor): Float64Array {
  return data(grad((y: Tensor) => sum(grad((z: Tensor) => sum(op(z)))(y)))(x));
}

Deno.test("second derivatives: closed forms via grad(grad(f))", async (t) => {
  const x = f64Tensor([-2.5, -1, -0.3, 0, 0.4, 1.2, 3]);
  const xs = [...x.dataSync()];

  await t.step("tanh'' = −2t(1 − t²) and tanh''' = −2(1 − t²)(1 − 3t²)", () => {
    assertClose(d2(tanh, x), xs.map((v) => -2 * Math.tanh(v) * (1 - Math.tanh(v) ** 2)), 1e-12, "tanh''");
    const d3 = grad((y: Tensor) => sum(grad((z: Tensor) => sum(grad((w: Tensor) => sum(tanh(w)))(z)))(y)))(x);
    const expected = xs.map((v) => {
      const s = 1 - Math.tanh(v) ** 2;
      return -2 * s * (1 - 3 * Math.tanh(v) ** 2);
    });
    assertClose(data(d3), expected, 1e-12, "tanh'''");
  });

  await t.step("grad(grad(f)) of a one-element input is f''", () => {
    for (const v of [-1.3, 0.2, 2]) {
      const got = grad(grad((y: Tensor) => tanh(y).sum()))(f64Tensor([v]));
      assertClose(data(got), [-2 * Math.tanh(v) * (1 - Math.tanh(v) ** 2)], 1e-12, `tanh''(${v})`);
      const s = 1 / (1 + Math.exp(-v));
      assertClose(
        data(grad(grad((y: Tensor) => sigmoid(y).sum()))(f64Tensor(v))),
        [s * (1 - s) * (1 - 2 * s)],
        1e-12,
        "σ''",
      );
    }
  });

  await t.step("sigmoid'' = s(1 − s)(1 − 2s)", () => {
    const expected = xs.map((v) => {
      const s = 1 / (1 + Math.exp(-v));
      return s * (1 - s) * (1 - 2 * s);
    });
    assertClose(d2(sigmoid, x), expected, 1e-12, "sigmoid''");
  });

  await t.step("gelu'' = φ(x)(2 − x²) (exact)", () => {
    const expected = xs.map((v) => Math.exp(-v * v / 2) / Math.sqrt(2 * Math.PI) * (2 - v * v));
    assertClose(d2((z) => gelu(z), x), expected, 1e-12, "gelu''");
  });

  await t.step("other closed forms: exp, log, sqrt, sin, cos, erf, x³", () => {
    const p = uniformF64([6], 5, 0.3, 3), ps = [...p.dataSync()];
    assertClose(d2(exp, x), xs.map(Math.exp), 1e-12, "exp''");
    assertClose(d2(log, p), ps.map((v) => -1 / (v * v)), 1e-12, "log''");
    assertClose(d2(sqrt, p), ps.map((v) => -0.25 * v ** -1.5), 1e-12, "sqrt''");
    assertClose(d2(rsqrt, p), ps.map((v) => 0.75 * v ** -2.5), 1e-12, "rsqrt''");
    assertClose(d2(sin, x), xs.map((v) => -Math.sin(v)), 1e-12, "sin''");
    assertClose(d2(cos, x), xs.map((v) => -Math.cos(v)), 1e-12, "cos''");
    assertClose(d2(erf, x), xs.map((v) => -4 * v / Math.sqrt(Math.PI) * Math.exp(-v * v)), 1e-12, "erf''");
    assertClose(d2((z) => pow(z, 3), x), xs.map((v) => 6 * v), 1e-12, "(x³)''");
    assertClose(d2(relu, awayFrom([5], 6, [0])), [0, 0, 0, 0, 0], 0, "relu''");
  });

  await t.step("valueAndGrad composes with grad", () => {
    const f = (y: Tensor) => sum(tanh(y));
    const { value, grads } = valueAndGrad((y: Tensor) => sum(grad(f)(y)))(x);
    assertClose(data(value), [xs.reduce((s, v) => s + 1 - Math.tanh(v) ** 2, 0)], 1e-12, "value");
    assertClose(data(grads[0]), d2(tanh, x), 1e-12, "gradient of the gradient");
  });
});

Deno.test("second derivatives: Hessian-vector products", async (t) => {
  await t.step("softmax: f(x) = (Σ softmax(x)·w)²", () => {
    const x = randnF64([6], 10), w = randnF64([6], 11), v = randnF64([6], 12);
    const f = (y: Tensor) => sum(mul(softmax(y), w)).square();
    // Closed form: with p = softmax(x), s = p·w, g = ∇s = p ⊙ (w − s):
    // H = 2ggᵀ + 2s(diag(g) − gpᵀ − pgᵀ).
    const p = data(softmax(x)), wd = data(w), vd = data(v);
    const s = p.reduce((a, pi, i) => a + pi * wd[i], 0);
    const g = p.map((pi, i) => pi * (wd[i] - s));
    const gv = g.reduce((a, gi, i) => a + gi * vd[i], 0), pv = p.reduce((a, pi, i) => a + pi * vd[i], 0);
    const expected = g.map((gi, i) => 2 * gi * gv + 2 * s * (gi * vd[i] - gi * pv - p[i] * gv));
    checkHvp("softmax", f, x, v, expected);
    const x2 = randnF64([3, 4], 13), w2 = randnF64([3, 4], 14), v2 = randnF64([3, 4], 15);
    for (const axis of [0, -1]) {
      checkHvp(`softmax axis ${axis}`, (y) => sum(mul(softmax(y, axis), w2)).square(), x2, v2);
    }
  });

  await t.step("matmul: f(A) = Σ (A B)², H·V = 2 V B Bᵀ", () => {
    const a = randnF64([3, 4], 20), b = randnF64([4, 5], 21), v = randnF64([3, 4], 22);
    const f = (y: Tensor) => sum(matmul(y, b).square());
    const bbt = matmul(b, b.transpose());
    checkHvp("matmul in A", f, a, v, data(matmul(v, bbt).mul(2)));
    // In B: f(B) = Σ (A B)², H·V = 2 Aᵀ A V.
    const vb = randnF64([4, 5], 23);
    checkHvp(
      "matmul in B",
      (y) => sum(matmul(a, y).square()),
      b,
      vb,
      data(matmul(matmul(a.transpose(), a), vb).mul(2)),
    );
  });

  await t.step("logsumexp: H = diag(p) − ppᵀ", () => {
    const x = randnF64([5], 30), v = randnF64([5], 31);
    const p = data(softmax(x)), vd = data(v);
    const pv = p.reduce((a, pi, i) => a + pi * vd[i], 0);
    checkHvp("logsumexp", (y) => logsumexp(y), x, v, p.map((pi, i) => pi * vd[i] - pi * pv));
    // With −∞ entries: their rows and columns of the Hessian are 0.
    const xm = f64Tensor([0.3, -Infinity, 1.2, -Infinity, -0.5]);
    const pm = data(softmax(xm));
    const pvm = pm.reduce((a, pi, i) => a + pi * vd[i], 0);
    const hv = hvpByGradients((y) => logsumexp(y), xm, v);
    assertClose(hv, pm.map((pi, i) => pi * vd[i] - pi * pvm), 1e-12, "logsumexp with −∞");
    assert.ok(hv[1] === 0 && hv[3] === 0, `Hessian rows at −∞ entries: ${hv[1]}, ${hv[3]}`);
  });

  await t.step("sigmoid, tanh, gelu (both), silu: diagonal Hessians", () => {
    const x = randnF64([2, 3], 40, 1.5), v = randnF64([2, 3], 41);
    const ops: [string, Fn][] = [
      ["sigmoid", sigmoid],
      ["tanh", tanh],
      ["gelu", (y) => gelu(y)],
      ["gelu tanh", (y) => gelu(y, "tanh")],
      ["silu", silu],
    ];
    for (const [name, op] of ops) {
      const dd = d2(op, x), vd = data(v);
      checkHvp(name, (y) => sum(op(y)), x, v, dd.map((h, i) => h * vd[i]));
    }
  });
});

Deno.test("second derivatives: gradgradcheck (central differences of the first derivative)", async (t) => {
  await t.step("tanh, sigmoid, gelu, gelu tanh, silu, softmax, logSoftmax, logsumexp on random shapes", () => {
    const cases: [string, Fn][] = [
      ["tanh", tanh],
      ["sigmoid", sigmoid],
      ["gelu", (x) => gelu(x)],
      ["gelu tanh", (x) => gelu(x, "tanh")],
      ["silu", silu],
      ["softmax -1", (x) => softmax(x, -1)],
      ["softmax 0", (x) => softmax(x, 0)],
      ["logSoftmax -1", (x) => logSoftmax(x, -1)],
      ["logSoftmax 0", (x) => logSoftmax(x, 0)],
      ["logsumexp 1", (x) => logsumexp(x, 1, true)],
      ["logsumexp all", (x) => logsumexp(x)],
    ];
    for (const [k, [name, op]] of cases.entries()) {
      const x = randnF64([2, 3], 100 + k, 1.5), w = randnF64(op(x).shape, 120 + k);
      // A nonlinear scalar of the op's output so that mixed terms appear: Σ w ⊙ op(x) + (Σ op(x)²)/2.
      gradgradcheck((y) => sum(mul(op(y), w)).add(sum(op(y).square()).mul(0.5)), [x], { name });
    }
  });

  await t.step("logsumexp with −∞ entries", () => {
    const x = f64Tensor([[0.3, -Infinity, 1.2], [-Infinity, 0.5, -0.1]]);
    gradgradcheck((y) => sum(logsumexp(y, 1).square()), [x], { name: "logsumexp −∞" });
    gradgradcheck((y) => sum(softmax(y, 1).square()), [x], { name: "softmax −∞" });
  });

  await t.step("matmul in both operands (2-D, batched, broadcast, 1-D)", () => {
    const cases: [number[], number[]][] = [
      [[3, 4], [4, 2]],
      [[2, 3, 4], [2, 4, 2]],
      [[2, 1, 2, 3], [3, 3, 2]],
      [[3], [3, 2]],
      [[2, 3], [3]],
      [[2, 3, 4], [4, 2]],
    ];
    for (const [j, [sa, sb]] of cases.entries()) {
      const a = randnF64(sa, 200 + j), b = randnF64(sb, 220 + j);
      gradgradcheck((x, y) => sum(tanh(matmul(x, y))), [a, b], { name: `matmul ${JSON.stringify([sa, sb])}` });
    }
  });

  await t.step("tiny MLP: crossEntropy(tanh(x W1 + b1) W2) in W1, b1, W2", () => {
    const x = randnF64([5, 3], 300), targets = i32Tensor([0, 1, 1, -100, 0]);
    const w1 = randnF64([3, 4], 301, 0.7), b1 = randnF64([4], 302, 0.3), w2 = randnF64([4, 2], 303, 0.7);
    const mlp = (a: Tensor, b: Tensor, c: Tensor) => crossEntropy(matmul(tanh(matmul(x, a).add(b)), c), targets);
    gradgradcheck(mlp, [w1, b1, w2], { name: "MLP" });
    // A GELU MLP with an MSE loss, differentiated in the input as well.
    const y = randnF64([5, 2], 304);
    const mlp2 = (xi: Tensor, a: Tensor, c: Tensor) => mean(matmul(gelu(matmul(xi, a)), c).sub(y).square());
    gradgradcheck(mlp2, [x, w1, w2], { name: "GELU MLP" });
  });

  await t.step("every op's VJP is itself differentiable: Σ w ⊙ sin(op(x))", () => {
    const x34 = randnF64([3, 4], 400), pos = uniformF64([3, 4], 401, 0.4, 2), dx = distinctF64([3, 4], 402);
    const idx = i32Tensor([[0, 3, 3], [2, 2, 0], [1, 0, 3]]);
    const cases: [string, Fn, Tensor[]][] = [
      ["exp", exp, [x34]],
      ["log", log, [pos]],
      ["sqrt", sqrt, [pos]],
      ["rsqrt", rsqrt, [pos]],
      ["sin", sin, [x34]],
      ["cos", cos, [x34]],
      ["erf", erf, [x34]],
      ["relu", relu, [awayFrom([3, 4], 403, [0])]],
      ["abs", (a) => a.abs(), [awayFrom([3, 4], 404, [0])]],
      ["mul broadcast", mul, [x34, randnF64([4], 405)]],
      ["div broadcast", div, [x34, awayFrom([3, 1], 406, [0], 0.3)]],
      ["pow tensor^tensor", pow, [pos, randnF64([4], 407)]],
      ["pow x^2.5", (a) => pow(a, 2.5), [pos]],
      ["pow 2^x", (a) => pow(2, a), [x34]],
      ["maximum", maximum, [x34, randnF64([4], 408).add(0.01)]],
      ["minimum", minimum, [x34, randnF64([4], 408).add(0.01)]],
      ["where", (a, b) => where(x34.gt(0), a, b), [randnF64([3, 4], 409), randnF64([4], 410)]],
      ["clamp", (a) => a.clamp(-0.5, 0.5), [awayFrom([3, 4], 411, [-0.5, 0.5])]],
      ["sum axis 0", (a) => sum(a, 0), [x34]],
      ["mean keepdim", (a) => mean(a, 1, true), [x34]],
      ["max axis 1", (a) => max(a, 1), [dx]],
      ["min all", (a) => min(a), [dx]],
      ["expand", (a) => expand(a, [2, 3, 4]), [randnF64([3, 1], 412)]],
      ["permute", (a) => permute(a, [2, 0, 1]), [randnF64([2, 3, 2], 413)]],
      ["slice step 2", (a) => slice(a, 1, -4, undefined, 2), [x34]],
      ["sliceScatter", (a, b) => sliceScatter(a, b, 1, 0, 4, 2), [x34, randnF64([3, 2], 414)]],
      ["concat", (a, b) => concat([a, b], 1), [x34, randnF64([3, 2], 415)]],
      ["stack", (a, b) => stack([a, b], 1), [x34, randnF64([3, 4], 416)]],
      ["gather", (a) => gather(a, 1, idx), [x34]],
      ["scatterAdd", (a, b) => scatterAdd(a, 1, idx, b), [x34, randnF64([3, 3], 417)]],
      ["indexSelect", (a) => indexSelect(a, 0, i32Tensor([2, 2, 0])), [x34]],
      ["indexAdd", (a, b) => indexAdd(a, 0, i32Tensor([2, 2]), b), [x34, randnF64([2, 4], 418)]],
      ["embedding", (a) => embedding(a, i32Tensor([[1, 1], [0, 2]])), [x34]],
      ["topk", (a) => topk(a, 2).values, [dx]],
      ["sort", (a) => sort(a, { axis: 0, descending: true }).values, [dx]],
      ["cumsum reverse", (a) => cumsum(a, 1, true), [x34]],
      ["matmul transposed operand", (a, b) => matmul(a.transpose(), b), [x34, randnF64([3, 2], 419)]],
      ["crossEntropy smoothing", (a) => crossEntropy(a, i32Tensor([3, -100, 1]), { labelSmoothing: 0.1 }), [x34]],
      ["layerNorm", (a, b, c) => layerNorm(a, { weight: b, bias: c }), [x34, randnF64([4], 420), randnF64([4], 421)]],
    ];
    for (const [k, [name, op, inputs]] of cases.entries()) {
      const w = randnF64(op(...inputs).shape, 500 + k);
      gradgradcheck((...xs: Tensor[]) => sum(mul(sin(op(...xs)), w)), inputs, { name, via: "gradients" });
    }
  });
});
