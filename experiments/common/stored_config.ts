/**
 * The config file of an experiment's output folder, `config.json`: the experiment, the preset, the command and the
 * resolved config (plus whatever else the experiment records). It is what shards, workers and `--aggregate-only`
 * read the config from, and what `--resume` and every shard check their own config against: a folder holds the
 * runs of ONE config, so a shard started with another config is refused, naming the fields that differ.
 *
 * @module
 */
import { joinPath, writeJsonAtomic } from "./io.ts";
import { ConfigError } from "./config.ts";
import { UserError } from "./errors.ts";

/** What `config.json` holds. */
export interface StoredConfig<C> {
  /** The experiment's name. */
  experiment: string;
  /** The preset the config started from. */
  preset: string;
  /** The command that wrote the file first (for a shard: without its `--shard`). */
  command: string;
  /** The resolved config. */
  config: C;
}

/** How to read an experiment's `config.json`: its name, and the parser of its config (throws when invalid). */
export interface StoredConfigKind<C> {
  /** The experiment's name, as stored in the file. */
  experiment: string;
  /** Validates the stored config; `where` names the file in error messages. */
  parse(raw: unknown, where: string): C;
}

/** The path of `config.json` in `out`. */
export function configPath(out: string): string {
  return joinPath(out, "config.json");
}

/** The stored config of `out`, or null when there is none; a file of another experiment is a UserError. */
export async function readStoredConfigIfAny<C, S extends StoredConfig<C> = StoredConfig<C>>(
  out: string,
  kind: StoredConfigKind<C>,
): Promise<S | null> {
  let raw: unknown;
  try {
    raw = JSON.parse(await Deno.readTextFile(configPath(out)));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new UserError(`${configPath(out)}: not readable JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  const s = raw as Partial<StoredConfig<unknown>>;
  if (s?.experiment !== kind.experiment) {
    throw new UserError(`${configPath(out)} is not the config of a ${kind.experiment} run`);
  }
  return { ...s, config: kind.parse(s.config, configPath(out)) } as S;
}

/** The stored config of `out`; none is a UserError. */
export async function readStoredConfig<C, S extends StoredConfig<C> = StoredConfig<C>>(
  out: string,
  kind: StoredConfigKind<C>,
): Promise<S> {
  const s = await readStoredConfigIfAny<C, S>(out, kind);
  if (!s) throw new UserError(`${configPath(out)} not found: ${out} holds no ${kind.experiment} run`);
  return s;
}

/** The top-level fields in which two configs differ. */
export function differingFields(a: unknown, b: unknown): string[] {
  const x = a as Record<string, unknown>, y = b as Record<string, unknown>;
  return [...new Set([...Object.keys(x), ...Object.keys(y)])]
    .filter((k) => JSON.stringify(x[k]) !== JSON.stringify(y[k]));
}

/**
 * Writes `config.json` when `out` has none; when it has one, checks that it holds the same config (else a
 * ConfigError naming the fields that differ, and `why` — e.g. "--resume" or "--shard 2/4").
 */
export async function ensureStoredConfig<C>(
  out: string,
  stored: StoredConfig<C>,
  kind: StoredConfigKind<C>,
  why: string,
): Promise<void> {
  const existing = await readStoredConfigIfAny<C>(out, kind);
  if (!existing) {
    await writeJsonAtomic(configPath(out), stored);
    return;
  }
  const diff = differingFields(existing.config, stored.config);
  if (diff.length) {
    throw new ConfigError(
      `${why}: the config differs from the one in ${configPath(out)} (fields: ${diff.join(", ")}); use the same ` +
        "preset and overrides, or another --out",
    );
  }
}
