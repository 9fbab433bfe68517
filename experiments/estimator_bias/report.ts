/**
 * The report of `exp:estimator-bias`: `report.md` (tables and SVG plots under `plots/`) and `summary.json`,
 * both pure functions of the cell records, so a resumed run rewrites them byte for byte.
 *
 * Aggregation: a row "estimator / K / parameter" averages the cell means over the other grid axes (functions,
 * E, logit scales) — every estimator sees the same problems, so the averages compare like with like.
 *
 * @module
 */
import { barChart, lineChart, type LineSeries, PALETTE } from "../common/svg.ts";
import { fmt, mdImage, mdTable } from "../common/markdown.ts";
import { mean } from "../common/stats.ts";
import type { EstimatorBiasConfig } from "./config.ts";
import type { CellRecord } from "./measure.ts";

/** A file of the report (path relative to the output folder). */
export interface ReportFile {
  /** Relative path. */
  path: string;
  /** Content. */
  text: string;
}

/** One row of the headline table. */
export interface HeadlineRow {
  /** Registry name. */
  estimator: string;
  /** K. */
  k: number;
  /** Swept parameter. */
  param: string;
  /** Its value. */
  value: number | null;
  /** Mean relative bias. */
  relBias: number | null;
  /** Mean noise floor (the relative bias of an unbiased estimator at these draws). */
  noiseFloor: number | null;
  /** relBias / noiseFloor (≈ 1 or below: no bias detectable). */
  biasOverNoise: number | null;
  /** Mean cosine. */
  cosine: number | null;
  /** Mean relative per-draw variance. */
  relVariance: number | null;
  /** Cells averaged. */
  cells: number;
  /** Seeds with a zero true gradient, summed over the cells. */
  degenerate: number;
}

function avg(xs: (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x !== null && Number.isFinite(x));
  return v.length ? mean(v) : null;
}

function label(r: { estimator: string; k: number; param: string; value: number | null }): string {
  const p = r.param === "none" ? "" : ` ${r.param === "eps" ? "ε" : "τ"}=${r.value}`;
  return `${r.estimator}${r.k > 1 ? ` (top-${r.k})` : ""}${p}`;
}

function seriesName(r: { estimator: string; k: number }): string {
  return r.k > 1 ? `${r.estimator} top-${r.k}` : r.estimator;
}

/** Colour of an estimator's series (name + K), fixed across the report's plots. */
export function seriesColors(
  records: readonly { estimator: string; k: number }[],
): (r: { estimator: string; k: number }) => string {
  const names = [...new Set(records.map((r) => seriesName(r)))];
  return (r) => PALETTE[Math.max(0, names.indexOf(seriesName(r))) % PALETTE.length];
}

function groupBy<T>(xs: readonly T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) {
    const k = key(x);
    const list = m.get(k);
    if (list) list.push(x);
    else m.set(k, [x]);
  }
  return m;
}

/** The headline table: one row per estimator / K / parameter value, averaged over f, E and σ. */
export function headlineRows(records: readonly CellRecord[]): HeadlineRow[] {
  const groups = groupBy(records, (r) => `${r.estimator}|${r.k}|${r.param}|${r.value}`);
  return [...groups.values()].map((rs) => {
    const r0 = rs[0];
    const relBias = avg(rs.map((r) => r.relBias.mean));
    const noiseFloor = avg(rs.map((r) => r.noiseFloor));
    return {
      estimator: r0.estimator,
      k: r0.k,
      param: r0.param,
      value: r0.value,
      relBias,
      noiseFloor,
      biasOverNoise: relBias !== null && noiseFloor ? relBias / noiseFloor : null,
      cosine: avg(rs.map((r) => r.cosine.mean)),
      relVariance: avg(rs.map((r) => r.relVariance.mean)),
      cells: rs.length,
      degenerate: rs.reduce((s, r) => s + r.degenerate, 0),
    };
  });
}

/** The grid value closest (in log space) to `target`. */
function closest(values: readonly number[], target: number): number {
  return values.reduce((best, v) =>
    Math.abs(Math.log(Math.max(v, 1e-12) / target)) < Math.abs(Math.log(Math.max(best, 1e-12) / target)) ? v : best
  );
}

/** The reference parameter values used where one value per estimator is shown (ε ≈ 0.1… grid middle, τ ≈ 1). */
export function referenceParams(config: EstimatorBiasConfig): { eps: number; tau: number } {
  const eps = [...config.eps].sort((a, b) => a - b);
  return {
    eps: eps[Math.floor((eps.length - 1) / 2)],
    tau: closest(config.taus.filter((t) => t >= 1).length ? config.taus.filter((t) => t >= 1) : config.taus, 1),
  };
}

function atReference(r: CellRecord, ref: { eps: number; tau: number }): boolean {
  return r.param === "none" || (r.param === "eps" && r.value === ref.eps) || (r.param === "tau" && r.value === ref.tau);
}

const pm = (
  m: number | null,
  se: number | null,
) => (m === null ? "—" : se === null ? fmt(m) : `${fmt(m)} ± ${fmt(se, 2)}`);

/** Builds report.md, the plots and summary.json from the records. */
export function buildReport(config: EstimatorBiasConfig, records: readonly CellRecord[], preset: string): ReportFile[] {
  const files: ReportFile[] = [];
  // One colour per estimator (by its first appearance in the grid, i.e. the config's order) in every plot: the
  // ε plots, τ plots and the variance-vs-bias plot each show a different subset of the estimators.
  const colorOf = seriesColors(records);
  const ref = referenceParams(config);
  const rows = headlineRows(records);
  const functions = [...new Set(records.map((r) => r.f))];
  const es = [...new Set(records.map((r) => r.experts))].sort((a, b) => a - b);
  const md: string[] = [];
  md.push(`# exp:estimator-bias — preset \`${preset}\``, "");
  md.push(
    "How far is each routing estimator's expected gradient from the true gradient of the expected loss it " +
      "trains? For one token (router logits z ~ N(0, σ²) over E experts, expert outputs h_i ~ N(0, I_d), a " +
      "downstream function f), the true gradient g is computed exactly by enumerating the experts " +
      "(`moe/exact_gradient.ts` and `moe/exact_objectives.ts`, f64 autograd), and the " +
      `estimator's gradient is averaged over M = ${config.draws} independent draws, for ${config.seeds} seeds ` +
      "(independent problems); every estimator sees the same problems.",
    "",
    "- **relative bias** ‖E[ĝ] − g‖/‖g‖ with E[ĝ] the mean of the draws (mean ± standard error over seeds);",
    "- **noise floor** √(tr Cov(ĝ)/M)/‖g‖: what an *unbiased* estimator shows from Monte-Carlo error alone, so " +
      "**bias/noise ≈ 1 means no detectable bias**; well above 1, the bias is real;",
    "- **cosine** cos(E[ĝ], g); **variance** tr Cov(ĝ)/‖g‖², per draw.",
    "",
    "Objectives (the expected loss of what each estimator's forward pass routes; masks held fixed at z; v2's " +
      "forward scale m is not part of it, as its router gradient ignores m): Switch and top-1 `topk` — " +
      "f(p_a h_a), a = argmax z (the no-jitter loss; Switch's jitter ε only adds noise and bias to it); top-2 " +
      "`topk` — f of the renormalised top-2 mixture; SparseMixer v1 variants and v2 — Σ π_i f(π_i h_i) with π " +
      "the ε-masked softmax (v2* at temperature 2); v2/v2* top-2 — the same over ordered pairs sampled without " +
      "replacement; straight-through, st-gumbel, reinmax — Σ π_i f(h_i), π = softmax(z) (their forward value " +
      "is one_hot(D)). Downstream functions: `linear` wᵀv; `quadratic` ½vᵀAv + wᵀv (A symmetric, indefinite); " +
      "`tanh` cᵀ tanh(Uv + b).",
    "",
    `Grid: functions ${functions.join(", ")}; E ∈ {${es.join(", ")}}; σ ∈ {${config.logitScales.join(", ")}}; ` +
      `ε ∈ {${config.eps.join(", ")}}; τ ∈ {${config.taus.join(", ")}}; d = ${config.dim}; ${records.length} cells. ` +
      "A seed whose true gradient is zero (the ε-mask kept a single expert, so nothing depends on z) is " +
      "*degenerate* and left out of the relative metrics.",
    "",
  );
  md.push("## Headline: every estimator, averaged over functions, E and σ", "");
  md.push(
    mdTable(
      ["estimator", "rel. bias", "noise floor", "bias/noise", "cosine", "variance", "cells", "degenerate seeds"],
      rows.map((
        r,
      ) => [label(r), r.relBias, r.noiseFloor, r.biasOverNoise, r.cosine, r.relVariance, r.cells, r.degenerate]),
    ),
  );

  // Plots: bias vs ε / τ per function.
  const plots: { title: string; path: string }[] = [];
  for (const f of functions) {
    for (const param of ["eps", "tau"] as const) {
      const rs = records.filter((r) => r.f === f && r.param === param);
      if (rs.length === 0) continue;
      const series: LineSeries[] = [];
      for (const [, group] of groupBy(rs, (r) => `${r.estimator}|${r.k}`)) {
        const byValue = groupBy(group, (r) => String(r.value));
        const xs = [...byValue.keys()].map(Number).sort((a, b) => a - b);
        series.push({
          label: seriesName(group[0]),
          color: colorOf(group[0]),
          x: xs,
          y: xs.map((x) => avg(byValue.get(String(x))!.map((r) => r.relBias.mean)) ?? NaN),
          dashed: group[0].k > 1,
        });
      }
      const path = `plots/bias_vs_${param}_${f}.svg`;
      files.push({
        path,
        text: lineChart({
          title: `Relative bias vs ${param === "eps" ? "ε" : "temperature τ"} — f = ${f} (mean over E, σ)`,
          xLabel: param === "eps" ? "ε (mask width / Switch jitter)" : "τ",
          yLabel: "‖E[ĝ] − g‖ / ‖g‖",
          series,
          logX: true,
          logY: true,
        }),
      });
      plots.push({ title: `bias vs ${param === "eps" ? "ε" : "τ"}, f = ${f}`, path });
    }
  }
  // Bias by estimator per f (reference parameters), with standard errors over seeds (pooled over E, σ).
  const refRecords = records.filter((r) => atReference(r, ref));
  const cats = [...new Set(refRecords.map((r) => seriesName(r)))];
  files.push({
    path: "plots/bias_by_estimator.svg",
    text: barChart({
      title: `Relative bias by estimator (ε = ${ref.eps}, τ = ${ref.tau}; mean over E, σ)`,
      yLabel: "‖E[ĝ] − g‖ / ‖g‖",
      categories: cats,
      groups: functions.map((f) => {
        const per = cats.map((c) => refRecords.filter((r) => r.f === f && seriesName(r) === c));
        const values = per.map((rs) => avg(rs.map((r) => r.relBias.mean)) ?? NaN);
        const se = per.map((rs) => avg(rs.map((r) => r.relBias.se)) ?? 0);
        // ± one standard error, cut at 0: a relative bias (a norm ratio) is never negative.
        return {
          label: f,
          values,
          lo: values.map((v, i) => Math.max(0, v - se[i])),
          hi: values.map((v, i) => v + se[i]),
        };
      }),
      logY: true,
    }),
  });
  plots.push({ title: "bias by estimator and function", path: "plots/bias_by_estimator.svg" });
  // Variance vs bias: one curve per estimator, tracing its parameter sweep.
  const vb: LineSeries[] = [];
  for (const [, group] of groupBy(rows, (r) => `${r.estimator}|${r.k}`)) {
    const g = group.filter((r) => r.relBias !== null && r.relVariance !== null)
      .sort((a, b) => (a.value ?? 0) - (b.value ?? 0));
    vb.push({
      label: seriesName(group[0]),
      color: colorOf(group[0]),
      x: g.map((r) => r.relVariance!),
      y: g.map((r) => r.relBias!),
      dashed: group[0].k > 1,
    });
  }
  files.push({
    path: "plots/variance_vs_bias.svg",
    text: lineChart({
      title: "Variance vs bias (each curve: one estimator's ε / τ sweep, mean over f, E, σ)",
      xLabel: "per-draw variance tr Cov(ĝ) / ‖g‖²",
      yLabel: "relative bias",
      series: vb,
      logX: true,
      logY: true,
    }),
  });
  plots.push({ title: "variance vs bias", path: "plots/variance_vs_bias.svg" });
  // Bias vs E at the reference parameters.
  if (es.length > 1) {
    for (const f of functions) {
      const rs = refRecords.filter((r) => r.f === f);
      const series: LineSeries[] = [];
      for (const [, group] of groupBy(rs, (r) => seriesName(r))) {
        series.push({
          label: seriesName(group[0]),
          color: colorOf(group[0]),
          x: es,
          y: es.map((e) => avg(group.filter((r) => r.experts === e).map((r) => r.relBias.mean)) ?? NaN),
          dashed: group[0].k > 1,
        });
      }
      const path = `plots/bias_vs_E_${f}.svg`;
      files.push({
        path,
        text: lineChart({
          title: `Relative bias vs E — f = ${f} (ε = ${ref.eps}, τ = ${ref.tau})`,
          xLabel: "number of experts E",
          yLabel: "relative bias",
          series,
          logX: true,
          logY: true,
        }),
      });
      plots.push({ title: `bias vs E, f = ${f}`, path });
    }
  }

  md.push("## Plots", "");
  for (const p of plots) md.push(`### ${p.title}`, "", mdImage(p.title, p.path), "");

  md.push(`## Per function: relative bias (± s.e. over seeds) by E, at ε = ${ref.eps}, τ = ${ref.tau}`, "");
  for (const f of functions) {
    md.push(`### f = ${f}`, "");
    const rs = refRecords.filter((r) => r.f === f);
    const keys = [...new Set(rs.map((r) => label(r)))];
    const scales = [...new Set(rs.map((r) => r.scale))];
    const headers = [
      "estimator",
      ...es.flatMap((e) => scales.map((s) => (scales.length > 1 ? `E=${e} σ=${s}` : `E=${e}`))),
    ];
    md.push(
      mdTable(
        headers,
        keys.map((key) => [
          key,
          ...es.flatMap((e) =>
            scales.map((s) => {
              const r = rs.find((x) => label(x) === key && x.experts === e && x.scale === s);
              return r ? pm(r.relBias.mean, r.relBias.se) : null;
            })
          ),
        ]),
      ),
    );
  }
  md.push("## All cells", "");
  md.push(
    mdTable(
      ["cell", "rel. bias", "± s.e.", "noise floor", "cosine", "variance", "degenerate"],
      records.map((
        r,
      ) => [r.id, r.relBias.mean, r.relBias.se, r.noiseFloor, r.cosine.mean, r.relVariance.mean, r.degenerate]),
    ),
  );
  md.push(
    "Raw per-seed values are in `metrics.jsonl` (one line per cell); `summary.json` holds the headline table.",
    "",
  );
  files.push({ path: "report.md", text: md.join("\n") });
  files.push({
    path: "summary.json",
    text: JSON.stringify(
      {
        experiment: "estimator-bias",
        preset,
        cells: records.length,
        referenceParams: ref,
        headline: rows,
        plots: plots.map((p) => p.path),
      },
      null,
      2,
    ) + "\n",
  });
  return files;
}
