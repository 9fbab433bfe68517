/**
 * Plans one job of the WebAssembly matmul: any list of products (a batch, every group of a grouped matmul,
 * every group of its weight gradient) as one table of units that the calling thread and the Workers claim
 * together (see `emit.ts` for the table's layout and `threads.ts` for the pool), and where everything lives
 * in the module's memory.
 *
 * Why one job for many products: each job wakes the Workers and ends in a barrier, which costs tens of
 * microseconds and leaves threads idle at the tail; an MoE layer's grouped products are 8 or more smallish
 * products, so running them one job each paid that per group. Here units span products: the tail of one
 * product overlaps the start of the next, and a product too small to be worth splitting is one unit that
 * one thread runs while the others run other products.
 *
 * How work is cut: every product's C (padded to whole register tiles) is split into blocks of rows (columns
 * when it has too few row panels), aiming at {@link UNITS_PER_THREAD} units per thread over the whole job
 * and none under {@link MIN_UNIT_MACS} multiply-adds. Packing is cut into units of about
 * {@link PACK_UNIT_FLOATS} floats, except for an op(B)ᵀ used by one product of at most
 * {@link SKIP_B_PACKING_MAX_ROWS} rows (an expert's weight), packed inside the blocks that use it.
 * Products run biggest first (so the small ones fill the tail); a block of C waits only for its own
 * operands' packing, so threads start on the first product while the calling thread is still copying the
 * next ones in.
 *
 * Memory: operands used by several products (a broadcast batch operand) stay for the whole job; each
 * product's own operands and result go in a slot, and past {@link SLOT_BUDGET_BYTES} the slots are reused
 * round-robin (`MatmulPlan.slots`), the calling thread copying a product out before refilling its slot.
 *
 * Bits: whatever the cut, every output is summed over K strictly in order by `gemm` or `gemmFused` (the
 * same multiply-adds, see `emit.ts`), so the plan (and so the thread count) never changes a
 * result.
 *
 * @module
 */
import { Rec, Unit, UnitKind } from "./emit.ts";

/**
 * One operand as `gemm` sees it: a `rows` × `k` matrix X with element (i, p) at
 * `data[offset + i·rs + p·cs]` — op(A) (rows = M) or op(B)ᵀ (rows = N), so every transpose is a choice of
 * strides. Strides are non-negative.
 */
export interface MatmulOperand {
  /**
   * Where the values are: copied into the module's memory, unless they already live there (see
   * `resident` of {@link planProducts}).
   */
  data: Float32Array;
  /** Element offset of X[0, 0]. */
  offset: number;
  /** Rows of X. */
  rows: number;
  /** Columns of X: the summed dimension. */
  k: number;
  /** Elements between consecutive rows. */
  rs: number;
  /** Elements between consecutive columns. */
  cs: number;
}

/** One product: `out[outOff …]` (M×N, row-major, contiguous) = A · Bᵀ for A = `lhs[a]`, B = `rhs[b]`. */
export interface MatmulProduct {
  /** Index of op(A) in the job's `lhs`. */
  a: number;
  /** Index of op(B)ᵀ in the job's `rhs`. */
  b: number;
  /** Where the M×N result goes. */
  out: Float32Array;
  /** Element offset of the result in `out`. */
  outOff: number;
}

/** A list of products over shared operand lists (an operand used by several products is packed once). */
export interface MatmulProducts {
  /** The op(A) operands (M × K each). */
  lhs: readonly MatmulOperand[];
  /** The op(B)ᵀ operands (N × K each). */
  rhs: readonly MatmulOperand[];
  /** The products; A and B of one product must have the same K. */
  products: readonly MatmulProduct[];
}

/**
 * Units of C each thread should get about, so threads that start late or share their core with another
 * process even out by claiming more (dynamic claiming, see threads.ts). One thread gets several units too:
 * V8 first runs a new function on its baseline compiler and uses the optimised code from the next call on,
 * so a large first product made of several `gemm` calls gets up to speed within itself (measured: the first
 * 512³ product of a process took about 40 ms instead of 80; steady state, 12 ms, is unchanged).
 */
export const UNITS_PER_THREAD = 8;
/**
 * Fewest multiply-adds in one unit (a few microseconds of work): claiming a unit costs one compare-and-swap
 * and a call, so units this size keep that overhead under a few percent.
 */
export const MIN_UNIT_MACS = 2 ** 16;
/** About how many floats one packing unit packs (a few microseconds of copying). */
export const PACK_UNIT_FLOATS = 2 ** 15;
/**
 * Most bytes the products' own operands and results may take before their memory is recycled (see
 * {@link MatmulPlan.slots}). Why recycle: an MoE layer's grouped product copies every expert's weights in
 * (8 × 1 MiB in the benchmark) and packs them; laid out side by side, the job's ≈ 20 MiB made one thread
 * ≈ 12% slower than one product at a time in the same few MiB (measured, 7.9 against 7.0 ms per call; the
 * same per-product calls spread over 20 MiB were as slow), so cache (or TLB) reach, not the job, cost it.
 * With slots of ≤ 4 MiB in all, one thread is back to 7.0 ms.
 */
export const SLOT_BUDGET_BYTES = 4 * 2 ** 20;
/**
 * Fewest slots when memory is recycled and Workers may join: the calling thread copies products in ahead
 * of the one it works on, and refills a slot only when its product is two behind (long finished).
 */
export const MIN_SLOTS = 3;

/**
 * Most rows a product may have for its op(B)ᵀ to skip the packing pass, when that operand lives in the module's
 * memory and is used by that product alone (an expert's weight): `gemmFused` packs it strip by strip inside each
 * block that uses it, into the block's own buffer. Packing B into the job's memory is a pass over all of it that
 * pays off through reuse across row panels; an expert sees few tokens, and the packing of every expert's weight
 * did not get faster with a second thread (measured, 2-vCPU Zen 4: 8 experts of 512 × 2048 with 64 rows each
 * took 4.2–5.4 ms longer than the same rows against one shared weight, on one thread and on two). Fused, the
 * benchmark's grouped backward products at d = 512 took 65–70 against 68–73 ms on two threads, 122–135 against
 * 129–146 on one. (A variant that read a row-major weight where it lives, without packing it, won with the 6 × 8
 * tile but lost with the 4 × 8 one, whose steps read B every four rows: see `DEFAULT_OPTIONS` in `emit.ts`.)
 */
export const SKIP_B_PACKING_MAX_ROWS = 256;

/** An operand's place in memory (float offsets) and its record (byte address). */
export interface PlacedOperand {
  operand: MatmulOperand;
  /** Whether it is an op(A) (else an op(B)ᵀ). */
  lhs: boolean;
  /** Panel width: mr for op(A), nr for op(B)ᵀ. */
  w: number;
  /** Floats copied in: X's span in `data`, from `offset`. */
  span: number;
  /** Float offset of the copy (of the values themselves, for a resident operand). */
  raw: number;
  /**
   * Whether the values already live in the module's memory: nothing is copied, but the record is still made
   * ready by the calling thread when a copy would be (with recycled slots, packing must not start before the
   * slot's previous product is done).
   */
  resident: boolean;
  /**
   * An op(B)ᵀ that `gemmFused` packs strip by strip inside each block, into the block's own buffer (see
   * {@link SKIP_B_PACKING_MAX_ROWS}).
   */
  fused: boolean;
  /** Float offset of the packed panels. */
  packed: number;
  /** Byte address of the operand's record. */
  rec: number;
  /** Products using it. */
  uses: number;
}

/** A product's result in memory: `m` × `np` floats (only the first `n` of each row are the result). */
export interface PlacedResult {
  product: MatmulProduct;
  /** Its op(A) and op(B)ᵀ. */
  a: PlacedOperand;
  b: PlacedOperand;
  m: number;
  n: number;
  np: number;
  /** Multiply-adds, padded tiles included. */
  work: number;
  /**
   * Rows of the result written straight into `out` (it lives in the module's memory and N is whole register
   * tiles): 0 or M. A partial last row panel is written in place too: the kernel stores only its live rows.
   */
  direct: number;
  /** Float offset of the padded result in the working memory when it is not written in place (copied out). */
  c: number;
  /** Byte address of the product's record. */
  rec: number;
  /**
   * Index of the product's first unit: the first packing its operands (or its first block of C), after which,
   * with recycled slots, come its blocks; without recycling, every packing unit of the job comes first.
   */
  first: number;
  /** The operands first used by this product: copied in before any thread can start on it. */
  operands: PlacedOperand[];
}

/** Everything a job needs: memory layout, the records and unit table to write, what to copy in and out. */
export interface MatmulPlan {
  /** The records ({@link Rec}), as i32 words to write at the plan's `base`. */
  records: Int32Array;
  /** The unit table ({@link Unit}), as i32 words to write at byte {@link MatmulPlan.table}. */
  units: Int32Array;
  /** Byte address of the unit table. */
  table: number;
  /** Units in the table. */
  total: number;
  /** Every operand, once, in the order units first need them (resident ones too: they need no copy). */
  copies: PlacedOperand[];
  /** Results, in the order their units run. */
  results: PlacedResult[];
  /**
   * Memory slots of the products' own operands and results: `results[j]` reuses the memory of
   * `results[j − slots]`, so the calling thread must have copied that one out before copying product j in.
   */
  slots: number;
  /** Bytes of memory the job uses, from 0. */
  end: number;
}

const roundUp = (x: number, to: number) => Math.ceil(x / to) * to;

/** Floats of X's span in its array (the elements X can read). */
function spanOf(x: MatmulOperand): number {
  return x.rows === 0 || x.k === 0 ? 0 : (x.rows - 1) * x.rs + (x.k - 1) * x.cs + 1;
}

/** Floats of a result in the working memory: none when it is written straight into its output. */
function resultFloats(r: PlacedResult, mr: number): number {
  return r.direct > 0 ? 0 : roundUp(roundUp(r.m, mr) * r.np, 16);
}

/** The blocks of C of one result, as [first row, rows, first column, columns] (rows multiples of mr). */
function blocksOf(r: PlacedResult, mr: number, nr: number, target: number): number[][] {
  const k = r.a.operand.k, blocks: number[][] = [], rows = roundUp(r.m, mr);
  const c = cut(rows, r.np, mr, nr, Math.round((rows * r.np * k) / target), r.b.fused);
  for (let i = 0; i < rows; i += c.rows) {
    for (let j = 0; j < r.np; j += c.cols) blocks.push([i, Math.min(c.rows, rows - i), j, Math.min(c.cols, r.np - j)]);
  }
  return blocks;
}

/** Floats an operand takes in memory: its copy (none when resident) and its packed panels. */
function operandFloats(x: PlacedOperand): number {
  if (x.fused) return 0;
  return (x.resident ? 0 : roundUp(x.span, 16)) + roundUp(roundUp(x.operand.rows, x.w) * x.operand.k, 16);
}

/** Rows of X packed by one packing unit (whole panels, about {@link PACK_UNIT_FLOATS} floats). */
function packStep(x: PlacedOperand): number {
  return Math.max(1, Math.floor(PACK_UNIT_FLOATS / (x.operand.k * x.w))) * x.w;
}

/**
 * How one product's padded C (mp × np, multiples of mr and nr) is cut into about `pieces` blocks: blocks of
 * whole rows while there are enough row panels, else single row panels split by columns. With `byColumns`,
 * blocks of all rows split by columns only: for `gemmFused`, which packs the B strips of each block, so that
 * every strip is packed once (cut by rows, each row block packed all of B again; measured, the benchmark's
 * grouped backward products at d = 512: 158–160 against 169–172 ms on two threads, 239 against 253 on one;
 * the d = 512 step on two threads 906 against 934 ms, paired 1.06×).
 */
function cut(
  mp: number,
  np: number,
  mr: number,
  nr: number,
  pieces: number,
  byColumns = false,
): { rows: number; cols: number } {
  const rowPanels = mp / mr, colPanels = np / nr;
  if (pieces <= 1) return { rows: mp, cols: np };
  if (byColumns) return { rows: mp, cols: Math.ceil(colPanels / Math.min(colPanels, pieces)) * nr };
  if (rowPanels >= pieces) return { rows: Math.ceil(rowPanels / pieces) * mr, cols: np };
  const colSplit = Math.min(colPanels, Math.ceil(pieces / rowPanels));
  return { rows: mr, cols: Math.ceil(colPanels / colSplit) * nr };
}

/**
 * Plans `job` for `threads` threads with an `mr` × `nr` register tile, laying memory out from byte `base`
 * (a multiple of 64): records, operand copies, packed panels, results, then the unit table. Products with M,
 * N or K zero get no units; the caller zeroes their results. `resident` gives the byte address in the
 * module's memory of an array that lives there (else −1): such operands are packed where they are, and
 * such a result's whole row panels are written in place when N is whole tiles (`PlacedResult.direct`). (This
 * runs for every product, however small: it is written to cost a few microseconds.)
 */
export function planProducts(
  job: MatmulProducts,
  threads: number,
  mr: number,
  nr: number,
  base: number,
  resident: (data: Float32Array) => number = () => -1,
  kc = 256,
): MatmulPlan {
  const { lhs, rhs } = job;
  const results: PlacedResult[] = [];
  const none = undefined as unknown as PlacedOperand;
  let work = 0;
  for (const product of job.products) {
    const a = lhs[product.a], b = rhs[product.b];
    if (a.k !== b.k) throw new RangeError(`wasm matmul: K of A (${a.k}) differs from K of B (${b.k})`);
    if (a.rows === 0 || b.rows === 0 || a.k === 0) continue;
    const np = roundUp(b.rows, nr), w = roundUp(a.rows, mr) * np * a.k;
    work += w;
    const direct = np === b.rows && resident(product.out) >= 0 ? a.rows : 0;
    results.push({
      product,
      a: none,
      b: none,
      m: a.rows,
      n: b.rows,
      np,
      work: w,
      direct,
      c: 0,
      rec: 0,
      first: 0,
      operands: [],
    });
  }
  // Biggest first; ties keep their order (the sort is stable).
  if (results.length > 1) results.sort((x, y) => y.work - x.work);
  const target = Math.max(MIN_UNIT_MACS, work / (UNITS_PER_THREAD * threads));

  // Operands in first-use order, each once (by index: `job.lhs[i]` is one operand however often used).
  const copies: PlacedOperand[] = [];
  const placed = [new Array<PlacedOperand | undefined>(lhs.length), new Array<PlacedOperand | undefined>(rhs.length)];
  /** Product r's op(A) (side 0) or op(B)ᵀ (side 1), placed on first use. */
  const place = (r: PlacedResult, side: 0 | 1) => {
    const i = side === 0 ? r.product.a : r.product.b;
    let x = placed[side][i];
    if (!x) {
      const operand = (side === 0 ? lhs : rhs)[i], home = resident(operand.data);
      x = {
        operand,
        lhs: side === 0,
        w: side === 0 ? mr : nr,
        span: spanOf(operand),
        raw: home < 0 ? 0 : home / 4 + operand.offset,
        resident: home >= 0,
        fused: false,
        packed: 0,
        rec: 0,
        uses: 0,
      };
      placed[side][i] = x;
      copies.push(x);
      r.operands.push(x);
    }
    x.uses++;
    return x;
  };
  for (const r of results) {
    r.a = place(r, 0);
    r.b = place(r, 1);
  }
  for (const r of results) r.b.fused = r.b.resident && r.b.uses === 1 && r.m <= SKIP_B_PACKING_MAX_ROWS;

  // Memory: records (bytes), then 64-byte aligned regions (floats): operands used by several products (for
  // the whole job), then the products' own operands and results, in slots recycled round-robin.
  let recs = 0;
  for (const x of copies) x.rec = base + Rec.size * recs++;
  for (const r of results) r.rec = base + Rec.size * recs++;
  let at = roundUp(base + Rec.size * recs, 64) / 4;
  // A group of operands and results: the copies, then the packed panels, then the results (measured: on a
  // batch of 16 small products this ran ≈ 3% faster than each product's memory side by side).
  const lay = (operands: PlacedOperand[], rs: PlacedResult[]) => {
    // Copies of A's, then of B's: a batch's consecutive operands then lie as in their arrays (one memcpy).
    for (const lhsFirst of [true, false]) {
      for (const x of operands) {
        if (x.lhs !== lhsFirst || x.resident) continue;
        x.raw = at;
        at += roundUp(x.span, 16);
      }
    }
    for (const x of operands) {
      if (x.fused) continue;
      x.packed = at;
      at += roundUp(roundUp(x.operand.rows, x.w) * x.operand.k, 16);
    }
    for (const r of rs) {
      r.c = at;
      at += resultFloats(r, mr);
    }
  };
  lay(copies.filter((x) => x.uses > 1), []);
  let all = 0, biggest = 0;
  for (const r of results) {
    let floats = resultFloats(r, mr);
    for (const x of [r.a, r.b]) if (x.uses === 1) floats += operandFloats(x);
    all += floats;
    biggest = Math.max(biggest, floats);
  }
  const budget = SLOT_BUDGET_BYTES / 4, fewest = threads > 1 ? MIN_SLOTS : 1;
  const recycle = all > budget && results.length > fewest;
  const slots = recycle ? Math.min(results.length, Math.max(fewest, Math.floor(budget / biggest))) : results.length;
  const own = (r: PlacedResult) => [r.a, r.b].filter((x) => x.uses === 1);
  if (!recycle) lay(copies.filter((x) => x.uses === 1), results);
  else {
    const slotBase = at;
    results.forEach((r, j) => {
      at = slotBase + (j % slots) * biggest;
      lay(own(r), [r]);
    });
    at = slotBase + slots * biggest;
  }
  // Units: the packing of each operand (once) and the blocks of each C; first their number, to size the table.
  const blocks = results.map((r) => blocksOf(r, mr, nr, target));
  // A KC × NR strip buffer for every block of a fused product (each block is run by one thread).
  const stripFloats = roundUp(Math.min(kc, Math.max(...results.map((r) => r.a.operand.k), 0)) * nr, 16);
  let strips = at;
  results.forEach((r, j) => {
    if (r.b.fused) at += blocks[j].length * stripFloats;
  });
  const table = at * 4;
  let total = 0;
  results.forEach((r, j) => {
    for (const x of r.operands) {
      if (!x.fused) total += Math.ceil(roundUp(x.operand.rows, x.w) / packStep(x));
    }
    total += blocks[j].length;
  });
  const records = new Int32Array((Rec.size / 4) * recs);
  const units = new Int32Array(total * (Unit.size / 4));
  let u = 0;
  const count = (rec: number) => records[(rec - base + Rec.units) >> 2]++;
  /** The packing units of r's operands used first by r. */
  const packUnits = (r: PlacedResult) => {
    r.first = u / (Unit.size / 4);
    for (const x of r.operands) {
      if (x.fused) continue;
      const { rows, k, rs, cs } = x.operand, padded = roundUp(rows, x.w), step = packStep(x);
      const kind = x === r.a ? UnitKind.packA : UnitKind.packB;
      for (let i0 = 0; i0 < padded; i0 += step, u += Unit.size / 4) {
        // packA/packB(src, rs, cs, rows, k, dst, i0, i1)
        units[u] = kind;
        units[u + 1] = x.rec;
        units[u + 4] = 4 * x.raw;
        units[u + 5] = rs;
        units[u + 6] = cs;
        units[u + 7] = rows;
        units[u + 8] = k;
        units[u + 9] = 4 * x.packed;
        units[u + 10] = i0;
        units[u + 11] = Math.min(i0 + step, padded);
        count(x.rec);
      }
    }
  };
  /** The blocks of C of the j-th result: into `out` (row stride N) when it is written in place, else into `c`. */
  const blockUnits = (r: PlacedResult, j: number) => {
    const k = r.a.operand.k, inPlace = r.direct > 0;
    const home = inPlace ? resident(r.product.out) / 4 + r.product.outOff : 0;
    for (const [r0, rows, c0, cols] of blocks[j]) {
      // gemm(aPtr, bPtr, cPtr, rows, cols, k, ldc, live) or gemmFused(…, ldc, strip, rs, cs, rows of op(B)ᵀ,
      // live); live: the block's rows inside the product when written in place (in the working memory the
      // padding rows are the job's own).
      const live = inPlace ? Math.min(rows, r.m - r0) : rows;
      units[u] = r.b.fused ? UnitKind.gemmFused : UnitKind.gemm;
      units[u + 1] = r.a.rec;
      units[u + 2] = r.b.rec;
      units[u + 3] = r.rec;
      units[u + 4] = 4 * (r.a.packed + r0 * k);
      const { rs, cs } = r.b.operand;
      units[u + 5] = 4 * (r.b.fused ? r.b.raw + c0 * rs : r.b.packed + c0 * k);
      if (r.b.fused) {
        // gemmFused's strip buffer, op(B)ᵀ's strides, and its rows from c0 on (the last panel is zero-padded).
        units[u + 11] = 4 * strips;
        strips += stripFloats;
        units[u + 12] = rs;
        units[u + 13] = cs;
        units[u + 14] = r.n - c0;
        units[u + 15] = live;
      } else units[u + 11] = live;
      units[u + 6] = 4 * (inPlace ? home + r0 * r.n + c0 : r.c + r0 * r.np + c0);
      units[u + 7] = rows;
      units[u + 8] = cols;
      units[u + 9] = k;
      units[u + 10] = inPlace ? r.n : r.np;
      count(r.rec);
      u += Unit.size / 4;
    }
  };
  // Recycled slots: each product's packing just before its blocks (a slot's operands can only be packed once
  // it is refilled). Otherwise all packing first (measured: ≈ 4% faster on one thread for a batch of 16
  // small products than each product's packing next to its blocks; a block still only waits for its own
  // operands).
  if (recycle) {
    results.forEach((r, j) => {
      packUnits(r);
      blockUnits(r, j);
    });
  } else {
    results.forEach(packUnits);
    results.forEach(blockUnits);
  }
  return { records, units, table, total, copies, results, slots, end: table + units.length * 4 };
}
