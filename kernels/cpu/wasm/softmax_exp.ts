/**
 * The exponentials of the f32 fast softmax (`../fast_softmax.ts`) on WebAssembly f64x2 lanes: for each row
 * of a block, e_i = fastExp(x_i − m) in double, with m the row's maximum — bit-identical to the JavaScript
 * loop, which calls `fastExp` (`../fast_math.ts`) on the same differences (see `transcendental.ts`). The
 * sums and the normalisation stay in JavaScript, shared by both paths, so the summation order is the
 * reference's.
 *
 * The module owns its memory: the tables of `transcendental.ts` at 0, then the row block (f32), the
 * exponentials (f64) and the row maxima (f64); it grows for rows longer than any before.
 *
 * @module
 */
import { ModuleBuilder, ValType } from "./assembler.ts";
import { lazyWasmInstance } from "./lazy.ts";
import { emitExp, hoistConstants, TABLE_BYTES, writeTables } from "./transcendental.ts";

/** Elements per block of rows (a longer row is a block of its own). */
export const SOFTMAX_CHUNK = 4096;
/** Pairs of elements per inner iteration: the exponentials of several pairs overlap their latencies. */
const PAIRS = 4;
const PAGE = 65536;

/**
 * Emits the module: an exported growable memory and `exps(rows, n, x, e, max)`: for r < rows and i < n
 * (rounded up to a multiple of 2·PAIRS), the f64 at `e + 8(r·n + i)` becomes fastExp(f32 at `x + 4(r·n + i)`
 * − f64 at `max + 8r`). Rows are written in order, so the slots a row's last iteration spills into the next
 * row (up to 2·PAIRS − 1) are overwritten there; the last row spills as many past the block.
 */
export function emitSoftmaxExpModule(): Uint8Array<ArrayBuffer> {
  const mod = new ModuleBuilder().setMemory({ kind: "export", name: "memory", initialPages: 1, maxPages: 16384 });
  const { i32, v128 } = ValType;
  const f = mod.addFunction("exps", [i32, i32, i32, i32, i32]);
  const rows = 0, n = 1, x = 2, e = 3, max = 4;
  const r = f.local(i32), px = f.local(i32), pe = f.local(i32), end = f.local(i32), m = f.local(v128);
  const consts = hoistConstants(f, { exp: true, erf: false });
  f.i32Const(0).set(r);
  f.block(() => {
    f.get(r).get(rows).i32GeU().brIf(0);
    f.loop(() => {
      f.get(max).get(r).i32Const(8).i32Mul().i32Add().simdLoad("v128.load64_splat").set(m);
      f.get(x).get(r).get(n).i32Mul().i32Const(4).i32Mul().i32Add().tee(px);
      f.get(n).i32Const(4).i32Mul().i32Add().set(end);
      f.get(e).get(r).get(n).i32Mul().i32Const(8).i32Mul().i32Add().set(pe);
      f.block(() => {
        f.get(px).get(end).i32GeU().brIf(0);
        f.loop(() => {
          // PAIRS pairs per iteration, their exponentials interleaved (see F64X2_UNROLL in elementwise_f64.ts).
          f.interleaved(Array.from({ length: PAIRS }, (_, u) => () => {
            const v = f.local(v128);
            f.get(px).simdLoad("v128.load64_zero", 8 * u).simdOp("f64x2.promote_low_f32x4").get(m).simdOp("f64x2.sub")
              .set(v);
            const ex = emitExp(f, v, consts);
            f.get(pe).get(ex).v128Store(16 * u, 3);
          }));
          f.get(pe).i32Const(16 * PAIRS).i32Add().set(pe);
          f.get(px).i32Const(8 * PAIRS).i32Add().tee(px).get(end).i32LtU().brIf(0);
        });
      });
      f.get(r).i32Const(1).i32Add().tee(r).get(rows).i32LtU().brIf(0);
    });
  });
  return mod.encode();
}

/** A block of rows: copy them in, set their maxima, run, read the exponentials. */
export interface WasmSoftmaxExp {
  /**
   * Computes fastExp(x − max[r]) for `rows` rows of `n` values of `src` from `from`; returns the f64 view
   * holding them (row r at `r·n`). `rows · n` must not exceed `max(SOFTMAX_CHUNK, n)`.
   */
  exps(src: Float32Array, from: number, rows: number, n: number, max: Float64Array): Float64Array;
}

function createSoftmaxExp(): WasmSoftmaxExp {
  const instance = new WebAssembly.Instance(new WebAssembly.Module(emitSoftmaxExpModule()), {});
  const memory = instance.exports.memory as WebAssembly.Memory;
  const run = instance.exports.exps as (rows: number, n: number, x: number, e: number, max: number) => void;
  let capacity = 0, xAt = 0, eAt = 0, maxAt = 0;
  let f32: Float32Array = new Float32Array(0), f64: Float64Array = new Float64Array(0);
  const layout = (elements: number) => {
    // Tables, then x (f32), e (f64) and the maxima (f64), each with an iteration's slack, 16-byte aligned.
    const slack = 2 * PAIRS, align = (b: number) => Math.ceil(b / 16) * 16;
    xAt = TABLE_BYTES;
    eAt = align(xAt + (elements + slack) * 4);
    maxAt = align(eAt + (elements + slack) * 8);
    const need = maxAt + elements * 8;
    if (need > memory.buffer.byteLength) memory.grow(Math.ceil((need - memory.buffer.byteLength) / PAGE));
    f32 = new Float32Array(memory.buffer);
    f64 = new Float64Array(memory.buffer);
    capacity = elements;
  };
  writeTables(memory);
  layout(SOFTMAX_CHUNK);
  return {
    exps(src, from, rows, n, max) {
      const count = rows * n;
      if (count > capacity) layout(count);
      f32.set(src.subarray(from, from + count), xAt >> 2);
      f64.set(max.subarray(0, rows), maxAt >> 3);
      run(rows, n, xAt, eAt, maxAt);
      return f64.subarray(eAt >> 3, (eAt >> 3) + count);
    },
  };
}

/** The shared instance, created on first use; undefined where WebAssembly or its SIMD proposal is missing. */
export const sharedWasmSoftmaxExp: () => WasmSoftmaxExp | undefined = lazyWasmInstance(
  () => emitSoftmaxExpModule(),
  () => createSoftmaxExp(),
);
