/**
 * `deno task vectors [--dtype f64|f32] [--device cpu|webgpu] [FILE.json | FOLDER]...`: replays reference vector
 * files (`vectors/` format; a folder stands for its `*.json` files, and no argument for the bundled `vectors/`)
 * and prints, per file, `PASS name` or `FAIL name` and a table of the largest
 * absolute and relative error of every quantity with its tolerance. Exits 1 if any file fails or cannot be
 * read or interpreted.
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { selectDevice } from "../../mod.ts";
import type { FloatDType } from "../../core/dtype.ts";
import type { Device } from "../../core/device.ts";
import { type ExtraReplayer, passed, type QuantityResult, replayVector } from "./replay.ts";
import { layerReplayer } from "./layer_replay.ts";

/** Extra replayers tried before the built-in families: the MoE layer vectors. */
export const EXTRA_REPLAYERS: ExtraReplayer[] = [layerReplayer];

const USAGE =
  "usage: deno task vectors [--dtype f64|f32] [--device cpu|webgpu] [FILE.json | FOLDER]... (default: the bundled vectors/)";

/** The reference vectors that ship with the repository. */
const BUNDLED = new URL("../../vectors/", import.meta.url);

/** Expands each folder argument to its `*.json` files (sorted); files are kept as given. */
async function expandPaths(paths: readonly (string | URL)[]): Promise<(string | URL)[]> {
  const out: (string | URL)[] = [];
  for (const p of paths) {
    const info = await Deno.stat(p).catch(() => null);
    if (!info?.isDirectory) {
      out.push(p); // a missing file is reported by the replay loop, with the others still run
      continue;
    }
    const names: string[] = [];
    for await (const e of Deno.readDir(p)) if (e.isFile && e.name.endsWith(".json")) names.push(e.name);
    out.push(...names.sort().map((n) => (p instanceof URL ? new URL(n, p) : join(p, n))));
  }
  return out;
}

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toExponential(2) : String(x);
}

function table(rows: QuantityResult[]): string {
  const head = ["quantity", "max abs err", "max rel err", "tolerance", ""];
  const body = rows.map((r) => [
    r.quantity,
    fmt(r.maxAbs),
    fmt(r.maxRel),
    r.atol === 0 && r.rtol === 0 ? "exact" : `${r.atol.toExponential(0)} + ${r.rtol.toExponential(0)}·|ref|`,
    r.ok ? "ok" : `FAIL${r.note ? ` (${r.note})` : ""}`,
  ]);
  const widths = head.map((_, i) => Math.max(...[head, ...body].map((row) => row[i].length)));
  return [head, ...body].map((row) => "    " + row.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd())
    .join("\n");
}

/** Runs the command on `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: { dtype: { type: "string", default: "f64" }, device: { type: "string" }, help: { type: "boolean" } },
    });
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.dtype !== "f64" && values.dtype !== "f32") {
    console.error(`--dtype must be f64 or f32, got ${values.dtype}\n${USAGE}`);
    return 2;
  }
  if (values.device !== undefined && values.device !== "cpu" && values.device !== "webgpu") {
    console.error(`--device must be cpu or webgpu, got ${values.device}\n${USAGE}`);
    return 2;
  }
  const paths = await expandPaths(positionals.length ? positionals : [BUNDLED]);
  if (paths.length === 0) {
    console.error(`no vector files in ${positionals.join(", ")}\n${USAGE}`);
    return 2;
  }
  const dtype = values.dtype as FloatDType;
  let device: Device | undefined;
  if (values.device) device = await selectDevice(values.device as "cpu" | "webgpu");

  let failures = 0;
  for (const path of paths) {
    try {
      const v = JSON.parse(await Deno.readTextFile(path));
      const r = await replayVector(v, { dtype, device }, EXTRA_REPLAYERS);
      const ok = passed(r);
      if (!ok) failures++;
      console.log(`${ok ? "PASS" : "FAIL"} ${r.name}`);
      console.log(table(r.results));
    } catch (e) {
      failures++;
      console.log(`FAIL ${path instanceof URL ? path.pathname : path}: ${(e as Error).message}`);
    }
  }
  console.log(
    `${paths.length - failures} passed, ${failures} failed (${dtype}${device ? `, ${device.name}` : ""})`,
  );
  return failures > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
