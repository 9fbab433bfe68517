/**
 * MoELayer's `balanceLoss.scope`: "global" accumulates the routing counts of every training forward in
 * `layer.balanceStats` and uses the pooled f (P̄ from the current micro-batch, the only gradient path).
 */
import assert from "node:assert/strict";
import { noGrad, randn, type Tensor, tensor } from "../../mod.ts";
import { Generator } from "../../core/random/generator.ts";
import { MoELayer } from "../../moe/layer.ts";
import { topkBalanceLoss } from "../../moe/aux_losses.ts";

const E = 4, D = 6, K = 2, COEF = 0.5;
const values = (t: Tensor) => Array.from(t.dataSync(), Number);

function makeLayer(scope?: "local" | "global", form: "switch" | "topk" = "topk", k = K): MoELayer {
  return new MoELayer(D, {
    numExperts: E,
    hidden: 8,
    estimator: "topk",
    estimatorOptions: { topK: k },
    balanceLoss: { coef: COEF, form, scope },
    dtype: "f64",
    generator: new Generator(3),
  });
}

/** Per-expert counts of hard assignments and mean probabilities of the latest forward, read back. */
function routingOf(layer: MoELayer): { counts: number[]; pbar: number[]; n: number } {
  const r = layer.lastRouting!;
  const n = r.probs.shape[0];
  const counts = new Array(E).fill(0);
  for (const i of values(r.experts)) counts[i]++;
  const p = values(r.probs);
  const pbar = Array.from({ length: E }, (_, i) => {
    let s = 0;
    for (let t = 0; t < n; t++) s += p[t * E + i];
    return s / n;
  });
  return { counts, pbar, n };
}

const xs = (seed: number, n: number) => randn([n, D], { dtype: "f64", generator: new Generator(seed) });
/** A skewed micro-batch: one token repeated, so every row goes to the same K experts. */
const skewed = (n: number) => {
  const row = values(xs(11, 1));
  return tensor(Array.from({ length: n }, () => row), { dtype: "f64" });
};

Deno.test("global balance: the loss over two micro-batches equals the formula on the pooled counts", () => {
  const layer = makeLayer("global");
  assert.equal(layer.balanceLoss!.scope, "global");
  assert.ok(layer.balanceStats);
  layer.forward(skewed(5));
  const a = routingOf(layer);
  // First micro-batch: pooled = local.
  const first = a.counts.reduce((s, c, i) => s + c / a.n * a.pbar[i], 0) * E * COEF;
  assert.ok(Math.abs(values(layer.auxLoss()!)[0] - first) < 1e-12);
  layer.forward(xs(1, 7));
  const b = routingOf(layer);
  const pooled = a.counts.map((c, i) => (c + b.counts[i]) / (a.n + b.n));
  const want = pooled.reduce((s, f, i) => s + f * b.pbar[i], 0) * E * COEF;
  const got = values(layer.auxLoss()!)[0];
  assert.ok(Math.abs(got - want) < 1e-12, `${got} vs ${want}`);
  assert.equal(layer.balanceStats!.tokens, 12);
  assert.deepEqual(values(layer.balanceStats!.counts()), a.counts.map((c, i) => c + b.counts[i]));
});

Deno.test("global balance: differs from the local loss on a skewed split; local is unchanged by history", () => {
  const local = makeLayer("local");
  const global = makeLayer("global");
  assert.equal(local.balanceStats, null);
  assert.equal(local.balanceLoss!.scope, "local");
  for (const m of [local, global]) m.forward(skewed(6));
  const x2 = xs(2, 6);
  const l = values(local.forward(x2) && local.auxLoss()!)[0];
  const g = values(global.forward(x2) && global.auxLoss()!)[0];
  // The local loss only sees x2.
  const fresh = makeLayer();
  fresh.forward(x2);
  assert.ok(Math.abs(l - values(fresh.auxLoss()!)[0]) < 1e-12);
  assert.ok(Math.abs(l - g) > 1e-3, `local ${l} vs global ${g}`);
  // The local loss matches the plain top-k formula.
  const r = local.lastRouting!;
  const ref = values(topkBalanceLoss(r.probs, r.experts, E).mul(COEF))[0];
  assert.ok(Math.abs(l - ref) < 1e-12);
});

Deno.test("global balance: resetBalanceStats starts a new step; evaluation neither accumulates nor pools", () => {
  const layer = makeLayer("global");
  layer.forward(skewed(4));
  layer.forward(xs(3, 5));
  assert.equal(layer.balanceStats!.tokens, 9);
  layer.resetBalanceStats();
  assert.equal(layer.balanceStats!.tokens, 0);
  assert.deepEqual(values(layer.balanceStats!.counts()), [0, 0, 0, 0]);
  const x = xs(4, 5);
  layer.forward(x);
  assert.equal(layer.balanceStats!.tokens, 5);
  const local = makeLayer("local");
  local.forward(x);
  assert.ok(Math.abs(values(layer.auxLoss()!)[0] - values(local.auxLoss()!)[0]) < 1e-12);
  // Evaluation: counts untouched, local f.
  layer.eval();
  local.eval();
  layer.forward(skewed(3));
  local.forward(skewed(3));
  assert.equal(layer.balanceStats!.tokens, 5);
  assert.ok(Math.abs(values(layer.auxLoss()!)[0] - values(local.auxLoss()!)[0]) < 1e-12);
  // A local layer's reset is a no-op.
  local.resetBalanceStats();
});

Deno.test("global balance: the gradient flows only through P̄ (autograd on the formula with constant f)", () => {
  for (const [form, k] of [["topk", K], ["switch", 1]] as const) {
    const layer = makeLayer("global", form, k);
    layer.forward(skewed(5));
    const x = xs(5, 7);
    layer.forward(x);
    const f = noGrad(() => layer.balanceStats!.frequencies("f64"));
    assert.equal(f.requiresGrad, false);
    layer.auxLoss()!.backward();
    const got = values(layer.router.weight.grad!);
    // The formula by autograd: α · E · Σ_i f_i · mean_t softmax(x W)_ti, f a constant.
    const w = noGrad(() => layer.router.weight.clone()).requiresGrad_();
    x.matmul(w).softmax(-1).mean(0).mul(f).sum().mul(E * COEF).backward();
    const want = values(w.grad!);
    assert.equal(got.length, want.length);
    got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) < 1e-12, `${form} grad[${i}]: ${g} vs ${want[i]}`));
    assert.ok(want.some((g) => Math.abs(g) > 1e-6), "a non-trivial gradient");
    // No expert weight is on the balance loss's path.
    for (const t of Object.values(layer.weights)) assert.ok(t.grad === null || values(t.grad).every((g) => g === 0));
  }
});

Deno.test("balanceLoss: an unknown scope is rejected", () => {
  assert.throws(
    () =>
      new MoELayer(D, {
        numExperts: E,
        balanceLoss: { coef: 1, form: "topk", scope: "world" as "global" },
      }),
    /scope/,
  );
});
