/**
 * Deterministic memory management: `scope(fn)` disposes every tensor created while `fn` runs except the
 * ones it returns (or marks with `keep`), like tfjs's `tidy` but correct across `await` — the current scope
 * travels with the async context (`AsyncLocalStorage`), so concurrent scopes never see each other's tensors.
 *
 * On the CPU a loop needs no scope: `backward()` disposes its own temporaries and frees the graph it consumed,
 * and the forward's tensors are reclaimed by the garbage collector (a FinalizationRegistry then updates
 * {@link memoryStats} when the event loop next turns). On WebGPU every undisposed tensor holds GPU memory
 * until then, so training loops should run each step in a scope there; the registry is a safety net only.
 * A scope pays on the CPU too: the buffers it disposes go to the CPU backend's pool and the next step reuses
 * them instead of allocating (`kernels/cpu/pool.ts`); what the collector reclaims is not reused.
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Tensor } from "./tensor.ts";

/** Live-object counters: the memory tests assert that a training loop leaves them flat. */
export const memoryStats: {
  /** Tensors created and not yet disposed. */
  liveTensors: number;
  /** Device buffers (storages) not yet released. */
  liveBuffers: number;
  /** Bytes held by those buffers (as the CPU would store them). */
  liveBytes: number;
  /**
   * Buffers the CPU backend has allocated fresh so far (cumulative): those it could not take from its pool
   * of released buffers. The difference between two readings is the allocations of the code in between.
   */
  allocatedBuffers: number;
  /** Bytes of those fresh allocations (cumulative). */
  allocatedBytes: number;
  /** Buffers the CPU backend handed out again from its pool instead of allocating (cumulative). */
  reusedBuffers: number;
  /** Bytes the CPU backend's pool holds now: released buffers waiting to be reused (not in `liveBytes`). */
  pooledBytes: number;
} = {
  liveTensors: 0,
  liveBuffers: 0,
  liveBytes: 0,
  allocatedBuffers: 0,
  allocatedBytes: 0,
  reusedBuffers: 0,
  pooledBytes: 0,
};

class Scope {
  readonly tensors = new Set<Tensor>();
}

const current = new AsyncLocalStorage<Scope>();

/** @internal Called by the Tensor constructor: the tensor belongs to the innermost active scope. */
export function trackTensor(t: Tensor): void {
  current.getStore()?.tensors.add(t);
}

/**
 * Exempts `t` from disposal by the scopes it was created in (it must then be disposed by hand). Returns `t`.
 *
 * @example
 * ```ts
 * import { keep, ones, scope } from "@moegrad/moegrad";
 * let kept;
 * scope(() => {
 *   kept = keep(ones([2]).mul(3)); // survives the scope
 *   ones([1000]); // disposed when the scope ends
 * });
 * ```
 */
export function keep<T extends Tensor>(t: T): T {
  current.getStore()?.tensors.delete(t);
  t._kept = true;
  return t;
}

function collect(value: unknown, out: Set<Tensor>, seen: Set<unknown>): void {
  if (value === null || typeof value !== "object" || seen.has(value)) return;
  seen.add(value);
  if (isTensor(value)) {
    out.add(value);
    return;
  }
  if (Array.isArray(value)) { for (const v of value) collect(v, out, seen); }
  else if (value instanceof Map) { for (const v of value.values()) collect(v, out, seen); }
  else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, out, seen);
  }
}

function isTensor(v: object): v is Tensor {
  return "storage" in v && "shape" in v && typeof (v as Tensor).dispose === "function";
}

function finish<T>(scope: Scope, parent: Scope | undefined, result: T): T {
  const survivors = new Set<Tensor>();
  collect(result, survivors, new Set());
  for (const t of scope.tensors) {
    if (survivors.has(t)) parent?.tensors.add(t);
    else t.dispose();
  }
  scope.tensors.clear();
  return result;
}

/**
 * Runs `fn` and disposes every tensor it created, except those in its result (a tensor, or arrays, maps and
 * plain objects of them), which move to the enclosing scope. `fn` may be async: the scope ends when its
 * promise settles, and tensors created by other concurrent tasks are not affected.
 *
 * @example
 * ```ts
 * import { memoryStats, randn, scope } from "@moegrad/moegrad";
 * const before = memoryStats.liveTensors;
 * const y = scope(() => randn([64, 64]).matmul(randn([64, 64])).relu().sum());
 * console.log(memoryStats.liveTensors - before); // 1: only the returned sum is alive
 * ```
 */
export function scope<T>(fn: () => T): T {
  const parent = current.getStore();
  const s = new Scope();
  let result: T;
  try {
    result = current.run(s, fn);
  } catch (e) {
    finish(s, parent, undefined);
    throw e;
  }
  if (result instanceof Promise) {
    return result.then(
      (v) => finish(s, parent, v),
      (e) => {
        finish(s, parent, undefined);
        throw e;
      },
    ) as T;
  }
  return finish(s, parent, result);
}
