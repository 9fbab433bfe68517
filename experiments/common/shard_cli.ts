/**
 * The command-line flags of sharded sweeps, shared by the experiments that take them: `--shard i/n` (run one
 * shard, see `shard.ts`) and `--aggregate-only` (build the report from whatever finished in `--out`, which is then
 * the only other flag: the config comes from the folder's `config.json`).
 *
 * @module
 */
import { ConfigError } from "./config.ts";
import { parseShard, type Shard } from "./shard.ts";

/** `argv` without the sharding flags, and what they said. */
export interface ShardFlags {
  /** The other arguments, in order (what the experiment's own parser reads). */
  rest: string[];
  /** `--shard i/n`, when given. */
  shard?: Shard;
  /** `--aggregate-only` was given. */
  aggregateOnly: boolean;
}

/** Takes `--shard i/n` (or `--shard=i/n`) and `--aggregate-only` out of `argv`; bad values are a ConfigError. */
export function splitShardFlags(argv: readonly string[]): ShardFlags {
  const rest: string[] = [];
  let shard: Shard | undefined;
  let aggregate = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--aggregate-only") aggregate = true;
    else if (a === "--shard" || a.startsWith("--shard=")) {
      const value = a === "--shard" ? argv[++i] : a.slice("--shard=".length);
      if (value === undefined) throw new ConfigError("--shard needs a value i/n (e.g. 3/16)");
      try {
        shard = parseShard(value);
      } catch (e) {
        throw new ConfigError((e as Error).message);
      }
    } else rest.push(a);
  }
  if (aggregate && shard) throw new ConfigError("--aggregate-only and --shard exclude each other");
  return { rest, shard, aggregateOnly: aggregate };
}

/** The folder of `--aggregate-only`: `rest` must be exactly `--out DIR` (or `--out=DIR`). */
export function aggregateOnlyOut(rest: readonly string[]): string {
  const out = rest.length === 2 && rest[0] === "--out"
    ? rest[1]
    : rest.length === 1 && rest[0].startsWith("--out=")
    ? rest[0].slice("--out=".length)
    : null;
  if (out === null || out === "") {
    throw new ConfigError("--aggregate-only takes only --out DIR (the config comes from DIR/config.json)");
  }
  return out;
}

/** The `--help` lines of the sharding flags; `units` names what a run is, e.g. "(cell, arm, seed)". */
export function shardHelp(units: string): string {
  return [
    "",
    "sharding (runs on several machines into one shared --out):",
    `  --shard i/n       run only shard i of n (1 ≤ i ≤ n): a disjoint, deterministic subset of the ${units}`,
    "                    runs; shards may write the same --out at once (one atomically written file per run)",
    "  --aggregate-only  build report.md / summary.json from whatever finished in --out (config from its",
    "                    config.json; takes only --out) and list what is missing",
  ].join("\n");
}
