/**
 * CPU scaled, masked softmax over the last axis (the registry's `maskedSoftmax` and its backward), the
 * attention weights of `softmax(where(mask, x·scale, −∞))` with fully masked rows set to 0.
 *
 * Numerics: the composed chain of attention — `x.mul(scale)`, `where(mask, ·, −∞)`, `softmax(−1)`, then
 * `where(rowHasKey, ·, 0)` — bit for bit on both CPU paths:
 * - forward: each row's scaled scores x·scale are rounded to x's dtype (scale itself rounded to the dtype, as
 *   the scalar operand of `mul` is), masked entries become −∞, and the row goes through the softmax kernel's
 *   own row function (`reduce.ts`: the reference loop, or `fast_softmax.ts` on the fast path) in place; a row
 *   whose every key is masked becomes 0 (the softmax gave NaN there);
 * - backward, from g and the output y, per row with a key: dot = Σ round(g·y) summed in double in order and
 *   rounded (the `sum` kernel), then round(round(y·round(g − dot))·scale) at allowed keys and round(0·scale)
 *   at masked ones (the `where`s pass 0) — each step rounded to the dtype through the output array, as the
 *   chain's kernels store theirs. A row with no key is round(0·scale) throughout.
 *
 * "Allowed" is the bool mask (any shape that broadcasts to x, read through `mask_geometry.ts`) and, with
 * `causal`, key j ≤ query i (i the row's index along axis −2). Rows are independent: threaded jobs split them
 * and each row is computed whole by one thread, so every thread count gives the same bits.
 *
 * @module
 */
import type { TypedArray } from "../../core/dtype.ts";
import type { KernelFamily, TensorRef } from "../registry.ts";
import { maskGeometry, maskRowOffset } from "../mask_geometry.ts";
import type { CpuBuffer } from "./buffer.ts";
import { liveCpuOptions } from "./config.ts";
import { type SoftmaxDesc, softmaxRows } from "./reduce.ts";
import { rowsPerUnit, runParallel, threadMinimums } from "./threads/pool.ts";

/** Where the job's numbers lie in `args` (the mask geometry follows them). */
const TQ = 0, TK = 1, SCALE = 2, CAUSAL = 3, HAS_MASK = 4, PER = 5, ROWS = 6, GEOMETRY = 7;

/**
 * Writes row r's allowed keys into `allowed` (1/0) and returns whether any is allowed. `mask` is null
 * without a mask tensor.
 */
function rowAllowed(mask: TypedArray | null, args: ArrayLike<number>, r: number, allowed: Uint8Array): boolean {
  const tk = args[TK], last = args[CAUSAL] === 1 ? (r % args[TQ]) + 1 : tk;
  let any = false;
  if (mask === null) {
    allowed.fill(1, 0, Math.min(last, tk));
    allowed.fill(0, Math.min(last, tk), tk);
    return Math.min(last, tk) > 0;
  }
  const off = maskRowOffset(args, GEOMETRY, r), col = args[GEOMETRY + 2 * args[GEOMETRY] + 1];
  for (let j = 0; j < tk; j++) {
    const ok = j < last && mask[off + j * col] !== 0;
    allowed[j] = ok ? 1 : 0;
    any ||= ok;
  }
  return any;
}

let allowedScratch = new Uint8Array(0);

function allowedRow(tk: number): Uint8Array {
  if (allowedScratch.length < tk) allowedScratch = new Uint8Array(tk);
  return allowedScratch;
}

/** Forward rows [r0, r1): `v` = [x, out, mask?]. */
function forwardRows(desc: SoftmaxDesc, v: readonly TypedArray[], args: ArrayLike<number>, r0: number, r1: number) {
  const [x, out] = v, mask = args[HAS_MASK] === 1 ? v[2] : null, tk = args[TK];
  const scale = x instanceof Float32Array ? Math.fround(args[SCALE]) : args[SCALE];
  const allowed = allowedRow(tk), empty: number[] = [];
  for (let r = r0, base = r0 * tk; r < r1; r++, base += tk) {
    if (!rowAllowed(mask, args, r, allowed)) empty.push(base);
    for (let j = 0; j < tk; j++) out[base + j] = allowed[j] ? x[base + j] * scale : -Infinity;
  }
  softmaxRows(desc, out, out, args[ROWS], tk, 1, r0, r1);
  for (const base of empty) out.fill(0, base, base + tk);
}

/** Backward rows [r0, r1): `v` = [g, y, dx, mask?]; dx doubles as the rounding scratch (see the module doc). */
function backwardRows(v: readonly TypedArray[], args: ArrayLike<number>, r0: number, r1: number) {
  const [g, y, dx] = v, mask = args[HAS_MASK] === 1 ? v[3] : null, tk = args[TK];
  const scale = dx instanceof Float32Array ? Math.fround(args[SCALE]) : args[SCALE], zero = 0 * scale;
  const allowed = allowedRow(tk);
  for (let r = r0, base = r0 * tk; r < r1; r++, base += tk) {
    if (!rowAllowed(mask, args, r, allowed)) {
      dx.fill(zero, base, base + tk);
      continue;
    }
    let dot = 0;
    for (let j = base; j < base + tk; j++) {
      dx[j] = g[j] * y[j];
      dot += dx[j];
    }
    dx[base] = dot;
    const rounded = dx[base];
    for (let j = 0; j < tk; j++) {
      const at = base + j;
      if (!allowed[j]) {
        dx[at] = zero;
        continue;
      }
      dx[at] = g[at] - rounded;
      dx[at] = y[at] * dx[at];
      dx[at] = dx[at] * scale;
    }
  }
}

/** Unit `unit` of a threaded job (`desc` null: the backward); rows [unit·per, …). */
export function maskedSoftmaxUnit(
  desc: SoftmaxDesc | null,
  v: readonly TypedArray[],
  args: ArrayLike<number>,
  unit: number,
): void {
  const r0 = unit * args[PER], r1 = Math.min(args[ROWS], r0 + args[PER]);
  if (desc) forwardRows(desc, v, args, r0, r1);
  else backwardRows(v, args, r0, r1);
}

/** Runs a forward (`desc`) or backward (null) over every row, split over threads when the job is large. */
function runRows(
  desc: SoftmaxDesc | null,
  views: TypedArray[],
  x: TensorRef<CpuBuffer>,
  mask: TensorRef<CpuBuffer> | undefined,
  scale: number,
  causal: boolean,
) {
  const tk = x.shape[x.shape.length - 1], tq = x.shape[x.shape.length - 2] ?? 1;
  const rows = tk === 0 ? 0 : x.buf.length / tk, threads = liveCpuOptions.threads;
  if (mask) views.push(mask.buf);
  const geometry = mask ? maskGeometry(x.shape, mask.shape) : [0, 0];
  const per = rowsPerUnit(rows, threads);
  const args = [tq, tk, scale, causal ? 1 : 0, mask ? 1 : 0, per, rows, ...geometry];
  if (threads > 1 && x.buf.length >= threadMinimums.softmax) {
    const key = desc ? `${desc.fast}|${desc.wasm}` : "backward";
    if (runParallel("maskedSoftmax", key, desc, maskedSoftmaxUnit, views, args, Math.ceil(rows / per), threads)) return;
  }
  if (desc) forwardRows(desc, views, args, 0, rows);
  else backwardRows(views, args, 0, rows);
}

/** The masked-softmax family of the CPU backend. */
export const maskedSoftmaxKernels: KernelFamily<CpuBuffer, "maskedSoftmax" | "maskedSoftmaxBackward"> = {
  maskedSoftmax(inputs, [out], { scale, causal, hasMask }) {
    const { fastKernels: fast, wasm } = liveCpuOptions;
    const x = inputs[0];
    runRows({ log: false, fast, wasm }, [x.buf, out.buf], x, hasMask ? inputs[1] : undefined, scale, causal);
  },
  maskedSoftmaxBackward(inputs, [dx], { scale, causal, hasMask }) {
    const [g, y] = inputs;
    runRows(null, [g.buf, y.buf, dx.buf], y, hasMask ? inputs[2] : undefined, scale, causal);
  },
};
