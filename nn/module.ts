/**
 * `Module`, the base class of every layer: it owns named parameters, buffers and child modules, walks them
 * with dotted names ("blocks.0.attn.wq.weight"), switches train/eval mode, and saves and loads state dicts.
 *
 * @module
 */
import { add, keep, noGrad, Tensor, tensor } from "../core/mod.ts";

const NAME = /^[A-Za-z0-9_]+$/;

/** Options of {@link Module.loadStateDict}. */
export interface LoadStateDictOptions {
  /**
   * Require the state's keys to match the module's exactly (default true). With `false`, missing and
   * unexpected keys are reported in the result instead of raising; shape and dtype mismatches always raise.
   */
  strict?: boolean;
}

/** What {@link Module.loadStateDict} did not load (always empty lists when `strict`). */
export interface LoadStateDictResult {
  /** Keys of the module that the state did not provide (left unchanged). */
  missingKeys: string[];
  /** Keys of the state that the module does not have (ignored). */
  unexpectedKeys: string[];
}

/** Raised by {@link Module.loadStateDict} when validation fails; nothing has been loaded. */
export class StateDictError extends Error {
  /** One line per problem, each naming the key (and the shapes or dtypes involved). */
  readonly problems: readonly string[];
  /** Builds the error from the list of problems. */
  constructor(problems: readonly string[]) {
    super(
      `loadStateDict: ${problems.length} problem(s); nothing was loaded:\n${problems.map((p) => `  ${p}`).join("\n")}`,
    );
    this.name = "StateDictError";
    this.problems = problems;
  }
}

function describe(t: Tensor): string {
  return `${t.dtype} [${t.shape.join(", ")}]`;
}

/**
 * The base class of layers and models, like `torch.nn.Module`. Subclasses register their state in the
 * constructor with {@link Module.param} (trainable), {@link Module.buffer} (non-trainable) and
 * {@link Module.child} (sub-modules), and define their own `forward` (its signature is theirs to choose).
 *
 * Parameters and buffers belong to the module: registration `keep()`s them, so building a model inside a
 * `scope()` does not dispose its weights; free them with {@link Module.dispose}.
 *
 * Names follow PyTorch: a module's own parameters in registration order, then each child's, recursively,
 * with dotted paths. A tensor or module registered twice (tied weights) is listed once, under its first name.
 *
 * Auxiliary losses: {@link Module.auxLoss} returns the auxiliary losses of the latest forward pass summed
 * over the module tree (null when there are none). A layer that produces one (a Mixture-of-Experts router's
 * load-balancing loss) stores it during `forward` and overrides `auxLoss()`; every enclosing module then
 * reports it without further code.
 *
 * @example
 * ```ts
 * import { type Tensor, zeros } from "@moegrad/moegrad";
 * import { Linear, Module } from "./mod.ts";
 *
 * class Mlp extends Module {
 *   readonly fc1: Linear = this.child("fc1", new Linear(4, 8));
 *   readonly fc2: Linear = this.child("fc2", new Linear(8, 2));
 *   forward(x: Tensor): Tensor {
 *     return this.fc2.forward(this.fc1.forward(x).relu());
 *   }
 * }
 * const m = new Mlp();
 * console.log(m.namedParameters().map(([n]) => n)); // ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
 * console.log(m.forward(zeros([3, 4])).shape, m.numParameters()); // [3, 2] 58
 * ```
 */
export abstract class Module {
  /** Training mode (dropout active); set recursively with {@link Module.train} and {@link Module.eval}. */
  training = true;
  #params = new Map<string, Tensor>();
  #buffers = new Map<string, Tensor>();
  #children = new Map<string, Module>();

  #checkName(kind: string, name: string): void {
    if (typeof name !== "string" || !NAME.test(name)) {
      throw new Error(
        `${this.constructor.name}.${kind}: invalid name ${JSON.stringify(name)} (letters, digits and _ only)`,
      );
    }
    if (this.#params.has(name) || this.#buffers.has(name) || this.#children.has(name)) {
      throw new Error(`${this.constructor.name}.${kind}: "${name}" is already registered`);
    }
  }

  /** Registers a trainable parameter (marks it `requiresGrad_()`, keeps it out of scopes) and returns it. */
  protected param(name: string, t: Tensor): Tensor {
    this.#checkName("param", name);
    if (t.node) throw new Error(`${this.constructor.name}.param: "${name}" must be a leaf tensor (detach() it)`);
    t.requiresGrad_();
    this.#params.set(name, keep(t));
    return t;
  }

  /** Registers non-trainable state (saved in the state dict, never given gradients) and returns it. */
  protected buffer(name: string, t: Tensor): Tensor {
    this.#checkName("buffer", name);
    this.#buffers.set(name, keep(t));
    return t;
  }

  /** Registers a sub-module and returns it. */
  protected child<M extends Module>(name: string, module: M): M {
    this.#checkName("child", name);
    if (!(module instanceof Module)) throw new Error(`${this.constructor.name}.child: "${name}" is not a Module`);
    this.#children.set(name, module);
    return module;
  }

  /** This module and every descendant, pre-order, with dotted names (this module is `""`). */
  namedModules(): [string, Module][] {
    const out: [string, Module][] = [];
    const seen = new Set<Module>();
    const visit = (m: Module, prefix: string) => {
      if (seen.has(m)) return;
      seen.add(m);
      out.push([prefix, m]);
      for (const [n, c] of m.#children) visit(c, prefix ? `${prefix}.${n}` : n);
    };
    visit(this, "");
    return out;
  }

  /** The direct children with their names, in registration order. */
  namedChildren(): [string, Module][] {
    return [...this.#children];
  }

  #collect(pick: (m: Module) => Map<string, Tensor>): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      for (const [n, t] of pick(m)) {
        if (seen.has(t)) continue;
        seen.add(t);
        out.push([prefix ? `${prefix}.${n}` : n, t]);
      }
    }
    return out;
  }

  /** Every parameter with its dotted name (own first, then children's, in registration order). */
  namedParameters(): [string, Tensor][] {
    return this.#collect((m) => m.#params);
  }

  /** Every parameter, in the order of {@link Module.namedParameters}. */
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Every buffer with its dotted name. */
  namedBuffers(): [string, Tensor][] {
    return this.#collect((m) => m.#buffers);
  }

  /** The total number of parameter elements (tied parameters counted once). */
  numParameters(): number {
    return this.parameters().reduce((n, t) => n + t.size, 0);
  }

  /** Sets training mode on this module and every descendant. Returns `this`. */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  /** Evaluation mode: `train(false)`. Returns `this`. */
  eval(): this {
    return this.train(false);
  }

  /**
   * Parameters and buffers by dotted name. The values are the module's own tensors, not copies: read them
   * (`await t.data()`) or load them into another module, but do not dispose them.
   */
  stateDict(): Record<string, Tensor> {
    return Object.fromEntries([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /**
   * Copies `state` into this module's parameters and buffers in place (tensor identities are kept, so
   * optimizers holding them stay valid). Everything is validated first — missing and unexpected keys (when
   * `strict`), values that are not live tensors, shape and dtype mismatches — and any problem raises one
   * {@link StateDictError} listing them all, before anything is written: a load is never partial.
   *
   * Values may live on another device if it can be read synchronously (the CPU): a CPU checkpoint loads
   * into a WebGPU model. For a WebGPU source on another device, read it first (`await t.data()`).
   */
  loadStateDict(state: Record<string, Tensor>, options: LoadStateDictOptions = {}): LoadStateDictResult {
    const strict = options.strict ?? true;
    const own = this.stateDict();
    const problems: string[] = [];
    const missingKeys = Object.keys(own).filter((k) => !Object.hasOwn(state, k));
    const unexpectedKeys = Object.keys(state).filter((k) => !Object.hasOwn(own, k));
    if (strict) {
      for (const k of missingKeys) problems.push(`missing key "${k}" (model has ${describe(own[k])})`);
      for (const k of unexpectedKeys) {
        const v = state[k];
        problems.push(`unexpected key "${k}"${isTensor(v) ? ` (${describe(v)})` : ""}`);
      }
    }
    const pairs: [Tensor, Tensor][] = [];
    for (const [k, target] of Object.entries(own)) {
      if (!Object.hasOwn(state, k)) continue;
      const src = state[k];
      if (!isTensor(src)) {
        problems.push(`"${k}" is not a Tensor (got ${src === null ? "null" : typeof src})`);
        continue;
      }
      if (src.isDisposed || src.storage.released) {
        problems.push(`"${k}" is a disposed tensor`);
        continue;
      }
      const shapeOk = src.shape.length === target.shape.length && src.shape.every((d, i) => d === target.shape[i]);
      if (!shapeOk) {
        problems.push(
          `shape mismatch for "${k}": state has [${src.shape.join(", ")}], model has [${target.shape.join(", ")}]`,
        );
      }
      if (src.dtype !== target.dtype) {
        problems.push(`dtype mismatch for "${k}": state has ${src.dtype}, model has ${target.dtype}`);
      }
      if (shapeOk && src.dtype === target.dtype && src.device !== target.device && !src.device.backend.readSync) {
        problems.push(
          `"${k}" is on ${src.device.name}, the model on ${target.device.name}, and ${src.device.name} cannot be ` +
            `read synchronously; copy it first (tensor(await t.data(), { shape, dtype, device }))`,
        );
      }
      pairs.push([target, src]);
    }
    if (problems.length > 0) throw new StateDictError(problems);
    noGrad(() => {
      // Bring every cross-device source over before writing anything, then write.
      const moved = pairs.map(([target, src]) =>
        src.device === target.device
          ? src
          : tensor(src.dataSync(), { shape: src.shape, dtype: src.dtype, device: target.device })
      );
      pairs.forEach(([target], i) => target.assign_(moved[i]));
      moved.forEach((m, i) => m !== pairs[i][1] && m.dispose());
    });
    return { missingKeys: strict ? [] : missingKeys, unexpectedKeys: strict ? [] : unexpectedKeys };
  }

  /**
   * The auxiliary losses of the latest forward pass, summed over this module's children (null when none
   * has one). Modules that produce an auxiliary loss override this (adding `super.auxLoss()` if they also
   * have children that may produce one).
   */
  auxLoss(): Tensor | null {
    let total: Tensor | null = null;
    for (const [, c] of this.#children) {
      const l = c.auxLoss();
      if (l) total = total ? add(total, l) : l;
    }
    return total;
  }

  /** Disposes every parameter and buffer of the tree (the module must not be used afterwards). */
  dispose(): void {
    for (const [, t] of [...this.namedParameters(), ...this.namedBuffers()]) {
      t.grad?.dispose();
      t.grad = null;
      t.dispose();
    }
  }
}

function isTensor(v: unknown): v is Tensor {
  return v instanceof Tensor;
}

/**
 * An ordered list of sub-modules, registered as children named "0", "1", ….
 *
 * @example
 * ```ts
 * import { Linear, ModuleList } from "./mod.ts";
 * const layers = new ModuleList([new Linear(4, 4), new Linear(4, 4)]);
 * console.log(layers.length, layers.namedParameters()[2][0]); // 2 "1.weight"
 * ```
 */
export class ModuleList<M extends Module = Module> extends Module {
  #items: M[] = [];
  /** Wraps `modules` (more can be appended). */
  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.append(m);
  }
  /** Appends a module (named by its index). Returns `this`. */
  append(module: M): this {
    this.#items.push(this.child(String(this.#items.length), module));
    return this;
  }
  /** The module at `index` (negative counts from the end). */
  at(index: number): M {
    const m = this.#items.at(index);
    if (!m) throw new RangeError(`ModuleList.at: index ${index} is out of range for ${this.#items.length} modules`);
    return m;
  }
  /** The number of modules. */
  get length(): number {
    return this.#items.length;
  }
  /** Iterates the modules in order. */
  [Symbol.iterator](): Iterator<M> {
    return this.#items[Symbol.iterator]();
  }
}
