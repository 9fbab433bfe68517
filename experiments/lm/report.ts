/**
 * The LM experiments' report: `report.md` (tables, the verdict sentences, SVG plots under `plots/`) and
 * `summary.json` (the headline numbers) written atomically into the experiment's output folder from an
 * {@link Aggregate}. Plots are standalone SVG files, so the report reads on GitHub or in any browser.
 *
 * @module
 */
import { join } from "node:path";
import { writeJsonAtomic, writeTextAtomic } from "../common/io.ts";
import { fmt, mdImage, mdTable } from "../common/markdown.ts";
import { barChart, lineChart } from "../common/svg.ts";
import type { Aggregate, ArmAggregate, Band, Summary } from "./aggregate.ts";

/** What the report says around the numbers. */
export interface ReportMeta {
  /** Experiment name (e.g. `switch-vs-sparsemixer`). */
  experiment: string;
  /** Report title. */
  title: string;
  /** The question the experiment answers (one paragraph). */
  question: string;
  /** The preset used. */
  preset: string;
  /** The command that produced the results. */
  command: string;
  /** One line per arm saying what it is. */
  armDescriptions: Record<string, string>;
  /** Setup facts (model, data, optimizer, steps …) as label → value. */
  setup: [string, string][];
  /** Extra notes (markdown paragraphs) appended to the method section. */
  notes?: string[];
}

type Series = { label: string; x: number[]; y: number[]; lo?: number[]; hi?: number[]; dashed?: boolean };

function finitePoints(b: Band): { x: number[]; y: number[]; lo: number[]; hi: number[] } {
  const keep = b.steps.map((_, i) => Number.isFinite(b.mean[i]));
  const pick = (xs: number[]) => xs.filter((_, i) => keep[i]);
  return { x: pick(b.steps), y: pick(b.mean), lo: pick(b.lo), hi: pick(b.hi) };
}

function bandSeries(arms: ArmAggregate[], pick: (a: ArmAggregate) => Band | null | undefined): Series[] {
  const out: Series[] = [];
  for (const a of arms) {
    const b = pick(a);
    if (!b) continue;
    const p = finitePoints(b);
    if (p.x.length === 0) continue;
    out.push({ label: a.arm, ...p });
  }
  return out;
}

function ci(s: Summary, digits = 3): string {
  if (!Number.isFinite(s.mean)) return "—";
  if (!Number.isFinite(s.lo)) return fmt(s.mean, digits);
  return `${fmt(s.mean, digits)} [${fmt(s.lo, digits)}, ${fmt(s.hi, digits)}]`;
}

function halfWidth(s: Summary): number {
  return Number.isFinite(s.hi) ? (s.hi - s.lo) / 2 : 0;
}

function stepsSummary(a: ArmAggregate): string {
  const reached = a.stepsToTarget.filter((s): s is number => s !== null);
  if (reached.length === 0) return `not reached (0/${a.stepsToTarget.length})`;
  const m = reached.reduce((x, y) => x + y, 0) / reached.length;
  return `${fmt(m, 0)} (${reached.length}/${a.stepsToTarget.length} seeds)`;
}

/** Writes `plots/*.svg`, `report.md` and `summary.json` into `outDir`; returns the report's markdown. */
export async function writeReport(outDir: string, agg: Aggregate, meta: ReportMeta): Promise<string> {
  const plots: Record<string, string> = {};
  const arms = agg.arms;
  const targetLine = Number.isFinite(agg.target.loss)
    ? [{ y: agg.target.loss, label: `target ${fmt(agg.target.loss, 3)}` }]
    : [];
  const line = (file: string, title: string, yLabel: string, series: Series[], extra: Partial<{
    logY: boolean;
    hlines: { y: number; label: string }[];
  }> = {}) => {
    if (series.length === 0) return;
    plots[file] = lineChart({ title, xLabel: "training step", yLabel, series, ...extra });
  };
  line(
    "valid_loss.svg",
    "Validation loss (SOTU held-out, eval mode)",
    "loss (nats)",
    bandSeries(arms, (a) => a.valid.loss),
    {
      hlines: targetLine,
    },
  );
  line("valid_ppl.svg", "Validation perplexity", "perplexity", bandSeries(arms, (a) => a.valid.ppl), { logY: true });
  line("ood_loss.svg", "Out-of-domain loss (Moby Dick, eval mode)", "loss (nats)", bandSeries(arms, (a) => a.ood.loss));
  line("ood_ppl.svg", "Out-of-domain perplexity", "perplexity", bandSeries(arms, (a) => a.ood.ppl), { logY: true });
  line(
    "train_loss.svg",
    "Training loss (train mode; SparseMixer's forward is perturbed)",
    "loss (nats)",
    bandSeries(arms, (a) => a.trainLoss),
  );
  line(
    "routing_entropy.svg",
    "Router entropy (mean over MoE layers)",
    "nats",
    bandSeries(arms, (a) => a.routing?.entropy),
  );
  line(
    "routing_load_imbalance.svg",
    "Load imbalance: max / mean expert load",
    "ratio (1 = balanced)",
    bandSeries(arms, (a) => a.routing?.loadImbalance),
  );
  line(
    "routing_candidates.svg",
    "Tokens with ≥ 2 candidate experts",
    "fraction",
    bandSeries(arms, (a) => a.routing?.candidateFraction),
  );
  line(
    "routing_sampled_ne_argmax.svg",
    "Tokens whose sampled expert ≠ argmax",
    "fraction",
    bandSeries(arms, (a) => a.routing?.sampledNeArgmax),
  );
  line(
    "routing_unused.svg",
    "Unused experts per MoE layer",
    "experts",
    bandSeries(arms, (a) => a.routing?.unusedExperts),
  );
  const names = arms.map((a) => a.arm);
  plots["final_loss.svg"] = barChart({
    title: "Final loss (eval mode), mean ± 95% CI half-width",
    yLabel: "loss (nats)",
    categories: ["validation (SOTU)", "out of domain (Moby Dick)"],
    groups: arms.map((a) => ({
      label: a.arm,
      values: [a.final.validLoss.mean, a.final.oodLoss.mean],
      err: [halfWidth(a.final.validLoss), halfWidth(a.final.oodLoss)],
    })),
  });
  plots["ms_per_step.svg"] = barChart({
    title: "Time per training step (median per run, mean ± CI over seeds)",
    yLabel: "ms / step",
    categories: names,
    groups: [{
      label: "ms/step",
      values: arms.map((a) => a.msPerStep.mean),
      err: arms.map((a) => halfWidth(a.msPerStep)),
    }],
  });

  await Promise.all(Object.entries(plots).map(([file, svg]) => writeTextAtomic(join(outDir, "plots", file), svg)));
  const img = (file: string, alt: string) => (plots[file] ? mdImage(alt, `plots/${file}`) : "");

  const cmp = new Map(agg.comparisons.map((c) => [c.arm, c]));
  const lines: string[] = [];
  lines.push(`# ${meta.title}`, "");
  lines.push(meta.question, "");
  lines.push("Produced by:", "", "```sh", meta.command, "```", "");
  lines.push(
    `Preset \`${meta.preset}\`, ${agg.steps} training steps per run, seeds per arm: ` +
      arms.map((a) => `${a.arm} ${a.seeds.length} (${a.completed} completed)`).join(", ") + ".",
    "",
  );

  lines.push("## Headline", "");
  if (agg.comparisons.length === 0) lines.push(`No comparison: the baseline arm \`${agg.baseline}\` has no runs.`, "");
  for (const c of agg.comparisons) lines.push(`- ${c.verdict.finalValid}`, `- ${c.verdict.speedup}`);
  lines.push("");
  lines.push(
    mdTable(
      [
        "arm",
        "final valid loss [95% CI]",
        "valid ppl",
        "OOD loss [95% CI]",
        "OOD ppl",
        "steps to target",
        `speed-up vs ${agg.baseline} [95% CI]`,
        "ms/step",
      ],
      arms.map((a) => {
        const c = cmp.get(a.arm);
        const sp = a.arm === agg.baseline
          ? "1 (baseline)"
          : c?.speedup
          ? `${fmt(c.speedup.ratio, 2)} [${fmt(c.speedup.lo, 2)}, ${fmt(c.speedup.hi, 2)}]`
          : "—";
        return [
          a.arm,
          ci(a.final.validLoss, 4),
          fmt(a.final.validPpl.mean, 2),
          ci(a.final.oodLoss, 4),
          fmt(a.final.oodPpl.mean, 2),
          stepsSummary(a),
          sp,
          fmt(a.msPerStep.mean, 0),
        ];
      }),
    ),
    "",
  );
  lines.push(`Target validation loss: **${fmt(agg.target.loss, 4)}** nats — ${agg.target.rule}.`, "");
  lines.push(img("valid_loss.svg", "validation loss per arm, mean and 95% CI band over seeds"), "");

  lines.push("## Arms", "");
  for (const a of arms) lines.push(`- \`${a.arm}\`: ${meta.armDescriptions[a.arm] ?? "(no description)"}`);
  lines.push("", "## Setup", "");
  lines.push(mdTable(["setting", "value"], meta.setup.map(([k, v]) => [k, v])), "");

  lines.push("## Curves", "");
  lines.push(
    "Mean over seeds with a pointwise t-based 95% confidence band. Evaluation runs in eval mode on fixed " +
      "batches (SparseMixer's training forward is perturbed, so training losses are not comparable across arms).",
    "",
  );
  for (
    const [f, alt] of [["valid_ppl.svg", "validation perplexity"], ["ood_loss.svg", "out-of-domain loss"], [
      "ood_ppl.svg",
      "out-of-domain perplexity",
    ], ["train_loss.svg", "training loss"]]
  ) {
    const s = img(f, alt);
    if (s) lines.push(s, "");
  }

  lines.push("## Final metrics", "");
  lines.push(
    mdTable(
      [
        "arm",
        "valid loss",
        "valid ppl [95% CI]",
        "OOD loss",
        "OOD ppl [95% CI]",
        `Δ valid vs ${agg.baseline} [95% CI]`,
        "Welch p",
        `Δ OOD vs ${agg.baseline} [95% CI]`,
        "Welch p",
        "Δ valid paired by seed [95% CI]",
        "paired p",
      ],
      arms.map((a) => {
        const c = cmp.get(a.arm);
        const d = (x: { diff: number; lo: number; hi: number } | undefined) =>
          x ? `${fmt(x.diff, 4)} [${fmt(x.lo, 4)}, ${fmt(x.hi, 4)}]` : "—";
        return [
          a.arm,
          ci(a.final.validLoss, 4),
          ci(a.final.validPpl, 2),
          ci(a.final.oodLoss, 4),
          ci(a.final.oodPpl, 2),
          d(c?.finalValidLoss),
          c ? fmt(c.finalValidLoss.p, 3) : "—",
          d(c?.finalOodLoss),
          c ? fmt(c.finalOodLoss.p, 3) : "—",
          d(c?.finalValidLossPaired),
          c ? fmt(c.finalValidLossPaired.p, 3) : "—",
        ];
      }),
    ),
    "",
  );
  lines.push(img("final_loss.svg", "final validation and out-of-domain loss per arm"), "");

  lines.push("## Steps to the target validation loss", "");
  lines.push(
    "First evaluation step at or below the target, linearly interpolated between evaluation points; — = not " +
      "reached. Speed-up = mean(baseline steps) / mean(arm steps); its 95% CI is a seeded bootstrap that resamples the " +
      "seeds of each arm independently (seeds that never reached the target are left out, and counted).",
    "",
  );
  const allSeeds = [...new Set(arms.flatMap((a) => a.seeds))].sort((x, y) => x - y);
  lines.push(
    mdTable(
      ["arm", ...allSeeds.map((s) => `seed ${s}`), "mean"],
      arms.map((a) => [
        a.arm,
        ...allSeeds.map((seed) => {
          const i = a.seeds.indexOf(seed);
          const s = i < 0 ? undefined : a.stepsToTarget[i];
          return s === undefined ? "" : s === null ? "—" : fmt(s, 0);
        }),
        stepsSummary(a),
      ]),
    ),
    "",
  );

  lines.push("## Routing over time", "");
  lines.push(
    "Averaged over the MoE layers, then mean ± 95% CI over seeds (logged every `logEvery` steps, averaged " +
      "since the previous log). Candidate fraction and samples ≠ argmax exist only for the sampling routers.",
    "",
  );
  for (
    const [f, alt] of [
      ["routing_entropy.svg", "router entropy"],
      ["routing_load_imbalance.svg", "load imbalance"],
      ["routing_candidates.svg", "candidate fraction"],
      ["routing_sampled_ne_argmax.svg", "sampled not argmax"],
      ["routing_unused.svg", "unused experts"],
    ]
  ) {
    const s = img(f, alt);
    if (s) lines.push(s, "");
  }
  const lastOf = (b: Band | null | undefined) => (b && b.mean.length ? b.mean[b.mean.length - 1] : null);
  lines.push("At the last logged step:", "");
  lines.push(
    mdTable(
      ["arm", "entropy", "max/mean load", "≥2 candidates", "sampled ≠ argmax", "unused experts", "dropped"],
      arms.map((
        a,
      ) => [
        a.arm,
        fmt(lastOf(a.routing?.entropy)),
        fmt(lastOf(a.routing?.loadImbalance)),
        fmt(lastOf(a.routing?.candidateFraction)),
        fmt(lastOf(a.routing?.sampledNeArgmax)),
        fmt(lastOf(a.routing?.unusedExperts), 2),
        fmt(lastOf(a.routing?.droppedFraction)),
      ]),
    ),
    "",
  );

  lines.push("## Time per step", "");
  lines.push(
    mdTable(
      ["arm", "ms/step [95% CI]", "tokens/s [95% CI]"],
      arms.map((a) => [a.arm, ci(a.msPerStep, 0), ci(a.tokensPerSec, 0)]),
    ),
    "",
  );
  lines.push(img("ms_per_step.svg", "time per step per arm"), "");
  lines.push("Timings depend on what else ran on the machine; runs executed in parallel share the cores.", "");

  lines.push("## Method", "");
  lines.push(
    "- Confidence intervals of means use Student's t with n − 1 degrees of freedom over seeds; differences " +
      "between arms use Welch's t (unequal variances) with its two-sided p-value.",
  );
  lines.push(
    "- The same seed gives every arm the same initial weights and the same batches (common random numbers), so " +
      "the paired-by-seed difference is also shown; it is the sharper test, but the verdict uses the unpaired " +
      "(Welch) interval.",
  );
  lines.push(
    '- "Separates beyond seed noise" means the Welch 95% CI of the final validation-loss difference excludes 0, ' +
      "or the bootstrap CI of the speed-up excludes 1.",
  );
  lines.push(`- Target loss: ${agg.target.rule}.`);
  for (const n of meta.notes ?? []) lines.push(`- ${n}`);
  lines.push(
    "",
    "Raw data: `runs/<arm>-seed<s>/metrics.jsonl`, `final.json`, `config.json`; headline numbers in " +
      "`summary.json`.",
    "",
  );
  const md = lines.join("\n");
  await writeTextAtomic(join(outDir, "report.md"), md);
  await writeJsonAtomic(join(outDir, "summary.json"), summaryOf(agg, meta));
  return md;
}

function nanToNull(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

function summaryJson(s: Summary): SummaryStat {
  return { mean: nanToNull(s.mean), lo: nanToNull(s.lo), hi: nanToNull(s.hi), n: s.n, values: s.values.map(nanToNull) };
}

/** A mean with its 95% CI and per-seed values in `summary.json` (NaN → null). */
export interface SummaryStat {
  /** Mean over seeds. */
  mean: number | null;
  /** Lower edge of the t-95% CI. */
  lo: number | null;
  /** Upper edge of the t-95% CI. */
  hi: number | null;
  /** Seeds with a value. */
  n: number;
  /** Per-seed values. */
  values: (number | null)[];
}

/** An arm − baseline difference in `summary.json`. */
export interface SummaryDiff {
  /** Mean difference. */
  diff: number | null;
  /** Lower edge of the Welch 95% CI. */
  lo: number | null;
  /** Upper edge of the Welch 95% CI. */
  hi: number | null;
  /** Welch two-sided p-value. */
  p: number | null;
}

/** `summary.json`: the headline numbers of an experiment. */
export interface ExperimentSummary {
  /** Experiment name. */
  experiment: string;
  /** Preset. */
  preset: string;
  /** The command that produced it. */
  command: string;
  /** Training steps per run. */
  steps: number;
  /** The baseline arm. */
  baseline: string;
  /** Target validation loss of "steps to target" and how it was chosen. */
  target: { loss: number | null; rule: string };
  /** Per arm. */
  arms: Record<string, {
    seeds: number[];
    completed: number;
    finalValidLoss: SummaryStat;
    finalValidPpl: SummaryStat;
    finalOodLoss: SummaryStat;
    finalOodPpl: SummaryStat;
    stepsToTarget: (number | null)[];
    msPerStep: SummaryStat;
    tokensPerSec: SummaryStat;
  }>;
  /** Every other arm against the baseline. */
  comparisons: {
    arm: string;
    baseline: string;
    finalValidLossDiff: SummaryDiff;
    finalOodLossDiff: SummaryDiff;
    finalValidLossPairedDiff: SummaryDiff;
    speedup: { ratio: number | null; lo: number | null; hi: number | null; seedsReached: [number, number] } | null;
    separates: boolean;
    verdict: string[];
  }[];
  /** Whether any arm separates from the baseline beyond seed noise. */
  separates: boolean;
}

/** The headline numbers (JSON-safe: NaN becomes null). */
export function summaryOf(
  agg: Aggregate,
  meta: Pick<ReportMeta, "experiment" | "preset" | "command">,
): ExperimentSummary {
  return {
    experiment: meta.experiment,
    preset: meta.preset,
    command: meta.command,
    steps: agg.steps,
    baseline: agg.baseline,
    target: { loss: nanToNull(agg.target.loss), rule: agg.target.rule },
    arms: Object.fromEntries(agg.arms.map((a) => [a.arm, {
      seeds: a.seeds,
      completed: a.completed,
      finalValidLoss: summaryJson(a.final.validLoss),
      finalValidPpl: summaryJson(a.final.validPpl),
      finalOodLoss: summaryJson(a.final.oodLoss),
      finalOodPpl: summaryJson(a.final.oodPpl),
      stepsToTarget: a.stepsToTarget,
      msPerStep: summaryJson(a.msPerStep),
      tokensPerSec: summaryJson(a.tokensPerSec),
    }])),
    comparisons: agg.comparisons.map((c) => ({
      arm: c.arm,
      baseline: c.baseline,
      finalValidLossDiff: {
        diff: nanToNull(c.finalValidLoss.diff),
        lo: nanToNull(c.finalValidLoss.lo),
        hi: nanToNull(c.finalValidLoss.hi),
        p: nanToNull(c.finalValidLoss.p),
      },
      finalValidLossPairedDiff: {
        diff: nanToNull(c.finalValidLossPaired.diff),
        lo: nanToNull(c.finalValidLossPaired.lo),
        hi: nanToNull(c.finalValidLossPaired.hi),
        p: nanToNull(c.finalValidLossPaired.p),
      },
      finalOodLossDiff: {
        diff: nanToNull(c.finalOodLoss.diff),
        lo: nanToNull(c.finalOodLoss.lo),
        hi: nanToNull(c.finalOodLoss.hi),
        p: nanToNull(c.finalOodLoss.p),
      },
      speedup: c.speedup
        ? {
          ratio: nanToNull(c.speedup.ratio),
          lo: nanToNull(c.speedup.lo),
          hi: nanToNull(c.speedup.hi),
          seedsReached: c.speedup.seedsReached,
        }
        : null,
      separates: c.verdict.separates,
      verdict: [c.verdict.finalValid, c.verdict.speedup],
    })),
    separates: agg.comparisons.some((c) => c.verdict.separates),
  };
}
