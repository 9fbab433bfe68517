/**
 * The f32 fast path of softmax and log-softmax (used when `fastKernels` is on; `reduce.ts` keeps the
 * reference loop, the oracle). Per row: the maximum m as the reference takes it, e_i = fastExp(x_i − m)
 * (`fast_math.ts`) computed once and kept in double — the reference calls `Math.exp` twice per element —
 * the total summed in the reference's order, then e_i / total (or x_i − (m + ln total)).
 *
 * With `wasm`, rows along the last axis get their exponentials from WebAssembly f64x2 lanes
 * (`wasm/softmax_exp.ts`), bit-identical to `fastExp`; the sums and divisions are this file's in both cases,
 * so the two paths give the same bits. Against the reference, fastExp differs by about an ulp of a double,
 * so after rounding to f32 the results agree within 1 ulp (tests check it).
 *
 * @module
 */
import { fastExp } from "./fast_math.ts";
import { sharedWasmSoftmaxExp, SOFTMAX_CHUNK } from "./wasm/softmax_exp.ts";

/** Rows shorter than this keep the JavaScript loop (the call and copies would cost more than they save). */
export const WASM_MIN_ROW = 16;

let scratch = new Float64Array(SOFTMAX_CHUNK);
let maxima = new Float64Array(SOFTMAX_CHUNK);

function rowMax(src: Float32Array, base: number, n: number, inner: number): number {
  let m = -Infinity;
  for (let i = 0; i < n; i++) m = Math.max(m, src[base + i * inner]);
  return m;
}

/** Sums the row's exponentials `e[at…]` in order and writes the normalised row. */
function finishRow(
  src: Float32Array,
  dst: Float32Array,
  base: number,
  n: number,
  inner: number,
  m: number,
  e: Float64Array,
  at: number,
  log: boolean,
): void {
  let total = 0;
  for (let i = 0; i < n; i++) total += e[at + i];
  if (log) {
    const lse = m + Math.log(total);
    for (let i = 0; i < n; i++) dst[base + i * inner] = src[base + i * inner] - lse;
  } else {
    for (let i = 0; i < n; i++) dst[base + i * inner] = e[at + i] / total;
  }
}

/**
 * Softmax (or log-softmax) of `src` viewed as [outer, n, inner] along the middle axis, into `dst`: the outer
 * rows [o0, o1) (all by default; a thread's share otherwise — each row is computed whole, so the bits do not
 * depend on how rows are shared out).
 */
export function fastSoftmax(
  src: Float32Array,
  dst: Float32Array,
  outer: number,
  n: number,
  inner: number,
  log: boolean,
  wasm: boolean,
  o0 = 0,
  o1 = outer,
): void {
  const simd = wasm && inner === 1 && n >= WASM_MIN_ROW ? sharedWasmSoftmaxExp() : undefined;
  if (simd) {
    const per = Math.max(1, Math.floor(SOFTMAX_CHUNK / n));
    if (maxima.length < per) maxima = new Float64Array(per);
    for (let r0 = o0; r0 < o1; r0 += per) {
      const rows = Math.min(per, o1 - r0);
      for (let r = 0; r < rows; r++) maxima[r] = rowMax(src, (r0 + r) * n, n, 1);
      const e = simd.exps(src, r0 * n, rows, n, maxima);
      for (let r = 0; r < rows; r++) finishRow(src, dst, (r0 + r) * n, n, 1, maxima[r], e, r * n, log);
    }
    return;
  }
  if (scratch.length < n) scratch = new Float64Array(n);
  const e = scratch;
  for (let o = o0; o < o1; o++) {
    for (let j = 0; j < inner; j++) {
      const base = o * n * inner + j;
      const m = rowMax(src, base, n, inner);
      for (let i = 0; i < n; i++) e[i] = fastExp(src[base + i * inner] - m);
      finishRow(src, dst, base, n, inner, m, e, 0, log);
    }
  }
}
