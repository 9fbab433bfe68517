/**
 * CPU rotary position embedding (the registry's `rotary`): x [..., T, D] with cos and sin [T, D/2], each row
 * rotated pair by pair (feature i with feature i + D/2, rotate-half convention).
 *
 * Numerics: the composed chain `x·cos + rotateHalf(x)·sin` rounds three times per element in x's dtype — the
 * two products, then their sum — and so does this kernel, in the same order: out = round(x·c) + round(r·s) with
 * r = −x[i + h] (first half) or x[i − h] (second half), the sum rounded on store. The inverse rotation (the
 * backward) negates s. Negation is exact, so `rotateHalf(x)·s` and `x·(−s)` are the same bits.
 *
 * Two paths: the reference loop reads as the formula (one element at a time, rounding through a scratch
 * array of x's dtype), the fast path (`fastKernels`) walks pairs with `Math.fround` (f32) or plain doubles
 * (f64). Rows are independent: threaded jobs split them, and every row is computed whole by one thread.
 *
 * @module
 */
import type { TypedArray } from "../../core/dtype.ts";
import type { KernelFamily } from "../registry.ts";
import type { CpuBuffer } from "./buffer.ts";
import { liveCpuOptions } from "./config.ts";
import { rowsPerUnit, runParallel, threadMinimums } from "./threads/pool.ts";
import { intArg } from "./threads/layout.ts";

/** Operands: x, cos, sin, out. */
type Views = readonly TypedArray[];

/** The reference: element by element, each product rounded through `tmp` (x's dtype) before the sum. */
function referenceRows(v: Views, t: number, d: number, inverse: boolean, r0: number, r1: number): void {
  const [x, cos, sin, out] = v, h = d / 2;
  const tmp = x instanceof Float32Array ? new Float32Array(2) : new Float64Array(2);
  for (let r = r0; r < r1; r++) {
    const base = r * d, angles = (r % t) * h;
    for (let j = 0; j < d; j++) {
      const i = j < h ? j : j - h;
      const rotated = j < h ? -x[base + j + h] : x[base + j - h];
      const s = inverse ? -sin[angles + i] : sin[angles + i];
      tmp[0] = x[base + j] * cos[angles + i];
      tmp[1] = rotated * s;
      out[base + j] = tmp[0] + tmp[1];
    }
  }
}

/** The fast path: one pass over the pairs of each row (f32 products rounded with `Math.fround`). */
function fastRows(v: Views, t: number, d: number, inverse: boolean, r0: number, r1: number): void {
  const [x, cos, sin, out] = v, h = d / 2, sign = inverse ? -1 : 1;
  const round = x instanceof Float32Array;
  for (let r = r0; r < r1; r++) {
    const base = r * d, angles = (r % t) * h;
    if (round) {
      for (let i = 0; i < h; i++) {
        const a = x[base + i], b = x[base + i + h], c = cos[angles + i], s = sign * sin[angles + i];
        out[base + i] = Math.fround(a * c) + Math.fround(-b * s);
        out[base + i + h] = Math.fround(b * c) + Math.fround(a * s);
      }
    } else {
      for (let i = 0; i < h; i++) {
        const a = x[base + i], b = x[base + i + h], c = cos[angles + i], s = sign * sin[angles + i];
        out[base + i] = a * c + -b * s;
        out[base + i + h] = b * c + a * s;
      }
    }
  }
}

/** Unit `unit` of a threaded job: `args` = [T, D, inverse (0/1), rows per unit, rows] (the fast path). */
export function rotaryUnit(_desc: null, v: Views, args: ArrayLike<number>, unit: number): void {
  const per = intArg(args, 3), r0 = unit * per;
  fastRows(v, intArg(args, 0), intArg(args, 1), args[2] === 1, r0, Math.min(intArg(args, 4), r0 + per));
}

/** The rotary family of the CPU backend. */
export const rotaryKernels: KernelFamily<CpuBuffer, "rotary"> = {
  rotary([x, cos, sin], [out], { inverse }) {
    const d = x.shape[x.shape.length - 1], t = x.shape[x.shape.length - 2], rows = d === 0 ? 0 : x.buf.length / d;
    const views = [x.buf, cos.buf, sin.buf, out.buf];
    const { threads, fastKernels } = liveCpuOptions;
    if (fastKernels && threads > 1 && x.buf.length >= threadMinimums.rows) {
      const per = rowsPerUnit(rows, threads), args = [t, d, inverse ? 1 : 0, per, rows];
      if (runParallel("rotary", "", null, rotaryUnit, views, args, Math.ceil(rows / per), threads)) return;
    }
    (fastKernels ? fastRows : referenceRows)(views, t, d, inverse, 0, rows);
  },
};
