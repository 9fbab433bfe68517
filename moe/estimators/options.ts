/**
 * Zod schemas of every estimator's registry options, one per registry name, and the formatter that turns a
 * failed parse into one {@link OpError} (op `"estimator"`) naming the estimator, the field and what is allowed:
 *
 * - `"sparsemixer" option "jitterEps" must be a finite number ≥ 0, got -1`
 * - `"sparsemixer-v2" option "topK" must be one of 1, 2, got 3`
 * - `"topk" has no option "kk" (allowed: topK, renormalize)`
 * - `"topk" option "k" was renamed to "topK"` (a former name, see {@link RENAMED_ESTIMATOR_OPTIONS})
 * - `options of "topk" must be an object, got 3`
 *
 * Every schema is `.strict()` (unknown fields are errors), documents each field with `.describe()` and fills in
 * the estimator's default, so {@link ESTIMATOR_OPTION_SCHEMAS} can be reused by experiment configs (for
 * instance with `z.toJSONSchema`). The formatter itself, {@link describeOptionIssues}, also words the errors of
 * `MoELayer`'s options (`moe/layer_options.ts`).
 *
 * @module
 */
import { z } from "../../deps.ts";
import { OpError } from "../../core/errors.ts";
import type { SwitchOptions } from "./switch.ts";
import type { SparseMixerOptions } from "./sparsemixer.ts";
import type { SparseMixerV2Options } from "./sparsemixer_v2.ts";
import type { TopKOptions } from "./topk.ts";
import type { StGumbelOptions, TemperatureOptions } from "./straight_through.ts";

/** What a field allows, in words ("a finite number ≥ 0"); read by the formatter. */
const ALLOWED = z.registry<{ allowed: string }>();

/**
 * Registers `schema` with the words of what it allows ("a finite number ≥ 0") and returns it; the formatter
 * ({@link describeOptionIssues}) says them when a value is rejected.
 */
export function allowing<T extends z.ZodType>(schema: T, allowed: string): T {
  ALLOWED.add(schema, { allowed });
  return schema;
}

/** A finite number ≥ `min` (default `def`). */
const atLeast = (min: number, def: number, description: string) =>
  allowing(z.number().min(min).default(def).describe(description), `a finite number ≥ ${min}`);

/** A finite number > 0 (default `def`). */
const positive = (def: number, description: string) =>
  allowing(z.number().positive().default(def).describe(description), "a finite number > 0");

/** An optional integer ≥ 1. */
const optionalPositiveInt = (description: string) =>
  allowing(z.int().min(1).optional().describe(description), "an integer ≥ 1");

/** One of `values` (default `def`). */
const oneOf = <const V extends readonly [string | number, ...(string | number)[]]>(
  values: V,
  def: V[number],
  description: string,
) =>
  allowing(
    z.literal(values).default(def as never).describe(description),
    `one of ${values.map((v) => JSON.stringify(v)).join(", ")}`,
  );

const JITTER_V1 = "Jitter / mask half-width ε (≥ 0; default 0.1, the SparseMixer repo's value).";
const JITTER_V2 = "Mask width ε (≥ 0; default 0.01, transformers' `router_jitter_noise`).";
const TOPK_V2 = "Experts per token (1 or 2; default 2).";
const NUM_EXPERTS = "Number of experts E, reported as `topK` (dense; optional, else known at routing).";

/** The options of `SwitchEstimator` (and of the registry name `switch`). */
export const switchOptionsSchema = z.strictObject({
  /** Jitter half-width ε (≥ 0; default 0.1, the SparseMixer repo's value). */
  jitterEps: atLeast(0, 0.1, JITTER_V1),
  /** Where the jitter goes: `"logits"` (SparseMixer repo, default) or `"input"` (original Switch). */
  variant: oneOf(
    ["logits", "input"],
    "logits",
    'Where the jitter goes: "logits" (SparseMixer repo, default) or "input" (the router input, original Switch).',
  ),
}).describe("Options of the `switch` estimator (SwitchEstimator).");

/** The options of `SparseMixerEstimator` (the registry names fix `variant`). */
export const sparseMixerOptionsSchema = z.strictObject({
  /** Mask width ε (≥ 0; default 0.1). */
  jitterEps: atLeast(0, 0.1, "Mask width ε (≥ 0; default 0.1)."),
  /** `"midpoint"` = v1 (default), `"first"` = SparseMixer-1st (Euler), `"inf"` = SparseMixer-inf. */
  variant: oneOf(
    ["midpoint", "first", "inf"],
    "midpoint",
    '"midpoint" = v1 (default), "first" = SparseMixer-1st (Euler), "inf" = SparseMixer-inf.',
  ),
}).describe("Options of SparseMixerEstimator (v1, -1st, -inf).");

const sparseMixerSchema = (name: string, what: string) =>
  sparseMixerOptionsSchema.pick({ jitterEps: true }).describe(`Options of the \`${name}\` estimator (${what}).`);

/** The options of `SparseMixerV2Estimator` (the registry names fix `variant`). */
export const sparseMixerV2OptionsSchema = z.strictObject({
  /** Experts per token (1 or 2; default 2). */
  topK: oneOf([1, 2], 2, TOPK_V2),
  /** Mask width ε (≥ 0; default 0.01, transformers' `router_jitter_noise`). */
  jitterEps: atLeast(0, 0.01, JITTER_V2),
  /** `"released"` (GRIN v2 as coded, default) or `"heun"` (v2*, GRIN App. A). */
  variant: oneOf(
    ["released", "heun"],
    "released",
    '"released" (GRIN v2 as coded, default) or "heun" (v2*, GRIN App. A).',
  ),
  /** Whether eval consumes the repo's unused draws (released variant only): `"auto"` (default), `"consume"`, `"none"`. */
  evalDraws: oneOf(
    ["auto", "consume", "none"],
    "auto",
    'Whether eval consumes the released code\'s unused draws: "auto" (default), "consume" or "none".',
  ),
}).describe("Options of SparseMixerV2Estimator (released GRIN v2, or v2*).");

const sparseMixerV2Schema = sparseMixerV2OptionsSchema.omit({ variant: true }).describe(
  "Options of the `sparsemixer-v2` estimator (SparseMixerV2Estimator, released GRIN v2).",
);

const sparseMixerV2HeunSchema = sparseMixerV2OptionsSchema.pick({ topK: true, jitterEps: true }).describe(
  "Options of the `sparsemixer-v2-heun` estimator (SparseMixerV2Estimator, v2* of GRIN App. A).",
);

/** The options of `TopKEstimator` (and of the registry name `topk`). */
export const topKOptionsSchema = z.strictObject({
  /** Experts per token (integer ≥ 1; default 1); named `topK` like every estimator's (formerly `k`, now rejected). */
  topK: allowing(
    z.int().min(1).default(1).describe("Experts per token (integer ≥ 1; default 1)."),
    "an integer ≥ 1",
  ),
  /** Divide the K selected probabilities by their sum (Mixtral; default true). */
  renormalize: allowing(
    z.boolean().default(true).describe("Divide the K selected probabilities by their sum (Mixtral; default true)."),
    "true or false",
  ),
}).describe("Options of the `topk` estimator (TopKEstimator, GShard/Mixtral top-K).");

const denseSchema = <T extends ReturnType<typeof atLeast>>(name: string, what: string, tau: T) =>
  z.strictObject({
    /** Temperature τ of the backward softmax (default 1). */
    tau,
    /** Number of experts, reported as `topK` (optional). */
    numExperts: optionalPositiveInt(NUM_EXPERTS),
  }).describe(`Options of the \`${name}\` estimator (${what}).`);

const TAU = "Temperature τ of the backward softmax (> 0; default 1).";

/** The options of `StraightThroughEstimator` (and of the registry name `straight-through`). */
export const straightThroughOptionsSchema = denseSchema(
  "straight-through",
  "StraightThroughEstimator, dense",
  positive(1, TAU),
);

/** The options of `StGumbelEstimator` (and of the registry name `st-gumbel`). */
export const stGumbelOptionsSchema = denseSchema("st-gumbel", "StGumbelEstimator, dense", positive(1, TAU));

/** The options of `ReinMaxEstimator` (and of the registry name `reinmax`). */
export const reinMaxOptionsSchema = denseSchema(
  "reinmax",
  "ReinMaxEstimator, dense",
  atLeast(1, 1, "Temperature τ (≥ 1; default 1; use st-gumbel for τ < 1)."),
);

/** Registry options of `sparsemixer`, `sparsemixer-1st` and `sparsemixer-inf` (the variant comes from the name). */
export type SparseMixerRegistryOptions = z.input<typeof SCHEMAS["sparsemixer"]>;
/** Registry options of `sparsemixer-v2` (the variant comes from the name). */
export type SparseMixerV2RegistryOptions = z.input<typeof SCHEMAS["sparsemixer-v2"]>;
/** Registry options of `sparsemixer-v2-heun` (the variant comes from the name). */
export type SparseMixerV2HeunRegistryOptions = z.input<typeof SCHEMAS["sparsemixer-v2-heun"]>;
/** Registry options of the dense estimators `straight-through` and `reinmax`. */
export type DenseRegistryOptions = z.input<typeof straightThroughOptionsSchema>;

// The constructors' option interfaces are plain TypeScript (the library's public API exposes no zod types), so
// they are checked here, at compile time, to be exactly what their schemas accept: a field added to one and not
// the other fails `deno check`. (`topK` of TopKEstimator and `tau` of StGumbelEstimator are required by the
// constructors; their schema defaults apply to the registry.)
/** True when `A` and `B` have exactly the same fields with the same types (the option interfaces' compile-time check). */
export type Same<A, B> = [A, keyof A] extends [B, keyof B] ? ([B, keyof B] extends [A, keyof A] ? true : false) : false;
const _optionInterfacesMatchSchemas: [
  Same<SwitchOptions, z.input<typeof switchOptionsSchema>>,
  Same<SparseMixerOptions, z.input<typeof sparseMixerOptionsSchema>>,
  Same<SparseMixerV2Options, z.input<typeof sparseMixerV2OptionsSchema>>,
  Same<TopKOptions, z.input<typeof topKOptionsSchema> & { topK: number }>,
  Same<TemperatureOptions & { numExperts?: number }, z.input<typeof straightThroughOptionsSchema>>,
  Same<TemperatureOptions & { numExperts?: number }, z.input<typeof reinMaxOptionsSchema>>,
  Same<StGumbelOptions, z.input<typeof stGumbelOptionsSchema> & { tau: number }>,
] = [true, true, true, true, true, true, true];
void _optionInterfacesMatchSchemas;

/**
 * The defaults of an options schema (`schema.parse({})`, frozen): what a constructor fills in for a field
 * given as `undefined` or not at all, so that each default is written once, in the schema.
 */
export function schemaDefaults<S extends z.ZodObject>(schema: S): Readonly<z.output<S>> {
  return Object.freeze(schema.parse({}));
}

const SCHEMAS = {
  /** `switch`: `jitterEps` (≥ 0, default 0.1), `variant` (`"logits"` default, or `"input"`). */
  "switch": switchOptionsSchema,
  /** `sparsemixer` (v1, mid-point): `jitterEps` (≥ 0, default 0.1). */
  "sparsemixer": sparseMixerSchema("sparsemixer", "SparseMixerEstimator, mid-point v1"),
  /** `sparsemixer-1st`: `jitterEps` (≥ 0, default 0.1). */
  "sparsemixer-1st": sparseMixerSchema("sparsemixer-1st", "SparseMixerEstimator, first-order"),
  /** `sparsemixer-inf`: `jitterEps` (≥ 0, default 0.1). */
  "sparsemixer-inf": sparseMixerSchema("sparsemixer-inf", "SparseMixerEstimator, SparseMixer-inf"),
  /** `sparsemixer-v2`: `topK` (1 or 2, default 2), `jitterEps` (≥ 0, default 0.01), `evalDraws` (default `"auto"`). */
  "sparsemixer-v2": sparseMixerV2Schema,
  /** `sparsemixer-v2-heun`: `topK` (1 or 2, default 2), `jitterEps` (≥ 0, default 0.01). */
  "sparsemixer-v2-heun": sparseMixerV2HeunSchema,
  /** `topk`: `topK` (integer ≥ 1, default 1), `renormalize` (default true). */
  "topk": topKOptionsSchema,
  /** `straight-through`: `tau` (> 0, default 1), `numExperts` (integer ≥ 1, optional). */
  "straight-through": straightThroughOptionsSchema,
  /** `st-gumbel`: `tau` (> 0, default 1), `numExperts` (integer ≥ 1, optional). */
  "st-gumbel": stGumbelOptionsSchema,
  /** `reinmax`: `tau` (≥ 1, default 1), `numExperts` (integer ≥ 1, optional). */
  "reinmax": reinMaxOptionsSchema,
} as const;

/**
 * The option schema of every registry name: input = what a config may give (all fields optional), output =
 * the parsed options with the estimator's defaults filled in.
 */
export type EstimatorOptionSchemas = typeof SCHEMAS;

/** A registry name that has an option schema. */
export type EstimatorName = keyof EstimatorOptionSchemas;

/** The option schema of every registry name (strict; defaults filled in; every field described). */
export const ESTIMATOR_OPTION_SCHEMAS: Readonly<EstimatorOptionSchemas> = Object.freeze(SCHEMAS);

/** The parsed (defaults filled in) options of the estimator `N`. */
export type EstimatorOptionsOf<N extends EstimatorName> = z.output<EstimatorOptionSchemas[N]>;

/**
 * Former option names, per estimator: former → current. Every estimator names its experts per token `topK`
 * (as `Estimator.topK`, `sparsemixer-v2` and the experiment configs do); `topk` formerly called it `k`.
 * A former name is rejected with a message that names the current one, never silently mapped.
 */
export const RENAMED_ESTIMATOR_OPTIONS: Readonly<Record<string, Readonly<Record<string, string>>>> = Object.freeze({
  "topk": Object.freeze({ k: "topK" }),
});

/** Shows a rejected value the way messages do (`-1`, `"x"`, `NaN`, `[1,2]`). */
function show(value: unknown): string {
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  if (typeof value === "function" || typeof value === "symbol") return String(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Reads `path` out of `input` (`undefined` where it is missing). */
function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input;
  for (const key of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/** Who owns a set of options, in the words of {@link describeOptionIssues}' messages. */
export interface OptionsSubject {
  /** The schema the input failed (its field names are listed for unknown keys; `undefined`: none known). */
  schema?: z.ZodObject;
  /**
   * The owner as messages name it (`"topk"`): a field then reads `"topk" option "jitterEps"`. Without it a field
   * reads as its dotted path (`defaultMoe.beta`), for messages that already start with their owner.
   */
  owner?: string;
  /** Former top-level names: former → current (rejected with a message naming the current one). */
  renamed?: Readonly<Record<string, string>>;
}

/** The schema an optional / default / nullable wrapper wraps (undefined for any other schema). */
function inner(schema: z.ZodType): z.ZodType | undefined {
  const def = schema._zod.def as { innerType?: z.ZodType };
  return def.innerType;
}

/** The schema of the field at `path` in `schema` (through optional and default wrappers), if known. */
function schemaAt(schema: z.ZodType | undefined, path: readonly PropertyKey[]): z.ZodType | undefined {
  let s = schema;
  for (const key of path) {
    while (s && !(s instanceof z.ZodObject)) s = inner(s);
    if (!s || typeof key !== "string" || !Object.hasOwn(s.shape, key)) return undefined;
    s = s.shape[key];
  }
  return s;
}

/** The registered words of what `schema` (or a schema it wraps) allows. */
function allowedBy(schema: z.ZodType | undefined): string | undefined {
  for (let s = schema; s; s = inner(s)) {
    const allowed = ALLOWED.get(s)?.allowed;
    if (allowed) return allowed;
  }
  return undefined;
}

/** The field names of the object schema at `path` (empty when unknown). */
function keysAt(schema: z.ZodType | undefined, path: readonly PropertyKey[]): string[] {
  let s = schemaAt(schema, path);
  while (s && !(s instanceof z.ZodObject)) s = inner(s);
  return s ? Object.keys(s.shape) : [];
}

/** One issue in words. */
function describeIssue(subject: OptionsSubject, issue: z.core.$ZodIssue, input: unknown): string {
  const { schema, owner } = subject;
  const fieldName = (field: string) => owner ? `${owner} option "${field}"` : field;
  const path = issue.path.map(String).join(".");
  if (issue.code === "unrecognized_keys") {
    const renamed = issue.path.length === 0 ? subject.renamed ?? {} : {};
    const parts = issue.keys.filter((k) => Object.hasOwn(renamed, k)).map((k) =>
      `${owner ? `${owner} option` : "option"} "${k}" was renamed to "${renamed[k]}"`
    );
    const rest = issue.keys.filter((k) => !Object.hasOwn(renamed, k));
    if (rest.length > 0) {
      const unknown = rest.map((k) => `"${k}"`).join(", ");
      const allowed = `(allowed: ${keysAt(schema, issue.path).join(", ") || "none"})`;
      const noun = issue.path.length === 0 ? "option" : "field";
      const plural = rest.length === 1 ? noun : `${noun}s`;
      const whose = issue.path.length === 0 ? owner : fieldName(path);
      parts.push(whose ? `${whose} has no ${plural} ${unknown} ${allowed}` : `unknown ${plural} ${unknown} ${allowed}`);
    }
    return parts.join("; ");
  }
  if (issue.path.length === 0) {
    return `${owner ? `options of ${owner}` : "options"} must be an object, got ${show(input)}`;
  }
  // A custom check's message is its own words of what is allowed (e.g. a rule between two fields).
  const allowed = issue.code === "custom" ? issue.message : allowedBy(schemaAt(schema, issue.path));
  return `${fieldName(path)} must be ${allowed ?? issue.message}, got ${show(valueAt(input, issue.path))}`;
}

/**
 * The issues of a failed parse of `input` in words, joined by `"; "` (one line): unknown fields with the
 * allowed ones, former names with the current one, and each wrong value with what its field allows (the words
 * given to {@link allowing}) and the value given.
 */
export function describeOptionIssues(subject: OptionsSubject, error: z.ZodError, input: unknown): string {
  return error.issues.map((issue) => describeIssue(subject, issue, input)).join("; ");
}

/**
 * Turns the issues of a failed parse of `input` against the schema of `name` into ONE {@link OpError}
 * (op `"estimator"`): the issues in words, joined by `"; "`.
 */
export function estimatorOptionsError(name: string, error: z.ZodError, input: unknown): OpError {
  const schema: z.ZodObject | undefined = Object.hasOwn(SCHEMAS, name) ? SCHEMAS[name as EstimatorName] : undefined;
  const renamed = Object.hasOwn(RENAMED_ESTIMATOR_OPTIONS, name) ? RENAMED_ESTIMATOR_OPTIONS[name] : {};
  return new OpError("estimator", describeOptionIssues({ schema, owner: `"${name}"`, renamed }, error, input));
}

/**
 * Validates `options` for the estimator `name` and fills in its defaults (`undefined` = all defaults);
 * throws {@link estimatorOptionsError}'s error on unknown fields or wrong values.
 */
export function parseEstimatorOptions<N extends EstimatorName>(name: N, options?: unknown): EstimatorOptionsOf<N> {
  // TypeScript cannot narrow the map's union of schemas by a generic key, so the output is typed by `N` here.
  const schema: z.ZodType = ESTIMATOR_OPTION_SCHEMAS[name];
  const parsed = schema.safeParse(options === undefined ? {} : options);
  if (!parsed.success) throw estimatorOptionsError(name, parsed.error, options);
  return parsed.data as EstimatorOptionsOf<N>;
}
