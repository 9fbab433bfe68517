/**
 * The report of `exp:routing-recovery`: `report.md`, `plots/*.svg`, `summary.json` and `metrics.jsonl` (the
 * finished runs' records, in canonical order), all pure functions of the aggregate, so rebuilding from the same
 * run files gives the same bytes (timings are kept out: they are in `timing.json` and the run files).
 *
 * The report states the primary test and its power BEFORE any result; runs that did not finish are named at the
 * top and are in no number.
 *
 * @module
 */
import { lineChart, type LineSeries, PALETTE } from "../common/svg.ts";
import { fmt, mdImage, mdTable } from "../common/markdown.ts";
import { controlOutcome, controlSentence, controlsSummary } from "../common/control_verdicts.ts";
import { estimatorNames, type PrimaryMetric, type RoutingRecoveryConfig } from "./config.ts";
import {
  type Aggregate,
  type ArmSummary,
  type CellSummary,
  type Comparison,
  type Interval,
  metricScale,
  type PairedDiff,
} from "./aggregate.ts";

/** A file of the report (path relative to the output folder). */
export interface ReportFile {
  /** Relative path. */
  path: string;
  /** Content. */
  text: string;
}

const METRIC_WORDS: Record<PrimaryMetric, string> = {
  nmi: "final normalised mutual information I(cluster; expert) / min(H(cluster), ln E) on the held-out set",
  accuracy: "final best-assignment accuracy on the held-out set",
  heldLoss: "final held-out MSE",
  nmiArgmax: "final normalised MI of the argmax of the router probabilities on the held-out set (secondary recovery)",
  accuracyArgmax: "final best-assignment accuracy of the argmax of the router probabilities (secondary recovery)",
};

function ci(x: Interval, digits = 3): string {
  if (!Number.isFinite(x.lo)) return fmt(x.mean, digits);
  return `${fmt(x.mean, digits)} [${fmt(x.lo, digits)}, ${fmt(x.hi, digits)}]`;
}

function diffText(d: PairedDiff): string {
  if (d.n < 2) return `${fmt(d.diff)} (n = ${d.n})`;
  const sign = (v: number) => (v > 0 ? "+" : "") + fmt(v);
  return `${sign(d.diff)} [${sign(d.lo)}, ${sign(d.hi)}]`;
}

function pText(p: number): string {
  return !Number.isFinite(p) ? "—" : p < 1e-4 ? "< 1e-4" : fmt(p, 2);
}

/** The primary test's outcome for one arm, in words (Holm-adjusted, α = 0.05). */
function verdict(x: Comparison, metric: PrimaryMetric): string {
  const d = x.diffs[metric];
  if (!Number.isFinite(x.holmP)) return "no test (too few pairs)";
  if (x.holmP >= 0.05) return `no difference detected (MDD ${fmt(x.mdd)})`;
  const better = metric === "heldLoss" ? d.diff < 0 : d.diff > 0;
  return better ? "better than the baseline" : "worse than the baseline";
}

/** One colour per arm, by its position among the config's arms, so an arm looks the same in every plot. */
function colorOf(config: RoutingRecoveryConfig): (arm: string) => string {
  const names = [...estimatorNames(config.estimators), ...config.extraArms];
  return (arm) => PALETTE[Math.max(0, names.indexOf(arm)) % PALETTE.length];
}

function armLabel(a: ArmSummary, cell: CellSummary): string {
  const k = a.k === cell.cell.experts && a.k > 1 ? " (dense)" : a.k > 1 ? ` (top-${a.k})` : "";
  const role = a.role === "control" ? " [control]" : a.role === "reference" ? " [reference]" : "";
  return `${a.arm}${k}${role}`;
}

function cellTitle(c: CellSummary): string {
  const { experts: e, clustersPerExpert: m, noise, k } = c.cell;
  return `E = ${e}, C = ${m * e} clusters (m = ${m}), σ = ${noise}, k = ${k}`;
}

function setup(config: RoutingRecoveryConfig): string[] {
  const c = config;
  return [
    "## Setup",
    "",
    mdTable(["", ""], [
      [
        "task",
        `x ∈ R^${c.dim} from C = m·E clusters (means ~ N(0, I), input noise σ), target y = A_c x` +
        (c.targetNoise > 0 ? ` + ${c.targetNoise}·η` : "") + " with a random linear map A_c per cluster " +
        "(N(0, 1/d) entries); a fresh batch every step; the task, held-out set and batches depend on the seed only",
      ],
      [
        "model",
        `one MoELayer, ŷ = MoE(x) (no projections): ${c.model.expert} experts` +
        (c.model.expert === "ffn" ? ` (hidden ${c.model.hidden})` : "") + `, balance loss α = ${c.model.balanceCoef}` +
        ' ("topk" form); the same initial weights for every arm of a seed',
      ],
      [
        "training",
        `${c.steps} steps of ${c.batchSize} samples, AdamW lr ${c.optim.lr} (constant), weight decay ` +
        `${c.optim.weightDecay}, MSE loss`,
      ],
      [
        "evaluation",
        `every ${c.evalEvery} steps on ${c.heldOut} fixed held-out samples, eval mode: MSE and two recoveries. ` +
        "**Primary** (NMI, accuracy): each sample's expert = the one with the largest gate of the routing the " +
        "layer uses (the dense estimators sample in evaluation too, so theirs includes that sampling: near chance " +
        "at step 0). **Secondary** (argmax p): each sample's expert = the argmax of the router's probabilities, " +
        "what the router learned, free of sampling (for `random`, `hash` and `oracle`, whose routing ignores the " +
        "router, the same as the primary). Target loss " + `${c.targetLoss}`,
      ],
      [
        "arms",
        "learned: every registered estimator whose router trains; null controls [control] — `random` (uniform " +
        "experts redrawn every forward), `hash` (Hash Layers on each sample's id, uniform and independent of the " +
        "cluster: a fixed random assignment), `frozen` (the cell's baseline with its router frozen at init); " +
        "reference — `oracle` (`hash` keyed on the true cluster: cluster c → expert c mod E from step 0; recovery " +
        "1 by construction, not a control). Arms missing from a run: not in the config (`estimators`, " +
        `\`extraArms\` = ${JSON.stringify(c.extraArms)}) or left out below`,
      ],
      ["seeds", `${c.seeds} per arm (0…${c.seeds - 1}), paired across arms`],
    ]),
    "Recovery metrics (see `experiments/routing_recovery/recovery.ts`): **MI** = plug-in I(cluster; expert) in nats; " +
    "**NMI** = MI / min(H(cluster), ln E) (1 = the best any routing into E experts can do); **accuracy** = the " +
    "fraction of samples routed to their cluster's expert under the best assignment giving each expert at most " +
    "⌈C/E⌉ clusters (Hungarian algorithm); **purity** = each cluster mapped to its majority expert, no cap (does " +
    "not penalise collapse). Chance: NMI ≈ 0 (plug-in bias ≈ (C−1)(E−1)/(2N) nats), accuracy ≈ 1/E for C = E.",
    "",
  ];
}

function primarySection(config: RoutingRecoveryConfig): string[] {
  const { metric, baseline, effect } = config.primary;
  return [
    "## Primary test (declared in the preset, before the run)",
    "",
    `- **Metric:** ${METRIC_WORDS[metric]} (\`${metric}\`).`,
    `- **Baseline arm:** \`${baseline}\`; every other arm is compared with it in each cell` +
    (baseline.includes(",") ? " (a fallback list: a cell's baseline is the first of these that runs in it)." : "."),
    "- **Test:** paired two-sided Student-t test over seeds (arm − baseline on the same seed: same task, initial " +
    "weights, batches), α = 0.05, 95% t interval; Holm-adjusted p over the arms of a cell beside the raw p.",
    `- **Effect size asked about:** δ = ${effect} (${metric} units), declared in the preset (not from a paper).`,
    "",
  ];
}

function powerSection(agg: Aggregate, config: RoutingRecoveryConfig): string[] {
  const { metric, effect } = config.primary;
  const md = [
    "## Power of the primary test",
    "",
    `Minimum detectable difference (MDD): the smallest true difference in \`${metric}\` the paired t-test detects ` +
    "with power 0.8 at α = 0.05 (exact, noncentral t; `experiments/common/power.ts`), given the number of paired " +
    `seeds and the SD of the per-seed differences observed here; and the seeds needed to detect δ = ${effect} with ` +
    "that SD. The SDs are estimated from these few seeds, so these numbers are themselves uncertain.",
    "",
  ];
  for (const c of agg.cells) {
    if (!c.comparisons.length) continue;
    md.push(`**${cellTitle(c)}** (baseline \`${c.baseline}\`)`, "");
    md.push(mdTable(
      ["arm", "pairs", "SD of differences", "MDD (power 0.8)", `seeds for δ = ${effect}`],
      c.comparisons.map((x) => [
        x.arm,
        x.diffs[metric].n,
        fmt(x.diffs[metric].sd),
        fmt(x.mdd),
        x.seedsForEffect === null ? "—" : x.seedsForEffect,
      ]),
    ));
  }
  return md;
}

function incompleteSection(agg: Aggregate): string[] {
  const failed = Object.keys(agg.failed);
  if (!failed.length && !agg.missing.length) return [];
  const md = [
    `> **Incomplete:** ${agg.records.length} of ${agg.planned} runs finished. The runs below are in no number of ` +
    "this report; arms with fewer seeds are compared over the seeds both arms finished.",
    "",
  ];
  if (failed.length) {
    md.push("Failed runs:", "", ...failed.map((id) => `- \`${id}\`: ${agg.failed[id].split("\n")[0]}`), "");
  }
  if (agg.missing.length) {
    md.push(
      `Missing runs (no result file; continue with \`--resume\`, or run their shards): ${agg.missing.length}`,
      "",
      ...agg.missing.slice(0, 50).map((id) => `- \`${id}\``),
      ...(agg.missing.length > 50 ? [`- … and ${agg.missing.length - 50} more`] : []),
      "",
    );
  }
  return md;
}

function cellSection(
  c: CellSummary,
  index: number,
  config: RoutingRecoveryConfig,
  files: ReportFile[],
): string[] {
  const color = colorOf(config);
  const { metric } = config.primary;
  const baseline = c.baseline;
  const md = [`### ${cellTitle(c)}`, ""];
  // The share of held-out samples routed to no expert, shown only when some arm has any.
  const unrouted = c.arms.some((a) => a.final.unrouted.mean > 0);
  md.push(mdTable(
    [
      "arm",
      "seeds",
      "held-out loss",
      "NMI",
      "accuracy",
      "NMI (argmax p)",
      "accuracy (argmax p)",
      "MI (nats)",
      "purity",
      `steps to ${config.targetLoss}`,
      ...(unrouted ? ["unrouted"] : []),
    ],
    c.arms.map((a) => [
      armLabel(a, c),
      a.seeds.length,
      ci(a.final.heldLoss),
      ci(a.final.nmi),
      ci(a.final.accuracy),
      ci(a.final.nmiArgmax),
      ci(a.final.accuracyArgmax),
      ci(a.final.mi),
      fmt(a.final.purity.mean),
      a.toTarget.reached ? `${ci(a.toTarget.steps, 0)} (${a.toTarget.reached}/${a.seeds.length})` : "never",
      ...(unrouted ? [fmt(a.final.unrouted.mean)] : []),
    ]),
  ));
  md.push(
    "Means with 95% t intervals across seeds; NMI and accuracy: primary recovery (the routing used); argmax p: " +
      "secondary (the router's most probable expert); steps to target: mean over the seeds that reached it (how " +
      "many).",
    "",
  );
  if (baseline === null) {
    md.push(`No baseline arm (\`${config.primary.baseline}\`) runs in this cell: no comparisons.`, "");
  } else if (!c.comparisons.length) {
    md.push(`The baseline \`${baseline}\` has no finished run here: no comparisons.`, "");
  } else {
    md.push(
      `Paired differences learned arm − \`${baseline}\` (95% t interval, two-sided p; primary: \`${metric}\`):`,
      "",
    );
    md.push(mdTable(
      [
        "arm",
        "pairs",
        "Δ NMI",
        "p",
        "Δ NMI (argmax p)",
        "p",
        "Δ accuracy",
        "p",
        "Δ held-out loss",
        "p",
        `Holm p (${metric})`,
        "verdict",
      ],
      c.comparisons.map((x) => [
        x.arm,
        x.diffs[metric].n,
        diffText(x.diffs.nmi),
        pText(x.diffs.nmi.p),
        diffText(x.diffs.nmiArgmax),
        pText(x.diffs.nmiArgmax.p),
        diffText(x.diffs.accuracy),
        pText(x.diffs.accuracy.p),
        diffText(x.diffs.heldLoss),
        pText(x.diffs.heldLoss.p),
        pText(x.holmP),
        verdict(x, metric),
      ]),
    ));
  }
  const series = (key: "heldLoss" | "nmi" | "nmiArgmax"): LineSeries[] =>
    c.arms.map((a) => ({
      label: armLabel(a, c),
      color: color(a.arm),
      x: a.curve.step,
      y: a.curve[key],
      dashed: a.k > 1,
    }));
  const lossPath = `plots/loss_${index + 1}.svg`;
  const recPath = `plots/recovery_${index + 1}.svg`;
  const argmaxPath = `plots/recovery_argmax_${index + 1}.svg`;
  files.push({
    path: lossPath,
    text: lineChart({
      title: `Held-out loss — ${cellTitle(c)}`,
      xLabel: "step",
      yLabel: "held-out MSE (mean over seeds)",
      series: series("heldLoss"),
      logY: true,
      hlines: [{ y: config.targetLoss, label: "target" }],
    }),
  });
  files.push({
    path: recPath,
    text: lineChart({
      title: `Routing recovery — ${cellTitle(c)}`,
      xLabel: "step",
      yLabel: "normalised MI (mean over seeds)",
      series: series("nmi"),
    }),
  });
  files.push({
    path: argmaxPath,
    text: lineChart({
      title: `Routing recovery, argmax of the router probabilities — ${cellTitle(c)}`,
      xLabel: "step",
      yLabel: "normalised MI (mean over seeds)",
      series: series("nmiArgmax"),
    }),
  });
  md.push(
    mdImage("held-out loss over steps", lossPath),
    "",
    mdImage("NMI over steps (primary recovery)", recPath),
    "",
    mdImage("NMI of the argmax of the router probabilities over steps (secondary)", argmaxPath),
    "",
  );
  return md;
}

/** Whether the learned routers beat the null controls, per cell (see `experiments/common/control_verdicts.ts`). */
function controlsSection(agg: Aggregate, config: RoutingRecoveryConfig): string[] {
  const { metric } = config.primary;
  const scale = metricScale(metric);
  const md = [
    "## Null controls",
    "",
    `Every learned arm against every null control on the primary metric (\`${metric}\`), learned − control paired ` +
    `by seed, finished runs only (${scale.better} is better: "beats" means the 95% interval lies entirely on that ` +
    "side of 0). If the learned routers do not beat the controls, a difference between learned routers here says " +
    "little about routing.",
    "",
  ];
  for (const c of agg.cells) {
    md.push(`**${cellTitle(c)}**: ${controlsSummary(c.controls, c.controlArms, scale)}`, "");
    if (!c.controls.length) continue;
    md.push(mdTable(
      ["learned", "control", `Δ ${metric} [95% CI]`, "p", "pairs", "outcome"],
      c.controls.map((x) => [
        x.learned,
        x.control,
        diffText(x.paired),
        pText(x.paired.p),
        x.paired.n,
        controlOutcome(x, scale),
      ]),
    ));
    md.push(...c.controls.map((x) => `- ${controlSentence(x, scale)}`), "");
  }
  return md;
}

/** The primary metric's mean per cell (rows) and arm (columns), for a grid of several cells. */
function overview(agg: Aggregate, config: RoutingRecoveryConfig): string[] {
  const { metric } = config.primary;
  const arms = [...new Set(agg.cells.flatMap((c) => c.arms.map((a) => a.arm)))];
  return [
    `### Overview: final \`${metric}\` (mean over seeds) by cell`,
    "",
    "Cells are E·m·σ·k (E experts, m clusters per expert, input noise σ, k experts per token); — : not run there.",
    "",
    mdTable(
      ["cell", ...arms],
      agg.cells.map((c) => [
        c.cell.id,
        ...arms.map((arm) => {
          const a = c.arms.find((x) => x.arm === arm);
          return a ? fmt(a.final[metric].mean) : null;
        }),
      ]),
    ),
  ];
}

/** Every report file (see the module docs). */
export function buildReport(config: RoutingRecoveryConfig, agg: Aggregate, preset: string): ReportFile[] {
  const files: ReportFile[] = [];
  const md = [
    `# Routing recovery (preset \`${preset}\`)`,
    "",
    "Which routers learn the known optimal routing? Inputs come from latent clusters, each with its own linear " +
    "target, so low loss needs each cluster routed to an expert of its own. Every registered estimator the layer " +
    "can train with is an arm, beside null controls (routing that ignores what the router learns) and an oracle " +
    "reference; the report gives loss, routing recovery against the true clusters and steps to a target loss, " +
    "with paired comparisons against the baseline and against the controls.",
    "",
    ...incompleteSection(agg),
    ...primarySection(config),
    ...powerSection(agg, config),
    ...setup(config),
  ];
  if (agg.skipped.length) {
    // One line per (estimator, reason), with the cells it applies to.
    const groups = new Map<string, { arm: string; reason: string; cells: string[] }>();
    for (const s of agg.skipped) {
      const key = `${s.arm}\u0000${s.reason}`;
      if (!groups.has(key)) groups.set(key, { arm: s.arm, reason: s.reason, cells: [] });
      groups.get(key)!.cells.push(s.cell);
    }
    md.push("Registered estimators left out:", "");
    for (const g of groups.values()) md.push(`- \`${g.arm}\`: ${g.reason} (${g.cells.join(", ")})`);
    md.push("");
  }
  md.push(...controlsSection(agg, config));
  md.push("## Results", "");
  if (agg.cells.length > 1) md.push(...overview(agg, config));
  agg.cells.forEach((c, i) => md.push(...cellSection(c, i, config, files)));
  md.push(
    "Per-run curves and final values: `metrics.jsonl` (one line per finished run); this report's numbers: " +
      "`summary.json`.",
    "",
  );
  files.push({ path: "report.md", text: md.join("\n") });
  const strip = ({ curve: _curve, ...rest }: ArmSummary) => rest;
  files.push({
    path: "summary.json",
    text: JSON.stringify(
      {
        experiment: "routing-recovery",
        preset,
        primary: { ...config.primary, test: "paired two-sided t by seed", alpha: 0.05, power: 0.8 },
        runs: { planned: agg.planned, finished: agg.records.length, missing: agg.missing, failed: agg.failed },
        skipped: agg.skipped,
        cells: agg.cells.map((c) => ({
          cell: c.cell,
          arms: c.arms.map(strip),
          comparisons: c.comparisons,
          controls: c.controls.map((x) => ({ ...x, outcome: controlOutcome(x, metricScale(config.primary.metric)) })),
          controlsVerdict: controlsSummary(c.controls, c.controlArms, metricScale(config.primary.metric)),
        })),
      },
      null,
      2,
    ) + "\n",
  });
  files.push({
    path: "metrics.jsonl",
    text: agg.records.map((r) => JSON.stringify({ ...r, seconds: undefined }) + "\n").join(""),
  });
  return files;
}
