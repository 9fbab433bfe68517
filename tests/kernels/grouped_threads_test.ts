/**
 * Thread-count independence of the products that run as one job of the Worker pool: the grouped matmul (all
 * groups in one job), its weight gradient `groupedOuter`, and the batched matmul (all batch items in one
 * job) give the same bits on 1, 2 and 3 threads, for small products (one unit each), for large ones (split
 * into many units, past the memory budget so slots are recycled), with empty groups; and they match the
 * plain loops. No permissions needed.
 */
import assert from "node:assert/strict";
import type { TensorRef } from "../../internals.ts";
import { setCpuOptions } from "../../kernels/cpu/config.ts";
import type { CpuBuffer } from "../../kernels/cpu/buffer.ts";
import {
  groupedMatmulKernels,
  groupedMatmulReference,
  groupedOuterReference,
} from "../../kernels/cpu/grouped_matmul.ts";
import { matmulKernels, matmulThreads } from "../../kernels/cpu/matmul.ts";
import { sharedWasmMatmul } from "../../kernels/cpu/wasm/matmul.ts";
import { sharedMemorySupported } from "../../kernels/cpu/wasm/emit.ts";
import { threadsSupported } from "../../kernels/cpu/threads/waiting.ts";
import { filled } from "../helpers/host_rng.ts";

const THREADS = [1, 2, 3];
const ref = (buf: CpuBuffer, shape: number[], dtype: "f32" | "i32" = "f32"): TensorRef<CpuBuffer> => ({
  buf,
  shape,
  dtype,
});

/** Runs `fn` with `threads` matmul threads (the WebAssembly kernel on). */
function withThreads<T>(threads: number, fn: () => T): T {
  const before = setCpuOptions({ threads, wasm: true, matmul: "wasm" }); // the built-in kernel, even with a BLAS
  try {
    return fn();
  } finally {
    setCpuOptions(before);
  }
}

/** Largest |got − want| / (1 + |want|). */
function worstError(got: Float32Array, want: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i])));
  return worst;
}

/** [name, K, N, offsets]: group sizes from the benchmark's routing, small ones, and empty groups. */
const GROUPINGS: [string, number, number, number[]][] = [
  ["small: every group one unit", 24, 40, [0, 5, 5, 12, 13, 20]],
  ["one row per group and empty groups", 64, 72, [0, 1, 2, 2, 3, 3, 4]],
  ["expert-sized, recycled slots (K 256, N 1024)", 256, 1024, [0, 48, 48, 70, 112, 233, 494, 506, 512]],
  ["down-projection shape (K 1024, N 256), one group holds most rows", 1024, 256, [0, 3, 260, 261, 300]],
  ["every group empty", 32, 48, [0, 0, 0, 0]],
];

for (const [name, k, n, offsets] of GROUPINGS) {
  const rows = offsets[offsets.length - 1], groups = offsets.length - 1, off = new Int32Array(offsets);
  const x = filled(rows * k, 11), w = filled(groups * k * n, 12), dy = filled(rows * n, 13);

  Deno.test(`groupedMatmul threads: ${name}: same bits on ${THREADS.join(", ")} threads, both layouts`, () => {
    for (const transB of [false, true]) {
      const run = (threads: number) =>
        withThreads(threads, () => {
          const out = new Float32Array(rows * n).fill(NaN);
          const wShape = transB ? [groups, n, k] : [groups, k, n];
          groupedMatmulKernels.groupedMatmul([ref(x, [rows, k]), ref(w, wShape), ref(off, [groups + 1], "i32")], [
            ref(out, [rows, n]),
          ], { transB });
          return out;
        });
      const one = run(1);
      const want = new Float64Array(rows * n);
      groupedMatmulReference(x, w, offsets, want, rows, k, n, transB);
      assert(worstError(one, want) < 1e-4, `transB ${transB}: off the plain loop by ${worstError(one, want)}`);
      for (const t of THREADS.slice(1)) assert.deepStrictEqual(run(t), one, `transB ${transB}, ${t} threads`);
    }
  });

  Deno.test(`groupedOuter threads: ${name}: same bits on ${THREADS.join(", ")} threads`, () => {
    const run = (threads: number) =>
      withThreads(threads, () => {
        const out = new Float32Array(groups * k * n).fill(NaN);
        groupedMatmulKernels.groupedOuter([ref(x, [rows, k]), ref(dy, [rows, n]), ref(off, [groups + 1], "i32")], [
          ref(out, [groups, k, n]),
        ], {});
        return out;
      });
    const one = run(1);
    const want = new Float64Array(groups * k * n);
    groupedOuterReference(x, dy, offsets, want, k, n);
    assert(worstError(one, want) < 1e-4, `off the plain loop by ${worstError(one, want)}`);
    for (const t of THREADS.slice(1)) assert.deepStrictEqual(run(t), one, `${t} threads`);
  });
}

Deno.test("batched matmul threads: expert batches and broadcasts, same bits on 1, 2, 3 threads", () => {
  // [ba, bb, M, K, N, transA, transB]: the padded MoE dispatch's [E, C, d] × [E, d, h] (past the slot
  // budget), attention-sized batches, and a broadcast operand.
  const cases: [number, number, number, number, number, boolean, boolean][] = [
    [8, 8, 64, 256, 1024, false, false],
    [8, 8, 64, 1024, 256, false, true],
    [16, 16, 128, 64, 128, false, false],
    [16, 16, 128, 128, 64, true, false],
    [1, 6, 50, 300, 200, false, true],
    [5, 1, 3, 40, 20, false, false], // tiny: under the threading threshold
  ];
  let seed = 40;
  for (const [ba, bb, m, k, n, transA, transB] of cases) {
    const a = filled(ba * m * k, seed++), b = filled(bb * k * n, seed++), batch = Math.max(ba, bb);
    const run = (threads: number) =>
      withThreads(threads, () => {
        const out = new Float32Array(batch * m * n).fill(NaN);
        matmulKernels.matmul(
          [ref(a, [ba, transA ? k : m, transA ? m : k]), ref(b, [bb, transB ? n : k, transB ? k : n])],
          [ref(out, [batch, m, n])],
          { transA, transB },
        );
        return out;
      });
    const one = run(1);
    for (const t of THREADS.slice(1)) {
      assert.deepStrictEqual(run(t), one, `${JSON.stringify({ ba, bb, m, k, n, transA, transB })}: ${t} threads`);
    }
  }
});

Deno.test("groupedMatmul threads: a large call does reach the Worker pool", () => {
  if (!sharedMemorySupported() || !threadsSupported()) return; // every product on the calling thread here
  const [k, n] = [256, 512], offsets = [0, 40, 90, 200], rows = 200, groups = 3;
  assert(matmulThreads(rows * k * n, 2) === 2);
  const x = filled(rows * k, 1), w = filled(groups * k * n, 2), out = new Float32Array(rows * n);
  const wasm = sharedWasmMatmul()!;
  const before = wasm.workerUnits, deadline = performance.now() + 15_000;
  // Workers start asynchronously; repeat until one has taken a unit of a grouped job.
  while (wasm.workerUnits === before && performance.now() < deadline) {
    withThreads(2, () =>
      groupedMatmulKernels.groupedMatmul(
        [ref(x, [rows, k]), ref(w, [groups, k, n]), ref(new Int32Array(offsets), [groups + 1], "i32")],
        [ref(out, [rows, n])],
        { transB: false },
      ));
  }
  assert(wasm.workerUnits > before, "no Worker ever took a unit of a grouped job");
});
