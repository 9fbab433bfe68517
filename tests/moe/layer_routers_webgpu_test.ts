/**
 * WebGPU parity of the routers and layer options of ESTIMATORS.md §12 (and the null controls): MoELayer forward +
 * backward on the WebGPU backend against the CPU, with the same weights, draws and token ids, over two training
 * steps (`webgpu_layer_parity.ts`): expert choice (a variable number of experts per token, grouped and static
 * padded dispatch), DenseMixer, sigmoid top-k with loss-free balancing (the bias the first step's update moved
 * steers the second step's choice), shared + fine-grained experts, and hash / random / frozen routing.
 */
import assert from "node:assert/strict";
import { Device, Generator, MoELayer } from "../../mod.ts";
import type { Backend } from "../../internals.ts";
import { webGpuBackend } from "../../kernels/webgpu/mod.ts";
import { gpuTest } from "../helpers/webgpu.ts";
import { compareLayerOnWebGpu, type ParityCase } from "./webgpu_layer_parity.ts";
import type { MoELayerOptions } from "../../moe/layer_options.ts";

const D = 4;

function layerCase(
  what: string,
  options: Omit<MoELayerOptions, "numExperts">,
  extra: Partial<ParityCase> = {},
): ParityCase {
  return {
    what,
    make: (device?: Device) =>
      new MoELayer(D, { numExperts: 4, hidden: 6, generator: new Generator(3), ...options, device }),
    ...extra,
  };
}

const CASES: ParityCase[] = [
  ...(["grouped", "padded"] as const).map((dispatch) =>
    layerCase(`expert-choice ${dispatch}`, {
      expert: "ffn",
      estimator: "expert-choice",
      estimatorOptions: { topK: 1, capacityFactor: 1.2 },
      dispatch,
      padding: dispatch === "padded" ? "static" : "auto",
    }, {
      expect(layer) {
        const active = Array.from(layer.lastRouting!.active!.dataSync(), Number);
        const perToken = Array.from({ length: 10 }, (_, t) => active.slice(4 * t, 4 * t + 4).filter(Boolean).length);
        assert.ok(new Set(perToken).size > 1, `experts per token vary: ${perToken}`);
      },
    })
  ),
  layerCase("densemixer top-2 glu", {
    expert: "glu",
    estimator: "densemixer",
    estimatorOptions: { topK: 2, renormalize: true },
    balanceLoss: { coef: 0.1, form: "topk" },
  }),
  layerCase("sigmoid-topk + loss-free balancing", {
    expert: "ffn",
    estimator: "sigmoid-topk",
    estimatorOptions: { topK: 2 },
    // A large rate, so that the first update changes the second step's choices.
    lossFreeBalance: { rate: 0.5 },
    routerBias: true,
  }, {
    expect(layer) {
      assert.ok(Array.from(layer.expertBias!.dataSync()).some((b) => b !== 0), "the update moved the bias");
    },
  }),
  layerCase("shared 2 + fine-grained m = 2 (glu, top-1 → top-2 of 8)", {
    expert: "glu",
    estimator: "topk",
    estimatorOptions: { topK: 1 },
    sharedExperts: 2,
    fineGrained: 2,
    outputScale: true,
  }),
  layerCase("hash (token ids)", { expert: "ffn", estimator: "hash", estimatorOptions: { topK: 2, vocabSize: 32 } }, {
    tokenIds: [3, 1, 4, 1, 5, 9, 2, 6, 5, 3],
  }),
  layerCase("random", { expert: "ffn", estimator: "random", estimatorOptions: { topK: 2 } }),
  layerCase("frozen router (switch)", {
    expert: "ffn",
    estimator: "switch",
    frozenRouter: true,
    balanceLoss: { coef: 0.1, form: "switch" },
  }),
];

gpuTest("§12 routers and layer options: forward + backward on WebGPU (f32) match the CPU", async (rt) => {
  const gpu = new Device("webgpu-routers", webGpuBackend(rt) as Backend);
  for (const c of CASES) await compareLayerOnWebGpu(gpu, c);
});
