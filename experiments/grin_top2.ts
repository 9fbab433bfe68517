/**
 * `deno task exp:grin-top2 [--preset smoke|quick|paper] [--out DIR] [--seeds N] [--device D]
 * [--resume] [--jobs N] [--field.path=value …]`: 16 GLU experts, top-2, dropless, global balance;
 * GShard/Mixtral top-k vs SparseMixer-v2 and v2*. See `experiments/lm/presets.ts` for the arms and presets and `--help` for every field.
 *
 * @module
 */
import { ConfigError } from "./common/config.ts";
import { runLmExperiment } from "./lm/experiment_runner.ts";
import { grinTop2 } from "./lm/presets.ts";

if (import.meta.main) {
  try {
    await runLmExperiment(grinTop2, Deno.args);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    console.error(`error: ${e.message}\n(run with --help for the presets and every field)`);
    Deno.exit(2);
  }
}
