/**
 * A small expression IR for elementwise kernels: every unary and binary op (`ops.ts`) and every fused chain
 * (`core/ops/fused.ts`) is written once as an {@link Expr} over its inputs, and renderers turn it into the
 * CPU's JavaScript loops (`js.ts`), WebAssembly SIMD (`wasm.ts`) and WGSL (`wgsl.ts`) — the idea of
 * tinygrad's UOps, scaled down to what elementwise kernels need.
 *
 * ## Semantics (what every renderer must reproduce)
 * - A node's `type` is a storage dtype. Float arithmetic is carried out in the host's float precision —
 *   double on the CPU (JavaScript numbers), f32 on WebGPU — and the value is rounded to the output's dtype
 *   when it is stored. That is exactly what the hand-written kernels did (`o[i] = f(x[i])` on a
 *   Float32Array computes in double and rounds once), so the CPU renderings are bit-identical to them.
 * - {@link round} rounds to the storage precision of its type (f32: `Math.fround`; f64 and integers: no-op).
 *   A fused expression puts a `round` wherever the unfused composition stored an intermediate tensor, which
 *   makes the fused kernel bit-identical to the chain of ops it replaces.
 * - `bool` values are booleans inside an expression, stored as 0/1; integer (`i32`) arithmetic is done in
 *   double and wraps when stored, as a JavaScript store into an Int32Array does.
 * - Nodes are immutable and shared by reference: an expression is a DAG, and a node used twice is computed
 *   once (renderers bind it to a variable).
 *
 * @module
 */
import type { DType } from "../../core/dtype.ts";

/** Primitives of one operand. `round` rounds to the node type's storage precision. */
export type UnaryPrim =
  | "neg"
  | "abs"
  | "sqrt"
  | "exp"
  | "log"
  | "tanh"
  | "erf"
  | "sin"
  | "cos"
  | "isnan"
  | "not"
  | "round";

/** Primitives of two operands (comparisons, `and` and `or` give bool). */
export type BinaryPrim =
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "pow"
  | "lt"
  | "le"
  | "gt"
  | "ge"
  | "eq"
  | "ne"
  | "and"
  | "or";

/** An expression node. */
export type Expr =
  | { readonly kind: "input"; readonly index: number; readonly type: DType }
  | { readonly kind: "const"; readonly value: number; readonly type: DType }
  | { readonly kind: "unary"; readonly op: UnaryPrim; readonly x: Expr; readonly type: DType }
  | { readonly kind: "binary"; readonly op: BinaryPrim; readonly a: Expr; readonly b: Expr; readonly type: DType }
  | { readonly kind: "select"; readonly cond: Expr; readonly a: Expr; readonly b: Expr; readonly type: DType };

/** An elementwise program: the dtypes of its inputs and the expression of its one output. */
export interface ElementwiseProgram {
  /** Input dtypes, in order (`input(i)` reads input i). */
  readonly inputs: readonly DType[];
  /** The output; its `type` is the output dtype. */
  readonly out: Expr;
  /** A canonical text of the program (equal programs have equal keys): the renderers' cache key. */
  readonly key: string;
}

/** An operand of a builder: an expression, or a number that takes the other operand's type. */
export type Operand = Expr | number;

const BOOL_OUT: ReadonlySet<string> = new Set(["lt", "le", "gt", "ge", "eq", "ne", "and", "or", "isnan", "not"]);

/** Input `index` of dtype `type`. */
export function input(index: number, type: DType): Expr {
  return { kind: "input", index, type };
}

/** A constant of dtype `type` (bool constants are 0 or 1). */
export function lit(value: number, type: DType): Expr {
  return { kind: "const", value, type };
}

function typed(x: Operand, like: Operand, op: string): Expr {
  if (typeof x !== "number") return x;
  if (typeof like === "number") throw new TypeError(`expr ${op}: at least one operand must be an expression`);
  return lit(x, like.type);
}

/** A unary primitive. */
export function unary(op: UnaryPrim, x: Expr): Expr {
  if (op === "round" && x.type !== "f32") return x;
  return { kind: "unary", op, x, type: BOOL_OUT.has(op) ? "bool" : x.type };
}

/** A binary primitive; a number operand takes the other operand's type. */
export function binary(op: BinaryPrim, a: Operand, b: Operand): Expr {
  const ea = typed(a, b, op), eb = typed(b, a, op);
  if (ea.type !== eb.type) throw new TypeError(`expr ${op}: operand types differ (${ea.type}, ${eb.type})`);
  return { kind: "binary", op, a: ea, b: eb, type: BOOL_OUT.has(op) ? "bool" : ea.type };
}

/** `cond ? a : b`; a number branch takes the other branch's type. */
export function select(cond: Expr, a: Operand, b: Operand): Expr {
  const ea = typed(a, b, "select"), eb = typed(b, a, "select");
  if (cond.type !== "bool") throw new TypeError(`expr select: the condition must be bool, got ${cond.type}`);
  if (ea.type !== eb.type) throw new TypeError(`expr select: branch types differ (${ea.type}, ${eb.type})`);
  return { kind: "select", cond, a: ea, b: eb, type: ea.type };
}

// Shorthands for writing op definitions.
/** a + b. */
export const add = (a: Operand, b: Operand): Expr => binary("add", a, b);
/** a − b. */
export const sub = (a: Operand, b: Operand): Expr => binary("sub", a, b);
/** a · b. */
export const mul = (a: Operand, b: Operand): Expr => binary("mul", a, b);
/** a / b. */
export const div = (a: Operand, b: Operand): Expr => binary("div", a, b);
/** a < b. */
export const lt = (a: Operand, b: Operand): Expr => binary("lt", a, b);
/** a > b. */
export const gt = (a: Operand, b: Operand): Expr => binary("gt", a, b);
/** a ≥ b. */
export const ge = (a: Operand, b: Operand): Expr => binary("ge", a, b);
/** a = b. */
export const eq = (a: Operand, b: Operand): Expr => binary("eq", a, b);
/** −x. */
export const neg = (x: Expr): Expr => unary("neg", x);
/** eˣ. */
export const exp = (x: Expr): Expr => unary("exp", x);
/** √x. */
export const sqrt = (x: Expr): Expr => unary("sqrt", x);
/** erf(x). */
export const erf = (x: Expr): Expr => unary("erf", x);
/** tanh(x). */
export const tanh = (x: Expr): Expr => unary("tanh", x);
/** x is NaN (bool). */
export const isnan = (x: Expr): Expr => unary("isnan", x);
/** Rounds to the storage precision of x's type (see the module docs). */
export const round = (x: Expr): Expr => unary("round", x);

/** The nodes of `root` in evaluation order (operands before the node; each node once). */
export function postorder(root: Expr): Expr[] {
  const out: Expr[] = [];
  const seen = new Set<Expr>();
  const visit = (e: Expr) => {
    if (seen.has(e)) return;
    seen.add(e);
    for (const c of children(e)) visit(c);
    out.push(e);
  };
  visit(root);
  return out;
}

/** The operands of a node, in evaluation order. */
export function children(e: Expr): Expr[] {
  switch (e.kind) {
    case "input":
    case "const":
      return [];
    case "unary":
      return [e.x];
    case "binary":
      return [e.a, e.b];
    case "select":
      return [e.cond, e.a, e.b];
  }
}

/** How many times each node is an operand (a DAG node used twice is rendered once). */
export function useCounts(root: Expr): Map<Expr, number> {
  const uses = new Map<Expr, number>();
  for (const e of postorder(root)) for (const c of children(e)) uses.set(c, (uses.get(c) ?? 0) + 1);
  return uses;
}

/**
 * What a text renderer supplies: the source of each kind of node from its operands' sources (already
 * rendered, in evaluation order). {@link nodeText} does the walking, so a target is only its vocabulary.
 */
export interface TextTarget {
  /** Input `index`, already loaded into a variable. */
  input(index: number): string;
  /** A constant. */
  constant(e: Expr & { kind: "const" }): string;
  /** A unary primitive of `x`. */
  unary(op: UnaryPrim, x: string, e: Expr): string;
  /** A binary primitive of `a` and `b` (`e` gives the operand types). */
  binary(op: BinaryPrim, a: string, b: string, e: Expr & { kind: "binary" }): string;
  /** `cond ? a : b`. */
  select(cond: string, a: string, b: string): string;
}

/** The source of node `e` in `target`'s language; `render` gives an operand's source (or its variable). */
export function nodeText(e: Expr, render: (x: Expr) => string, target: TextTarget): string {
  switch (e.kind) {
    case "input":
      return target.input(e.index);
    case "const":
      return target.constant(e);
    case "unary":
      return target.unary(e.op, render(e.x), e);
    case "binary": {
      const a = render(e.a);
      return target.binary(e.op, a, render(e.b), e);
    }
    case "select": {
      const c = render(e.cond), a = render(e.a);
      return target.select(c, a, render(e.b));
    }
  }
}

/**
 * The infix spelling of the binary primitives in C-family languages (JavaScript and WGSL alike; in JavaScript
 * `==` is `===` here, as both operands always have one type).
 */
export const INFIX: Readonly<Record<Exclude<BinaryPrim, "pow">, string>> = {
  add: "+",
  sub: "-",
  mul: "*",
  div: "/",
  lt: "<",
  le: "<=",
  gt: ">",
  ge: ">=",
  eq: "==",
  ne: "!=",
  and: "&&",
  or: "||",
};

/** A number as exact source text (shared by the JS and key renderings). */
export function numberText(v: number): string {
  if (Object.is(v, -0)) return "-0";
  return String(v);
}

/** Builds a program, checking that every input it reads is declared with its type. */
export function program(inputs: readonly DType[], out: Expr): ElementwiseProgram {
  const ids = new Map<Expr, number>();
  const parts: string[] = [];
  for (const e of postorder(out)) {
    if (e.kind === "input" && inputs[e.index] !== e.type) {
      throw new TypeError(`expr program: input ${e.index} is read as ${e.type} but declared ${inputs[e.index]}`);
    }
    const id = ids.size;
    ids.set(e, id);
    const ref = (c: Expr) => `%${ids.get(c)}`;
    switch (e.kind) {
      case "input":
        parts.push(`in${e.index}`);
        break;
      case "const":
        parts.push(`${e.type}:${numberText(e.value)}`);
        break;
      case "unary":
        parts.push(`${e.op}:${e.type}(${ref(e.x)})`);
        break;
      case "binary":
        parts.push(`${e.op}:${e.type}(${ref(e.a)},${ref(e.b)})`);
        break;
      case "select":
        parts.push(`select:${e.type}(${ref(e.cond)},${ref(e.a)},${ref(e.b)})`);
        break;
    }
  }
  return { inputs, out, key: `${inputs.join(",")}|${parts.join(";")}` };
}
