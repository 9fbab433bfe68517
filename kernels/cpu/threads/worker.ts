/**
 * The kernel Workers' side of the pool (`pool.ts`): imported by each Worker from this package's URL, so
 * it runs the very unit functions the calling thread runs ({@link UNITS}). A Worker never returns to its
 * event loop: it sleeps on the job counter, reads registrations from its port synchronously, and claims
 * units of every job that admits it.
 *
 * @module
 */
import { type MessagePort, receiveMessageOnPort } from "node:worker_threads";
import type { TypedArray } from "../../../core/dtype.ts";
import { SPIN_MS } from "../wasm/threads.ts";
import { elementwiseUnit } from "../expr_run.ts";
import { adamUnit } from "../adam.ts";
import { softmaxUnit, sumUnit } from "../reduce.ts";
import { scaleUnit, sumSquaresUnit } from "../sum_squares.ts";
import { layerNormBackwardUnit, layerNormUnit } from "../layer_norm.ts";
import { crossEntropyUnit } from "../cross_entropy.ts";
import { maskedSoftmaxUnit } from "../masked_softmax.ts";
import { rotaryUnit } from "../rotary.ts";
import { stridedUnit } from "../layout.ts";
import { ARGS_BYTE, claimUnits, Ctl, DTYPE_CODES, GEN_SHIFT, MAX_ARGS, UNIT_MASK, viewOf } from "./layout.ts";
import type { Registration } from "./pool.ts";

/** The unit function of every kind of job (the calling thread passes the same function for its units). */
// deno-lint-ignore no-explicit-any
export const UNITS: Record<
  string,
  (desc: any, views: readonly TypedArray[], args: ArrayLike<number>, unit: number) => void
> = {
  elementwise: elementwiseUnit,
  adam: adamUnit,
  softmax: softmaxUnit,
  sum: sumUnit,
  scale: scaleUnit,
  sumSquares: sumSquaresUnit,
  layerNorm: layerNormUnit,
  layerNormBackward: layerNormBackwardUnit,
  crossEntropy: crossEntropyUnit,
  maskedSoftmax: maskedSoftmaxUnit,
  rotary: rotaryUnit,
  strided: stridedUnit,
};

/** What the pool passes a Worker in `workerData`. */
export interface WorkerData {
  url: string;
  ctl: SharedArrayBuffer;
  id: number;
  port: MessagePort;
}

/** The Worker's loop (never returns). */
export function serve({ ctl: ctlBuffer, id, port }: WorkerData): void {
  const ctl = new Int32Array(ctlBuffer);
  const args = new Float64Array(ctlBuffer, ARGS_BYTE, MAX_ARGS);
  const buffers = new Map<number, SharedArrayBuffer>();
  const kernels = new Map<number, { kind: string; desc: unknown }>();
  const take = (): boolean => {
    const m = receiveMessageOnPort(port);
    if (!m) return false;
    const r = m.message as Registration;
    if (r.type === "buffer") buffers.set(r.id, r.buffer);
    else if (r.type === "kernel") kernels.set(r.id, { kind: r.kind, desc: r.desc });
    else buffers.delete(r.id);
    return true;
  };
  const pause = Atomics.pause ?? (() => {});
  for (;;) {
    const c = Atomics.load(ctl, Ctl.counter);
    if ((c & UNIT_MASK) >= ctl[Ctl.total] || id >= ctl[Ctl.workers]) {
      // Spin a while for the next job before sleeping (see SPIN_MS in the matmul pool).
      while (take());
      const end = performance.now() + SPIN_MS;
      for (let n = 1; Atomics.load(ctl, Ctl.counter) === c; n++) {
        if ((n & 63) === 0 && performance.now() > end) {
          Atomics.wait(ctl, Ctl.counter, c);
          break;
        }
        pause();
      }
      continue;
    }
    // Read the whole descriptor, then check that the job is still this one: the pool closes the counter
    // (a new generation) before it rewrites the descriptor, so fields read before a passing check belong
    // together. (Reading the offsets after the check could pair one job's buffer with the next job's
    // offset and length, and the view would throw.) Registrations the descriptor names were posted before
    // the job opened, but may still be in flight: wait for them while the job is still this one.
    const still = () => Atomics.load(ctl, Ctl.counter) >>> GEN_SHIFT === c >>> GEN_SHIFT;
    const kernelId = ctl[Ctl.kernel], nbufs = ctl[Ctl.nbufs];
    const bufs = Array.from({ length: nbufs }, (_, i) => ctl.slice(Ctl.bufs + 4 * i, Ctl.bufs + 4 * i + 4));
    const jobArgs = args.slice(0, ctl[Ctl.nargs]);
    while (still() && (!kernels.has(kernelId) || bufs.some(([b]) => !buffers.has(b)))) if (!take()) pause();
    if (!still()) continue;
    const kernel = kernels.get(kernelId)!;
    const views = bufs.map(([b, offset, length, code]) => viewOf(DTYPE_CODES[code], buffers.get(b)!, offset, length));
    const unit = UNITS[kernel.kind];
    const error = claimUnits(ctl, c, (u) => unit(kernel.desc, views, jobArgs, u));
    if (error !== undefined) console.error(`moegrad ${kernel.kind} worker:`, error);
  }
}
