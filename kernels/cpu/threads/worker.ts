/**
 * The kernel Workers' side of the pool (`pool.ts`): imported by each Worker from this package's URL, so
 * it runs the very unit functions the calling thread runs ({@link UNITS}). A Worker never returns to its
 * event loop: it sleeps on the pool's doorbell, reads registrations from its port synchronously, and claims
 * units of every job that admits it — the pool's kernel jobs and the jobs of every WebAssembly matmul
 * instance lent to it (the same module instantiated here on that instance's shared memory).
 *
 * @module
 */
import { type MessagePort, receiveMessageOnPort } from "node:worker_threads";
import type { TypedArray } from "../../../core/dtype.ts";
import { SPIN_MS } from "./waiting.ts";
import { setTensorMemory } from "../wasm/heap.ts";
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
import { Ctl as MatmulCtl, UNIT_MASK as MATMUL_UNIT_MASK } from "../wasm/emit.ts";
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

/** A WebAssembly matmul instance this Worker helps (see "One set of Workers" in `pool.ts`). */
interface MatmulHost {
  /** The matmul job descriptor (`../wasm/emit.ts`, `Ctl`), as i32 words. */
  ctl: Int32Array;
  /** Byte address of the descriptor. */
  ctlPtr: number;
  /** This Worker's instance of the module, on the instance's shared memory. */
  drain: (ctl: number, until: number) => number;
}

/**
 * The Worker's loop (never returns): run any unit of a kernel job or of a lent matmul job that admits this
 * Worker; when there is none, spin on the pool's doorbell (rung whenever either kind of job opens), then sleep
 * on it.
 */
export function serve({ ctl: ctlBuffer, id, port }: WorkerData): void {
  const ctl = new Int32Array(ctlBuffer);
  const args = new Float64Array(ctlBuffer, ARGS_BYTE, MAX_ARGS);
  const buffers = new Map<number, SharedArrayBuffer>();
  /** The registered buffers that are (buffer objects of) the tensor heap's memory. */
  const heapBuffers = new WeakSet<ArrayBufferLike>();
  const kernels = new Map<number, { kind: string; desc: unknown }>();
  const hosts = new Map<number, MatmulHost>();
  const take = (): boolean => {
    const m = receiveMessageOnPort(port);
    if (!m) return false;
    const r = m.message as Registration;
    if (r.type === "buffer") {
      buffers.set(r.id, r.buffer);
      if (r.heap) heapBuffers.add(r.buffer);
    } else if (r.type === "heap") {
      // The tensor heap's memory (posted once, with this Worker's scratch): kernels run on arrays there in place.
      setTensorMemory({ memory: r.memory, owns: (buffer) => heapBuffers.has(buffer), scratch: r.scratch });
    } else if (r.type === "kernel") kernels.set(r.id, { kind: r.kind, desc: r.desc });
    else if (r.type === "matmul") {
      const instance = new WebAssembly.Instance(new WebAssembly.Module(r.bytes), { env: { memory: r.memory } });
      const drain = instance.exports.drain as MatmulHost["drain"];
      hosts.set(r.id, { ctl: new Int32Array(r.memory.buffer, r.ctlPtr, MatmulCtl.size / 4), ctlPtr: r.ctlPtr, drain });
    } else {
      buffers.delete(r.id);
      hosts.delete(r.id);
    }
    return true;
  };

  /** Runs units of the open kernel job if it admits this Worker; returns whether there was one. */
  const kernelJob = (): boolean => {
    const c = Atomics.load(ctl, Ctl.counter);
    if ((c & UNIT_MASK) >= ctl[Ctl.total] || id >= ctl[Ctl.workers]) return false;
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
    if (!still()) return true;
    const kernel = kernels.get(kernelId)!;
    const views = bufs.map(([b, offset, length, code]) => viewOf(DTYPE_CODES[code], buffers.get(b)!, offset, length));
    const unit = UNITS[kernel.kind];
    const error = claimUnits(ctl, c, (u) => unit(kernel.desc, views, jobArgs, u));
    if (error !== undefined) console.error(`moegrad ${kernel.kind} worker:`, error);
    return true;
  };

  /** Runs units of an open matmul job that admits this Worker; returns whether there was one. */
  const matmulJob = (): boolean => {
    for (const h of hosts.values()) {
      const w = Atomics.load(h.ctl, MatmulCtl.counter / 4);
      if ((w & MATMUL_UNIT_MASK) >= h.ctl[MatmulCtl.total / 4] || id >= h.ctl[MatmulCtl.workers / 4]) continue;
      try {
        Atomics.add(h.ctl, MatmulCtl.workerUnits / 4, h.drain(h.ctlPtr, -1));
      } catch (e) {
        Atomics.store(h.ctl, MatmulCtl.failed / 4, 1);
        console.error("moegrad matmul worker:", e);
      }
      Atomics.notify(h.ctl, MatmulCtl.done / 4);
      return true;
    }
    return false;
  };

  const pause = Atomics.pause ?? (() => {});
  for (;;) {
    // Read the doorbell before looking for work: a job that opens after this read rings it again.
    const bell = Atomics.load(ctl, Ctl.doorbell);
    const t0 = performance.now();
    if (kernelJob() || matmulJob()) {
      Atomics.add(ctl, Ctl.busy, Math.round((performance.now() - t0) * 1000));
      continue;
    }
    // Spin a while for the next job before sleeping (see SPIN_MS).
    while (take());
    const end = performance.now() + SPIN_MS;
    for (let n = 1; Atomics.load(ctl, Ctl.doorbell) === bell; n++) {
      if ((n & 63) === 0 && performance.now() > end) {
        Atomics.add(ctl, Ctl.sleeps, 1);
        Atomics.wait(ctl, Ctl.doorbell, bell);
        break;
      }
      pause();
    }
  }
}
