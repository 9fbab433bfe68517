/**
 * Null-control routers (ESTIMATORS.md §12, last bullet): routings that ignore what the router learns, so that an
 * experiment can tell whether learned routing matters at its scale at all. If the learned routers do not beat
 * these, a comparison between learned estimators at that scale cannot mean much.
 *
 * - `random`: every token gets K distinct experts drawn uniformly at random, redrawn at every forward (every
 *   training step, and at every evaluation): routing that carries no information about the token. The draws are
 *   one `U[0,1)` tensor [N, E] from the {@link DrawSource} (`"torch.rand"`); the experts are its top-K, i.e. a
 *   uniformly random ordered K-subset.
 * - `hash`: Hash Layers (Roller et al. 2021, arXiv 2106.04426): the experts are a fixed function of the token
 *   id, `expert = h(id) mod E` with a seeded 32-bit mixing hash (for K > 1, a partial Fisher–Yates shuffle of
 *   the E experts driven by one hash per slot, so the K experts are distinct). This is also the issue's "fixed
 *   random assignment": with a good hash, each token id's experts are as if drawn once at random (Roller's
 *   "random hash"), and `seed` picks another draw. The map is tabulated on the host for the ids below
 *   `vocabSize` and looked up on the device ({@link HashEstimator.table}), so routing reads nothing back.
 *
 * Both need nothing from the router: the gates are the constant 1/K (the mean of the K experts' outputs; 1 for
 * top-1, as in Hash Layers), `probs` is the constant uniform 1/E (so a balance loss is a constant with no
 * gradient), and no gradient reaches the logits: the router's weights get none. The third control, a router
 * frozen at its initial weights, is the layer option `frozenRouter` (`layer_options.ts`), which works with any
 * estimator.
 *
 * `hash` needs the token ids: `MoELayer.forward(x, { tokenIds })`, which `DecoderLM` passes to every
 * feed-forward (`RouteOptions.tokenIds`); without them it throws.
 *
 * @module
 */
import type { z } from "../../deps.ts";
import type { Tensor } from "../../core/tensor.ts";
import { fromArray, full } from "../../core/ops/creation.ts";
import { indexSelect } from "../../core/ops/index.ts";
import { noGrad } from "../../core/autograd.ts";
import { keep } from "../../core/memory.ts";
import { OpError } from "../../core/errors.ts";
import type { FloatDType } from "../../core/dtype.ts";
import type { Estimator, RouteOptions, Routing } from "./estimator.ts";
import { parseOptions } from "./options.ts";
import { hashRoutingOptionsSchema, randomRoutingOptionsSchema } from "./null_control_options.ts";
import { defineEstimator, DROPS_SLOTS, type EstimatorDescriptor, topKOption } from "./descriptor.ts";

/** Options of {@link RandomRoutingEstimator} (validated, with defaults, by `randomRoutingOptionsSchema`). */
export interface RandomRoutingOptions {
  /** Experts per token (integer ≥ 1, ≤ E; default 1). */
  topK?: number;
}

/** Options of {@link HashEstimator} (validated, with defaults, by `hashRoutingOptionsSchema`). */
export interface HashRoutingOptions {
  /** Experts per token (integer ≥ 1, ≤ E; default 1). */
  topK?: number;
  /** Seed of the hash, a 32-bit unsigned integer (default 0): another seed is another fixed assignment. */
  seed?: number;
  /** Token ids must be below this: the rows of the device lookup table (default 65536). */
  vocabSize?: number;
}

/** A 32-bit integer mixer (an xorshift-multiply finalizer with good avalanche): `x` → [0, 2^32). */
function mix32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d);
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/** The hash of slot `slot` of token `id` under `seed`: an unsigned 32-bit integer. */
export function tokenHash(id: number, seed: number, slot: number): number {
  return mix32((id ^ mix32((seed ^ mix32(slot + 0x9e3779b9)) >>> 0)) >>> 0);
}

/**
 * The K distinct experts of token `id` (of E), in slot order: slot j takes index `h_j mod (E − j)` among the
 * experts not yet taken (a partial Fisher–Yates shuffle), so for K = 1 the expert is `tokenHash(id) mod E`.
 *
 * @example
 * ```ts
 * import { hashExperts } from "./null_controls.ts";
 * console.log(hashExperts(17, 8, 2, 0)); // two distinct experts in 0 … 7, the same on every call
 * ```
 */
export function hashExperts(id: number, numExperts: number, topK: number, seed: number): number[] {
  if (!Number.isInteger(id) || id < 0) throw new OpError("hash", `token id must be an integer ≥ 0, got ${id}`);
  if (topK > numExperts) throw new OpError("hash", `topK = ${topK} exceeds the number of experts ${numExperts}`);
  const pool = Array.from({ length: numExperts }, (_, i) => i);
  const out: number[] = [];
  for (let j = 0; j < topK; j++) {
    const remaining = numExperts - j;
    const r = tokenHash(id, seed, j) % remaining;
    out.push(pool[r]);
    pool[r] = pool[remaining - 1]; // the taken expert leaves the pool
  }
  return out;
}

function floatDType(t: Tensor, who: string): FloatDType {
  if (t.dtype !== "f32" && t.dtype !== "f64") throw new OpError(who, `expected floating-point logits, got ${t.dtype}`);
  return t.dtype;
}

/** The constant gates 1/K and probabilities 1/E of a null control (no gradient anywhere). */
function constantRouting(experts: Tensor, logits: Tensor, dtype: FloatDType): Routing {
  const [n, e] = logits.shape;
  const k = experts.shape[1];
  const like = { dtype, device: logits.device };
  return { experts, gates: full([n, k], 1 / k, like), probs: full([n, e], 1 / e, like) };
}

function checkLogits(logits: Tensor, topK: number, who: string): void {
  if (logits.rank !== 2) throw new OpError(who, `logits must be [N, E], got rank ${logits.rank}`);
  if (topK > logits.shape[1]) {
    throw new OpError(who, `topK = ${topK} exceeds the number of experts ${logits.shape[1]}`);
  }
}

/**
 * The `random` null control: K distinct uniformly random experts per token, redrawn at every call (training and
 * evaluation); constant gates 1/K. The logits are used for their shape only.
 *
 * @example
 * ```ts
 * import { Generator, GeneratorDraws, zeros } from "@moegrad/moegrad";
 * import { RandomRoutingEstimator } from "./null_controls.ts";
 * const r = new RandomRoutingEstimator({ topK: 2 }).route(zeros([3, 8]), {
 *   training: true,
 *   draws: new GeneratorDraws(new Generator(0)),
 * });
 * console.log(r.experts.shape, await r.gates.data()); // [3, 2] Float32Array(6) [0.5, …]
 * ```
 */
export class RandomRoutingEstimator implements Estimator {
  /** Registry name. */
  readonly name = "random";
  /** Experts per token. */
  readonly topK: number;
  /** Sparse. */
  readonly dense = false;

  /** See {@link RandomRoutingOptions}. */
  constructor(options: RandomRoutingOptions = {}) {
    this.topK = parseOptions({ name: "random", schema: randomRoutingOptionsSchema }, options).topK;
  }

  /** See {@link Estimator.route}: one `torch.rand` [N, E] draw, its top-K indices. */
  route(logits: Tensor, options: RouteOptions): Routing {
    checkLogits(logits, this.topK, "random");
    const dtype = floatDType(logits, "random");
    const experts = noGrad(() =>
      options.draws.draw("uniform", logits.shape, "torch.rand", { dtype, device: logits.device }).topk(this.topK)
        .indices
    );
    return constantRouting(experts, logits, dtype);
  }
}

/**
 * The `hash` null control (Hash Layers): the experts of a token are {@link hashExperts} of its id, looked up in a
 * table [vocabSize, K] built once per device; constant gates 1/K. Needs `RouteOptions.tokenIds`.
 *
 * @example
 * ```ts
 * import { Generator, GeneratorDraws, tensor, zeros } from "@moegrad/moegrad";
 * import { HashEstimator } from "./null_controls.ts";
 * const r = new HashEstimator({ vocabSize: 100 }).route(zeros([3, 4]), {
 *   training: true,
 *   draws: new GeneratorDraws(new Generator(0)),
 *   tokenIds: tensor([5, 9, 5], { dtype: "i32" }),
 * });
 * const e = await r.experts.data();
 * console.log(e[0] === e[2]); // true: the same token, the same expert
 * ```
 */
export class HashEstimator implements Estimator {
  /** Registry name. */
  readonly name = "hash";
  /** Experts per token. */
  readonly topK: number;
  /** Sparse. */
  readonly dense = false;
  /** The hash seed. */
  readonly seed: number;
  /** Token ids must be below this. */
  readonly vocabSize: number;
  readonly #tables = new Map<string, Tensor>();

  /** See {@link HashRoutingOptions}. */
  constructor(options: HashRoutingOptions = {}) {
    const o = parseOptions({ name: "hash", schema: hashRoutingOptionsSchema }, options);
    this.topK = o.topK;
    this.seed = o.seed;
    this.vocabSize = o.vocabSize;
  }

  /** The lookup table [vocabSize, K] (i32) of a layer of `numExperts` experts: row `id` = {@link hashExperts}. */
  table(numExperts: number): Int32Array {
    const k = this.topK;
    const out = new Int32Array(this.vocabSize * k);
    for (let id = 0; id < this.vocabSize; id++) out.set(hashExperts(id, numExperts, k, this.seed), id * k);
    return out;
  }

  /** See {@link Estimator.route}; `options.tokenIds` (i32, N of them, any shape) is required. */
  route(logits: Tensor, options: RouteOptions): Routing {
    checkLogits(logits, this.topK, "hash");
    const dtype = floatDType(logits, "hash");
    const ids = options.tokenIds;
    if (!ids) {
      throw new OpError("hash", "the hash router needs the token ids: call MoELayer.forward(x, { tokenIds })");
    }
    if (ids.dtype !== "i32" || ids.size !== logits.shape[0]) {
      throw new OpError(
        "hash",
        `tokenIds must be i32 with one id per token (${logits.shape[0]}), got ${ids.dtype} [${ids.shape.join(", ")}]`,
      );
    }
    const e = logits.shape[1];
    const key = `${logits.device.name}/${e}`;
    let table = this.#tables.get(key);
    if (!table) {
      // Kept: built inside a caller's scope (a training step), it must outlive that scope.
      table = keep(fromArray(this.table(e), [this.vocabSize, this.topK], "i32", logits.device));
      this.#tables.set(key, table);
    }
    const experts = noGrad(() => indexSelect(table, 0, ids.reshape(-1)));
    return constantRouting(experts, logits, dtype);
  }
}

const CONTROL_CAPACITY = `${DROPS_SLOTS}; the control's routing does not depend on the router`;

/** The registry entry `random`. */
export const randomRoutingDescriptor: EstimatorDescriptor<
  z.output<typeof randomRoutingOptionsSchema>,
  RandomRoutingEstimator,
  "random"
> = defineEstimator({
  name: "random",
  summary: "null control: K uniformly random experts per token, redrawn at every forward; gates 1/K, no gradient",
  options: randomRoutingOptionsSchema,
  create: (options) => new RandomRoutingEstimator(options),
  routing: "sparse",
  topK: topKOption("any"),
  needs: { routerInput: false, expertOutputs: false },
  nullControl: true,
  capacity: CONTROL_CAPACITY,
  objective: () => null,
  sweep: null,
  references: [],
});

/** The registry entry `hash`. */
export const hashRoutingDescriptor: EstimatorDescriptor<
  z.output<typeof hashRoutingOptionsSchema>,
  HashEstimator,
  "hash"
> = defineEstimator({
  name: "hash",
  summary: "null control (Hash Layers): experts a fixed seeded hash of the token id; gates 1/K, no gradient",
  options: hashRoutingOptionsSchema,
  create: (options) => new HashEstimator(options),
  routing: "sparse",
  topK: topKOption("any"),
  needs: { routerInput: false, expertOutputs: false, tokenIds: true },
  nullControl: true,
  capacity: CONTROL_CAPACITY,
  objective: () => null,
  sweep: null,
  references: [],
});
