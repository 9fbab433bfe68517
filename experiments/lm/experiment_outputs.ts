/**
 * A completeness check of an LM experiment's output folder: every file the runner and the report promise exists
 * and parses. Used by the smoke tests, and handy after copying results around (`checkExperimentOutputs(dir, …)`).
 *
 * @module
 */
import { join } from "node:path";
import { readJsonl } from "../common/io.ts";
import type { ExperimentSummary } from "./report.ts";

async function readJson(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`missing ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${path} is not valid JSON: ${(e as Error).message}`);
  }
}

function check(ok: unknown, message: string): asserts ok {
  if (!ok) throw new Error(message);
}

/**
 * Checks `out` holds a complete experiment: `config.json`, `env.json`, for every arm × seed a run folder with
 * `config.json`, `env.json`, `final.json` (done, `steps` steps) and a `metrics.jsonl` with train and eval records
 * up to the last step, a `report.md` whose every image exists as an SVG under the folder, and a `summary.json`
 * covering the arms. Throws an Error naming the first problem; returns the parsed summary.
 */
export async function checkExperimentOutputs(
  out: string,
  arms: string[],
  seeds: number,
  steps: number,
): Promise<ExperimentSummary> {
  const config = await readJson(join(out, "config.json"));
  check(config.config && typeof config.experiment === "string", `${out}/config.json lacks experiment/config`);
  const env = await readJson(join(out, "env.json"));
  check(typeof env.deno === "string" && typeof env.device === "string", `${out}/env.json lacks deno/device`);
  for (const arm of arms) {
    for (let seed = 0; seed < seeds; seed++) {
      const dir = join(out, "runs", `${arm}-seed${seed}`);
      const runConfig = await readJson(join(dir, "config.json"));
      check(runConfig.seed === seed, `${dir}/config.json has seed ${runConfig.seed}, expected ${seed}`);
      const runEnv = await readJson(join(dir, "env.json"));
      check(typeof runEnv.device === "string", `${dir}/env.json lacks the device`);
      const final = await readJson(join(dir, "final.json"));
      check(final.done === true && final.steps === steps, `${dir}/final.json is not a completed ${steps}-step run`);
      const records = await readJsonl<{ kind: string; step: number; split?: string; loss: number }>(
        join(dir, "metrics.jsonl"),
      );
      const train = records.filter((r) => r.kind === "train");
      const evals = records.filter((r) => r.kind === "eval");
      check(train.length > 0 && train.at(-1)!.step === steps, `${dir}/metrics.jsonl: train records miss step ${steps}`);
      for (const split of ["valid", "ood"]) {
        const last = evals.filter((r) => r.split === split).at(-1);
        check(
          last && last.step === steps && Number.isFinite(last.loss),
          `${dir}/metrics.jsonl: no final ${split} eval`,
        );
      }
    }
  }
  const report = await Deno.readTextFile(join(out, "report.md"));
  const images = [...report.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]);
  check(images.length > 0, `${out}/report.md has no plots`);
  for (const rel of images) {
    check(rel.endsWith(".svg"), `report.md references a non-SVG image ${rel}`);
    let svg: string;
    try {
      svg = await Deno.readTextFile(join(out, rel));
    } catch {
      throw new Error(`report.md references ${rel}, which does not exist`);
    }
    check(/<svg[\s>]/.test(svg) && svg.trimEnd().endsWith("</svg>"), `${rel} is not a complete SVG`);
  }
  const summary = await readJson(join(out, "summary.json")) as unknown as ExperimentSummary;
  for (const arm of arms) {
    const a = summary.arms?.[arm];
    check(a, `summary.json lacks arm ${arm}`);
    check(Number.isFinite(a.finalValidLoss.mean), `summary.json: ${arm} has no final validation loss`);
  }
  return summary;
}
