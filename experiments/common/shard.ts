/**
 * Splitting an experiment's runs into shards, so that a scheduler (a Slurm job array, GNU parallel, Kubernetes
 * Jobs) can run them on many machines into one shared output folder: shard `i/n` (1 ≤ i ≤ n) takes the runs
 * whose position in the experiment's canonical run order is i − 1 modulo n. The shards are therefore disjoint,
 * cover every run, and do not depend on the machine or on what has already finished; round-robin gives every
 * shard a similar mix of arms (and cells). A shard writes one folder or file per run, atomically, and takes no
 * folder lock, so shards may write the same folder at once; it refuses a folder a whole-mode process holds.
 *
 * @module
 */
import { UserError } from "./errors.ts";
import { ConfigError } from "./config.ts";
import { assertUnlocked } from "./lock.ts";
import { type EnvDevice, environmentInfo, joinPath, writeJsonAtomic } from "./io.ts";

/** A shard `i/n` (1 ≤ i ≤ n). */
export interface Shard {
  /** This shard, 1-based. */
  index: number;
  /** Number of shards. */
  count: number;
}

/** Parses `i/n` (1 ≤ i ≤ n); throws a RangeError naming the problem. */
export function parseShard(text: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) {
    throw new RangeError(`--shard must be i/n with 1 ≤ i ≤ n (e.g. 3/16), got ${JSON.stringify(text)}`);
  }
  return { index, count };
}

/** Whether the run at `position` (0-based, in the canonical run order) belongs to `shard`. */
export function inShard(position: number, shard: Shard): boolean {
  return position % shard.count === shard.index - 1;
}

/** The items of `shard`, from `items` in canonical order. */
export function shardItems<T>(items: readonly T[], shard: Shard): T[] {
  return items.filter((_, i) => inShard(i, shard));
}

/** `i/n`. */
export function shardLabel(shard: Shard): string {
  return `${shard.index}/${shard.count}`;
}

/**
 * Makes `out` ready for a shard: refuses `--force` (other shards share the folder), creates the folder (an
 * unusable path is a UserError) and refuses a folder that a whole-mode process holds locked (a shard must not
 * write beside it).
 */
export async function openShardFolder(out: string, force: boolean): Promise<void> {
  if (force) throw new ConfigError("--force cannot be combined with --shard: other shards share the folder");
  await Deno.mkdir(out, { recursive: true }).catch((e) => {
    throw new UserError(`--out ${out}: ${e instanceof Error ? e.message : String(e)}`);
  });
  assertUnlocked(out);
}

/** Records this machine's environment in `env.shard-<i>-of-<n>.json` (each shard may run on another machine). */
export async function writeShardEnv(
  out: string,
  shard: Shard,
  device: EnvDevice,
  extra: Record<string, unknown> = {},
): Promise<void> {
  await writeJsonAtomic(joinPath(out, `env.shard-${shard.index}-of-${shard.count}.json`), {
    ...environmentInfo(device),
    shard: shardLabel(shard),
    ...extra,
  });
}
