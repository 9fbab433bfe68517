import assert from "node:assert/strict";
import {
  createEstimator,
  Generator,
  GeneratorDraws,
  MoELayer,
  noGrad,
  randn,
  type Tensor,
  tensor,
  updateExpertBiases,
} from "../../mod.ts";
import { gradcheck } from "../helpers/gradcheck.ts";
import { moeLoopReference } from "../../moe/reference.ts";

const draws = () => new GeneratorDraws(new Generator(0));
const sig = (v: number) => 1 / (1 + Math.exp(-v));
const close = (a: ArrayLike<number>, b: number[], tol = 1e-12) =>
  b.forEach((v, i) => assert.ok(Math.abs(Number(a[i]) - v) <= tol, `[${i}]: ${a[i]} vs ${v}`));
const f64 = (v: number[][] | number[]) => tensor(v, { dtype: "f64" });

Deno.test("sigmoid-topk: top-K of σ(z), gates σ renormalised over the chosen and scaled, probs σ / Σσ", () => {
  const z = [0, 2, 1, -1];
  const s = z.map(sig);
  const r = createEstimator("sigmoid-topk", { topK: 2, routeScale: 2.5 }).route(f64([z]), {
    training: true,
    draws: draws(),
  });
  assert.deepEqual([...r.experts.dataSync()], [1, 2]);
  close(r.gates.dataSync(), [2.5 * s[1] / (s[1] + s[2]), 2.5 * s[2] / (s[1] + s[2])]);
  const total = s.reduce((a, b) => a + b);
  close(r.probs.dataSync(), s.map((v) => v / total));
  const raw = createEstimator("sigmoid-topk", { topK: 2, renormalize: false }).route(f64([z]), {
    training: false,
    draws: draws(),
  });
  close(raw.gates.dataSync(), [s[1], s[2]]);
});

Deno.test("a selection bias changes which experts are chosen, never the gates' values (topk and sigmoid-topk)", () => {
  const z = [0, 2, 1, -1];
  const bias = f64([0, -1, 0, 0.5]);
  // sigmoid: s + b = [0.5, −0.12, 0.73, 0.77] → experts 3, 2; gates from the unbiased s.
  const s = z.map(sig);
  const r = createEstimator("sigmoid-topk", { topK: 2 }).route(f64([z]), {
    training: true,
    draws: draws(),
    selectionBias: bias,
  });
  assert.deepEqual([...r.experts.dataSync()], [3, 2]);
  close(r.gates.dataSync(), [s[3] / (s[3] + s[2]), s[2] / (s[3] + s[2])]);
  // softmax: p = softmax(z); p + b picks expert 3 first only if p3 + 0.5 beats the others.
  const e = z.map(Math.exp), tot = e.reduce((a, b) => a + b), p = e.map((v) => v / tot);
  const biased = p.map((v, i) => v + [0, -1, 0, 0.5][i]);
  const order = [0, 1, 2, 3].sort((a, b) => biased[b] - biased[a]).slice(0, 2);
  const t = createEstimator("topk", { topK: 2, renormalize: false }).route(f64([z]), {
    training: true,
    draws: draws(),
    selectionBias: bias,
  });
  assert.deepEqual([...t.experts.dataSync()], order);
  close(t.gates.dataSync(), order.map((i) => p[i]));
});

Deno.test("sigmoid-topk gates: f64 gradcheck with and without a selection bias", () => {
  const z = randn([5, 6], { dtype: "f64", generator: new Generator(2) });
  for (const selectionBias of [undefined, randn([6], { dtype: "f64", generator: new Generator(4) }).mul(0.3)]) {
    for (const options of [{ topK: 3 }, { topK: 2, renormalize: false, routeScale: 1.5 }]) {
      const est = createEstimator("sigmoid-topk", options);
      gradcheck((l: Tensor) => est.route(l, { training: true, draws: draws(), selectionBias }).gates, [z], {
        name: `sigmoid-topk ${JSON.stringify(options)}`,
      });
    }
  }
});

/** A layer whose router prefers expert 0 for every token (a router bias of 3 on it). */
function skewedLayer(estimator: string, rate: number): MoELayer {
  const layer = new MoELayer(3, {
    numExperts: 4,
    expert: "linear",
    estimator,
    estimatorOptions: { topK: 1 },
    lossFreeBalance: { rate },
    routerBias: true,
    dtype: "f64",
    generator: new Generator(1),
  });
  noGrad(() => layer.router.bias!.assign_(f64([3, 0, 0, 0])));
  return layer;
}

Deno.test("loss-free balancing: b ← b + u·sign(mean load − load), re-centred, over every training forward of the step", () => {
  const layer = skewedLayer("sigmoid-topk", 1e-3);
  assert.deepEqual([...layer.expertBias!.dataSync()], [0, 0, 0, 0]);
  assert.ok("expertBias" in layer.stateDict(), "the bias is in the state dict");
  const g = new Generator(5);
  const xs = [randn([6, 3], { dtype: "f64", generator: g }), randn([10, 3], { dtype: "f64", generator: g })];
  const loads = [0, 0, 0, 0];
  for (const x of xs) {
    layer.forward(x);
    for (const e of layer.lastRouting!.experts.dataSync()) loads[Number(e)]++;
  }
  layer.eval();
  layer.forward(xs[0]); // evaluation counts nothing
  layer.train();
  const mean = loads.reduce((a, b) => a + b) / 4;
  const moved = loads.map((c) => 1e-3 * Math.sign(mean - c));
  const centre = moved.reduce((a, b) => a + b) / 4;
  updateExpertBiases(layer);
  close(layer.expertBias!.dataSync(), moved.map((v) => v - centre), 1e-15);
  // The counts were reset: a second update without forwards changes nothing.
  const before = [...layer.expertBias!.dataSync()];
  layer.updateExpertBias();
  assert.deepEqual([...layer.expertBias!.dataSync()], before);
});

Deno.test("loss-free balancing balances a skewed router it cannot train (MaxVio falls), for topk and sigmoid-topk", () => {
  for (const estimator of ["topk", "sigmoid-topk"]) {
    const layer = skewedLayer(estimator, 0.01);
    const x = randn([64, 3], { dtype: "f64", generator: new Generator(9) });
    const maxVio = () => {
      const c = [0, 0, 0, 0];
      for (const e of layer.lastRouting!.experts.dataSync()) c[Number(e)]++;
      return (Math.max(...c) - 16) / 16;
    };
    layer.forward(x);
    const first = maxVio();
    let last = first;
    for (let step = 0; step < 300; step++) {
      layer.updateExpertBias();
      layer.forward(x);
      last = maxVio();
    }
    assert.ok(first >= 2, `${estimator}: the router starts skewed (MaxVio ${first})`);
    assert.ok(last <= 0.5, `${estimator}: MaxVio ${first} → ${last}`);
    const b = [...layer.expertBias!.dataSync()];
    assert.ok(Math.abs(b.reduce((a, v) => a + v)) < 1e-12, "b has mean 0");
  }
});

Deno.test("a layer with a selection bias equals the loop reference of its routing, and restores b from a state dict", () => {
  const layer = skewedLayer("sigmoid-topk", 0.5);
  const x = randn([8, 3], { dtype: "f64", generator: new Generator(6) });
  layer.forward(x);
  layer.updateExpertBias();
  const y = layer.forward(x);
  const ref = moeLoopReference(layer, x, layer.lastRouting!);
  close(y.dataSync(), [...ref.dataSync()].map(Number));
  const state = layer.stateDict();
  const copy = skewedLayer("sigmoid-topk", 0.5);
  copy.loadStateDict(state);
  assert.deepEqual([...copy.expertBias!.dataSync()], [...layer.expertBias!.dataSync()]);
  assert.notDeepEqual([...copy.expertBias!.dataSync()], [0, 0, 0, 0]);
});

Deno.test("lossFreeBalance needs an estimator that accepts a selection bias; its rate must be > 0", () => {
  assert.throws(
    () => new MoELayer(3, { numExperts: 4, estimator: "switch", lossFreeBalance: {} }),
    /lossFreeBalance needs an estimator that accepts a selection bias .* got "switch"/,
  );
  assert.throws(() => new MoELayer(3, { numExperts: 4, lossFreeBalance: { rate: -1 } }), /lossFreeBalance/);
});
