/**
 * Gradcheck rows of matmul (every batching and 1-D promotion case) and of the layout ops (reshape to split).
 *
 * @module
 */
import {
  concat,
  expand,
  flatten,
  matmul,
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
} from "../../../mod.ts";
import { gradcheck, randnF64 } from "../../helpers/gradcheck.ts";
import type { GradcheckFamily, GradcheckRow, Shape } from "./row.ts";

// ---- matmul ----------------------------------------------------------------------------------------------

/** [case, shape of a, shape of b]. */
const MATMUL_CASES: [string, Shape, Shape][] = [
  ["2-D", [3, 4], [4, 2]],
  ["2-D, 1×1", [1, 1], [1, 1]],
  ["batched", [2, 3, 4], [2, 4, 5]],
  ["broadcast batch dims", [2, 1, 3, 4], [3, 4, 2]],
  ["broadcast batch dims, both sides", [2, 1, 3, 2], [1, 3, 2, 3]],
  ["2-D @ batched", [3, 4], [2, 4, 5]],
  ["batch-1 @ batched", [1, 3, 4], [2, 4, 2]],
  ["batched @ batch-1", [2, 3, 4], [1, 4, 2]],
  ["x[B,T,d] @ W[d,n]", [2, 3, 4], [4, 5]],
  ["4-D", [2, 2, 3, 4], [2, 2, 4, 3]],
  ["1-D @ 2-D", [4], [4, 3]],
  ["2-D @ 1-D", [3, 4], [4]],
  ["1-D @ 1-D (dot)", [4], [4]],
  ["1-D @ batched", [4], [2, 4, 3]],
  ["batched @ 1-D", [2, 3, 4], [4]],
];

/** matmul on every batching case, through the function and the method, and with one tensor on both sides. */
export const MATMUL_ROWS: GradcheckFamily = {
  test: "gradcheck: matmul",
  rows: [
    ...MATMUL_CASES.map(([name, sa, sb], j): GradcheckRow => ({
      ops: ["matmul"],
      name: `${name}: ${JSON.stringify(sa)} @ ${JSON.stringify(sb)}`,
      run: () => {
        const a = randnF64(sa, 800 + j), b = randnF64(sb, 830 + j);
        gradcheck(matmul, [a, b], { name: `matmul ${name}` });
        gradcheck((x, y) => x.matmul(y), [a, b], { name: `Tensor.matmul ${name}`, wrt: [1] });
      },
    })),
    {
      ops: ["matmul", "transpose"],
      name: "same tensor on both sides (x @ xᵀ)",
      run: () => {
        gradcheck((x) => matmul(x, transpose(x)), [randnF64([3, 4], 870)], { name: "x @ xᵀ" });
      },
    },
  ],
};

// ---- layout ----------------------------------------------------------------------------------------------

/** The [2, 3, 4] input most layout rows share. */
function layoutInput() {
  return randnF64([2, 3, 4], 900);
}

/** Every layout op, with negative axes, −1 sizes, steps, clipping and empty results. */
export const LAYOUT_ROWS: GradcheckFamily = {
  test: "gradcheck: layout ops",
  rows: [
    {
      ops: ["reshape"],
      name: "reshape",
      run: () => {
        const x = layoutInput();
        for (const target of [[4, 6], [-1, 2], [24], [2, -1, 3], [1, 24, 1]]) {
          gradcheck((v) => reshape(v, target), [x], { name: `reshape ${JSON.stringify(target)}` });
        }
        gradcheck((v) => v.reshape(6, 4), [x], { name: "x.reshape(6, 4)" });
        gradcheck((v) => reshape(v, []), [randnF64([1, 1], 901)], { name: "reshape to scalar" });
        gradcheck((v) => reshape(v, [1, 1, 1]), [randnF64([], 902)], { name: "reshape from scalar" });
      },
    },
    {
      ops: ["flatten"],
      name: "flatten",
      run: () => {
        const x = layoutInput();
        for (const [s, e] of [[0, -1], [1, 2], [0, 1], [-2, -1], [1, 1]]) {
          gradcheck((v) => flatten(v, s, e), [x], { name: `flatten(${s}, ${e})` });
        }
        gradcheck((v) => flatten(v), [randnF64([], 903)], { name: "flatten scalar" });
      },
    },
    {
      ops: ["squeeze", "unsqueeze"],
      name: "squeeze / unsqueeze",
      run: () => {
        const x = layoutInput();
        const y = randnF64([1, 3, 1, 2], 904);
        gradcheck((v) => squeeze(v), [y], { name: "squeeze()" });
        gradcheck((v) => squeeze(v, 2), [y], { name: "squeeze(2)" });
        gradcheck((v) => squeeze(v, -4), [y], { name: "squeeze(-4)" });
        for (const axis of [0, 1, 3, -1, -2]) gradcheck((v) => unsqueeze(v, axis), [x], { name: `unsqueeze(${axis})` });
        gradcheck((v) => v.unsqueeze(0).squeeze(0), [x], { name: "unsqueeze∘squeeze" });
      },
    },
    {
      ops: ["permute", "transpose"],
      name: "permute / transpose",
      run: () => {
        const x = layoutInput();
        for (const dims of [[2, 0, 1], [1, 2, 0], [0, 2, 1], [-1, 0, 1], [0, 1, 2]]) {
          gradcheck((v) => permute(v, dims), [x], { name: `permute ${JSON.stringify(dims)}` });
        }
        gradcheck((v) => permute(v, [1, 0]), [randnF64([3, 5], 905)], { name: "permute 2-D" });
        gradcheck((v) => transpose(v), [x], { name: "transpose()" });
        gradcheck((v) => transpose(v, 0, 2), [x], { name: "transpose(0, 2)" });
        gradcheck((v) => v.transpose(0, -2), [x], { name: "x.transpose(0, -2)" });
      },
    },
    {
      ops: ["expand"],
      name: "expand",
      run: () => {
        const x = layoutInput();
        gradcheck((v) => expand(v, [2, 3, 4]), [randnF64([3, 1], 906)], { name: "expand [3,1]→[2,3,4]" });
        gradcheck((v) => expand(v, [5]), [randnF64([1], 907)], { name: "expand [1]→[5]" });
        gradcheck((v) => expand(v, [2, 2]), [randnF64([], 908)], { name: "expand []→[2,2]" });
        gradcheck((v) => expand(v, [-1, 3, -1]), [randnF64([2, 1, 4], 909)], { name: "expand with −1" });
        gradcheck((v) => expand(v, [2, -1]), [randnF64([3], 910)], { name: "expand new leading axis, −1" });
        gradcheck((v) => v.expand(2, 3, 4), [x], { name: "expand to the same shape" });
      },
    },
    {
      ops: ["slice"],
      name: "slice (steps > 1, negative indices, clipping, empty)",
      run: () => {
        const x = layoutInput();
        const y = randnF64([5, 6], 911);
        const specs: [number, number, number | undefined, number][] = [
          [1, 1, 5, 2],
          [0, -3, -1, 1],
          [-1, -5, undefined, 3],
          [0, 0, 100, 2],
          [1, -100, 3, 1],
          [1, 4, 2, 1],
          [0, 4, undefined, 1],
          [-2, 0, undefined, 4],
        ];
        for (const [axis, start, end, step] of specs) {
          gradcheck((v) => slice(v, axis, start, end, step), [y], {
            name: `slice(${axis}, ${start}, ${end}, ${step})`,
          });
        }
        gradcheck((v) => v.slice(1, 0, 3, 2), [x], { name: "x.slice on 3-D" });
      },
    },
    {
      ops: ["narrow"],
      name: "narrow",
      run: () => {
        const x = layoutInput();
        gradcheck((v) => narrow(v, 0, 1, 1), [x], { name: "narrow(0, 1, 1)" });
        gradcheck((v) => narrow(v, -1, 1, 2), [x], { name: "narrow(-1, 1, 2)" });
        gradcheck((v) => v.narrow(1, 0, 3), [x], { name: "x.narrow(1, 0, 3)" });
      },
    },
    {
      ops: ["sliceScatter"],
      name: "sliceScatter (base and src)",
      run: () => {
        const base = randnF64([5, 6], 912);
        const specs: [number, number, number | undefined, number][] = [
          [1, 1, 5, 2],
          [0, -3, -1, 1],
          [-1, -5, undefined, 3],
          [0, 0, undefined, 1],
        ];
        for (const [j, [axis, start, end, step]] of specs.entries()) {
          const srcShape = slice(base, axis, start, end, step).shape;
          const src = randnF64(srcShape, 913 + j);
          gradcheck((b, s) => sliceScatter(b, s, axis, start, end, step), [base, src], {
            name: `sliceScatter(${axis}, ${start}, ${end}, ${step})`,
          });
        }
      },
    },
    {
      ops: ["concat"],
      name: "concat",
      run: () => {
        const a = randnF64([2, 1, 3], 920), b = randnF64([2, 4, 3], 921), c = randnF64([2, 2, 3], 922);
        gradcheck((p, q, r) => concat([p, q, r], 1), [a, b, c], { name: "concat axis 1" });
        gradcheck((p, q) => concat([p, q], 0), [a, randnF64([3, 1, 3], 923)], { name: "concat axis 0" });
        gradcheck((p, q) => concat([p, q], -1), [a, randnF64([2, 1, 2], 924)], { name: "concat axis −1" });
        gradcheck((p) => concat([p, p.mul(2), p], 1), [a], { name: "concat of one tensor three times" });
        gradcheck((p, q) => concat([p, q], 1), [a, b], { name: "concat, only one input watched", wrt: [0] });
      },
    },
    {
      ops: ["stack"],
      name: "stack",
      run: () => {
        const a = randnF64([2, 3], 925), b = randnF64([2, 3], 926), c = randnF64([2, 3], 927);
        for (const axis of [0, 1, 2, -1]) {
          gradcheck((p, q, r) => stack([p, q, r], axis), [a, b, c], { name: `stack axis ${axis}` });
        }
        gradcheck((p, q) => stack([p, q]), [randnF64([], 928), randnF64([], 929)], { name: "stack scalars" });
      },
    },
    {
      ops: ["split"],
      name: "split",
      run: () => {
        const y = randnF64([5, 4], 930);
        for (const [sizes, axis] of [[[2, 3], 0], [2, 1], [3, 0], [[1, 0, 3], 1]] as [number | number[], number][]) {
          const n = split(y, sizes, axis).length;
          for (let k = 0; k < n; k++) {
            gradcheck((v) => split(v, sizes, axis)[k], [y], {
              name: `split ${JSON.stringify(sizes)} axis ${axis} #${k}`,
            });
          }
          gradcheck((v) => concat(split(v, sizes, axis).map((p, i) => p.mul(i + 1)), axis), [y], {
            name: `split ${JSON.stringify(sizes)} recombined`,
          });
        }
        gradcheck((v) => v.split(2, 1)[1], [y], { name: "x.split" });
      },
    },
  ],
};
