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
import type { KernelFamily } from "../registry.ts";
import type { CpuBuffer } from "./buffer.ts";

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

/** The cross-entropy family of the CPU backend. */
export const crossEntropyKernels: KernelFamily<CpuBuffer, "crossEntropy" | "crossEntropyBackward"> = {
  crossEntropy([logits, targets], [loss, lseOut], { ignoreIndex, labelSmoothing: eps }) {
    const x = logits.buf, tg = targets.buf, c = logits.shape[logits.shape.length - 1];
    for (let r = 0, base = 0; r < tg.length; r++, base += c) {
      const t = target(tg[r], ignoreIndex, c, targets.shape, logits.shape);
      if (t < 0) {
        loss.buf[r] = lseOut.buf[r] = 0;
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
      lseOut.buf[r] = lse;
      const nll = lse - x[base + t];
      loss.buf[r] = eps === 0 ? nll : nll * (1 - eps) - eps * (sumX / c - lse);
    }
  },
  crossEntropyBackward([logits, targets, lse, g], [out], { ignoreIndex, labelSmoothing: eps }) {
    const x = logits.buf, tg = targets.buf, l = lse.buf, gr = g.buf, dx = out.buf;
    const c = logits.shape[logits.shape.length - 1], hit = 1 - eps, off = eps / c;
    for (let r = 0, base = 0; r < tg.length; r++, base += c) {
      const t = target(tg[r], ignoreIndex, c, targets.shape, logits.shape);
      if (t < 0) {
        dx.fill(0, base, base + c);
        continue;
      }
      const s = l[r], gg = gr[r];
      for (let j = 0; j < c; j++) dx[base + j] = (Math.exp(x[base + j] - s) - off) * gg;
      dx[base + t] = (Math.exp(x[base + t] - s) - hit - off) * gg;
    }
  },
};
