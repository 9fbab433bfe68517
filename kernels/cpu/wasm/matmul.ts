/**
 * f32 matmul on WebAssembly 128-bit SIMD, with the module emitted at run time by our own
 * {@link ModuleBuilder} (no toolchain, no committed binary).
 *
 * Design (Goto/BLIS-style, single-threaded):
 * - Operands are packed in TypeScript into the module's linear memory: A into panels of MR rows
 *   (`A[i0..i0+MR, p]` contiguous for each p), B into panels of NR = 4·NV columns (`B[p, j0..j0+NR]`
 *   contiguous for each p). Rows of A past M and columns of B past N are zero, so the micro-kernel never
 *   sees an edge; C lives in memory padded to Mp × Np and only its valid part is copied out.
 * - The micro-kernel holds an MR × NR tile of C in MR·NV v128 locals. For each p it loads NV vectors of the
 *   B panel, and for each of the MR rows splats one A value (`v128.load32_splat`) and does NV
 *   `f32x4.mul` + `f32x4.add` into the accumulators. Wasm SIMD has no deterministic fused multiply-add, so
 *   every product and sum is rounded to f32, as in the reference loop.
 * - Loop nest (all in wasm): K in blocks of KC; rows in blocks of MC; within a block, column panels jr
 *   outside row panels ir, so one KC × NR strip of packed B stays in L1 while the MC × KC block of packed A
 *   (in L2) streams past it. The tile of C is loaded into the accumulators at the start of each K block and
 *   stored at its end, so every output is summed over p = 0..K−1 strictly in order: results are
 *   deterministic and independent of the blocking parameters.
 *
 * @module
 */
import { type Local, ModuleBuilder, ValType } from "./assembler.ts";

/** Tile and blocking parameters (exposed for tuning and tests; the defaults are what the bench picked). */
export interface WasmMatmulOptions {
  /** Rows of the register tile. */
  mr?: number;
  /** v128 columns of the register tile (NR = 4·nv). */
  nv?: number;
  /** Depth of a K block. */
  kc?: number;
  /** Rows of A per block (rounded up to a multiple of mr). */
  mc?: number;
  /** Unroll of the inner K loop. */
  unroll?: number;
}

/** Where the operands of one {@link WasmMatmul.matmul} call live (all optional; defaults: plain, offset 0). */
export interface WasmMatmulLayout {
  /** Read a as [K, M] (op(A) = Aᵀ), during packing: no transposed copy is made. */
  transA?: boolean;
  /** Read b as [N, K] (op(B) = Bᵀ), during packing. */
  transB?: boolean;
  /** Element offset of the operand in `a`. */
  aOff?: number;
  /** Element offset of the operand in `b`. */
  bOff?: number;
  /** Element offset of the [M, N] result in `out`. */
  outOff?: number;
}

/** A WebAssembly matmul instance: owns its module and linear memory, reused between calls. */
export interface WasmMatmul {
  /**
   * out[M×N] = op(a) · op(b), all row-major f32, where op(a) is a[M×K] (or a[K×M] transposed if
   * `layout.transA`) and op(b) is b[K×N] (or b[N×K] transposed if `layout.transB`); the M×N block of `out`
   * at `layout.outOff` is overwritten.
   */
  matmul(
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
    m: number,
    k: number,
    n: number,
    layout?: WasmMatmulLayout,
  ): void;
  /** The emitted module's bytes (for validation and inspection). */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** The module's memory (grows as needed, never shrinks). */
  readonly memory: WebAssembly.Memory;
  /** The tile and blocking in use. */
  readonly options: Readonly<Required<WasmMatmulOptions>>;
}

const PAGE = 65536;
/** Largest memory the module may grow to (wasm32: 4 GiB). */
const MAX_PAGES = 65536;

const DEFAULTS: Required<WasmMatmulOptions> = { mr: 4, nv: 2, kc: 256, mc: 64, unroll: 4 };

/**
 * Emits the module: `gemm(aBase, bBase, cBase, mp, np, k)` (byte addresses; mp, np multiples of the tile)
 * computes C[mp×np] += packedA · packedB, and exports its memory as `memory`.
 */
export function emitMatmulModule(options: WasmMatmulOptions = {}): Uint8Array<ArrayBuffer> {
  const { mr, nv, kc: KC, unroll } = { ...DEFAULTS, ...options };
  const nr = 4 * nv;
  const MC = Math.ceil((options.mc ?? DEFAULTS.mc) / mr) * mr;
  const mod = new ModuleBuilder().setMemory({ kind: "export", name: "memory", initialPages: 1, maxPages: MAX_PAGES });
  const { i32, v128 } = ValType;
  const f = mod.addFunction("gemm", [i32, i32, i32, i32, i32, i32]);
  const aBase = 0, bBase = 1, cBase = 2, mp = 3, np = 4, k = 5;
  const p0 = f.local(i32), kc = f.local(i32), ic = f.local(i32), icEnd = f.local(i32);
  const jr = f.local(i32), ir = f.local(i32), ldcB = f.local(i32);
  const aPtr = f.local(i32), bPtr = f.local(i32), cPtr = f.local(i32), aEnd = f.local(i32);
  const acc: Local[][] = [];
  for (let r = 0; r < mr; r++) {
    acc.push([]);
    for (let v = 0; v < nv; v++) acc[r].push(f.local(v128));
  }
  const bv: Local[] = [];
  for (let v = 0; v < nv; v++) bv.push(f.local(v128));
  const s = f.local(v128);

  /** One step of the K loop at element offset `step` from aPtr/bPtr. */
  const kStep = (step: number) => {
    for (let v = 0; v < nv; v++) f.get(bPtr).v128Load((step * nr + 4 * v) * 4).set(bv[v]);
    for (let r = 0; r < mr; r++) {
      f.get(aPtr).v128Load32Splat((step * mr + r) * 4).set(s);
      for (let v = 0; v < nv; v++) f.get(acc[r][v]).get(s).get(bv[v]).f32x4Mul().f32x4Add().set(acc[r][v]);
    }
  };
  /** Emits `each(r)` for each tile row r, advancing cPtr by one row of C between rows. */
  const forTileRows = (each: (r: number) => void) => {
    for (let r = 0; r < mr; r++) {
      each(r);
      if (r + 1 < mr) f.get(cPtr).get(ldcB).i32Add().set(cPtr);
    }
  };

  f.get(np).i32Const(2).i32Shl().set(ldcB);
  f.i32Const(0).set(p0);
  f.loop(() => {
    // kc = min(KC, k - p0)
    f.get(k).get(p0).i32Sub().set(kc);
    f.i32Const(KC).get(kc).get(kc).i32Const(KC).i32GtS().select().set(kc);
    f.i32Const(0).set(ic);
    f.loop(() => {
      // icEnd = min(ic + MC, mp)
      f.get(ic).i32Const(MC).i32Add().set(icEnd);
      f.get(icEnd).get(mp).get(icEnd).get(mp).i32LtS().select().set(icEnd);
      f.i32Const(0).set(jr);
      f.loop(() => {
        f.get(ic).set(ir);
        f.loop(() => {
          // cPtr = cBase + (ir·np + jr)·4; load the tile.
          f.get(cBase).get(ir).get(np).i32Mul().get(jr).i32Add().i32Const(2).i32Shl().i32Add().set(cPtr);
          forTileRows((r) => {
            for (let v = 0; v < nv; v++) f.get(cPtr).v128Load(16 * v).set(acc[r][v]);
          });
          // aPtr = aBase + (ir·k + p0·mr)·4, bPtr = bBase + (jr·k + p0·nr)·4, aEnd = aPtr + kc·mr·4.
          f.get(aBase).get(ir).get(k).i32Mul().get(p0).i32Const(mr).i32Mul().i32Add().i32Const(2).i32Shl().i32Add()
            .set(aPtr);
          f.get(bBase).get(jr).get(k).i32Mul().get(p0).i32Const(nr).i32Mul().i32Add().i32Const(2).i32Shl().i32Add()
            .set(bPtr);
          f.get(aPtr).get(kc).i32Const(mr * 4).i32Mul().i32Add().set(aEnd);
          if (unroll > 1) {
            // Unrolled loop while at least `unroll` steps remain: aPtr + (unroll − 1)·step < aEnd (compared
            // this way round so nothing wraps below address 0).
            const more = () => f.get(aPtr).i32Const((unroll - 1) * mr * 4).i32Add().get(aEnd).i32LtU();
            f.block(() => {
              more().i32Eqz().brIf(0);
              f.loop(() => {
                for (let u = 0; u < unroll; u++) kStep(u);
                f.get(aPtr).i32Const(unroll * mr * 4).i32Add().set(aPtr);
                f.get(bPtr).i32Const(unroll * nr * 4).i32Add().set(bPtr);
                more().brIf(0);
              });
            });
          }
          f.block(() => {
            f.get(aPtr).get(aEnd).i32GeU().brIf(0);
            f.loop(() => {
              kStep(0);
              f.get(aPtr).i32Const(mr * 4).i32Add().set(aPtr);
              f.get(bPtr).i32Const(nr * 4).i32Add().set(bPtr);
              f.get(aPtr).get(aEnd).i32LtU().brIf(0);
            });
          });
          // Store the tile back.
          f.get(cBase).get(ir).get(np).i32Mul().get(jr).i32Add().i32Const(2).i32Shl().i32Add().set(cPtr);
          forTileRows((r) => {
            for (let v = 0; v < nv; v++) f.get(cPtr).get(acc[r][v]).v128Store(16 * v);
          });
          f.get(ir).i32Const(mr).i32Add().tee(ir).get(icEnd).i32LtS().brIf(0);
        });
        f.get(jr).i32Const(nr).i32Add().tee(jr).get(np).i32LtS().brIf(0);
      });
      f.get(icEnd).tee(ic).get(mp).i32LtS().brIf(0);
    });
    f.get(p0).i32Const(KC).i32Add().tee(p0).get(k).i32LtS().brIf(0);
  });
  return mod.encode();
}

function roundUp(x: number, to: number): number {
  return Math.ceil(x / to) * to;
}

/**
 * Packs rows of op(A) (M×K) into MR-row panels: dst[i0·k + p·mr + r] = op(A)[i0 + r, p], zero past m.
 * op(A) is read from `a` at `aOff` as row-major [M, K], or as [K, M] if `transA` (no transposed copy).
 */
function packA(
  a: Float32Array,
  aOff: number,
  transA: boolean,
  m: number,
  k: number,
  mr: number,
  dst: Float32Array,
  dOff: number,
): void {
  const mp = roundUp(m, mr);
  for (let i0 = 0; i0 < mp; i0 += mr) {
    const base = dOff + i0 * k;
    if (transA && i0 + mr <= m) {
      // A is [K, M]: the mr values of a panel for one p are contiguous.
      for (let p = 0, s = aOff + i0, d = base; p < k; p++, s += m) {
        for (let r = 0; r < mr; r++) dst[d++] = a[s + r];
      }
      continue;
    }
    for (let r = 0; r < mr; r++) {
      const i = i0 + r;
      if (i >= m) {
        for (let p = 0, d = base + r; p < k; p++, d += mr) dst[d] = 0;
      } else if (transA) {
        for (let p = 0, s = aOff + i, d = base + r; p < k; p++, s += m, d += mr) dst[d] = a[s];
      } else {
        for (let p = 0, s = aOff + i * k, d = base + r; p < k; p++, s++, d += mr) dst[d] = a[s];
      }
    }
  }
}

/**
 * Packs op(B) (K×N) into NR-column panels: dst[j0·k + p·nr + c] = op(B)[p, j0 + c], zero past n. op(B) is
 * read from `b` at `bOff` as row-major [K, N], or as [N, K] if `transB` (no transposed copy).
 */
function packB(
  b: Float32Array,
  bOff: number,
  transB: boolean,
  k: number,
  n: number,
  nr: number,
  dst: Float32Array,
  dOff: number,
): void {
  if (transB) {
    // B is [N, K]: column j of op(B) is contiguous; scatter it with stride nr into its panel.
    const np = roundUp(n, nr);
    for (let j = 0; j < np; j++) {
      const c = j % nr;
      let d = dOff + (j - c) * k + c;
      if (j < n) {
        for (let p = 0, s = bOff + j * k; p < k; p++, s++, d += nr) dst[d] = b[s];
      } else {
        for (let p = 0; p < k; p++, d += nr) dst[d] = 0;
      }
    }
    return;
  }
  const full = Math.floor(n / nr) * nr;
  for (let j0 = 0; j0 < full; j0 += nr) {
    let d = dOff + j0 * k;
    for (let p = 0, s = bOff + j0; p < k; p++, s += n) {
      for (let c = 0; c < nr; c++) dst[d++] = b[s + c];
    }
  }
  if (full === n) return;
  const live = n - full;
  let d = dOff + full * k;
  for (let p = 0, s = bOff + full; p < k; p++, s += n) {
    for (let c = 0; c < nr; c++) dst[d++] = c < live ? b[s + c] : 0;
  }
}

/** Instantiates the emitted module (synchronously: it is small). */
export function createWasmMatmul(options: WasmMatmulOptions = {}): WasmMatmul {
  const opts: Required<WasmMatmulOptions> = { ...DEFAULTS, ...options };
  const bytes = emitMatmulModule(opts);
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
  const memory = instance.exports.memory as WebAssembly.Memory;
  const gemm = instance.exports.gemm as (a: number, b: number, c: number, mp: number, np: number, k: number) => void;
  const mr = opts.mr, nr = 4 * opts.nv;
  let view = new Float32Array(memory.buffer);

  function ensure(bytesNeeded: number): void {
    const have = memory.buffer.byteLength;
    if (bytesNeeded > have) {
      const pages = Math.ceil((bytesNeeded - have) / PAGE);
      if (have / PAGE + pages > MAX_PAGES) throw new RangeError(`wasm matmul: needs ${bytesNeeded} bytes`);
      memory.grow(pages);
    }
    if (view.buffer !== memory.buffer) view = new Float32Array(memory.buffer);
  }

  function matmul(
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
    m: number,
    k: number,
    n: number,
    layout: WasmMatmulLayout = {},
  ): void {
    const { transA = false, transB = false, aOff: aAt = 0, bOff: bAt = 0, outOff = 0 } = layout;
    if (a.length < aAt + m * k || b.length < bAt + k * n || out.length < outOff + m * n) {
      throw new RangeError("wasm matmul: short buffer");
    }
    if (m === 0 || n === 0) return;
    if (k === 0) {
      out.fill(0, outOff, outOff + m * n);
      return;
    }
    const mp = roundUp(m, mr), np = roundUp(n, nr);
    // Float offsets, each region 64-byte aligned.
    const aOff = 0, bOff = roundUp(mp * k, 16), cOff = bOff + roundUp(np * k, 16);
    ensure((cOff + mp * np) * 4);
    packA(a, aAt, transA, m, k, mr, view, aOff);
    packB(b, bAt, transB, k, n, nr, view, bOff);
    view.fill(0, cOff, cOff + mp * np);
    gemm(aOff * 4, bOff * 4, cOff * 4, mp, np, k);
    if (np === n) out.set(view.subarray(cOff, cOff + m * n), outOff);
    else for (let i = 0; i < m; i++) out.set(view.subarray(cOff + i * np, cOff + i * np + n), outOff + i * n);
  }

  return { matmul, bytes, memory, options: opts };
}

/** The process-wide instance: undefined until first asked for, null if WebAssembly SIMD is unavailable. */
let shared: WasmMatmul | null | undefined;

/**
 * The shared default-tile instance, created on first use (one per process, so one linear memory). Returns
 * undefined where WebAssembly or its SIMD proposal is unavailable (the module fails `WebAssembly.validate`
 * or to instantiate), so callers fall back to their TypeScript path.
 */
export function sharedWasmMatmul(): WasmMatmul | undefined {
  if (shared === undefined) {
    shared = null;
    try {
      if (typeof WebAssembly === "object" && WebAssembly.validate(emitMatmulModule())) shared = createWasmMatmul();
    } catch {
      shared = null;
    }
  }
  return shared ?? undefined;
}
