/**
 * The two array passes of gradient clipping in WebAssembly 128-bit SIMD, emitted at run time by our
 * assembler: the first reduction of `g.square().sum()` (column sums of the f32 squares in double
 * precision) and the in-place scaling `g ← g·s`. Each lane does the same IEEE operations as the scalar
 * code in `../sum_squares.ts` (`f32x4.mul`, an exact `f64x2.promote_low_f32x4`, `f64x2.add`), in the same
 * order per column, so the results are bit-identical to it.
 *
 * As for the Adam module (see `adam.ts` for why), the data is copied through a fixed chunk region at the
 * start of the module's own memory; the column sums live after it, since the JavaScript stages that follow
 * read them there. The memory grows only when a gradient has longer rows than any before (then the views
 * are re-made), so steady-state calls allocate nothing.
 *
 * @module
 */
import { ModuleBuilder, ValType } from "./assembler.ts";
import { lazyWasmInstance } from "./lazy.ts";

/** Floats per chunk: 16 KiB, so a chunk stays in L1 between its copy and the SIMD loop (the Adam chunk's size). */
export const CLIP_CHUNK = 4096;

const PAGE = 65536;
/** The chunk region, with 4 floats of slack for a row's last vector to read past its end. */
const CHUNK_BYTES = (CLIP_CHUNK + 4) * 4;
/** The column sums start here (16-byte aligned). */
const ACC = Math.ceil(CHUNK_BYTES / 16) * 16;
/** 1 GiB: a non-shared memory reserves only what it has grown to. */
const MAX_PAGES = 16384;

/**
 * Emits the module: an exported growable memory and
 * - `scale(end, s)`: the f32 values at byte offsets [0, end) times the f32 `s` (end a multiple of 16);
 * - `sumsq(acc, rows, rowBytes, colBytes)`: for each row r of the f32 matrix at byte 0 (rows `rowBytes`
 *   apart) and each group of four columns below `colBytes`, adds the four squares, widened to f64, to the f64
 *   column sums at byte `acc` — rows in order, so each column is summed as the scalar loop sums it.
 */
export function emitClipModule(): Uint8Array<ArrayBuffer> {
  const mod = new ModuleBuilder().setMemory({
    kind: "export",
    name: "memory",
    initialPages: 1,
    maxPages: MAX_PAGES,
  });
  const { i32, f32, v128 } = ValType;

  const sc = mod.addFunction("scale", [i32, f32]);
  {
    const end = 0, a = sc.local(i32), s = sc.local(v128);
    sc.get(1).f32x4Splat().set(s);
    sc.i32Const(0).set(a);
    sc.block(() => {
      sc.get(a).get(end).i32GeU().brIf(0);
      sc.loop(() => {
        sc.get(a).get(a).v128Load(0).get(s).f32x4Mul().v128Store(0);
        sc.get(a).i32Const(16).i32Add().tee(a).get(end).i32LtU().brIf(0);
      });
    });
  }

  const ss = mod.addFunction("sumsq", [i32, i32, i32, i32]);
  {
    const acc = 0, rows = 1, rowBytes = 2, colBytes = 3;
    const r = ss.local(i32), row = ss.local(i32), j = ss.local(i32), at = ss.local(i32), x = ss.local(v128);
    /** acc[at + off] += f64(square of the two f32 at row + j + src). */
    const half = (src: number, off: number) => {
      ss.get(at);
      ss.get(row).get(j).i32Add().v128Load64Zero(src).tee(x).get(x).f32x4Mul().f64x2PromoteLowF32x4();
      ss.get(at).v128Load(off).f64x2Add();
      ss.v128Store(off);
    };
    ss.i32Const(0).set(r);
    ss.i32Const(0).set(row);
    ss.block(() => {
      ss.get(r).get(rows).i32GeU().brIf(0);
      ss.loop(() => {
        ss.i32Const(0).set(j);
        ss.get(acc).set(at);
        ss.block(() => {
          ss.get(j).get(colBytes).i32GeU().brIf(0);
          ss.loop(() => {
            half(0, 0);
            half(8, 16);
            ss.get(at).i32Const(32).i32Add().set(at);
            ss.get(j).i32Const(16).i32Add().tee(j).get(colBytes).i32LtU().brIf(0);
          });
        });
        ss.get(row).get(rowBytes).i32Add().set(row);
        ss.get(r).i32Const(1).i32Add().tee(r).get(rows).i32LtU().brIf(0);
      });
    });
  }
  return mod.encode();
}

/** An instance of the clipping module (see the module docs). */
export interface WasmClip {
  /**
   * The column sums of the f32 squares of `g` viewed as `rows` × `inner` (row-major): acc[j] = Σᵢ g[i·inner
   * + j]², each square rounded to f32, summed in double in row order from 0. The returned view (length
   * `inner`) lives in the module's memory and is valid until the next call; callers may overwrite it.
   */
  columnSumsOfSquares(g: Float32Array, rows: number, inner: number): Float64Array;
  /** g[i] ← f32(g[i]·s) for i < n, in place (`s` an f32 value). */
  scale(g: Float32Array, n: number, s: number): void;
}

/** Instantiates the module. */
export function createWasmClip(): WasmClip {
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(emitClipModule()), {});
  const memory = exports.memory as WebAssembly.Memory;
  const scaleFn = exports.scale as (end: number, s: number) => void;
  const sumsq = exports.sumsq as (acc: number, rows: number, rowBytes: number, colBytes: number) => void;
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
    const inner4 = Math.ceil(inner / 4) * 4;
    ensure(ACC + inner4 * 8);
    const acc = f64.subarray(ACC / 8, ACC / 8 + inner);
    f64.fill(0, ACC / 8, ACC / 8 + inner4);
    if (inner <= CLIP_CHUNK) {
      // Whole rows per chunk; a row's last vector may read into the next row, into lanes past `inner`.
      const per = Math.floor(CLIP_CHUNK / inner), n = rows * inner;
      for (let r0 = 0; r0 < rows; r0 += per) {
        const rs = Math.min(per, rows - r0);
        f32.set(g.subarray(r0 * inner, Math.min(n, (r0 + rs) * inner)), 0);
        sumsq(ACC, rs, inner * 4, inner4 * 4);
      }
    } else {
      // Rows longer than a chunk: one column block at a time, its rows in order (every block but the last is
      // full). Block-major, so the block's f64 sums (32 KiB) stay in cache over the rows: row-major would
      // load and store the whole sum array (8 bytes a column, e.g. 2 MiB for an [8, 256, 1024] expert
      // weight, beyond L2) once per row, which made such gradients ~3.5× slower per element. Each column is
      // still summed over the rows in order, so the bits are unchanged.
      for (let j0 = 0; j0 < inner; j0 += CLIP_CHUNK) {
        const len = Math.min(CLIP_CHUNK, inner - j0);
        for (let r = 0; r < rows; r++) {
          const base = r * inner + j0;
          f32.set(g.subarray(base, base + len), 0);
          sumsq(ACC + j0 * 8, 1, 0, Math.ceil(len / 4) * 16);
        }
      }
    }
    return acc;
  }

  function scale(g: Float32Array, n: number, s: number): void {
    for (let off = 0; off < n; off += CLIP_CHUNK) {
      const len = Math.min(CLIP_CHUNK, n - off);
      f32.set(g.subarray(off, off + len), 0);
      scaleFn(Math.ceil(len / 4) * 16, s);
      g.set(len === CLIP_CHUNK ? chunk : chunk.subarray(0, len), off);
    }
  }
  return { columnSumsOfSquares, scale };
}

/** The shared instance, created on first use; undefined where WebAssembly or its SIMD proposal is missing. */
export const sharedWasmClip: () => WasmClip | undefined = lazyWasmInstance(
  () => emitClipModule(),
  () => createWasmClip(),
);
