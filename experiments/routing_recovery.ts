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
import { formatConfigHelp, parseExperimentCli } from "./common/config.ts";
import { aggregateOnlyOut, shardHelp, splitShardFlags } from "./common/shard_cli.ts";
import { runEntry } from "./common/errors.ts";
import { routingRecoveryDefinition } from "./routing_recovery/config.ts";
import { aggregateOnly, runRoutingRecovery } from "./routing_recovery/run.ts";

export { routingRecoveryDefinition } from "./routing_recovery/config.ts";
export { aggregateOnly, runRoutingRecovery } from "./routing_recovery/run.ts";

const definition = { ...routingRecoveryDefinition, parallelJobs: true };

/** Parses `argv` and runs the experiment; returns the exit code (2 for a bad command line). */
export async function main(argv: string[], log: (line: string) => void = console.log): Promise<number> {
  const own = splitShardFlags(argv);
  if (own.aggregateOnly) {
    await aggregateOnly(aggregateOnlyOut(own.rest), log);
    return 0;
  }
  const { config, cli } = parseExperimentCli(definition, own.rest);
  if (cli.help) {
    log(formatConfigHelp(definition) + "\n" + shardHelp("(cell, arm, seed)"));
    return 0;
  }
  // Without --shard: the command of the whole sweep (config.json keeps the first writer's).
  const command = `deno task exp:routing-recovery${own.rest.length ? " " + own.rest.join(" ") : ""}`;
  await runRoutingRecovery(config, { ...cli, shard: own.shard, command }, log);
  return 0;
}

// Bad flags, an unusable --out, refusals and incomplete runs print one `error: …` line and exit 2 (see runEntry).
if (import.meta.main) await runEntry(() => main(Deno.args));
