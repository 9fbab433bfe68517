import assert from "node:assert/strict";
import { Device, tensor } from "../../mod.ts";
import type { Backend } from "../../internals.ts";
import { WebGpuRuntime } from "../../kernels/webgpu/runtime.ts";
import { describeAdapter, isSoftwareAdapter, webGpuBackend } from "../../kernels/webgpu/mod.ts";
import { gpuTest } from "../helpers/webgpu.ts";

gpuTest("a lost device gives an error that says what to do", async () => {
  // A private device, so destroying it does not affect the shared test runtime.
  const adapter = (await navigator.gpu.requestAdapter())!;
  const gpu = await adapter.requestDevice();
  const rt = new WebGpuRuntime(gpu, adapter.info, isSoftwareAdapter(adapter.info));
  const dev = new Device("webgpu-lost", webGpuBackend(rt) as Backend);
  const x = tensor([1, 2, 3], { device: dev });
  assert.deepEqual(Array.from(await x.add(1).data()), [2, 3, 4]);
  gpu.destroy();
  await gpu.lost;
  await new Promise((r) => setTimeout(r, 0)); // let the runtime's lost handler run
  assert.throws(() => x.add(1), /webgpu: the device was lost .*Call initWebGpu\(\) again, or use the cpu device/);
});

gpuTest("adapter description and software detection", (rt) => {
  assert.ok(describeAdapter(rt.adapterInfo).length > 0);
  const soft = { ...rt.adapterInfo, isFallbackAdapter: false, description: "llvmpipe (LLVM 15.0.6, 256 bits)" };
  assert.equal(isSoftwareAdapter(soft as GPUAdapterInfo), true);
  const hard = {
    vendor: "nvidia",
    architecture: "hopper",
    device: "",
    description: "NVIDIA H100",
    isFallbackAdapter: false,
  };
  assert.equal(isSoftwareAdapter(hard as unknown as GPUAdapterInfo), false);
});

gpuTest("to() copies a tensor between the cpu and webgpu devices", async (rt) => {
  const { cpu } = await import("../../mod.ts");
  const gpu = new Device("webgpu-to", webGpuBackend(rt) as Backend);
  const x = tensor([[1, 2], [3, 4]]);
  const g = await x.to(gpu);
  assert.equal(g.device, gpu);
  const back = await g.mul(2).to(cpu);
  assert.deepEqual(await back.array(), [[2, 4], [6, 8]]);
});
