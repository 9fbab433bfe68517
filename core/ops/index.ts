/**
 * Indexing: gather / scatterAdd (torch semantics along an axis), indexSelect / indexAdd (a 1-D index over
 * one axis), oneHot and embedding. Each pair is the other's VJP. Index tensors are i32; out-of-range
 * indices raise an error naming the op, the index and the shape.
 *
 * @module
 */
import { record1 } from "../autograd.ts";
import type { DType } from "../dtype.ts";
import { run1 } from "../engine.ts";
import { fmtShape, OpError } from "../errors.ts";
import { normAxis, shapesEqual } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import { arange, zerosLike } from "./creation.ts";
import { assertDTypeIn, assertTensor } from "./operand.ts";
import { eq } from "./binary.ts";
import { reshape, unsqueeze } from "./layout.ts";

function checkIndex(op: string, index: Tensor): void {
  assertTensor(op, index, "index");
  assertDTypeIn(op, index, ["i32"], "index");
}

/**
 * torch.gather: `out[i][j][k] = x[i][index[i][j][k]][k]` for axis 1 (and likewise for any axis). `index` has
 * x's rank and its sizes may not exceed x's off the axis; the output has index's shape.
 *
 * @example
 * ```ts
 * import { gather, tensor } from "@moegrad/moegrad";
 * const p = tensor([[0.1, 0.9], [0.8, 0.2]]);
 * console.log(await gather(p, 1, tensor([[1], [0]], { dtype: "i32" })).data()); // [0.9, 0.8]
 * ```
 */
export function gather(x: Tensor, axis: number, index: Tensor): Tensor {
  assertTensor("gather", x);
  checkIndex("gather", index);
  const a = normAxis("gather", axis, x.shape);
  if (index.rank !== x.rank || index.shape.some((d, i) => i !== a && d > x.shape[i])) {
    throw new OpError(
      "gather",
      `index shape ${fmtShape(index.shape)} does not fit input shape ${fmtShape(x.shape)} along axis ${axis}`,
    );
  }
  const out = run1("gather", "gather", [x, index], { shape: index.shape, dtype: x.dtype }, { axis: a });
  return record1("gather", [x], out, (g) => [scatterAdd(zerosLike(x), a, index, g)]);
}

/**
 * Out-of-place torch.scatter_add: a copy of `x` with `src[idx]` added at `idx` with `idx[axis]` replaced by
 * `index[idx]`. `src` and `index` have the same shape. Differentiable in `x` and `src`.
 */
export function scatterAdd(x: Tensor, axis: number, index: Tensor, src: Tensor): Tensor {
  assertTensor("scatterAdd", x);
  assertTensor("scatterAdd", src, "src");
  checkIndex("scatterAdd", index);
  const a = normAxis("scatterAdd", axis, x.shape);
  if (
    !shapesEqual(index.shape, src.shape) || index.rank !== x.rank ||
    index.shape.some((d, i) => i !== a && d > x.shape[i])
  ) {
    throw new OpError(
      "scatterAdd",
      `index ${fmtShape(index.shape)} and src ${fmtShape(src.shape)} must match and fit input ${
        fmtShape(x.shape)
      } along axis ${axis}`,
    );
  }
  if (src.dtype !== x.dtype) {
    throw new OpError("scatterAdd", `src dtype ${src.dtype} differs from input dtype ${x.dtype}`);
  }
  const out = run1("scatterAdd", "scatterAdd", [x, index, src], { shape: x.shape, dtype: x.dtype }, { axis: a });
  return record1("scatterAdd", [x, src], out, (g) => [g, src.requiresGrad ? gather(g, a, index) : null]);
}

/**
 * Picks entries of `axis` by a 1-D i32 index: `out[..., i, ...] = x[..., index[i], ...]`.
 *
 * @example
 * ```ts
 * import { indexSelect, tensor } from "@moegrad/moegrad";
 * const x = tensor([[1, 2], [3, 4], [5, 6]]);
 * console.log(await indexSelect(x, 0, tensor([2, 0], { dtype: "i32" })).array()); // [[5, 6], [1, 2]]
 * ```
 */
export function indexSelect(x: Tensor, axis: number, index: Tensor): Tensor {
  assertTensor("indexSelect", x);
  checkIndex("indexSelect", index);
  if (index.rank !== 1) throw new OpError("indexSelect", `index must be 1-D, got shape ${fmtShape(index.shape)}`);
  const a = normAxis("indexSelect", axis, x.shape);
  const shape = x.shape.map((d, i) => (i === a ? index.shape[0] : d));
  const out = run1("indexSelect", "indexSelect", [x, index], { shape, dtype: x.dtype }, { axis: a });
  return record1("indexSelect", [x], out, (g) => [indexAdd(zerosLike(x), a, index, g)]);
}

/**
 * Out-of-place torch.index_add: a copy of `x` with `src[..., i, ...]` added to `x[..., index[i], ...]`.
 * Repeated indices accumulate. Differentiable in `x` and `src`.
 */
export function indexAdd(x: Tensor, axis: number, index: Tensor, src: Tensor): Tensor {
  assertTensor("indexAdd", x);
  assertTensor("indexAdd", src, "src");
  checkIndex("indexAdd", index);
  const a = normAxis("indexAdd", axis, x.shape);
  const expect = x.shape.map((d, i) => (i === a ? index.shape[0] : d));
  if (index.rank !== 1 || !shapesEqual(src.shape, expect) || src.dtype !== x.dtype) {
    throw new OpError(
      "indexAdd",
      `index ${fmtShape(index.shape)} must be 1-D and src (${src.dtype} ${fmtShape(src.shape)}) must be ${x.dtype} ${
        fmtShape(expect)
      }`,
    );
  }
  const out = run1("indexAdd", "indexAdd", [x, index, src], { shape: x.shape, dtype: x.dtype }, { axis: a });
  return record1("indexAdd", [x, src], out, (g) => [g, src.requiresGrad ? indexSelect(g, a, index) : null]);
}

/**
 * One-hot encoding of i32 indices along a new last axis of size `numClasses` (dtype i32 by default, as in
 * PyTorch; pass `"f32"` for gating masks). Indices outside [0, numClasses) give all-zero rows.
 */
export function oneHot(index: Tensor, numClasses: number, dtype: DType = "i32"): Tensor {
  checkIndex("oneHot", index);
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new OpError("oneHot", `numClasses must be a positive integer, got ${numClasses}`);
  }
  return eq(unsqueeze(index, -1), arange(0, numClasses, 1, { dtype: "i32", device: index.device })).astype(dtype);
}

/**
 * Looks up rows of `weight` ([vocab, dim]) for i32 `ids` of any shape: output shape `[...ids.shape, dim]`.
 *
 * @example
 * ```ts
 * import { embedding, randn, tensor } from "@moegrad/moegrad";
 * const table = randn([10, 4]);
 * console.log(embedding(table, tensor([[1, 2, 3]], { dtype: "i32" })).shape); // [1, 3, 4]
 * ```
 */
export function embedding(weight: Tensor, ids: Tensor): Tensor {
  assertTensor("embedding", weight, "weight");
  checkIndex("embedding", ids);
  if (weight.rank !== 2) {
    throw new OpError("embedding", `weight must be 2-D [vocab, dim], got ${fmtShape(weight.shape)}`);
  }
  let rows: Tensor;
  try {
    rows = indexSelect(weight, 0, reshape(ids, [ids.size]));
  } catch (e) {
    if (!(e instanceof OpError && e.op === "indexSelect")) throw e;
    throw new OpError(
      "embedding",
      `ids ${fmtShape(ids.shape)} hold an id outside [0, ${weight.shape[0]}) for weight ${
        fmtShape(weight.shape)
      } (${e.message})`,
    );
  }
  return reshape(rows, [...ids.shape, weight.shape[1]]);
}
