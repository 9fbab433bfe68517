/**
 * The routing diagnostics of an arm's finished runs (`routing_diagnostics.ts` for the definitions): MaxVio per batch
 * and over the run, load CV, MI(token id; expert), router saturation against the final routing, and the expert
 * loads of each MoE layer over training for the heatmaps. Mean ± t-95% CI over seeds, as every other band.
 *
 * @module
 */
import type { ValueRange } from "../common/stats.ts";
import type { RoutingSnapshot } from "./eval_routing.ts";
import { maxVio, routingAgreement, runLoad } from "./routing_diagnostics.ts";
import { type Band, band, type RunData, summarize, type Summary } from "./aggregate.ts";

/** The expert loads of one MoE layer over training, mean over seeds: `load[e][j]` at `steps[j]`. */
export interface LoadHeatmap {
  /** Index of the decoder layer. */
  layer: number;
  /** Log steps. */
  steps: number[];
  /** One row per expert. */
  load: number[][];
}

/** The routing diagnostics of one arm (layers averaged in the bands). */
export interface ArmDiagnostics {
  /** Per-batch MaxVio, averaged over each log interval. */
  maxVio: Band;
  /** Per-batch load coefficient of variation. */
  loadCv: Band;
  /** MI(token id; expert) in nats, Miller–Madow corrected, eval mode, on the validation batches (at the evaluations). */
  mi: Band;
  /** Mean agreement of each evaluation's routing of a fixed batch with the final routing (1 at the end). */
  saturation: Band;
  /** MaxVio of the loads summed over the whole run, per seed (layers averaged). */
  runMaxVio: Summary;
  /** Corrected MI at the last evaluation, per seed (layers averaged). */
  finalMi: Summary;
  /** Plug-in (uncorrected) MI at the last evaluation, per seed. */
  finalMiPlugin: Summary;
  /** Entropy of the expert at the last evaluation (the MI's bound), per seed. */
  finalExpertEntropy: Summary;
  /** The expert loads over training, one heatmap per MoE layer. */
  heatmaps: LoadHeatmap[];
}

const mean = (xs: number[]) => xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;

/** Mean over a record's layers of `pick` (NaN when none has it). */
function layerMean<R>(layers: readonly R[] | undefined, pick: (r: R) => number | undefined): number {
  return mean((layers ?? []).map(pick).filter((v): v is number => typeof v === "number" && Number.isFinite(v)));
}

/** The saturation curve of one run: each snapshot's agreement with the snapshot at `steps` (layers averaged). */
function saturationSeries(snapshots: readonly RoutingSnapshot[], steps: number): { steps: number[]; values: number[] } {
  const final = snapshots.find((s) => s.step === steps);
  if (!final) return { steps: [], values: [] };
  return {
    steps: snapshots.map((s) => s.step),
    values: snapshots.map((s) =>
      mean(s.layers.map((l, i) => routingAgreement(l.experts, final.layers[i].experts, l.topK)))
    ),
  };
}

/** The diagnostics of an arm's finished runs (seed order), or null when they logged no routing. */
export function armDiagnostics(runs: RunData[], steps: number, experts: number): ArmDiagnostics | null {
  if (!runs.some((r) => r.train.some((t) => (t.routing ?? []).length > 0))) return null;
  const e = Number.isFinite(experts) && experts >= 1 ? experts : Infinity;
  const range = (max: number): ValueRange => ({ min: 0, max });
  const trainSeries = (pick: (l: { maxVio?: number; loadCv?: number }) => number | undefined) =>
    runs.map((run) => ({
      steps: run.train.map((t) => t.step),
      values: run.train.map((t) => layerMean(t.routing, pick)),
    }));
  const validEvals = (run: RunData) => run.evals.filter((v) => v.split === "valid" && v.routing);
  const finalEval = (run: RunData) => validEvals(run).find((v) => v.step === steps);
  const layerIndices = [...new Set(runs.flatMap((r) => r.train.flatMap((t) => (t.routing ?? []).map((l) => l.layer))))];
  return {
    maxVio: band(trainSeries((l) => l.maxVio), range(e - 1)),
    loadCv: band(trainSeries((l) => l.loadCv), range(Math.sqrt(e - 1))),
    mi: band(
      runs.map((run) => ({
        steps: validEvals(run).map((v) => v.step),
        values: validEvals(run).map((v) => layerMean(v.routing, (l) => l.miCorrected)),
      })),
    ),
    saturation: band(runs.map((run) => saturationSeries(run.snapshots ?? [], steps)), range(1)),
    runMaxVio: summarize(
      runs.map((run) =>
        mean(
          layerIndices.map((layer) => {
            const recs = run.train.flatMap((t) =>
              (t.routing ?? []).filter((l) => l.layer === layer).map((l) => ({
                step: t.step,
                load: l.load,
              }))
            );
            return recs.length ? maxVio(runLoad(recs)) : NaN;
          }).filter(Number.isFinite),
        )
      ),
      range(e - 1),
    ),
    // The corrected MI may dip below 0 (it is an estimate): its interval is not clamped at 0.
    finalMi: summarize(runs.map((run) => layerMean(finalEval(run)?.routing, (l) => l.miCorrected))),
    finalMiPlugin: summarize(runs.map((run) => layerMean(finalEval(run)?.routing, (l) => l.mi)), range(Math.log(e))),
    finalExpertEntropy: summarize(
      runs.map((run) => layerMean(finalEval(run)?.routing, (l) => l.expertEntropy)),
      range(Math.log(e)),
    ),
    heatmaps: layerIndices.map((layer) => loadHeatmap(runs, layer)),
  };
}

/** The mean over seeds of one layer's per-expert loads at each log step. */
function loadHeatmap(runs: RunData[], layer: number): LoadHeatmap {
  const byStep = new Map<number, number[][]>();
  for (const run of runs) {
    for (const t of run.train) {
      const l = (t.routing ?? []).find((r) => r.layer === layer);
      if (!l) continue;
      const list = byStep.get(t.step) ?? [];
      list.push(l.load);
      byStep.set(t.step, list);
    }
  }
  const steps = [...byStep.keys()].sort((a, b) => a - b);
  const numExperts = Math.max(0, ...[...byStep.values()].flat().map((l) => l.length));
  const load = Array.from({ length: numExperts }, (_, ex) => steps.map((s) => mean(byStep.get(s)!.map((l) => l[ex]))));
  return { layer, steps, load };
}
