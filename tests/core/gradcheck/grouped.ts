/**
 * Gradcheck rows of the grouped matmul ops (groupedMatmul in both layouts of w, groupedOuter) on every grouping
 * edge case, and of their second derivatives (each op's VJP is made of the other, so gradients of gradients stay
 * grouped).
 *
 * @module
 */
import { gradients, groupedMatmul, groupedOuter, type Tensor } from "../../../mod.ts";
import { gradcheck, i32Tensor, randnF64 } from "../../helpers/gradcheck.ts";
import type { GradcheckFamily, GradcheckRow } from "./row.ts";

/** [case, rows R, K, N, offsets]. */
const CASES: [string, number, number, number, number[]][] = [
  ["three groups, one empty", 7, 3, 4, [0, 3, 3, 7]],
  ["all rows in one group", 5, 2, 3, [0, 0, 5]],
  ["G = 1", 4, 3, 2, [0, 4]],
  ["rows outside every group", 8, 3, 3, [1, 4, 6]],
  ["one-row groups", 4, 2, 5, [0, 1, 2, 4]],
];

/** groupedMatmul (w and wᵀ layouts) and groupedOuter on each grouping, then second derivatives. */
export const GROUPED_ROWS: GradcheckFamily = {
  test: "gradcheck: grouped matmul",
  rows: [
    ...CASES.map(([name, rows, k, n, offsets], j): GradcheckRow => ({
      ops: ["groupedMatmul"],
      name: `groupedMatmul, ${name}`,
      run: () => {
        const g = offsets.length - 1, off = i32Tensor(offsets);
        const x = randnF64([rows, k], 1500 + j), w = randnF64([g, k, n], 1520 + j), wt = randnF64([g, n, k], 1540 + j);
        gradcheck((a, b) => groupedMatmul(a, b, off), [x, w], { name: `groupedMatmul ${name}` });
        gradcheck((a, b) => groupedMatmul(a, b, off, { transB: true }), [x, wt], {
          name: `groupedMatmul transB ${name}`,
        });
      },
    })),
    ...CASES.map(([name, rows, k, n, offsets], j): GradcheckRow => ({
      ops: ["groupedOuter"],
      name: `groupedOuter, ${name}`,
      run: () => {
        const a = randnF64([rows, k], 1560 + j), b = randnF64([rows, n], 1580 + j);
        gradcheck((u, v) => groupedOuter(u, v, i32Tensor(offsets)), [a, b], { name: `groupedOuter ${name}` });
      },
    })),
    {
      ops: ["groupedMatmul", "groupedOuter"],
      name: "second derivatives: the gradients of x and w are differentiable (createGraph)",
      run: () => {
        const off = i32Tensor([0, 2, 2, 5]);
        const probe = randnF64([5, 4], 1600);
        // f(x, w) = Σ probe ⊙ ∂/∂x Σ tanh(groupedMatmul(x, w)) + Σ (∂/∂w …)²: both VJPs inside, differentiated.
        // The numeric pass calls f on constants: make them leaves there, so the inner gradients exist.
        const leaf = (t: Tensor) => t.requiresGrad ? t : t.detach().requiresGrad_();
        const f = (x0: Tensor, w0: Tensor) => {
          const [x, w] = [leaf(x0), leaf(w0)];
          const y = groupedMatmul(x, w, off).tanh().sum();
          const [gx, gw] = gradients(y, [x, w], undefined, { createGraph: true });
          return gx.mul(probe).sum().add(gw.mul(gw).sum());
        };
        gradcheck(f, [randnF64([5, 4], 1601), randnF64([3, 4, 2], 1602)], { name: "groupedMatmul second order" });
      },
    },
  ],
};
