/**
 * The kernel registry: one typed table of every kernel's name, inputs, outputs and attributes.
 *
 * Ops in `core/ops` validate their arguments, allocate the outputs and call a kernel by name; a backend is
 * a {@link KernelTable}, a mapped type over this table, so a backend that misses a kernel (or gets its
 * signature wrong) does not compile. Kernels never allocate their outputs: they fill the outputs they are
 * given, which is what a WebGPU backend needs (outputs are bound storage buffers) and costs the CPU nothing.
 * (A kernel may use internal scratch memory, e.g. the GPU indexAdd's per-row index lists.)
 *
 * Conventions every backend follows:
 * - tensors are dense row-major; `shape` is the logical shape of each buffer;
 * - inputs of elementwise kernels are broadcast (NumPy rules) to the output's shape;
 * - axes arrive normalised (non-negative) and validated; index values are checked by the kernel.
 *
 * ## The backends
 * - `kernels/cpu/` — typed-array loops; the reference every other path is tested against. f32 matmuls go to a
 *   WebAssembly SIMD kernel emitted at run time (`kernels/cpu/wasm/`), large ones split over Workers; the
 *   run-time switches (`kernels/cpu/config.ts`: `setCpuOptions({ wasm, threads, fastKernels })`) select the
 *   plain-TypeScript path for comparisons.
 * - `kernels/webgpu/` — one WGSL family per file, run by `runtime.ts` (batched dispatches, buffer pool,
 *   pipeline cache, async reads only).
 * - `kernels/select.ts` — `selectDevice("auto" | "cpu" | "webgpu")`.
 *
 * ## Adding a kernel
 * Add its entry to {@link KernelDefs} (inputs, outputs, attributes) and to the `NAMES` record behind
 * {@link KERNEL_NAMES} (which fails to compile until you do); both backends stop type-checking until they
 * implement it. Write the CPU loop first (it is the reference), then the WGSL, then a per-family test comparing
 * the two (`tests/kernels/webgpu_*_test.ts`) and an op that uses it (see `core/mod.ts` for the op side). Prefer
 * expressing a new op with existing kernels: every kernel is written twice and tested three ways. An elementwise
 * op needs no kernel at all: write it once as an expression (`kernels/expr/ops.ts` for the `unary`/`binary`
 * families, a program for the `elementwise` kernel for fused chains) and every backend renders it.
 *
 * @module
 */
import type { DType } from "../core/dtype.ts";
import type { Shape } from "../core/shape.ts";
import type { ElementwiseProgram } from "./expr/ir.ts";

/** A buffer seen by a kernel: the backend's storage plus its logical shape and dtype. */
export interface TensorRef<B> {
  /** The backend's storage (a typed array on the CPU, a GPUBuffer on WebGPU). */
  readonly buf: B;
  /** Logical row-major shape. */
  readonly shape: Shape;
  /** Element type. */
  readonly dtype: DType;
}

/** Elementwise functions of one argument. `not` takes and gives `bool`; `isnan` gives `bool`. */
export type UnaryOp =
  | "neg"
  | "abs"
  | "sign"
  | "exp"
  | "log"
  | "sqrt"
  | "rsqrt"
  | "tanh"
  | "sigmoid"
  | "relu"
  | "gelu"
  | "gelu_tanh"
  | "silu"
  | "erf"
  | "sin"
  | "cos"
  | "not"
  | "isnan";

/** Elementwise functions of two broadcast arguments; comparisons, `and` and `or` give `bool`. */
export type BinaryOp =
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "pow"
  | "maximum"
  | "minimum"
  | "eq"
  | "ne"
  | "lt"
  | "le"
  | "gt"
  | "ge"
  | "and"
  | "or";

/** Reductions over one axis. */
export type ReduceOp = "sum" | "max" | "min";

/** Distributions of the counter-based RNG (see `core/random/philox.ts` for the stream layout). */
export type RandomDist = "uniform" | "normal" | "int";

/**
 * Every kernel: how many inputs and outputs it takes and its attributes. Add a kernel here and every
 * backend fails to compile until it implements it.
 */
export interface KernelDefs {
  /** out[i] = value. */
  fill: { inputs: 0; outputs: 1; attrs: { value: number } };
  /** Counter-based random numbers: element i uses Philox counter `counter + floor(i / 4)`, lane i % 4. */
  random: {
    inputs: 0;
    outputs: 1;
    attrs: {
      dist: RandomDist;
      key: readonly [number, number];
      counter: readonly [number, number];
      /** Offset: the low end (uniform, int) or the mean (normal). */
      loc: number;
      /** Width (uniform), number of integers (int) or standard deviation (normal). */
      scale: number;
    };
  };
  /** Converts between dtypes (float → i32 truncates toward zero; anything → bool is `≠ 0`). */
  cast: { inputs: 1; outputs: 1; attrs: Record<never, never> };
  /** out = op(x). */
  unary: { inputs: 1; outputs: 1; attrs: { op: UnaryOp } };
  /** out = op(a, b), inputs broadcast to the output. */
  binary: { inputs: 2; outputs: 1; attrs: { op: BinaryOp } };
  /** out = cond ? a : b, all three broadcast to the output. */
  where: { inputs: 3; outputs: 1; attrs: Record<never, never> };
  /**
   * out = the program's expression of the inputs (broadcast to the output), for fused elementwise chains:
   * see `kernels/expr/ir.ts` for the expression IR and the semantics every backend renders.
   */
  elementwise: { inputs: number; outputs: 1; attrs: { program: ElementwiseProgram } };
  /** out[idx] = x[offset + Σ idx_k · strides_k]: permutes, broadcasts and slices in one kernel. */
  strided: { inputs: 1; outputs: 1; attrs: { offset: number; strides: readonly number[] } };
  /** out = copy of base, then out[offset + Σ idx_k · strides_k] = src[idx] (the inverse of `strided`). */
  stridedScatter: { inputs: 2; outputs: 1; attrs: { offset: number; strides: readonly number[] } };
  /** Concatenation along `axis` of any number of inputs of equal dtype. */
  concat: { inputs: number; outputs: 1; attrs: { axis: number } };
  /** Reduces `axis` to size 1 (the output keeps the axis). Sums of bool/i32 give i32. */
  reduce: { inputs: 1; outputs: 1; attrs: { op: ReduceOp; axis: number } };
  /** Index (i32) of the max/min along `axis` (kept, size 1); ties go to the lowest index, NaN wins. */
  argReduce: { inputs: 1; outputs: 1; attrs: { op: "argmax" | "argmin"; axis: number } };
  /** Softmax (or log-softmax) along `axis`, max-shifted; −∞ entries give 0 (or −∞). */
  softmax: { inputs: 1; outputs: 1; attrs: { axis: number; log: boolean } };
  /**
   * softmax(where(allowed, x·scale, −∞)) over the last axis of x [..., Tq, Tk]; inputs x [, mask]. A key is
   * allowed where the bool mask (any shape that broadcasts to x; present when `hasMask`) is true and, with
   * `causal`, where key j ≤ query i (i the index along axis −2). A row with no allowed key gives 0.
   */
  maskedSoftmax: { inputs: number; outputs: 1; attrs: { scale: number; causal: boolean; hasMask: boolean } };
  /**
   * maskedSoftmax's backward: inputs g, y (the forward's output) [, mask]; output dx = (y ⊙ (g − Σ g ⊙ y))·scale
   * at allowed keys, 0·scale elsewhere and in rows with no allowed key.
   */
  maskedSoftmaxBackward: { inputs: number; outputs: 1; attrs: { scale: number; causal: boolean; hasMask: boolean } };
  /**
   * Rotary position embedding (rotate-half) of x [..., T, D] with cos and sin [T, D/2]: for i < D/2 and
   * h = D/2, out[i] = x[i]·cos[i] − x[i + h]·sin[i] and out[i + h] = x[i + h]·cos[i] + x[i]·sin[i] (each
   * product rounded, then the sum); `inverse` rotates the other way (sin negated), which is the backward.
   */
  rotary: { inputs: 3; outputs: 1; attrs: { inverse: boolean } };
  /**
   * Layer normalisation over the last axis, one row at a time: inputs x [..., D] then, as the attributes say,
   * weight [D] and bias [D]; outputs y (x's shape), mean and rstd (x's shape without the last axis). Per row:
   * mean = Σx / D, var = Σ(x − mean)² / D (biased, as PyTorch), rstd = 1 / √(var + eps), and
   * y = (x − mean)·rstd [· weight] [+ bias], computed with the stored (output-dtype) mean and rstd.
   */
  layerNorm: { inputs: number; outputs: 3; attrs: { eps: number; hasWeight: boolean; hasBias: boolean } };
  /**
   * layerNorm's backward: inputs g (x's shape), x, mean, rstd [, weight [D]]; outputs dx (x's shape), dweight
   * [D] and dbias [D]. With x̂ = (x − mean)·rstd and ĝ = g [· weight], per row
   * dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)); dweight = Σ_rows g·x̂ and dbias = Σ_rows g (rows in order).
   */
  layerNormBackward: { inputs: number; outputs: 3; attrs: { hasWeight: boolean } };
  /**
   * Softmax cross-entropy per row: inputs logits [..., C] and i32 targets [...]; outputs loss and lse (both
   * targets' shape). lse = log Σ exp(logits) (max-shifted); loss = lse − logits[target], and with label
   * smoothing ε: (1 − ε)·loss − ε·(mean(logits) − lse). A row whose target is `ignoreIndex` gets loss 0 (lse
   * 0); another target outside [0, C) is an error (clamped on WebGPU).
   */
  crossEntropy: { inputs: 2; outputs: 2; attrs: { ignoreIndex: number; labelSmoothing: number } };
  /**
   * crossEntropy's backward: inputs logits, targets, lse and g (the upstream gradient per row); output
   * dlogits = (softmax − (1 − ε)·onehot(target) − ε/C)·g per row, 0 in ignored rows.
   */
  crossEntropyBackward: { inputs: 4; outputs: 1; attrs: { ignoreIndex: number; labelSmoothing: number } };
  /** Inclusive cumulative sum along `axis`; `reverse` sums from the end. */
  cumsum: { inputs: 1; outputs: 1; attrs: { axis: number; reverse: boolean } };
  /**
   * Batched matmul of 3-D operands: a is [Ba, M, K] ([Ba, K, M] if transA), b is [Bb, K, N] ([Bb, N, K] if
   * transB), out is [B, M, N]; Ba and Bb are B or 1 (a batch of 1 is reused for every output batch).
   */
  matmul: { inputs: 2; outputs: 1; attrs: { transA: boolean; transB: boolean } };
  /**
   * Grouped matmul over rows: x [R, K], w [G, K, N] ([G, N, K] if transB), offsets i32 [G+1] (nondecreasing,
   * within [0, R]); out [R, N]. Row r with offsets[g] ≤ r < offsets[g+1] is x[r]·op(w[g]); rows outside every
   * group (before offsets[0], from offsets[G] on) are zero.
   */
  groupedMatmul: { inputs: 3; outputs: 1; attrs: { transB: boolean } };
  /**
   * Per-group sums of outer products (groupedMatmul's weight gradient): a [R, M], b [R, N], offsets i32 [G+1]
   * as in groupedMatmul; out [G, M, N] with out[g] = Σ_{offsets[g] ≤ r < offsets[g+1]} a[r]ᵀ·b[r] (zero for
   * an empty group).
   */
  groupedOuter: { inputs: 3; outputs: 1; attrs: Record<never, never> };
  /** torch.gather: out[idx] = x[idx with idx[axis] := index[idx]]; out has index's shape. */
  gather: { inputs: 2; outputs: 1; attrs: { axis: number } };
  /** out = base; out[idx with idx[axis] := index[idx]] += src[idx] (index and src have equal shapes). */
  scatterAdd: { inputs: 3; outputs: 1; attrs: { axis: number } };
  /** out = x with `axis` replaced by the 1-D index: out[..., i, ...] = x[..., index[i], ...]. */
  indexSelect: { inputs: 2; outputs: 1; attrs: { axis: number } };
  /** out = base; out[..., index[i], ...] += src[..., i, ...] (the VJP of indexSelect). */
  indexAdd: { inputs: 3; outputs: 1; attrs: { axis: number } };
  /** The k largest (or smallest) entries along the last axis, sorted, with i32 indices; ties → lowest index. */
  topk: { inputs: 1; outputs: 2; attrs: { k: number; largest: boolean } };
  /** Stable sort along the last axis with i32 indices (NaN sorts as the largest value). */
  sort: { inputs: 1; outputs: 2; attrs: { descending: boolean } };
}

/** The name of a kernel. */
export type KernelName = keyof KernelDefs;

/** The attributes of kernel `K`. */
export type KernelAttrs<K extends KernelName> = KernelDefs[K]["attrs"];

/** A tuple of `N` kernel buffers (an array when `N` is `number`, for variadic kernels such as concat). */
export type Refs<B, N extends number> = N extends 0 ? []
  : N extends 1 ? [TensorRef<B>]
  : N extends 2 ? [TensorRef<B>, TensorRef<B>]
  : N extends 3 ? [TensorRef<B>, TensorRef<B>, TensorRef<B>]
  : TensorRef<B>[];

/**
 * {@link Refs}' counts for any element type: the engine types an op's kernel call with it (tensors and output
 * specs), so the op passes exactly as many of each as the backend's kernel receives buffers. (`Refs` does not use it:
 * `Refs` is public API, so building it on this type would make this type public too; the registry test checks
 * that the two agree.)
 */
export type TupleOf<T, N extends number> = N extends 0 ? []
  : N extends 1 ? [T]
  : N extends 2 ? [T, T]
  : N extends 3 ? [T, T, T]
  : T[];

/** The inputs of kernel `K` on a backend whose buffers are `B`. */
export type KernelInputs<K extends KernelName, B> = Refs<B, KernelDefs[K]["inputs"]>;

/** The outputs of kernel `K` (already allocated, to be filled). */
export type KernelOutputs<K extends KernelName, B> = Refs<B, KernelDefs[K]["outputs"]>;

/** One backend's implementation of kernel `K`: fills `outputs` from `inputs`. */
export type KernelImpl<K extends KernelName, B> = (
  inputs: KernelInputs<K, B>,
  outputs: KernelOutputs<K, B>,
  attrs: KernelAttrs<K>,
) => void;

/** A complete backend: every kernel of the registry, or it does not compile. */
export type KernelTable<B> = { readonly [K in KernelName]: KernelImpl<K, B> };

/** A slice of a backend (one family of kernels), for assembling a {@link KernelTable} from several files. */
export type KernelFamily<B, K extends KernelName> = { readonly [P in K]: KernelImpl<P, B> };

const NAMES: Record<KernelName, true> = {
  fill: true,
  random: true,
  cast: true,
  unary: true,
  binary: true,
  where: true,
  elementwise: true,
  strided: true,
  stridedScatter: true,
  concat: true,
  reduce: true,
  argReduce: true,
  softmax: true,
  maskedSoftmax: true,
  maskedSoftmaxBackward: true,
  rotary: true,
  layerNorm: true,
  layerNormBackward: true,
  crossEntropy: true,
  crossEntropyBackward: true,
  cumsum: true,
  matmul: true,
  groupedMatmul: true,
  groupedOuter: true,
  gather: true,
  scatterAdd: true,
  indexSelect: true,
  indexAdd: true,
  topk: true,
  sort: true,
};

/** Every kernel name at run time (the `Record` above fails to compile if one is missing or unknown). */
export const KERNEL_NAMES: readonly KernelName[] = Object.keys(NAMES) as KernelName[];
