/**
 * Elementwise programs with transcendentals (erf, exp, tanh) on WebAssembly f64x2 lanes: the f32 fast path
 * of GELU (exact and tanh), SiLU, sigmoid, exp, tanh and their fused bias/backward chains
 * (`kernels/expr/fused.ts`).
 *
 * ## Bit-identical to the JavaScript fast loop
 * The fast JavaScript loop (`kernels/expr/js.ts`, math `"fast"`) computes an f32 program in double
 * precision: it widens the f32 inputs, applies IEEE +, −, ×, ÷, √ on doubles, rounds to f32 at `round`
 * nodes (`Math.fround`) and once when it stores, and calls `fastErf` / `fastExp` / `fastTanh`, which are
 * themselves built from IEEE-exact operations (`../fast_math.ts`). This kernel does the same on two double lanes:
 * `f64x2.promote_low_f32x4` to widen, f64x2 arithmetic, `f32x4.demote_f64x2_zero` (round to nearest even,
 * as `Math.fround`) to round, and `transcendental.ts` for erf, exp and tanh. Neither side fuses multiply-adds
 * (JavaScript may not; base WebAssembly SIMD has none), so every operation rounds the same way and the two
 * paths give the same bits. Selects compute both branches here (the JS loop skips one): no difference in
 * the result, as no node has side effects.
 *
 * One rewrite saves work without changing a bit: sigmoid's `x ≥ 0 ? 1/(1 + e^(−x)) : eˣ/(1 + eˣ)` needs
 * e^(−x) only where x ≥ 0 and eˣ only where x < 0, and in both places that is e^(−|x|) (the same double;
 * ±0 give 1 either way), so the kernel computes one exponential of −|x| for both
 * ({@link branchExclusiveExps}) where the JavaScript loop computes one of the two per element.
 *
 * Programs with other transcendentals (log, sin, cos, pow) or integer values keep their JS loop.
 * Programs without erf, exp or tanh keep the f32x4 kernel (`elementwise.ts`) or the JS loop: there the double
 * lanes would not pay.
 *
 * @module
 */
import type { ElementwiseProgram, Expr } from "../../expr/ir.ts";
import { children, postorder } from "../../expr/ir.ts";
import { type Local, type SimdOpName, ValType } from "./assembler.ts";
import { emitLoopModule } from "./elementwise_loop.ts";
import { emitErf, emitExp, emitTanh, f64x2Bytes, hoistConstants } from "./transcendental.ts";

const ARITH: Record<string, SimdOpName> = {
  add: "f64x2.add",
  sub: "f64x2.sub",
  mul: "f64x2.mul",
  div: "f64x2.div",
  lt: "f64x2.lt",
  le: "f64x2.le",
  gt: "f64x2.gt",
  ge: "f64x2.ge",
  eq: "f64x2.eq",
  ne: "f64x2.ne",
};
const UNARY_OK: ReadonlySet<string> = new Set(["neg", "abs", "sqrt", "round", "isnan", "not", "exp", "erf", "tanh"]);
const TRANSCENDENTAL: ReadonlySet<string> = new Set(["exp", "erf", "tanh"]);

function nodeOk(e: Expr): boolean {
  if (e.type !== "f32" && e.type !== "bool") return false;
  switch (e.kind) {
    case "input":
    case "const":
      return true;
    case "unary":
      return UNARY_OK.has(e.op) && (e.op === "not" ? e.x.type === "bool" : e.x.type === "f32");
    case "binary":
      if (e.op === "and" || e.op === "or") return e.a.type === "bool";
      return e.op in ARITH && e.a.type === "f32";
    case "select":
      return true;
  }
}

/**
 * Whether the f64x2 kernel takes `p`: an f32 output, f32 or bool inputs, only the operations above, and
 * at least one erf, exp or tanh (where the kernel pays).
 */
export function f64Renderable(p: ElementwiseProgram): boolean {
  let ok = cache.get(p.key);
  if (ok === undefined) {
    const nodes = postorder(p.out);
    ok = p.out.type === "f32" && nodes.every(nodeOk) &&
      nodes.some((e) => e.kind === "unary" && TRANSCENDENTAL.has(e.op));
    cache.set(p.key, ok);
  }
  return ok;
}
const cache = new Map<string, boolean>();

/** Whether every path from `root` to `target` passes through `gate` (so `target` serves only `gate`). */
function onlyThrough(root: Expr, gate: Expr, target: Expr): boolean {
  const seen = new Set<Expr>();
  const reaches = (e: Expr): boolean => {
    if (e === gate || seen.has(e)) return false;
    seen.add(e);
    return e === target || children(e).some(reaches);
  };
  return !reaches(root);
}

/**
 * The pairs e^(−x), eˣ of `root` that a select on x ≥ 0 (or x > 0) uses only in its first and second
 * branch respectively: each maps to x, and the kernel computes e^(−|x|) once for both (see the module
 * docs).
 */
export function branchExclusiveExps(root: Expr): Map<Expr, Expr> {
  const out = new Map<Expr, Expr>();
  const nodes = postorder(root);
  for (const s of nodes) {
    if (s.kind !== "select" || s.cond.kind !== "binary" || (s.cond.op !== "ge" && s.cond.op !== "gt")) continue;
    const x = s.cond.a, zero = s.cond.b;
    if (zero.kind !== "const" || zero.value !== 0) continue;
    const inA = new Set(postorder(s.a)), inB = new Set(postorder(s.b));
    const expNeg = nodes.find((e) =>
      e.kind === "unary" && e.op === "exp" && e.x.kind === "unary" && e.x.op === "neg" && e.x.x === x && inA.has(e)
    );
    const expPos = nodes.find((e) => e.kind === "unary" && e.op === "exp" && e.x === x && inB.has(e));
    if (!expNeg || !expPos || out.has(expNeg) || out.has(expPos)) continue;
    if (onlyThrough(root, s.a, expNeg) && onlyThrough(root, s.b, expPos)) {
      out.set(expNeg, x);
      out.set(expPos, x);
    }
  }
  return out;
}

/**
 * Vectors per loop iteration of the f64x2 kernel: a transcendental is a long chain of dependent operations
 * (~100 cycles of latency for erf), which one vector at a time leaves the CPU waiting on; interleaving the
 * chains of several vectors (`emitLoopModule`) keeps its pipelines busy. `run`'s byte count must be a
 * multiple of `8 · F64X2_UNROLL`.
 */
export const F64X2_UNROLL = 4;

/**
 * Emits the f64x2 module of `p` for one stride pattern (`contiguous[k]`: input k advances with the run,
 * else it is broadcast). It imports `env.memory` (holding the tables of `transcendental.ts`) and exports
 * `run(bytes, out, in0, in1, …)`, which computes `bytes / 8` pairs of elements (byte addresses of f32
 * arrays; bool inputs hold one byte per element). With `sharedMemory` it imports a shared memory instead
 * (the tensor heap's, which starts with the same tables: see `matmul.ts`).
 */
export function emitElementwiseF64Module(
  p: ElementwiseProgram,
  contiguous: readonly boolean[],
  sharedMemory = false,
): Uint8Array<ArrayBuffer> {
  if (!f64Renderable(p)) throw new Error("wasm elementwise f64: the program has no f64x2 rendering");
  const nodes = postorder(p.out);
  const has = (op: string) => nodes.some((e) => e.kind === "unary" && e.op === op);
  // e^(−|x|) by the local holding x: each unrolled copy of the body has its own (see emitLoopModule).
  const merged = branchExclusiveExps(p.out), expOfMinusAbs = new Map<Local, Local>();
  let consts!: ReturnType<typeof hoistConstants>;
  return emitLoopModule(p, contiguous, {
    step: 8,
    unroll: F64X2_UNROLL,
    prologue({ f }) {
      consts = hoistConstants(f, { exp: has("exp"), erf: has("erf"), tanh: has("tanh") });
    },
    node(e, { f, i, zero, inPtr, get, local }) {
      switch (e.kind) {
        case "input": {
          const at = () => (contiguous[e.index] ? f.get(inPtr(e.index)).get(i) : f.get(inPtr(e.index)));
          if (e.type === "bool") {
            // Two bytes (or one, splat) → i64x2 masks of all-ones / zeros.
            if (contiguous[e.index]) {
              f.get(inPtr(e.index)).get(i).i32Const(2).i32ShrU().i32Add().simdLoad("v128.load16_splat");
            } else f.get(inPtr(e.index)).simdLoad("v128.load8_splat");
            f.get(zero).simdOp("i8x16.ne").simdOp("i16x8.extend_low_i8x16_s").simdOp("i32x4.extend_low_i16x8_s")
              .simdOp("i64x2.extend_low_i32x4_s");
          } else {
            if (contiguous[e.index]) at().i32Add().simdLoad("v128.load64_zero");
            else at().simdLoad("v128.load32_splat");
            f.simdOp("f64x2.promote_low_f32x4");
          }
          break;
        }
        case "const":
          f.v128Const(e.type === "bool" ? new Uint8Array(16).fill(e.value ? 0xff : 0) : f64x2Bytes(e.value));
          break;
        case "unary": {
          const of = merged.get(e);
          if (of) {
            let l = expOfMinusAbs.get(local(of));
            if (l === undefined) {
              const arg = f.local(ValType.v128);
              get(of).simdOp("f64x2.abs").simdOp("f64x2.neg").set(arg);
              expOfMinusAbs.set(local(of), l = emitExp(f, arg, consts));
            }
            return l;
          }
          if (TRANSCENDENTAL.has(e.op)) {
            const fn = e.op === "exp" ? emitExp : e.op === "erf" ? emitErf : emitTanh;
            return fn(f, local(e.x), consts);
          }
          get(e.x);
          if (e.op === "neg") f.simdOp("f64x2.neg");
          else if (e.op === "abs") f.simdOp("f64x2.abs");
          else if (e.op === "sqrt") f.simdOp("f64x2.sqrt");
          else if (e.op === "round") f.simdOp("f32x4.demote_f64x2_zero").simdOp("f64x2.promote_low_f32x4");
          else if (e.op === "isnan") get(e.x).simdOp("f64x2.ne");
          else f.simdOp("v128.not");
          break;
        }
        case "binary":
          get(e.a);
          get(e.b);
          f.simdOp(e.op === "and" ? "v128.and" : e.op === "or" ? "v128.or" : ARITH[e.op]);
          break;
        case "select":
          get(e.a);
          get(e.b);
          get(e.cond);
          f.simdOp("v128.bitselect");
          break;
      }
    },
    store({ f, i }, out, value) {
      f.get(out).get(i).i32Add().get(value).simdOp("f32x4.demote_f64x2_zero").v128Store64Lane(0);
    },
  }, sharedMemory);
}
