/**
 * The core API: tensors, dtypes, shapes, devices, every op, autograd, the RNG and memory management.
 * Importing it registers the CPU device (the default). Library modules (`nn/`, `moe/`) import from here, not
 * from the package root, so the root can re-export them without an import cycle.
 *
 * ## How an op flows from the API to a kernel
 * Take `x.exp()`:
 * 1. `Tensor.exp` (`core/tensor.ts`) forwards to the op function `exp` in `core/ops/unary.ts`.
 * 2. The op validates its operands (`core/ops/operand.ts`: tensor, dtype, shape; errors are `OpError`s that
 *    name the op and the shapes) and computes the output's shape and dtype.
 * 3. `run1`/`runKernel` (`core/engine.ts`) finds the inputs' common device, allocates the outputs on it
 *    (`Device.backend.alloc`) and calls the backend's kernel **by name** from its `KernelTable`
 *    (`kernels/registry.ts`): here kernel `"unary"` with attribute `{ op: "exp" }`. The CPU kernel
 *    (`kernels/cpu/elementwise.ts`) loops over a typed array; the WebGPU kernel (`kernels/webgpu/`) encodes a
 *    WGSL dispatch and returns at once (nothing waits for the GPU until `await t.data()`).
 * 4. If an input requires a gradient and recording is on, the op records a tape node with `record1`
 *    (`core/autograd.ts`) whose VJP is written with public ops (`g ⊙ y` for exp), so gradients run on the same
 *    kernels and are themselves differentiable (`createGraph`, `grad(grad(f))`).
 *
 * ## Where to add things
 * - **An op** that existing kernels can express: a function in the matching `core/ops/*.ts` (validate → `run1`
 *   → `record1` with a VJP from public ops), its entry in the op catalog (`core/ops/catalog.ts`), a method on
 *   `Tensor` and an export here (or the entry's reason for neither), an export in the root `mod.ts` (under its
 *   section; pin the name in `tests/api_surface_lists.ts`), a row in the gradcheck table (`tests/core/gradcheck/`)
 *   and a CPU-vs-WebGPU case in `tests/kernels/webgpu_ops_parity_test.ts`. The type checker or a coverage test
 *   names each one you forget (README, "Adding an op").
 * - **A kernel** (only when no existing kernel fits): its signature in `kernels/registry.ts`; both backends then
 *   fail to type-check until they implement it (`kernels/cpu/*.ts` and a WGSL family in `kernels/webgpu/*.ts`).
 * - **A backend**: a `Backend<B>` with a full `KernelTable<B>`, registered with `registerDevice` (all three are
 *   exported from `@moegrad/moegrad/internals`, `internals.ts`).
 *
 * @example
 * ```ts
 * import { tensor } from "./mod.ts";
 * const x = tensor([0, 1, 2]).requiresGrad_();
 * const y = x.exp().sum(); // unary kernel "exp", then reduce kernel "sum"
 * y.backward(); // the VJP of exp multiplies by exp(x), the same kernels again
 * console.log(Array.from(x.grad!.dataSync(), (v) => v.toFixed(3))); // ["1.000", "2.718", "7.389"]
 * ```
 *
 * @module
 */
import "../kernels/cpu/mod.ts";

export { type DType, DTYPES, type FloatDType, isFloat, type TypedArray } from "./dtype.ts";
export { OpError } from "./errors.ts";
export { broadcastShapes, type Shape, sizeOf, stridesOf } from "./shape.ts";
export { type Backend, Device, getDevice, registerDevice, setDefaultDevice } from "./device.ts";
export { Storage } from "./engine.ts";
export { keep, memoryStats, scope } from "./memory.ts";
export { type Operand, Tensor } from "./tensor.ts";
export {
  backward,
  type BackwardOptions,
  customGrad,
  customGradMulti,
  type CustomGradResult,
  enableGrad,
  grad,
  gradients,
  isGradEnabled,
  Node,
  noGrad,
  valueAndGrad,
  type VJP,
} from "./autograd.ts";
export { defaultGenerator, Generator, type GeneratorState, manualSeed } from "./random/generator.ts";
export {
  arange,
  type CreateOptions,
  full,
  fullLike,
  type NestedArray,
  ones,
  onesLike,
  tensor,
  zeros,
  zerosLike,
} from "./ops/creation.ts";
export { dropout, type DropoutOptions, rand, randint, randn, type RandomOptions } from "./ops/random.ts";
export { astype } from "./ops/cast.ts";
export {
  abs,
  cos,
  erf,
  exp,
  gelu,
  isnan,
  log,
  logicalNot,
  neg,
  relu,
  rsqrt,
  sigmoid,
  sign,
  silu,
  sin,
  sqrt,
  tanh,
} from "./ops/unary.ts";
export {
  add,
  clamp,
  div,
  eq,
  ge,
  gt,
  le,
  logicalAnd,
  logicalOr,
  lt,
  maximum,
  minimum,
  mul,
  ne,
  pow,
  sub,
  where,
} from "./ops/binary.ts";
export { argmax, argmin, max, mean, min, sum, sumTo } from "./ops/reduce.ts";
export { logSoftmax, logsumexp, softmax } from "./ops/softmax.ts";
export { matmul } from "./ops/linalg.ts";
export { groupedMatmul, type GroupedMatmulOptions, groupedOuter } from "./ops/grouped.ts";
export {
  concat,
  expand,
  flatten,
  narrow,
  permute,
  reshape,
  slice,
  sliceScatter,
  split,
  squeeze,
  stack,
  transpose,
  unsqueeze,
} from "./ops/layout.ts";
export { embedding, gather, indexAdd, indexSelect, oneHot, scatterAdd } from "./ops/index.ts";
export { argsort, sort, type SortOptions, topk, type TopkOptions, type ValuesIndices } from "./ops/sort.ts";
export { cumsum } from "./ops/scan.ts";
export { crossEntropy, type CrossEntropyOptions } from "./ops/loss.ts";
export { layerNorm, type LayerNormFnOptions } from "./ops/norm.ts";
export { actGrad, biasAct, type FusedActivation } from "./ops/fused.ts";
export { type MaskedSoftmaxOptions, scaledMaskedSoftmax } from "./ops/masked_softmax.ts";
export { rotaryEmbedding, type RotaryOptions } from "./ops/rotary.ts";
export { cpu } from "../kernels/cpu/mod.ts";
export { type CpuOptions, cpuOptions, type MatmulChoice, setCpuOptions } from "../kernels/cpu/config.ts";
export {
  formatProfile,
  type FormatProfileOptions,
  groupProfile,
  isProfiling,
  profile,
  type ProfileGroupOptions,
  profilePhase,
  type ProfileRow,
  type ProfileTable,
  startProfile,
  stopProfile,
} from "./profile.ts";
