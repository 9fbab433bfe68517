/**
 * Runs `exp:estimator-bias` into an output folder:
 *
 * - `config.json` (the resolved config), `env.json` ({@link environmentInfo}),
 * - `metrics.jsonl`: one {@link CellRecord} per line, appended (and synced) as each cell finishes,
 * - `report.md`, `plots/*.svg`, `summary.json`: rebuilt from the records at the end (pure functions of them),
 * - `timing.json`: wall-clock seconds, the only output that differs between identical runs.
 *
 * `--resume` keeps the finished cells of `metrics.jsonl` (a torn last line from a kill is dropped) and measures
 * the rest; every cell is a deterministic function of the config, so the result is byte-identical to an
 * uninterrupted run. Without `--resume`, a folder that already holds results is refused rather than mixed;
 * `--force` moves it aside first (see `common/out_folder.ts`). The folder is locked while this process writes it.
 *
 * @module
 */
import { scope } from "../../core/mod.ts";
import { type CliOptions, ConfigError } from "../common/config.ts";
import { claimOutFolder } from "../common/out_folder.ts";
import { appendJsonl, environmentInfo, joinPath, readJsonl, writeJsonAtomic, writeTextAtomic } from "../common/io.ts";
import { fmt } from "../common/markdown.ts";
import { formatDuration, formatProgress } from "../common/progress.ts";
import type { EstimatorBiasConfig } from "./config.ts";
import { gridCells } from "./cells.ts";
import { type CellRecord, measureCell } from "./measure.ts";
import { buildReport } from "./report.ts";

/** What {@link runEstimatorBias} returns. */
export interface EstimatorBiasResult {
  /** Every cell record, in grid order. */
  records: CellRecord[];
  /** Cells measured by this call (0 when resuming a finished run). */
  measured: number;
  /** Wall-clock seconds of this call. */
  seconds: number;
}

async function readJsonIfExists(path: string): Promise<unknown | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/** Runs (or resumes) the experiment; `log` receives the progress lines (default `console.log`). */
export async function runEstimatorBias(
  config: EstimatorBiasConfig,
  cli: Pick<CliOptions, "out" | "resume" | "preset"> & { force?: boolean },
  log: (line: string) => void = console.log,
): Promise<EstimatorBiasResult> {
  const t0 = performance.now();
  const out = cli.out;
  const metricsPath = joinPath(out, "metrics.jsonl");
  const configPath = joinPath(out, "config.json");
  const cells = gridCells(config);
  const lock = await claimOutFolder(out, {
    resume: cli.resume,
    force: cli.force ?? false,
    holds: async () => {
      const n = (await readJsonl(metricsPath)).length;
      return n > 0 || await readJsonIfExists(configPath) !== undefined ? `a run (${n} cells measured)` : null;
    },
    log,
  });
  try {
    return await measureAll(config, cli, log, cells, t0);
  } finally {
    lock.release();
  }
}

async function measureAll(
  config: EstimatorBiasConfig,
  cli: Pick<CliOptions, "out" | "resume" | "preset">,
  log: (line: string) => void,
  cells: ReturnType<typeof gridCells>,
  t0: number,
): Promise<EstimatorBiasResult> {
  const out = cli.out;
  const metricsPath = joinPath(out, "metrics.jsonl");
  const configPath = joinPath(out, "config.json");
  const saved = await readJsonIfExists(configPath);
  let done: CellRecord[] = await readJsonl<CellRecord>(metricsPath);
  if (cli.resume && saved !== undefined && JSON.stringify(saved) !== JSON.stringify(config)) {
    const a = saved as Record<string, unknown>;
    const b = config as Record<string, unknown>;
    const diff = [...new Set([...Object.keys(a), ...Object.keys(b)])]
      .filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
    throw new ConfigError(
      `--resume: the config differs from the run in ${out} (fields: ${diff.join(", ")}); use the same preset ` +
        "and overrides, or another --out",
    );
  }
  // The finished cells must be a prefix of the grid (cells are appended in order); anything else is not ours.
  done.forEach((r, i) => {
    if (cells[i]?.id !== r.id) {
      throw new Error(
        `${metricsPath}: line ${i + 1} is cell "${r.id}", expected "${cells[i]?.id}"; not a run of this config`,
      );
    }
  });
  await writeJsonAtomic(configPath, config);
  await writeJsonAtomic(joinPath(out, "env.json"), {
    ...environmentInfo({ name: "cpu", adapter: "none (f64 on the CPU backend)" }),
    preset: cli.preset,
  });
  if (done.length > 0) log(`resuming: ${done.length}/${cells.length} cells already done in ${metricsPath}`);
  const startIndex = done.length;
  let measured = 0;
  for (let i = startIndex; i < cells.length; i++) {
    const cell = cells[i];
    const rec = scope(() => measureCell(cell, config));
    await appendJsonl(metricsPath, rec);
    done = [...done, rec];
    measured++;
    const elapsed = (performance.now() - t0) / 1000;
    const line = formatProgress({ label: "estimator-bias", step: i + 1, steps: cells.length, elapsedSec: elapsed });
    // ETA from this process's pace (elapsed covers only the cells measured here).
    const eta = (elapsed / measured) * (cells.length - i - 1);
    log(
      `${line.replace(/ ETA .*$/, "")} ETA ${formatDuration(eta)} | ${cell.id}: rel. bias ${
        fmt(rec.relBias.mean)
      } (floor ${fmt(rec.noiseFloor)}) cos ${fmt(rec.cosine.mean)}`,
    );
  }
  const records = done;
  for (const file of buildReport(config, records, cli.preset)) {
    await writeTextAtomic(joinPath(out, file.path), file.text);
  }
  const seconds = (performance.now() - t0) / 1000;
  await writeJsonAtomic(joinPath(out, "timing.json"), { seconds, measuredCells: measured, totalCells: cells.length });
  log(
    `estimator-bias: ${cells.length} cells (${measured} measured now) in ${formatDuration(seconds)}; report: ${
      joinPath(out, "report.md")
    }`,
  );
  return { records, measured, seconds };
}
