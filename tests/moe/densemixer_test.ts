import assert from "node:assert/strict";
import { Generator, GeneratorDraws, MoELayer, noGrad, randn, type Tensor } from "../../mod.ts";
import { concat } from "../../core/ops/layout.ts";
import { expertOnToken } from "../../moe/reference.ts";
import { assertAllClose, layerGrads } from "./layer_grads.ts";

const D = 3, E = 4, N = 7;

function layer(estimator: string, k: number, renormalize: boolean, expert: "ffn" | "linear"): MoELayer {
  return new MoELayer(D, {
    numExperts: E,
    expert,
    hidden: 5,
    estimator,
    estimatorOptions: { topK: k, renormalize },
    dtype: "f64",
    generator: new Generator(3),
  });
}

/**
 * ESTIMATORS.md §12 written out per token with plain autograd: `y = sg(y_sparse) + y_dense − sg(y_dense)`,
 * `y_dense = Σ_i w_i E_i(x)` over all experts, `E_i(x_t)` detached unless token t chose i.
 */
function denseMixerLoop(moe: MoELayer, x: Tensor, k: number, renormalize: boolean): Tensor {
  const logits = moe.router.forward(x);
  const p = logits.softmax(-1);
  const chosenOf = noGrad(() => p.topk(k).indices).dataSync();
  const rows: Tensor[] = [];
  for (let t = 0; t < N; t++) {
    const xt = x.slice(0, t, t + 1);
    const pt = p.slice(0, t, t + 1);
    const chosen = [...chosenOf.slice(t * k, (t + 1) * k)].map(Number);
    const pick = (i: number) => pt.slice(1, i, i + 1);
    let sum = pick(chosen[0]);
    for (const i of chosen.slice(1)) sum = sum.add(pick(i));
    const weight = (i: number) =>
      !renormalize ? pick(i) : chosen.includes(i) ? pick(i).div(sum) : pick(i).div(sum.detach());
    let dense: Tensor | null = null, sparse: Tensor | null = null;
    for (let i = 0; i < E; i++) {
      const out = expertOnToken(moe, i, xt);
      const masked = chosen.includes(i) ? out : out.detach();
      const term = masked.mul(weight(i));
      dense = dense ? dense.add(term) : term;
      if (chosen.includes(i)) sparse = sparse ? sparse.add(term) : term;
    }
    rows.push(sparse!.detach().add(dense!.sub(dense!.detach())));
  }
  return concat(rows, 0);
}

for (const expert of ["ffn", "linear"] as const) {
  for (const [k, renormalize] of [[1, false], [2, true], [2, false]] as const) {
    Deno.test(`densemixer (${expert}, K = ${k}, renormalize ${renormalize}): forward = sparse topk, gradients = the §12 loop`, () => {
      const g = new Generator(11);
      const x = randn([N, D], { dtype: "f64", generator: g }).mul(2);
      const up = randn([N, D], { dtype: "f64", generator: g });
      const dm = layer("densemixer", k, renormalize, expert);
      const got = layerGrads(dm, x, up, (xx) => dm.forward(xx, { draws: new GeneratorDraws(new Generator(0)) }));
      const top = layer("topk", k, renormalize, expert);
      const sparse = layerGrads(top, x, up, (xx) => top.forward(xx));
      assert.deepEqual(got.y, sparse.y, "the training forward is the sparse top-K forward, bit for bit");
      // The experts learn through the chosen pairs only: their weights' gradients are top-K's.
      for (const name of Object.keys(got).filter((n) => n !== "y" && n !== "x" && !n.startsWith("router"))) {
        got[name].forEach((v, i) => assert.ok(Math.abs(v - sparse[name][i]) <= 1e-12, `${name}[${i}] vs topk`));
      }
      assertAllClose(got, layerGrads(dm, x, up, (xx) => denseMixerLoop(dm, xx, k, renormalize)), 1e-12, 1e-10);
      // The router's gradient is dense, so it differs from top-K's.
      const diff = got["router.weight"].some((v, i) => Math.abs(v - sparse["router.weight"][i]) > 1e-9);
      assert.ok(diff, "the router's gradient differs from the gating proxy's");
    });
  }
}

Deno.test("densemixer: evaluation is the sparse top-K layer (forward and gradients)", () => {
  const g = new Generator(12);
  const x = randn([N, D], { dtype: "f64", generator: g });
  const up = randn([N, D], { dtype: "f64", generator: g });
  const dm = layer("densemixer", 2, true, "ffn");
  const top = layer("topk", 2, true, "ffn");
  dm.eval();
  top.eval();
  const a = layerGrads(dm, x, up, (xx) => dm.forward(xx));
  const b = layerGrads(top, x, up, (xx) => top.forward(xx));
  for (const key of Object.keys(b)) assert.deepEqual(a[key], b[key], key);
});
