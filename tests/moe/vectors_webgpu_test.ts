/**
 * Replays every non-layer reference vector on the WebGPU backend in f32 and requires every quantity to pass
 * at the f32 tolerance of the vectors' README (`|a − b| ≤ 1e-5 + 1e-4·|b|`, applied by `replayVector` for f32;
 * the straight-through file's own floor `1e-6 + 1e-6·|b|` is tighter, so f32's applies there too).
 */
import assert from "node:assert/strict";
import { Device } from "../../mod.ts";
import type { Backend } from "../../internals.ts";
import { webGpuBackend } from "../../kernels/webgpu/mod.ts";
import { gpuTest } from "../helpers/webgpu.ts";
import { passed, replayVector, TOLERANCES } from "../../moe/vectors/replay.ts";
import v1 from "../../vectors/formula_topk_softmax_and_aux_losses_8x16.json" with { type: "json" };
import v2 from "../../vectors/reinmax_tau1_8x4.json" with { type: "json" };
import v3 from "../../vectors/sparsemixer_1st_train_8x4.json" with { type: "json" };
import v4 from "../../vectors/sparsemixer_v1_eval_8x4.json" with { type: "json" };
import v5 from "../../vectors/sparsemixer_v1_train_8x4.json" with { type: "json" };
import v6 from "../../vectors/sparsemixer_v2_top1_eps0.1_train_8x4.json" with { type: "json" };
import v7 from "../../vectors/sparsemixer_v2_top2_eps0.01_eval_8x16.json" with { type: "json" };
import v8 from "../../vectors/sparsemixer_v2_top2_eps0.01_train_8x16.json" with { type: "json" };
import v9 from "../../vectors/st_gumbel_softmax_tau0.5_8x4.json" with { type: "json" };
import v10 from "../../vectors/straight_through_tau1_8x4.json" with { type: "json" };
import v11 from "../../vectors/switchgate_eval_8x4.json" with { type: "json" };
import v12 from "../../vectors/switchgate_train_8x4.json" with { type: "json" };

const VECTORS: { name: string }[] = [v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12];

for (const v of VECTORS) {
  gpuTest(`vectors f32: ${v.name}`, async (rt) => {
    const gpu = new Device("webgpu-vectors", webGpuBackend(rt) as Backend);
    const dispatches = rt.stats.dispatches;
    const r = await replayVector(v, { dtype: "f32", device: gpu });
    assert.ok(rt.stats.dispatches > dispatches, "the replay ran kernels on the GPU");
    assert.equal(r.name, v.name);
    const bad = r.results.filter((q) => !q.ok);
    assert.deepEqual(bad, [], `${v.name}: ${JSON.stringify(bad)}`);
    assert.ok(passed(r));
    const tol = TOLERANCES.f32;
    for (const q of r.results) {
      // Every comparison is at least as strict as f32's (exact ones — indices, draw checks — are stricter).
      assert.ok(q.atol <= tol.atol && q.rtol <= tol.rtol, `${q.quantity}: ${q.atol} + ${q.rtol}·|b|`);
    }
    const quantities = r.results.map((q) => q.quantity);
    const file = v as unknown as { outputs: object; grads: object };
    for (const k of Object.keys(file.outputs)) assert.ok(quantities.includes(`outputs.${k}`), k);
    for (const k of Object.keys(file.grads)) assert.ok(quantities.includes(`grads.${k}`), k);
    assert.ok(quantities.includes("random_draws (all consumed)"));
  });
}
