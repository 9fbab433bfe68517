/**
 * moegrad's engine internals: `@moegrad/moegrad/internals`.
 *
 * The package root (`@moegrad/moegrad`) is the API for training models and studying estimators. This sub-path
 * holds what sits underneath it, for **backend authors and advanced use**: writing a backend or a kernel,
 * instrumenting the engine, writing an optimizer or an estimator out of the same building blocks the built-in
 * ones use, or reading a file format at a lower level than the root's functions. The repository's tests import
 * from here too.
 *
 * **Less stable than the root.** These names follow the engine's implementation: they may change in any release
 * without a deprecation period, while the root changes only on purpose (`tests/api_surface_test.ts` pins both
 * lists). Nothing here is needed to train a model.
 *
 * ## What is here
 * - **Storage and the tape**: {@link Storage} (a device buffer shared by the tensors that view it; `Tensor.storage`)
 *   and {@link Node} (one recorded op: inputs, outputs and its VJP; `Tensor.node`).
 * - **Backends**: the {@link Backend} interface a device wraps (memory: alloc, upload, read, free; plus a full
 *   kernel table) and {@link registerDevice}, which makes a device reachable by name (`getDevice`,
 *   `{ device: "…" }`).
 * - **The kernel registry** (`kernels/registry.ts`): {@link KernelDefs} (every kernel's inputs, outputs and
 *   attributes), {@link KernelName}, {@link KERNEL_NAMES}, {@link KernelTable} (what a backend implements),
 *   {@link KernelImpl}, {@link KernelFamily}, {@link KernelInputs}, {@link KernelOutputs}, {@link KernelAttrs},
 *   {@link Refs}, {@link TensorRef}, and the op enums {@link UnaryOp}, {@link BinaryOp}, {@link ReduceOp},
 *   {@link RandomDist}; the elementwise expression IR (`kernels/expr/ir.ts`) that the `elementwise` kernel takes
 *   and every backend renders: {@link ElementwiseProgram}, {@link Expr}, {@link UnaryPrim}, {@link BinaryPrim}.
 * - **The WebGPU runtime**: {@link WebGpuRuntime} (batched dispatches, buffer pool, pipeline cache;
 *   `WebGpuDevice.runtime`), {@link GpuBuffer}, {@link DispatchSpec}, {@link RuntimeStats}, and
 *   {@link webGpuBackend}, which builds a backend over a runtime (the tests make extra WebGPU devices with it).
 * - **Shape arithmetic**: {@link sizeOf} (element count), {@link stridesOf} (row-major strides).
 * - **Building blocks of optimizers**: {@link namedParams} (the accepted parameter forms as `[name, tensor]`
 *   pairs) and {@link checkHyperKeys} (rejects unknown hyper-parameters).
 * - **Building blocks of estimators**: {@link jitterMask}, {@link maskLogits}, {@link maskedSoftmax},
 *   {@link gumbelArgmax}, {@link sampleMultinomial}, {@link jitterRouterInput} and {@link V2_MIDPOINT_SCALE} (the
 *   released SparseMixer-v2's float32 constant).
 * - **Validation tools**: {@link moeLoopReference} (the MoE layer as a per-token loop) and
 *   {@link replayLayerVector} (replays a `layer_*` reference vector; `deno task vectors`).
 * - **Checkpoint and file internals**: {@link parseSafetensors}, {@link tensorFromView},
 *   {@link typedArrayFromBytes}, {@link safetensorsDType}, {@link compareCodePoints}, {@link MAX_HEADER_BYTES},
 *   {@link checkpointChecksum}, {@link crc32} / {@link Crc32}, {@link writeFileAtomic}.
 * - **Tokenizer and data helpers**: {@link utf8Encode}, {@link utf8Decode}, {@link checkSpecialTokens},
 *   {@link pretokenize}, {@link extractHelpParagraphs} (paragraphs of a LibreOffice help page),
 *   {@link LIBREOFFICE_HELP_INSTALL}, {@link TRANSLATION_CACHE_FILE}.
 *
 * Every name is in exactly one of the two entry points. `core/mod.ts` explains how an op reaches a kernel and
 * where to add an op, a kernel or a backend.
 *
 * @example A device that counts the kernels it runs (a backend wrapping the CPU's)
 * ```ts
 * import { cpu, Device, tensor } from "@moegrad/moegrad";
 * import { type Backend, KERNEL_NAMES, type KernelName, type KernelTable } from "@moegrad/moegrad/internals";
 *
 * const calls = new Map<KernelName, number>();
 * const kernels = Object.fromEntries(KERNEL_NAMES.map((name) => {
 *   const kernel = cpu.backend.kernels[name] as (...args: unknown[]) => void;
 *   return [name, (...args: unknown[]) => {
 *     calls.set(name, (calls.get(name) ?? 0) + 1);
 *     kernel(...args);
 *   }];
 * })) as unknown as KernelTable<unknown>;
 * const counting = new Device("cpu-counting", { ...cpu.backend, name: "cpu-counting", kernels } as Backend);
 *
 * tensor([0, 1, 2], { device: counting }).exp().sum();
 * console.log(calls); // Map(2) { "unary" => 1, "reduce" => 1 }
 * ```
 *
 * @module
 */

// ── Storage, the tape, backends ──────────────────────────────────────────────────────────────────────────────
export { type Backend, Node, registerDevice, sizeOf, Storage, stridesOf } from "./core/mod.ts";

// ── The kernel registry ──────────────────────────────────────────────────────────────────────────────────────
export {
  type BinaryOp,
  KERNEL_NAMES,
  type KernelAttrs,
  type KernelDefs,
  type KernelFamily,
  type KernelImpl,
  type KernelInputs,
  type KernelName,
  type KernelOutputs,
  type KernelTable,
  type RandomDist,
  type ReduceOp,
  type Refs,
  type TensorRef,
  type TupleOf,
  type UnaryOp,
} from "./kernels/registry.ts";
export { type BinaryPrim, type ElementwiseProgram, type Expr, type UnaryPrim } from "./kernels/expr/ir.ts";

// ── The WebGPU runtime ───────────────────────────────────────────────────────────────────────────────────────
export { webGpuBackend } from "./kernels/webgpu/mod.ts";
export { type DispatchSpec, type GpuBuffer, type RuntimeStats, WebGpuRuntime } from "./kernels/webgpu/runtime.ts";

// ── Building blocks of optimizers and estimators ─────────────────────────────────────────────────────────────
export { checkHyperKeys, namedParams } from "./nn/optim/mod.ts";
export {
  gumbelArgmax,
  jitterMask,
  jitterRouterInput,
  maskedSoftmax,
  maskLogits,
  sampleMultinomial,
  V2_MIDPOINT_SCALE,
} from "./moe/mod.ts";

// ── Validation tools ─────────────────────────────────────────────────────────────────────────────────────────
export {
  type LayerReplayErrors,
  type LayerReplayOptions,
  type LayerReplayResult,
  moeLoopReference,
  type ReplayError,
  replayLayerVector,
} from "./moe/mod.ts";

// ── Checkpoint and file internals ────────────────────────────────────────────────────────────────────────────
export {
  checkpointChecksum,
  compareCodePoints,
  Crc32,
  crc32,
  MAX_HEADER_BYTES,
  type ParsedSafetensors,
  parseSafetensors,
  safetensorsDType,
  type SafetensorsView,
  tensorFromView,
  typedArrayFromBytes,
  writeFileAtomic,
} from "./nn/checkpoint/mod.ts";

// ── Tokenizer and data helpers ───────────────────────────────────────────────────────────────────────────────
export {
  checkSpecialTokens,
  extractHelpParagraphs,
  LIBREOFFICE_HELP_INSTALL,
  pretokenize,
  TRANSLATION_CACHE_FILE,
  utf8Decode,
  utf8Encode,
} from "./nn/data/mod.ts";
