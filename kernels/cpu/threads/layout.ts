/**
 * The job descriptor the calling thread and the kernel Workers share (`pool.ts`, `worker.ts`), and the
 * claiming loop both run.
 *
 * The descriptor is one `SharedArrayBuffer`: an Int32 header, then the job's numeric arguments as f64.
 * Every field is written while the job counter is closed, and the counter is then opened with an atomic
 * store, so a thread that claims a unit by compare-and-swap on the counter has read a complete descriptor.
 *
 * @module
 */
import type { DType, TypedArray } from "../../../core/dtype.ts";

/**
 * Integer argument `args[i]` of a unit, as a small integer. Arguments arrive as doubles (a Float64Array in
 * the Workers, and on the calling thread a `number[]` that also holds non-integers, which V8 stores as
 * doubles), and a loop whose bounds or offsets are doubles runs far slower, and de-optimises a kernel
 * compiled for the small integers of its one-thread calls (measured: a layer norm split over two threads
 * took 2× the time of one thread). Every integer argument is below 2^31.
 */
export function intArg(args: ArrayLike<number>, i: number): number {
  return args[i] | 0;
}

/** Int32 indices of the header. */
export const Ctl = {
  /** generation << GEN_SHIFT | next unclaimed unit (UNIT_MASK: closed). */
  counter: 0,
  /** Units of the job. */
  total: 1,
  /** Units finished (by any thread, failed or not). */
  done: 2,
  /** Workers with an id below this may join. */
  workers: 3,
  /** Set when a unit threw. */
  failed: 4,
  /** Registered kernel id. */
  kernel: 5,
  /** Buffers of the job. */
  nbufs: 6,
  /** Numeric arguments of the job. */
  nargs: 7,
  /** Set by a Worker that could not load the kernels (so the pool stops using Workers). */
  broken: 8,
  /** Workers that have loaded the kernels (nothing is posted to the Workers before one has). */
  ready: 9,
  /**
   * Rung (incremented, then notified) whenever a job that Workers may join opens — a kernel job or a lent
   * matmul's job — after its counter is open; idle Workers spin on it, then sleep on it.
   */
  doorbell: 10,
  /** Times a Worker fell asleep on the doorbell (statistics). */
  sleeps: 11,
  /** Microseconds Workers spent in jobs, wrapping (statistics). */
  busy: 12,
  /** Buffer i: id, byte offset, length, dtype code at BUFS + 4i. */
  bufs: 16,
} as const;

/**
 * Most buffers one job passes: enough for the Adam update of eight parameters (p, g, m, v each) or the
 * sums of squares of 31 gradients as one job, so a training step's optimizer wakes the Workers a few times
 * rather than once per parameter.
 */
export const MAX_BUFS = 32;
/** Byte offset of the f64 arguments (right after the buffers' fields). */
export const ARGS_BYTE = 4 * (Ctl.bufs + 4 * MAX_BUFS);
/** Most numeric arguments one job passes. */
export const MAX_ARGS = 480;
/** Bytes of the descriptor. */
export const CTL_BYTES = ARGS_BYTE + 8 * MAX_ARGS;

/** Bits of the counter holding the unit; the rest hold the generation. */
export const GEN_SHIFT = 20;
/** Unit field of a closed counter (above every total). */
export const UNIT_MASK = (1 << GEN_SHIFT) - 1;

/** Dtype codes of the descriptor. */
export const DTYPE_CODES: readonly DType[] = ["f32", "f64", "i32", "bool"];

/** A view of `length` elements of `dtype` at byte `offset` of `buffer`. */
export function viewOf(dtype: DType, buffer: ArrayBufferLike, offset: number, length: number): TypedArray {
  switch (dtype) {
    case "f32":
      return new Float32Array(buffer, offset, length);
    case "f64":
      return new Float64Array(buffer, offset, length);
    case "i32":
      return new Int32Array(buffer, offset, length);
    case "bool":
      return new Uint8Array(buffer, offset, length);
  }
}

/**
 * A unit of a parallel kernel: `views` are the job's buffers, `args` its numbers; runs unit `unit` (a
 * disjoint part of the outputs, the same code on every thread, so the thread count never changes a bit).
 */
export type UnitFn = (desc: never, views: readonly TypedArray[], args: ArrayLike<number>, unit: number) => void;

/**
 * Claims and runs units of the job opened with counter value `opened` until none is left or the job
 * changed; counts each unit done (even one that threw, after setting `failed`), and wakes the calling
 * thread when the last one finishes. Returns the first error a unit threw, if any.
 */
export function claimUnits(ctl: Int32Array, opened: number, run: (unit: number) => void): unknown {
  const gen = opened >>> GEN_SHIFT, total = ctl[Ctl.total];
  let error: unknown;
  for (;;) {
    const c = Atomics.load(ctl, Ctl.counter);
    const unit = c & UNIT_MASK;
    if (c >>> GEN_SHIFT !== gen || unit >= total) return error;
    if (Atomics.compareExchange(ctl, Ctl.counter, c, c + 1) !== c) continue;
    try {
      run(unit);
    } catch (e) {
      error ??= e;
      Atomics.store(ctl, Ctl.failed, 1);
    }
    if (Atomics.add(ctl, Ctl.done, 1) + 1 === total) Atomics.notify(ctl, Ctl.done);
  }
}
