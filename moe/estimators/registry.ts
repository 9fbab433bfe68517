/**
 * Name → factory map of every estimator. Options are validated by the zod schemas of
 * {@link ESTIMATOR_OPTION_SCHEMAS} (`./options.ts`): unknown fields and wrong values are one `OpError`
 * (op `"estimator"`) that names the estimator, the field and what is allowed.
 *
 * | name | estimator |
 * |---|---|
 * | `switch` | {@link SwitchEstimator} (`jitterEps`, `variant: "logits" \| "input"`) |
 * | `sparsemixer` | {@link SparseMixerEstimator} mid-point (v1) (`jitterEps`) |
 * | `sparsemixer-1st` | SparseMixer-1st (`jitterEps`) |
 * | `sparsemixer-inf` | SparseMixer-inf (`jitterEps`) |
 * | `sparsemixer-v2` | {@link SparseMixerV2Estimator} released (`topK`, `jitterEps`, `evalDraws`) |
 * | `sparsemixer-v2-heun` | v2* (`topK`, `jitterEps`) |
 * | `topk` | {@link TopKEstimator} GShard/Mixtral (`topK`, `renormalize`) |
 * | `straight-through` | {@link StraightThroughEstimator} dense (`tau`, `numExperts`) |
 * | `st-gumbel` | {@link StGumbelEstimator} dense (`tau`, `numExperts`) |
 * | `reinmax` | {@link ReinMaxEstimator} dense (`tau` ≥ 1, `numExperts`) |
 *
 * The schemas are re-exported here for experiment configs.
 *
 * @module
 */
import { OpError } from "../../core/errors.ts";
import type { Estimator } from "./estimator.ts";
import { SwitchEstimator } from "./switch.ts";
import { SparseMixerEstimator } from "./sparsemixer.ts";
import { SparseMixerV2Estimator } from "./sparsemixer_v2.ts";
import { TopKEstimator } from "./topk.ts";
import { type EstimatorName, parseEstimatorOptions } from "./options.ts";
import { ReinMaxEstimator, StGumbelEstimator, StraightThroughEstimator } from "./straight_through.ts";

/** A factory: validated options → estimator. */
export type EstimatorFactory = (options?: Record<string, unknown>) => Estimator;

/** The estimators by registry name. */
export const ESTIMATORS: Readonly<Record<string, EstimatorFactory>> = Object.freeze(
  {
    "switch": (o) => new SwitchEstimator(parseEstimatorOptions("switch", o)),
    "sparsemixer": (o) => new SparseMixerEstimator({ ...parseEstimatorOptions("sparsemixer", o), variant: "midpoint" }),
    "sparsemixer-1st": (o) =>
      new SparseMixerEstimator({ ...parseEstimatorOptions("sparsemixer-1st", o), variant: "first" }),
    "sparsemixer-inf": (o) =>
      new SparseMixerEstimator({ ...parseEstimatorOptions("sparsemixer-inf", o), variant: "inf" }),
    "sparsemixer-v2": (o) =>
      new SparseMixerV2Estimator({ ...parseEstimatorOptions("sparsemixer-v2", o), variant: "released" }),
    "sparsemixer-v2-heun": (o) =>
      new SparseMixerV2Estimator({ ...parseEstimatorOptions("sparsemixer-v2-heun", o), variant: "heun" }),
    "topk": (o) => new TopKEstimator(parseEstimatorOptions("topk", o)),
    "straight-through": (o) => new StraightThroughEstimator(parseEstimatorOptions("straight-through", o)),
    "st-gumbel": (o) => new StGumbelEstimator(parseEstimatorOptions("st-gumbel", o)),
    "reinmax": (o) => new ReinMaxEstimator(parseEstimatorOptions("reinmax", o)),
  } satisfies Record<EstimatorName, EstimatorFactory>,
);

/** The registered names. */
export const ESTIMATOR_NAMES: readonly string[] = Object.freeze(Object.keys(ESTIMATORS));

export {
  ESTIMATOR_OPTION_SCHEMAS,
  type EstimatorName,
  type EstimatorOptionSchemas,
  estimatorOptionsError,
  type EstimatorOptionsOf,
  parseEstimatorOptions,
  RENAMED_ESTIMATOR_OPTIONS,
} from "./options.ts";

/** Builds the estimator `name` with `options` (validated); an unknown name lists the known ones. */
export function createEstimator(name: string, options?: Record<string, unknown>): Estimator {
  const factory = Object.hasOwn(ESTIMATORS, name) ? ESTIMATORS[name] : undefined;
  if (!factory) {
    throw new OpError("estimator", `unknown estimator "${name}" (known: ${ESTIMATOR_NAMES.join(", ")})`);
  }
  return factory(options);
}
