/**
 * Zod schemas of the estimator classes' options (each registry descriptor takes its schema from here, or narrows
 * one of these with `pick` / `omit`), and the formatter that turns a failed parse into one {@link OpError}
 * (op `"estimator"`) naming the estimator, the field and what is allowed:
 *
 * - `"sparsemixer" option "jitterEps" must be a finite number ≥ 0, got -1`
 * - `"sparsemixer-v2" option "topK" must be one of 1, 2, got 3`
 * - `"topk" has no option "kk" (allowed: topK, renormalize)`
 * - `"topk" option "k" was renamed to "topK"` (a former name, listed by the descriptor's `renamedOptions`)
 * - `options of "topk" must be an object, got 3`
 *
 * Every schema is `.strict()` (unknown fields are errors), documents each field with `.describe()` and fills in
 * the estimator's default, so the schemas can be reused by experiment configs (for instance with
 * `z.toJSONSchema`). The formatter itself, {@link describeOptionIssues}, also words the errors of `MoELayer`'s
 * options (`moe/layer_options.ts`).
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

/** The options of `DefaultMoeEstimator` (and of the registry name `default-moe`). */
export const defaultMoeOptionsSchema = z.strictObject({
  /** Experts per token (integer ≥ 1; default 1). */
  topK: allowing(z.int().min(1).default(1).describe("Experts per token (integer ≥ 1; default 1)."), "an integer ≥ 1"),
  /** Renormalise the K selected probabilities (default false: Σ π over active + default terms stays 1). */
  renormalize: allowing(
    z.boolean().default(false).describe(
      "Divide the K selected probabilities by their sum (default false, so active and default terms sum π to 1).",
    ),
    "true or false",
  ),
  /** EMA factor β of the default vectors (in [0, 1); default 0.9, the paper's value for 8 experts). */
  beta: allowing(
    z.number().min(0).lt(1).default(0.9).describe(
      "EMA factor β of the default vectors (in [0, 1); default 0.9, the paper's value for 8 experts).",
    ),
    "a number in [0, 1)",
  ),
}).describe("Options of the `default-moe` estimator (DefaultMoeEstimator, Default MoE of Panda et al. 2025).");

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

/** The schema of one estimator's options, and its former option names (former → current). */
export interface OptionsSpec {
  /** The registry name (for messages). */
  readonly name: string;
  /** The options schema. */
  readonly schema: z.ZodObject;
  /** Former option names, rejected with a message naming the current one. */
  readonly renamed?: Readonly<Record<string, string>>;
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
 * Turns the issues of a failed parse of `input` against `spec`'s schema into ONE {@link OpError}
 * (op `"estimator"`): the issues in words, joined by `"; "`.
 */
export function estimatorOptionsError(spec: OptionsSpec, error: z.ZodError, input: unknown): OpError {
  const subject = { schema: spec.schema, owner: `"${spec.name}"`, renamed: spec.renamed };
  return new OpError("estimator", describeOptionIssues(subject, error, input));
}

/**
 * Validates `options` against `spec`'s schema and fills in its defaults (`undefined` = all defaults); throws
 * {@link estimatorOptionsError}'s error on unknown fields or wrong values.
 */
export function parseOptions<S extends z.ZodObject>(
  spec: OptionsSpec & { readonly schema: S },
  options?: unknown,
): z.output<S> {
  const parsed = spec.schema.safeParse(options === undefined ? {} : options);
  if (!parsed.success) throw estimatorOptionsError(spec, parsed.error, options);
  return parsed.data;
}
