/**
 * Device choice: `auto` uses WebGPU only on a hardware adapter (a software adapter such as llvmpipe or
 * lavapipe is slower than the CPU backend; it exists for correctness tests) and the CPU otherwise. An
 * explicit choice wins over the `MOEGRAD_DEVICE` environment variable, which wins over `auto`.
 *
 * @module
 */
import { type Device, setDefaultDevice } from "../core/device.ts";
import { cpu } from "./cpu/mod.ts";
import { describeAdapter, initWebGpu, isSoftwareAdapter } from "./webgpu/mod.ts";

/** What {@link selectDevice} accepts. */
export type DeviceChoice = "auto" | "cpu" | "webgpu";

/** Options of {@link selectDevice}. */
export interface SelectDeviceOptions {
  /** Do not print the one-line start-up note (default false). */
  quiet?: boolean;
}

function envChoice(): string | undefined {
  // Without --allow-env the variable is treated as unset rather than prompting.
  if (Deno.permissions.querySync({ name: "env", variable: "MOEGRAD_DEVICE" }).state !== "granted") return undefined;
  return Deno.env.get("MOEGRAD_DEVICE") || undefined;
}

/**
 * Picks the device (see the module doc), makes it the default for new tensors, prints which one and why,
 * and returns it.
 *
 * @example
 * ```ts
 * import { selectDevice } from "@moegrad/moegrad";
 * const device = await selectDevice("cpu", { quiet: true });
 * console.log(device.name); // "cpu"
 * ```
 */
export async function selectDevice(choice?: DeviceChoice, options: SelectDeviceOptions = {}): Promise<Device> {
  const raw = choice ?? envChoice() ?? "auto";
  if (raw !== "auto" && raw !== "cpu" && raw !== "webgpu") {
    throw new Error(
      `selectDevice: unknown device "${raw}" (from ${
        choice ? "the option" : "MOEGRAD_DEVICE"
      }); use auto, cpu or webgpu`,
    );
  }
  const say = (msg: string) => options.quiet || console.error(`moegrad: ${msg}`);
  let device: Device;
  if (raw === "cpu") {
    device = cpu;
    say("device cpu (requested)");
  } else if (raw === "webgpu") {
    const gpu = await initWebGpu();
    device = gpu;
    const soft = gpu.runtime.isSoftware ? ", a software adapter: slower than the cpu device" : "";
    say(`device webgpu (requested; ${describeAdapter(gpu.runtime.adapterInfo)}${soft})`);
  } else {
    const adapter = await navigator.gpu?.requestAdapter({ powerPreference: "high-performance" }).catch(() => null);
    if (adapter && !isSoftwareAdapter(adapter.info)) {
      device = await initWebGpu();
      say(`device webgpu (auto: hardware adapter ${describeAdapter(adapter.info)})`);
    } else {
      device = cpu;
      say(
        adapter
          ? `device cpu (auto: the WebGPU adapter ${describeAdapter(adapter.info)} is a software rasterizer)`
          : "device cpu (auto: no WebGPU adapter)",
      );
    }
  }
  setDefaultDevice(device);
  return device;
}
