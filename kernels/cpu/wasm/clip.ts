/**
 * The two array passes of gradient clipping in WebAssembly 128-bit SIMD, emitted at run time by our
 * assembler: the first reduction of `g.square().sum()` (column sums of the f32 squares in double
 * precision) and the in-place scaling `g ← g·s`. Each lane does the same IEEE operations as the scalar
 * code in `../sum_squares.ts` (`f32x4.mul`, an exact `f64x2.promote_low_f32x4`, `f64x2.add`), in the same
 * order per column, so the results are bit-identical to it.
 *
 * A gradient that lives in the tensor heap (`heap.ts`) is read where it is, by a second instance of the
 * module on that memory, its column sums made block by block in the thread's scratch there and copied out
 * for the JavaScript stages that follow (one pass over the gradient, no copy of it); there `sumsq2` also
 * fuses the second reduction into that pass, so what is copied out is a row of sums, not a plane. Elsewhere, as for the
 * Adam module, the data is copied through a fixed chunk region at the start of the module's own memory; the
 * column sums live after it, since the JavaScript stages that follow read them there. That memory grows only
 * when a gradient has longer rows than any before (then the views are re-made), so steady-state calls
 * allocate nothing.
 *
 * @module
 */
import { ModuleBuilder, ValType } from "./assembler.ts";
import { lazyWasmInstance } from "./lazy.ts";
import {
  currentTensorMemory,
  instanceOnMemory,
  SCRATCH_BYTES,
  TENSOR_MEMORY_IMPORT,
  type TensorMemory,
} from "./heap.ts";

/**
 * Floats per chunk of the in-place scaling: 16 KiB, so a chunk stays in L1 between its copy in, the SIMD loop and
 * its copy out (the sums of squares use {@link SUMSQ_BLOCK}).
 */
export const CLIP_CHUNK = 4096;

/**
 * Floats of gradient one `sumsq` call sums (128 KiB, in L2): several rows of a column block per call, each
 * row's part still kilobytes long, so the `TypedArray.set` calls that copy them in stay few (measured on
 * [8, 256, 1024] gradients: with 4096-float blocks, 512 floats a row, the JavaScript side of the calls took 4×
 * the SIMD loop's time and the whole sum was no faster than with the sums loaded and stored per row).
 */
export const SUMSQ_BLOCK = 2 ** 15;

const PAGE = 65536;
/** The chunk region, with 4 floats of slack for a row's last vector to read past its end. */
const CHUNK_BYTES = (Math.max(CLIP_CHUNK, SUMSQ_BLOCK) + 4) * 4;
/** The column sums start here (16-byte aligned). */
const ACC = Math.ceil(CHUNK_BYTES / 16) * 16;
/** 1 GiB: a non-shared memory reserves only what it has grown to. */
const MAX_PAGES = 16384;

/**
 * Emits the module: an exported growable memory (with `sharedMemory`: an imported shared one, the tensor
 * heap's) and
 * - `scale(at, end, s)`: the f32 values at byte addresses [at, at + end) times the f32 `s` (end a multiple
 *   of 16);
 * - `sumsq(src, acc, rows, rowBytes, colBytes)`: for each group of four columns below `colBytes` of the f32
 *   matrix at byte src (rows `rowBytes` apart), adds the squares of its `rows` rows, widened to f64, to the
 *   four f64 column sums at byte `acc` — rows in order, so each column is summed as the scalar loop sums it.
 *   Columns outside, rows inside: a group's four sums stay in registers over all the rows, loaded and stored
 *   once per call instead of once per row (measured with {@link SUMSQ_BLOCK}: the sums of squares of the
 *   benchmark step's gradients, 17.8M elements, took 17.1 ms on one thread against 19.8 with rows outside).
 */
export function emitClipModule(sharedMemory = false): Uint8Array<ArrayBuffer> {
  const mod = new ModuleBuilder().setMemory(
    sharedMemory ? TENSOR_MEMORY_IMPORT : { kind: "export", name: "memory", initialPages: 1, maxPages: MAX_PAGES },
  );
  const { i32, f32, v128 } = ValType;

  const sc = mod.addFunction("scale", [i32, i32, f32]);
  {
    const at = 0, end = 1, a = sc.local(i32), s = sc.local(v128);
    sc.get(2).f32x4Splat().set(s);
    sc.get(end).get(at).i32Add().set(end);
    sc.get(at).set(a);
    sc.block(() => {
      sc.get(a).get(end).i32GeU().brIf(0);
      sc.loop(() => {
        sc.get(a).get(a).v128Load(0).get(s).f32x4Mul().v128Store(0);
        sc.get(a).i32Const(16).i32Add().tee(a).get(end).i32LtU().brIf(0);
      });
    });
  }

  const ss = mod.addFunction("sumsq", [i32, i32, i32, i32, i32]);
  {
    const src = 0, acc = 1, rows = 2, rowBytes = 3, colBytes = 4;
    const r = ss.local(i32), at = ss.local(i32), j = ss.local(i32), x = ss.local(v128);
    const lo = ss.local(v128), hi = ss.local(v128);
    /** sum += f64(square of the two f32 at byte at + src). */
    const half = (src: number, sum: number) => {
      ss.get(sum).get(at).v128Load64Zero(src).tee(x).get(x).f32x4Mul().f64x2PromoteLowF32x4().f64x2Add().set(sum);
    };
    ss.i32Const(0).set(j);
    ss.block(() => {
      ss.get(j).get(colBytes).i32GeU().brIf(0);
      ss.get(rows).i32Eqz().brIf(0);
      ss.loop(() => {
        // The group's column sums, into registers; every row of the group, in order; back to memory.
        ss.get(acc).v128Load(0).set(lo);
        ss.get(acc).v128Load(16).set(hi);
        ss.get(src).get(j).i32Add().set(at);
        ss.i32Const(0).set(r);
        ss.loop(() => {
          half(0, lo);
          half(8, hi);
          ss.get(at).get(rowBytes).i32Add().set(at);
          ss.get(r).i32Const(1).i32Add().tee(r).get(rows).i32LtU().brIf(0);
        });
        ss.get(acc).get(lo).v128Store(0);
        ss.get(acc).get(hi).v128Store(16);
        ss.get(acc).i32Const(32).i32Add().set(acc);
        ss.get(j).i32Const(16).i32Add().tee(j).get(colBytes).i32LtU().brIf(0);
      });
    });
  }
  emitLeadingSums(mod);
  return mod.encode();
}

/** Columns of a `sumsq2` group: 16 (64 bytes, a cache line), eight f64x2 sums side by side. */
const WIDE_GROUP_BYTES = 64;

/**
 * `sumsq2(src, acc, planes, planeBytes, rows, rowBytes, colBytes)`: the first two reductions of Σ g² over
 * the f32 array at byte `src` viewed as [planes, rows, columns] (planes `planeBytes` apart, rows `rowBytes`
 * apart; only the columns below `colBytes`, a multiple of 16): for each row r in order and each column k,
 * s = Σ_p f64(f32(g[p, r, k]²)) over the planes in order, rounded to f32, then acc[k] += s (f64 at byte acc
 * + 8k). That is axis 0's reduction of `sum()` fused with axis 1's, the [rows, columns] plane of axis 0's
 * f32 results never stored: each value is made, rounded and added to its column's sum as the two
 * reductions would, rows in order. With `rows` = 1 it is axis 0's reduction alone (acc zeroed: 0 + s = s,
 * since s ≥ +0 or NaN).
 *
 * Sixteen columns at a time, eight independent f64x2 sums over the planes (the sums were four columns at
 * a time, two chains of dependent adds, latency-bound at ≈ 10 GB/s), then four at a time for the rest.
 */
function emitLeadingSums(mod: ModuleBuilder): void {
  const { i32, v128 } = ValType;
  const fn = mod.addFunction("sumsq2", [i32, i32, i32, i32, i32, i32, i32]);
  const src = 0, acc = 1, planes = 2, planeBytes = 3, rows = 4, rowBytes = 5, colBytes = 6;
  const r = fn.local(i32), rowAt = fn.local(i32), c = fn.local(i32), at = fn.local(i32), p = fn.local(i32);
  const x = fn.local(v128), zero = fn.local(v128);
  const sums = Array.from({ length: WIDE_GROUP_BYTES / 8 }, () => fn.local(v128));
  fn.v128Zero().set(zero);
  /** Sums over the planes of the columns [c, c + 8·count) of the row at rowAt, then into acc, rounded. */
  const group = (count: number) => {
    for (let k = 0; k < count; k++) fn.get(zero).set(sums[k]);
    fn.get(rowAt).get(c).i32Add().set(at);
    fn.i32Const(0).set(p);
    fn.loop(() => {
      fn.interleaved(
        sums.slice(0, count).map((sum, k) => () => {
          fn.get(sum).get(at).v128Load64Zero(8 * k).tee(x).get(x).f32x4Mul().f64x2PromoteLowF32x4().f64x2Add()
            .set(sum);
        }),
      );
      fn.get(at).get(planeBytes).i32Add().set(at);
      fn.get(p).i32Const(1).i32Add().tee(p).get(planes).i32LtU().brIf(0);
    });
    for (let k = 0; k < count; k++) {
      // acc + 2c is column c/4's f64; rounding to f32 and back is the stored f32 of axis 0's reduction.
      fn.get(acc).get(c).i32Const(1).i32Shl().i32Add().tee(at);
      fn.get(at).v128Load(16 * k).get(sums[k]).simdOp("f32x4.demote_f64x2_zero").f64x2PromoteLowF32x4()
        .f64x2Add().v128Store(16 * k);
    }
  };
  fn.block(() => {
    fn.get(rows).i32Eqz().brIf(0);
    fn.get(planes).i32Eqz().brIf(0);
    fn.get(src).set(rowAt);
    fn.i32Const(0).set(r);
    fn.loop(() => {
      fn.i32Const(0).set(c);
      fn.block(() => {
        fn.loop(() => {
          fn.get(c).i32Const(WIDE_GROUP_BYTES).i32Add().get(colBytes).i32GtU().brIf(1);
          group(WIDE_GROUP_BYTES / 8);
          fn.get(c).i32Const(WIDE_GROUP_BYTES).i32Add().set(c);
          fn.br(0);
        });
      });
      fn.block(() => {
        fn.loop(() => {
          fn.get(c).get(colBytes).i32GeU().brIf(1);
          group(2);
          fn.get(c).i32Const(16).i32Add().set(c);
          fn.br(0);
        });
      });
      fn.get(rowAt).get(rowBytes).i32Add().set(rowAt);
      fn.get(r).i32Const(1).i32Add().tee(r).get(rows).i32LtU().brIf(0);
    });
  });
}

/** An instance of the clipping module (see the module docs). */
export interface WasmClip {
  /**
   * The column sums of the f32 squares of `g` viewed as `rows` × `inner` (row-major): acc[j] = Σᵢ g[i·inner
   * + j]², each square rounded to f32, summed in double in row order from 0. The returned view (length
   * `inner`) lives in the module's memory and is valid until the next call; callers may overwrite it.
   */
  columnSumsOfSquares(g: Float32Array, rows: number, inner: number): Float64Array;
  /**
   * The first two reductions of Σ g² over `g` viewed as [planes, rows, cols], fused, for a `g` in the tensor
   * memory with `cols` a multiple of 4 (else null: use {@link columnSumsOfSquares}): acc[k] = Σ_r f32(Σ_p
   * g[p, r, k]²), each square rounded to f32, both sums in double in index order from 0 (see `sumsq2` in
   * the module docs). `rows` = 1 gives axis 0's reduction alone, already rounded to f32. The returned view
   * (length `cols`) is reused by the next call; callers may overwrite it.
   */
  leadingSumsOfSquares(g: Float32Array, planes: number, rows: number, cols: number): Float64Array | null;
  /** g[i] ← f32(g[i]·s) for i < n, in place (`s` an f32 value). */
  scale(g: Float32Array, n: number, s: number): void;
}

/**
 * Instantiates the module. `block` (floats summed per `sumsq` call, a positive multiple of 4 up to
 * {@link SUMSQ_BLOCK}) is for tests, which reach the paths of long rows and many rows with small arrays.
 */
export function createWasmClip(block: number = SUMSQ_BLOCK): WasmClip {
  if (!(block >= 4 && block <= SUMSQ_BLOCK && block % 4 === 0)) {
    throw new RangeError(`createWasmClip: block must be a multiple of 4 in [4, ${SUMSQ_BLOCK}], got ${block}`);
  }
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(emitClipModule()), {});
  const memory = exports.memory as WebAssembly.Memory;
  const scaleFn = exports.scale as ScaleFn, sumsq = exports.sumsq as SumsqFn;
  let f32 = new Float32Array(memory.buffer), f64 = new Float64Array(memory.buffer);
  let chunk = f32.subarray(0, CLIP_CHUNK);

  function ensure(bytes: number): void {
    const have = memory.buffer.byteLength;
    if (bytes <= have) return;
    memory.grow(Math.ceil((bytes - have) / PAGE)); // detaches the old views: make new ones
    f32 = new Float32Array(memory.buffer);
    f64 = new Float64Array(memory.buffer);
    chunk = f32.subarray(0, CLIP_CHUNK);
  }

  function columnSumsOfSquares(g: Float32Array, rows: number, inner: number): Float64Array {
    const resident = inPlaceColumnSums(g, rows, inner);
    if (resident) return resident;
    const inner4 = Math.ceil(inner / 4) * 4;
    ensure(ACC + inner4 * 8);
    const acc = f64.subarray(ACC / 8, ACC / 8 + inner);
    f64.fill(0, ACC / 8, ACC / 8 + inner4);
    if (inner <= block) {
      // Whole rows per call; a row's last vector may read into the next row, into lanes past `inner`.
      const per = Math.floor(block / inner), n = rows * inner;
      for (let r0 = 0; r0 < rows; r0 += per) {
        const rs = Math.min(per, rows - r0);
        f32.set(g.subarray(r0 * inner, Math.min(n, (r0 + rs) * inner)), 0);
        sumsq(0, ACC, rs, inner * 4, inner4 * 4);
      }
    } else {
      // Rows longer than a block: one block of `width` columns at a time, as many of its rows per call as fit
      // (all of them for a short, wide gradient such as an [8, 256·1024] expert weight), rows in order.
      // Block-major, so the block's f64 sums stay in cache (registers, within a call) over the rows:
      // row-major would load and store the whole sum array (8 bytes a column, e.g. 2 MiB for that weight,
      // beyond L2) once per row. Each column is still summed over the rows in order: the bits are unchanged.
      const width = Math.max(4, Math.floor(block / rows / 4) * 4), per = Math.floor(block / width);
      for (let j0 = 0; j0 < inner; j0 += width) {
        // In the last block a row's last vector may read past `len`: stale floats of the row's place in the
        // chunk, summed into lanes past `inner`.
        const len = Math.min(width, inner - j0);
        for (let r0 = 0; r0 < rows; r0 += per) {
          const rs = Math.min(per, rows - r0);
          for (let r = 0; r < rs; r++) {
            const base = (r0 + r) * inner + j0;
            f32.set(g.subarray(base, base + len), r * width);
          }
          sumsq(0, ACC + j0 * 8, rs, width * 4, Math.ceil(len / 4) * 16);
        }
      }
    }
    return acc;
  }

  function scale(g: Float32Array, n: number, s: number): void {
    if (inPlaceScale(g, n, s)) return;
    for (let off = 0; off < n; off += CLIP_CHUNK) {
      const len = Math.min(CLIP_CHUNK, n - off);
      f32.set(g.subarray(off, off + len), 0);
      scaleFn(0, Math.ceil(len / 4) * 16, s);
      g.set(len === CLIP_CHUNK ? chunk : chunk.subarray(0, len), off);
    }
  }
  return { columnSumsOfSquares, leadingSumsOfSquares: inPlaceLeadingSums, scale };
}

type ScaleFn = (at: number, end: number, s: number) => void;
type SumsqFn = (src: number, acc: number, rows: number, rowBytes: number, colBytes: number) => void;
type Sumsq2Fn = (
  src: number,
  acc: number,
  planes: number,
  planeBytes: number,
  rows: number,
  rowBytes: number,
  colBytes: number,
) => void;

/** The clipping module on a tensor memory. */
const inPlaceClip = instanceOnMemory(() => emitClipModule(true));

/** The module on this thread's tensor memory if `g` lives there, else null. */
function inPlaceFor(g: Float32Array): { tm: TensorMemory; scale: ScaleFn; sumsq: SumsqFn; sumsq2: Sumsq2Fn } | null {
  const tm = currentTensorMemory();
  const exports = tm && tm.owns(g.buffer) ? inPlaceClip(tm.memory) : null;
  return exports
    ? {
      tm: tm!,
      scale: exports.scale as ScaleFn,
      sumsq: exports.sumsq as SumsqFn,
      sumsq2: exports.sumsq2 as Sumsq2Fn,
    }
    : null;
}

/** Column sums of a gradient in the tensor memory (returned in a reused array), or null when it is not there. */
function inPlaceColumnSums(g: Float32Array, rows: number, inner: number): Float64Array | null {
  // Rows of whole vectors only: a group's last vector must not read past the array.
  const mod = inner % 4 === 0 ? inPlaceFor(g) : null;
  // Every row of a block in order: each column is summed as the chunked path sums it.
  return mod && sumsInScratch(mod.tm, inner, (j0, len) => {
    mod.sumsq(g.byteOffset + 4 * j0, mod.tm.scratch, rows, 4 * inner, 4 * len);
  });
}

/** See {@link WasmClip.leadingSumsOfSquares}. */
function inPlaceLeadingSums(g: Float32Array, planes: number, rows: number, cols: number): Float64Array | null {
  const mod = cols % 4 === 0 ? inPlaceFor(g) : null;
  return mod && sumsInScratch(mod.tm, cols, (j0, len) => {
    mod.sumsq2(g.byteOffset + 4 * j0, mod.tm.scratch, planes, 4 * rows * cols, rows, 4 * cols, 4 * len);
  });
}

/** The sums out of the scratch, reused by the next call. */
let sumsOut = new Float64Array(0);

/**
 * `cols` sums made in blocks of columns that fit the thread's scratch: each block's sums zeroed there,
 * `sumBlock(j0, len)` adding into them for columns [j0, j0 + len), then copied out.
 */
function sumsInScratch(tm: TensorMemory, cols: number, sumBlock: (j0: number, len: number) => void): Float64Array {
  const width = SCRATCH_BYTES / 8;
  if (sumsOut.length < cols) sumsOut = new Float64Array(cols);
  const sums = new Float64Array(tm.memory.buffer, tm.scratch, width);
  for (let j0 = 0; j0 < cols; j0 += width) {
    const len = Math.min(width, cols - j0);
    sums.fill(0, 0, len);
    sumBlock(j0, len);
    sumsOut.set(len === width ? sums : sums.subarray(0, len), j0);
  }
  return sumsOut.subarray(0, cols);
}

/** g ← g·s in place where g lives in the tensor memory (whole vectors there, the tail here); false if not. */
function inPlaceScale(g: Float32Array, n: number, s: number): boolean {
  const mod = inPlaceFor(g);
  if (!mod) return false;
  const whole = n - n % 4;
  if (whole > 0) mod.scale(g.byteOffset, 4 * whole, s);
  for (let i = whole; i < n; i++) g[i] = g[i] * s; // the f32 store rounds the exact double product
  return true;
}

/** The shared instance, created on first use; undefined where WebAssembly or its SIMD proposal is missing. */
export const sharedWasmClip: () => WasmClip | undefined = lazyWasmInstance(
  () => emitClipModule(),
  () => createWasmClip(),
);
