/**
 * The LM report's sections on whether a comparison can mean anything (issue 15): the declared primary test with
 * its power (before any result), the null controls, and the routing diagnostics with their plots (MaxVio, load
 * CV, MI(token id; expert), router saturation, and a per-layer expert-load heatmap). `report.ts` places them.
 *
 * @module
 */
import { fmt, mdTable } from "../common/markdown.ts";
import { lineChart, type LineSeries } from "../common/svg.ts";
import { heatmap } from "../common/svg_heatmap.ts";
import type { Aggregate, ArmAggregate, Band } from "./aggregate.ts";
import { MAX_SEEDS_SEARCHED, POWER_ALPHA, POWER_TARGET, REFERENCE_EFFECTS } from "./aggregate_controls.ts";
import { controlOutcome, controlSentence, controlsSummary } from "../common/control_verdicts.ts";
import { describePrimaryTest } from "./verdicts.ts";

const seeds = (n: number) => (n === Infinity ? `> ${MAX_SEEDS_SEARCHED}` : Number.isFinite(n) ? String(n) : "—");

/** "## Primary test and power": the declared test, then what its seeds could detect. */
export function primaryAndPowerSection(agg: Aggregate): string[] {
  const lines = ["## Primary test (declared before the runs) and power", ""];
  lines.push(
    `- Metric: ${describePrimaryTest(agg.primaryTest)}.`,
    `- Baseline: \`${agg.baseline}\`; compared arms: ${
      agg.arms.filter((a) => a.arm !== agg.baseline && !agg.controlArms.includes(a.arm)).map((a) => `\`${a.arm}\``)
        .join(", ") || "none"
    }; null controls (their own section): ${agg.controlArms.map((a) => `\`${a}\``).join(", ") || "none"}.`,
    `- Power: the minimum paired difference the finished seeds could detect (two-sided α = ${POWER_ALPHA}, power ` +
      `${POWER_TARGET}, from the observed SD of the per-seed differences; exact power of the paired t-test, ` +
      "noncentral t: `experiments/common/power.ts`), and the seeds it would take to detect a given effect. The SD " +
      "comes from the same few seeds, so these are rough.",
    "",
  );
  if (agg.claimedEffect) {
    lines.push(
      `The paper's claimed effect in this metric: **${fmt(agg.claimedEffect.nats, 4)} nats** — ` +
        `${agg.claimedEffect.rule}.`,
      "",
    );
  } else {
    lines.push("The paper gives no number that translates into this metric, so only reference effects are listed.", "");
  }
  if (agg.power.length === 0) return [...lines, "No compared arm: no power to state.", ""];
  lines.push(
    mdTable(
      [
        "arm",
        "seeds paired",
        "SD of per-seed Δ",
        "minimum detectable Δ",
        ...REFERENCE_EFFECTS.map((e) => `seeds for ${e} nats`),
        "seeds for the claimed effect",
      ],
      agg.power.map((p) => [
        p.arm,
        String(p.n),
        fmt(p.sd, 4),
        fmt(p.minDetectable, 4),
        ...p.seedsForReference.map(seeds),
        p.seedsForClaim === null ? "—" : seeds(p.seedsForClaim),
      ]),
    ),
    "",
  );
  return lines;
}

/** "## Null controls": every learned arm against every control, and whether learned routing beats them. */
export function nullControlsSection(agg: Aggregate): string[] {
  const lines = ["## Null controls", ""];
  lines.push(
    "Routing that ignores what the router learns (ESTIMATORS.md §12): `random` (uniformly random experts redrawn " +
      "every step), `hash` (a fixed hash of the token id, Hash Layers), `frozen` (the baseline with its router " +
      "frozen at init). Learned − control on the primary metric, paired by seed, finished runs only (below 0: the " +
      "learned router ends lower).",
    "",
    `**${controlsSummary(agg.controls, agg.controlArms)}**`,
    "",
  );
  if (agg.controls.length === 0) return lines;
  lines.push(
    mdTable(
      ["learned", "control", "Δ paired by seed [95% CI]", "p", "n", "verdict"],
      agg.controls.map((c) => {
        const d = c.paired;
        const interval = Number.isFinite(d.lo)
          ? `${fmt(d.diff, 4)} [${fmt(d.lo, 4)}, ${fmt(d.hi, 4)}]`
          : fmt(d.diff, 4);
        return [c.learned, c.control, interval, fmt(d.p, 3), String(d.n), controlOutcome(c)];
      }),
    ),
    "",
  );
  for (const c of agg.controls) lines.push(`- ${controlSentence(c)}`);
  lines.push("");
  return lines;
}

function finite(b: Band | undefined): { x: number[]; y: number[]; lo: number[]; hi: number[] } {
  const keep = (b?.steps ?? []).map((_, i) => Number.isFinite(b!.mean[i]));
  const pick = (xs: number[]) => xs.filter((_, i) => keep[i]);
  return b ? { x: pick(b.steps), y: pick(b.mean), lo: pick(b.lo), hi: pick(b.hi) } : { x: [], y: [], lo: [], hi: [] };
}

/** The diagnostics' SVG plots by file name (none for quantities no run logged). */
export function diagnosticsPlots(agg: Aggregate, colors: Map<string, string>): Record<string, string> {
  const plots: Record<string, string> = {};
  const line = (file: string, title: string, yLabel: string, pick: (a: ArmAggregate) => Band | undefined) => {
    const series: LineSeries[] = agg.arms.map((a) => ({ label: a.arm, color: colors.get(a.arm), ...finite(pick(a)) }))
      .filter((s) => s.x.length > 0);
    if (series.length) plots[file] = lineChart({ title, xLabel: "training step", yLabel, series });
  };
  line(
    "routing_maxvio.svg",
    "MaxVio per batch (max / mean expert load − 1)",
    "MaxVio (0 = balanced)",
    (a) => a.diagnostics?.maxVio,
  );
  line(
    "routing_load_cv.svg",
    "Load coefficient of variation per batch",
    "SD / mean of the loads",
    (a) => a.diagnostics?.loadCv,
  );
  line("routing_mi.svg", "MI(token id; expert), Miller–Madow corrected, eval mode", "nats", (a) => a.diagnostics?.mi);
  line(
    "routing_saturation.svg",
    "Router saturation: agreement with the final routing",
    "fraction",
    (a) => a.diagnostics?.saturation,
  );
  for (const layer of heatmapLayers(agg)) {
    const panels = agg.arms.flatMap((a) => {
      const h = a.diagnostics?.heatmaps.find((x) => x.layer === layer);
      return h && h.steps.length ? [{ label: a.arm, columns: h.steps, rows: h.load }] : [];
    });
    if (!panels.length) continue;
    plots[heatmapFile(layer)] = heatmap({
      title: `Expert load over training, MoE layer ${layer} (mean over seeds)`,
      xLabel: "training step",
      rowLabel: "expert",
      panels,
      min: 0,
    });
  }
  return plots;
}

/** "## Routing diagnostics": the plots written by {@link diagnosticsPlots} and a table at the end of training. */
export function diagnosticsSection(agg: Aggregate, img: (file: string, alt: string) => string): string[] {
  const lines = ["## Routing diagnostics", ""];
  lines.push(
    "Read back only at log and evaluation steps (no GPU sync per step). MaxVio = max / mean expert load − 1 and the " +
      "load CV (SD / mean) per training batch, averaged over each log interval; MaxVio over the run uses the loads " +
      "summed over all steps. MI(token id; expert) is the plug-in estimate on the validation batches in eval mode " +
      "(biased upwards with few tokens per id: the `random` control, whose true MI is 0, shows the floor). " +
      "Saturation: the mean share of a fixed validation batch's token→expert assignments that already match the " +
      "final step's. Layers averaged; mean ± 95% CI over seeds.",
    "",
  );
  for (
    const [f, alt] of [
      ["routing_maxvio.svg", "MaxVio per batch"],
      ["routing_load_cv.svg", "load coefficient of variation"],
      ["routing_mi.svg", "mutual information between token id and expert"],
      ["routing_saturation.svg", "router saturation"],
    ]
  ) {
    const s = img(f, alt);
    if (s) lines.push(s, "");
  }
  const ci = (s: { mean: number; lo: number; hi: number } | undefined, d = 3) =>
    !s || !Number.isFinite(s.mean)
      ? "—"
      : Number.isFinite(s.lo)
      ? `${fmt(s.mean, d)} [${fmt(s.lo, d)}, ${fmt(s.hi, d)}]`
      : fmt(s.mean, d);
  const last = (b: Band | undefined) => (b && b.mean.length ? b.mean[b.mean.length - 1] : null);
  lines.push(
    mdTable(
      [
        "arm",
        "MaxVio over the run [95% CI]",
        "MaxVio per batch (last log)",
        "load CV (last log)",
        "final MI, corrected (nats)",
        "plug-in MI",
        "expert entropy",
      ],
      agg.arms.map((a) => {
        const d = a.diagnostics;
        return [
          a.arm,
          ci(d?.runMaxVio),
          fmt(last(d?.maxVio)),
          fmt(last(d?.loadCv)),
          ci(d?.finalMi),
          ci(d?.finalMiPlugin),
          ci(d?.finalExpertEntropy),
        ];
      }),
    ),
    "",
  );
  const heatmaps = heatmapLayers(agg).map((l) => img(heatmapFile(l), `expert load over training, MoE layer ${l}`))
    .filter(Boolean);
  if (heatmaps.length) {
    lines.push("Expert load over training, per MoE layer (a panel per arm, a row per expert):", "");
    for (const s of heatmaps) lines.push(s, "");
  }
  return lines;
}

/** The MoE layers with a load heatmap in some arm. */
function heatmapLayers(agg: Aggregate): number[] {
  return [...new Set(agg.arms.flatMap((a) => (a.diagnostics?.heatmaps ?? []).map((h) => h.layer)))];
}

const heatmapFile = (layer: number) => `routing_load_heatmap_layer${layer}.svg`;
