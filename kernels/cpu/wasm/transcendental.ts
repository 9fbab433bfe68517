/**
 * erf, exp and tanh on WebAssembly f64x2 lanes, bit-identical to `fastErf`, `fastExp` and `fastTanh`
 * (`../fast_math.ts`):
 * the same IEEE-exact operations in the same order on the same tables, written into the module's memory
 * at {@link EXP_TABLE_AT} and {@link ERF_TABLE_AT}. A lane outside the functions' range (NaN, ±∞, |x| ≥ 6
 * for erf) is computed on a clamped stand-in — so its table index stays in bounds — and its result is then
 * replaced by the special value where the stand-in's is not already it, as the scalar functions return
 * early.
 *
 * The elementwise kernel of `elementwise_f64.ts` calls these for the `erf`, `exp` and `tanh` nodes of a
 * program; the softmax kernel (`softmax_exp.ts`) calls {@link emitExp}.
 *
 * @module
 */
import { ERF_GRID, erfTable, EXP_CONST, EXP_STEPS, expTable, ROUND_SHIFT, TANH_SATURATES } from "../fast_math.ts";
import type { FunctionBuilder, Local, SimdOpName } from "./assembler.ts";
import { ValType } from "./assembler.ts";

/** Byte address of the exp table (64 doubles) in the kernels' memory. */
export const EXP_TABLE_AT = 0;
/** Byte address of the erf table ((6·64 + 1)·7 doubles). */
export const ERF_TABLE_AT = EXP_TABLE_AT + EXP_STEPS * 8;
/** Bytes the tables take, rounded up to whole vectors: the kernels' work areas start here. */
export const TABLE_BYTES = Math.ceil((ERF_TABLE_AT + (ERF_GRID.max * ERF_GRID.steps + 1) * ERF_GRID.width * 8) / 16) *
  16;

/** Writes both tables into `memory` (which must hold at least {@link TABLE_BYTES}). */
export function writeTables(memory: WebAssembly.Memory): void {
  new Float64Array(memory.buffer, EXP_TABLE_AT, EXP_STEPS).set(expTable());
  const erf = erfTable();
  new Float64Array(memory.buffer, ERF_TABLE_AT, erf.length).set(erf);
}

/** 16 bytes of `v` in both f64 lanes. */
export function f64x2Bytes(v: number): Uint8Array {
  return new Uint8Array(new Float64Array([v, v]).buffer);
}

function i32x4Bytes(v: number): Uint8Array {
  return new Uint8Array(new Int32Array([v, v, v, v]).buffer);
}

/**
 * The vector constants of the emitted functions, in locals set before a loop: a `v128.const` inside the
 * loop would be rebuilt on every iteration (V8 materialises one from immediates in several instructions).
 */
export interface LaneConstants {
  /** f64x2 constants by value. */
  readonly f64: Map<number, Local>;
  /** i32x4 constants by value. */
  readonly i32: Map<number, Local>;
}

const EXP_F64 = (() => {
  const c = EXP_CONST;
  return [0, c.min, c.max, c.shift, c.invL, c.lHi, c.lLo, c.c2, c.c3, c.c4, c.c5, c.c6, Infinity];
})();
const ERF_F64 = [0, NaN, ROUND_SHIFT, ERF_GRID.steps, 1 / ERF_GRID.steps, ERF_GRID.max];
const TANH_F64 = [...EXP_F64, 1, -1, 2, TANH_SATURATES];

/** Emits, before a loop, the constants of {@link emitExp}, {@link emitErf}, {@link emitTanh} (`ops` says which). */
export function hoistConstants(
  f: FunctionBuilder,
  ops: { exp: boolean; erf: boolean; tanh?: boolean },
): LaneConstants {
  const out: LaneConstants = { f64: new Map(), i32: new Map() };
  const f64 = new Set([...(ops.exp ? EXP_F64 : []), ...(ops.erf ? ERF_F64 : []), ...(ops.tanh ? TANH_F64 : [])]);
  const i32 = new Set([
    ...(ops.exp || ops.tanh ? [EXP_STEPS - 1, 1023] : []),
    ...(ops.erf ? [ERF_GRID.width * 8] : []),
  ]);
  for (const v of f64) out.f64.set(v, f.v128Const(f64x2Bytes(v)).setNew(ValType.v128));
  for (const v of i32) out.i32.set(v, f.v128Const(i32x4Bytes(v)).setNew(ValType.v128));
  return out;
}

/** A small stack-machine helper: every value is a fresh v128 local. */
class Lanes {
  constructor(readonly f: FunctionBuilder, readonly consts?: LaneConstants) {}
  private keep(): Local {
    const l = this.f.local(ValType.v128);
    this.f.set(l);
    return l;
  }
  c(v: number): Local {
    const hoisted = this.consts?.f64.get(v);
    if (hoisted !== undefined) return hoisted;
    this.f.v128Const(f64x2Bytes(v));
    return this.keep();
  }
  ci(v: number): Local {
    const hoisted = this.consts?.i32.get(v);
    if (hoisted !== undefined) return hoisted;
    this.f.v128Const(i32x4Bytes(v));
    return this.keep();
  }
  op(name: SimdOpName, ...args: Local[]): Local {
    for (const a of args) this.f.get(a);
    this.f.simdOp(name);
    return this.keep();
  }
  /** `cond ? a : b` per lane (cond: all-ones or zero). */
  sel(a: Local, b: Local, cond: Local): Local {
    return this.op("v128.bitselect", a, b, cond);
  }
  /** A shift of every lane of `v` by the constant `by` (shift ops take an i32 count). */
  shift(name: SimdOpName, v: Local, by: number): Local {
    this.f.get(v).i32Const(by).simdOp(name);
    return this.keep();
  }
  /** The doubles at byte offsets (lanes 0 and 1 of the i32x4 `at`) + `offset`, as one f64x2. */
  gather(a0: Local, a1: Local, offset: number): Local {
    this.f.get(a1).get(a0).simdLoad("v128.load64_zero", offset).v128Load64Lane(1, offset);
    return this.keep();
  }
  /** The i32 lanes 0 and `second` (1, or 2 for the low halves of i64 lanes) of `v` as byte addresses. */
  addresses(v: Local, second = 1): [Local, Local] {
    const a0 = this.f.local(ValType.i32), a1 = this.f.local(ValType.i32);
    this.f.get(v).i32x4ExtractLane(0).set(a0).get(v).i32x4ExtractLane(second).set(a1);
    return [a0, a1];
  }
}

/**
 * Emits eˣ of the f64x2 local `x` as `fastExp` computes it; returns the local of the result. `consts`:
 * constants already in locals (see {@link hoistConstants}).
 */
export function emitExp(f: FunctionBuilder, x: Local, consts?: LaneConstants): Local {
  const l = new Lanes(f, consts), c = EXP_CONST;
  // x clamped to [min, max] (NaN to max: `pmin(a, b)` is b < a ? b : a, `pmax(a, b)` is a < b ? b : a).
  const xc = l.op("f64x2.pmax", l.c(c.min), l.op("f64x2.pmin", l.c(c.max), x));
  const { p, k, tj } = reducedExp(l, xc);
  // 2ᵐ as 2^(m>>1) · 2^(m − (m>>1)), m = k >> 6, so that the product may be subnormal.
  const m = l.shift("i32x4.shr_s", k, 6), e1 = l.shift("i32x4.shr_s", m, 1);
  const scaled = l.op("f64x2.add", tj, l.op("f64x2.mul", tj, p));
  const res = l.op("f64x2.mul", l.op("f64x2.mul", scaled, pow2(l, e1)), pow2(l, l.op("i32x4.sub", m, e1)));
  // Where the clamp moved x (or x is NaN): +∞ above, 0 below, x itself for NaN — pmax(x·∞, 0) is all three.
  const special = l.op("f64x2.pmax", l.op("f64x2.mul", x, l.c(Infinity)), l.c(0));
  return l.sel(special, res, l.op("f64x2.ne", x, xc));
}

/**
 * 2ᵉ per lane for e (−1022 ≤ e ≤ 1023) in the i32 lanes 0 and 2 — the low halves of the i64 lanes — built
 * from its bits: shifting the i64 lanes left by 52 drops whatever the high halves hold.
 */
function pow2(l: Lanes, e: Local): Local {
  return l.shift("i64x2.shl", l.op("i32x4.add", e, l.ci(1023)), 52);
}

/**
 * The reduction fastExp and fastTanh share, of an in-range `y`: k, 2^((k & 63)/64) from the table and
 * p = e^r − 1 (`expK`, `expM1Reduced` of `fast_math.ts`). k is read from the bits of y·64/ln 2 + 1.5·2⁵²,
 * whose low 32 bits hold it (as a signed i32, in the i32 lanes 0 and 2).
 */
function reducedExp(l: Lanes, y: Local): { p: Local; k: Local; tj: Local } {
  const c = EXP_CONST;
  const shift = l.c(c.shift);
  const k = l.op("f64x2.add", l.op("f64x2.mul", y, l.c(c.invL)), shift);
  const kf = l.op("f64x2.sub", k, shift);
  const r = l.op(
    "f64x2.sub",
    l.op("f64x2.sub", y, l.op("f64x2.mul", kf, l.c(c.lHi))),
    l.op("f64x2.mul", kf, l.c(c.lLo)),
  );
  let q = l.op("f64x2.mul", r, l.c(c.c6));
  for (const coef of [c.c5, c.c4, c.c3]) q = l.op("f64x2.mul", r, l.op("f64x2.add", l.c(coef), q));
  q = l.op("f64x2.add", l.c(c.c2), q);
  const p = l.op("f64x2.add", r, l.op("f64x2.mul", l.op("f64x2.mul", r, r), q));
  const [a0, a1] = l.addresses(l.shift("i32x4.shl", l.op("v128.and", k, l.ci(EXP_STEPS - 1)), 3), 2);
  return { p, k, tj: l.gather(a0, a1, EXP_TABLE_AT) };
}

/** Emits tanh(x) of the f64x2 local `x` as `fastTanh` computes it (`consts` as for {@link emitExp}). */
export function emitTanh(f: FunctionBuilder, x: Local, consts?: LaneConstants): Local {
  const l = new Lanes(f, consts);
  const zero = l.c(0), one = l.c(1);
  const a = l.op("f64x2.abs", x);
  const inRange = l.op("f64x2.lt", a, l.c(TANH_SATURATES));
  const ac = l.sel(a, zero, inRange);
  const y = l.op("f64x2.add", ac, ac);
  const { p, k, tj } = reducedExp(l, y);
  const s = l.op("f64x2.mul", tj, pow2(l, l.shift("i32x4.shr_s", k, 6)));
  const em = l.op("f64x2.add", l.op("f64x2.sub", s, one), l.op("f64x2.mul", s, p));
  const th = l.op("f64x2.div", em, l.op("f64x2.add", em, l.c(2)));
  const negative = l.op("f64x2.lt", x, zero);
  const signed = l.sel(x, l.sel(l.op("f64x2.neg", th), th, negative), l.op("f64x2.eq", x, zero));
  const special = l.sel(x, l.sel(l.c(-1), one, negative), l.op("f64x2.ne", x, x));
  return l.sel(signed, special, inRange);
}

/**
 * Emits erf(x) of the f64x2 local `x` as `fastErf` computes it (`consts` as for {@link emitExp}). |x| is
 * clamped to 6 (NaN to 6 too: `pmin` keeps its first operand unless the second is smaller), where the table
 * gives exactly 1 — fastErf's value beyond — so only NaN needs replacing afterwards (by the canonical NaN,
 * which is what the JavaScript loop stores). The grid index is read
 * from the low 32 bits of |x|·64 + 1.5·2⁵² (i32 lanes 0 and 2), which hold the rounded integer.
 */
export function emitErf(f: FunctionBuilder, x: Local, consts?: LaneConstants): Local {
  const l = new Lanes(f, consts), g = ERF_GRID, shift = l.c(ROUND_SHIFT);
  const axc = l.op("f64x2.pmin", l.c(g.max), l.op("f64x2.abs", x));
  const shifted = l.op("f64x2.add", l.op("f64x2.mul", axc, l.c(g.steps)), shift);
  const i = l.op("f64x2.sub", shifted, shift);
  const d = l.op("f64x2.sub", axc, l.op("f64x2.mul", i, l.c(1 / g.steps)));
  const offsets = l.op("i32x4.mul", shifted, l.ci(g.width * 8));
  const [a0, a1] = l.addresses(offsets, 2);
  let r = l.gather(a0, a1, ERF_TABLE_AT + (g.width - 1) * 8);
  for (let c = g.width - 2; c >= 0; c--) {
    r = l.op("f64x2.add", l.gather(a0, a1, ERF_TABLE_AT + c * 8), l.op("f64x2.mul", d, r));
  }
  const signed = l.sel(l.op("f64x2.neg", r), r, l.op("f64x2.lt", x, l.c(0)));
  return l.sel(l.c(NaN), signed, l.op("f64x2.ne", x, x));
}
