/**
 * The report of an LM experiment's output folder: reads every planned run (`runs/<arm>-seed<s>`, whatever
 * finished), aggregates the finished ones and writes `report.md`, `plots/*.svg` and `summary.json`. The whole
 * run and `--aggregate-only` both end here, so a sharded sweep gives the same report as a whole run (except the
 * timings, the command and the execution row of the setup table).
 *
 * @module
 */
import { join } from "node:path";
import { UserError } from "../common/errors.ts";
import { type Aggregate, aggregateRuns, loadRunData } from "./aggregate.ts";
import type { LmData } from "./data.ts";
import type { RunJob } from "./experiment_jobs.ts";
import { readFailure } from "./experiment_plan.ts";
import { controlArms, type LmExperiment, type LmExperimentConfig } from "./experiment_schema.ts";
import { unfinishedReason } from "./completion.ts";
import { writeReport } from "./report.ts";

/** How the report describes where the results came from. */
export interface ReportOrigin {
  /** The preset. */
  preset: string;
  /** The command shown in the report. */
  command: string;
  /** The setup table's "execution" row, after the device (how the runs were executed, threads per run). */
  execution: string;
}

/**
 * Aggregates the runs of `jobs` found in their folders and writes the report files into `out`. `errors` (keyed by
 * run name) are this invocation's failures; an unfinished run's `failed.json` (written by an earlier invocation or
 * by a shard) is used for the others. Runs that did not finish are in no number, as always.
 */
export async function reportFolder(
  exp: LmExperiment,
  config: LmExperimentConfig,
  out: string,
  jobs: readonly RunJob[],
  data: LmData,
  origin: ReportOrigin,
  errors: Record<string, string> = {},
): Promise<{ agg: Aggregate; report: string }> {
  const runData = await Promise.all(jobs.map((j) => loadRunData(j.dir, j.arm, j.seed)));
  const allErrors: Record<string, string> = {};
  for (const [i, j] of jobs.entries()) {
    if (errors[j.name] !== undefined) allErrors[j.name] = errors[j.name];
    else if (unfinishedReason(runData[i], config.steps) !== null) {
      const e = await readFailure(j.dir);
      if (e !== undefined) allErrors[j.name] = e;
    }
  }
  const agg = aggregateRuns(runData, {
    arms: config.arms,
    baseline: exp.baseline,
    steps: config.steps,
    targetLoss: config.targetLoss,
    targetFraction: config.targetFraction,
    primary: exp.primary,
    errors: allErrors,
    controls: controlArms(exp, config.arms),
    claimedEffect: exp.claimedEffect,
  });
  const report = await writeReport(out, agg, {
    experiment: exp.definition.name,
    title: exp.title,
    question: exp.question,
    preset: origin.preset,
    command: origin.command,
    armDescriptions: Object.fromEntries(Object.entries(exp.arms).map(([k, v]) => [k, v.description])),
    setup: setupRows(config, data, origin.execution),
    notes: exp.notes,
  });
  return { agg, report };
}

/** The error that ends a command whose folder has unfinished runs, after the report was written. */
export function incompleteError(agg: Aggregate, out: string, hint: string): UserError | null {
  if (!agg.incomplete.length) return null;
  return new UserError(
    `${agg.incomplete.length} run(s) did not finish and are left out of the report: ` +
      agg.incomplete.map((r) => `${r.arm}-seed${r.seed} (step ${r.lastStep}/${r.steps})`).join(", "),
    { hint: `see ${join(out, "report.md")}; ${hint}` },
  );
}

function setupRows(c: LmExperimentConfig, data: LmData, execution: string): [string, string][] {
  const m = c.model;
  const moeLayers = Array.from({ length: m.layers }, (_, i) => i).filter((i) => i % m.moeEvery === 0);
  return [
    [
      "model",
      `decoder-only, d = ${m.dim}, ${m.layers} layers, ${m.heads} heads, ${m.norm} norm, ` +
      `${m.rope ? "RoPE" : "learned positions"}, ${
        m.tieEmbeddings ? "tied" : "untied"
      } embeddings, dropout ${m.dropout}`,
    ],
    [
      "MoE",
      `layers ${moeLayers.join(", ")}: ${m.experts} ${m.expert} experts (hidden ${m.hidden ?? 4 * m.dim}), ` +
      `top-${m.topK}, ${m.capacityFactor === null ? "dropless" : `capacity factor ${m.capacityFactor}`}, ` +
      `balance ${m.balance.form}/${m.balance.scope} α = ${m.balance.coef}, z-loss ${m.zLossCoef}, ε = ${c.jitterEps}`,
    ],
    [
      "data",
      `SOTU, BPE vocab ${data.vocabSize} (trained on the train split), ${c.data.batchSize} × ` +
      `${c.data.seqLen} tokens per step; ${data.train.length.toLocaleString("en-US")} train / ` +
      `${data.valid.length.toLocaleString("en-US")} valid tokens (held-out documents, ${c.data.validFraction * 100}%)` +
      (data.ood ? `; Moby Dick ${data.ood.length.toLocaleString("en-US")} tokens (out of domain)` : ""),
    ],
    [
      "evaluation",
      `every ${c.evalEvery} steps and at the end, eval mode, ${c.data.evalBatches} fixed batches per ` +
      `split; unigram loss (a floor to beat): valid ${data.unigram.valid.toFixed(3)}` +
      (data.unigram.ood !== null ? `, OOD ${data.unigram.ood.toFixed(3)}` : ""),
    ],
    [
      "optimizer",
      `AdamW lr ${c.optim.lr}, β = (${c.optim.betas.join(", ")}), wd ${c.optim.weightDecay}, ` +
      `${c.optim.warmupSteps} warm-up steps, ${c.optim.schedule} to ` +
      `${Number(c.optim.minLr.toPrecision(4))}, clip ${c.optim.clipNorm}`,
    ],
    [
      "steps",
      `${c.steps} per run, ${c.seeds} seeds per arm (seeds 0…${c.seeds - 1}; the same seed gives every ` +
      `arm the same initial weights and batches)`,
    ],
    ["execution", `device ${c.device}, ${execution}`],
  ];
}
