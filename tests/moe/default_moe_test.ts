import assert from "node:assert/strict";
import { gradients, MoELayer, noGrad, type Tensor, tensor } from "../../mod.ts";
import { DefaultMoeEstimator } from "../../moe/estimators/default_moe.ts";

type M = number[][];

/** Tiny layer: d = 2, E = 3, top-1, linear experts, f64, fixed weights (hand-checkable). */
function tiny(beta: number): MoELayer {
  const moe = new MoELayer(2, {
    numExperts: 3,
    expert: "linear",
    estimator: "default-moe",
    estimatorOptions: { topK: 1, beta },
    dtype: "f64",
  });
  noGrad(() => {
    moe.router.weight.assign_(tensor([[2, 0, -1], [0, 2, -1]], { dtype: "f64" }));
    moe.weights.w.assign_(tensor(EXPERTS, { dtype: "f64" }));
  });
  return moe;
}

const EXPERTS: M[] = [[[1, 2], [3, 4]], [[0, 1], [1, 0]], [[2, 0], [0, -1]]];
// Call 1 routes tokens (0, 1) → expert 0, 2 → 1, 3 → 2; call 2 routes 0 → 1, 1 → 0 (expert 2 gets nothing).
const X1: M = [[1, 0], [2, 0.5], [0, 1], [-1, -1]];
const X2: M = [[0, 2], [3, 1]];

const matvec = (x: number[], w: M) => w[0].map((_, j) => x.reduce((s, xi, i) => s + xi * w[i][j], 0));
const softmax = (z: number[]) => {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};
const ROUTER: M = [[2, 0, -1], [0, 2, -1]];
const argmax = (v: number[]) => v.indexOf(Math.max(...v));

async function rows(t: Tensor): Promise<M> {
  const d = Array.from(await t.data(), Number);
  const c = t.shape[t.rank - 1];
  return Array.from({ length: d.length / c }, (_, i) => d.slice(i * c, (i + 1) * c));
}

function close(actual: M, expected: M, tol = 1e-12) {
  assert.equal(actual.length, expected.length);
  actual.forEach((r, i) =>
    r.forEach((a, j) => assert.ok(Math.abs(a - expected[i][j]) <= tol, `[${i}][${j}] ${a} vs ${expected[i][j]}`))
  );
}

/** Loop reference of one forward: y_t = Σ_{i active} π_i E_i(x_t) + Σ_{i inactive} π_i Ê_i (Ê already updated). */
function loopY(x: M, ehat: M): M {
  return x.map((xt) => {
    const pi = softmax(matvec(xt, ROUTER));
    const a = argmax(pi);
    return [0, 1].map((j) => pi.reduce((s, p, i) => s + p * (i === a ? matvec(xt, EXPERTS[i])[j] : ehat[i][j]), 0));
  });
}

Deno.test("default MoE: the EMA of the default vectors matches a hand computation", async () => {
  const moe = tiny(0.5);
  close(await rows(moe.defaultVectors!), [[0, 0], [0, 0], [0, 0]]); // zero init
  moe.forward(tensor(X1, { dtype: "f64" }));
  // Ê_0 = 0.5·mean([1, 2], [3.5, 6]) = [1.125, 2]; Ê_1 = 0.5·[1, 0]; Ê_2 = 0.5·[-2, 1].
  close(await rows(moe.defaultVectors!), [[1.125, 2], [0.5, 0], [-1, 0.5]]);
  moe.forward(tensor(X2, { dtype: "f64" }));
  // Ê_0 = 0.5·[1.125, 2] + 0.5·[6, 10]; Ê_1 = 0.5·[0.5, 0] + 0.5·[2, 0]; expert 2 had no token: unchanged.
  close(await rows(moe.defaultVectors!), [[3.5625, 6], [1.25, 0], [-1, 0.5]]);
  // Evaluation reads Ê but does not update it.
  moe.eval();
  moe.forward(tensor(X1, { dtype: "f64" }));
  close(await rows(moe.defaultVectors!), [[3.5625, 6], [1.25, 0], [-1, 0.5]]);
  assert.deepEqual(moe.namedBuffers().map(([n]) => n), ["defaultVectors"]);
});

Deno.test("default MoE: the output is Σ_active π_i E_i(x) + Σ_inactive π_i Ê_i with the updated Ê", async () => {
  const moe = tiny(0.9);
  const y1 = moe.forward(tensor(X1, { dtype: "f64" }));
  const e1 = await rows(moe.defaultVectors!);
  close(e1, [[0.225, 0.4], [0.1, 0], [-0.2, 0.1]], 1e-12); // (1−β)·mean, β = 0.9
  close(await rows(y1), loopY(X1, e1));
  const y2 = moe.forward(tensor(X2, { dtype: "f64" }));
  close(await rows(y2), loopY(X2, await rows(moe.defaultVectors!)));
  // The gates are the raw (not renormalised) softmax probabilities by default.
  assert.ok(moe.estimator instanceof DefaultMoeEstimator && !moe.estimator.renormalize);
  // Without the option, the same layer gives only the active term.
  const plain = new MoELayer(2, {
    numExperts: 3,
    expert: "linear",
    estimatorOptions: { topK: 1, renormalize: false },
    dtype: "f64",
  });
  noGrad(() => {
    plain.router.weight.assign_(tensor(ROUTER, { dtype: "f64" }));
    plain.weights.w.assign_(tensor(EXPERTS, { dtype: "f64" }));
  });
  close(await rows(plain.forward(tensor(X1, { dtype: "f64" }))), loopY(X1, [[0, 0], [0, 0], [0, 0]]));
});

Deno.test("default MoE: inactive experts get ∂L/∂π_i = u·Ê_i, and the router gradient follows the softmax chain rule", async () => {
  const moe = tiny(0.5);
  moe.forward(tensor(X1, { dtype: "f64" })); // Ê nonzero for every expert
  const ehat = await rows(moe.defaultVectors!);
  const u: M = [[1, -2], [0.5, 3]];
  const y = moe.forward(tensor(X2, { dtype: "f64" }));
  const ehat2 = await rows(moe.defaultVectors!);
  assert.deepEqual(ehat2[2], ehat[2]);
  const probs = moe.lastRouting!.probs;
  const logits = moe.lastLogits!;
  const loss = y.mul(tensor(u, { dtype: "f64" })).sum();
  // retainGraph: loss.backward() below goes through the same graph again.
  const [gPi, gZ] = await Promise.all(gradients(loss, [probs, logits], undefined, { retainGraph: true }).map(rows));
  const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i], 0);
  const expectedPi = X2.map((xt, t) => {
    const a = argmax(matvec(xt, ROUTER));
    return [0, 1, 2].map((i) => dot(u[t], i === a ? matvec(xt, EXPERTS[i]) : ehat2[i]));
  });
  close(gPi, expectedPi);
  for (const [t, xt] of X2.entries()) {
    const a = argmax(matvec(xt, ROUTER));
    for (let i = 0; i < 3; i++) if (i !== a) assert.ok(Math.abs(gPi[t][i]) > 0.1, `token ${t} expert ${i}`);
  }
  // ∂L/∂z = π ⊙ (g − Σ_j π_j g_j), g = ∂L/∂π.
  const expectedZ = X2.map((xt, t) => {
    const pi = softmax(matvec(xt, ROUTER));
    const mean = dot(pi, expectedPi[t]);
    return pi.map((p, i) => p * (expectedPi[t][i] - mean));
  });
  close(gZ, expectedZ);
  // The router weight's gradient is xᵀ ∂L/∂z.
  loss.backward();
  const gW = await rows(moe.router.weight.grad!);
  close(gW, [0, 1].map((r) => [0, 1, 2].map((i) => X2.reduce((s, xt, t) => s + xt[r] * expectedZ[t][i], 0))));
});

Deno.test("default MoE: β is validated; only an estimator with an output term gets default vectors", () => {
  for (const beta of [-0.1, 1, 1.5, NaN, Infinity, "0.5"]) {
    assert.throws(
      () => new MoELayer(2, { numExperts: 3, estimator: "default-moe", estimatorOptions: { beta } }),
      /"default-moe" option "beta" must be a number in \[0, 1\)/,
      String(beta),
    );
  }
  const zero = new MoELayer(2, { numExperts: 3, estimator: "default-moe", estimatorOptions: { beta: 0 } });
  assert.ok(zero.estimator instanceof DefaultMoeEstimator && zero.estimator.beta === 0);
  assert.ok(!zero.estimator.renormalize); // Σ π over active and default terms stays 1
  assert.equal(
    (new MoELayer(2, { numExperts: 3, estimator: "default-moe" }).estimator as DefaultMoeEstimator).beta,
    0.9,
  );
  const ren = new MoELayer(2, {
    numExperts: 3,
    estimator: "default-moe",
    estimatorOptions: { topK: 2, renormalize: true },
  });
  assert.ok(ren.estimator instanceof DefaultMoeEstimator && ren.estimator.renormalize && ren.estimator.topK === 2);
  assert.equal(new MoELayer(2, { numExperts: 3 }).defaultVectors, null);
  assert.equal(new MoELayer(2, { numExperts: 3 }).outputTerm, null);
  // The layer option it replaces is refused with the field named.
  assert.throws(() => new MoELayer(2, { numExperts: 3, defaultMoe: { beta: 0.9 } } as never), /defaultMoe/);
});
