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
import { TENSOR_MEMORY_IMPORT } from "./heap.ts";

/** What a lane emitter sees while it emits one node. */
export interface LoopContext {
  /** The function being emitted. */
  f: FunctionBuilder;
  /** The byte offset of the current vector (into the output; a contiguous input's offset derives from it). */
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
  /** Output bytes one vector holds. */
  step: number;
  /**
   * Vectors per loop iteration (default 1): the body is emitted this many times, on consecutive vectors,
   * with the copies' statements interleaved (`FunctionBuilder.interleaved`), so that long dependency
   * chains (a transcendental's polynomial) of different vectors overlap. `run`'s byte count must then be a
   * multiple of `step · unroll`.
   */
  unroll?: number;
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

/**
 * Emits the module of `p` for one stride pattern (`contiguous[k]`: input k advances with the run), importing
 * an ordinary memory, or with `sharedMemory` a shared one (the tensor heap's, see `heap.ts`).
 */
export function emitLoopModule(
  p: ElementwiseProgram,
  contiguous: readonly boolean[],
  lane: LaneEmitter,
  sharedMemory = false,
): Uint8Array<ArrayBuffer> {
  const { i32, v128 } = ValType;
  const mod = new ModuleBuilder().setMemory(
    sharedMemory ? TENSOR_MEMORY_IMPORT : { kind: "import", module: "env", name: "memory", initialPages: 1 },
  );
  const f = mod.addFunction("run", [i32, i32, ...p.inputs.map(() => i32)]);
  const bytes = 0, out = 1;
  const invariantLocals = new Map<Expr, Local>();
  /** The context of one copy of the body: its vector's byte offset and its nodes' locals. */
  const context = (i: Local, locals: Map<Expr, Local>): LoopContext & { locals: Map<Expr, Local> } => ({
    f,
    i,
    zero,
    contiguous,
    inPtr: (k) => 2 + k,
    get: (x) => f.get(locals.get(x)!),
    local: (x) => locals.get(x)!,
    locals,
  });
  const zero = f.local(v128), i = f.local(i32);
  const nodes = postorder(p.out);
  // A node is loop-invariant if it reads no contiguous input: computed once, before the loop.
  const invariant = new Set<Expr>();
  for (const e of nodes) {
    if (e.kind === "input" ? !contiguous[e.index] : children(e).every((k) => invariant.has(k))) invariant.add(e);
  }
  const emit = (e: Expr, ctx: ReturnType<typeof context>) => {
    const held = lane.node(e, ctx);
    if (held !== undefined) return void ctx.locals.set(e, held);
    const l = f.local(v128);
    f.set(l);
    ctx.locals.set(e, l);
  };
  const outer = context(i, invariantLocals);
  f.v128Zero().set(zero);
  lane.prologue?.(outer);
  for (const e of nodes) if (invariant.has(e)) emit(e, outer);
  const unroll = lane.unroll ?? 1;
  const offsets = Array.from({ length: unroll }, (_, u) => (u === 0 ? i : f.local(i32)));
  f.i32Const(0).set(i);
  f.block(() => {
    f.get(i).get(bytes).i32GeU().brIf(0);
    f.loop(() => {
      f.interleaved(offsets.map((iu, u) => () => {
        if (u > 0) f.get(i).i32Const(u * lane.step).i32Add().set(iu);
        const ctx = context(iu, new Map(invariantLocals));
        for (const e of nodes) if (!invariant.has(e)) emit(e, ctx);
        lane.store(ctx, out, ctx.locals.get(p.out)!);
      }));
      f.get(i).i32Const(lane.step * unroll).i32Add().tee(i).get(bytes).i32LtU().brIf(0);
    });
  });
  return mod.encode();
}
