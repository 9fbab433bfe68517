/**
 * The job planner of the WebAssembly matmul (`kernels/cpu/wasm/plan.ts`), checked on its table alone (no
 * threads): every block of every product is computed exactly once, each unit comes after the packing it
 * needs, small products stay whole, the work is cut finer for more threads, and recycled memory slots never
 * hold two products the calling thread could have in flight at once.
 */
import assert from "node:assert/strict";
import {
  type MatmulOperand,
  type MatmulPlan,
  type MatmulProducts,
  MIN_UNIT_MACS,
  planProducts,
  SKIP_B_PACKING_MAX_ROWS,
  SLOT_BUDGET_BYTES,
} from "../../kernels/cpu/wasm/plan.ts";
import { Rec, Unit, UnitKind } from "../../kernels/cpu/wasm/emit.ts";

const MR = 6, NR = 8, BASE = 4096;
const roundUp = (x: number, to: number) => Math.ceil(x / to) * to;

/** A grouped product: group g has `rows[g]` rows of A (K columns) and its own N × K operand. */
function grouped(rows: number[], k: number, n: number): MatmulProducts {
  const out = new Float32Array(rows.reduce((s, r) => s + r, 0) * n);
  const x = new Float32Array(out.length / n * k), w = new Float32Array(rows.length * k * n);
  const lhs: MatmulOperand[] = [], rhs: MatmulOperand[] = [];
  let lo = 0;
  const products = rows.map((m, g) => {
    lhs.push({ data: x, offset: lo * k, rows: m, k, rs: k, cs: 1 });
    rhs.push({ data: w, offset: g * k * n, rows: n, k, rs: 1, cs: n });
    const p = { a: g, b: g, out, outOff: lo * n };
    lo += m;
    return p;
  });
  return { lhs, rhs, products };
}

/** The table's units as objects. */
function unitsOf(plan: MatmulPlan) {
  const w = Unit.size / 4;
  return Array.from({ length: plan.total }, (_, i) => {
    const u = plan.units.subarray(i * w, (i + 1) * w);
    return { kind: u[0], rec: u[1], recB: u[2], recOut: u[3], args: Array.from(u.subarray(4)) };
  });
}

/**
 * Checks coverage, ordering and counts of a plan; returns the gemm units' MACs. `resident` is the planner's:
 * a result written in place has its first `direct` rows in its output (row stride N), the rest in `c`.
 */
function checkPlan(plan: MatmulPlan, resident: (data: Float32Array) => number = () => -1): number[] {
  const units = unitsOf(plan);
  const recUnits = (rec: number) => plan.records[(rec - BASE + Rec.units) >> 2];
  const done = new Map<number, number>();
  const macs: number[] = [];
  const covered = new Map<number, Uint8Array>();
  for (const r of plan.results) covered.set(r.rec, new Uint8Array(roundUp(r.m, MR) * r.np));
  units.forEach((u, i) => {
    if (u.kind >= UnitKind.gemm) {
      // gemm or gemmFused: its operands are fully packed by earlier units (an op(B)ᵀ packed inside its blocks
      // has none).
      for (const rec of [u.rec, u.recB]) {
        assert.equal(done.get(rec) ?? 0, recUnits(rec), `unit ${i}: packing not before`);
      }
      const r = plan.results.find((x) => x.rec === u.recOut)!;
      assert(i >= r.first, `unit ${i} before its product's first unit`);
      const [, , cPtr, rows, cols, k, ldc] = u.args;
      const home = r.direct > 0 ? resident(r.product.out) / 4 + r.product.outOff : -1;
      const inPlace = home >= 0 && cPtr / 4 >= home && cPtr / 4 < home + r.direct * r.n;
      assert.equal(ldc, inPlace ? r.n : r.np);
      const start = inPlace ? cPtr / 4 - home : cPtr / 4 - r.c;
      const r0 = Math.floor(start / ldc), c0 = start % ldc;
      assert.equal(inPlace, r.direct > 0, "a result is written wholly in place or wholly in the working memory");
      // The last argument, rows stored: in place, only the product's own (never past its last row).
      const live = u.args[u.kind === UnitKind.gemm ? 7 : 11];
      assert.equal(live, inPlace ? Math.min(rows, r.m - r0) : rows, `unit ${i}: rows stored`);
      assert(live > rows - MR && live <= rows, "only a last row panel is partial");
      assert(rows % MR === 0 && cols % NR === 0 && r0 % MR === 0 && c0 % NR === 0, "whole tiles");
      const cover = covered.get(r.rec)!;
      for (let y = r0; y < r0 + rows; y++) for (let x = c0; x < c0 + cols; x++) cover[y * r.np + x]++;
      macs.push(rows * cols * k);
      done.set(u.recOut, (done.get(u.recOut) ?? 0) + 1);
    } else {
      done.set(u.rec, (done.get(u.rec) ?? 0) + 1);
    }
  });
  for (const [rec, cover] of covered) {
    assert(cover.every((c) => c === 1), "every block of C exactly once");
    assert.equal(done.get(rec), recUnits(rec), "the product's record counts its units");
  }
  assert(plan.end <= plan.table + plan.total * Unit.size);
  return macs;
}

Deno.test("wasm plan: grouped products are covered once, packing first, empty groups get nothing", () => {
  for (const threads of [1, 2, 3]) {
    const plan = planProducts(grouped([48, 0, 22, 42, 121, 261, 12, 6], 256, 1024), threads, MR, NR, BASE);
    checkPlan(plan);
    assert.equal(plan.results.length, 7, "the empty group has no product");
    // Biggest first.
    assert.deepEqual(plan.results.map((r) => r.m), [261, 121, 48, 42, 22, 12, 6]);
  }
});

Deno.test("wasm plan: small products stay whole; more threads cut finer, never under the minimum", () => {
  const tiny = planProducts(grouped([5, 3, 7], 16, 24), 4, MR, NR, BASE);
  const gemms = unitsOf(tiny).filter((u) => u.kind === UnitKind.gemm);
  assert.equal(gemms.length, 3, "one unit per tiny product");
  const big = grouped([64, 64, 64, 64], 256, 1024);
  const one = checkPlan(planProducts(big, 1, MR, NR, BASE)), two = checkPlan(planProducts(big, 2, MR, NR, BASE));
  assert(two.length > one.length, `${two.length} units on two threads, ${one.length} on one`);
  for (const m of two) assert(m >= MIN_UNIT_MACS / 2, `a unit of ${m} multiply-adds`);
});

Deno.test("wasm plan: a shared operand is packed once and kept for the whole job", () => {
  // A batch whose B is broadcast (stride 0): one rhs for every item.
  const k = 64, n = 96, m = 40, batch = 5;
  const a = new Float32Array(batch * m * k), b = new Float32Array(k * n), out = new Float32Array(batch * m * n);
  const plan = planProducts(
    {
      lhs: Array.from({ length: batch }, (_, t) => ({ data: a, offset: t * m * k, rows: m, k, rs: k, cs: 1 })),
      rhs: [{ data: b, offset: 0, rows: n, k, rs: 1, cs: n }],
      products: Array.from({ length: batch }, (_, t) => ({ a: t, b: 0, out, outOff: t * m * n })),
    },
    2,
    MR,
    NR,
    BASE,
  );
  checkPlan(plan);
  assert.equal(unitsOf(plan).filter((u) => u.kind === UnitKind.packB).length, 1);
  assert.equal(plan.copies.length, batch + 1);
});

Deno.test("wasm plan: past the budget, slots are recycled and never overlap products in flight", () => {
  // 8 experts of 1 MiB weights: the job's own memory passes the budget.
  const job = grouped([48, 22, 42, 121, 261, 12, 6, 0], 256, 1024);
  for (const threads of [1, 2]) {
    const plan = planProducts(job, threads, MR, NR, BASE);
    checkPlan(plan);
    assert(plan.slots < plan.results.length, `${plan.slots} slots for ${plan.results.length} products`);
    if (threads > 1) assert(plan.slots >= 3);
    // Products fewer than `slots` apart use disjoint memory; the whole job fits its budget of slots.
    const span = (j: number) => {
      const r = plan.results[j], own = [...r.operands, { raw: r.c, span: roundUp(r.m, MR) * r.np }];
      return own.map((x) => [x.raw, x.raw + x.span] as const);
    };
    for (let i = 0; i < plan.results.length; i++) {
      for (let j = i + 1; j < Math.min(plan.results.length, i + plan.slots); j++) {
        for (const [a0, a1] of span(i)) {
          for (const [b0, b1] of span(j)) assert(a1 <= b0 || b1 <= a0, `products ${i} and ${j} overlap`);
        }
      }
    }
    assert(plan.end < 3 * SLOT_BUDGET_BYTES + 4 * 2 ** 20, `${plan.end} bytes`);
  }
  // Under the budget nothing is recycled.
  const small = planProducts(grouped([30, 20, 10], 64, 128), 2, MR, NR, BASE);
  assert.equal(small.slots, small.results.length);
});

Deno.test("wasm plan: resident operands take no copy space, are read in place, and still wait to be made ready", () => {
  const job = grouped([48, 22, 42, 121, 261, 12, 6, 0], 256, 1024);
  // Pretend the weights live in the module's memory at byte 2^28 (the activations are copied in).
  const weights = job.rhs[0].data, home = 2 ** 28;
  const copiedPlan = planProducts(job, 2, MR, NR, BASE);
  const plan = planProducts(job, 2, MR, NR, BASE, (data) => data === weights ? home : -1);
  checkPlan(plan);
  assert(plan.end < copiedPlan.end, "no room is laid out for resident copies");
  for (const x of plan.copies) {
    assert.equal(x.resident, x.operand.data === weights);
    if (x.resident) assert.equal(x.raw, home / 4 + x.operand.offset, "packed from where the values are");
    // With recycled slots a packing unit may overwrite the panels of the slot's previous product: it must wait
    // for the calling thread to mark its operand ready (after retiring that product), resident or not.
    assert.equal(plan.records[(x.rec - BASE + Rec.ready) >> 2], 0, "no operand starts ready");
  }
});

Deno.test("wasm plan: results that live in the module's memory are written in place, partial last panels too", () => {
  const job = grouped([48, 22, 45, 121, 261, 12, 5, 0], 256, 1024); // 45, 121, 261 and 5 rows: partial panels
  const out = job.products[0].out, home = 2 ** 28;
  const resident = (data: Float32Array) => data === out ? home : -1;
  for (const threads of [1, 2]) {
    const plan = planProducts(job, threads, MR, NR, BASE, resident);
    checkPlan(plan, resident);
    for (const r of plan.results) assert.equal(r.direct, r.m, `${r.m} rows`);
    assert(plan.end < planProducts(job, threads, MR, NR, BASE).end, "less working memory");
  }
  // N not whole tiles: nothing in place (a tile would write past a row).
  const ragged = grouped([48, 22], 64, 1020), raggedOut = ragged.products[0].out;
  const plan = planProducts(ragged, 2, MR, NR, BASE, (d) => d === raggedOut ? home : -1);
  assert(plan.results.every((r) => r.direct === 0));
});

Deno.test("wasm plan: a resident weight used by one product of few rows is packed inside each block that uses it", () => {
  // The weight row-major (its forward product) or read transposed (its backward one), N whole tiles or not.
  const home = 2 ** 28;
  const rowMajor = grouped([48, 22, 300, 6], 64, 1024);
  const transposed = grouped([48, 22, 300, 6], 64, 1024);
  for (const x of transposed.rhs) Object.assign(x, { rs: 64, cs: 1 });
  const ragged = grouped([48, 22, 300, 6], 64, 1020);
  for (const job of [rowMajor, transposed, ragged]) {
    const weights = job.rhs[0].data, resident = (d: Float32Array) => d === weights ? home : -1;
    for (const threads of [1, 2]) {
      const plan = planProducts(job, threads, MR, NR, BASE, resident, 32);
      checkPlan(plan, resident);
      const units = unitsOf(plan), strips = new Set<number>();
      for (const r of plan.results) {
        // Up to SKIP_B_PACKING_MAX_ROWS rows; the 300-row expert's weight is reused by enough row panels to be
        // worth packing in advance.
        assert.equal(r.b.fused, r.m <= SKIP_B_PACKING_MAX_ROWS, `${r.m} rows`);
        assert.equal(units.some((u) => u.kind === UnitKind.packB && u.rec === r.b.rec), !r.b.fused);
        for (const u of units.filter((u) => u.recOut === r.rec)) {
          assert.equal(u.kind, r.b.fused ? UnitKind.gemmFused : UnitKind.gemm);
          if (!r.b.fused) continue;
          // bSrc: row c0 of op(B)ᵀ in the weight itself; its strides; the rows left from c0 (for zero padding).
          const [, bSrc, , rows, , , , strip, rs, cs, rowsLeft] = u.args;
          // Cut by columns only: every block has all the product's rows, so each strip is packed once.
          assert.equal(rows, Math.ceil(r.m / MR) * MR, "a fused block has every row");
          const { rs: wantRs, cs: wantCs } = r.b.operand;
          assert.deepEqual([rs, cs], [wantRs, wantCs]);
          const c0 = (bSrc / 4 - r.b.raw) / rs;
          assert(Number.isInteger(c0) && c0 >= 0 && c0 < r.n && c0 % NR === 0, `row ${c0}`);
          assert.equal(rowsLeft, r.n - c0);
          // Its own strip of KC × NR floats (KC 32 here, under K = 64), inside the job's memory, before the table.
          assert(!strips.has(strip), "one strip per block");
          strips.add(strip);
          assert(strip % 64 === 0 && strip >= BASE && strip + 4 * 32 * NR <= plan.table, `strip at ${strip}`);
        }
      }
      const sorted = [...strips].sort((a, b) => a - b);
      sorted.forEach((s, i) => i > 0 && assert(s - sorted[i - 1] >= 4 * 32 * NR, "strips do not overlap"));
      assert(plan.results.some((r) => r.b.fused) && plan.results.some((r) => !r.b.fused));
    }
    // Copied weights are packed in advance.
    assert(planProducts(job, 2, MR, NR, BASE).results.every((r) => !r.b.fused));
  }
});

Deno.test("wasm plan: K of A and B must agree", () => {
  const x = new Float32Array(64);
  assert.throws(
    () =>
      planProducts(
        {
          lhs: [{ data: x, offset: 0, rows: 2, k: 4, rs: 4, cs: 1 }],
          rhs: [{ data: x, offset: 0, rows: 2, k: 5, rs: 5, cs: 1 }],
          products: [{ a: 0, b: 0, out: x, outOff: 0 }],
        },
        1,
        MR,
        NR,
        BASE,
      ),
    RangeError,
  );
});
