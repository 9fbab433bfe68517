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
import { MIN_SEEDS_BOOTSTRAP, MIN_SEEDS_T, tooFewSeeds } from "../common/stats.ts";
import { barChart, lineChart, type LineSeries as Series, PALETTE } from "../common/svg.ts";
import type { Aggregate, ArmAggregate, Band, PairedDifference, Speedup, Summary } from "./aggregate.ts";
import type { IncompleteRun } from "./completion.ts";
import { describePrimaryTest, type PrimaryTest } from "./verdicts.ts";
import {
  diagnosticsPlots,
  diagnosticsSection,
  nullControlsSection,
  primaryAndPowerSection,
} from "./report_sections.ts";
import { controlOutcome, controlsSummary } from "../common/control_verdicts.ts";

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

/**
 * One colour per arm, by the arm's position in the experiment's arm list, used by every plot of the report: a
 * plot that has no data for some arm would otherwise shift the palette and give an arm another arm's colour.
 */
export function armColors(arms: readonly string[]): Map<string, string> {
  return new Map(arms.map((a, i) => [a, PALETTE[i % PALETTE.length]]));
}

function finitePoints(b: Band): { x: number[]; y: number[]; lo: number[]; hi: number[] } {
  const keep = b.steps.map((_, i) => Number.isFinite(b.mean[i]));
  const pick = (xs: number[]) => xs.filter((_, i) => keep[i]);
  return { x: pick(b.steps), y: pick(b.mean), lo: pick(b.lo), hi: pick(b.hi) };
}

function bandSeries(
  arms: ArmAggregate[],
  colors: Map<string, string>,
  pick: (a: ArmAggregate) => Band | null | undefined,
): Series[] {
  const out: Series[] = [];
  for (const a of arms) {
    const b = pick(a);
    if (!b) continue;
    const p = finitePoints(b);
    if (p.x.length === 0) continue;
    out.push({ label: a.arm, ...p, color: colors.get(a.arm) });
  }
  return out;
}

function ci(s: Summary, digits = 3): string {
  if (!Number.isFinite(s.mean)) return "—";
  if (!Number.isFinite(s.lo)) return `${fmt(s.mean, digits)} (n = ${s.n}; no CI)`;
  return `${fmt(s.mean, digits)} [${fmt(s.lo, digits)}, ${fmt(s.hi, digits)}]`;
}

function diffCell(x: { diff: number; lo: number; hi: number } | undefined, n?: number): string {
  if (!x || !Number.isFinite(x.diff)) return "—";
  if (!Number.isFinite(x.lo)) return `${fmt(x.diff, 4)}; no CI: ${tooFewSeeds(n ?? 0, MIN_SEEDS_T)}`;
  return `${fmt(x.diff, 4)} [${fmt(x.lo, 4)}, ${fmt(x.hi, 4)}]`;
}

function speedupCell(sp: Speedup | null | undefined): string {
  if (!sp) return "—";
  if (!Number.isFinite(sp.lo)) {
    return `${fmt(sp.ratio, 2)}; no CI: ${tooFewSeeds(Math.min(...sp.seedsReached), MIN_SEEDS_BOOTSTRAP)}`;
  }
  return `${fmt(sp.ratio, 2)} [${fmt(sp.lo, 2)}, ${fmt(sp.hi, 2)}]`;
}

/** The block at the top of the report naming the runs that every statistic leaves out. */
function incompleteBlock(runs: IncompleteRun[]): string[] {
  if (runs.length === 0) return [];
  return [
    `> **${runs.length} run(s) did not finish and are left out of every statistic, table and plot below.** ` +
    "Comparisons use only the finished runs; paired comparisons only the seeds finished in both arms.",
    "",
    mdTable(
      ["arm", "seed", "last step reached", "why left out", "error"],
      runs.map((r) => [r.arm, String(r.seed), `${r.lastStep} / ${r.steps}`, r.reason, r.error ?? "—"]),
    ),
    "",
  ];
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
  const colors = armColors(arms.map((a) => a.arm));
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
    bandSeries(arms, colors, (a) => a.valid.loss),
    {
      hlines: targetLine,
    },
  );
  line("valid_ppl.svg", "Validation perplexity", "perplexity", bandSeries(arms, colors, (a) => a.valid.ppl), {
    logY: true,
  });
  line(
    "ood_loss.svg",
    "Out-of-domain loss (Moby Dick, eval mode)",
    "loss (nats)",
    bandSeries(arms, colors, (a) => a.ood.loss),
  );
  line("ood_ppl.svg", "Out-of-domain perplexity", "perplexity", bandSeries(arms, colors, (a) => a.ood.ppl), {
    logY: true,
  });
  line(
    "train_loss.svg",
    "Training loss (train mode; SparseMixer's forward is perturbed)",
    "loss (nats)",
    bandSeries(arms, colors, (a) => a.trainLoss),
  );
  line(
    "routing_entropy.svg",
    "Router entropy of the full softmax (mean over MoE layers)",
    "nats (≤ ln E)",
    bandSeries(arms, colors, (a) => a.routing?.routerEntropy),
  );
  line(
    "routing_load_imbalance.svg",
    "Load imbalance: max / mean expert load",
    "ratio (1 = balanced)",
    bandSeries(arms, colors, (a) => a.routing?.loadImbalance),
  );
  line(
    "routing_candidates.svg",
    "Tokens with ≥ 2 candidate experts",
    "fraction",
    bandSeries(arms, colors, (a) => a.routing?.candidateFraction),
  );
  line(
    "routing_sampled_ne_argmax.svg",
    "Tokens whose sampled expert ≠ argmax",
    "fraction",
    bandSeries(arms, colors, (a) => a.routing?.sampledNeArgmax),
  );
  line(
    "routing_unused.svg",
    "Unused experts per MoE layer",
    "experts",
    bandSeries(arms, colors, (a) => a.routing?.unusedExperts),
  );
  plots["final_loss.svg"] = barChart({
    title: "Final loss (eval mode), mean and 95% CI over finished seeds",
    yLabel: "loss (nats)",
    categories: ["validation (SOTU)", "out of domain (Moby Dick)"],
    groups: arms.map((a) => ({
      label: a.arm,
      color: colors.get(a.arm),
      values: [a.final.validLoss.mean, a.final.oodLoss.mean],
      lo: [a.final.validLoss.lo, a.final.oodLoss.lo],
      hi: [a.final.validLoss.hi, a.final.oodLoss.hi],
    })),
  });
  plots["ms_per_step.svg"] = barChart({
    title: "Time per training step (median per run, mean and 95% CI over seeds)",
    yLabel: "ms / step",
    categories: ["ms / step"],
    groups: arms.map((a) => ({
      label: a.arm,
      color: colors.get(a.arm),
      values: [a.msPerStep.mean],
      lo: [a.msPerStep.lo],
      hi: [a.msPerStep.hi],
    })),
  });

  Object.assign(plots, diagnosticsPlots(agg, colors));
  await Promise.all(Object.entries(plots).map(([file, svg]) => writeTextAtomic(join(outDir, "plots", file), svg)));
  const img = (file: string, alt: string) => (plots[file] ? mdImage(alt, `plots/${file}`) : "");

  const cmp = new Map(agg.comparisons.map((c) => [c.arm, c]));
  const lines: string[] = [];
  lines.push(`# ${meta.title}`, "");
  lines.push(...incompleteBlock(agg.incomplete));
  lines.push(meta.question, "");
  lines.push("Produced by:", "", "```sh", meta.command, "```", "");
  lines.push(
    `Preset \`${meta.preset}\`, ${agg.steps} training steps per run, seeds per arm: ` +
      arms.map((a) => `${a.arm} ${a.completed} finished of ${a.attempted}`).join(", ") + ".",
    "",
  );

  lines.push(...primaryAndPowerSection(agg));
  lines.push("## Headline", "");
  lines.push(`Primary test, declared before the runs: ${describePrimaryTest(agg.primaryTest)}.`, "");
  if (agg.comparisons.length === 0) lines.push(`No comparison: the baseline arm \`${agg.baseline}\` has no runs.`, "");
  for (const c of agg.comparisons) lines.push(`- **${c.verdict.primary}**`);
  if (agg.comparisons.length) lines.push("", "Secondary results (not the verdict):", "");
  for (const c of agg.comparisons) {
    for (const line of [c.verdict.speedup, ...c.verdict.secondary]) lines.push(`- ${line}`);
  }
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
        const sp = a.arm === agg.baseline ? "1 (baseline)" : speedupCell(c?.speedup);
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
  lines.push(...nullControlsSection(agg));

  lines.push("## Arms", "");
  for (const a of arms) lines.push(`- \`${a.arm}\`: ${meta.armDescriptions[a.arm] ?? "(no description)"}`);
  lines.push("", "## Setup", "");
  lines.push(mdTable(["setting", "value"], meta.setup.map(([k, v]) => [k, v])), "");

  lines.push("## Curves", "");
  lines.push(
    "Mean over finished seeds with a pointwise t-based 95% confidence band, kept inside the range of the quantity " +
      "(see Method). Evaluation runs in eval mode on fixed batches (SparseMixer's training forward is perturbed, " +
      "so training losses are not comparable across arms).",
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
      ["arm", "valid loss [95% CI]", "valid ppl [95% CI]", "OOD loss [95% CI]", "OOD ppl [95% CI]"],
      arms.map((a) => [
        a.arm,
        ci(a.final.validLoss, 4),
        ci(a.final.validPpl, 2),
        ci(a.final.oodLoss, 4),
        ci(a.final.oodPpl, 2),
      ]),
    ),
    "",
  );
  const primaryKey = agg.primaryTest.endpoint === "finalOodLoss" ? "OOD" : "valid";
  const pairedCell = (d: PairedDifference | undefined) =>
    d ? `${diffCell(d, d.n)} (n = ${d.n})${d.unpairedArm.length + d.unpairedBaseline.length ? " †" : ""}` : "—";
  lines.push(
    `Differences against \`${agg.baseline}\` (arm − baseline). The primary test is the paired Δ ${primaryKey}; ` +
      "the rest are secondary. † some seeds finished in one arm only and are not paired.",
    "",
  );
  lines.push(
    mdTable(
      [
        "arm",
        "Δ valid paired by seed [95% CI]",
        "paired p",
        "Δ OOD paired by seed [95% CI]",
        "paired p",
        "Δ valid, Welch [95% CI]",
        "Welch p",
        "Δ OOD, Welch [95% CI]",
        "Welch p",
      ],
      agg.comparisons.map((c) => {
        const a = arms.find((x) => x.arm === c.arm)!;
        const b = arms.find((x) => x.arm === c.baseline)!;
        const nMin = (pick: (x: ArmAggregate) => Summary) => Math.min(pick(a).n, pick(b).n);
        const star = (key: string, text: string) => (key === primaryKey ? `**${text}** (primary)` : text);
        return [
          c.arm,
          star("valid", pairedCell(c.finalValidLossPaired)),
          fmt(c.finalValidLossPaired.p, 3),
          star("OOD", pairedCell(c.finalOodLossPaired)),
          fmt(c.finalOodLossPaired.p, 3),
          diffCell(c.finalValidLoss, nMin((x) => x.final.validLoss)),
          fmt(c.finalValidLoss.p, 3),
          diffCell(c.finalOodLoss, nMin((x) => x.final.oodLoss)),
          fmt(c.finalOodLoss.p, 3),
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
      "seeds of each arm independently (seeds that never reached the target are left out, and counted), given only " +
      `when each arm has at least ${MIN_SEEDS_BOOTSTRAP} such seeds.`,
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
      "since the previous log). The router entropy is that of the full softmax of the router logits for every " +
      "arm (not the estimator's own, possibly masked, distribution), so the arms are compared on one quantity. " +
      "Candidate fraction and samples ≠ argmax exist only for the sampling routers.",
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
      [
        "arm",
        "router entropy (full softmax)",
        "max/mean load",
        "≥2 candidates",
        "sampled ≠ argmax",
        "unused experts",
        "dropped",
      ],
      arms.map((
        a,
      ) => [
        a.arm,
        fmt(lastOf(a.routing?.routerEntropy)),
        fmt(lastOf(a.routing?.loadImbalance)),
        fmt(lastOf(a.routing?.candidateFraction)),
        fmt(lastOf(a.routing?.sampledNeArgmax)),
        fmt(lastOf(a.routing?.unusedExperts), 2),
        fmt(lastOf(a.routing?.droppedFraction)),
      ]),
    ),
    "",
  );

  lines.push(...diagnosticsSection(agg, img));

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
    `- Primary test (declared in the experiment before any run): ${describePrimaryTest(agg.primaryTest)}. ` +
      "The same seed gives every arm the same initial weights and the same batches (common random numbers), so " +
      'the per-seed difference removes that shared noise. "Separates beyond seed noise" means exactly that this ' +
      "interval excludes 0; nothing else changes the verdict.",
  );
  lines.push(
    "- Secondary results: Welch's t (unpaired, unequal variances) on the final losses, the paired OOD difference " +
      "and the speed-up to the target; they are reported, not used for the verdict.",
  );
  lines.push(
    `- Only finished runs count: a run is finished when its final.json says done at step ${agg.steps} and it has ` +
      "a validation evaluation at that step. Runs that stopped early are named at the top and left out of every " +
      "statistic, table and band.",
  );
  lines.push(
    `- Intervals need enough seeds: a t interval at least ${MIN_SEEDS_T}, a bootstrap interval at least ` +
      `${MIN_SEEDS_BOOTSTRAP} per arm (n seeds have only C(2n − 1, n) distinct resamples: 10 for n = 3); with ` +
      'fewer the report says "too few seeds" instead of an interval.',
  );
  lines.push(
    "- Intervals and bands are intersected with the range of their quantity (losses ≥ 0, perplexities ≥ 1, " +
      "fractions in [0, 1], max/mean load in [1, E], router entropy in [0, ln E]): the true mean lies in that " +
      "range, so the intersection keeps the interval's coverage and shows no impossible values.",
  );
  lines.push("- Each arm has one colour in every plot (by its position in the configured arm list).");
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

function pairedJson(d: PairedDifference): SummaryPairedDiff {
  return {
    diff: nanToNull(d.diff),
    lo: nanToNull(d.lo),
    hi: nanToNull(d.hi),
    p: nanToNull(d.p),
    seeds: d.seeds,
    unpaired: { arm: d.unpairedArm, baseline: d.unpairedBaseline },
  };
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
  /** Lower edge of the 95% CI (Welch or paired t, by field). */
  lo: number | null;
  /** Upper edge of the 95% CI. */
  hi: number | null;
  /** Two-sided p-value. */
  p: number | null;
}

/** A paired-by-seed difference in `summary.json`. */
export interface SummaryPairedDiff extends SummaryDiff {
  /** The paired seeds. */
  seeds: number[];
  /** Seeds finished in the arm only / in the baseline only (left out of the pairing). */
  unpaired: { arm: number[]; baseline: number[] };
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
  /** The declared primary test (`separates` comes from it alone). */
  primaryTest: PrimaryTest;
  /** Runs left out of every statistic because they did not finish. */
  incomplete: IncompleteRun[];
  /** Per arm (statistics over finished runs only). */
  arms: Record<string, {
    seeds: number[];
    completed: number;
    attempted: number;
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
    finalValidLossPairedDiff: SummaryPairedDiff;
    finalOodLossPairedDiff: SummaryPairedDiff;
    /** The primary test's result (one of the paired differences). */
    primary: SummaryPairedDiff;
    speedup: { ratio: number | null; lo: number | null; hi: number | null; seedsReached: [number, number] } | null;
    /** Whether the primary test separates the arms. */
    separates: boolean;
    /** The primary verdict sentence. */
    verdict: string;
    /** The secondary results' sentences (speed-up, Welch). */
    secondary: string[];
  }[];
  /** Whether any learned arm separates from the baseline in the primary test. */
  separates: boolean;
  /** The null-control arms that ran. */
  controlArms: string[];
  /** Every learned arm against every null control (learned − control, primary metric, paired by seed). */
  nullControls: (SummaryPairedDiff & { learned: string; control: string; n: number; outcome: string })[];
  /** Whether learned routing beats the null controls, in one sentence. */
  nullControlsVerdict: string;
  /** Power of each comparison with the baseline (α = 0.05, power 0.8; NaN → null). */
  power: {
    arm: string;
    n: number;
    sd: number | null;
    minDetectable: number | null;
    seedsForReference: (number | null)[];
    seedsForClaim: number | null;
  }[];
  /** The paper's claimed effect in nats of the primary metric (nats null: not translatable), and how it was obtained. */
  claimedEffect: { nats: number | null; rule: string } | null;
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
    primaryTest: agg.primaryTest,
    incomplete: agg.incomplete,
    arms: Object.fromEntries(agg.arms.map((a) => [a.arm, {
      seeds: a.seeds,
      completed: a.completed,
      attempted: a.attempted,
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
      finalValidLossPairedDiff: pairedJson(c.finalValidLossPaired),
      finalOodLossPairedDiff: pairedJson(c.finalOodLossPaired),
      primary: pairedJson(c.primary),
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
      verdict: c.verdict.primary,
      secondary: [c.verdict.speedup, ...c.verdict.secondary],
    })),
    separates: agg.comparisons.some((c) => c.verdict.separates),
    controlArms: agg.controlArms,
    nullControls: agg.controls.map((c) => ({
      learned: c.learned,
      control: c.control,
      n: c.paired.n,
      outcome: controlOutcome(c),
      ...pairedJson(c.paired),
    })),
    nullControlsVerdict: controlsSummary(agg.controls, agg.controlArms),
    power: agg.power.map((p) => ({
      arm: p.arm,
      n: p.n,
      sd: nanToNull(p.sd),
      minDetectable: nanToNull(p.minDetectable),
      seedsForReference: p.seedsForReference.map(nanToNull), // Infinity (beyond the search) → null too
      seedsForClaim: p.seedsForClaim === null ? null : nanToNull(p.seedsForClaim),
    })),
    claimedEffect: agg.claimedEffect && { nats: nanToNull(agg.claimedEffect.nats), rule: agg.claimedEffect.rule },
  };
}
