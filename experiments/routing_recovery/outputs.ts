/**
 * The config file of an `exp:routing-recovery` output folder, `config.json`: the experiment, the preset, the
 * command and the resolved config. It is what workers, shards and `--aggregate-only` read the config from, and
 * what `--resume` and every shard check their own config against (a folder holds the runs of ONE config).
 *
 * @module
 */
import { joinPath, writeJsonAtomic } from "../common/io.ts";
import { ConfigError, parseConfig } from "../common/config.ts";
import { UserError } from "../common/errors.ts";
import { type RoutingRecoveryConfig, routingRecoverySchema } from "./config.ts";

/** What `config.json` holds. */
export interface StoredConfig {
  /** Always "routing-recovery". */
  experiment: "routing-recovery";
  /** The preset the config started from. */
  preset: string;
  /** The command that wrote the file first. */
  command: string;
  /** The resolved config. */
  config: RoutingRecoveryConfig;
}

/** The path of `config.json` in `out`. */
export function configPath(out: string): string {
  return joinPath(out, "config.json");
}

/** The stored config of `out`, or null when there is none; a file of another experiment is a UserError. */
export async function readStoredConfigIfAny(out: string): Promise<StoredConfig | null> {
  let raw: unknown;
  try {
    raw = JSON.parse(await Deno.readTextFile(configPath(out)));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new UserError(`${configPath(out)}: not readable JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  const s = raw as Partial<StoredConfig>;
  if (s?.experiment !== "routing-recovery") {
    throw new UserError(`${configPath(out)} is not the config of a routing-recovery run`);
  }
  return { ...s, config: parseConfig(routingRecoverySchema, s.config, configPath(out)) } as StoredConfig;
}

/** The stored config of `out`; none is a UserError. */
export async function readStoredConfig(out: string): Promise<StoredConfig> {
  const s = await readStoredConfigIfAny(out);
  if (!s) throw new UserError(`${configPath(out)} not found: ${out} holds no routing-recovery run`);
  return s;
}

/** The top-level fields in which two configs differ. */
function differingFields(a: RoutingRecoveryConfig, b: RoutingRecoveryConfig): string[] {
  const x = a as Record<string, unknown>, y = b as Record<string, unknown>;
  return [...new Set([...Object.keys(x), ...Object.keys(y)])]
    .filter((k) => JSON.stringify(x[k]) !== JSON.stringify(y[k]));
}

/**
 * Writes `config.json` when `out` has none; when it has one, checks that it holds the same config (else a
 * ConfigError naming the fields that differ, and `why` — e.g. "--resume" or "--shard 2/4").
 */
export async function ensureStoredConfig(out: string, stored: StoredConfig, why: string): Promise<void> {
  const existing = await readStoredConfigIfAny(out);
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
