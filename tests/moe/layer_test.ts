import assert from "node:assert/strict";
import { Device, noGrad, randn, type Tensor, tensor } from "../../mod.ts";
import type { Backend } from "../../internals.ts";
import { webGpuBackend } from "../../kernels/webgpu/mod.ts";
import { gpuTest } from "../helpers/webgpu.ts";
import { compareLayerOnWebGpu } from "./webgpu_layer_parity.ts";
import { Generator } from "../../core/random/generator.ts";
import { GeneratorDraws } from "../../moe/estimators/estimator.ts";
import { type ExpertKind, MoELayer } from "../../moe/layer.ts";
import { moeLoopReference } from "../../moe/reference.ts";
import { replayLayerVector } from "../../moe/vectors/layer_replay.ts";
import { routerZLoss, topkBalanceLoss } from "../../moe/aux_losses.ts";

import layerSwitch from "../../vectors/layer_switch_train_8tok_d4_e4.json" with { type: "json" };
import layerV1 from "../../vectors/layer_v1_train_8tok_d4_e4.json" with { type: "json" };

const values = (t: Tensor) => Array.from(t.dataSync(), Number);

function close(what: string, a: number[], b: number[], tol: number): void {
  assert.equal(a.length, b.length, `${what}: ${a.length} values, expected ${b.length}`);
  a.forEach((x, i) => {
    assert.ok(Math.abs(x - b[i]) <= tol + tol * Math.abs(b[i]), `${what}[${i}]: ${x} vs ${b[i]}`);
  });
}

for (const [label, vec] of [["switch", layerSwitch], ["v1", layerV1]] as const) {
  Deno.test(`layer vector ${label}: replay within 1e-9 abs + 1e-9 rel (f64)`, async () => {
    const { errors } = await replayLayerVector(vec as unknown as Record<string, unknown>);
    for (const [q, e] of Object.entries(errors)) {
      assert.ok(e.mixed <= 1e-9 && e.ratio <= 1, `${q}: abs ${e.abs}, rel ${e.rel}`);
    }
    assert.equal(errors.selected_experts.abs, 0);
  });
}

Deno.test("layer vector replay: a field it cannot interpret is named in the error", async () => {
  const broken = structuredClone(layerSwitch) as unknown as Record<string, Record<string, unknown>>;
  delete broken.inputs.router_weight_dxE;
  await assert.rejects(() => replayLayerVector(broken), /inputs\.router_weight_dxE/);
  // The router comes from params.router_object, never from the name.
  const renamed = { ...structuredClone(layerSwitch), name: "layer_v3_x" };
  const { layer } = await replayLayerVector(renamed as unknown as Record<string, unknown>);
  assert.equal(layer.estimator.name, "switch");
  const unknownRouter = structuredClone(layerSwitch) as unknown as Record<string, Record<string, unknown>>;
  unknownRouter.params.router_object = "SwitchGateV2";
  await assert.rejects(() => replayLayerVector(unknownRouter), /field "params\.router_object" = "SwitchGateV2"/);
  const badShape = structuredClone(layerSwitch) as unknown as Record<string, Record<string, unknown>>;
  badShape.inputs.expert_weights_Exdxd = [[1]];
  await assert.rejects(() => replayLayerVector(badShape), /expert_weights_Exdxd.*shape/);
});

interface Case {
  estimator: string;
  options: Record<string, unknown>;
  k: number;
}

function cases(e: number): Case[] {
  const out: Case[] = [];
  for (const k of [1, 2, 4]) if (k <= e) out.push({ estimator: "topk", options: { topK: k }, k });
  out.push({ estimator: "switch", options: { jitterEps: 0.3 }, k: 1 });
  out.push({ estimator: "sparsemixer", options: { jitterEps: 0.5 }, k: 1 });
  if (e >= 2) out.push({ estimator: "sparsemixer-v2", options: { topK: 2, jitterEps: 0.5 }, k: 2 });
  return out;
}

/** Runs `fn` → y, backpropagates Σ up ⊙ y, returns y and the grads of the parameters and x. */
function valueAndGrads(layer: MoELayer, x: Tensor, up: Tensor, fn: () => Tensor): Record<string, number[]> {
  for (const p of layer.parameters()) p.grad = null;
  x.grad = null;
  const y = fn();
  y.mul(up).sum().backward();
  const out: Record<string, number[]> = { y: values(y), x: values(x.grad!) };
  for (const [n, p] of layer.namedParameters()) out[n] = values(p.grad!);
  return out;
}

for (const e of [2, 4, 8]) {
  Deno.test(`dispatched layer equals the loop reference, forward and backward (E=${e}, f64)`, () => {
    let seed = 10 * e;
    for (const expert of ["ffn", "glu", "linear"] as ExpertKind[]) {
      for (const c of cases(e)) {
        seed++;
        const layer = new MoELayer(3, {
          numExperts: e,
          hidden: 5,
          expert,
          estimator: c.estimator,
          estimatorOptions: c.options,
          routerBias: expert === "ffn",
          outputScale: c.estimator === "sparsemixer",
          dtype: "f64",
          generator: new Generator(seed),
        });
        const g = new Generator(seed + 1000);
        const x = randn([2, 3, 3], { dtype: "f64", generator: g }).mul(2).requiresGrad_();
        const up = randn([2, 3, 3], { dtype: "f64", generator: g });
        const what = `E=${e} ${expert} ${c.estimator} k=${c.k}`;
        const got = valueAndGrads(
          layer,
          x,
          up,
          () => layer.forward(x, { draws: new GeneratorDraws(new Generator(seed)) }),
        );
        assert.equal(layer.lastRouting!.experts.shape[1], c.k, what);
        const ref = valueAndGrads(layer, x, up, () => {
          const { routing } = layer.route(x.reshape(-1, 3), { draws: new GeneratorDraws(new Generator(seed)) });
          return moeLoopReference(layer, x, routing);
        });
        assert.deepEqual(Object.keys(got), Object.keys(ref));
        for (const key of Object.keys(ref)) close(`${what} ${key}`, got[key], ref[key], 1e-12);
        assert.ok(
          ref["router.weight"].some((v) => v !== 0) || !(c.estimator === "topk" && c.k >= 2),
          `${what}: router grad`,
        );
        assert.equal(values(layer.lastMetrics!.dropped)[0], 0, what);
      }
    }
  });
}

Deno.test("capacity factor drops the latest tokens of an over-full expert and reports the count", () => {
  const layer = new MoELayer(2, {
    numExperts: 2,
    expert: "linear",
    estimator: "topk",
    estimatorOptions: { topK: 1 },
    capacityFactor: 1, // capacity = ceil(1 · 6 · 1 / 2) = 3
    dtype: "f64",
  });
  noGrad(() => {
    layer.router.weight.assign_(tensor([[1, 0], [0, 1]], { dtype: "f64" }));
    layer.weights.w.assign_(tensor([[[1, 0], [0, 1]], [[2, 0], [0, 2]]], { dtype: "f64" }));
  });
  assert.equal(layer.capacity(6), 3);
  // Tokens 0–4 choose expert 0 (5 > 3: tokens 3 and 4 are dropped), token 5 chooses expert 1.
  const x = tensor([[1, 0], [2, 0], [3, 0], [4, 0], [5, 0], [0, 1]], { dtype: "f64" }).requiresGrad_();
  const y = layer.forward(x);
  assert.deepEqual(values(layer.lastRouting!.experts), [0, 0, 0, 0, 0, 1]);
  const gates = values(layer.lastRouting!.gates);
  const expected = [[1, 0], [2, 0], [3, 0], [0, 0], [0, 0], [0, 2]].flatMap((r, t) => r.map((v) => v * gates[t]));
  close("y", values(y), expected, 1e-15);
  assert.equal(values(layer.lastMetrics!.dropped)[0], 2);
  close("droppedFraction", values(layer.lastMetrics!.droppedFraction), [2 / 6], 1e-15);
  y.sum().backward();
  const gx = values(x.grad!);
  assert.deepEqual(gx.slice(6, 10), [0, 0, 0, 0], "dropped tokens get no gradient through the layer");
  // Same rule in the loop reference.
  const ref = moeLoopReference(layer, x, layer.lastRouting!, layer.capacity(6));
  close("reference", values(ref), values(y), 1e-15);
});

Deno.test("aux loss: balance (topk and switch forms) plus z-loss, stored per forward", () => {
  for (const form of ["topk", "switch"] as const) {
    const layer = new MoELayer(3, {
      numExperts: 4,
      expert: "linear",
      estimator: "topk",
      estimatorOptions: { topK: 1 },
      balanceLoss: { coef: 0.01, form },
      zLossCoef: 0.001,
      dtype: "f64",
    });
    // All-zero router: uniform probs, argmax ties → expert 0 everywhere: f = [1,0,0,0], P̄ = 1/4 ⇒ balance = 1;
    // logsumexp = ln 4 ⇒ z-loss = (ln 4)².
    noGrad(() => layer.router.weight.assign_(tensor([[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], { dtype: "f64" })));
    layer.forward(randn([5, 3], { dtype: "f64" }));
    close(form, values(layer.auxLoss()!), [0.01 + 0.001 * Math.log(4) ** 2], 1e-14);
  }
  const layer = new MoELayer(3, {
    numExperts: 4,
    expert: "glu",
    hidden: 4,
    estimator: "topk",
    estimatorOptions: { topK: 2 },
    balanceLoss: { coef: 0.1, form: "topk" },
    zLossCoef: 0.01,
    dtype: "f64",
    generator: new Generator(3),
  });
  const x = randn([6, 3], { dtype: "f64", generator: new Generator(4) });
  layer.forward(x);
  const r = layer.lastRouting!;
  const want = topkBalanceLoss(r.probs, r.experts, 4).mul(0.1).add(routerZLoss(layer.lastLogits!).mul(0.01));
  close("topk k=2", values(layer.auxLoss()!), values(want), 1e-14);
  layer.auxLoss()!.backward();
  assert.ok(values(layer.router.weight.grad!).some((v) => v !== 0));
  assert.equal(new MoELayer(3, { numExperts: 2 }).auxLoss(), null);
  assert.throws(
    () =>
      new MoELayer(3, {
        numExperts: 4,
        estimator: "topk",
        estimatorOptions: { topK: 2 },
        balanceLoss: { coef: 1, form: "switch" },
      }),
    /needs top-1/,
  );
});

gpuTest("MoE layer forward + backward on WebGPU (f32) matches the CPU with the same weights and draws", async (rt) => {
  const gpu = new Device("webgpu-moe", webGpuBackend(rt) as Backend);
  for (
    const [expert, estimator, options, capacityFactor, dispatch] of [
      ["glu", "sparsemixer-v2", { topK: 2, jitterEps: 0.5 }, undefined, "grouped"],
      ["ffn", "sparsemixer", { jitterEps: 0.5 }, undefined, "grouped"],
      ["linear", "topk", { topK: 2 }, 1, "grouped"],
      ["ffn", "topk", { topK: 2 }, 0.5, "grouped"], // drops pairs: rows past the kept ones belong to no expert
      ["ffn", "topk", { topK: 2 }, 0.5, "padded"], // the static padded buffer on the GPU
    ] as const
  ) {
    await compareLayerOnWebGpu(gpu, {
      what: `${expert}/${estimator}/cf ${capacityFactor}/${dispatch}`,
      steps: 1,
      make: (device?: Device) =>
        new MoELayer(4, {
          numExperts: 4,
          hidden: 6,
          expert,
          estimator,
          estimatorOptions: options,
          outputScale: true,
          routerBias: true,
          capacityFactor,
          balanceLoss: { coef: 0.1, form: "topk" },
          device,
          dispatch,
        }),
    });
  }
});
