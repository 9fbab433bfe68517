/**
 * `deno task exp:routing-recovery`: which routers learn the known optimal routing of a clustered regression task
 * (see `experiments/routing_recovery/`): every registered estimator the MoE layer can train with is an arm.
 *
 * ```sh
 * deno task exp:routing-recovery --preset smoke --out /tmp/rr
 * deno task exp:routing-recovery --jobs 2                 # preset "quick" into results/routing-recovery/quick
 * deno task exp:routing-recovery --preset paper --shard 3/16 --out /shared/rr   # one shard of a sweep
 * deno task exp:routing-recovery --aggregate-only --out /shared/rr               # the report of what finished
 * deno task exp:routing-recovery --help                   # presets and every config field
 * ```
 *
 * @module
 */
import { ConfigError, formatConfigHelp, parseExperimentCli } from "./common/config.ts";
import { runEntry } from "./common/errors.ts";
import { routingRecoveryDefinition } from "./routing_recovery/config.ts";
import { parseShard, type Shard } from "./routing_recovery/plan.ts";
import { aggregateOnly, runRoutingRecovery } from "./routing_recovery/run.ts";

export { routingRecoveryDefinition } from "./routing_recovery/config.ts";
export { aggregateOnly, runRoutingRecovery } from "./routing_recovery/run.ts";

const definition = { ...routingRecoveryDefinition, parallelJobs: true };

const EXTRA_HELP = [
  "",
  "sharding (runs on several machines into one shared --out):",
  "  --shard i/n       run only shard i of n (1 ≤ i ≤ n): a disjoint, deterministic subset of the (cell, arm, seed)",
  "                    runs; shards may write the same --out at once (one atomically written file per run)",
  "  --aggregate-only  build report.md / summary.json from whatever finished in --out (config from its",
  "                    config.json; takes only --out) and list what is missing",
].join("\n");

/** Takes `--shard i/n` and `--aggregate-only` out of `argv` (the shared parser does not know them). */
function splitOwnFlags(argv: string[]): { rest: string[]; shard?: Shard; aggregateOnly: boolean } {
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

/** Parses `argv` and runs the experiment; returns the exit code (2 for a bad command line). */
export async function main(argv: string[], log: (line: string) => void = console.log): Promise<number> {
  const own = splitOwnFlags(argv);
  if (own.aggregateOnly) {
    const out = own.rest.length === 2 && own.rest[0] === "--out"
      ? own.rest[1]
      : own.rest.length === 1 && own.rest[0].startsWith("--out=")
      ? own.rest[0].slice("--out=".length)
      : null;
    if (out === null || out === "") {
      throw new ConfigError("--aggregate-only takes only --out DIR (the config comes from DIR/config.json)");
    }
    await aggregateOnly(out, log);
    return 0;
  }
  const { config, cli } = parseExperimentCli(definition, own.rest);
  if (cli.help) {
    log(formatConfigHelp(definition) + "\n" + EXTRA_HELP);
    return 0;
  }
  const command = `deno task exp:routing-recovery${argv.length ? " " + argv.join(" ") : ""}`;
  await runRoutingRecovery(config, { ...cli, shard: own.shard, command }, log);
  return 0;
}

// Bad flags, an unusable --out, refusals and incomplete runs print one `error: …` line and exit 2 (see runEntry).
if (import.meta.main) await runEntry(() => main(Deno.args));
