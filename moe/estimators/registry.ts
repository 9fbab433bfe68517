/**
 * Name → factory map of every estimator, with hand-written option validation
 * (unknown fields and wrong values are errors that name the field and what is allowed).
 *
 * | name | estimator |
 * |---|---|
 * | `switch` | {@link SwitchEstimator} (`jitterEps`, `variant: "logits" \| "input"`) |
 * | `sparsemixer` | {@link SparseMixerEstimator} mid-point (v1) (`jitterEps`) |
 * | `sparsemixer-1st` | SparseMixer-1st (`jitterEps`) |
 * | `sparsemixer-inf` | SparseMixer-inf (`jitterEps`) |
 * | `sparsemixer-v2` | {@link SparseMixerV2Estimator} released (`topK`, `jitterEps`, `evalDraws`) |
 * | `sparsemixer-v2-heun` | v2* (`topK`, `jitterEps`) |
 * | `topk` | {@link TopKEstimator} GShard/Mixtral (`k`, `renormalize`) |
 * | `straight-through` | {@link StraightThroughEstimator} dense (`tau`, `numExperts`) |
 * | `st-gumbel` | {@link StGumbelEstimator} dense (`tau`, `numExperts`) |
 * | `reinmax` | {@link ReinMaxEstimator} dense (`tau` ≥ 1, `numExperts`) |
 *
 * @module
 */
import { OpError } from "../../core/errors.ts";
import type { Estimator } from "./estimator.ts";
import { SwitchEstimator } from "./switch.ts";
import { SparseMixerEstimator } from "./sparsemixer.ts";
import { SparseMixerV2Estimator } from "./sparsemixer_v2.ts";
import { TopKEstimator } from "./topk.ts";
import { ReinMaxEstimator, StGumbelEstimator, StraightThroughEstimator } from "./straight_through.ts";

/** A factory: validated options → estimator. */
export type EstimatorFactory = (options?: Record<string, unknown>) => Estimator;

type FieldCheck = (value: unknown) => string | null; // null = ok, else what is allowed

const positiveInt: FieldCheck = (v) => Number.isInteger(v) && (v as number) >= 1 ? null : "an integer ≥ 1";
const boolCheck: FieldCheck = (v) => typeof v === "boolean" ? null : "true or false";
const positive: FieldCheck = (v) => typeof v === "number" && Number.isFinite(v) && v > 0 ? null : "a finite number > 0";
const epsCheck: FieldCheck = (v) =>
  typeof v === "number" && Number.isFinite(v) && v >= 0 ? null : "a finite number ≥ 0";
const oneOf = (...allowed: readonly (string | number)[]): FieldCheck => (v) =>
  allowed.includes(v as string | number) ? null : `one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}`;

function validate(
  name: string,
  options: Record<string, unknown> | undefined,
  fields: Record<string, FieldCheck>,
): Record<string, unknown> {
  if (options === undefined) return {};
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new OpError("estimator", `options of "${name}" must be an object, got ${JSON.stringify(options)}`);
  }
  for (const [key, value] of Object.entries(options)) {
    const check = fields[key];
    if (!check) {
      const known = Object.keys(fields).join(", ") || "none";
      throw new OpError("estimator", `"${name}" has no option "${key}" (allowed: ${known})`);
    }
    if (value === undefined) continue;
    const problem = check(value);
    if (problem) {
      throw new OpError("estimator", `"${name}" option "${key}" must be ${problem}, got ${JSON.stringify(value)}`);
    }
  }
  return options;
}

/** The estimators by registry name. */
export const ESTIMATORS: Readonly<Record<string, EstimatorFactory>> = Object.freeze({
  "switch": (o) => {
    const v = validate("switch", o, { jitterEps: epsCheck, variant: oneOf("logits", "input") });
    return new SwitchEstimator(v as ConstructorParameters<typeof SwitchEstimator>[0]);
  },
  "sparsemixer": (o) => {
    const v = validate("sparsemixer", o, { jitterEps: epsCheck });
    return new SparseMixerEstimator({ jitterEps: v.jitterEps as number | undefined, variant: "midpoint" });
  },
  "sparsemixer-1st": (o) => {
    const v = validate("sparsemixer-1st", o, { jitterEps: epsCheck });
    return new SparseMixerEstimator({ jitterEps: v.jitterEps as number | undefined, variant: "first" });
  },
  "sparsemixer-inf": (o) => {
    const v = validate("sparsemixer-inf", o, { jitterEps: epsCheck });
    return new SparseMixerEstimator({ jitterEps: v.jitterEps as number | undefined, variant: "inf" });
  },
  "sparsemixer-v2": (o) => {
    const v = validate("sparsemixer-v2", o, {
      topK: oneOf(1, 2),
      jitterEps: epsCheck,
      evalDraws: oneOf("auto", "consume", "none"),
    });
    return new SparseMixerV2Estimator(
      { ...v, variant: "released" } as ConstructorParameters<
        typeof SparseMixerV2Estimator
      >[0],
    );
  },
  "sparsemixer-v2-heun": (o) => {
    const v = validate("sparsemixer-v2-heun", o, { topK: oneOf(1, 2), jitterEps: epsCheck });
    return new SparseMixerV2Estimator(
      { ...v, variant: "heun" } as ConstructorParameters<
        typeof SparseMixerV2Estimator
      >[0],
    );
  },
  "topk": (o) => {
    const v = validate("topk", o, { k: positiveInt, renormalize: boolCheck });
    return new TopKEstimator({ k: 1, ...v } as ConstructorParameters<typeof TopKEstimator>[0]);
  },
  "straight-through": (o) => {
    const v = validate("straight-through", o, { tau: positive, numExperts: positiveInt });
    return new StraightThroughEstimator(v as ConstructorParameters<typeof StraightThroughEstimator>[0]);
  },
  "st-gumbel": (o) => {
    const v = validate("st-gumbel", o, { tau: positive, numExperts: positiveInt });
    return new StGumbelEstimator({ tau: 1, ...v } as ConstructorParameters<typeof StGumbelEstimator>[0]);
  },
  "reinmax": (o) => {
    const v = validate("reinmax", o, { tau: positive, numExperts: positiveInt });
    return new ReinMaxEstimator(v as ConstructorParameters<typeof ReinMaxEstimator>[0]);
  },
});

/** The registered names. */
export const ESTIMATOR_NAMES: readonly string[] = Object.freeze(Object.keys(ESTIMATORS));

/** Builds the estimator `name` with `options` (validated); an unknown name lists the known ones. */
export function createEstimator(name: string, options?: Record<string, unknown>): Estimator {
  const factory = Object.hasOwn(ESTIMATORS, name) ? ESTIMATORS[name] : undefined;
  if (!factory) {
    throw new OpError("estimator", `unknown estimator "${name}" (known: ${ESTIMATOR_NAMES.join(", ")})`);
  }
  return factory(options);
}
