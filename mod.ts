/**
 * moegrad: a tensor + autograd engine in TypeScript for sparse Mixture-of-Experts research.
 *
 * Importing this module registers the CPU device (the default). It exports the user-facing API only, grouped
 * below; the engine's internals (storage, tape nodes, backends, the kernel registry, the WebGPU runtime) are in
 * the sub-path `@moegrad/moegrad/internals` (`internals.ts`), for backend authors and advanced use, and less
 * stable.
 *
 * ## Tensors
 * {@link Tensor} is a dense, row-major array on a device, with a dtype ({@link DType}: f32, f64, i32, bool) and
 * most ops as methods. Create tensors with {@link tensor}, {@link zeros}, {@link ones}, {@link full},
 * {@link arange} and the seeded {@link randn}, {@link rand}, {@link randint} (a {@link Generator}, or the global
 * one of {@link manualSeed}). Every op is also a function: elementwise ({@link add}, {@link exp}, {@link where},
 * …), reductions ({@link sum}, {@link mean}, {@link max}, {@link argmax}, {@link logsumexp}), {@link matmul},
 * layout ({@link reshape}, {@link permute}, {@link concat}, {@link slice}, …), indexing ({@link gather},
 * {@link scatterAdd}, {@link indexSelect}, {@link oneHot}, {@link embedding}), {@link topk} and {@link sort},
 * {@link softmax} and {@link crossEntropy}. Bad arguments throw an {@link OpError} naming the op and the shapes.
 * {@link scope} frees what a block creates except what it returns ({@link keep} to hold on), and
 * {@link memoryStats} counts live tensors and buffers.
 *
 * ## Autograd
 * A PyTorch-style tape: `t.requiresGrad_()`, then `loss.backward()` (or {@link backward}) fills `.grad`;
 * {@link noGrad} and {@link enableGrad} switch recording. JAX-style transforms: {@link grad},
 * {@link valueAndGrad} and {@link gradients} (nestable, for higher-order derivatives). {@link customGrad} and
 * {@link customGradMulti} attach a hand-written {@link VJP}, which is how the estimators define their backward.
 *
 * ## Devices
 * The {@link cpu} device is the default. {@link selectDevice} picks `"auto"` (WebGPU on a hardware adapter, else
 * the CPU), `"cpu"` or `"webgpu"` (by default from the `MOEGRAD_DEVICE` environment variable); {@link initWebGpu}
 * starts WebGPU ({@link WebGpuDevice}); {@link getDevice} and {@link setDefaultDevice} look up and set devices by
 * name ({@link Device}). {@link setCpuOptions} switches the CPU's WebAssembly and thread paths and picks the
 * matmul kernel ({@link MatmulChoice}: with `--allow-ffi`, a native BLAS that {@link detectBlas} finds). {@link profile}
 * (or {@link startProfile} / {@link stopProfile}) times every kernel call, and {@link formatProfile} prints the
 * table.
 *
 * ## nn
 * {@link Module} (named parameters, state dicts, train/eval, {@link ModuleList}) and the seeded initialisers of
 * {@link init}; the layers of a transformer: {@link Linear}, {@link Embedding}, {@link LayerNorm}, {@link RMSNorm},
 * {@link Dropout}, {@link MultiHeadAttention} (with {@link scaledDotProductAttention}, {@link causalMask},
 * {@link applyRope}), {@link FFN}, {@link GLU}, {@link TransformerBlock}, {@link DecoderLM} and
 * {@link EncoderDecoder}.
 * Data: {@link ByteTokenizer} and the trainable {@link BpeTokenizer}, the corpora {@link loadSotu} and
 * {@link loadMobyDick}, {@link LanguageModelDataset} (document-level splits, `[B, T]` batches;
 * {@link sampleBatch}, {@link windowBatch}) and {@link buildTranslationPairs}.
 * Checkpoints: {@link saveCheckpoint} / {@link loadCheckpoint} (model, optimizer and RNG state, written
 * atomically, validated before anything is touched), {@link latestCheckpoint} for resuming, and the safetensors
 * format ({@link encodeSafetensors} / {@link decodeSafetensors}).
 *
 * ## optim
 * {@link SGD}, {@link Adam} and {@link AdamW} (subclasses of {@link Optimizer}, with state dicts from which a
 * resumed run continues bit for bit), {@link clipGradNorm}, and learning-rate schedules
 * ({@link warmupCosineLr}, {@link warmupLinearLr}, {@link inverseSqrtLr}, {@link constantLr}) applied with
 * {@link applySchedule}.
 *
 * ## moe
 * {@link MoELayer} (router, estimator, capacity or dropless dispatch, batched experts, balance and z losses
 * through `auxLoss()`, routing metrics in `lastMetrics`) goes into a transformer through `DecoderLM`'s
 * `ffnFactory` or `TransformerBlock`'s `ffn` slot. Every gradient estimator implements {@link Estimator}
 * (`route(logits, { training, draws })` → {@link Routing}) and takes its random numbers from a {@link DrawSource}
 * ({@link GeneratorDraws}, or {@link ReplayDraws} to replay logged draws). {@link createEstimator} builds one by
 * registry name ({@link ESTIMATOR_NAMES}), validating its options; the same names go to
 * `new MoELayer(d, { estimator })` and to the experiments' `--arms`:
 *
 * | registry name | class | options |
 * |---|---|---|
 * | `switch` | {@link SwitchEstimator} | {@link SwitchOptions} |
 * | `sparsemixer` | {@link SparseMixerEstimator} (`variant: "midpoint"`) | {@link SparseMixerOptions} |
 * | `sparsemixer-1st` | {@link SparseMixerEstimator} (`variant: "first"`) | {@link SparseMixerOptions} |
 * | `sparsemixer-inf` | {@link SparseMixerEstimator} (`variant: "inf"`) | {@link SparseMixerOptions} |
 * | `sparsemixer-v2` | {@link SparseMixerV2Estimator} (`variant: "released"`) | {@link SparseMixerV2Options} |
 * | `sparsemixer-v2-heun` | {@link SparseMixerV2Estimator} (`variant: "heun"`) | {@link SparseMixerV2Options} |
 * | `topk` | {@link TopKEstimator} | {@link TopKOptions} |
 * | `straight-through` | {@link StraightThroughEstimator} | {@link TemperatureOptions} (+ `numExperts`) |
 * | `st-gumbel` | {@link StGumbelEstimator} | {@link StGumbelOptions} |
 * | `reinmax` | {@link ReinMaxEstimator} | {@link TemperatureOptions} (+ `numExperts`) |
 * | `default-moe` | {@link DefaultMoeEstimator} | {@link DefaultMoeEstimatorOptions} |
 * | `sigmoid-topk` | {@link SigmoidTopKEstimator} | {@link SigmoidTopKOptions} |
 * | `densemixer` | {@link DenseMixerEstimator} | {@link DenseMixerOptions} |
 * | `expert-choice` | {@link ExpertChoiceEstimator} | {@link ExpertChoiceOptions} |
 * | `random` | {@link RandomRoutingEstimator} | {@link RandomRoutingOptions} |
 * | `hash` | {@link HashEstimator} | {@link HashRoutingOptions} |
 *
 * `random` and `hash` are null controls (ESTIMATORS.md §12): routing that ignores the router (uniformly random
 * experts redrawn at every forward; Hash Layers' fixed hash of the token id), to test whether learned routing
 * matters at all; the third control, a router frozen at its initial weights, is the layer option
 * `frozenRouter`. `hash` reads the token ids, which {@link MoEForwardOptions} `tokenIds` (and `DecoderLM`) pass.
 *
 * (The registry name fixes `variant` where the table gives one.) Each registry entry is an
 * {@link EstimatorDescriptor}: its options schema and factory, sparse or dense, how K is set, what the layer must
 * give it (the router input, the experts' outputs), what capacity dropping means, its exact objective and the
 * reference vectors it replays; {@link registerEstimator} adds one from outside the library. Auxiliary losses: {@link switchBalanceLoss},
 * {@link topkBalanceLoss} (with {@link BalanceStats} for global-batch balancing) and {@link routerZLoss};
 * {@link routingMetrics} reports the expert load, the router entropy and the unused experts.
 *
 * ## experiments
 * The exact-gradient harness measures an estimator's bias and variance against the true gradient of the
 * expected loss, enumerated over experts: {@link estimatorBias}, {@link exactTerms}, {@link sampleGradients},
 * and {@link GatingProxyEstimator} (the plain gating gradient, which never sees the routing term). The
 * experiments themselves (`deno task exp:switch-vs-sparsemixer`, `exp:grin-top2`, `exp:estimator-bias`) are tools
 * of the repository, run from a clone, not part of this package's exports; their shared library (zod configs and
 * CLI, statistics, SVG charts, markdown reports) is `experiments/mod.ts`, imported by path.
 *
 * ## Internals
 * `@moegrad/moegrad/internals` (`internals.ts`) exports what a backend author needs (`Storage`, `Node`,
 * `Backend`, `registerDevice`, the kernel registry's `KernelTable` and `KERNEL_NAMES`, `WebGpuRuntime`), the
 * building blocks of the built-in optimizers and estimators, and lower-level checkpoint and tokenizer helpers.
 * Its names may change in any release; this module's change only on purpose (`tests/api_surface_test.ts`).
 *
 * @example
 * ```ts
 * import { randn, tensor } from "@moegrad/moegrad";
 * const w = randn([4, 3]).requiresGrad_();
 * const x = tensor([[1, 2, 3, 4]]);
 * const loss = x.matmul(w).softmax().max();
 * loss.backward();
 * console.log(w.grad!.shape); // [4, 3]
 * ```
 *
 * @module
 */

// ── Tensors: the class, dtypes and shapes, errors ────────────────────────────────────────────────────────────
export {
  broadcastShapes,
  type DType,
  DTYPES,
  type FloatDType,
  isFloat,
  type Operand,
  OpError,
  type Shape,
  Tensor,
  type TypedArray,
} from "./core/mod.ts";

// ── Tensors: creation and random numbers ─────────────────────────────────────────────────────────────────────
export {
  arange,
  type CreateOptions,
  defaultGenerator,
  dropout,
  type DropoutOptions,
  full,
  fullLike,
  Generator,
  type GeneratorState,
  manualSeed,
  type NestedArray,
  ones,
  onesLike,
  rand,
  randint,
  randn,
  type RandomOptions,
  tensor,
  zeros,
  zerosLike,
} from "./core/mod.ts";

// ── Tensors: ops (also methods of Tensor) ────────────────────────────────────────────────────────────────────
export {
  abs,
  actGrad,
  add,
  argmax,
  argmin,
  argsort,
  astype,
  biasAct,
  clamp,
  concat,
  cos,
  crossEntropy,
  type CrossEntropyOptions,
  cumsum,
  div,
  embedding,
  eq,
  erf,
  exp,
  expand,
  flatten,
  type FusedActivation,
  gather,
  ge,
  gelu,
  groupedMatmul,
  type GroupedMatmulOptions,
  groupedOuter,
  gt,
  indexAdd,
  indexSelect,
  isnan,
  layerNorm,
  type LayerNormFnOptions,
  le,
  log,
  logicalAnd,
  logicalNot,
  logicalOr,
  logSoftmax,
  logsumexp,
  lt,
  type MaskedSoftmaxOptions,
  matmul,
  max,
  maximum,
  mean,
  min,
  minimum,
  mul,
  narrow,
  ne,
  neg,
  oneHot,
  permute,
  pow,
  relu,
  reshape,
  rotaryEmbedding,
  type RotaryOptions,
  rsqrt,
  scaledMaskedSoftmax,
  scatterAdd,
  sigmoid,
  sign,
  silu,
  sin,
  slice,
  sliceScatter,
  softmax,
  sort,
  type SortOptions,
  split,
  sqrt,
  squeeze,
  stack,
  sub,
  sum,
  sumTo,
  tanh,
  topk,
  type TopkOptions,
  transpose,
  unsqueeze,
  type ValuesIndices,
  where,
} from "./core/mod.ts";

// ── Tensors: memory ──────────────────────────────────────────────────────────────────────────────────────────
export { keep, memoryStats, scope } from "./core/mod.ts";

// ── Autograd ─────────────────────────────────────────────────────────────────────────────────────────────────
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
  noGrad,
  valueAndGrad,
  type VJP,
} from "./core/mod.ts";

// ── Devices and profiling ────────────────────────────────────────────────────────────────────────────────────
export {
  cpu,
  type CpuOptions,
  cpuOptions,
  Device,
  formatProfile,
  type FormatProfileOptions,
  getDevice,
  groupProfile,
  isProfiling,
  type MatmulChoice,
  profile,
  type ProfileGroupOptions,
  profilePhase,
  type ProfileRow,
  type ProfileTable,
  setCpuOptions,
  setDefaultDevice,
  startProfile,
  stopProfile,
} from "./core/mod.ts";
export {
  describeAdapter,
  initWebGpu,
  isSoftwareAdapter,
  type WebGpuDevice,
  type WebGpuOptions,
} from "./kernels/webgpu/mod.ts";
export { type DeviceChoice, selectDevice, type SelectDeviceOptions } from "./kernels/select.ts";
export { type BlasDetection, type BlasLibrary, detectBlas } from "./kernels/cpu/blas_library.ts";

// ── nn: modules, initialisers, layers ────────────────────────────────────────────────────────────────────────
export {
  applyRope,
  type AttentionOptions,
  causalMask,
  DecoderLM,
  type DecoderLMCall,
  type DecoderLMOptions,
  Dropout,
  Embedding,
  type EmbeddingOptions,
  EncoderDecoder,
  type EncoderDecoderCall,
  type EncoderDecoderOptions,
  type FanInitOptions,
  type Fans,
  type FeedForward,
  type FeedForwardCall,
  FFN,
  type FFNOptions,
  GLU,
  type GLUOptions,
  init,
  type InitOptions,
  type KaimingOptions,
  LayerNorm,
  type LayerNormOptions,
  Linear,
  type LinearOptions,
  type LoadStateDictOptions,
  type LoadStateDictResult,
  Module,
  ModuleList,
  MultiHeadAttention,
  type MultiHeadAttentionCall,
  type MultiHeadAttentionOptions,
  type Nonlinearity,
  type Norm,
  RMSNorm,
  type RMSNormOptions,
  type RopeOptions,
  scaledDotProductAttention,
  StateDictError,
  TransformerBlock,
  type TransformerBlockCall,
  type TransformerBlockOptions,
} from "./nn/mod.ts";

// ── nn: tokenizers and datasets ──────────────────────────────────────────────────────────────────────────────
export {
  type Batch,
  type BatchOptions,
  type BpeJSON,
  BpeTokenizer,
  type BpeTrainOptions,
  type BpeTrainStats,
  type BuildTranslationOptions,
  buildTranslationPairs,
  ByteTokenizer,
  type ByteTokenizerOptions,
  type DecodeOptions,
  type DocumentLike,
  type EncodeOptions,
  type EvalBatch,
  type EvalBatchOptions,
  LanguageModelDataset,
  type LanguageModelDatasetOptions,
  loadMobyDick,
  loadSotu,
  type MobyDickChapter,
  PRETOKENIZE_RULES,
  type PretokenizeRule,
  sampleBatch,
  type SampleBatchOptions,
  type SotuDocument,
  type Split,
  SPLITS,
  type Tokenizer,
  type TranslationPair,
  type TranslationPairs,
  windowBatch,
} from "./nn/data/mod.ts";

// ── nn: checkpoints and safetensors ──────────────────────────────────────────────────────────────────────────
export {
  CHECKPOINT_FORMAT_VERSION,
  CheckpointError,
  type CheckpointFile,
  type CheckpointInfo,
  type CheckpointNaming,
  checkpointPath,
  decodeCheckpoint,
  type DecodeCheckpointOptions,
  type DecodedSafetensors,
  decodeSafetensors,
  encodeCheckpoint,
  type EncodeCheckpointOptions,
  encodeSafetensors,
  inspectCheckpoint,
  type JsonValue,
  latestCheckpoint,
  listCheckpoints,
  loadCheckpoint,
  type LoadedCheckpoint,
  SafetensorsError,
  saveCheckpoint,
  type StatefulGenerator,
  type StatefulModel,
  type StatefulOptimizer,
} from "./nn/checkpoint/mod.ts";

// ── optim: optimizers, clipping, schedules ───────────────────────────────────────────────────────────────────
export {
  Adam,
  type AdamOptions,
  AdamW,
  applySchedule,
  clipGradNorm,
  type ClipGradNormOptions,
  constantLr,
  inverseSqrtLr,
  type InverseSqrtLrOptions,
  type LrSchedule,
  Optimizer,
  type OptimizerState,
  type ParamsInput,
  type ScheduledOptimizer,
  SGD,
  type SGDOptions,
  warmupCosineLr,
  type WarmupCosineLrOptions,
  warmupLinearLr,
  type WarmupLinearLrOptions,
} from "./nn/optim/mod.ts";

// ── moe: the layer, estimators and their registry, random draws ──────────────────────────────────────────────
export {
  type BalanceLossConfig,
  createEstimator,
  DenseMixerEstimator,
  type DenseMixerOptions,
  type DrawKind,
  type DrawSource,
  type Estimator,
  ESTIMATOR_NAMES,
  ExpertChoiceEstimator,
  type ExpertChoiceOptions,
  type ExpertKind,
  type ExpertOutputTerm,
  GeneratorDraws,
  HashEstimator,
  type HashRoutingOptions,
  type LoggedDraw,
  LossFreeBalance,
  type LossFreeBalanceConfig,
  type MoEForwardOptions,
  MoELayer,
  type MoELayerMetrics,
  type MoELayerOptions,
  RandomRoutingEstimator,
  type RandomRoutingOptions,
  ReinMaxEstimator,
  ReplayDraws,
  type RouteOptions,
  type Routing,
  SigmoidTopKEstimator,
  type SigmoidTopKOptions,
  SparseMixerEstimator,
  type SparseMixerOptions,
  SparseMixerV2Estimator,
  type SparseMixerV2Options,
  StGumbelEstimator,
  type StGumbelOptions,
  StraightThroughEstimator,
  SwitchEstimator,
  type SwitchOptions,
  type TemperatureOptions,
  TopKEstimator,
  type TopKOptions,
  updateExpertBiases,
} from "./moe/mod.ts";

// ── moe: the layer's parts (router, experts, dispatch functions, Default MoE's term, metrics) ─────────────────
export {
  type BuiltinExperts,
  combinePairs,
  createExperts,
  DefaultMoe,
  DefaultMoeEstimator,
  type DefaultMoeEstimatorOptions,
  type DefaultMoeOptions,
  DenseMixerTerm,
  type DispatchMode,
  type DispatchPadding,
  type DispatchPlan,
  type DispatchPlanOptions,
  dispatchRows,
  dispatchTokens,
  EXPERT_ACTIVATIONS,
  type ExpertActivation,
  expertCapacity,
  type ExpertGroups,
  type Experts,
  type ExpertsOptions,
  FfnExperts,
  gatherPairs,
  GluExperts,
  LinearExperts,
  moeLayerMetrics,
  planDispatch,
  Router,
  type RouterOptions,
  type RouterOutput,
} from "./moe/mod.ts";

// ── moe: estimator descriptors (the registry's entries; how to add an estimator) ─────────────────────────────
export {
  type BiasSweep,
  defineEstimator,
  descriptorOf,
  DROPS_SLOTS,
  type EstimatorDescriptor,
  estimatorDescriptor,
  estimatorDescriptors,
  EVERY_EXPERT,
  type LayerNeeds,
  LOGITS_ONLY,
  NO_OPTIONS,
  type OptionsSchema,
  registerEstimator,
  TOP1,
  topKOption,
  type TopKRule,
  type VectorFile,
  type VectorFileFormat,
  type VectorReference,
  type VectorRouterParams,
} from "./moe/mod.ts";

// ── moe: auxiliary losses and routing metrics ────────────────────────────────────────────────────────────────
export {
  type BalanceLossOptions,
  BalanceStats,
  routerZLoss,
  type RoutingLike,
  type RoutingMetrics,
  routingMetrics,
  switchBalanceLoss,
  topkBalanceLoss,
} from "./moe/mod.ts";

// ── experiments: the exact-gradient harness ──────────────────────────────────────────────────────────────────
export {
  type Downstream,
  type EstimatorBias,
  estimatorBias,
  type EstimatorBiasOptions,
  exactGradient,
  type ExactObjective,
  type ExactProblem,
  type ExactTerms,
  exactTerms,
  forwardLossMC,
  GatingProxyEstimator,
  type Objective,
  objectiveValue,
  sampleGradients,
  type SampleGradientsOptions,
} from "./moe/mod.ts";
