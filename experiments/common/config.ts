/**
 * Experiment configuration: a zod schema per experiment, named presets, and the command line that picks a preset
 * and overrides any field (`--preset quick --seeds 3 --model.dim=128 --estimators=switch,sparsemixer`).
 *
 * Every failure is one {@link ConfigError} whose message names the field path, what the field allows and the bad
 * value, so a typo on the command line is fixed from the message alone.
 *
 * @example
 * ```ts
 * import { z } from "../../deps.ts";
 * import { baseConfigShape, parseExperimentCli } from "./config.ts";
 * const def = {
 *   name: "demo",
 *   description: "A demo experiment.",
 *   schema: z.strictObject({ ...baseConfigShape, lr: z.number().positive().describe("Learning rate.") }),
 *   presets: { smoke: { seeds: 1, device: "cpu" as const, lr: 0.1 } },
 *   defaultPreset: "smoke",
 * };
 * const { config, cli } = parseExperimentCli(def, ["--lr=0.5", "--seeds", "2"]);
 * console.log(config.lr, config.seeds, cli.out); // 0.5 2 results/demo/smoke
 * ```
 *
 * @module
 */
import { z } from "../../deps.ts";
import { isPlainObject } from "../../core/guards.ts";
import { reportUserError, UserError, type UserErrorOptions } from "./errors.ts";

/** A bad preset, flag or config value; the message names the field path and what is allowed. */
export class ConfigError extends UserError {
  /** Creates the error with `message`. */
  constructor(message: string, options?: UserErrorOptions) {
    super(message, { hint: "run with --help for the presets and every field", ...options });
    this.name = "ConfigError";
  }
}

/** The fields every experiment config has; spread into an experiment's schema (`{ ...baseConfigShape, … }`). */
export const baseConfigShape = {
  seeds: z.int().min(1).describe("Number of seeds (independent repetitions, seeds 0 … N−1); integer ≥ 1."),
  device: z.enum(["auto", "cpu", "webgpu"]).describe(
    'Compute device: "auto" (WebGPU on a hardware adapter, else CPU), "cpu" or "webgpu".',
  ),
};

/** An experiment: its config schema, named presets and the preset used when `--preset` is not given. */
// deno-lint-ignore no-explicit-any
export interface ExperimentDefinition<S extends z.ZodObject<any>> {
  /** Short name, used in the default output folder `results/<name>/<preset>`. */
  name: string;
  /** One paragraph shown by `--help`. */
  description: string;
  /** The config schema; every field has `.describe("…")` and the schema spreads {@link baseConfigShape}. */
  schema: S;
  /** Complete configs by preset name (each must parse with `schema`). */
  presets: Record<string, z.input<S>>;
  /** The preset used without `--preset`. */
  defaultPreset: string;
  /** Whether the experiment runs in parallel and takes `--jobs N` (default false: `--jobs` is rejected). */
  parallelJobs?: boolean;
}

/** The command-line options that are not config fields. */
export interface CliOptions {
  /** The preset name. */
  preset: string;
  /** The output folder (default `results/<name>/<preset>`). */
  out: string;
  /** Continue a killed run from what is on disk. */
  resume: boolean;
  /** Replace the runs already in `out` (the old folder is moved aside, never deleted). */
  force: boolean;
  /** Parallel jobs, when the experiment supports them (`--jobs N`); undefined when not given. */
  jobs: number | undefined;
  /** `--help` was given: print {@link formatConfigHelp} and exit. */
  help: boolean;
}

// ---------------------------------------------------------------------------------------------------------------
// Schema introspection (zod 4 internals: `_zod.def`).

/** Any zod schema (what the introspection helpers accept). */
// deno-lint-ignore no-explicit-any
export type AnySchema = z.ZodType<any, any>;

// deno-lint-ignore no-explicit-any
function defOf(s: AnySchema): any {
  // deno-lint-ignore no-explicit-any
  return (s as any)._zod.def;
}

/** Strips optional/default/nullable/readonly/catch/pipe wrappers; returns the core schema. */
function unwrap(s: AnySchema): AnySchema {
  for (let i = 0; i < 32; i++) {
    const def = defOf(s);
    if (def.innerType) s = def.innerType;
    else if (def.type === "pipe" && def.in) s = def.in;
    else return s;
  }
  return s;
}

/** The first description found on `s` or any wrapper inside it. */
function descriptionOf(s: AnySchema): string | undefined {
  for (let i = 0; i < 32; i++) {
    if (s.description) return s.description;
    const def = defOf(s);
    if (def.innerType) s = def.innerType;
    else if (def.type === "pipe" && def.in) s = def.in;
    else return undefined;
  }
  return undefined;
}

/** A field of a config schema, by dotted path. */
interface FieldInfo {
  path: string;
  schema: AnySchema;
  core: AnySchema;
  isObject: boolean;
  isArray: boolean;
  isBoolean: boolean;
}

/** The `.default(…)` value of a schema or its wrappers (undefined when none). */
function defaultOf(s: AnySchema): unknown {
  for (let i = 0; i < 32; i++) {
    const def = defOf(s);
    if (def.type === "default" || def.type === "prefault") {
      return typeof def.defaultValue === "function" ? def.defaultValue() : def.defaultValue;
    }
    if (def.innerType) s = def.innerType;
    else return undefined;
  }
  return undefined;
}

/** Every field path of an object schema, objects and their leaves, depth first, in declaration order. */
function fieldsOf(schema: AnySchema, prefix = ""): FieldInfo[] {
  const out: FieldInfo[] = [];
  const core = unwrap(schema);
  const shape = defOf(core).shape as Record<string, AnySchema> | undefined;
  if (!shape) return out;
  for (const [key, child] of Object.entries(shape)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const c = unwrap(child);
    const type = defOf(c).type;
    out.push({
      path,
      schema: child,
      core: c,
      isObject: type === "object",
      isArray: type === "array" || type === "tuple",
      isBoolean: type === "boolean",
    });
    if (type === "object") out.push(...fieldsOf(c, path));
  }
  return out;
}

/** Words for what a schema allows ("an integer ≥ 1", "one of "a", "b""), for help and errors. */
export function describeAllowed(schema: AnySchema): string {
  const core = unwrap(schema);
  const def = defOf(core);
  switch (def.type) {
    case "enum":
      return `one of ${Object.values(def.entries).map((v) => JSON.stringify(v)).join(", ")}`;
    case "literal":
      return def.values.length === 1
        ? `exactly ${JSON.stringify(def.values[0])}`
        : `one of ${def.values.map((v: unknown) => JSON.stringify(v)).join(", ")}`;
    case "number": {
      const isInt = def.format === "safeint" || def.format === "int32" || def.format === "uint32";
      const parts: string[] = [];
      for (
        const check of (def.checks ?? []) as { _zod: { def: { check: string; value: number; inclusive: boolean } } }[]
      ) {
        const c = check._zod.def;
        if (c.check === "greater_than") parts.push(`${c.inclusive ? "≥" : ">"} ${c.value}`);
        else if (c.check === "less_than") parts.push(`${c.inclusive ? "≤" : "<"} ${c.value}`);
        else if (c.check === "multiple_of") parts.push(`a multiple of ${c.value}`);
      }
      const what = isInt ? "an integer" : "a finite number";
      return parts.length ? `${what} ${parts.join(" and ")}` : what;
    }
    case "boolean":
      return "true or false";
    case "string":
      return "a string";
    case "array":
      return `a list (comma-separated or JSON) of ${describeAllowed(def.element).replace(/^(an?|one of) /, "")}`;
    case "union":
      return (def.options as AnySchema[]).map(describeAllowed).join(", or ");
    case "object":
      return "an object";
    default:
      return def.type;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Values and paths.

function parseScalar(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** Parses a command-line value for `field`: JSON when it parses, a comma-separated list for arrays, else a string. */
function parseValue(raw: string, field: FieldInfo): unknown {
  // A string field takes the text as it is ("--name=3" is the string "3"); '"3"' still works.
  if (defOf(field.core).type === "string") {
    const v = parseScalar(raw);
    return typeof v === "string" ? v : raw;
  }
  const v = parseScalar(raw);
  if (field.isArray && !Array.isArray(v)) {
    return raw === "" ? [] : raw.split(",").map((s) => parseScalar(s.trim()));
  }
  return v;
}

function deepClone<T>(v: T): T {
  return structuredClone(v);
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  let cur = obj;
  for (const k of keys.slice(0, -1)) {
    if (!isPlainObject(cur[k])) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[keys[keys.length - 1]] = value;
}

function getPath(obj: unknown, path: readonly PropertyKey[]): unknown {
  let cur = obj;
  for (const k of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k];
  }
  return cur;
}

function show(v: unknown): string {
  if (v === undefined) return "nothing (missing)";
  if (typeof v === "number" && !Number.isFinite(v)) return String(v);
  try {
    const s = JSON.stringify(v);
    return s.length > 80 ? s.slice(0, 77) + "..." : s;
  } catch {
    return String(v);
  }
}

/** Finds the schema at a zod issue path (array indices step into the element schema). */
function schemaAt(schema: AnySchema, path: readonly PropertyKey[]): AnySchema | undefined {
  let cur: AnySchema | undefined = schema;
  for (const k of path) {
    if (!cur) return undefined;
    const def = defOf(unwrap(cur));
    if (def.type === "object") cur = def.shape[k as string];
    else if (def.type === "array") cur = def.element;
    else if (def.type === "record") cur = def.valueType;
    else return undefined;
  }
  return cur;
}

/** Turns a failed parse into one ConfigError naming each bad field, what it allows and the bad value. */
function zodToConfigError(schema: AnySchema, error: z.ZodError, input: unknown, where: string): ConfigError {
  const lines = error.issues.map((issue) => {
    const path = issue.path.map(String).join(".");
    if (issue.code === "unrecognized_keys") {
      const at = schemaAt(schema, issue.path);
      const known = at ? fieldsOf(at).filter((f) => !f.path.includes(".")).map((f) => f.path) : [];
      const full = issue.keys.map((k) => (path ? `${path}.${k}` : k));
      return `unknown field ${full.map((k) => `"${k}"`).join(", ")} (valid here: ${known.join(", ")})`;
    }
    const at = schemaAt(schema, issue.path);
    let allowed = at ? describeAllowed(at) : issue.message;
    if (issue.code === "too_small" && issue.origin === "array") {
      allowed = `a list with at least ${issue.minimum} item(s)`;
    } else if (issue.code === "too_big" && issue.origin === "array") {
      allowed = `a list with at most ${issue.maximum} item(s)`;
    } else if (issue.code === "custom") {
      allowed = issue.message;
    }
    return `field "${path || "(root)"}" must be ${allowed}, got ${show(getPath(input, issue.path))}`;
  });
  return new ConfigError(`${where}: ${lines.join("; ")}`);
}

// ---------------------------------------------------------------------------------------------------------------
// The command line.

/** The flags that are not config fields, as `--help` lists them (`--jobs` only for parallel experiments). */
// deno-lint-ignore no-explicit-any
function cliFlags(def: ExperimentDefinition<z.ZodObject<any>>): string[] {
  const flags = ["preset", "out", "resume", "force", "jobs", "help", "seeds", "device"];
  return def.parallelJobs ? flags : flags.filter((f) => f !== "jobs");
}

/**
 * Parses an experiment's command line: picks the preset (`--preset NAME`, default `def.defaultPreset`), applies
 * every override on top of it (`--seeds N`, `--device D`, `--a.b.c=value` or `--a.b.c value`; values are JSON
 * when they parse, a comma-separated list for array fields, else strings; a boolean field given with no value is
 * `true`), validates with the schema and returns the config with the non-config options. `--out DIR` defaults to
 * `results/<name>/<preset>`. With `--help` the overrides are not applied (the preset's config is returned).
 *
 * @throws {ConfigError} unknown preset or field (listing the valid ones), a flag without its value, a bad
 * `--jobs`, or a value the schema rejects (naming the path, what is allowed and the bad value).
 */
// deno-lint-ignore no-explicit-any
export function parseExperimentCli<S extends z.ZodObject<any>>(
  def: ExperimentDefinition<S>,
  argv: string[],
): { config: z.output<S>; cli: CliOptions } {
  const fields = fieldsOf(def.schema);
  const byPath = new Map(fields.map((f) => [f.path, f]));
  let preset: string | undefined;
  let out: string | undefined;
  let resume = false;
  let force = false;
  let help = false;
  let jobs: number | undefined;
  const overrides: [string, unknown][] = [];

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--") || arg === "--") {
      throw new ConfigError(`unexpected argument ${JSON.stringify(arg)}: options look like --name=value (see --help)`);
    }
    const eq = arg.indexOf("=");
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    let inline: string | undefined = eq < 0 ? undefined : arg.slice(eq + 1);
    const takeValue = (what: string): string => {
      if (inline !== undefined) return inline;
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith("--") && next.length > 2)) {
        throw new ConfigError(`--${name} needs a value (${what})`);
      }
      i++;
      return next;
    };
    if (name === "help" || name === "resume" || name === "force") {
      if (inline !== undefined && inline !== "true" && inline !== "false") {
        throw new ConfigError(`--${name} takes no value (or =true / =false), got ${JSON.stringify(inline)}`);
      }
      const on = inline !== "false";
      if (name === "help") help = on;
      else if (name === "resume") resume = on;
      else force = on;
      continue;
    }
    if (name === "preset") {
      preset = takeValue(`one of ${Object.keys(def.presets).join(", ")}`);
      continue;
    }
    if (name === "out") {
      out = takeValue("a folder");
      if (out === "") throw new ConfigError("--out must be a non-empty folder path");
      continue;
    }
    if (name === "jobs") {
      if (!def.parallelJobs) {
        throw new ConfigError(`--jobs is not supported by ${def.name}: it runs in one process`);
      }
      const raw = takeValue("an integer ≥ 1");
      const n = Number(raw);
      if (!/^\s*\d+\s*$/.test(raw) || !Number.isInteger(n) || n < 1) {
        throw new ConfigError(`--jobs must be an integer ≥ 1, got ${JSON.stringify(raw)}`);
      }
      jobs = n;
      continue;
    }
    const field = byPath.get(name);
    if (!field) {
      throw new ConfigError(
        `unknown option --${name}; flags: ${cliFlags(def).map((f) => `--${f}`).join(", ")}; config fields: ` +
          fields.map((f) => f.path).join(", "),
      );
    }
    if (field.isBoolean && inline === undefined) {
      const next = argv[i + 1];
      if (next === "true" || next === "false") {
        inline = next;
        i++;
      } else inline = "true";
    }
    overrides.push([name, parseValue(takeValue(describeAllowed(field.schema)), field)]);
  }

  if (resume && force && !help) {
    throw new ConfigError("--resume and --force exclude each other: continue the runs in --out, or replace them");
  }
  const presetName = preset ?? def.defaultPreset;
  if (!Object.hasOwn(def.presets, presetName)) {
    throw new ConfigError(
      `unknown preset ${JSON.stringify(presetName)} (allowed: ${Object.keys(def.presets).join(", ")})`,
    );
  }
  const raw = deepClone(def.presets[presetName]) as Record<string, unknown>;
  if (!help) { for (const [path, value] of overrides) setPath(raw, path, value); }
  const parsed = def.schema.safeParse(raw);
  if (!parsed.success) {
    const where = overrides.length && !help ? `config (preset "${presetName}" + overrides)` : `preset "${presetName}"`;
    throw zodToConfigError(def.schema, parsed.error, raw, where);
  }
  return {
    config: parsed.data as z.output<S>,
    cli: { preset: presetName, out: out ?? `results/${def.name}/${presetName}`, resume, force, jobs, help },
  };
}

/**
 * Validates a config object against an experiment's schema (for configs read back from disk or built in code),
 * with the same error messages as the command line.
 */
// deno-lint-ignore no-explicit-any
export function parseConfig<S extends z.ZodObject<any>>(schema: S, value: unknown, where = "config"): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw zodToConfigError(schema, parsed.error, value, where);
  return parsed.data as z.output<S>;
}

/**
 * The `--help` text: usage, the description, the presets (default marked) and every config field with what it
 * allows, its description and its value in the default preset.
 */
// deno-lint-ignore no-explicit-any
export function formatConfigHelp<S extends z.ZodObject<any>>(def: ExperimentDefinition<S>): string {
  const lines: string[] = [];
  lines.push(`${def.name}: ${def.description}`, "");
  // The device choices come from the schema: an experiment may allow fewer than the base shape does.
  const device = fieldsOf(def.schema).find((f) => f.path === "device");
  const devices = device && defOf(device.core).type === "enum"
    ? Object.values(defOf(device.core).entries).join("|")
    : "auto|cpu|webgpu";
  lines.push(
    `usage: [--preset NAME] [--out DIR] [--seeds N] [--device ${devices}] [--resume | --force]` +
      `${def.parallelJobs ? " [--jobs N]" : ""} [--help]`,
    `       [--field.path=value ...]   (JSON values; lists also as a,b,c)`,
    `  --resume continues the runs already in --out; --force moves them aside (to <out>.replaced-<time>) and`,
    `  starts afresh; without either, an --out that holds runs is refused.`,
    "",
  );
  lines.push("presets:");
  for (const name of Object.keys(def.presets)) {
    lines.push(`  ${name}${name === def.defaultPreset ? " (default)" : ""}`);
  }
  lines.push("", `config fields (values shown from preset "${def.defaultPreset}"):`);
  const base = def.presets[def.defaultPreset];
  for (const f of fieldsOf(def.schema)) {
    const depth = f.path.split(".").length - 1;
    const pad = "  ".repeat(depth + 1);
    const given = getPath(base, f.path.split("."));
    const fallback = defaultOf(f.schema);
    const value = f.isObject ? "" : given !== undefined ? ` = ${show(given)}` : ` = ${show(fallback)} (default)`;
    lines.push(`${pad}--${f.path}${value}`);
    const desc = descriptionOf(f.schema);
    const allowed = f.isObject ? "" : ` Allowed: ${describeAllowed(f.schema)}.`;
    lines.push(`${pad}    ${(desc ?? "(no description)").replace(/\.?$/, ".")}${allowed}`);
  }
  return lines.join("\n");
}

/** The dotted paths of every field of an object schema (objects and leaves), in declaration order. */
// deno-lint-ignore no-explicit-any
export function configFieldPaths(schema: z.ZodObject<any>): string[] {
  return fieldsOf(schema).map((f) => f.path);
}

/** The fields of an object schema that have no `.describe()` (for tests that every field is documented). */
// deno-lint-ignore no-explicit-any
export function undocumentedFields(schema: z.ZodObject<any>): string[] {
  return fieldsOf(schema).filter((f) => !descriptionOf(f.schema)).map((f) => f.path);
}

/**
 * The `main` of an experiment entry file: parses `argv`, prints the help (`--help`) or a {@link ConfigError}
 * (one line on stderr, with a pointer to `--help`, printed by `reportUserError` as `runEntry` prints), else
 * awaits `run(config, cli)`. Returns the exit code (0, or 2 for a bad command line); other errors propagate (to
 * `runEntry`, which prints user-facing ones).
 */
// deno-lint-ignore no-explicit-any
export async function runExperimentCli<S extends z.ZodObject<any>>(
  def: ExperimentDefinition<S>,
  argv: string[],
  run: (config: z.output<S>, cli: CliOptions) => Promise<void>,
): Promise<number> {
  let parsed: { config: z.output<S>; cli: CliOptions };
  try {
    parsed = parseExperimentCli(def, argv);
  } catch (e) {
    // Printed the way runEntry prints it (one `error: …` line, exit code 2).
    const code = e instanceof ConfigError ? reportUserError(e) : null;
    if (code === null) throw e;
    return code;
  }
  if (parsed.cli.help) {
    console.log(formatConfigHelp(def));
    return 0;
  }
  await run(parsed.config, parsed.cli);
  return 0;
}
