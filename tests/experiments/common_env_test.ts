// env.json's device fields: the WebGPU adapter's identifying strings when a run opened one, "none" on the CPU;
// the CPU model with the experiment tasks' least permission (--allow-sys=cpus).
import assert from "node:assert/strict";
import { environmentInfo } from "../../experiments/common/io.ts";
import denoJson from "../../deno.json" with { type: "json" };

Deno.test("env: a WebGPU device records its adapter info; the CPU records none", () => {
  const info = { vendor: "nvidia", architecture: "hopper", device: "H200", description: "NVIDIA H200" };
  const env = environmentInfo({ name: "webgpu", runtime: { adapterInfo: info } });
  assert.deepEqual(env.adapter, info);
  assert.equal(environmentInfo({ name: "cpu" }).adapter, "none");
  // An experiment's top level does not open the device: it says where the runs recorded theirs.
  assert.match(String(environmentInfo({ name: "auto" }).adapter), /each run's env\.json/);
});

Deno.test("env: the experiment tasks grant --allow-sys=cpus, which is what the CPU model needs", () => {
  const tasks = (denoJson as { tasks: Record<string, string> }).tasks;
  for (const t of ["exp:estimator-bias", "exp:switch-vs-sparsemixer", "exp:grin-top2"]) {
    assert.match(tasks[t], /--allow-sys=cpus/, t);
  }
});

Deno.test({
  name: "env: with --allow-sys=cpus the CPU model is recorded",
  ignore: Deno.permissions.querySync({ name: "sys", kind: "cpus" }).state !== "granted",
  fn() {
    const cpu = environmentInfo({ name: "cpu" }).cpu;
    assert.ok(typeof cpu === "string" && cpu !== "unknown" && cpu.length > 0, String(cpu));
  },
});
