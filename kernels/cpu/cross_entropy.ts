/**
 * CPU softmax cross-entropy over the last axis, forward and backward, one row (one target) at a time.
 *
 * Forward per row with target t: m = max(x) (NaN wins, as the softmax kernel), lse = m + log Σ exp(x − m) (the
 * sums in double whatever the dtype), loss = lse − x[t]; with label smoothing ε, loss·(1 − ε) − ε·(Σx / C − lse)
 * (the smoothed target's cross-entropy, as PyTorch). Without smoothing the loss equals, bit for bit, the composed
 * `−gather(logSoftmax(x), t)` (both round lse − x[t] once). Ignored rows are skipped: loss 0, lse 0.
 *
 * Backward per element: (exp(x − lse) − (1 − ε)·[j = t] − ε/C)·g[row], 0 in ignored rows.
 *
 * One loop per kernel: there is nothing for a fast path to skip (each element is read once per pass and exp is
 * the cost, which SIMD cannot compute bit for bit like `Math.exp`).
 *
 * @module
 */
import { fmtShape, OpError } from "../../core/errors.ts";
import type { KernelFamily, TensorRef } from "../registry.ts";
import type { CpuBuffer } from "./buffer.ts";
import type { TypedArray } from "../../core/dtype.ts";
import { liveCpuOptions } from "./config.ts";
import { rowsPerUnit, runParallel, threadMinimums } from "./threads/pool.ts";
import { intArg } from "./threads/layout.ts";

/** The target of row r, or −1 for an ignored row; throws for a class outside [0, c). */
function target(t: number, ignoreIndex: number, c: number, tShape: readonly number[], xShape: readonly number[]) {
  if (t === ignoreIndex) return -1;
  if (t < 0 || t >= c) {
    throw new OpError(
      "crossEntropy",
      `targets ${fmtShape(tShape)} hold a class outside [0, ${c}) for logits ${fmtShape(xShape)} (index ${t})`,
    );
  }
  return t;
}

/** Operands of both kernels: logits, targets, then [loss, lse] (forward) or [lse, g, dx] (backward). */
type Rows = readonly TypedArray[];

/** Forward rows [r0, r1): views = [x, targets, loss, lse]; targets already checked (see {@link checkTargets}). */
function forwardRows(v: Rows, c: number, ignoreIndex: number, eps: number, r0: number, r1: number): void {
  const [x, tg, loss, lseOut] = v;
  for (let r = r0, base = r0 * c; r < r1; r++, base += c) {
    const t = tg[r];
    if (t === ignoreIndex) {
      loss[r] = lseOut[r] = 0;
      continue;
    }
    let m = -Infinity;
    for (let j = 0; j < c; j++) m = Math.max(m, x[base + j]);
    let total = 0, sumX = 0;
    for (let j = 0; j < c; j++) {
      total += Math.exp(x[base + j] - m);
      sumX += x[base + j];
    }
    const lse = m + Math.log(total);
    lseOut[r] = lse;
    const nll = lse - x[base + t];
    loss[r] = eps === 0 ? nll : nll * (1 - eps) - eps * (sumX / c - lse);
  }
}

/** Backward rows [r0, r1): views = [x, targets, lse, g, dx]; targets already checked. */
function backwardRows(v: Rows, c: number, ignoreIndex: number, eps: number, r0: number, r1: number): void {
  const [x, tg, l, gr, dx] = v, hit = 1 - eps, off = eps / c;
  for (let r = r0, base = r0 * c; r < r1; r++, base += c) {
    const t = tg[r];
    if (t === ignoreIndex) {
      dx.fill(0, base, base + c);
      continue;
    }
    const s = l[r], gg = gr[r];
    for (let j = 0; j < c; j++) dx[base + j] = (Math.exp(x[base + j] - s) - off) * gg;
    dx[base + t] = (Math.exp(x[base + t] - s) - hit - off) * gg;
  }
}

/** Throws, on the calling thread, for a target outside [0, c) that is not the ignored index. */
function checkTargets(logits: TensorRef<CpuBuffer>, targets: TensorRef<CpuBuffer>, ignoreIndex: number): void {
  const tg = targets.buf, c = logits.shape[logits.shape.length - 1];
  for (let r = 0; r < tg.length; r++) target(tg[r], ignoreIndex, c, targets.shape, logits.shape);
}

/** Unit `unit` of a threaded forward or backward: `args` = [c, ignoreIndex, eps, rows per unit, rows]. */
export function crossEntropyUnit(backward: boolean, v: Rows, args: ArrayLike<number>, unit: number): void {
  const per = intArg(args, 3), r0 = unit * per, r1 = Math.min(intArg(args, 4), r0 + per);
  (backward ? backwardRows : forwardRows)(v, intArg(args, 0), intArg(args, 1), args[2], r0, r1);
}

/**
 * Runs rows [0, rows) of the forward or backward over `views`, split over the kernel Workers when the
 * logits are large enough (each row is computed whole by one thread: the same bits for any thread count).
 */
function runRows(backward: boolean, views: Rows, c: number, ignoreIndex: number, eps: number, rows: number): void {
  const threads = liveCpuOptions.threads;
  if (threads > 1 && rows * c >= threadMinimums.softmax) {
    const per = rowsPerUnit(rows, threads), args = [c, ignoreIndex, eps, per, rows];
    const key = String(backward);
    if (runParallel("crossEntropy", key, backward, crossEntropyUnit, views, args, Math.ceil(rows / per), threads)) {
      return;
    }
  }
  (backward ? backwardRows : forwardRows)(views, c, ignoreIndex, eps, 0, rows);
}

/** The cross-entropy family of the CPU backend. */
export const crossEntropyKernels: KernelFamily<CpuBuffer, "crossEntropy" | "crossEntropyBackward"> = {
  crossEntropy([logits, targets], [loss, lseOut], { ignoreIndex, labelSmoothing: eps }) {
    checkTargets(logits, targets, ignoreIndex);
    const c = logits.shape[logits.shape.length - 1];
    runRows(false, [logits.buf, targets.buf, loss.buf, lseOut.buf], c, ignoreIndex, eps, targets.buf.length);
  },
  crossEntropyBackward([logits, targets, lse, g], [out], { ignoreIndex, labelSmoothing: eps }) {
    checkTargets(logits, targets, ignoreIndex);
    const c = logits.shape[logits.shape.length - 1];
    runRows(true, [logits.buf, targets.buf, lse.buf, g.buf, out.buf], c, ignoreIndex, eps, targets.buf.length);
  },
};
