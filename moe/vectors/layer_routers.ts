/**
 * The routers a `layer_*` reference vector may name, keyed by `params.router_object` (the reference object of
 * `vectors/README.md`'s table), and how each one becomes a moegrad estimator. Each registry descriptor lists
 * the reference routers it replays (`EstimatorDescriptor.references`: which options it reads from
 * `params.top_k`, `params.jitter_eps`, `params.tau`, `params.renormalize`, which `top_k` it supports, and how
 * its multiplier is laid out in the file); this module only turns them into replays. A replay reads these fields, never the
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
import { createEstimator, estimatorDescriptors } from "../estimators/registry.ts";
import type { EstimatorDescriptor, VectorReference, VectorRouterParams } from "../estimators/descriptor.ts";

/** The router arguments of a layer case, read from its `params`. */
export type LayerRouterParams = VectorRouterParams;

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
  /** See {@link VectorReference.multiplier}. */
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

/** A descriptor's reference router as a replay: a dense estimator at `top_k = 1` runs its sampled expert only. */
function layerRouterOf(descriptor: EstimatorDescriptor, ref: VectorReference): LayerRouter {
  return {
    objects: ref.objects,
    topKAllowed: ref.topKWords,
    supports: (k, e) => ref.supports(k, e),
    estimator: (p) => {
      const est = createEstimator(descriptor.name, ref.options(p));
      return descriptor.routing === "dense" && p.topK === 1 ? new SampledExpert(est) : est;
    },
    multiplier: ref.multiplier,
    tol: ref.tol,
  };
}

/** Every router a layer case may name: the reference routers of every registered estimator. */
export function layerRouters(): LayerRouter[] {
  return estimatorDescriptors().flatMap((d) => d.references.map((ref) => layerRouterOf(d, ref)));
}

/** Every accepted `params.router_object` value. */
export function layerRouterObjects(): string[] {
  return layerRouters().flatMap((r) => r.objects);
}

/** The router named `object`, or undefined. */
export function layerRouter(object: string): LayerRouter | undefined {
  return layerRouters().find((r) => r.objects.includes(object));
}
