/**
 * The optimizer base class: named parameters, the learning rate, `step()` / `zeroGrad()`, and a state dict
 * that a checkpoint can store and restore so that a resumed run is bit-identical to an uninterrupted one.
 *
 * @module
 */
import { full, keep, noGrad, scope, Tensor, tensor, zeros, zerosLike } from "../../core/mod.ts";
import { activeRecorder } from "../../core/profile.ts";
import { fmtShape } from "../../core/errors.ts";
import { checkNumber } from "./_check.ts";
import { fusedCpuF32 } from "./_fused.ts";
import { checkGradGroup, opGlobalNorm } from "./_grad_norm.ts";
import { fusedGlobalNorm } from "./fused_clip.ts";

/** The eps of the `maxGradNorm` clipping: {@link clipGradNorm}'s default, so the two agree bit for bit. */
const CLIP_EPS = 1e-6;

/**
 * What an optimizer (or {@link clipGradNorm}) accepts as parameters: tensors (named `"0"`, `"1"`, … in
 * order) or `[name, tensor]` pairs — an array of them, a `Map<string, Tensor>`, or a module's named
 * parameters. Mixing the two forms is an error.
 */
export type ParamsInput = Iterable<Tensor> | Iterable<readonly [string, Tensor]>;

/**
 * A snapshot of an optimizer, made to be stored: `tensors` in a tensor file (safetensors), the rest in
 * JSON. Restoring it with {@link Optimizer.loadStateDict} (after restoring the parameters) continues the
 * run bit for bit.
 */
export interface OptimizerState {
  /** {@link Optimizer.stepCount}: the number of `step()` calls so far. */
  step: number;
  /** The learning rate at the time of the snapshot. */
  lr: number;
  /**
   * Per-parameter state tensors keyed `"<kind>.<parameter name>"`, e.g. `"exp_avg.layer1.weight"`. Each is
   * a new handle owned by the caller (dispose it when done); later steps do not change it.
   */
  tensors: Record<string, Tensor>;
  /**
   * Hyperparameters (e.g. `momentum`, `beta1`, `weightDecay`) and scalar per-parameter state (Adam's
   * `"step.<parameter name>"`). `loadStateDict` restores them, as PyTorch does.
   */
  hyper: Record<string, number | boolean>;
}

/** Turns the accepted parameter forms into `[name, tensor]` pairs, validating them. */
export function namedParams(owner: string, params: ParamsInput): [string, Tensor][] {
  if (
    params === null || typeof params !== "object" ||
    typeof (params as Iterable<unknown>)[Symbol.iterator] !== "function"
  ) {
    throw new TypeError(`${owner}: params must be an iterable of Tensors or of [name, Tensor] pairs`);
  }
  const out: [string, Tensor][] = [];
  const names = new Set<string>();
  const seen = new Map<Tensor, string>();
  let form: "tensors" | "pairs" | undefined;
  let i = 0;
  for (const item of params as Iterable<unknown>) {
    let name: string, t: Tensor, itemForm: "tensors" | "pairs";
    if (item instanceof Tensor) {
      [name, t, itemForm] = [String(i), item, "tensors"];
    } else if (Array.isArray(item) && item.length === 2 && typeof item[0] === "string" && item[1] instanceof Tensor) {
      [name, t, itemForm] = [item[0], item[1], "pairs"];
    } else {
      throw new TypeError(`${owner}: parameter ${i} is neither a Tensor nor a [name, Tensor] pair`);
    }
    if (form !== undefined && form !== itemForm) {
      throw new TypeError(`${owner}: params mix Tensors and [name, Tensor] pairs (at parameter ${i}); use one form`);
    }
    form = itemForm;
    if (name === "") throw new TypeError(`${owner}: parameter ${i} has an empty name`);
    if (names.has(name)) throw new TypeError(`${owner}: two parameters are named "${name}"`);
    const dup = seen.get(t);
    if (dup !== undefined) {
      throw new TypeError(`${owner}: the same tensor is given twice (as "${dup}" and "${name}")`);
    }
    if (t.isDisposed) throw new TypeError(`${owner}: parameter "${name}" has been disposed`);
    if (t.dtype !== "f32" && t.dtype !== "f64") {
      throw new TypeError(`${owner}: parameter "${name}" must be f32 or f64, got ${t.dtype} ${fmtShape(t.shape)}`);
    }
    if (t.node !== null) {
      throw new TypeError(
        `${owner}: parameter "${name}" is not a leaf tensor (it was computed from others); optimize a leaf instead`,
      );
    }
    names.add(name);
    seen.set(t, name);
    out.push([name, t]);
    i++;
  }
  return out;
}

/**
 * Base class of the optimizers. A subclass implements {@link Optimizer.updateParameter} (one parameter's
 * update, written with ordinary ops) and the hyperparameter half of the state dict; this class does the
 * rest:
 *
 * - `step()` updates every parameter that has a `.grad`, in place (`p.assign_`), under `noGrad` and inside a
 *   `scope`, so its temporaries are freed; per-parameter state tensors are `keep()`-ed and owned here.
 * - The op-by-op path replaces the state tensors each step (see {@link Optimizer.setState}); the fused CPU
 *   paths of Adam and SGD update them in place (see {@link Optimizer.mutableState}), so a steady-state step
 *   allocates nothing. Either way the tensors of a {@link OptimizerState} are copies, i.e. snapshots.
 * - Every update is a fixed sequence of elementwise ops on (parameter, gradient, state) with scalars that
 *   are plain functions of the options, the learning rate and the step counts, so the arithmetic is fully
 *   determined by what the state dict holds: a run resumed from it is bit-identical to one never stopped.
 * - With a `maxGradNorm` (see {@link Optimizer.maxGradNorm}), `step()` first measures the global gradient
 *   norm and hands the clip coefficient to the update, like optax's `chain(clip_by_global_norm(c), …)`.
 */
export abstract class Optimizer {
  /** The name used in error messages (the class name). */
  readonly owner: string;
  readonly #params: readonly (readonly [string, Tensor])[];
  readonly #byName: ReadonlyMap<string, Tensor>;
  #lr: number;
  #stepCount = 0;
  #maxGradNorm: number | undefined;
  #lastGradNorm: Tensor | undefined;
  /** parameter name → state kind → tensor. */
  readonly #state = new Map<string, Map<string, Tensor>>();

  /**
   * Validates the parameters, the learning rate and the clipping threshold (undefined: no clipping).
   * `owner` names the optimizer in errors.
   */
  protected constructor(owner: string, params: ParamsInput, lr: number, maxGradNorm?: number) {
    this.owner = owner;
    const named = namedParams(owner, params);
    if (named.length === 0) throw new TypeError(`${owner}: got an empty parameter list`);
    this.#params = Object.freeze(named.map((p) => Object.freeze(p) as readonly [string, Tensor]));
    this.#byName = new Map(named);
    this.#lr = checkNumber(owner, "lr", lr, { min: 0 });
    this.maxGradNorm = maxGradNorm;
  }

  /**
   * The kinds of per-parameter state tensors, e.g. `["exp_avg", "exp_avg_sq"]`. A parameter has either all
   * of them or none (before its first update).
   */
  protected abstract get stateKinds(): readonly string[];

  /**
   * Updates one parameter: compute the new value from `param`, `grad` and the state (read with
   * {@link Optimizer.getState}), store new state with {@link Optimizer.setState}, and write the parameter
   * with `param.assign_(…)` — or write the parameter and the state tensors of {@link Optimizer.mutableState}
   * in place. Runs under `noGrad` inside a `scope`.
   *
   * `gradScale` is a gradient-clipping coefficient (an f32 value) that the update must apply to the
   * gradient first, as f32(g·gradScale) per element, when it is not 1. It is 1 unless the subclass sets
   * {@link Optimizer.fusesGradScale}; otherwise a clipping step passes an already scaled `grad`.
   */
  protected abstract updateParameter(name: string, param: Tensor, grad: Tensor, gradScale: number): void;

  /**
   * Runs what {@link Optimizer.updateParameter} queued instead of running at once (Adam's fused CPU updates,
   * batched into a few kernel jobs). Called once at the end of every `step()`, inside its `noGrad` scope, also
   * when an update threw, so every update made before the error still lands as it did when each ran at once.
   * Default: nothing.
   */
  protected finishUpdates(): void {}

  /**
   * Whether {@link Optimizer.updateParameter} applies a `gradScale` ≠ 1 itself on its fused CPU path (f32
   * tensors, `fastKernels` on), so that a clipping step need not write scaled gradients. Default false.
   */
  protected get fusesGradScale(): boolean {
    return false;
  }

  /** The hyperparameters and scalar per-parameter state to save (see {@link OptimizerState.hyper}). */
  protected abstract hyperState(): Record<string, number | boolean>;

  /**
   * Validates saved `hyper` (throwing an error that names the bad keys) without changing anything, and
   * returns a function that applies it. `withState` holds the names of the parameters that have state
   * tensors in the dict being loaded.
   */
  protected abstract prepareHyper(
    hyper: Record<string, number | boolean>,
    withState: ReadonlySet<string>,
    step: number,
  ): () => void;

  /** The learning rate used by the next `step()` (schedules set it before each step). */
  get lr(): number {
    return this.#lr;
  }
  set lr(value: number) {
    this.#lr = checkNumber(this.owner, "lr", value, { min: 0 });
  }

  /**
   * The global-norm clipping threshold c of `step()`, or undefined (the default) for none. With c set, each
   * `step()` clips exactly as `clipGradNorm(optimizer.parameters(), c)` followed by an unclipped `step()`
   * would — the same norm (eps 1e-6), the same coefficient min(1, c / (norm + eps)), each gradient element
   * rounded as f32(g·coefficient) (or f64), non-finite norms propagating likewise: the parameters and the
   * state come out bit-identical — but the gradients are not changed (as in optax, which leaves them alone):
   * on the fused CPU path the coefficient is applied inside the update pass, saving a pass over every
   * gradient; elsewhere scaled temporaries are made and freed. Only parameters of this optimizer that have a
   * `.grad` count towards the norm, and their gradients must share one dtype and device. The threshold is an
   * option of the training loop, not saved in the state dict: pass it again when resuming. Read the measured
   * norm from {@link Optimizer.lastGradNorm}.
   *
   * @example
   * ```ts
   * import { tensor } from "@moegrad/moegrad";
   * import { AdamW } from "./mod.ts";
   * const w = tensor([3, 4]).requiresGrad_();
   * const opt = new AdamW([w], { lr: 0.1, maxGradNorm: 1 });
   * w.mul(tensor([3, 4])).sum().backward(); // grad [3, 4], norm 5
   * opt.step(); // the update sees the gradient times 1 / (5 + 1e-6)
   * console.log(await opt.lastGradNorm!.item(), await w.grad!.data()); // 5, [3, 4]: .grad is unchanged
   * ```
   */
  get maxGradNorm(): number | undefined {
    return this.#maxGradNorm;
  }
  set maxGradNorm(value: number | undefined) {
    this.#maxGradNorm = value === undefined
      ? undefined
      : checkNumber(this.owner, "maxGradNorm", value, { min: 0, allowInfinity: true });
  }

  /**
   * The global gradient norm (before clipping) that the latest `step()` measured, as the scalar tensor
   * {@link clipGradNorm} returns (on the gradients' device; a zero scalar when no parameter had a
   * gradient); undefined without {@link Optimizer.maxGradNorm} or before the first clipping step. The
   * optimizer owns it: it stays valid until the next `step()` or `dispose()`, so read it (`await
   * norm.item()`) or copy it before then.
   */
  get lastGradNorm(): Tensor | undefined {
    return this.#lastGradNorm;
  }

  /** The number of completed `step()` calls (restored by {@link Optimizer.loadStateDict}). */
  get stepCount(): number {
    return this.#stepCount;
  }

  /** The `[name, parameter]` pairs, in the order given (like `Module.namedParameters()`). */
  namedParameters(): [string, Tensor][] {
    return this.#params.map(([n, p]) => [n, p]);
  }

  /** The parameters, in the order given. */
  parameters(): Tensor[] {
    return this.#params.map(([, p]) => p);
  }

  /**
   * Updates every parameter that has a `.grad`, in place. Parameters without a gradient (and their state)
   * are left alone, as in PyTorch. Checks all gradients before changing anything. With
   * {@link Optimizer.maxGradNorm} set, the gradients are clipped by their global norm first (without
   * changing `.grad`).
   */
  step(): void {
    const work: [string, Tensor, Tensor][] = [];
    for (const [name, p] of this.#params) {
      const g = p.grad;
      if (!g) continue;
      if (g.isDisposed) throw new Error(`${this.owner}.step: the gradient of "${name}" has been disposed`);
      if (p.isDisposed) throw new Error(`${this.owner}.step: parameter "${name}" has been disposed`);
      if (g.dtype !== p.dtype || g.device !== p.device || fmtShape(g.shape) !== fmtShape(p.shape)) {
        throw new Error(
          `${this.owner}.step: the gradient of "${name}" (${g.dtype} ${fmtShape(g.shape)} on ${g.device.name}) ` +
            `does not match the parameter (${p.dtype} ${fmtShape(p.shape)} on ${p.device.name})`,
        );
      }
      work.push([name, p, g]);
    }
    const maxNorm = this.#maxGradNorm;
    if (maxNorm !== undefined) checkGradGroup(`${this.owner}.step`, work.map(([name, p]) => [name, p] as const));
    noGrad(() =>
      scope(() => {
        try {
          if (maxNorm === undefined) {
            for (const [name, p, g] of work) this.updateParameter(name, p, g, 1);
          } else {
            this.#clippedUpdates(work, maxNorm);
          }
        } finally {
          this.finishUpdates();
        }
      })
    );
    this.#stepCount++;
  }

  /** The updates of a clipping step (see {@link Optimizer.maxGradNorm}); under `noGrad` in a `scope`. */
  #clippedUpdates(work: readonly [string, Tensor, Tensor][], maxNorm: number): void {
    this.#lastGradNorm?.dispose();
    this.#lastGradNorm = undefined;
    if (work.length === 0) {
      const like = this.#params[0][1];
      this.#lastGradNorm = keep(zeros([], { dtype: like.dtype, device: like.device }));
      return;
    }
    const grads = work.map(([, , g]) => g);
    if (this.fusesGradScale && work.every(([, p, g]) => fusedCpuF32(p, g))) {
      // The coefficient goes into the fused update: no pass writes scaled gradients.
      const rec = activeRecorder();
      const t0 = rec ? performance.now() : 0;
      const { total, scale } = fusedGlobalNorm(grads, maxNorm, CLIP_EPS);
      if (rec) rec.record("gradNorm", "fused-cpu", performance.now() - t0);
      this.#lastGradNorm = keep(full([], total, { dtype: "f32", device: grads[0].device }));
      for (const [name, p, g] of work) this.updateParameter(name, p, g, scale);
      return;
    }
    const { total, scale } = opGlobalNorm(grads, maxNorm, CLIP_EPS);
    this.#lastGradNorm = keep(total);
    // One scaled temporary per gradient tensor (a tensor that is two parameters' gradient is scaled once).
    const scaled = new Map<Tensor, Tensor>();
    for (const [name, p, g] of work) {
      let s = scaled.get(g);
      if (!s) scaled.set(g, s = g.mul(scale));
      this.updateParameter(name, p, s, 1);
    }
  }

  /** Disposes and clears the `.grad` of every parameter (PyTorch's `zero_grad(set_to_none=True)`). */
  zeroGrad(): void {
    for (const [, p] of this.#params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** The state tensor `kind` of parameter `name`, if it has one yet. */
  protected getState(name: string, kind: string): Tensor | undefined {
    return this.#state.get(name)?.get(kind);
  }

  /**
   * Makes `value` the state tensor `kind` of parameter `name`: it is `keep()`-ed (owned by the optimizer)
   * and the tensor it replaces is disposed. `value` must not share storage with a gradient or parameter
   * (copy those first), since it outlives them.
   */
  protected setState(name: string, kind: string, value: Tensor): void {
    let entry = this.#state.get(name);
    if (!entry) this.#state.set(name, entry = new Map());
    const prev = entry.get(kind);
    entry.set(kind, keep(value));
    if (prev && prev !== value) prev.dispose();
  }

  /**
   * The state tensor `kind` of parameter `name` for an update that writes it in place: created as zeros
   * shaped like `like` if the parameter has no state yet, and swapped for a private copy if another tensor
   * views its storage (so an in-place update changes nothing that anyone else reads).
   */
  protected mutableState(name: string, kind: string, like: Tensor): Tensor {
    const t = this.getState(name, kind);
    if (t && t.storage.lease.refs === 1) return t;
    const own = t ? copyTo(t, like) : noGrad(() => zerosLike(like));
    this.setState(name, kind, own);
    return own;
  }

  /** A snapshot of the optimizer to store in a checkpoint (see {@link OptimizerState}). */
  stateDict(): OptimizerState {
    const tensors: Record<string, Tensor> = {};
    for (const [name] of this.#params) {
      const entry = this.#state.get(name);
      if (!entry) continue;
      for (const kind of this.stateKinds) {
        const t = entry.get(kind);
        // A copy, not a view: the fused paths update the state in place.
        if (t) tensors[`${kind}.${name}`] = copyTo(t, t);
      }
    }
    return { step: this.#stepCount, lr: this.#lr, tensors, hyper: this.hyperState() };
  }

  /**
   * Restores a state saved by {@link Optimizer.stateDict} (of an optimizer of the same kind over
   * parameters with the same names and shapes). Everything is validated before anything changes; an error
   * names every bad key. The tensors are copied (the caller keeps ownership of `state.tensors`); a state
   * tensor on another device than its parameter is copied over if its device can be read synchronously (the
   * CPU), so a checkpoint loaded on the CPU restores a WebGPU optimizer. Replaces the step count, the
   * learning rate, the hyperparameters and all state; parameters absent from `state.tensors` start afresh.
   */
  loadStateDict(state: OptimizerState): void {
    const owner = `${this.owner}.loadStateDict`;
    if (state === null || typeof state !== "object") throw new TypeError(`${owner}: state must be an object`);
    checkNumber(owner, "state.step", state.step, { min: 0, integer: true });
    checkNumber(owner, "state.lr", state.lr, { min: 0 });
    for (const field of ["tensors", "hyper"] as const) {
      const v = state[field];
      if (v === null || typeof v !== "object" || Array.isArray(v)) {
        throw new TypeError(`${owner}: state.${field} must be an object`);
      }
    }
    const kinds = this.stateKinds;
    const incoming = new Map<string, Map<string, Tensor>>();
    const problems: string[] = [];
    for (const [key, t] of Object.entries(state.tensors)) {
      const dot = key.indexOf(".");
      const kind = dot < 0 ? key : key.slice(0, dot);
      const name = dot < 0 ? "" : key.slice(dot + 1);
      const p = this.#byName.get(name);
      if (!kinds.includes(kind)) {
        problems.push(
          `"${key}": unknown state kind "${kind}" (expected ${kinds.map((k) => `"${k}.<param name>"`).join(" or ")})`,
        );
      } else if (!p) {
        problems.push(`"${key}": no parameter is named "${name}"`);
      } else if (!(t instanceof Tensor)) {
        problems.push(`"${key}": not a Tensor`);
      } else if (t.isDisposed) {
        problems.push(`"${key}": the tensor has been disposed`);
      } else if (fmtShape(t.shape) !== fmtShape(p.shape)) {
        problems.push(`"${key}": shape ${fmtShape(t.shape)} does not match parameter "${name}" ${fmtShape(p.shape)}`);
      } else if (t.dtype !== p.dtype) {
        problems.push(`"${key}": dtype ${t.dtype} does not match parameter "${name}" (${p.dtype})`);
      } else if (t.device !== p.device && !t.device.backend.readSync) {
        problems.push(
          `"${key}": on ${t.device.name}, parameter "${name}" is on ${p.device.name}; ` +
            `load the state on the CPU or on the parameter's device`,
        );
      } else {
        let entry = incoming.get(name);
        if (!entry) incoming.set(name, entry = new Map());
        entry.set(kind, t);
      }
    }
    for (const [name, entry] of incoming) {
      const missing = kinds.filter((k) => !entry.has(k));
      if (missing.length > 0) {
        problems.push(
          `missing ${missing.map((k) => `"${k}.${name}"`).join(", ")} (a parameter's state holds ${
            kinds.join(" and ")
          })`,
        );
      }
    }
    if (problems.length > 0) throw new Error(`${owner}: ${problems.join("; ")}`);
    const commitHyper = this.prepareHyper(state.hyper, new Set(incoming.keys()), state.step);

    const copies = new Map<string, Map<string, Tensor>>();
    try {
      for (const [name, entry] of incoming) {
        const p = this.#byName.get(name)!;
        const copy = new Map<string, Tensor>();
        copies.set(name, copy);
        for (const [kind, t] of entry) copy.set(kind, keep(copyTo(t, p)));
      }
    } catch (e) {
      for (const copy of copies.values()) for (const t of copy.values()) t.dispose();
      throw e;
    }
    this.#disposeState();
    for (const [name, copy] of copies) this.#state.set(name, copy);
    this.#lr = state.lr;
    this.#stepCount = state.step;
    commitHyper();
  }

  /** Frees the optimizer's state tensors and {@link Optimizer.lastGradNorm} (the optimizer starts afresh if used again). */
  dispose(): void {
    this.#disposeState();
    this.#lastGradNorm?.dispose();
    this.#lastGradNorm = undefined;
  }

  #disposeState(): void {
    for (const entry of this.#state.values()) for (const t of entry.values()) t.dispose();
    this.#state.clear();
  }
}

/** An exact copy of `src` with its own storage, on `like`'s device. */
function copyTo(src: Tensor, like: Tensor): Tensor {
  if (src.device === like.device) return noGrad(() => zerosLike(like).assign_(src));
  return tensor(src.dataSync(), { shape: src.shape, dtype: src.dtype, device: like.device });
}

/**
 * Throws unless `hyper` has exactly the keys `expected` plus, for each of `perParam`'s prefixes, one
 * `"<prefix>.<name>"` per name in `withState` — naming the unknown and the missing keys.
 */
export function checkHyperKeys(
  owner: string,
  hyper: Record<string, number | boolean>,
  expected: readonly string[],
  perParam: readonly string[] = [],
  withState: ReadonlySet<string> = new Set(),
): void {
  const want = new Set(expected);
  for (const prefix of perParam) for (const name of withState) want.add(`${prefix}.${name}`);
  const unknown = Object.keys(hyper).filter((k) => !want.has(k));
  const missing = [...want].filter((k) => !Object.hasOwn(hyper, k));
  const parts: string[] = [];
  if (unknown.length > 0) parts.push(`unknown hyper key${unknown.length > 1 ? "s" : ""} ${quote(unknown)}`);
  if (missing.length > 0) parts.push(`missing hyper key${missing.length > 1 ? "s" : ""} ${quote(missing)}`);
  if (parts.length > 0) {
    throw new Error(`${owner}: ${parts.join("; ")} (was the state saved by a different optimizer or model?)`);
  }
}

function quote(keys: readonly string[]): string {
  return keys.map((k) => `"${k}"`).join(", ");
}
