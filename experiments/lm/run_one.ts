/**
 * One LM training run as a subprocess, for the experiments' parallel runner:
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-env experiments/lm/run_one.ts \
 *   --config run.json --dir RUN_DIR [--resume] [--data-cache DIR] [--exit-with-parent]
 * ```
 *
 * With `--exit-with-parent` (what the runner passes) the run stops when its stdin closes, i.e. when the parent
 * runner is gone, even if it was killed with SIGKILL. On SIGINT/SIGTERM, or then, the run folder's lock is
 * released before the process exits; the run continues later with `--resume`.
 *
 * `run.json` holds a run config (see `run_config.ts`; missing fields take their defaults). Progress goes to
 * stdout, one line per train record (the `formatProgress` format), evaluation and resume; errors go to stderr.
 * Exit code 0 when the run completed, 1 when it failed, 2 for bad arguments, a bad config or a run folder that
 * another live process holds.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { formatProgress } from "../common/progress.ts";
import { parseRunConfig, RunConfigError } from "./run_config.ts";
import { DEFAULT_DATA_CACHE_DIR } from "./data.ts";
import { runLm } from "./run.ts";
import { exitWhenStdinCloses } from "../common/shutdown.ts";
import { userErrorMessage } from "../common/errors.ts";

const USAGE = "usage: run_one.ts --config RUN.json --dir RUN_DIR [--resume] [--data-cache DIR] [--exit-with-parent]";

function basename(path: string): string {
  const parts = path.replace(/\/+$/, "").split("/");
  return parts[parts.length - 1] || path;
}

/** Parses `args`, runs, and returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        config: { type: "string" },
        dir: { type: "string" },
        resume: { type: "boolean", default: false },
        "data-cache": { type: "string", default: DEFAULT_DATA_CACHE_DIR },
        help: { type: "boolean", default: false },
        "exit-with-parent": { type: "boolean", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    console.error(`run_one: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!values.config || !values.dir) {
    console.error(`run_one: --config and --dir are required\n${USAGE}`);
    return 2;
  }
  let config;
  try {
    config = parseRunConfig(JSON.parse(await Deno.readTextFile(values.config)));
  } catch (e) {
    const why = e instanceof RunConfigError ? e.message : `cannot read ${values.config}: ${(e as Error).message}`;
    console.error(`run_one: ${why}`);
    return 2;
  }
  if (values["exit-with-parent"]) exitWhenStdinCloses();
  const label = basename(values.dir);
  try {
    const summary = await runLm(config, values.dir, {
      resume: values.resume,
      dataCacheDir: values["data-cache"],
      onProgress: (p) => {
        if (p.kind === "train") {
          console.log(formatProgress({ label, ...p }));
        } else if (p.kind === "eval") {
          console.log(
            `[${label}] step ${p.step}/${p.steps} eval ${p.split} loss ${p.loss.toFixed(4)} ppl ${p.ppl.toFixed(2)}`,
          );
        } else {
          console.log(`[${label}] step ${p.step}/${p.steps} resumed from ${p.checkpoint}`);
        }
      },
    });
    const v = summary.finalEval.valid;
    console.log(
      `[${label}] done: ${summary.steps} steps, valid loss ${v.loss.toFixed(4)}, ` +
        `${summary.msPerStepMedian.toFixed(1)} ms/step (median), ${summary.totalSeconds.toFixed(1)} s training`,
    );
    return 0;
  } catch (e) {
    // A user-facing error (the run folder locked by another process) is one line; a bug keeps its stack.
    const message = userErrorMessage(e);
    if (message !== null) {
      console.error(`run_one: ${message}`);
      return 2;
    }
    console.error(`run_one: run ${values.dir} failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
