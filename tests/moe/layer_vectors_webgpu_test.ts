/**
 * Replays the two MoE layer reference vectors on the WebGPU backend in f32 and requires every quantity within
 * the f32 tolerance of the vectors' README (`|a − b| ≤ 1e-5 + 1e-4·|b|`), the selected experts exactly —
 * both through `replayLayerVector` directly and through `replayVector` with the CLI's layer replayer.
 */
import assert from "node:assert/strict";
import { Device } from "../../mod.ts";
import type { Backend } from "../../internals.ts";
import { webGpuBackend } from "../../kernels/webgpu/mod.ts";
import { gpuTest } from "../helpers/webgpu.ts";
import { passed, replayVector, TOLERANCES } from "../../moe/vectors/replay.ts";
import { layerReplayer, replayLayerVector } from "../../moe/vectors/layer_replay.ts";
import layerSwitch from "../../vectors/layer_switch_train_8tok_d4_e4.json" with { type: "json" };
import layerV1 from "../../vectors/layer_v1_train_8tok_d4_e4.json" with { type: "json" };

for (const v of [layerSwitch, layerV1] as { name: string }[]) {
  gpuTest(`layer vectors f32: ${v.name}`, async (rt) => {
    const gpu = new Device("webgpu-layer-vectors", webGpuBackend(rt) as Backend);
    const dispatches = rt.stats.dispatches;
    const { errors, layer } = await replayLayerVector(v as unknown as Record<string, unknown>, {
      dtype: "f32",
      device: gpu,
    });
    assert.ok(rt.stats.dispatches > dispatches, "the replay ran kernels on the GPU");
    assert.equal(layer.router.weight.device, gpu);
    assert.equal(layer.router.weight.dtype, "f32");
    layer.dispose();
    const tol = TOLERANCES.f32;
    for (const [q, e] of Object.entries(errors)) {
      console.log(`  ${v.name} ${q}: abs ${e.abs.toExponential(2)}, rel ${e.rel.toExponential(2)}`);
      if (q === "selected_experts") assert.equal(e.abs, 0, q);
      else assert.ok(e.ratio <= 1, `${q}: abs ${e.abs} > ${tol.atol} + ${tol.rtol}·|b| (ratio ${e.ratio})`);
    }

    const r = await replayVector(v, { dtype: "f32", device: gpu }, [layerReplayer]);
    assert.equal(r.name, v.name);
    assert.deepEqual(r.results.filter((q) => !q.ok), []);
    assert.ok(passed(r));
    assert.equal(r.results.length, 8); // 7 quantities + every logged draw consumed
    for (const q of r.results) assert.ok(q.atol <= tol.atol && q.rtol <= tol.rtol, q.quantity);
  });
}
