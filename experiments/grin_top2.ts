/**
 * `deno task exp:grin-top2 [--preset smoke|quick|paper] [--out DIR] [--seeds N] [--device D]
 * [--resume | --force] [--jobs N] [--shard i/n] [--field.path=value …]` (or `--aggregate-only --out DIR`): 16 GLU experts, top-2, dropless, global balance;
 * GShard/Mixtral top-k vs SparseMixer-v2 and v2*. See `experiments/lm/presets.ts` for the arms and presets and `--help` for every field.
 *
 * @module
 */
import { runEntry } from "./common/errors.ts";
import { runLmExperiment } from "./lm/experiment_runner.ts";
import { grinTop2 } from "./lm/presets.ts";

// Bad flags, an unusable --out and refusals print one `error: …` line and exit 2 (see runEntry).
if (import.meta.main) await runEntry(async () => void await runLmExperiment(grinTop2, Deno.args));
