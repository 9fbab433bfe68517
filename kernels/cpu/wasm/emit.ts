/**
 * Emits the WebAssembly module of the f32 matmul: a packed register-blocked SIMD micro-kernel (`gemm`) and
 * the work loop every thread runs (`drain`), both over one imported memory, which is shared (threads
 * proposal) where the host allows it, so Workers can instantiate the same module on the same memory.
 *
 * `gemm(aPtr, bPtr, cPtr, mp, np, k, ldc, live)` (byte addresses; mp, np multiples of the tile) computes the
 * mp×np block of C at cPtr (row stride ldc floats) = packedA · packedB, storing (and reloading) only its first
 * `live` rows (≤ mp: a product's last row panel may be partial, and the rows past it belong to someone else):
 * - A is packed in panels of MR rows (`A[i0..i0+MR, p]` contiguous for each p), B in panels of NR = 4·NV
 *   columns (`B[p, j0..j0+NR]` contiguous for each p).
 * - The micro-kernel holds an MR × NR tile of C in MR·NV v128 locals. For each p it loads NV vectors of the
 *   B panel and, for each of the MR rows, splats one A value (`v128.load32_splat`) and multiply-adds it into
 *   the NV accumulators: `f32x4.relaxed_madd` where relaxed SIMD is available (one fused multiply-add on a
 *   CPU with FMA, one rounding), else `f32x4.mul` + `f32x4.add` (two roundings, as the reference loop).
 * - Loop nest: K in blocks of KC; rows in blocks of MC; within a block, column panels outside row panels,
 *   so one KC × NR strip of packed B stays in L1 while the MC × KC block of packed A (in L2) streams past
 *   it. The tile starts from zero in the first K block and is reloaded from C in later ones, so every output
 *   is summed over p = 0..K−1 strictly in order and C needs no clearing: the result does not depend on the
 *   blocking, nor on how the work is split into calls or threads.
 *
 * `packA` / `packB(src, rs, cs, rows, k, dst, i0, i1)` pack panels of op(A) (MR rows) or op(B)ᵀ (NR rows)
 * from a matrix given by its two element strides, so every transpose is the same loop (v128 copies when a
 * panel's values are contiguous, scalar gathers otherwise), zero-padding the last panel.
 *
 * `gemmFused(aPtr, bSrc, cPtr, mp, np, k, ldc, strip, rs, cs, rows, live)` is `gemm` for an op(B)ᵀ that is not
 * packed in advance (an expert's weight, used by the few rows routed to it: see `plan.ts`,
 * `SKIP_B_PACKING_MAX_ROWS`): before each KC × NR strip's row panels it packs that strip from op(B)ᵀ (element
 * (i, p) at bSrc + (i·rs + p·cs)·4, `rows` rows, zero past them) into `strip`, the block's own buffer, with
 * `packB`, so the panels are written and read in L1 instead of through memory;
 * it runs all the block's rows per strip (no MC blocking), so each strip is packed once per K block.
 *
 * `drain(ctl, until)` claims units of work from the job descriptor at byte address ctl (layout {@link Ctl})
 * with a compare-and-swap on a counter and runs each (a row of the job's unit table: pack part of an operand,
 * or compute a block of one product's C with `gemm`, once its operands are packed) until none is left; the
 * calling thread and every Worker run the same loop, so whichever threads turn up share the work and the
 * bits of C do not depend on who computed what.
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
  /**
   * How the micro-kernel broadcasts A's values: `"load"`, one `v128.load32_splat` per row; `"shuffle"`, one
   * `v128.load` per four rows, then an `i8x16.shuffle` per row (mr must be a multiple of 4). Default:
   * {@link splatFor}.
   */
  splat?: "load" | "shuffle";
  /**
   * Use relaxed SIMD's `f32x4.relaxed_madd` (fused multiply-add on CPUs with FMA: one rounding per step
   * instead of two). Default: whenever the engine validates it.
   */
  fma?: boolean;
  /** Import the memory as shared (default: whenever the engine supports shared memory). */
  shared?: boolean;
}

/**
 * Byte offsets of the i32 fields of the job descriptor in memory (see `drain`). The descriptor only says how
 * many units the job has and where their table is: each unit is a row of that table ({@link Unit}), so one
 * job can hold the products of a whole batch, or of every group of a grouped matmul, with any shapes.
 */
export const Ctl = {
  /** gen << 20 | next unclaimed unit (atomic; CAS-claimed). */
  counter: 0,
  /** Units finished (atomic). */
  done: 4,
  /** Units in the job (at most {@link MAX_UNITS}). */
  total: 8,
  /** Workers (not counting the calling thread) allowed to join this job; read by the Worker loop. */
  workers: 12,
  /** Set to 1 by a thread that failed: every waiting unit gives up instead of waiting forever. */
  failed: 16,
  /** Units run by Workers, over all jobs (atomic; statistics only). */
  workerUnits: 20,
  /** Byte address of the unit table (`total` rows of {@link Unit.size} bytes). */
  table: 24,
  /** Bytes reserved for the descriptor. */
  size: 64,
} as const;

/** What a unit does (its `kind` field). */
export const UnitKind = { packA: 0, packB: 1, gemm: 2, gemmFused: 3 } as const;

/**
 * Byte offsets of the i32 fields of one unit (a row of the job's table). A packing unit (`packA`/`packB`)
 * packs panels of one operand once that operand is in memory (its record's `ready` is set) and counts itself
 * done in that record; a `gemm` unit computes a block of one product once both its operands' records count
 * every packing unit done, and counts itself done in the product's record. `args` are the called function's
 * arguments: packA/packB's eight, gemm's eight, gemmFused's twelve (see the module docs).
 */
export const Unit = {
  kind: 0,
  /** Byte address of the operand's record (packing), or of op(A)'s record (gemm). */
  rec: 4,
  /** gemm: byte address of op(B)'s record. */
  recB: 8,
  /** gemm: byte address of the product's record. */
  recOut: 12,
  /** First argument; the others follow, 4 bytes apart. */
  args: 16,
  size: 64,
} as const;

/**
 * Byte offsets of the i32 fields of a record: one per operand (`ready`: set once its values are in memory;
 * `units`/`done`: its packing units, and how many have finished) and one per product (`units`/`done`: its
 * gemm units; `ready` unused). `done` is atomic and notified on every increment.
 */
export const Rec = { ready: 0, units: 4, done: 8, size: 16 } as const;

/**
 * Rounds a waiting unit re-reads its record before it sleeps (each round an atomic load, a check of the
 * failure flag and a branch: a few nanoseconds, so ≈ 50 µs in all).
 */
export const SPIN_LOADS = 2 ** 14;

/** Low 20 bits of the counter: the next unit; the bits above: the job's generation. */
export const UNIT_MASK = 0xfffff;
/** Most units a job may have. */
export const MAX_UNITS = UNIT_MASK - 1;

/**
 * Defaults. First measured on x64 (AMD EPYC, AVX2+FMA, Deno 2.9.6) at 512³ and 1024³, single thread, by CPU
 * time (the machine was shared): a 6×8 tile with `v128.load32_splat` (12 accumulators + 2 B vectors + 1 splat
 * = 15 of the 16 xmm registers, V8 keeps one as scratch) with FMA ran 30–34 GFLOP/s, 4×8 with FMA 28–32, 4×8
 * without 23–26, 4×12 (16 registers: spills) 20; MC 120 (a 120 KiB block of packed A in L2) and KC 256 were at
 * least as good as MC 64–240 and KC 128–512; unroll 2–8 made no difference. Then (AMD EPYC Zen 4, AVX-512,
 * 2026-12-07), a loop of nothing but the inner step, on L1-resident data: 12 independent multiply-adds alone ran
 * 58 GFLOP/s, with the 6×8 step's 2 B loads 58, with its 6 splat loads 48.5, while a 4×8 step that loads four
 * rows of A as one vector and broadcasts each lane with a shuffle ran 52 (splat loads at 4×8: 45; 6×8 and 4×12
 * by shuffles spill). Whole products on one thread, 4×8 by shuffles against 6×8 by splat loads, same bits:
 * 45–46 against 42–44 GFLOP/s at 512³ (any transpose), 36–38 against 33–35 for 64 rows against a 512 × 2048
 * weight, 44 against 42 at 1024³. In the benchmark's training step, separate processes alternating, 4×8 with
 * every expert weight packed inside its blocks (`gemmFused`) against 6×8 with the forward weights read in place
 * (then `gemmUnpacked`): one thread d = 512 1,140–1,237 against 1,210–1,361 ms (6 of 6 faster), d = 256 346–368
 * against 375–391 (3 of 3), two threads d = 512 655–689 against 655–756 (4 of 6 faster, one level, one 1%
 * slower), d = 256 211–261 against 223–255 (5 of 6). Reading the weight in place lost with the 4×8 tile (its
 * 512 × 2048 forward products 1.45× slower: a B row every four rows of A instead of six, from L2).
 */
export const DEFAULT_OPTIONS: Readonly<Required<Omit<WasmMatmulOptions, "fma" | "shared" | "splat">>> = {
  mr: 4,
  nv: 2,
  kc: 256,
  mc: 120,
  unroll: 4,
};

/** The default broadcast for a tile of `mr` rows: by shuffles where mr is a multiple of 4, else by splat loads. */
export function splatFor(mr: number): "load" | "shuffle" {
  return mr % 4 === 0 ? "shuffle" : "load";
}

/** Whether the engine validates a module using relaxed SIMD's f32x4.relaxed_madd. */
export function relaxedSimdSupported(): boolean {
  try {
    return WebAssembly.validate(emitMatmulModule({ fma: true, shared: false }));
  } catch {
    return false;
  }
}

/** Whether shared WebAssembly memory (and so Workers on one memory) is available. */
export function sharedMemorySupported(): boolean {
  try {
    return typeof SharedArrayBuffer === "function" &&
      new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }).buffer instanceof SharedArrayBuffer;
  } catch {
    return false;
  }
}

/**
 * The largest memory (pages) the module declares: 2 GiB. The module's address arithmetic is i32 with some
 * signed comparisons, and a shared memory reserves its maximum up front (address space, not RAM).
 */
export const MAX_PAGES: number = 32768;

/**
 * Emits the module: imports `env.memory` (shared if `options.shared`, maximum {@link MAX_PAGES}) and
 * exports `gemm` and `drain` (see the module docs).
 */
export function emitMatmulModule(options: WasmMatmulOptions = {}): Uint8Array<ArrayBuffer> {
  const { mr, nv, kc: KC, unroll } = { ...DEFAULT_OPTIONS, ...options };
  const splat = options.splat ?? splatFor(mr);
  if (splat === "shuffle" && mr % 4 !== 0) {
    throw new RangeError(`wasm matmul: splat "shuffle" needs mr a multiple of 4, got ${mr}`);
  }
  const fma = options.fma ?? false, shared = options.shared ?? false;
  const nr = 4 * nv;
  const MC = Math.ceil((options.mc ?? DEFAULT_OPTIONS.mc) / mr) * mr;
  const mod = new ModuleBuilder().setMemory({
    kind: "import",
    module: "env",
    name: "memory",
    initialPages: 1,
    maxPages: MAX_PAGES,
    shared,
  });
  const tile: Tile = { mr, nv, KC, MC, unroll, fma, splat };
  const packA = emitPack(mod, "packA", mr);
  const packB = emitPack(mod, "packB", nr);
  const gemm = emitGemm(mod, tile, "packed");
  const gemmFused = emitGemm(mod, tile, "fused", packB);
  emitDrain(mod, { gemm, gemmFused, packA, packB });
  return mod.encode();
}

/** The register tile and blocking a module is emitted for (see {@link DEFAULT_OPTIONS}). */
interface Tile {
  mr: number;
  nv: number;
  KC: number;
  MC: number;
  unroll: number;
  fma: boolean;
  splat: "load" | "shuffle";
}

/**
 * Emits `gemm(aPtr, bPtr, cPtr, mp, np, k, ldc, live)` or, with `fused`, `gemmFused` (see the module docs):
 * the same loops and the same multiply-adds in the same order, so the same bits. Returns the function's index.
 */
function emitGemm(mod: ModuleBuilder, tile: Tile, mode: "packed" | "fused", packB = -1): number {
  const { i32, v128 } = ValType;
  const { mr, nv, KC, MC, unroll, fma, splat } = tile, nr = 4 * nv;
  const fused = mode === "fused";
  const f = fused
    ? mod.addFunction("gemmFused", [i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32])
    : mod.addFunction("gemm", [i32, i32, i32, i32, i32, i32, i32, i32]);
  const aBase = 0, bBase = 1, cBase = 2, mp = 3, np = 4, k = 5, ldc = 6;
  // gemmFused: bBase is the block's first row of op(B)ᵀ (element (c0, 0)), strip its own KC × NR buffer.
  const strip = 7, bRs = 8, bCs = 9, bRows = 10;
  // The last argument: rows of the block's C to store (the rest of its last row panel lies past its product).
  const live = fused ? 11 : 7;
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
  const quad = splat === "shuffle" ? f.local(v128) : -1;

  /** One step of the K loop at element offset `step` from aPtr and bPtr. */
  const kStep = (step: number) => {
    for (let v = 0; v < nv; v++) f.get(bPtr).v128Load((step * nr + 4 * v) * 4).set(bv[v]);
    for (let r = 0; r < mr; r++) {
      if (splat === "load") f.get(aPtr).v128Load32Splat((step * mr + r) * 4).set(s);
      else {
        // A panel's four rows at one p are 16 contiguous bytes (panels start 16-byte aligned: mr·k floats).
        if (r % 4 === 0) f.get(aPtr).v128Load((step * mr + r) * 4).set(quad);
        const lane = r % 4;
        f.get(quad).get(quad).i32x4Shuffle([lane, lane, lane, lane]).set(s);
      }
      for (let v = 0; v < nv; v++) {
        if (fma) f.get(s).get(bv[v]).get(acc[r][v]).f32x4RelaxedMadd().set(acc[r][v]);
        else f.get(acc[r][v]).get(s).get(bv[v]).f32x4Mul().f32x4Add().set(acc[r][v]);
      }
    }
  };
  /**
   * Emits `each(r)` for each tile row r that is one of the block's `live` rows (row 0 always is), advancing
   * cPtr by one row of C between rows.
   */
  const forTileRows = (each: (r: number) => void) => {
    for (let r = 0; r < mr; r++) {
      if (r === 0) each(r);
      else f.get(ir).i32Const(r).i32Add().get(live).i32LtS().if(() => each(r));
      if (r + 1 < mr) f.get(cPtr).get(ldcB).i32Add().set(cPtr);
    }
  };
  const tileAddress = () =>
    f.get(cBase).get(ir).get(ldc).i32Mul().get(jr).i32Add().i32Const(2).i32Shl().i32Add().set(cPtr);

  f.get(ldc).i32Const(2).i32Shl().set(ldcB);
  f.i32Const(0).set(p0);
  f.loop(() => {
    // kc = min(KC, k - p0)
    f.get(k).get(p0).i32Sub().set(kc);
    f.i32Const(KC).get(kc).get(kc).i32Const(KC).i32GtS().select().set(kc);
    f.i32Const(0).set(ic);
    f.loop(() => {
      // icEnd = min(ic + MC, mp); fused, all rows (each strip is packed once per K block).
      if (fused) f.get(mp).set(icEnd);
      else {
        f.get(ic).i32Const(MC).i32Add().set(icEnd);
        f.get(icEnd).get(mp).get(icEnd).get(mp).i32LtS().select().set(icEnd);
      }
      f.i32Const(0).set(jr);
      f.loop(() => {
        if (fused) {
          // Pack this strip (rows p0..p0 + kc of the NR-column panel jr) into the block's buffer:
          // packB(bBase + p0·cs·4, rs, cs, bRows, kc, strip − jr·kc·4, jr, jr + NR) puts it at strip.
          f.get(bBase).get(p0).get(bCs).i32Mul().i32Const(2).i32Shl().i32Add();
          f.get(bRs).get(bCs).get(bRows).get(kc);
          f.get(strip).get(jr).get(kc).i32Mul().i32Const(2).i32Shl().i32Sub();
          f.get(jr).get(jr).i32Const(nr).i32Add();
          f.call(packB);
        }
        f.get(ic).set(ir);
        f.loop(() => {
          // The tile starts at zero in the first K block, from C in later ones.
          tileAddress();
          f.get(p0).i32Eqz().if(() => {
            for (let r = 0; r < mr; r++) for (let v = 0; v < nv; v++) f.v128Zero().set(acc[r][v]);
          }, () => {
            forTileRows((r) => {
              for (let v = 0; v < nv; v++) f.get(cPtr).v128Load(16 * v, 2).set(acc[r][v]);
            });
          });
          // aPtr = aBase + (ir·k + p0·mr)·4, aEnd = aPtr + kc·mr·4; bPtr = bBase + (jr·k + p0·nr)·4
          // (fused: the block's strip).
          f.get(aBase).get(ir).get(k).i32Mul().get(p0).i32Const(mr).i32Mul().i32Add().i32Const(2).i32Shl().i32Add()
            .set(aPtr);
          if (fused) {
            f.get(strip).set(bPtr);
          } else {
            f.get(bBase).get(jr).get(k).i32Mul().get(p0).i32Const(nr).i32Mul().i32Add().i32Const(2).i32Shl().i32Add()
              .set(bPtr);
          }
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
          // Store the tile back (rows of C are only 4-byte aligned when ldc is not a multiple of 4).
          tileAddress();
          forTileRows((r) => {
            for (let v = 0; v < nv; v++) f.get(cPtr).get(acc[r][v]).v128Store(16 * v, 2);
          });
          f.get(ir).i32Const(mr).i32Add().tee(ir).get(icEnd).i32LtS().brIf(0);
        });
        f.get(jr).i32Const(nr).i32Add().tee(jr).get(np).i32LtS().brIf(0);
      });
      f.get(icEnd).tee(ic).get(mp).i32LtS().brIf(0);
    });
    f.get(p0).i32Const(KC).i32Add().tee(p0).get(k).i32LtS().brIf(0);
  });

  return f.index;
}

/** Source rows walked per block by `pack` (their cache lines stay in L2 while every panel takes its part). */
const PACK_BLOCK = 64;

/**
 * `name(src, rs, cs, rows, k, dst, i0, i1)`: packs panels i0..i1 (row indices, multiples of w) of a
 * rows × k matrix X, whose element (i, p) is the f32 at byte src + 4·(i·rs + p·cs), into w-row panels:
 * dst[i0·k + p·w + r] = X[i0 + r, p] (byte address dst), zero for rows ≥ `rows`. op(A) is X with w = mr;
 * op(B)ᵀ is X with w = nr, so one routine covers every transpose. When rs = 1 (a panel's w values are
 * contiguous) full panels copy with v128 loads and stores; when cs = 1 (each row's values along p are: a
 * transposed operand, e.g. the weight in a backward pass) four p at a time are read as one vector per row
 * and transposed in registers (4×4 blocks of rows, and a 2×4 one for the last two rows of a 6-row panel),
 * instead of gathered one float at a time (measured in the training step: the packing of op(B)ᵀ took ≈ 30
 * ms a step on one thread with the gathers).
 */
function emitPack(mod: ModuleBuilder, name: string, w: number): number {
  const { i32 } = ValType;
  const f = mod.addFunction(name, [i32, i32, i32, i32, i32, i32, i32, i32]);
  const src = 0, rs = 1, cs = 2, rows = 3, k = 4, dst = 5, i0Start = 6, i0End = 7;
  const p0 = f.local(i32), p1 = f.local(i32), i0 = f.local(i32), live = f.local(i32), d = f.local(i32);
  const sp = f.local(i32), q = f.local(i32), p = f.local(i32), rs4 = f.local(i32), cs4 = f.local(i32);
  const { v128 } = ValType;
  const v = [f.local(v128), f.local(v128), f.local(v128), f.local(v128)];
  const t = [f.local(v128), f.local(v128), f.local(v128), f.local(v128)];
  f.get(rs).i32Const(2).i32Shl().set(rs4);
  f.get(cs).i32Const(2).i32Shl().set(cs4);
  /** The p loop of one panel: body() copies one p (d: destination, sp: source of row i0 at p). */
  const pLoop = (body: () => void) => {
    f.block(() => {
      f.get(p).get(p1).i32GeS().brIf(0);
      f.loop(() => {
        body();
        f.get(d).i32Const(4 * w).i32Add().set(d);
        f.get(sp).get(cs4).i32Add().set(sp);
        f.get(p).i32Const(1).i32Add().tee(p).get(p1).i32LtS().brIf(0);
      });
    });
  };
  /** The p loop four at a time while four remain (cs = 1: the source of the next p is 16 bytes on). */
  const pLoop4 = (body: () => void) => {
    f.block(() => {
      f.get(p).i32Const(4).i32Add().get(p1).i32GtS().brIf(0);
      f.loop(() => {
        body();
        f.get(d).i32Const(16 * w).i32Add().set(d);
        f.get(sp).i32Const(16).i32Add().set(sp);
        f.get(p).i32Const(4).i32Add().tee(p).i32Const(4).i32Add().get(p1).i32LeS().brIf(0);
      });
    });
  };
  /** One p at a time, a full panel, rows `rs` apart: w scalar loads and stores. */
  const gather = () => {
    f.get(sp).set(q);
    for (let r = 0; r < w; r++) {
      f.get(d).get(q).f32Load().f32Store(4 * r);
      if (r + 1 < w) f.get(q).get(rs4).i32Add().set(q);
    }
  };
  /** Four p of a full panel with cs = 1: each row's four values as one vector, transposed in registers. */
  const transposed = () => {
    f.get(sp).set(q);
    const row = (r: number, into: number) => {
      f.get(q).v128Load(0, 2).set(v[into]);
      if (r + 1 < w) f.get(q).get(rs4).i32Add().set(q);
    };
    let r0 = 0;
    for (; r0 + 4 <= w; r0 += 4) {
      for (let r = 0; r < 4; r++) row(r0 + r, r);
      // Interleave pairs of rows, then pairs of pairs: lane r of result j is row r0 + r at p + j.
      f.get(v[0]).get(v[1]).i32x4Shuffle([0, 4, 1, 5]).set(t[0]);
      f.get(v[0]).get(v[1]).i32x4Shuffle([2, 6, 3, 7]).set(t[1]);
      f.get(v[2]).get(v[3]).i32x4Shuffle([0, 4, 1, 5]).set(t[2]);
      f.get(v[2]).get(v[3]).i32x4Shuffle([2, 6, 3, 7]).set(t[3]);
      f.get(d).get(t[0]).get(t[2]).i32x4Shuffle([0, 1, 4, 5]).v128Store(4 * r0, 2);
      f.get(d).get(t[0]).get(t[2]).i32x4Shuffle([2, 3, 6, 7]).v128Store(4 * (w + r0), 2);
      f.get(d).get(t[1]).get(t[3]).i32x4Shuffle([0, 1, 4, 5]).v128Store(4 * (2 * w + r0), 2);
      f.get(d).get(t[1]).get(t[3]).i32x4Shuffle([2, 3, 6, 7]).v128Store(4 * (3 * w + r0), 2);
    }
    if (w - r0 === 2) {
      row(r0, 0);
      row(r0 + 1, 1);
      // [a0, b0, a1, b1] and [a2, b2, a3, b3]: each half is the two rows at one p.
      f.get(v[0]).get(v[1]).i32x4Shuffle([0, 4, 1, 5]).set(t[0]);
      f.get(v[0]).get(v[1]).i32x4Shuffle([2, 6, 3, 7]).set(t[1]);
      for (let pq = 0; pq < 4; pq++) f.get(d).get(t[pq >> 1]).v128Store64Lane(pq & 1, 4 * (pq * w + r0), 2);
    } else {
      // Other leftovers (tiles other than the default): one float at a time.
      for (let r = r0; r < w; r++) {
        for (let pq = 0; pq < 4; pq++) f.get(d).get(q).f32Load(4 * pq).f32Store(4 * (pq * w + r));
        if (r + 1 < w) f.get(q).get(rs4).i32Add().set(q);
      }
    }
  };
  f.i32Const(0).set(p0);
  f.block(() => {
    f.get(k).i32Eqz().brIf(0);
    f.loop(() => {
      // p1 = min(p0 + PACK_BLOCK, k)
      f.get(p0).i32Const(PACK_BLOCK).i32Add().tee(p1).get(k).get(p1).get(k).i32LtS().select().set(p1);
      f.get(i0Start).set(i0);
      f.block(() => {
        f.get(i0).get(i0End).i32GeS().brIf(0);
        f.loop(() => {
          // live = min(w, rows − i0); d = dst + (i0·k + p0·w)·4; sp = src + (i0·rs + p0·cs)·4
          f.i32Const(w).get(rows).get(i0).i32Sub().tee(live).get(live).i32Const(w).i32GtS().select().set(live);
          f.get(dst).get(i0).get(k).i32Mul().get(p0).i32Const(w).i32Mul().i32Add().i32Const(2).i32Shl().i32Add()
            .set(d);
          f.get(src).get(i0).get(rs).i32Mul().get(p0).get(cs).i32Mul().i32Add().i32Const(2).i32Shl().i32Add()
            .set(sp);
          f.get(p0).set(p);
          f.get(live).i32Const(w).i32Eq().if(() => {
            f.get(rs).i32Const(1).i32Eq().if(() => {
              // Full panel, contiguous rows: vectors, then the w mod 4 tail.
              pLoop(() => {
                for (let v = 0; v + 4 <= w; v += 4) f.get(d).get(sp).v128Load(4 * v, 2).v128Store(4 * v, 2);
                for (let r = w - (w % 4); r < w; r++) f.get(d).get(sp).f32Load(4 * r).f32Store(4 * r);
              });
            }, () => {
              f.get(cs).i32Const(1).i32Eq().if(() => pLoop4(transposed));
              pLoop(gather);
            });
          }, () => {
            // The last, partial panel: rows past `rows` are zero.
            pLoop(() => {
              f.get(sp).set(q);
              for (let r = 0; r < w; r++) {
                f.get(live).i32Const(r).i32GtS().if(() => {
                  f.get(d).get(q).f32Load().f32Store(4 * r);
                }, () => {
                  f.get(d).i32Const(0).i32Store(4 * r);
                });
                if (r + 1 < w) f.get(q).get(rs4).i32Add().set(q);
              }
            });
          });
          f.get(i0).i32Const(w).i32Add().tee(i0).get(i0End).i32LtS().brIf(0);
        });
      });
      f.get(p0).i32Const(PACK_BLOCK).i32Add().tee(p0).get(k).i32LtS().brIf(0);
    });
  });
  return f.index;
}

/**
 * `drain(ctl, until) → units run`: claim units by CAS on the counter and run each (see {@link Unit}) until
 * the job has none left, or the next one's index is `until` or more (unsigned: Workers pass −1; the calling
 * thread stops at a product boundary to copy the next product's operands in). A unit that must wait (an operand not yet copied in, packing still under way) sleeps in
 * 1 ms `memory.atomic.wait32` naps and gives up, returning, if a thread failed. Units are claimed in table
 * order and every wait is for units earlier in that order (or for the calling thread's copies, which come
 * before its own `drain`), so the claimed units always finish.
 */
function emitDrain(
  mod: ModuleBuilder,
  fns: { gemm: number; gemmFused: number; packA: number; packB: number },
): void {
  const { gemm: gemmIndex, gemmFused, packA, packB } = fns;
  const { i32 } = ValType;
  const d = mod.addFunction("drain", [i32, i32], [i32]);
  const ctl = 0, until = 1;
  const ran = d.local(i32), w = d.local(i32), idx = d.local(i32), e = d.local(i32), r = d.local(i32);
  const seen = d.local(i32), spins = d.local(i32);
  const arg = (i: number) => d.get(e).i32Load(Unit.args + 4 * i);
  /** Gives up (returns the units run so far) if a thread failed. */
  const bailIfFailed = () => d.get(ctl).i32AtomicLoad(Ctl.failed).if(() => d.get(ran).return());
  /**
   * The end of a wait loop's body: spin ({@link SPIN_LOADS} rounds; waking a sleeping thread costs more than
   * most of these waits last, see threads.ts), then sleep in 1 ms naps on `field` of record r, expecting
   * `value()`.
   */
  const napAfterSpinning = (field: number, value: () => void) => {
    d.get(spins).i32Const(1).i32Add().tee(spins).i32Const(SPIN_LOADS).i32LtU().brIf(0);
    d.get(r);
    value();
    d.i64Const(1_000_000).atomicWait32(field).drop();
    d.br(0);
  };
  /** Waits until the record at byte address r has every unit done. */
  const waitDone = () => {
    d.i32Const(0).set(spins);
    d.block(() => {
      d.loop(() => {
        d.get(r).i32AtomicLoad(Rec.done).tee(seen).get(r).i32Load(Rec.units).i32GeU().brIf(1);
        bailIfFailed();
        napAfterSpinning(Rec.done, () => d.get(seen));
      });
    });
  };
  /** Counts one unit done in the record at byte address r and wakes whoever waits on it. */
  const countDone = () => {
    d.get(r).i32Const(1).i32AtomicAdd(Rec.done).drop();
    d.get(r).i32Const(-1).atomicNotify(Rec.done).drop();
  };
  d.block(() => {
    d.loop(() => {
      d.get(ctl).i32AtomicLoad(Ctl.counter).tee(w).i32Const(UNIT_MASK).i32And().tee(idx);
      d.get(ctl).i32Load(Ctl.total).i32GeU().brIf(1);
      d.get(idx).get(until).i32GeU().brIf(1);
      // Claim unit idx; if another thread got there first, look again.
      d.get(ctl).get(w).get(w).i32Const(1).i32Add().i32AtomicCmpxchg(Ctl.counter).get(w).i32Ne().brIf(0);
      d.get(ctl).i32Load(Ctl.table).get(idx).i32Const(Unit.size).i32Mul().i32Add().set(e);
      d.get(e).i32Load(Unit.kind).i32Const(UnitKind.gemm).i32GeU().if(() => {
        d.get(e).i32Load(Unit.rec).set(r);
        waitDone();
        d.get(e).i32Load(Unit.recB).set(r);
        waitDone();
        d.get(e).i32Load(Unit.kind).i32Const(UnitKind.gemm).i32Eq().if(() => {
          for (let i = 0; i < 8; i++) arg(i);
          d.call(gemmIndex);
        }, () => {
          for (let i = 0; i < 12; i++) arg(i);
          d.call(gemmFused);
        });
        d.get(e).i32Load(Unit.recOut).set(r);
        countDone();
      }, () => {
        // Wait until the calling thread has copied the operand in.
        d.get(e).i32Load(Unit.rec).set(r);
        d.i32Const(0).set(spins);
        d.block(() => {
          d.loop(() => {
            d.get(r).i32AtomicLoad(Rec.ready).brIf(1);
            bailIfFailed();
            napAfterSpinning(Rec.ready, () => d.i32Const(0));
          });
        });
        const pack = (fn: number) => {
          for (let i = 0; i < 8; i++) arg(i);
          d.call(fn);
        };
        d.get(e).i32Load(Unit.kind).i32Const(UnitKind.packA).i32Eq().if(() => pack(packA), () => pack(packB));
        countDone();
      });
      d.get(ctl).i32Const(1).i32AtomicAdd(Ctl.done).drop();
      d.get(ran).i32Const(1).i32Add().set(ran);
      d.br(0);
    });
  });
  d.get(ran);
}
