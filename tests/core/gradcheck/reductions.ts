/**
 * Gradcheck rows of the reductions (every axis combination, keepdim, ties, sumTo, logsumexp's −∞ and empty cases)
 * and of the softmax family (several axes, −∞ entries).
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  gradients,
  logSoftmax,
  logsumexp,
  matmul,
  max,
  mean,
  min,
  softmax,
  sum,
  sumTo,
  type Tensor,
  where,
  zeros,
} from "../../../mod.ts";
import type { OpName } from "../../../core/ops/catalog.ts";
import { distinctF64, f64Tensor, gradcheck, randnF64 } from "../../helpers/gradcheck.ts";
import { assertClose, data, type GradcheckFamily, type GradcheckRow, type Shape, someShapes, vjp } from "./row.ts";

// ---- reductions ------------------------------------------------------------------------------------------

const AXES: (number | number[] | undefined)[] = [undefined, 0, 1, -1, [0, 2], [-1, 0], [0, 1, 2], []];

/** [op, step name, the reduction]. */
const REDUCERS: [OpName, string, (x: Tensor, axis: number | number[] | undefined, keepdim: boolean) => Tensor][] = [
  ["sum", "sum", (x, a, k) => sum(x, a, k)],
  ["mean", "mean", (x, a, k) => mean(x, a, k)],
  ["max", "max (distinct values)", (x, a, k) => max(x, a, k)],
  ["min", "min (distinct values)", (x, a, k) => min(x, a, k)],
  ["logsumexp", "logsumexp", (x, a, k) => logsumexp(x, a, k)],
];

/** Each reduction over every axis combination, with and without keepdim, plus ties and edge cases. */
export const REDUCTION_ROWS: GradcheckFamily = {
  test: "gradcheck: reductions",
  rows: [
    ...REDUCERS.map(([op, name, reduce], k): GradcheckRow => ({
      ops: [op],
      name,
      run: () => {
        const x = distinctF64([2, 3, 4], 600 + k, 0.15);
        for (const axis of AXES) {
          for (const keepdim of [false, true]) {
            gradcheck((v) => reduce(v, axis, keepdim), [x], {
              name: `${name} axis ${JSON.stringify(axis)} keepdim ${keepdim}`,
            });
          }
        }
        for (const [j, shape] of someShapes(620 + 10 * k).entries()) {
          const y = distinctF64(shape, 640 + 10 * k + j, 0.15);
          gradcheck((v) => reduce(v, undefined, false), [y], { name: `${name} all ${JSON.stringify(shape)}` });
          if (shape.length > 0) {
            gradcheck((v) => reduce(v, -1, true), [y], { name: `${name} -1 ${JSON.stringify(shape)}` });
          }
        }
      },
    })),
    {
      ops: ["sum", "mean", "max", "min", "logsumexp"],
      name: "Tensor methods sum/mean/max/min/logsumexp",
      run: () => {
        const x = distinctF64([3, 4], 690);
        gradcheck((v) => v.sum(1), [x], { name: "x.sum(1)" });
        gradcheck((v) => v.mean(0, true), [x], { name: "x.mean(0, true)" });
        gradcheck((v) => v.max(-1), [x], { name: "x.max(-1)" });
        gradcheck((v) => v.min(), [x], { name: "x.min()" });
        gradcheck((v) => v.logsumexp([0, 1]), [x], { name: "x.logsumexp([0, 1])" });
      },
    },
    {
      ops: ["max", "min"],
      name: "max / min ties share the gradient evenly (torch.amax)",
      run: () => {
        const x = f64Tensor([[1, 3, 3], [2, 2, 0]]);
        assert.deepEqual([...vjp((v) => max(v, 1), [x])[0]], [0, 0.5, 0.5, 0.5, 0.5, 0]);
        assert.deepEqual([...vjp((v) => max(v), [x])[0]], [0, 0.5, 0.5, 0, 0, 0]);
        assert.deepEqual([...vjp((v) => min(v, 0), [x])[0]], [1, 0, 0, 0, 1, 1]);
        assert.deepEqual([...vjp((v) => min(v, 1), [f64Tensor([[1, 3, 1], [2, 2, 5]])])[0]], [
          0.5,
          0,
          0.5,
          0.5,
          0.5,
          0,
        ]);
      },
    },
    {
      ops: ["sumTo"],
      name: "sumTo (the adjoint of broadcasting)",
      run: () => {
        const x = randnF64([2, 3, 4], 695);
        for (const target of [[3, 4], [3, 1], [1, 4], [2, 1, 4], [1], []]) {
          gradcheck((v) => sumTo(v, target), [x], { name: `sumTo ${JSON.stringify(target)}` });
        }
      },
    },
    {
      ops: ["logsumexp"],
      name: "logsumexp with −∞ entries: gradient 0 there, finite elsewhere",
      run: () => {
        const x = f64Tensor([[0.3, -Infinity, 1.2, -Infinity], [0.1, 0.5, -0.7, 2], [-Infinity, -Infinity, 0.4, -1]]);
        const inf = [...x.dataSync()].map((v) => v === -Infinity);
        for (const axis of [1, -1, undefined, [0, 1], 0]) {
          for (const keepdim of [false, true]) {
            const r = gradcheck((v) => logsumexp(v, axis, keepdim), [x], {
              name: `logsumexp −∞ axis ${JSON.stringify(axis)}`,
            });
            r.analytic[0].forEach((g, i) => {
              assert.ok(Number.isFinite(g), `gradient ${i} is ${g}`);
              if (inf[i]) assert.ok(g === 0, `gradient at −∞ entry ${i} is ${g}`);
            });
          }
        }
      },
    },
    {
      ops: ["logsumexp", "sum", "softmax", "matmul"],
      name: "logsumexp over an empty axis is −∞ (PyTorch); gradients of empty inputs are empty",
      run: () => {
        const e = zeros([2, 0], { dtype: "f64" });
        assert.deepEqual([...logsumexp(e, 1).dataSync()], [-Infinity, -Infinity]);
        const leaf = e.detach().requiresGrad_(), w = randnF64([3], 1);
        const fns: [string, (v: Tensor) => Tensor][] = [
          ["logsumexp", (v) => logsumexp(v, 1).sum()],
          ["sum", (v) => sum(v, 1).mul(f64Tensor([1.5, -2])).sum()],
          ["softmax", (v) => softmax(v, 1).sum()],
          ["matmul K = 0", (v) => matmul(v, zeros([0, 3], { dtype: "f64" })).mul(w).sum()],
        ];
        for (const [name, fn] of fns) {
          const [g] = gradients(fn(leaf), [leaf]);
          assert.deepEqual(g.shape, [2, 0], name);
        }
      },
    },
    {
      ops: ["logsumexp", "softmax"],
      name: "logsumexp of large values is stable and its gradient is the softmax",
      run: () => {
        const x = f64Tensor([[1000, 1000.5, 999], [-1000, -1001, -999.5]]);
        const g = vjp((v) => logsumexp(v, 1), [x])[0];
        assertClose(g, data(softmax(x, 1)), 1e-12, "d logsumexp");
      },
    },
  ],
};

// ---- softmax family ----------------------------------------------------------------------------------------

/** [shape, axis]. */
const SOFTMAX_CASES: [Shape, number][] = [
  [[5], 0],
  [[5], -1],
  [[3, 4], -1],
  [[3, 4], 0],
  [[2, 3, 4], 0],
  [[2, 3, 4], 1],
  [[2, 3, 4], -1],
  [[1, 1], 0],
];

/** Logits with −∞ (masked) entries in every row and column, and where they are. */
function maskedLogits(): { masked: Tensor; isInf: boolean[]; finite: Tensor } {
  const masked = f64Tensor([[0.3, -Infinity, 1.2, -0.4], [-Infinity, 0.5, -Infinity, 2], [0.7, -1.1, 0.2, -Infinity]]);
  const isInf = [...masked.dataSync()].map((v) => v === -Infinity);
  const finite = masked.ne(-Infinity);
  return { masked, isInf, finite };
}

/** softmax and logSoftmax along several axes, and with masked (−∞) logits. */
export const SOFTMAX_ROWS: GradcheckFamily = {
  test: "gradcheck: softmax and logSoftmax",
  rows: [
    {
      ops: ["softmax"],
      name: "softmax along different axes",
      run: () => {
        for (const [j, [shape, axis]] of SOFTMAX_CASES.entries()) {
          gradcheck((v) => softmax(v, axis), [randnF64(shape, 700 + j, 2)], { name: `softmax ${shape} axis ${axis}` });
          gradcheck((v) => v.softmax(axis), [randnF64(shape, 720 + j, 2)], { name: `x.softmax ${shape} axis ${axis}` });
        }
      },
    },
    {
      ops: ["logSoftmax"],
      name: "logSoftmax along different axes",
      run: () => {
        for (const [j, [shape, axis]] of SOFTMAX_CASES.entries()) {
          gradcheck((v) => logSoftmax(v, axis), [randnF64(shape, 740 + j, 2)], {
            name: `logSoftmax ${shape} axis ${axis}`,
          });
          gradcheck((v) => v.logSoftmax(axis), [randnF64(shape, 760 + j, 2)], {
            name: `x.logSoftmax ${shape} axis ${axis}`,
          });
        }
      },
    },
    {
      ops: ["softmax"],
      name: "softmax with −∞ entries: gradient 0 there, finite elsewhere",
      run: () => {
        const { masked, isInf } = maskedLogits();
        for (const axis of [-1, 0]) {
          const r = gradcheck((v) => softmax(v, axis), [masked], { name: `softmax −∞ axis ${axis}` });
          r.analytic[0].forEach((g, i) => {
            assert.ok(Number.isFinite(g), `gradient ${i} is ${g}`);
            if (isInf[i]) assert.ok(g === 0, `gradient at −∞ entry ${i} is ${g}`);
          });
        }
      },
    },
    {
      ops: ["logSoftmax"],
      name: "logSoftmax with −∞ entries (masked outputs unused): gradient 0 there, finite elsewhere",
      run: () => {
        const { masked, isInf, finite } = maskedLogits();
        // log p = −∞ at masked entries, so a loss can only use the finite outputs (as cross-entropy does). The
        // gradient reaching a −∞ input is then exactly 0. (With a non-zero upstream gradient at a −∞ output,
        // PyTorch's and moegrad's VJP pass it through unchanged: ∂(x_i − lse)/∂x_i = 1.)
        for (const axis of [-1, 0]) {
          const r = gradcheck((v) => where(finite, logSoftmax(v, axis), 0), [masked], {
            name: `logSoftmax −∞ axis ${axis}`,
          });
          r.analytic[0].forEach((g, i) => {
            assert.ok(Number.isFinite(g), `gradient ${i} is ${g}`);
            if (isInf[i]) assert.ok(g === 0, `gradient at −∞ entry ${i} is ${g}`);
          });
        }
      },
    },
  ],
};
