/**
 * Grouped matmul: consecutive blocks of rows, each multiplied by its own matrix, the blocks given by an i32
 * offsets tensor. The offsets are a tensor, not numbers, so they can be computed on the device (a cumsum of
 * per-group counts) and the op runs without reading them on the host: this is how the MoE layer runs every
 * expert on exactly the rows routed to it (`moe/dispatch.ts`).
 *
 * Two ops, each the other's building block in the VJPs (so gradients of any order stay grouped):
 * - {@link groupedMatmul}`(x, w, offsets)`: row r of group g is `x[r]·w[g]`;
 * - {@link groupedOuter}`(a, b, offsets)`: per group, `Σ_r a[r]ᵀ·b[r]` — the weight gradient of the first.
 *
 * @module
 */
import { record1 } from "../autograd.ts";
import { run1 } from "../engine.ts";
import { fmtShape, OpError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import { assertDTypeIn, assertTensor } from "./operand.ts";

/** Options of {@link groupedMatmul}. */
export interface GroupedMatmulOptions {
  /** Read `w` as [G, N, K] and multiply by each `w[g]ᵀ` (default false). */
  transB?: boolean;
}

/** Checks the operands shared by both ops: two float 2-D tensors of one dtype and a 1-D i32 offsets tensor. */
function checkOperands(op: string, a: Tensor, b: Tensor, offsets: Tensor, bName: string, bRank: number): void {
  assertTensor(op, a);
  assertTensor(op, b, bName);
  assertTensor(op, offsets, "offsets");
  assertDTypeIn(op, a, ["f32", "f64"]);
  assertDTypeIn(op, offsets, ["i32"], "offsets");
  if (a.dtype !== b.dtype) {
    throw new OpError(op, `dtypes differ: ${a.dtype} ${fmtShape(a.shape)} and ${b.dtype} ${fmtShape(b.shape)}`);
  }
  if (a.rank !== 2 || b.rank !== bRank || offsets.rank !== 1) {
    throw new OpError(
      op,
      `expected input [R, K], ${bName} of rank ${bRank} and offsets [G + 1], got ${fmtShape(a.shape)}, ${
        fmtShape(b.shape)
      } and ${fmtShape(offsets.shape)}`,
    );
  }
}

/**
 * Grouped matmul: `x` [R, K], `w` [G, K, N] ([G, N, K] with `transB`), `offsets` i32 [G + 1] (nondecreasing,
 * within [0, R]) → [R, N], where row r with `offsets[g] ≤ r < offsets[g+1]` is `x[r]·w[g]` (`x[r]·w[g]ᵀ`) and
 * rows outside every group are zero. The work is that of the rows only: empty groups cost nothing. The
 * offsets are not read on the host (on the CPU the kernel reads them; out-of-order offsets raise an error
 * there, and are clamped on WebGPU). Differentiable in `x` and `w`.
 *
 * @example
 * ```ts
 * import { groupedMatmul, ones, tensor } from "@moegrad/moegrad";
 * const x = ones([5, 2]);
 * const w = tensor([[[1], [1]], [[2], [2]], [[3], [3]]]); // [3 groups, 2, 1]
 * const offsets = tensor([0, 2, 2, 4], { dtype: "i32" }); // rows 0–1 → w[0], none → w[1], rows 2–3 → w[2]
 * console.log(await groupedMatmul(x, w, offsets).data()); // [2, 2, 6, 6, 0]: row 4 is in no group
 * ```
 */
export function groupedMatmul(x: Tensor, w: Tensor, offsets: Tensor, options: GroupedMatmulOptions = {}): Tensor {
  checkOperands("groupedMatmul", x, w, offsets, "weight", 3);
  const transB = options.transB ?? false;
  const [rows, k] = x.shape;
  const [groups, d1, d2] = w.shape;
  const [kw, n] = transB ? [d2, d1] : [d1, d2];
  if (kw !== k || offsets.shape[0] !== groups + 1) {
    throw new OpError(
      "groupedMatmul",
      `x ${fmtShape(x.shape)}, weight ${fmtShape(w.shape)}${transB ? " (transB)" : ""} and offsets ${
        fmtShape(offsets.shape)
      } do not fit: need x [R, K], weight [G, ${transB ? "N, K" : "K, N"}] and offsets [G + 1]`,
    );
  }
  const out = run1("groupedMatmul", "groupedMatmul", [x, w, offsets], { shape: [rows, n], dtype: x.dtype }, {
    transB,
  });
  return record1("groupedMatmul", [x, w], out, (g) => [
    x.requiresGrad ? groupedMatmul(g, w, offsets, { transB: !transB }) : null,
    w.requiresGrad ? (transB ? groupedOuter(g, x, offsets) : groupedOuter(x, g, offsets)) : null,
  ]);
}

/**
 * Per-group sums of outer products: `a` [R, M], `b` [R, N], `offsets` i32 [G + 1] as in {@link groupedMatmul}
 * → [G, M, N], where `out[g] = Σ_{offsets[g] ≤ r < offsets[g+1]} a[r]ᵀ·b[r]` (A_gᵀ·B_g for the group's row
 * blocks; zero for an empty group). It is the weight gradient of {@link groupedMatmul}. Differentiable in `a`
 * and `b`.
 *
 * @example
 * ```ts
 * import { groupedOuter, tensor } from "@moegrad/moegrad";
 * const a = tensor([[1], [2], [3]]), b = tensor([[1, 10], [1, 10], [1, 10]]);
 * const out = groupedOuter(a, b, tensor([0, 1, 3], { dtype: "i32" })); // groups: row 0, rows 1–2
 * console.log(out.shape, await out.data()); // [2, 1, 2] [1, 10, 5, 50]
 * ```
 */
export function groupedOuter(a: Tensor, b: Tensor, offsets: Tensor): Tensor {
  checkOperands("groupedOuter", a, b, offsets, "other", 2);
  if (b.shape[0] !== a.shape[0] || offsets.shape[0] < 1) {
    throw new OpError(
      "groupedOuter",
      `a ${fmtShape(a.shape)} and b ${fmtShape(b.shape)} must have the same rows, offsets ${
        fmtShape(offsets.shape)
      } at least one entry`,
    );
  }
  const shape = [offsets.shape[0] - 1, a.shape[1], b.shape[1]];
  const out = run1("groupedOuter", "groupedOuter", [a, b, offsets], { shape, dtype: a.dtype }, {});
  return record1("groupedOuter", [a, b], out, (g) => [
    a.requiresGrad ? groupedMatmul(b, g, offsets, { transB: true }) : null,
    b.requiresGrad ? groupedMatmul(a, g, offsets) : null,
  ]);
}
