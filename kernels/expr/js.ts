/**
 * Renders an elementwise program (`ir.ts`) to the JavaScript of one element: statements and a value, in
 * double precision with `Math.fround` at `round` nodes — the semantics the CPU kernels always had, so the
 * rendered loops are bit-identical to the hand-written ones they replaced. `kernels/cpu/expr_run.ts` wraps
 * the text in loops and compiles it.
 *
 * A node used more than once is computed once. Where it is computed matters for speed, not for the result:
 * a node that every path evaluates is bound at the top of the element's code, but a node used only inside
 * one branch of a `select` (sigmoid's eˣ, needed only for x < 0) is bound where that branch first needs it,
 * `(t3 = Math.exp(x))`, so the other branch does not pay for it. JavaScript evaluates operands left to
 * right, so a later use on the same branch always sees the binding.
 *
 * Two sets of math: `"reference"` calls the reference erf (`kernels/cpu/math.ts`, a series accurate to
 * ~1e-15), `Math.exp` and `Math.tanh`; `"fast"` calls the table-driven `fastErf`, `fastExp` and
 * `fastTanh` (`fast_math.ts`) for erf, exp and tanh nodes of type f32, where they agree after rounding (see there) and are built from IEEE-exact
 * operations only, so the WebAssembly f64x2 kernels reproduce them bit for bit; everything else is the
 * same text.
 *
 * @module
 */
import {
  children,
  type ElementwiseProgram,
  type Expr,
  INFIX,
  nodeText,
  numberText,
  postorder,
  type TextTarget,
  useCounts,
} from "./ir.ts";

/** Which erf, exp and tanh the rendering calls (see the module docs). */
export type JsMath = "reference" | "fast";

/** The free names the rendered code uses besides `Math`: the erf implementations and the fast exp, tanh. */
export const JS_HELPERS: readonly string[] = ["erf", "fastErf", "fastExp", "fastTanh"];

/** The code of one element: `body` binds the inputs and shared nodes; `value` is the output's value. */
export interface JsElement {
  /** Statements to run first (declarations of `v<k>` inputs and `t<n>` temporaries). */
  body: string;
  /** The value to store (already 0/1 for a bool output). */
  value: string;
}

function constText(e: Expr & { kind: "const" }): string {
  if (e.type === "bool") return e.value ? "true" : "false";
  return `(${numberText(e.value)})`;
}

/** JavaScript's vocabulary for {@link nodeText}, with the erf that `math` picks. */
function jsTarget(math: JsMath): TextTarget {
  return {
    input: (k) => `v${k}`,
    constant: constText,
    unary(op, x, e) {
      switch (op) {
        case "neg":
          return `(-${x})`;
        case "erf":
          return math === "fast" && e.type === "f32" ? `fastErf(${x})` : `erf(${x})`;
        case "exp":
          return math === "fast" && e.type === "f32" ? `fastExp(${x})` : `Math.exp(${x})`;
        case "tanh":
          return math === "fast" && e.type === "f32" ? `fastTanh(${x})` : `Math.tanh(${x})`;
        case "isnan":
          return `(${x} !== ${x})`;
        case "not":
          return `(!${x})`;
        case "round":
          return `Math.fround(${x})`;
        default: // abs, sqrt, log, sin, cos
          return `Math.${op}(${x})`;
      }
    },
    binary: (op, a, b) => (op === "pow" ? `Math.pow(${a}, ${b})` : `(${a} ${INFIX[op]} ${b})`),
    select: (c, a, b) => `(${c} ? ${a} : ${b})`,
  };
}

/**
 * Where each shared node is bound: "top" (evaluated on every path, or on several branches) or "lazy"
 * (every use lies on the same branch of the same selects, so it is bound at its first use there).
 */
function placements(root: Expr, uses: Map<Expr, number>): Map<Expr, "top" | "lazy"> {
  const paths = new Map<Expr, Set<string>>();
  const seen = new Set<string>();
  const walk = (e: Expr, path: string) => {
    const visitKey = `${path}#${ids.get(e)}`;
    if ((uses.get(e) ?? 0) > 1) {
      let set = paths.get(e);
      if (!set) paths.set(e, set = new Set());
      set.add(path);
    }
    if (seen.has(visitKey)) return;
    seen.add(visitKey);
    if (e.kind === "select") {
      walk(e.cond, path);
      walk(e.a, `${path}/${ids.get(e)}a`);
      walk(e.b, `${path}/${ids.get(e)}b`);
    } else for (const c of children(e)) walk(c, path);
  };
  const ids = new Map<Expr, number>();
  postorder(root).forEach((e, i) => ids.set(e, i));
  walk(root, "");
  const out = new Map<Expr, "top" | "lazy">();
  for (const [e, set] of paths) {
    if (e.kind === "input" || e.kind === "const") continue;
    out.set(e, set.size === 1 && !set.has("") ? "lazy" : "top");
  }
  return out;
}

/**
 * Renders one element of `p`. `loads[k]` is the source that reads input k's raw stored value (a bool input
 * is compared with 0 here); `math` picks the erf.
 */
export function renderJsElement(p: ElementwiseProgram, loads: readonly string[], math: JsMath): JsElement {
  const root = p.out;
  const uses = useCounts(root);
  const place = placements(root, uses);
  const names = new Map<Expr, string>();
  const lines: string[] = [];
  const lazyDecls: string[] = [];
  const bound = new Set<Expr>();
  let temp = 0;

  const render = (e: Expr): string => {
    const name = names.get(e);
    if (name !== undefined) {
      if (place.get(e) !== "lazy" || bound.has(e)) return name;
      bound.add(e);
      return `(${name} = ${renderNode(e)})`;
    }
    return renderNode(e);
  };
  const target = jsTarget(math);
  const renderNode = (e: Expr): string => nodeText(e, render, target);

  // Inputs first (each read once per element), then the shared nodes bound at the top, in evaluation order.
  const used = new Set<number>();
  for (const e of postorder(root)) if (e.kind === "input") used.add(e.index);
  for (const k of [...used].sort((a, b) => a - b)) {
    lines.push(`const v${k} = ${p.inputs[k] === "bool" ? `(${loads[k]} !== 0)` : loads[k]};`);
  }
  for (const e of postorder(root)) {
    const where = place.get(e);
    if (!where) continue;
    const name = `t${temp++}`;
    if (where === "top") {
      lines.push(`const ${name} = ${renderNode(e)};`);
      names.set(e, name);
    } else {
      names.set(e, name);
      lazyDecls.push(name);
    }
  }
  if (lazyDecls.length) lines.unshift(`let ${lazyDecls.join(", ")};`);
  let value = render(root);
  if (root.type === "bool") value = `(${value} ? 1 : 0)`;
  return { body: lines.join("\n"), value };
}
