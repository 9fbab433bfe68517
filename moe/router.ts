/**
 * The router of a Mixture-of-Experts layer: a `Linear(d, E)` (weight `[d, E]`, optional bias) that owns the
 * routing estimator and the router z-loss.
 *
 * `route(x, { training, draws })` computes the logits `z = x·W (+ b)` — of the input as the estimator transforms
 * it, when it acts on the router input (`Estimator.routerInput`: the original Switch Transformer's jitter,
 * `variant: "input"`, in training only) — and lets the estimator pick the
 * experts and gates (`Estimator.route`). Because `Router` is a `Linear`, a layer that registers it as the child
 * `"router"` saves its weights as `router.weight` and `router.bias`.
 *
 * @example
 * ```ts
 * import { createEstimator, Generator, GeneratorDraws, randn, Router } from "@moegrad/moegrad";
 * const router = new Router(8, 4, { estimator: createEstimator("topk", { topK: 2 }), zLossCoef: 0.001 });
 * const { logits, routing } = router.route(randn([5, 8]), {
 *   training: true,
 *   draws: new GeneratorDraws(new Generator(0)),
 * });
 * router.zLoss(logits)!.backward();
 * console.log(logits.shape, routing.experts.shape, router.weight.grad!.shape); // [5, 4] [5, 2] [8, 4]
 * ```
 *
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import { Linear } from "../nn/layers/linear.ts";
import type { InitOptions } from "../nn/init.ts";
import type { Estimator, RouteOptions, Routing } from "./estimators/estimator.ts";
import { routerZLoss } from "./aux_losses.ts";

/** Options of {@link Router}. */
export interface RouterOptions extends InitOptions {
  /** The routing estimator. */
  estimator: Estimator;
  /** Add a bias to the logits (default false). */
  bias?: boolean;
  /** Coefficient of the router z-loss returned by {@link Router.zLoss} (default 0: none). */
  zLossCoef?: number;
}

/** The logits and the estimator's routing of a set of tokens. */
export interface RouterOutput {
  /** Router logits [N, E]. */
  logits: Tensor;
  /** The estimator's routing of those logits. */
  routing: Routing;
}

/** A `Linear(d, E)` router with its estimator, input jitter and z-loss (see the module docs). */
export class Router extends Linear {
  /** The routing estimator. */
  readonly estimator: Estimator;
  /** The z-loss coefficient (0: no z-loss). */
  readonly zLossCoef: number;

  /** Draws the weight `[dim, numExperts]` (then the bias, when asked for) from `options.generator`. */
  constructor(dim: number, numExperts: number, options: RouterOptions) {
    const { estimator, bias, zLossCoef, ...init } = options;
    super(dim, numExperts, { ...init, bias: bias ?? false });
    this.estimator = estimator;
    this.zLossCoef = zLossCoef ?? 0;
  }

  /** Logits of tokens `x` [N, d] and their routing (`training` decides jitter and sampling). */
  route(x: Tensor, options: RouteOptions): RouterOutput {
    const { training, draws } = options;
    const est = this.estimator;
    // An estimator that acts on the router input (the original Switch Transformer's jitter) says so.
    const input = est.routerInput ? est.routerInput(x, { training, draws }) : x;
    const logits = this.forward(input);
    return { logits, routing: est.route(logits, options) };
  }

  /** The z-loss of `logits`, `zLossCoef · routerZLoss(logits)`, or null when `zLossCoef` is 0. */
  zLoss(logits: Tensor): Tensor | null {
    return this.zLossCoef === 0 ? null : routerZLoss(logits).mul(this.zLossCoef);
  }
}
