/**
 * `deno task exp:switch-vs-sparsemixer [--preset smoke|quick|paper] [--out DIR] [--seeds N] [--device D]
 * [--resume] [--jobs N] [--field.path=value …]`: does SparseMixer make a Switch Transformer converge faster than
 * Switch routing? See `experiments/lm/presets.ts` for the arms and presets and `--help` for every field.
 *
 * @module
 */
import { ConfigError } from "./common/config.ts";
import { runLmExperiment } from "./lm/experiment_runner.ts";
import { switchVsSparseMixer } from "./lm/presets.ts";

if (import.meta.main) {
  try {
    await runLmExperiment(switchVsSparseMixer, Deno.args);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    console.error(`error: ${e.message}\n(run with --help for the presets and every field)`);
    Deno.exit(2);
  }
}
