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
 *   at masked ones (the `where`s pass 0). The reference loop rounds each step by storing it in the output
 *   array, as the chain's kernels store theirs; the fast path (f32, `fastKernels`) rounds with `Math.fround` in
 *   registers — the same bits. A row with no key is round(0·scale) throughout.
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

/**
 * Forward rows [r0, r1): `v` = [x, out, mask?]. With `causal`, the keys after the query are −∞ in the chain,
 * so their exponentials are exactly 0 and add nothing to the row's maximum or total: the softmax runs on the
 * allowed prefix alone (the same bits, half the exponentials) and the tail is written 0.
 */
function forwardRows(desc: SoftmaxDesc, v: readonly TypedArray[], args: ArrayLike<number>, r0: number, r1: number) {
  const [x, out] = v, mask = args[HAS_MASK] === 1 ? v[2] : null, tk = args[TK], causal = args[CAUSAL] === 1;
  const scale = x instanceof Float32Array ? Math.fround(args[SCALE]) : args[SCALE];
  const col = mask ? args[GEOMETRY + 2 * args[GEOMETRY] + 1] : 0, empty: number[] = [];
  for (let r = r0, base = r0 * tk; r < r1; r++, base += tk) {
    const last = causal ? Math.min(tk, (r % args[TQ]) + 1) : tk;
    let any = last > 0;
    if (mask) {
      const off = maskRowOffset(args, GEOMETRY, r);
      any = false;
      for (let j = 0; j < last; j++) {
        const ok = mask[off + j * col] !== 0;
        out[base + j] = ok ? x[base + j] * scale : -Infinity;
        any ||= ok;
      }
    } else for (let j = 0; j < last; j++) out[base + j] = x[base + j] * scale;
    if (!any) {
      out.fill(0, base, base + tk);
      if (!causal) empty.push(base);
      continue;
    }
    if (causal) {
      const row = out.subarray(base, base + last);
      softmaxRows(desc, row, row, 1, last, 1, 0, 1);
      out.fill(0, base + last, base + tk);
    }
  }
  if (causal) return;
  // Whole rows: one call over the block (the SIMD exponentials take blocks of rows), then the empty rows again.
  softmaxRows(desc, out, out, args[ROWS], tk, 1, r0, r1);
  for (const base of empty) out.fill(0, base, base + tk);
}

/**
 * The reference backward of rows [r0, r1): `v` = [g, y, dx, mask?]; every step is rounded by storing it in
 * dx (the chain's kernels store theirs), so one loop serves f32 and f64.
 */
function backwardReference(v: readonly TypedArray[], args: ArrayLike<number>, r0: number, r1: number) {
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

/**
 * The fast backward (f32): the reference's roundings with `Math.fround` in registers instead of stores, and
 * with `causal` only the allowed prefix computed (the tail is masked: 0·scale). The dot still runs over the
 * whole row, as the chain's sum does (an infinite g at a masked key makes it NaN there too). The dots of two
 * rows run interleaved: each is a chain of dependent additions over its row in order (the same bits), and two
 * chains overlap where one waits on the adder's latency (a row's dot is computed even when the row turns out
 * masked, and then not used).
 */
function backwardFast(v: readonly TypedArray[], args: ArrayLike<number>, r0: number, r1: number) {
  const [g, y, dx] = v, mask = args[HAS_MASK] === 1 ? v[3] : null, tk = args[TK], causal = args[CAUSAL] === 1;
  const scale = Math.fround(args[SCALE]), zero = 0 * scale, fr = Math.fround;
  const allowed = allowedRow(tk);
  let nextDot = 0;
  for (let r = r0, base = r0 * tk; r < r1; r++, base += tk) {
    let dot = 0;
    if ((r - r0) % 2 === 1) dot = nextDot;
    else if (r + 1 < r1) {
      let dot1 = 0;
      for (let j = base, k = base + tk; j < base + tk; j++, k++) {
        dot += fr(g[j] * y[j]);
        dot1 += fr(g[k] * y[k]);
      }
      nextDot = dot1;
    } else for (let j = base; j < base + tk; j++) dot += fr(g[j] * y[j]);
    const last = causal ? Math.min(tk, (r % args[TQ]) + 1) : tk;
    if (mask ? !rowAllowed(mask, args, r, allowed) : last === 0) {
      dx.fill(zero, base, base + tk);
      continue;
    }
    const rounded = fr(dot);
    for (let j = 0; j < last; j++) {
      const at = base + j;
      dx[at] = mask && !allowed[j] ? zero : fr(y[at] * fr(g[at] - rounded)) * scale;
    }
    dx.fill(zero, base + last, base + tk);
  }
}

/** How a job runs: the forward's softmax path, or (`backward`) the backward on the fast path or not. */
interface Desc extends SoftmaxDesc {
  backward: boolean;
}

/** The rows [r0, r1) of a forward or backward job (`v`: see forwardRows and backwardReference). */
function runShare(desc: Desc, v: readonly TypedArray[], args: ArrayLike<number>, r0: number, r1: number): void {
  if (!desc.backward) forwardRows(desc, v, args, r0, r1);
  else if (desc.fast && v[2] instanceof Float32Array) backwardFast(v, args, r0, r1);
  else backwardReference(v, args, r0, r1);
}

/** Unit `unit` of a threaded job: rows [unit·per, …). */
export function maskedSoftmaxUnit(desc: Desc, v: readonly TypedArray[], args: ArrayLike<number>, unit: number): void {
  const r0 = unit * args[PER];
  runShare(desc, v, args, r0, Math.min(args[ROWS], r0 + args[PER]));
}

/** Runs a forward or backward job over every row, split over threads when it is large. */
function runRows(
  backward: boolean,
  views: TypedArray[],
  x: TensorRef<CpuBuffer>,
  mask: TensorRef<CpuBuffer> | undefined,
  scale: number,
  causal: boolean,
) {
  const { threads, fastKernels: fast, wasm } = liveCpuOptions, desc: Desc = { backward, log: false, fast, wasm };
  const tk = x.shape[x.shape.length - 1], tq = x.shape[x.shape.length - 2] ?? 1;
  const rows = tk === 0 ? 0 : x.buf.length / tk;
  if (mask) views.push(mask.buf);
  const geometry = mask ? maskGeometry(x.shape, mask.shape) : [0, 0];
  const per = rowsPerUnit(rows, threads);
  const args = [tq, tk, scale, causal ? 1 : 0, mask ? 1 : 0, per, rows, ...geometry];
  if (threads > 1 && x.buf.length >= threadMinimums.softmax) {
    const key = `${backward}|${fast}|${wasm}`;
    if (runParallel("maskedSoftmax", key, desc, maskedSoftmaxUnit, views, args, Math.ceil(rows / per), threads)) return;
  }
  runShare(desc, views, args, 0, rows);
}

/** The masked-softmax family of the CPU backend. */
export const maskedSoftmaxKernels: KernelFamily<CpuBuffer, "maskedSoftmax" | "maskedSoftmaxBackward"> = {
  maskedSoftmax(inputs, [out], { scale, causal, hasMask }) {
    const x = inputs[0];
    runRows(false, [x.buf, out.buf], x, hasMask ? inputs[1] : undefined, scale, causal);
  },
  maskedSoftmaxBackward(inputs, [dx], { scale, causal, hasMask }) {
    const [g, y] = inputs;
    runRows(true, [g.buf, y.buf, dx.buf], y, hasMask ? inputs[2] : undefined, scale, causal);
  },
};
