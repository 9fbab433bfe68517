/**
 * The WebAssembly strided copies (`kernels/cpu/wasm/strided.ts`) behind the fast `strided` gather and its
 * scatter when both arrays live in the tensor heap: every case against the reference loop of index arrays, bit
 * for bit, with the floats after the output left alone — permutes (an attention head's split), slices with an
 * offset, broadcast outer axes, negative strides, runs that are not whole vectors, 4-byte integers — and where
 * the copy declines (short runs, arrays outside the heap, more outer axes than it takes).
 */
import assert from "node:assert/strict";
import { stridedOffsets } from "../../kernels/cpu/buffer.ts";
import { fastStrided, fastStridedScatter } from "../../kernels/cpu/fast_layout.ts";
import { copyRunsInPlace } from "../../kernels/cpu/wasm/strided.ts";
import { filled } from "../helpers/host_rng.ts";
import { sentinelsAfter, withHeapArrays } from "../helpers/heap_arrays.ts";

/** A gather: the output's shape, and where each output element is read (offset and strides, in elements). */
interface Case {
  name: string;
  shape: number[];
  offset: number;
  strides: number[];
  /** Elements of the source. */
  size: number;
}

/** The strides of `perm` applied to a contiguous array of shape `src`. */
function permuted(name: string, src: number[], perm: number[]): Case {
  const st = src.map((_, d) => src.slice(d + 1).reduce((p, x) => p * x, 1));
  return { name, shape: perm.map((p) => src[p]), offset: 0, strides: perm.map((p) => st[p]), size: st[0] * src[0] };
}

const CASES: Case[] = [
  permuted("attention head split [2, 8, 3, 16] → [2, 3, 8, 16]", [2, 8, 3, 16], [0, 2, 1, 3]),
  permuted("head merge, runs of 5 (not whole vectors)", [2, 3, 7, 5], [0, 2, 1, 3]),
  permuted("three outer axes", [2, 3, 4, 6], [1, 0, 2, 3]),
  // Rows 1..4 of a [6, 9] matrix, columns 2..8: runs of 7 from an offset.
  { name: "slice with an offset", shape: [4, 7], offset: 9 + 2, strides: [9, 1], size: 54 },
  // A [5] row expanded to [3, 5] (an outer stride of 0).
  { name: "broadcast outer axis", shape: [3, 5], offset: 0, strides: [0, 1], size: 5 },
  // Rows of a [4, 6] matrix in reverse order (a negative outer stride).
  { name: "negative outer stride", shape: [4, 6], offset: 18, strides: [-6, 1], size: 24 },
];

function reference(src: Float32Array, c: Case): Float32Array {
  const [idx] = stridedOffsets(c.shape, [c.strides], [c.offset]);
  return Float32Array.from(idx, (i) => src[i]);
}

Deno.test("wasm strided: gathers in the heap give the reference loop's bits and touch nothing past the output", () => {
  withHeapArrays((inHeap) => {
    for (const c of CASES) {
      const src = inHeap(filled(c.size, 3)), n = c.shape.reduce((p, d) => p * d, 1);
      const dst = inHeap(new Float32Array(n).fill(NaN));
      fastStrided(src, dst, c.shape, c.offset, c.strides);
      assert.deepStrictEqual(dst, reference(src, c), c.name);
      assert.deepStrictEqual(sentinelsAfter(dst), [7, 7, 7, 7], `${c.name}: past the output`);
    }
  });
});

Deno.test("wasm strided: scatters in the heap give the reference loop's bits (the last write wins)", () => {
  withHeapArrays((inHeap) => {
    for (const c of CASES) {
      const n = c.shape.reduce((p, d) => p * d, 1), src = inHeap(filled(n, 4));
      const base = filled(c.size, 5), dst = inHeap(base);
      fastStridedScatter(src, dst, c.shape, c.offset, c.strides);
      const want = base.slice();
      const [idx] = stridedOffsets(c.shape, [c.strides], [c.offset]);
      idx.forEach((at, i) => want[at] = src[i]);
      assert.deepStrictEqual(dst, want, c.name);
      assert.deepStrictEqual(sentinelsAfter(dst), [7, 7, 7, 7], `${c.name}: past the array`);
    }
  });
});

Deno.test("wasm strided: 4-byte integers are copied bit for bit too", () => {
  withHeapArrays((inHeap) => {
    const c = CASES[0], n = c.shape.reduce((p, d) => p * d, 1);
    const srcF = inHeap(new Float32Array(c.size)), dstF = inHeap(new Float32Array(n));
    const src = new Int32Array(srcF.buffer, srcF.byteOffset, c.size),
      dst = new Int32Array(dstF.buffer, dstF.byteOffset, n);
    src.forEach((_, i) => src[i] = (i * 2654435761) | 0);
    fastStrided(src, dst, c.shape, c.offset, c.strides);
    const [idx] = stridedOffsets(c.shape, [c.strides], [c.offset]);
    assert.deepStrictEqual(dst, Int32Array.from(idx, (i) => src[i]));
  });
});

Deno.test("wasm strided: declines arrays outside the heap and more outer axes than it takes", () => {
  withHeapArrays((inHeap) => {
    const a = inHeap(filled(64, 1)), b = inHeap(new Float32Array(64));
    assert.equal(copyRunsInPlace("gather", b, a, 0, [4, 2], [16, 8], 8), true);
    assert.deepStrictEqual(b.subarray(0, 16), Float32Array.from([...a.subarray(0, 8), ...a.subarray(8, 16)]));
    assert.equal(copyRunsInPlace("gather", new Float32Array(64), a, 0, [8], [8], 8), false, "dense side outside");
    assert.equal(copyRunsInPlace("gather", b, a, 0, [2, 2, 2, 2], [32, 16, 8, 4], 4), false, "four outer axes");
    assert.equal(copyRunsInPlace("gather", new Float64Array(b.buffer, b.byteOffset, 8), a, 0, [1], [0], 8), false);
  });
  // Outside the heap the JavaScript loops still give the reference's bits.
  for (const c of CASES) {
    const src = filled(c.size, 3), dst = new Float32Array(c.shape.reduce((p, d) => p * d, 1));
    fastStrided(src, dst, c.shape, c.offset, c.strides);
    assert.deepStrictEqual(dst, reference(src, c), c.name);
  }
});
