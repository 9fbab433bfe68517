import assert from "node:assert/strict";
import { Device, selectDevice, tensor } from "../../mod.ts";
import type { Backend } from "../../internals.ts";
import { webGpuBackend } from "../../kernels/webgpu/mod.ts";
import { gpuTest } from "../helpers/webgpu.ts";
import { snapshot, trainMlp } from "../helpers/mlp_loop.ts";

gpuTest("1000 steps of MLP forward + backward + SGD leave tensors, buffers and GPU memory flat", async (rt) => {
  const gpu = new Device("webgpu-mem", webGpuBackend(rt) as Backend);
  const warm = await trainMlp(gpu, 3); // fills the buffer pool and the pipeline cache
  warm.params.forEach((t) => t.dispose());
  const before = { ...snapshot(), gpuBuffers: rt.stats.gpuBuffers, gpuBytes: rt.stats.gpuBytes };
  const pipelines = rt.stats.pipelines;
  const { first, last, params } = await trainMlp(gpu, 1000);
  assert.ok(last < first * 0.5, `loss should fall: ${first} → ${last}`);
  params.forEach((t) => t.dispose());
  const after = { ...snapshot(), gpuBuffers: rt.stats.gpuBuffers, gpuBytes: rt.stats.gpuBytes };
  assert.deepEqual(after, before);
  assert.equal(rt.stats.pipelines, pipelines, "no new shader compilations in the steady state");
});

gpuTest("f64 is refused on webgpu with a message that says what to do", (rt) => {
  const gpu = new Device("webgpu-f64", webGpuBackend(rt) as Backend);
  assert.throws(
    () => tensor([1], { dtype: "f64", device: gpu }),
    /f64 is not supported on WebGPU; use f32, or the cpu device/,
  );
});

gpuTest("reads are the only waits: ops encode without submitting until a read or a full batch", async (rt) => {
  const gpu = new Device("webgpu-batch", webGpuBackend(rt) as Backend);
  await rt.sync();
  const submits = rt.stats.submits, dispatches = rt.stats.dispatches;
  let x = tensor([1, 2, 3], { device: gpu });
  for (let i = 0; i < 50; i++) x = x.add(1);
  assert.equal(rt.stats.dispatches - dispatches >= 50, true);
  assert.equal(rt.stats.submits, submits, "50 adds encoded, nothing submitted yet");
  assert.deepEqual(Array.from(await x.data()), [51, 52, 53]);
  assert.equal(rt.stats.submits, submits + 1, "one submit for the read");
});

Deno.test("selectDevice: explicit cpu, and a clear error for an unknown name", async () => {
  assert.equal((await selectDevice("cpu", { quiet: true })).name, "cpu");
  await assert.rejects(() => selectDevice("tpu" as "cpu", { quiet: true }), /selectDevice: unknown device "tpu"/);
});

Deno.test("selectDevice auto on this machine: webgpu only for a hardware adapter", async () => {
  const adapter = await navigator.gpu?.requestAdapter().catch(() => null);
  const d = await selectDevice("auto", { quiet: true });
  const { isSoftwareAdapter } = await import("../../kernels/webgpu/mod.ts");
  const expected = adapter && !isSoftwareAdapter(adapter.info) ? "webgpu" : "cpu";
  assert.equal(d.name, expected);
  await selectDevice("cpu", { quiet: true }); // leave the default as other tests expect
});
