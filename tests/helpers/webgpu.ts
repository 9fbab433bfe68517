/**
 * WebGPU test support: one shared runtime for the whole test process, and `gpuTest`, which registers a test
 * that is ignored (with a note) when no adapter exists, and fails instead when MOEGRAD_REQUIRE_WEBGPU=1
 * (CI sets it, so a broken driver install cannot pass as "skipped"). Every WebGPU test is time-bounded, so a
 * GPU hang fails the test that caused it instead of stalling the run.
 */
import { WebGpuRuntime } from "../../kernels/webgpu/runtime.ts";
import { formatBound, withDeadline } from "./deadline.ts";
import { Watchdog } from "./gpu_watchdog.ts";
import type { TypedArray } from "../../core/dtype.ts";
import type { DType } from "../../core/dtype.ts";
import type { GpuBuffer } from "../../kernels/webgpu/runtime.ts";
import type { TensorRef } from "../../kernels/registry.ts";

function envFlag(name: string): boolean {
  // Plain `deno test` has no env permission: treat the variable as unset rather than prompting.
  if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") return false;
  return Deno.env.get(name) === "1";
}

/** Whether CI demands the WebGPU suite. */
export const requireWebGpu: boolean = envFlag("MOEGRAD_REQUIRE_WEBGPU");

const adapter = await navigator.gpu?.requestAdapter().catch(() => null);
const device = adapter ? await adapter.requestDevice().catch(() => null) : null;

/** The shared runtime, or null when this machine has no WebGPU adapter. */
export const testRuntime: WebGpuRuntime | null = adapter && device
  ? new WebGpuRuntime(device, adapter.info, adapter.info.isFallbackAdapter)
  : null;

/**
 * Wall-clock bound of one WebGPU test. Generous: on llvmpipe over GL the first dispatch of every pipeline is
 * compiled on the spot, and `deno test --parallel` shares a few cores between test files.
 */
export const GPU_TEST_BOUND_MS = 180_000;

/**
 * How much longer the watchdog waits before ending the process. A test whose thread is still alive fails by
 * its own deadline first; only one stuck in a native call reaches the watchdog.
 */
const WATCHDOG_GRACE_MS = 20_000;

const watchdog = new Watchdog();

let noted = false;

/** Registers a WebGPU test: ignored without an adapter (unless required), given the shared runtime. */
export function gpuTest(name: string, fn: (rt: WebGpuRuntime, t: Deno.TestContext) => Promise<void> | void): void {
  if (!testRuntime && !requireWebGpu && !noted) {
    noted = true;
    console.log(
      "WebGPU suite skipped: no WebGPU adapter on this machine (set MOEGRAD_REQUIRE_WEBGPU=1 to fail instead)",
    );
  }
  Deno.test({
    name: `webgpu: ${name}`,
    ignore: !testRuntime && !requireWebGpu,
    // wgpu keeps internal handles alive between tests; they are not leaks of the code under test.
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async (t) => {
      if (!testRuntime) throw new Error("MOEGRAD_REQUIRE_WEBGPU=1 but no WebGPU adapter was found");
      const rt = testRuntime, what = `webgpu test "${name}"`;
      watchdog.arm(`${what} (bound ${formatBound(GPU_TEST_BOUND_MS)})`, GPU_TEST_BOUND_MS + WATCHDOG_GRACE_MS);
      try {
        await withDeadline(() => fn(rt, t), GPU_TEST_BOUND_MS, what);
      } finally {
        watchdog.disarm();
      }
    },
  });
}

/** Uploads host data and wraps it as a kernel argument (bool is stored as u32 on the GPU). */
export function gpuRef(
  rt: WebGpuRuntime,
  data: TypedArray,
  shape: readonly number[],
  dtype: DType,
): TensorRef<GpuBuffer> {
  const payload = dtype === "bool" ? Uint32Array.from(data) : data;
  return { buf: rt.upload(payload), shape, dtype };
}

/** An output buffer for `size` elements. */
export function gpuOut(rt: WebGpuRuntime, shape: readonly number[], dtype: DType): TensorRef<GpuBuffer> {
  const size = shape.reduce((p, d) => p * d, 1);
  return { buf: rt.alloc(size * 4), shape, dtype };
}
