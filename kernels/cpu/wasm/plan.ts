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
 * {@link PACK_UNIT_FLOATS} floats. Products run biggest first (so the small ones fill the tail), each
 * preceded by the packing of its operands, so threads start on the first product while the calling thread
 * is still copying the next ones in.
 *
 * Memory: operands used by several products (a broadcast batch operand) stay for the whole job; each
 * product's own operands and result go in a slot, and past {@link SLOT_BUDGET_BYTES} the slots are reused
 * round-robin (`MatmulPlan.slots`), the calling thread copying a product out before refilling its slot.
 *
 * Bits: whatever the cut, every output is summed over K strictly in order by `gemm` (see `emit.ts`), so the
 * plan (and so the thread count) never changes a result.
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
  /** Where the values are (outside the module's memory: they are copied in). */
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

/** An operand's place in memory (float offsets) and its record (byte address). */
export interface PlacedOperand {
  operand: MatmulOperand;
  /** Panel width: mr for op(A), nr for op(B)ᵀ. */
  w: number;
  /** Floats copied in: X's span in `data`, from `offset`. */
  span: number;
  /** Float offset of the copy. */
  raw: number;
  /** Float offset of the packed panels. */
  packed: number;
  /** Byte address of the operand's record. */
  rec: number;
}

/** A product's result in memory: `m` × `np` floats (only the first `n` of each row are the result). */
export interface PlacedResult {
  product: MatmulProduct;
  m: number;
  n: number;
  np: number;
  /** Float offset of the padded result. */
  c: number;
  /** Byte address of the product's record. */
  rec: number;
  /** Index of the product's first unit (packing its operands, or its first block of C). */
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
  /** Every operand, once, in the order units first need them. */
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

/**
 * How one product's padded C (mp × np, multiples of mr and nr) is cut into about `pieces` blocks: blocks of
 * whole rows while there are enough row panels, else single row panels split by columns.
 */
function cut(mp: number, np: number, mr: number, nr: number, pieces: number): { rows: number; cols: number } {
  const rowPanels = mp / mr;
  if (pieces <= 1) return { rows: mp, cols: np };
  if (rowPanels >= pieces) return { rows: Math.ceil(rowPanels / pieces) * mr, cols: np };
  const colPanels = np / nr, colSplit = Math.min(colPanels, Math.ceil(pieces / rowPanels));
  return { rows: mr, cols: Math.ceil(colPanels / colSplit) * nr };
}

/**
 * Plans `job` for `threads` threads with an `mr` × `nr` register tile, laying memory out from byte `base`
 * (a multiple of 64): records, operand copies, packed panels, results, then the unit table. Products with M,
 * N or K zero get no units; the caller zeroes their results.
 */
export function planProducts(job: MatmulProducts, threads: number, mr: number, nr: number, base: number): MatmulPlan {
  const live = job.products.filter((p) => {
    const a = job.lhs[p.a], b = job.rhs[p.b];
    if (a.k !== b.k) throw new RangeError(`wasm matmul: K of A (${a.k}) differs from K of B (${b.k})`);
    return a.rows > 0 && b.rows > 0 && a.k > 0;
  });
  const work = (p: MatmulProduct) => roundUp(job.lhs[p.a].rows, mr) * roundUp(job.rhs[p.b].rows, nr) * job.lhs[p.a].k;
  // Biggest first; ties keep their order (the sort is stable).
  const order = live.map((p) => ({ p, w: work(p) })).sort((x, y) => y.w - x.w);
  const target = Math.max(MIN_UNIT_MACS, order.reduce((s, o) => s + o.w, 0) / (UNITS_PER_THREAD * threads));

  // Operands in first-use order (each once), and results.
  const copies: PlacedOperand[] = [];
  const seen = [new Map<number, PlacedOperand>(), new Map<number, PlacedOperand>()];
  const place = (side: 0 | 1, i: number): PlacedOperand => {
    let x = seen[side].get(i);
    if (!x) {
      const operand = (side === 0 ? job.lhs : job.rhs)[i];
      x = { operand, w: side === 0 ? mr : nr, span: spanOf(operand), raw: 0, packed: 0, rec: 0 };
      seen[side].set(i, x);
      copies.push(x);
    }
    return x;
  };
  const pairs = order.map(({ p }) => ({ p, a: place(0, p.a), b: place(1, p.b) }));
  const results: PlacedResult[] = pairs.map(({ p, a, b }) => {
    const m = a.operand.rows, n = b.operand.rows;
    return { product: p, m, n, np: roundUp(n, nr), c: 0, rec: 0, first: 0, operands: [] };
  });

  // Memory: records (bytes), then 64-byte aligned regions (floats): operands used by several products (for
  // the whole job), then the products' own operands and results, in slots recycled round-robin.
  const uses = new Map<PlacedOperand, number>();
  for (const { a, b } of pairs) for (const x of [a, b]) uses.set(x, (uses.get(x) ?? 0) + 1);
  let recs = 0;
  for (const x of [...copies, ...results]) x.rec = base + Rec.size * recs++;
  let at = roundUp(base + Rec.size * recs, 64) / 4;
  const alloc = (floats: number) => {
    const here = at;
    at = roundUp(at + floats, 16);
    return here;
  };
  const placeOperand = (x: PlacedOperand) => {
    x.raw = alloc(x.span);
    x.packed = alloc(roundUp(x.operand.rows, x.w) * x.operand.k);
  };
  for (const x of copies) if (uses.get(x)! > 1) placeOperand(x);
  const own = pairs.map(({ a, b }) => [a, b].filter((x) => uses.get(x) === 1));
  const footprint = results.map((r, j) => {
    const operands = own[j].reduce(
      (s, x) => s + roundUp(x.span, 16) + roundUp(roundUp(x.operand.rows, x.w) * x.operand.k, 16),
      0,
    );
    return operands + roundUp(roundUp(r.m, mr) * r.np, 16);
  });
  const all = footprint.reduce((s, f) => s + f, 0), biggest = Math.max(0, ...footprint);
  const budget = SLOT_BUDGET_BYTES / 4, fewest = threads > 1 ? MIN_SLOTS : 1;
  const slots = all <= budget
    ? results.length
    : Math.min(results.length, Math.max(fewest, Math.floor(budget / biggest)));
  const slotBase = at;
  let next = slotBase;
  results.forEach((r, j) => {
    at = slots === results.length ? next : slotBase + (j % slots) * biggest;
    for (const x of own[j]) placeOperand(x);
    r.c = alloc(roundUp(r.m, mr) * r.np);
    next = at;
  });
  at = slots === results.length ? next : slotBase + slots * biggest;
  const table = at * 4;

  // Units: each product's operands' packing (the first time an operand is used), then its blocks of C.
  const records = new Int32Array((Rec.size / 4) * recs);
  const units: number[] = [];
  const count = (rec: number) => records[(rec - base + Rec.units) >> 2]++;
  const packUnits = (x: PlacedOperand, kind: number) => {
    const { rows, k, rs, cs } = x.operand, padded = roundUp(rows, x.w);
    const step = Math.max(1, Math.floor(PACK_UNIT_FLOATS / (k * x.w))) * x.w;
    for (let i0 = 0; i0 < padded; i0 += step) {
      // packA/packB(src, rs, cs, rows, k, dst, i0, i1)
      units.push(kind, x.rec, 0, 0, 4 * x.raw, rs, cs, rows, k, 4 * x.packed, i0, Math.min(i0 + step, padded));
      count(x.rec);
    }
  };
  const packed = new Set<PlacedOperand>();
  pairs.forEach(({ a, b }, i) => {
    const r = results[i], k = a.operand.k, mp = roundUp(r.m, mr);
    r.first = units.length / (Unit.size / 4);
    for (const [x, kind] of [[a, UnitKind.packA], [b, UnitKind.packB]] as const) {
      if (!packed.has(x)) {
        packUnits(x, kind);
        r.operands.push(x);
      }
      packed.add(x);
    }
    const { rows, cols } = cut(
      mp,
      r.np,
      mr,
      nr,
      Math.round((mp * r.np * k) / target),
    );
    for (let r0 = 0; r0 < mp; r0 += rows) {
      for (let c0 = 0; c0 < r.np; c0 += cols) {
        // gemm(aPtr, bPtr, cPtr, rows, cols, k, ldc); the 12th word is unused.
        const [aPtr, bPtr, cPtr] = [4 * (a.packed + r0 * k), 4 * (b.packed + c0 * k), 4 * (r.c + r0 * r.np + c0)];
        units.push(UnitKind.gemm, a.rec, b.rec, r.rec, aPtr, bPtr, cPtr, Math.min(rows, mp - r0));
        units.push(Math.min(cols, r.np - c0), k, r.np, 0);
        count(r.rec);
      }
    }
  });
  const total = units.length / (Unit.size / 4);
  const end = table + units.length * 4;
  return { records, units: Int32Array.from(units), table, total, copies, results, slots, end };
}
