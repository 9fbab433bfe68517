/**
 * A toy estimator defined outside the library, in one file: deterministic top-1 at the argmax of the softmax,
 * gate = its probability, ordinary autograd (GShard top-1 without jitter). `toy_estimator_test.ts` registers
 * it with one line and runs it through the MoE layer, the vectors CLI and the exact-gradient harness.
 */
import { noGrad, type Tensor } from "../../mod.ts";
import {
  defineEstimator,
  DROPS_SLOTS,
  type Estimator,
  type EstimatorDescriptor,
  LOGITS_ONLY,
  NO_OPTIONS,
  type RouteOptions,
  type Routing,
  TOP1,
} from "../../moe/mod.ts";

/** Top-1 at the argmax, gate = softmax probability. */
export class ToyArgmaxEstimator implements Estimator {
  /** Registry name. */
  readonly name = "toy-argmax";
  /** Top-1. */
  readonly topK = 1;
  /** Sparse. */
  readonly dense = false;
  /** See {@link Estimator.route}. */
  route(logits: Tensor, _options: RouteOptions): Routing {
    const p = logits.softmax(-1);
    const experts = noGrad(() => p.detach().argmax(-1, true));
    return { experts, gates: p.gather(1, experts), probs: p };
  }
}

/** Its registry entry; it replays layer cases naming the reference object `ToyArgmaxGate`. */
export const toyDescriptor: EstimatorDescriptor<Record<never, never>, ToyArgmaxEstimator, "toy-argmax"> =
  defineEstimator({
    name: "toy-argmax",
    summary: "toy: top-1 at the argmax, gate = its probability",
    options: NO_OPTIONS,
    create: () => new ToyArgmaxEstimator(),
    routing: "sparse",
    topK: TOP1,
    needs: LOGITS_ONLY,
    capacity: DROPS_SLOTS,
    objective: () => ({ kind: "argmax" }),
    sweep: { param: "none", options: () => ({}) },
    references: [{
      objects: ["ToyArgmaxGate"],
      topKWords: "1",
      supports: (k) => k === 1,
      options: () => ({}),
      multiplier: "gates",
    }],
  });
