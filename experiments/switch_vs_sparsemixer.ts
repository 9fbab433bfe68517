/**
 * `deno task exp:switch-vs-sparsemixer [--preset smoke|quick|paper] [--out DIR] [--seeds N] [--device D]
 * [--resume | --force] [--jobs N] [--shard i/n] [--field.path=value …]` (or `--aggregate-only --out DIR`): does SparseMixer make a Switch Transformer converge faster than
 * Switch routing? See `experiments/lm/presets.ts` for the arms and presets and `--help` for every field.
 *
 * @module
 */
import { runEntry } from "./common/errors.ts";
import { runLmExperiment } from "./lm/experiment_runner.ts";
import { switchVsSparseMixer } from "./lm/presets.ts";

// Bad flags, an unusable --out and refusals print one `error: …` line and exit 2 (see runEntry).
if (import.meta.main) await runEntry(async () => void await runLmExperiment(switchVsSparseMixer, Deno.args));
