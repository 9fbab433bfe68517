/**
 * A worker process of `exp:routing-recovery --jobs N`: runs shard `i/N` of the runs still missing in an output
 * folder that its parent has claimed and locked (the config is read from `<out>/config.json`).
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-env --allow-sys=cpus experiments/routing_recovery/worker.ts \
 *   --out DIR --shard i/N [--exit-with-parent]
 * ```
 *
 * With `--exit-with-parent` it stops when its stdin closes (the parent is gone, even after SIGKILL). Exit code 0
 * when every run of the shard finished, 1 when some failed (their `.failed.json` says why), 2 for bad arguments.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { exitWhenStdinCloses } from "../common/shutdown.ts";
import { userErrorMessage } from "../common/errors.ts";
import { readStoredConfig } from "./outputs.ts";
import { planRuns, shardRuns } from "./plan.ts";
import { parseShard } from "../common/shard.ts";
import { readRun } from "./store.ts";
import { runInProcess } from "./execute.ts";

/** Parses `args`, runs the shard, returns the exit code. */
export async function main(args: string[]): Promise<number> {
  try {
    const { values } = parseArgs({
      args,
      options: {
        out: { type: "string" },
        shard: { type: "string" },
        "exit-with-parent": { type: "boolean", default: false },
      },
      strict: true,
      allowPositionals: false,
    });
    if (!values.out || !values.shard) throw new RangeError("worker: --out and --shard are required");
    if (values["exit-with-parent"]) exitWhenStdinCloses();
    const out = values.out;
    const { config } = await readStoredConfig(out);
    const mine = shardRuns(planRuns(config).runs, parseShard(values.shard));
    const missing = [];
    for (const r of mine) if (!(await readRun(out, r))) missing.push(r);
    const failed = await runInProcess(config, out, missing, (line) => console.log(line));
    return failed.length ? 1 : 0;
  } catch (e) {
    console.error(`worker: ${userErrorMessage(e) ?? (e instanceof Error ? e.stack ?? e.message : String(e))}`);
    return 2;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
