/**
 * The WebAssembly SIMD passes of gradient clipping against plain TypeScript: column sums of f32 squares in
 * double (row order) and the in-place f32 scaling give the same bits, for row lengths below 4, around the
 * chunk and longer than it, and for special values. Tensor-level agreement with the op path is in
 * tests/nn/optim_inplace_test.ts.
 */
import assert from "node:assert/strict";
import { CLIP_CHUNK, createWasmClip, emitClipModule } from "../../kernels/cpu/wasm/clip.ts";

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

Deno.test("the emitted clipping module validates", () => {
  assert.ok(WebAssembly.validate(emitClipModule()));
});

Deno.test("wasm column sums of squares are bit-identical to the scalar loop (short, chunk-sized, long rows)", () => {
  const wasm = createWasmClip();
  const cases = [[1, 1], [5, 1], [7, 3], [3, 4], [9, 5], [2, CLIP_CHUNK], [3, CLIP_CHUNK - 1], [5, 1000], [2, 9001]];
  for (const [rows, inner] of cases) {
    const g = values(rows * inner, rows * 31 + inner);
    const want = new Float64Array(inner);
    for (let i = 0; i < rows; i++) for (let j = 0; j < inner; j++) want[j] += Math.fround(g[i * inner + j] ** 2);
    sameBits(wasm.columnSumsOfSquares(g, rows, inner), want, `${rows} × ${inner}`);
  }
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
