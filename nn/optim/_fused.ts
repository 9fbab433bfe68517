/**
 * When the optimizers' fused in-place CPU updates apply (`fused_adam.ts`, `fused_sgd.ts`, and the fused
 * `clipGradNorm`): they reproduce the op-by-op f32 arithmetic bit for bit, and the plain path
 * (`fastKernels: false`) keeps running the ops as the reference.
 *
 * @module
 */
import type { Tensor } from "../../core/mod.ts";
import { liveCpuOptions } from "../../kernels/cpu/config.ts";

/** Whether the fused update applies to `p` and `g`: both on the CPU, both f32, and fast kernels on. */
export function fusedCpuF32(p: Tensor, g: Tensor): boolean {
  // The live options object: this runs per parameter per step, and cpuOptions() would copy it each time.
  return p.device.name === "cpu" && p.dtype === "f32" && g.dtype === "f32" && liveCpuOptions.fastKernels;
}
