/**
 * The WebAssembly SIMD passes of gradient clipping against plain TypeScript: column sums of f32 squares in
 * double (row order) and the in-place f32 scaling give the same bits, for row lengths below 4, around the
 * chunk and longer than it, and for special values. Tensor-level agreement with the op path is in
 * tests/nn/optim_inplace_test.ts.
 */
import assert from "node:assert/strict";
import { CLIP_CHUNK, createWasmClip, emitClipModule, SUMSQ_BLOCK } from "../../kernels/cpu/wasm/clip.ts";
import { sentinelsAfter, withHeapArrays } from "../helpers/heap_arrays.ts";

/** Deterministic values over wide magnitudes, with specials mixed in. */
function values(n: number, seed: number): Float32Array {
  const specials = [0, -0, Infinity, -Infinity, NaN, 1e-40, 3e38];
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, (_, i) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const u = s / 2 ** 32;
    return u < 0.03 ? specials[i % specials.length] : (u - 0.5) * 2 ** ((i % 61) - 30);
  });
}

function sameBits(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i])) assert.fail(`${what}: element ${i} is ${got[i]}, reference ${want[i]}`);
  }
}

Deno.test("the emitted clipping module validates, and a block that is not a multiple of 4 is refused", () => {
  assert.ok(WebAssembly.validate(emitClipModule()));
  assert.ok(WebAssembly.validate(emitClipModule(true)), "the variant on the shared tensor memory");
  assert.throws(() => createWasmClip(6), /block must be a multiple of 4/);
});

Deno.test("wasm column sums of squares are bit-identical to the scalar loop (short, chunk-sized, long rows)", () => {
  // Rows longer than a block go in column blocks holding several rows each (8 rows: every row per block; with
  // more rows than a block has groups of four columns, four columns per block and the rows in groups). A
  // small block reaches every path with small arrays; the default one runs the benchmark's wide shape.
  for (const B of [64, SUMSQ_BLOCK]) {
    const wasm = createWasmClip(B);
    const cases = [[1, 1], [5, 1], [7, 3], [3, 4], [9, 5], [2, B], [3, B - 1], [5, 1000], [2, B + 9], [8, 2 * B + 9]];
    if (B === 64) cases.push([3, 3 * B + 6], [40, B + 3], [37, 5]);
    else cases.push([8, 8 * B]);
    for (const [rows, inner] of cases) {
      const g = values(rows * inner, rows * 31 + inner);
      const want = new Float64Array(inner);
      for (let i = 0; i < rows; i++) for (let j = 0; j < inner; j++) want[j] += Math.fround(g[i * inner + j] ** 2);
      sameBits(wasm.columnSumsOfSquares(g, rows, inner), want, `block ${B}: ${rows} × ${inner}`);
    }
  }
  const wasm = createWasmClip();
  // A later call with short rows after the memory grew (the views were re-made).
  const g = values(12, 1);
  const want = [0, 1, 2, 3].map((j) => [0, 4, 8].reduce((a, r) => a + Math.fround(g[r + j] ** 2), 0));
  sameBits(wasm.columnSumsOfSquares(g, 3, 4), want, "after growing");
});

Deno.test("wasm in-place scaling is bit-identical to the f32 product and leaves elements past n alone", () => {
  const wasm = createWasmClip();
  for (const n of [0, 1, 3, 4, 5, CLIP_CHUNK, CLIP_CHUNK + 3, 3 * CLIP_CHUNK + 1]) {
    for (const s of [Math.fround(0.37), 0, NaN, Math.fround(1e-30)]) {
      const g = values(n + 2, n), want = Float32Array.from(g, (x, i) => (i < n ? x * s : x));
      wasm.scale(g, n, s);
      sameBits(g, want, `n ${n}, scale ${s}`);
    }
  }
});

Deno.test("wasm clipping passes on gradients in the tensor heap: the same bits, read in place", () => {
  withHeapArrays((inHeap) => {
    const wasm = createWasmClip();
    // Rows of whole vectors run in place (8200 columns: more than one scratch block of sums); 5 and 1003
    // columns take the chunked path.
    for (const [rows, inner] of [[3, 4], [8, 8200], [37, 256], [2, 5], [4, 1003]]) {
      const g = values(rows * inner, rows + inner);
      const want = new Float64Array(inner);
      for (let i = 0; i < rows; i++) for (let j = 0; j < inner; j++) want[j] += Math.fround(g[i * inner + j] ** 2);
      sameBits(wasm.columnSumsOfSquares(inHeap(g), rows, inner), want, `${rows} × ${inner} in the heap`);
    }
    // The fused first two reductions: 16-column groups and a 4-column tail, more columns than one scratch
    // block of sums (8192), one row (axis 0 alone); columns not a multiple of 4, or a gradient outside the
    // heap, are refused.
    for (const [planes, rows, cols] of [[3, 2, 4], [8, 5, 8200], [2, 3, 20], [1, 7, 36], [5, 1, 52], [9, 4, 16]]) {
      const g = values(planes * rows * cols, planes + rows + cols), want = new Float64Array(cols);
      for (let r = 0; r < rows; r++) {
        for (let k = 0; k < cols; k++) {
          let s = 0;
          for (let p = 0; p < planes; p++) s += Math.fround(g[(p * rows + r) * cols + k] ** 2);
          want[k] += Math.fround(s);
        }
      }
      const got = wasm.leadingSumsOfSquares(inHeap(g), planes, rows, cols);
      assert.ok(got, `${planes} × ${rows} × ${cols}: in the heap`);
      sameBits(got, want, `leading sums of ${planes} × ${rows} × ${cols} in the heap`);
    }
    assert.equal(wasm.leadingSumsOfSquares(inHeap(values(30, 1)), 2, 3, 5), null, "5 columns");
    assert.equal(wasm.leadingSumsOfSquares(values(32, 1), 2, 4, 4), null, "outside the heap");
    for (const n of [1, 3, 4, 5, CLIP_CHUNK + 3]) {
      const s = Math.fround(0.37), g = inHeap(values(n, n)), want = Float32Array.from(g, (x) => x * s);
      wasm.scale(g, n, s);
      sameBits(g, want, `scale n ${n} in the heap`);
      sameBits(sentinelsAfter(g), [7, 7, 7, 7], `n ${n}: nothing past n`);
    }
  });
});
