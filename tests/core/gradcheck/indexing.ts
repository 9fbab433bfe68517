/**
 * Gradcheck rows of the indexing ops (gather to embedding, with repeated indices) and of the order statistics and
 * scans (topk and sort values, cumsum both ways).
 *
 * @module
 */
import { cumsum, embedding, gather, indexAdd, indexSelect, scatterAdd, sort, topk } from "../../../mod.ts";
import { distinctF64, gradcheck, i32Tensor, randnF64, randomIndex } from "../../helpers/gradcheck.ts";
import type { GradcheckFamily } from "./row.ts";

/** gather, scatterAdd, indexSelect, indexAdd and embedding along several axes, with repeated indices. */
export const INDEXING_ROWS: GradcheckFamily = {
  test: "gradcheck: indexing ops",
  rows: [
    {
      ops: ["gather"],
      name: "gather (repeated indices, index smaller than the input)",
      run: () => {
        const x = randnF64([3, 4], 1100);
        gradcheck((v) => gather(v, 1, i32Tensor([[0, 3, 3, 1, 0], [2, 2, 2, 2, 2], [1, 0, 3, 3, 1]])), [x], {
          name: "gather axis 1",
        });
        gradcheck((v) => gather(v, 1, i32Tensor([[3], [0]])), [x], { name: "gather axis 1, index [2, 1]" });
        gradcheck((v) => gather(v, 0, randomIndex([5, 4], 3, 1101)), [x], { name: "gather axis 0" });
        gradcheck((v) => gather(v, -2, randomIndex([2, 3], 3, 1102)), [x], { name: "gather axis −2" });
        const y = randnF64([2, 3, 4], 1103);
        gradcheck((v) => gather(v, -1, randomIndex([2, 2, 6], 4, 1104)), [y], { name: "gather 3-D axis −1" });
        gradcheck((v) => v.gather(1, randomIndex([2, 5, 4], 3, 1105)), [y], { name: "x.gather 3-D axis 1" });
      },
    },
    {
      ops: ["scatterAdd"],
      name: "scatterAdd (input and src, repeated indices)",
      run: () => {
        const x = randnF64([3, 4], 1110);
        const idx1 = i32Tensor([[0, 3, 3, 1, 0], [2, 2, 2, 2, 2], [1, 0, 3, 3, 1]]);
        gradcheck((b, s) => scatterAdd(b, 1, idx1, s), [x, randnF64([3, 5], 1111)], { name: "scatterAdd axis 1" });
        const idx0 = randomIndex([2, 3], 3, 1112);
        gradcheck((b, s) => scatterAdd(b, 0, idx0, s), [x, randnF64([2, 3], 1113)], { name: "scatterAdd axis 0" });
        const y = randnF64([2, 3, 4], 1114), idx2 = randomIndex([2, 3, 6], 4, 1115);
        gradcheck((b, s) => b.scatterAdd(-1, idx2, s), [y, randnF64([2, 3, 6], 1116)], { name: "scatterAdd 3-D" });
        gradcheck((s) => scatterAdd(y, -1, idx2, s), [randnF64([2, 3, 6], 1117)], { name: "scatterAdd src only" });
      },
    },
    {
      ops: ["indexSelect"],
      name: "indexSelect (repeated indices)",
      run: () => {
        const x = randnF64([4, 3], 1120);
        gradcheck((v) => indexSelect(v, 0, i32Tensor([2, 0, 2, 3, 2])), [x], { name: "indexSelect axis 0" });
        gradcheck((v) => indexSelect(v, 1, i32Tensor([1, 1])), [x], { name: "indexSelect axis 1" });
        const y = randnF64([2, 4, 3], 1121);
        gradcheck((v) => indexSelect(v, 1, i32Tensor([3, 3, 0, 1, 3])), [y], { name: "indexSelect 3-D axis 1" });
        gradcheck((v) => v.indexSelect(-1, i32Tensor([2, 0, 2, 2])), [y], { name: "indexSelect 3-D axis −1" });
      },
    },
    {
      ops: ["indexAdd"],
      name: "indexAdd (input and src, repeated indices)",
      run: () => {
        const x = randnF64([4, 3], 1130);
        gradcheck((b, s) => indexAdd(b, 0, i32Tensor([1, 1, 3]), s), [x, randnF64([3, 3], 1131)], {
          name: "indexAdd axis 0",
        });
        const y = randnF64([2, 4, 3], 1132);
        gradcheck((b, s) => indexAdd(b, 1, i32Tensor([3, 0, 3, 3, 2]), s), [y, randnF64([2, 5, 3], 1133)], {
          name: "indexAdd 3-D axis 1",
        });
        gradcheck((b, s) => b.indexAdd(-1, i32Tensor([2, 2]), s), [y, randnF64([2, 4, 2], 1134)], {
          name: "indexAdd 3-D axis −1",
        });
      },
    },
    {
      ops: ["embedding"],
      name: "embedding (repeated ids, 1-D and 2-D ids)",
      run: () => {
        const w = randnF64([5, 3], 1140);
        gradcheck((v) => embedding(v, i32Tensor([[1, 4, 1], [0, 1, 1]])), [w], { name: "embedding 2-D ids" });
        gradcheck((v) => embedding(v, i32Tensor([3, 3, 3, 0])), [w], { name: "embedding 1-D ids" });
      },
    },
  ],
};

/** topk and sort values along several axes and orders, and cumsum in both directions. */
export const ORDER_SCAN_ROWS: GradcheckFamily = {
  test: "gradcheck: topk, sort, cumsum",
  rows: [
    {
      ops: ["topk"],
      name: "topk values",
      run: () => {
        const x = distinctF64([3, 5], 1200);
        gradcheck((v) => topk(v, 2).values, [x], { name: "topk k=2 largest" });
        gradcheck((v) => topk(v, 3, { largest: false }).values, [x], { name: "topk k=3 smallest" });
        gradcheck((v) => topk(v, 5).values, [x], { name: "topk k=n" });
        gradcheck((v) => topk(v, 2, { axis: 0 }).values, [x], { name: "topk axis 0" });
        const y = distinctF64([2, 4, 3], 1201);
        gradcheck((v) => v.topk(2, { axis: 1 }).values, [y], { name: "topk 3-D axis 1" });
        gradcheck((v) => topk(v, 1, { axis: -1, largest: false }).values, [y], { name: "topk 3-D k=1 smallest" });
        gradcheck((v) => topk(v, 3).values, [distinctF64([6], 1202)], { name: "topk 1-D" });
      },
    },
    {
      ops: ["sort"],
      name: "sort values",
      run: () => {
        const x = distinctF64([3, 5], 1210);
        gradcheck((v) => sort(v).values, [x], { name: "sort ascending" });
        gradcheck((v) => sort(v, { descending: true }).values, [x], { name: "sort descending" });
        gradcheck((v) => sort(v, { axis: 0 }).values, [x], { name: "sort axis 0" });
        const y = distinctF64([2, 4, 3], 1211);
        gradcheck((v) => v.sort({ axis: 1, descending: true }).values, [y], { name: "sort 3-D axis 1" });
        gradcheck((v) => sort(v).values, [distinctF64([7], 1212)], { name: "sort 1-D" });
      },
    },
    {
      ops: ["cumsum"],
      name: "cumsum forward and reverse",
      run: () => {
        const x = randnF64([3, 4], 1220), y = randnF64([2, 3, 4], 1221);
        for (const reverse of [false, true]) {
          gradcheck((v) => cumsum(v, 0, reverse), [x], { name: `cumsum axis 0 reverse ${reverse}` });
          gradcheck((v) => cumsum(v, -1, reverse), [x], { name: `cumsum axis −1 reverse ${reverse}` });
          gradcheck((v) => v.cumsum(1, reverse), [y], { name: `cumsum 3-D axis 1 reverse ${reverse}` });
          gradcheck((v) => cumsum(v, 0, reverse), [randnF64([5], 1222)], { name: `cumsum 1-D reverse ${reverse}` });
        }
      },
    },
  ],
};
