/**
 * The estimator registry: registry name → {@link EstimatorDescriptor} (options schema, factory, and what the
 * layer, the exact-gradient harness, the estimator-bias grid and the vector replay need to know). Everything
 * outside the registry asks a descriptor instead of switching on a name.
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
 * | `default-moe` | {@link DefaultMoeEstimator} Default MoE (`topK`, `renormalize`, `beta`) |
 * | `densemixer` | {@link DenseMixerEstimator} DenseMixer: top-K forward, dense router gradient (`topK`, `renormalize`) |
 * | `expert-choice` | {@link ExpertChoiceEstimator} experts choose their top-C tokens (`topK`, `capacityFactor`, `evaluation`) |
 * | `sigmoid-topk` | {@link SigmoidTopKEstimator} DeepSeek-V3 sigmoid scores (`topK`, `renormalize`, `routeScale`) |
 * | `random` | null control: {@link RandomRoutingEstimator} (`topK`) |
 * | `hash` | null control: {@link HashEstimator} Hash Layers (`topK`, `seed`, `vocabSize`) |
 *
 * Options are validated by the descriptor's zod schema: unknown fields and wrong values are one `OpError`
 * (op `"estimator"`) that names the estimator, the field and what is allowed.
 *
 * @module
 */
import type { z } from "../../deps.ts";
import { OpError } from "../../core/errors.ts";
import type { Estimator } from "./estimator.ts";
import type { EstimatorDescriptor } from "./descriptor.ts";
import { parseOptions } from "./options.ts";
import { switchDescriptor } from "./switch.ts";
import { sparseMixerDescriptor, sparseMixerFirstDescriptor, sparseMixerInfDescriptor } from "./sparsemixer.ts";
import { sparseMixerV2Descriptor, sparseMixerV2HeunDescriptor } from "./sparsemixer_v2.ts";
import { topKDescriptor } from "./topk.ts";
import { reinMaxDescriptor, stGumbelDescriptor, straightThroughDescriptor } from "./straight_through.ts";
import { defaultMoeDescriptor } from "./default_moe.ts";
import { sigmoidTopKDescriptor } from "./sigmoid_topk.ts";
import { denseMixerDescriptor } from "./densemixer.ts";
import { expertChoiceDescriptor } from "./expert_choice.ts";
import { hashRoutingDescriptor, randomRoutingDescriptor } from "./null_controls.ts";

/** The built-in estimators, in report order: one line each. */
const BUILTIN_ESTIMATORS = [
  switchDescriptor,
  sparseMixerDescriptor,
  sparseMixerFirstDescriptor,
  sparseMixerInfDescriptor,
  sparseMixerV2Descriptor,
  sparseMixerV2HeunDescriptor,
  topKDescriptor,
  straightThroughDescriptor,
  stGumbelDescriptor,
  reinMaxDescriptor,
  defaultMoeDescriptor,
  sigmoidTopKDescriptor,
  denseMixerDescriptor,
  expertChoiceDescriptor,
  // Null controls (routing that ignores the router), after the learned routers.
  randomRoutingDescriptor,
  hashRoutingDescriptor,
] as const;

type Builtin = typeof BUILTIN_ESTIMATORS[number];

/** A built-in registry name. */
export type EstimatorName = Builtin["name"];

/** The option schema of every built-in registry name (all zod object schemas). */
export type EstimatorOptionSchemas = { readonly [N in EstimatorName]: z.ZodObject };

/** The parsed (defaults filled in) options of the built-in estimator `N`. */
export type EstimatorOptionsOf<N extends EstimatorName> = Parameters<Extract<Builtin, { name: N }>["create"]>[0];

/** The built-in registry names, in report order. */
export const ESTIMATOR_NAMES: readonly string[] = Object.freeze(BUILTIN_ESTIMATORS.map((d) => d.name));

/**
 * The option schema of every built-in registry name (strict; defaults filled in; every field described):
 * input = what a config may give, output = the parsed options.
 */
export const ESTIMATOR_OPTION_SCHEMAS: EstimatorOptionSchemas = Object.freeze(
  Object.fromEntries(BUILTIN_ESTIMATORS.map((d) => [d.name, d.options])),
) as EstimatorOptionSchemas;

const registry = new Map<string, EstimatorDescriptor>(
  BUILTIN_ESTIMATORS.map((d) => [d.name, d as unknown as EstimatorDescriptor]),
);

/**
 * Adds an estimator defined outside the library to the registry, so that `createEstimator`, `MoELayer`'s
 * `estimator: "name"`, the vector replay and the exact-gradient harness find it by name. A name already
 * registered is an error.
 *
 * @example
 * ```ts
 * import { defineEstimator, LOGITS_ONLY, NO_OPTIONS, registerEstimator, TOP1, TopKEstimator } from "@moegrad/moegrad";
 * registerEstimator(defineEstimator({
 *   name: "greedy",
 *   summary: "top-1 without renormalisation",
 *   options: NO_OPTIONS,
 *   create: () => new TopKEstimator({ topK: 1, renormalize: false }),
 *   routing: "sparse",
 *   topK: TOP1,
 *   needs: LOGITS_ONLY,
 *   capacity: "as topk",
 *   objective: () => ({ kind: "argmax" }),
 *   sweep: null,
 *   references: [],
 * }));
 * ```
 */
export function registerEstimator<O extends object, E extends Estimator>(
  descriptor: EstimatorDescriptor<O, E>,
): void {
  if (registry.has(descriptor.name)) {
    throw new OpError("estimator", `an estimator named "${descriptor.name}" is already registered`);
  }
  registry.set(descriptor.name, descriptor as unknown as EstimatorDescriptor);
}

/** Every registered descriptor (built-in first, in report order, then registered ones). */
export function estimatorDescriptors(): readonly EstimatorDescriptor[] {
  return [...registry.values()];
}

/** The descriptor registered as `name`; an unknown name is an error listing the known ones. */
export function estimatorDescriptor(name: string): EstimatorDescriptor {
  const descriptor = registry.get(name);
  if (!descriptor) {
    throw new OpError("estimator", `unknown estimator "${name}" (known: ${[...registry.keys()].join(", ")})`);
  }
  return descriptor;
}

/** The descriptor of a built estimator (looked up by its `name`), or undefined when it is not registered. */
export function descriptorOf(estimator: Estimator): EstimatorDescriptor | undefined {
  return registry.get(estimator.name);
}

/**
 * Validates `options` for the estimator `name` and fills in its defaults (`undefined` = all defaults); throws
 * one `OpError` naming the field on unknown fields or wrong values.
 */
export function parseEstimatorOptions<N extends EstimatorName>(name: N, options?: unknown): EstimatorOptionsOf<N>;
export function parseEstimatorOptions(name: string, options?: unknown): Record<string, unknown>;
export function parseEstimatorOptions(name: string, options?: unknown): Record<string, unknown> {
  return parseWith(estimatorDescriptor(name), options);
}

/** Parses `options` with the descriptor's schema (a zod object schema, see `OptionsSchema`). */
function parseWith<O extends object>(d: EstimatorDescriptor<O>, options: unknown): O {
  return parseOptions(
    { name: d.name, schema: d.options as unknown as z.ZodObject, renamed: d.renamedOptions },
    options,
  ) as O;
}

/** Builds the estimator `name` with `options` (validated); an unknown name lists the known ones. */
export function createEstimator(name: string, options?: Record<string, unknown>): Estimator {
  const d = estimatorDescriptor(name);
  return d.create(parseWith(d, options));
}
