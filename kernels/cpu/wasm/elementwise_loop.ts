/**
 * The loop both elementwise SIMD kernels share (f32x4 lanes in `elementwise.ts`, f64x2 lanes in
 * `elementwise_f64.ts`): a module importing `env.memory` and exporting `run(bytes, out, in0, in1, …)`, whose
 * body computes the program's nodes in post-order, each into a local, with the loop-invariant ones (nodes that
 * read no contiguous input) computed once before the loop. The lane kinds differ only in how a node is computed
 * and how the result is stored, which is what a {@link LaneEmitter} says.
 *
 * @module
 */
import type { ElementwiseProgram, Expr } from "../../expr/ir.ts";
import { children, postorder } from "../../expr/ir.ts";
import { type FunctionBuilder, type Local, ModuleBuilder, ValType } from "./assembler.ts";

/** What a lane emitter sees while it emits one node. */
export interface LoopContext {
  /** The function being emitted. */
  f: FunctionBuilder;
  /** The byte offset of the current iteration (into the output; a contiguous input's offset derives from it). */
  i: Local;
  /** An all-zero vector (for turning bool bytes into masks). */
  zero: Local;
  /** Whether input k advances with the run (else it is broadcast: one value). */
  contiguous: readonly boolean[];
  /** The parameter holding input k's base address. */
  inPtr(k: number): number;
  /** Pushes the value of an already emitted node. */
  get(x: Expr): FunctionBuilder;
  /** The local of an already emitted node. */
  local(x: Expr): Local;
}

/** How one lane kind computes and stores a program's values. */
export interface LaneEmitter {
  /** Output bytes one iteration writes. */
  step: number;
  /** Emitted once, before the loop-invariant nodes (e.g. hoisted constants). */
  prologue?(ctx: LoopContext): void;
  /**
   * Emits node `e`: either pushes its value (the loop stores it in a new local) or returns the local that
   * already holds it.
   */
  node(e: Expr, ctx: LoopContext): Local | void;
  /** Stores the program's value (in `value`) at the output's current position. */
  store(ctx: LoopContext, out: number, value: Local): void;
}

/** Emits the module of `p` for one stride pattern (`contiguous[k]`: input k advances with the run). */
export function emitLoopModule(
  p: ElementwiseProgram,
  contiguous: readonly boolean[],
  lane: LaneEmitter,
): Uint8Array<ArrayBuffer> {
  const { i32, v128 } = ValType;
  const mod = new ModuleBuilder().setMemory({ kind: "import", module: "env", name: "memory", initialPages: 1 });
  const f = mod.addFunction("run", [i32, i32, ...p.inputs.map(() => i32)]);
  const bytes = 0, out = 1;
  const locals = new Map<Expr, Local>();
  const ctx: LoopContext = {
    f,
    i: f.local(i32),
    zero: f.local(v128),
    contiguous,
    inPtr: (k) => 2 + k,
    get: (x) => f.get(locals.get(x)!),
    local: (x) => locals.get(x)!,
  };
  const nodes = postorder(p.out);
  // A node is loop-invariant if it reads no contiguous input: computed once, before the loop.
  const invariant = new Set<Expr>();
  for (const e of nodes) {
    if (e.kind === "input" ? !contiguous[e.index] : children(e).every((k) => invariant.has(k))) invariant.add(e);
  }
  const emit = (e: Expr) => {
    const held = lane.node(e, ctx);
    if (held !== undefined) return void locals.set(e, held);
    const l = f.local(v128);
    f.set(l);
    locals.set(e, l);
  };
  f.v128Zero().set(ctx.zero);
  lane.prologue?.(ctx);
  for (const e of nodes) if (invariant.has(e)) emit(e);
  const i = ctx.i;
  f.i32Const(0).set(i);
  f.block(() => {
    f.get(i).get(bytes).i32GeU().brIf(0);
    f.loop(() => {
      for (const e of nodes) if (!invariant.has(e)) emit(e);
      lane.store(ctx, out, locals.get(p.out)!);
      f.get(i).i32Const(lane.step).i32Add().tee(i).get(bytes).i32LtU().brIf(0);
    });
  });
  return mod.encode();
}
