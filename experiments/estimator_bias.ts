/**
 * `deno task exp:estimator-bias`: exact bias and variance of every routing estimator's gradient over a grid of
 * E, ε / temperature, logit scales and downstream functions (see `experiments/estimator_bias/`).
 *
 * ```sh
 * deno task exp:estimator-bias --preset smoke --out /tmp/eb
 * deno task exp:estimator-bias                      # preset "quick" into results/estimator-bias/quick
 * deno task exp:estimator-bias --preset paper --seeds 20 --experts=4,8,16,32,64
 * deno task exp:estimator-bias --help               # presets and every config field
 * ```
 *
 * @module
 */
import { runExperimentCli } from "./common/config.ts";
import { runEntry } from "./common/errors.ts";
import { estimatorBiasDefinition } from "./estimator_bias/config.ts";
import { runEstimatorBias } from "./estimator_bias/run.ts";

export { estimatorBiasDefinition } from "./estimator_bias/config.ts";
export { runEstimatorBias } from "./estimator_bias/run.ts";

/** Parses `argv` and runs the experiment; returns the exit code (2 for a bad command line). */
export function main(argv: string[]): Promise<number> {
  return runExperimentCli(estimatorBiasDefinition, argv, async (config, cli) => {
    await runEstimatorBias(config, cli);
  });
}

// Bad flags, an unusable --out and refusals print one `error: …` line and exit 2 (see runEntry).
if (import.meta.main) await runEntry(() => main(Deno.args));
