/**
 * The op catalog: every function that an op module (`core/ops/*.ts`) exports, with where its gradient comes from
 * and — only when it lacks one — why it has no `Tensor` method or no export from `core/mod.ts`.
 *
 * {@link OPS} is typed by a mapped type over the op modules' exports, so the type checker names each place a new
 * op forgot (README, "Adding an op"):
 * - no entry: `Property 'foo' is missing` at `OPS`; an entry for a function that no longer exists is an error too;
 * - no `Tensor` method named like the op: the entry must give `noTensorMethod`, the reason it is a free function;
 * - no export from `core/mod.ts`: the entry must give `notInCoreMod`, the reason it stays internal;
 * - a tape node recorded under an op's name (`record`/`record1` in `core/autograd.ts`) when the entry does not say
 *   `grad: "vjp"`.
 *
 * A reason where none is needed (a `noTensorMethod` for an op that has the method) does not compile either, so the
 * exemptions cannot go stale. `tests/core/op_coverage_test.ts` checks the same at run time, finds op modules that
 * are missing from {@link OpModules}, and adds the last place: a row in the gradcheck table for every op whose
 * gradient is not `none`.
 *
 * @module
 */
import type { Tensor } from "../tensor.ts";
import type * as core from "../mod.ts";
import type * as binary from "./binary.ts";
import type * as cast from "./cast.ts";
import type * as creation from "./creation.ts";
import type * as fused from "./fused.ts";
import type * as grouped from "./grouped.ts";
import type * as index from "./index.ts";
import type * as layout from "./layout.ts";
import type * as linalg from "./linalg.ts";
import type * as loss from "./loss.ts";
import type * as maskedSoftmax from "./masked_softmax.ts";
import type * as norm from "./norm.ts";
import type * as random from "./random.ts";
import type * as reduce from "./reduce.ts";
import type * as rotary from "./rotary.ts";
import type * as scan from "./scan.ts";
import type * as softmax from "./softmax.ts";
import type * as sort from "./sort.ts";
import type * as unary from "./unary.ts";

/** The exports of every op module (`operand.ts` holds argument checks, not ops, and this file holds data). */
export type OpModules =
  & typeof binary
  & typeof cast
  & typeof creation
  & typeof fused
  & typeof grouped
  & typeof index
  & typeof layout
  & typeof linalg
  & typeof loss
  & typeof maskedSoftmax
  & typeof norm
  & typeof random
  & typeof reduce
  & typeof rotary
  & typeof scan
  & typeof softmax
  & typeof sort
  & typeof unary;

/** The name of an op: a function exported by an op module. */
export type OpName = {
  [K in keyof OpModules]: OpModules[K] extends (...args: never[]) => unknown ? K : never;
}[keyof OpModules];

/**
 * Where an op's gradient comes from: `"vjp"` — its VJP is written next to its forward pass, in its own function,
 * and recorded under its name; `"composite"` — it is written with differentiable ops and differentiates through
 * them; `{ none }` — it has no gradient, for the reason given.
 */
export type GradRule = "vjp" | "composite" | { readonly none: string };

/** What the catalog says about op `K`. The conditional fields make the type checker compare them with the code. */
export type OpSpec<K extends OpName> =
  & { readonly grad: GradRule }
  & (K extends keyof Tensor ? { readonly noTensorMethod?: never } : { readonly noTensorMethod: string })
  & (K extends keyof typeof core ? { readonly notInCoreMod?: never } : { readonly notInCoreMod: string });

/** One entry per op, no more and no less. */
export type OpCatalog = { readonly [K in OpName]: OpSpec<K> };

const CREATES = "a creation op: there is no tensor to call it on";
const CONSTANT = "it creates a tensor whose values do not depend on any input";
const BOOL_OUT = "its output is bool";
const INDEX_OUT = "its output is integer indices";

/** Every op and what it is (see the module doc). */
export const OPS = {
  // ---- creation and random --------------------------------------------------------------------------
  tensor: { grad: { none: CONSTANT }, noTensorMethod: CREATES },
  full: { grad: { none: CONSTANT }, noTensorMethod: CREATES },
  zeros: { grad: { none: CONSTANT }, noTensorMethod: CREATES },
  ones: { grad: { none: CONSTANT }, noTensorMethod: CREATES },
  fullLike: {
    grad: { none: CONSTANT },
    noTensorMethod: "a creation op named like torch.full_like, a free function there",
  },
  zerosLike: {
    grad: { none: CONSTANT },
    noTensorMethod: "a creation op named like torch.zeros_like, a free function there",
  },
  onesLike: {
    grad: { none: CONSTANT },
    noTensorMethod: "a creation op named like torch.ones_like, a free function there",
  },
  arange: { grad: { none: CONSTANT }, noTensorMethod: CREATES },
  fromArray: {
    grad: { none: CONSTANT },
    noTensorMethod: CREATES,
    notInCoreMod: "the upload step behind tensor() and Tensor.to(), for modules that already hold a typed array",
  },
  rand: { grad: { none: "random samples: a constant" }, noTensorMethod: CREATES },
  randn: { grad: { none: "random samples: a constant" }, noTensorMethod: CREATES },
  randint: { grad: { none: "random integers" }, noTensorMethod: CREATES },
  dropout: {
    grad: "composite",
    noTensorMethod: "takes training options like torch.nn.functional.dropout; nn.Dropout wraps it",
  },
  // ---- dtype ----------------------------------------------------------------------------------------
  astype: { grad: "vjp" },
  copy: {
    grad: "vjp",
    noTensorMethod: "its method is Tensor.clone (PyTorch's name); the tape records it as clone",
    notInCoreMod: "users call x.clone()",
  },
  // ---- unary ----------------------------------------------------------------------------------------
  neg: { grad: "vjp" },
  abs: { grad: "vjp" },
  sign: { grad: { none: "piecewise constant: its derivative is 0 wherever it exists" } },
  exp: { grad: "vjp" },
  log: { grad: "vjp" },
  sqrt: { grad: "vjp" },
  rsqrt: { grad: "vjp" },
  tanh: { grad: "vjp" },
  sigmoid: { grad: "vjp" },
  relu: { grad: "vjp" },
  gelu: { grad: "vjp" },
  silu: { grad: "vjp" },
  erf: { grad: "vjp" },
  sin: { grad: "vjp" },
  cos: { grad: "vjp" },
  logicalNot: { grad: { none: BOOL_OUT } },
  isnan: { grad: { none: BOOL_OUT } },
  // ---- binary ---------------------------------------------------------------------------------------
  add: { grad: "vjp" },
  sub: { grad: "vjp" },
  mul: { grad: "vjp" },
  div: { grad: "vjp" },
  pow: { grad: "vjp" },
  maximum: { grad: "vjp" },
  minimum: { grad: "vjp" },
  eq: { grad: { none: BOOL_OUT } },
  ne: { grad: { none: BOOL_OUT } },
  lt: { grad: { none: BOOL_OUT } },
  le: { grad: { none: BOOL_OUT } },
  gt: { grad: { none: BOOL_OUT } },
  ge: { grad: { none: BOOL_OUT } },
  logicalAnd: { grad: { none: BOOL_OUT } },
  logicalOr: { grad: { none: BOOL_OUT } },
  where: { grad: "vjp" },
  clamp: { grad: "composite" },
  // ---- fused elementwise chains (one kernel each; bit-identical to the chain on the CPU) ---------------
  biasAct: {
    grad: "vjp",
    noTensorMethod: "a layer's bias add and activation in one kernel, a building block of layers",
  },
  actGrad: {
    grad: "vjp",
    noTensorMethod: "an activation's backward (g ⊙ act′), a building block of VJPs rather than user API",
  },
  // ---- reductions, softmax, scans -------------------------------------------------------------------
  sum: { grad: "vjp" },
  mean: { grad: "composite" },
  max: { grad: "vjp" },
  min: { grad: "vjp" },
  argmax: { grad: { none: INDEX_OUT } },
  argmin: { grad: { none: INDEX_OUT } },
  sumTo: {
    grad: "composite",
    noTensorMethod: "the adjoint of broadcasting, a building block of VJPs rather than user API",
  },
  softmax: { grad: "vjp" },
  logSoftmax: { grad: "vjp" },
  logsumexp: { grad: "vjp" },
  cumsum: { grad: "vjp" },
  // ---- linear algebra and layout --------------------------------------------------------------------
  matmul: { grad: "vjp" },
  groupedMatmul: {
    grad: "vjp",
    noTensorMethod:
      "a product of three operands (rows, one matrix per group, the group offsets), like torch's grouped_mm",
  },
  groupedOuter: {
    grad: "vjp",
    noTensorMethod: "groupedMatmul's weight gradient over two row blocks and the group offsets, a building block",
  },
  reshape: { grad: "vjp" },
  flatten: { grad: "composite" },
  squeeze: { grad: "composite" },
  unsqueeze: { grad: "composite" },
  permute: { grad: "vjp" },
  transpose: { grad: "composite" },
  expand: { grad: "vjp" },
  slice: { grad: "vjp" },
  narrow: { grad: "composite" },
  sliceScatter: {
    grad: "vjp",
    noTensorMethod: "an update of `base` by a second tensor, kept functional like jax's .at[].set",
  },
  concat: { grad: "vjp", noTensorMethod: "takes a list of tensors" },
  stack: { grad: "composite", noTensorMethod: "takes a list of tensors" },
  split: { grad: "composite" },
  // ---- indexing and order statistics ----------------------------------------------------------------
  gather: { grad: "vjp" },
  scatterAdd: { grad: "vjp" },
  indexSelect: { grad: "vjp" },
  indexAdd: { grad: "vjp" },
  oneHot: { grad: { none: "a comparison of integer indices" }, noTensorMethod: "like torch.nn.functional.one_hot" },
  embedding: { grad: "composite", noTensorMethod: "a lookup in `weight` by ids, like torch.nn.functional.embedding" },
  topk: { grad: "vjp" },
  sort: { grad: "vjp" },
  argsort: { grad: { none: INDEX_OUT } },
  // ---- normalisation (one fused kernel per direction) ----------------------------------------------------
  layerNorm: {
    grad: "vjp",
    noTensorMethod: "takes a layer's weight and bias, like torch.nn.functional.layer_norm; nn.LayerNorm wraps it",
  },
  // ---- attention (one fused kernel per direction; bit-identical to the composed chain on the CPU) ----------
  rotaryEmbedding: {
    grad: "vjp",
    noTensorMethod: "takes cos and sin tables like transformers' apply_rotary_pos_emb; applyRope wraps it",
  },
  scaledMaskedSoftmax: {
    grad: "vjp",
    noTensorMethod: "attention's scale, mask and softmax in one op, a building block of scaledDotProductAttention",
  },
  // ---- losses ---------------------------------------------------------------------------------------
  crossEntropy: {
    grad: "vjp",
    noTensorMethod: "a loss of logits and targets, like torch.nn.functional.cross_entropy",
  },
} satisfies OpCatalog;

/** The ops whose VJP is recorded under their own name. */
export type VjpOp = { [K in keyof typeof OPS]: (typeof OPS)[K]["grad"] extends "vjp" ? K : never }[keyof typeof OPS];

/**
 * The names a tape node may carry (`Node.name`): an op whose catalog entry says `grad: "vjp"`, `clone` (the
 * node of `copy`, called as `Tensor.clone`) or `customGrad` (a user-written VJP).
 */
export type TapeName = VjpOp | "clone" | "customGrad";
