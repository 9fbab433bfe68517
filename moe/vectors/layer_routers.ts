/**
 * The routers a `layer_*` reference vector may name, keyed by `params.router_object` (the reference object of
 * `vectors/README.md`'s table), and how each one becomes a moegrad estimator: which registry estimator, with
 * which options read from `params.top_k`, `params.jitter_eps`, `params.tau`, `params.renormalize`, which
 * `top_k` it supports, and how its multiplier is laid out in the file. A replay reads these fields, never the
 * file's name, so any estimator of `docs/ESTIMATORS.md` can appear inside a layer case.
 *
 * The dense estimators (ReinMax, Straight-Through, ST-Gumbel-Softmax) output a one-hot-valued row over all E
 * experts. With `top_k = E` the layer runs every expert and multiplies each by its entry (the dense layer);
 * with `top_k = 1` it runs only the sampled expert `D` with multiplier `one_hot[D]` (the sparse dispatch
 * `y = Σ_k mult_k h_k` of the README with K = 1), so only that entry's upstream gradient reaches the router.
 *
 * @module
 */
import type { Tensor } from "../../core/tensor.ts";
import { noGrad } from "../../core/autograd.ts";
import type { Estimator, RouteOptions, Routing } from "../estimators/estimator.ts";
import { createEstimator } from "../estimators/registry.ts";

/** The router arguments of a layer case, read from its `params`. */
export interface LayerRouterParams {
  /** E (`params.num_experts`). */
  numExperts: number;
  /** K (`params.top_k`). */
  topK: number;
  /** `params.jitter_eps`, or undefined when absent or null (the reference default then applies). */
  jitterEps?: number;
  /** `params.tau`, or undefined (default 1). */
  tau?: number;
  /** `params.renormalize`, or undefined (default true). */
  renormalize?: boolean;
}

/** How one reference router is replayed. */
export interface LayerRouter {
  /** The `params.router_object` values that name it. */
  readonly objects: readonly string[];
  /** The `top_k` values it supports, in words (for the error message). */
  readonly topKAllowed: string;
  /** Whether it supports `topK` with E experts. */
  supports(topK: number, numExperts: number): boolean;
  /** The estimator for these arguments (`supports` already checked). */
  estimator(p: LayerRouterParams): Estimator;
  /**
   * `"gates"`: the multiplier is the routing's gates [N, K]; `"omega"`: the SparseMixer v1 family's
   * `gate ⊗ ω` [N, d] with the layer's learnable output scale ω (ones).
   */
  readonly multiplier: "gates" | "omega";
  /** Looser tolerance than the dtype's, when the reference computes in lower precision (at least this). */
  readonly tol?: { atol: number; rtol: number };
}

/**
 * A dense estimator seen as top-1: routes to the sampled expert `D = argmax(one-hot output)` only, with
 * multiplier `one_hot[D]` (value 1; gradient the estimator's, for an upstream gradient on entry D alone).
 */
export class SampledExpert implements Estimator {
  /** The dense estimator's name. */
  readonly name: string;
  /** One expert per token. */
  readonly topK = 1;
  /** Sparse: only D runs. */
  readonly dense = false;
  /** Wraps the dense estimator `inner`. */
  constructor(readonly inner: Estimator) {
    this.name = inner.name;
  }
  /** See {@link Estimator.route}. */
  route(logits: Tensor, options: RouteOptions): Routing {
    const r = this.inner.route(logits, options);
    const d = noGrad(() => r.gates.detach().argmax(-1, true));
    return { ...r, experts: d, gates: r.gates.gather(1, d) };
  }
}

const oneOnly = { topKAllowed: "1", supports: (k: number) => k === 1 };

function dense(objects: string[], name: string, tol?: { atol: number; rtol: number }): LayerRouter {
  return {
    objects,
    topKAllowed: "1 (the sampled expert) or num_experts (every expert)",
    supports: (k, e) => k === 1 || k === e,
    estimator: (p) => {
      const est = createEstimator(name, { tau: p.tau ?? 1, numExperts: p.numExperts });
      return p.topK === 1 ? new SampledExpert(est) : est;
    },
    multiplier: "gates",
    tol,
  };
}

function sparseMixerV1(object: string, name: string): LayerRouter {
  return {
    objects: [object],
    ...oneOnly,
    estimator: (p) => createEstimator(name, { jitterEps: p.jitterEps ?? 0.1 }),
    multiplier: "omega",
  };
}

/** Every router a layer case may name (vectors/README.md's reference objects, plus the top-k formula). */
export const LAYER_ROUTERS: readonly LayerRouter[] = Object.freeze([
  {
    objects: ["SwitchGate"],
    ...oneOnly,
    estimator: (p) => createEstimator("switch", { jitterEps: p.jitterEps ?? 0.1 }),
    multiplier: "gates",
  },
  sparseMixerV1("SparseMixer", "sparsemixer"),
  sparseMixerV1("SparseMixerFirst", "sparsemixer-1st"),
  sparseMixerV1("SparseMixerInf", "sparsemixer-inf"),
  {
    // The repo function draws its (unused) eval numbers too, so a logged eval run consumes them.
    objects: ["sparsemixerv2_routing"],
    topKAllowed: "1 or 2",
    supports: (k) => k === 1 || k === 2,
    estimator: (p) =>
      createEstimator("sparsemixer-v2", { topK: p.topK, jitterEps: p.jitterEps ?? 0.01, evalDraws: "consume" }),
    multiplier: "gates",
  },
  {
    // transformers' PhiMoE: top-2 hard-coded, identical training path, no draws in eval.
    objects: ["PhimoeMultiplier", "sparsemixer"],
    topKAllowed: "2",
    supports: (k) => k === 2,
    estimator: (p) => createEstimator("sparsemixer-v2", { topK: 2, jitterEps: p.jitterEps ?? 0.01, evalDraws: "none" }),
    multiplier: "gates",
  },
  dense(["reinmax"], "reinmax"),
  // The reference `st()` computes in float32 (vectors/README.md quirk 5).
  dense(["st"], "straight-through", { atol: 1e-6, rtol: 1e-6 }),
  dense(["gumbel_softmax", "F.gumbel_softmax", "torch.nn.functional.gumbel_softmax"], "st-gumbel"),
  {
    // The formula-only Mixtral/GShard top-k softmax (no reference repository).
    objects: ["topk", "topk_softmax", "MixtralSparseMoeBlock"],
    topKAllowed: "1 to num_experts",
    supports: (k, e) => k >= 1 && k <= e,
    estimator: (p) => createEstimator("topk", { topK: p.topK, renormalize: p.renormalize ?? true }),
    multiplier: "gates",
  },
]);

/** Every accepted `params.router_object` value. */
export const LAYER_ROUTER_OBJECTS: readonly string[] = Object.freeze(LAYER_ROUTERS.flatMap((r) => r.objects));

/** The router named `object`, or undefined. */
export function layerRouter(object: string): LayerRouter | undefined {
  return LAYER_ROUTERS.find((r) => r.objects.includes(object));
}
