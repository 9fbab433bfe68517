/**
 * Reverse-mode autodiff on a define-by-run tape.
 *
 * Each op that sees an input with `requiresGrad` records a {@link Node} on its outputs holding the inputs
 * and a VJP written with public ops. `backward()` walks the nodes in reverse topological order. Because
 * VJPs are ordinary ops, running them with recording on (`createGraph`) builds the graph of the gradient
 * itself, which is how grad-of-grad works.
 *
 * @module
 */
import { isFloat } from "./dtype.ts";
import { fmtShape, OpError } from "./errors.ts";
import { shapesEqual } from "./shape.ts";
import { nextTensorId, Tensor } from "./tensor.ts";
import { onesLike, zerosLike } from "./ops/creation.ts";
import { add } from "./ops/binary.ts";
import { keep, scope } from "./memory.ts";
import { reshape } from "./ops/layout.ts";
import type { TapeName } from "./ops/catalog.ts";

let gradEnabled = true;

/** Whether ops currently record tape nodes. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

function withGradMode<T>(enabled: boolean, fn: () => T, name: string): T {
  const prev = gradEnabled;
  gradEnabled = enabled;
  try {
    const out = fn();
    if (out instanceof Promise) {
      throw new TypeError(`${name}: the callback must be synchronous (the grad mode cannot follow an await)`);
    }
    return out;
  } finally {
    gradEnabled = prev;
  }
}

/**
 * Runs `fn` without recording gradients (like `torch.no_grad()`); `fn` must be synchronous.
 *
 * @example
 * ```ts
 * import { noGrad, tensor } from "@moegrad/moegrad";
 * const w = tensor([1, 2]).requiresGrad_();
 * const y = noGrad(() => w.mul(2));
 * console.log(y.requiresGrad); // false
 * ```
 */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, fn, "noGrad");
}

/** Runs `fn` with gradient recording on, even inside {@link noGrad}; `fn` must be synchronous. */
export function enableGrad<T>(fn: () => T): T {
  return withGradMode(true, fn, "enableGrad");
}

/** The VJP of a node: gradients of its outputs in, gradients of its inputs out (null: no gradient). */
export type VJP = (grads: Tensor[]) => readonly (Tensor | null | undefined)[];

/** One recorded op: its inputs, its outputs and how to pull gradients back through it. */
export class Node {
  /** The op's public name (shown in errors). */
  readonly name: string;
  #inputs: readonly Tensor[];
  #outputs: readonly Tensor[];
  #vjp: VJP;
  #freed = false;
  /** Records a node (use {@link record} from ops). */
  constructor(name: string, inputs: readonly Tensor[], outputs: readonly Tensor[], vjp: VJP) {
    this.name = name;
    this.#inputs = inputs;
    this.#outputs = outputs;
    this.#vjp = vjp;
  }
  /** The op's tensor inputs, in VJP order (empty once freed). */
  get inputs(): readonly Tensor[] {
    return this.#inputs;
  }
  /** The op's differentiable outputs (empty once freed). */
  get outputs(): readonly Tensor[] {
    return this.#outputs;
  }
  /** The vector-Jacobian product. */
  get vjp(): VJP {
    return this.#vjp;
  }
  /** Whether a backward pass has consumed this node (see {@link BackwardOptions.retainGraph}). */
  get freed(): boolean {
    return this.#freed;
  }
  /**
   * @internal Drops everything the node holds for the backward pass — its inputs and the VJP closure, which
   * captures the tensors it saved — so that they can be reclaimed even while the graph's output (a loss kept
   * for logging, say) is still referenced. PyTorch frees saved tensors after backward in the same way.
   */
  _free(): void {
    this.#inputs = [];
    this.#outputs = [];
    this.#vjp = freedVjp;
    this.#freed = true;
  }
}

function freedVjp(): never {
  throw new Error("internal error: the VJP of a freed node was called");
}

/** One gradient per input of `I`, in order (null or undefined: that input gets none). */
export type InputGrads<I extends readonly Tensor[]> = { readonly [P in keyof I]: Tensor | null | undefined };

/**
 * Records `outputs` as produced by op `name` from `inputs` if gradients are on and any input needs one.
 * Non-float outputs never carry gradients. `name` must be an op that the catalog (`core/ops/catalog.ts`) says
 * records a VJP, and the VJP must return one gradient per input: both are checked by the type checker.
 */
export function record<const I extends readonly Tensor[]>(
  name: TapeName,
  inputs: I,
  outputs: readonly Tensor[],
  vjp: (grads: Tensor[]) => InputGrads<I>,
): void {
  if (!gradEnabled || !inputs.some((t) => t.requiresGrad)) return;
  const diff = outputs.filter((o) => isFloat(o.dtype));
  if (diff.length === 0) return;
  const node = new Node(name, inputs, diff, vjp);
  for (const o of diff) o._setNode(node);
}

/** {@link record} for one output whose VJP takes one gradient. */
export function record1<const I extends readonly Tensor[]>(
  name: TapeName,
  inputs: I,
  out: Tensor,
  vjp: (g: Tensor) => InputGrads<I>,
): Tensor {
  record(name, inputs, [out], (gs) => vjp(gs[0]));
  return out;
}

function topoOrder(op: string, roots: readonly Tensor[]): Node[] {
  const order: Node[] = [];
  const seen = new Set<Node>();
  const stack: [Node, number][] = [];
  const visit = (node: Node) => {
    if (node.freed) {
      throw new OpError(
        op,
        `this graph (at op "${node.name}") was already freed by an earlier backward(); pass { retainGraph: true } ` +
          `to the first backward() to call backward through it again`,
      );
    }
    seen.add(node);
    stack.push([node, 0]);
  };
  for (const r of roots) {
    if (!r.node || seen.has(r.node)) continue;
    visit(r.node);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [node, i] = top;
      if (i < node.inputs.length) {
        top[1]++;
        const child = node.inputs[i].node;
        if (child && !seen.has(child)) visit(child);
      } else {
        stack.pop();
        order.push(node);
      }
    }
  }
  return order;
}

/**
 * The gradients of a backward pass, with what it takes to free them as soon as they are dead: how many entries
 * hold each gradient tensor (a VJP may hand one tensor to several inputs), and the tensors that may have just
 * died. Freeing early lets the CPU backend's buffer pool hand a dead gradient's memory to the next VJP.
 */
class GradMap {
  readonly map = new Map<Tensor, Tensor>();
  readonly #holders = new Map<Tensor, number>();
  #maybeDead: Tensor[] = [];
  /** Tensors created before this id, and the root gradients, are never freed here (the caller owns them). */
  readonly #firstId: number;
  readonly #protected: ReadonlySet<Tensor>;
  readonly #early: boolean;
  constructor(firstId: number, roots: readonly Tensor[], early: boolean) {
    this.#firstId = firstId;
    this.#protected = new Set(roots);
    this.#early = early;
  }
  #hold(g: Tensor): void {
    this.#holders.set(g, (this.#holders.get(g) ?? 0) + 1);
  }
  #unhold(g: Tensor): void {
    const n = (this.#holders.get(g) ?? 1) - 1;
    if (n > 0) this.#holders.set(g, n);
    else this.#holders.delete(g);
    this.#maybeDead.push(g);
  }
  /** Adds `g` to the gradient of `t`. */
  accumulate(t: Tensor, g: Tensor): void {
    const prev = this.map.get(t);
    this.map.set(t, prev ? add(prev, g) : g);
    this.#hold(this.map.get(t)!);
    if (prev) {
      this.#unhold(prev);
      this.#maybeDead.push(g);
    }
  }
  /** Removes the gradient of `t` (consumed by its node's VJP). */
  delete(t: Tensor): void {
    const g = this.map.get(t);
    if (!g) return;
    this.map.delete(t);
    this.#unhold(g);
  }
  /** Notes tensors a VJP returned: dead once accumulated into a sum, if nothing holds them. */
  produced(gs: readonly (Tensor | null | undefined)[]): void {
    for (const g of gs) if (g) this.#maybeDead.push(g);
  }
  /**
   * Disposes the candidates that nothing holds and that this pass created (call between nodes, when no VJP
   * is running). Without `early` (a recorded pass: the gradients are part of a graph) it only forgets them.
   */
  sweep(): void {
    const dead = this.#maybeDead;
    this.#maybeDead = [];
    if (!this.#early) return;
    for (const t of dead) {
      if (t.id >= this.#firstId && !this.#holders.has(t) && !this.#protected.has(t)) t.dispose();
    }
  }
}

/**
 * Propagates `rootGrads` back from `roots` and returns the total gradient reaching each tensor in `keep`
 * (others are dropped as soon as they have been used). With `createGraph`, the VJPs are recorded. Unless
 * `retainGraph`, the nodes walked are freed afterwards (see {@link Node._free}).
 */
function propagate(
  op: string,
  roots: readonly Tensor[],
  rootGrads: readonly Tensor[],
  keep: (t: Tensor) => boolean,
  options: BackwardOptions,
): Map<Tensor, Tensor> {
  const createGraph = options.createGraph ?? false;
  // Without createGraph nothing records the VJPs, so what they create and do not return is garbage when they
  // return, and a gradient is garbage once consumed: both are disposed at once rather than when the pass ends.
  const grads = new GradMap(nextTensorId(), rootGrads, !createGraph);
  return withGradMode(createGraph, () => {
    roots.forEach((r, i) => grads.accumulate(r, rootGrads[i]));
    const order = topoOrder(op, roots);
    for (let n = order.length - 1; n >= 0; n--) {
      const node = order[n];
      if (!node.outputs.some((o) => grads.map.has(o))) continue;
      const outGrads = node.outputs.map((o) => grads.map.get(o) ?? zerosLike(o));
      for (const o of node.outputs) if (!keep(o)) grads.delete(o);
      const inGrads = createGraph ? node.vjp(outGrads) : scope(() => node.vjp(outGrads));
      grads.produced(outGrads);
      grads.produced(inGrads);
      node.inputs.forEach((inp, i) => {
        const g = inGrads[i];
        if (!g || !inp.requiresGrad) return;
        if (!shapesEqual(g.shape, inp.shape)) {
          throw new OpError(
            node.name,
            `internal error: VJP gave a gradient of shape ${fmtShape(g.shape)} for an input of shape ${
              fmtShape(inp.shape)
            }`,
          );
        }
        const gi = g.dtype === inp.dtype ? g : g.astype(inp.dtype);
        if (gi !== g) grads.produced([gi]);
        grads.accumulate(inp, gi);
      });
      grads.sweep();
    }
    if (!(options.retainGraph ?? createGraph)) { for (const node of order) node._free(); }
    return grads.map;
  }, op);
}

/**
 * Runs `fn` — a backward pass — so that every tensor it creates and does not return is disposed when it ends:
 * the VJPs' intermediates, partial sums and zero fills are garbage the moment the pass is over, so a training
 * loop without `scope()` does not leave them to the garbage collector. With `createGraph` they are part of
 * the gradient's graph and must live: nothing is disposed.
 */
function ownTemporaries<T>(createGraph: boolean | undefined, fn: () => T): T {
  return createGraph ? fn() : scope(fn);
}

function defaultRootGrad(op: string, root: Tensor): Tensor {
  if (root.size !== 1) {
    throw new OpError(op, `a gradient must be given for a non-scalar output of shape ${fmtShape(root.shape)}`);
  }
  return onesLike(root);
}

function checkRoot(op: string, root: Tensor, g: Tensor | undefined): Tensor {
  if (!root.requiresGrad) {
    throw new OpError(
      op,
      `the output of shape ${fmtShape(root.shape)} does not depend on any tensor that requires grad`,
    );
  }
  if (!g) return defaultRootGrad(op, root);
  if (!shapesEqual(g.shape, root.shape)) {
    throw new OpError(
      op,
      `gradient of shape ${fmtShape(g.shape)} does not match the output shape ${fmtShape(root.shape)}`,
    );
  }
  return g;
}

/** Options of {@link backward} and {@link gradients}. */
export interface BackwardOptions {
  /** Record the backward pass so the gradients can be differentiated again (default false). */
  createGraph?: boolean;
  /**
   * Keep the graph usable for another backward pass (default: `createGraph`). Otherwise the pass frees it,
   * as PyTorch does: the graph's nodes drop their saved tensors, and a second `backward()` (or
   * `gradients()`) through any part of it throws instead of silently adding the same gradients twice.
   * With `retainGraph: true`, a second `backward()` accumulates into `.grad` again, as in PyTorch.
   */
  retainGraph?: boolean;
}

/**
 * Accumulates d`root`/d(leaf) into `.grad` of every leaf that requires grad (and of every tensor that
 * called `retainGrad()`), like `torch.Tensor.backward`. `grad` defaults to 1 for a scalar root. `.grad`
 * tensors are exempt from `scope()` disposal (they belong to their tensor); an accumulated gradient
 * disposes the one it replaces. Clear it with `t.grad?.dispose(); t.grad = null`. Treat `.grad` as
 * read-only: several tensors' gradients may share one buffer, so replace a gradient rather than `assign_` it.
 *
 * Memory is released as the pass ends, without `scope()` or the garbage collector: every temporary the pass
 * created is disposed, and the graph is freed (unless `retainGraph` or `createGraph`), so a second backward
 * through it is an error rather than a silent doubling of the gradients.
 *
 * @example
 * ```ts
 * import { backward, tensor } from "@moegrad/moegrad";
 * const w = tensor([1, 2]).requiresGrad_();
 * const loss = w.square().sum();
 * backward(loss, undefined, { retainGraph: true }); // keep the graph for one more pass
 * backward(loss); // .grad accumulates to 2 · 2w; this pass frees the graph, so a third would throw
 * console.log(await w.grad!.data()); // [4, 8]
 * ```
 */
export function backward(root: Tensor, grad?: Tensor, options: BackwardOptions = {}): void {
  const wants = (t: Tensor) => t.requiresGrad && (t.node === null || t.retainsGrad);
  ownTemporaries(options.createGraph, () => {
    const g = checkRoot("backward", root, grad);
    const grads = propagate("backward", [root], [g], wants, options);
    withGradMode(options.createGraph ?? false, () => {
      for (const [t, gt] of grads) {
        if (!wants(t)) continue;
        // `.grad` belongs to its tensor, not to the scope that ran backward: keep it, and give each tensor its
        // own handle (VJPs may hand the very same gradient tensor to several inputs).
        const prev = t.grad;
        t.grad = keep(prev ? add(prev, gt) : reshape(gt, gt.shape)); // reshape: a zero-copy handle, on the tape
        prev?.dispose();
      }
    }, "backward");
  });
}

/**
 * The gradients of `outputs` (weighted by `gradOutputs`, default 1 for scalars) with respect to `inputs`,
 * without touching `.grad` — `torch.autograd.grad`. An input the outputs do not depend on gets zeros.
 */
export function gradients(
  outputs: Tensor | readonly Tensor[],
  inputs: readonly Tensor[],
  gradOutputs?: readonly Tensor[],
  options: BackwardOptions = {},
): Tensor[] {
  const outs = outputs instanceof Tensor ? [outputs] : outputs;
  const wanted = new Set(inputs);
  return ownTemporaries(options.createGraph, () => {
    const gs = outs.map((o, i) => checkRoot("gradients", o, gradOutputs?.[i]));
    const grads = propagate("gradients", outs, gs, (t) => wanted.has(t), options);
    return inputs.map((t) => grads.get(t) ?? zerosLike(t));
  });
}

function watch(args: readonly Tensor[], argnums: readonly number[], fnName: string) {
  let nested = false;
  const watched = args.map((a, i) => {
    if (!argnums.includes(i)) return a;
    if (!(a instanceof Tensor)) throw new TypeError(`${fnName}: argument ${i} is not a Tensor`);
    if (!isFloat(a.dtype)) throw new OpError(fnName, `argument ${i} has dtype ${a.dtype}; gradients need f32 or f64`);
    if (a.requiresGrad) {
      nested = true; // an outer grad (or a parameter) watches it: keep the link so it can differentiate us
      return a;
    }
    return a.detach().requiresGrad_();
  });
  for (const i of argnums) {
    if (i < 0 || i >= args.length) {
      throw new RangeError(`${fnName}: argnum ${i} is out of range for ${args.length} arguments`);
    }
  }
  return { watched, nested };
}

function valueAndGradImpl(
  fn: (...args: Tensor[]) => Tensor,
  args: Tensor[],
  argnums: readonly number[],
  fnName: string,
): { value: Tensor; grads: Tensor[] } {
  const { watched, nested } = watch(args, argnums, fnName);
  const value = enableGrad(() => fn(...watched));
  if (!(value instanceof Tensor) || value.size !== 1) {
    throw new OpError(
      fnName,
      `the function must return a scalar Tensor${
        value instanceof Tensor ? `, got shape ${fmtShape(value.shape)}` : ""
      }`,
    );
  }
  const inputs = argnums.map((i) => watched[i]);
  const grads = value.requiresGrad
    ? gradients(value, inputs, undefined, { createGraph: nested && gradEnabled })
    : inputs.map((t) => zerosLike(t));
  return { value: nested ? value : value.detach(), grads };
}

/**
 * Transforms a scalar function into its gradient with respect to argument `argnums` (default 0), like
 * `jax.grad`. Composable: `grad(grad(f))` gives the second derivative.
 *
 * @example
 * ```ts
 * import { grad, tensor } from "@moegrad/moegrad";
 * const d2 = grad(grad((x) => x.tanh().sum()));
 * console.log(await d2(tensor([0.5])).data()); // −2·tanh(0.5)·(1 − tanh²(0.5))
 * ```
 */
export function grad(fn: (...args: Tensor[]) => Tensor, argnums?: number): (...args: Tensor[]) => Tensor;
/** Gradients with respect to several arguments, in the order of `argnums`. */
export function grad(fn: (...args: Tensor[]) => Tensor, argnums: readonly number[]): (...args: Tensor[]) => Tensor[];
export function grad(
  fn: (...args: Tensor[]) => Tensor,
  argnums: number | readonly number[] = 0,
): (...args: Tensor[]) => Tensor | Tensor[] {
  const nums = typeof argnums === "number" ? [argnums] : argnums;
  return (...args: Tensor[]) => {
    const { grads } = valueAndGradImpl(fn, args, nums, "grad");
    return typeof argnums === "number" ? grads[0] : grads;
  };
}

/**
 * Like {@link grad} but also returns the function's value: `{ value, grads }` with one gradient per entry
 * of `argnums` (default: every argument).
 */
export function valueAndGrad(
  fn: (...args: Tensor[]) => Tensor,
  argnums?: readonly number[],
): (...args: Tensor[]) => { value: Tensor; grads: Tensor[] } {
  return (...args: Tensor[]) => valueAndGradImpl(fn, args, argnums ?? args.map((_, i) => i), "valueAndGrad");
}

/** What the forward function given to {@link customGrad} returns. */
export interface CustomGradResult<V extends Tensor | Tensor[]> {
  /** The forward value (one tensor or several). */
  value: V;
  /**
   * Gradients of the inputs from the gradients of the outputs (`V`'s shape: a tensor or a list; outputs
   * with no incoming gradient get zeros). Return null for an input that gets no gradient.
   */
  grad: (g: V) => readonly (Tensor | null | undefined)[];
}

/**
 * Builds an op whose gradient is *not* the derivative of its forward value: `forward` runs without
 * recording, and `grad` is used as the VJP. Every routing estimator is built on this.
 *
 * @example
 * ```ts
 * import { customGrad, tensor } from "@moegrad/moegrad";
 * // Straight-through rounding: forward rounds, backward passes the gradient unchanged.
 * const roundST = customGrad((x) => ({ value: x.gt(0.5).astype("f32"), grad: (g) => [g] }));
 * const x = tensor([0.2, 0.7]).requiresGrad_();
 * roundST(x).sum().backward();
 * console.log(await x.grad!.data()); // [1, 1]
 * ```
 */
export function customGrad<A extends Tensor[]>(
  forward: (...inputs: A) => CustomGradResult<Tensor>,
): (...inputs: A) => Tensor {
  return customGradImpl(forward);
}

/**
 * {@link customGrad} for an op with several outputs: `grad` receives one gradient per output (zeros for
 * outputs that received none, and for integer outputs, which never carry gradients).
 */
export function customGradMulti<A extends Tensor[]>(
  forward: (...inputs: A) => CustomGradResult<Tensor[]>,
): (...inputs: A) => Tensor[] {
  return customGradImpl(forward);
}

function customGradImpl<A extends Tensor[], V extends Tensor | Tensor[]>(
  forward: (...inputs: A) => CustomGradResult<V>,
): (...inputs: A) => V {
  return (...inputs: A) => {
    const { value, grad: vjp } = noGrad(() => forward(...inputs));
    const list = (Array.isArray(value) ? value : [value]).map((t) => t._alias());
    // record() keeps only float outputs on the node; put the gradients back in output order.
    const floatOuts = list.filter((t) => isFloat(t.dtype));
    const watched: readonly Tensor[] = inputs; // a list: the user's VJP may return any number of gradients (checked below)
    record("customGrad", watched, list, (gs) => {
      const full = list.map((t) => (isFloat(t.dtype) ? gs[floatOuts.indexOf(t)] : zerosLike(t)));
      const grads = vjp((Array.isArray(value) ? full : full[0]) as V);
      if (grads.length !== inputs.length) {
        throw new OpError("customGrad", `grad returned ${grads.length} gradients for ${inputs.length} inputs`);
      }
      grads.forEach((g, i) => {
        if (g && !shapesEqual(g.shape, inputs[i].shape)) {
          throw new OpError(
            "customGrad",
            `gradient ${i} has shape ${fmtShape(g.shape)} but input ${i} has shape ${fmtShape(inputs[i].shape)}`,
          );
        }
      });
      return grads;
    });
    return (Array.isArray(value) ? list : list[0]) as V;
  };
}
