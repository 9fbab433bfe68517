/**
 * Known differences between the WebGPU and CPU backends — the one place they are listed (the README repeats
 * it). The parity suite checks that every public op is either compared on both backends or listed here.
 */
export const WEBGPU_KNOWN_GAPS: readonly { what: string; why: string }[] = [
  { what: "f64 tensors", why: "WGSL has no 64-bit floats; allocating f64 on webgpu raises a clear error" },
  {
    what: "out-of-range indices (gather, scatterAdd, indexSelect, indexAdd, embedding, crossEntropy targets) and " +
      "out-of-order group offsets (groupedMatmul, groupedOuter: clamped into range)",
    why: "a shader cannot raise an error without a CPU↔GPU sync; the GPU kernels never read or write out of " +
      "bounds, but they do not report the bad index as the CPU backend does",
  },
  {
    what: "float → i32 casts of values outside the i32 range",
    why: "WGSL conversions saturate; the CPU backend wraps like an Int32Array (both give 0 for NaN)",
  },
  {
    what: "transcendental functions (exp, log, tanh, erf, sin, cos, normal draws…)",
    why: "WGSL's built-ins are accurate to a few f32 ulps, not correctly rounded: results match the CPU " +
      "within f32 tolerances, not bit for bit (uniform and integer draws are bit-identical)",
  },
];

/** Public ops that the parity suite does not run on WebGPU, with the reason (must be empty or justified). */
export const WEBGPU_UNCOMPARED_OPS: Readonly<Record<string, string>> = {};
