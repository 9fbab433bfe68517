/**
 * Aggregation of the LM experiments' runs: reads each run's `metrics.jsonl` and `final.json` and turns arms ×
 * seeds into the statistics the report prints — mean ± t-95% CI curves, steps to a target loss with a bootstrap
 * speed-up CI, final-metric differences with Welch tests, routing metrics over time and timing.
 *
 * The statistics are pure functions of the loaded records ({@link aggregateRuns}), so they are tested without
 * files; {@link loadRunData} is the only part that reads the disk.
 *
 * @module
 */
import { join } from "node:path";
import {
  bootstrapRatioCI,
  mean,
  meanCI,
  sampleStd,
  stepsToTarget,
  tCdf,
  tCritical,
  welchTTest,
} from "../common/stats.ts";
import { readJsonl } from "../common/io.ts";
import type {
  EvalRecord as RunEvalRecord,
  RoutingRecord as RunRoutingRecord,
  TrainRecord as RunTrainRecord,
} from "./run_metrics.ts";
import type { RunSummary } from "./run.ts";

// The record types are the runner's (`run_metrics.ts`, `run.ts`), with the fields the aggregation does not read made
// optional, so partial or synthetic records (the tests') aggregate too.
type RoutingRequired = "layer" | "load" | "entropy" | "unusedExperts";
type TrainRequired = "kind" | "step" | "loss";

/** Routing statistics of one MoE layer in a `train` record, as the aggregation reads them. */
export type RoutingRecord =
  & Pick<RunRoutingRecord, RoutingRequired>
  & Partial<Omit<RunRoutingRecord, RoutingRequired>>;

/** A `kind: "train"` line of `metrics.jsonl`, as the aggregation reads it. */
export type TrainRecord =
  & Pick<RunTrainRecord, TrainRequired>
  & Partial<Omit<RunTrainRecord, TrainRequired | "routing">>
  & { routing?: RoutingRecord[] };

/** A `kind: "eval"` line of `metrics.jsonl` (evaluation mode, fixed batches), as the aggregation reads it. */
export type EvalRecord = Omit<RunEvalRecord, "tokens"> & Partial<Pick<RunEvalRecord, "tokens">>;

/** `final.json` of a completed run (the runner's `RunSummary`), as the aggregation reads it. */
export type FinalRecord =
  & Pick<RunSummary, "done" | "steps">
  & Partial<Omit<RunSummary, "done" | "steps" | "finalEval">>
  & {
    /** Evaluation at the last step, by split (`{ loss, ppl, tokens }`, or a bare loss). */
    finalEval?: Record<string, unknown>;
  };

/** Everything the aggregation needs about one run. */
export interface RunData {
  /** Arm name (e.g. `switch`). */
  arm: string;
  /** Seed. */
  seed: number;
  /** Train records in step order. */
  train: TrainRecord[];
  /** Eval records in step order. */
  evals: EvalRecord[];
  /** `final.json`, or null when the run did not complete. */
  final: FinalRecord | null;
}

/** A mean curve with its pointwise t-95% confidence band over seeds. */
export interface Band {
  /** Evaluation / log steps. */
  steps: number[];
  /** Mean over seeds at each step. */
  mean: number[];
  /** Lower edge of the 95% CI (the mean itself when only one seed contributes). */
  lo: number[];
  /** Upper edge of the 95% CI. */
  hi: number[];
  /** Seeds contributing at each step. */
  n: number[];
}

/** Mean, t-95% CI and the per-seed values of one scalar. */
export interface Summary {
  /** Mean of the finite values (NaN when there are none). */
  mean: number;
  /** Lower edge of the t-95% CI (NaN with fewer than 2 values). */
  lo: number;
  /** Upper edge of the t-95% CI. */
  hi: number;
  /** Number of finite values. */
  n: number;
  /** The per-seed values, in seed order (non-finite ones kept, as NaN). */
  values: number[];
}

/** Comparison of one arm with the baseline arm on one scalar (arm − baseline). */
export interface Difference {
  /** Mean(arm) − mean(baseline). */
  diff: number;
  /** Lower edge of the Welch t-95% confidence interval of the difference (NaN when an arm has < 2 seeds). */
  lo: number;
  /** Upper edge of that interval. */
  hi: number;
  /** Two-sided Welch p-value (NaN when undefined). */
  p: number;
}

/** Routing metrics over time of one arm (layers averaged, then mean ± CI over seeds). */
export interface RoutingBands {
  /** max(load) / mean(load): 1 is perfectly balanced, E is everything on one expert. */
  loadImbalance: Band;
  /** Mean router entropy (nats). */
  entropy: Band;
  /** Fraction of tokens with ≥ 2 candidates (null for routers without a candidate mask). */
  candidateFraction: Band | null;
  /** Fraction of tokens routed to a non-argmax expert (null for deterministic routers). */
  sampledNeArgmax: Band | null;
  /** Experts with no assignment. */
  unusedExperts: Band;
  /** Fraction of assignments dropped by a capacity limit (null when dropless). */
  droppedFraction: Band | null;
}

/** Everything computed for one arm. */
export interface ArmAggregate {
  /** Arm name. */
  arm: string;
  /** Seeds of the arm's runs, ascending (the order of every per-seed array below). */
  seeds: number[];
  /** Runs of this arm that have a `final.json`. */
  completed: number;
  /** Held-out SOTU loss and perplexity curves. */
  valid: { loss: Band; ppl: Band };
  /** Moby Dick loss and perplexity curves. */
  ood: { loss: Band; ppl: Band };
  /** Training LM loss (train mode; perturbed for SparseMixer). */
  trainLoss: Band;
  /** Routing metrics over time (null when the runs logged none). */
  routing: RoutingBands | null;
  /** Final evaluation (last eval record of each run). */
  final: { validLoss: Summary; validPpl: Summary; oodLoss: Summary; oodPpl: Summary };
  /** Steps to the target validation loss per seed (null: not reached). */
  stepsToTarget: (number | null)[];
  /** Median ms per step of each run. */
  msPerStep: Summary;
  /** Median tokens per second of each run. */
  tokensPerSec: Summary;
}

/**
 * Paired comparison over the seeds both arms ran: with the same seed the runner gives both arms the same
 * initial weights and batches (common random numbers), so per-seed differences remove that shared noise.
 */
export interface PairedDifference {
  /** Mean over seeds of (arm − baseline). */
  diff: number;
  /** Lower edge of the paired t-95% CI (NaN with fewer than 2 pairs). */
  lo: number;
  /** Upper edge of the paired t-95% CI. */
  hi: number;
  /** Two-sided paired t-test p-value. */
  p: number;
  /** Number of seed pairs. */
  n: number;
}

/** Comparison of one arm with the baseline. */
export interface ArmComparison {
  /** The compared arm. */
  arm: string;
  /** The baseline arm. */
  baseline: string;
  /** Final validation loss, arm − baseline. */
  finalValidLoss: Difference;
  /** Final out-of-domain loss, arm − baseline. */
  finalOodLoss: Difference;
  /** Final validation loss, arm − baseline, paired by seed (supplementary to the Welch comparison). */
  finalValidLossPaired: PairedDifference;
  /** mean(baseline steps to target) / mean(arm steps to target), bootstrap CI; null if < 2 seeds reached. */
  speedup: { ratio: number; lo: number; hi: number; seedsReached: [number, number] } | null;
  /** Plain-language verdicts derived from the intervals (used verbatim in the report). */
  verdict: { finalValid: string; speedup: string; separates: boolean };
}

/** How the target validation loss is chosen. */
export interface TargetOptions {
  /** A fixed loss in nats, or `"auto"`. */
  targetLoss: number | "auto";
  /** For `"auto"`: the fraction of training at which the arms' mean curves are read (default 0.8). */
  targetFraction?: number;
}

/** The whole aggregation. */
export interface Aggregate {
  /** Per arm, in the configured order. */
  arms: ArmAggregate[];
  /** The baseline arm. */
  baseline: string;
  /** The target validation loss used for steps-to-target. */
  target: { loss: number; rule: string };
  /** Every other arm against the baseline. */
  comparisons: ArmComparison[];
  /** Total training steps of the runs. */
  steps: number;
}

/** Reads one run's records (missing files give empty records / a null `final`). */
export async function loadRunData(dir: string, arm: string, seed: number): Promise<RunData> {
  let records: Record<string, unknown>[] = [];
  try {
    records = await readJsonl<Record<string, unknown>>(join(dir, "metrics.jsonl"));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  let final: FinalRecord | null = null;
  try {
    final = JSON.parse(await Deno.readTextFile(join(dir, "final.json"))) as FinalRecord;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const train = records.filter((r) => r.kind === "train") as unknown as TrainRecord[];
  const evals = records.filter((r) => r.kind === "eval") as unknown as EvalRecord[];
  return { arm, seed, train, evals, final };
}

/** Summary (mean, t-95% CI) of finite values; NaNs when there are none. */
export function summarize(values: number[]): Summary {
  const xs = values.filter((v) => Number.isFinite(v));
  if (xs.length === 0) return { mean: NaN, lo: NaN, hi: NaN, n: 0, values };
  if (xs.length === 1) return { mean: xs[0], lo: NaN, hi: NaN, n: 1, values };
  const ci = meanCI(xs);
  return { mean: ci.mean, lo: ci.lo, hi: ci.hi, n: ci.n, values };
}

/**
 * Pointwise band over seeds: each series is (steps, values); a step present in several seeds is averaged over
 * those seeds (runs of one arm share their evaluation steps, so normally every seed contributes).
 */
export function band(series: { steps: number[]; values: number[] }[]): Band {
  const byStep = new Map<number, number[]>();
  for (const s of series) {
    s.steps.forEach((st, i) => {
      const v = s.values[i];
      if (v === null || v === undefined || !Number.isFinite(v)) return;
      const list = byStep.get(st) ?? [];
      list.push(v);
      byStep.set(st, list);
    });
  }
  const steps = [...byStep.keys()].sort((a, b) => a - b);
  const out: Band = { steps, mean: [], lo: [], hi: [], n: [] };
  for (const st of steps) {
    const s = summarize(byStep.get(st)!);
    out.mean.push(s.mean);
    // A single seed has no spread: the band collapses onto the mean instead of disappearing.
    out.lo.push(Number.isFinite(s.lo) ? s.lo : s.mean);
    out.hi.push(Number.isFinite(s.hi) ? s.hi : s.mean);
    out.n.push(s.n);
  }
  return out;
}

/** Linear interpolation of a curve at `x` (clamped to its ends; NaN for an empty curve). */
export function interpolate(xs: number[], ys: number[], x: number): number {
  if (xs.length === 0) return NaN;
  if (x <= xs[0]) return ys[0];
  for (let i = 1; i < xs.length; i++) {
    if (x <= xs[i]) {
      const t = (x - xs[i - 1]) / (xs[i] - xs[i - 1]);
      return ys[i - 1] + t * (ys[i] - ys[i - 1]);
    }
  }
  return ys[ys.length - 1];
}

/** arm − baseline with a Welch t-95% CI and p-value. */
export function difference(arm: number[], baseline: number[]): Difference {
  const a = arm.filter(Number.isFinite);
  const b = baseline.filter(Number.isFinite);
  const diff = mean(a) - mean(b);
  if (a.length < 2 || b.length < 2) return { diff, lo: NaN, hi: NaN, p: NaN };
  const va = sampleStd(a) ** 2 / a.length;
  const vb = sampleStd(b) ** 2 / b.length;
  const se = Math.sqrt(va + vb);
  if (se === 0) return { diff, lo: diff, hi: diff, p: diff === 0 ? 1 : 0 };
  const { df, p } = welchTTest(a, b);
  const t = tCritical(df);
  return { diff, lo: diff - t * se, hi: diff + t * se, p };
}

/** Paired (by seed) arm − baseline difference with a t-95% CI and two-sided p-value. */
export function pairedDifference(
  arm: { seed: number; value: number }[],
  baseline: { seed: number; value: number }[],
): PairedDifference {
  const base = new Map(baseline.filter((b) => Number.isFinite(b.value)).map((b) => [b.seed, b.value]));
  const d = arm.filter((a) => Number.isFinite(a.value) && base.has(a.seed)).map((a) => a.value - base.get(a.seed)!);
  const n = d.length;
  const diff = n ? mean(d) : NaN;
  if (n < 2) return { diff, lo: NaN, hi: NaN, p: NaN, n };
  const se = sampleStd(d) / Math.sqrt(n);
  if (se === 0) return { diff, lo: diff, hi: diff, p: diff === 0 ? 1 : 0, n };
  const half = tCritical(n - 1) * se;
  const p = 2 * (1 - tCdf(Math.abs(diff / se), n - 1));
  return { diff, lo: diff - half, hi: diff + half, p: Math.min(1, Math.max(0, p)), n };
}

function finalValue(run: RunData, split: "valid" | "ood"): { loss: number; ppl: number } {
  // The last eval record of the split is the final evaluation (the runner evaluates at the last step);
  // final.json's copy is the fallback for a run whose metrics were lost.
  const last = run.evals.filter((e) => e.split === split).at(-1);
  if (last) return { loss: last.loss, ppl: last.ppl };
  const f = run.final?.finalEval?.[split];
  if (typeof f === "number") return { loss: f, ppl: Math.exp(f) };
  if (f && typeof f === "object" && typeof (f as { loss?: unknown }).loss === "number") {
    const loss = (f as { loss: number }).loss;
    const ppl = (f as { ppl?: unknown }).ppl;
    return { loss, ppl: typeof ppl === "number" ? ppl : Math.exp(loss) };
  }
  return { loss: NaN, ppl: NaN };
}

function evalSeries(run: RunData, split: "valid" | "ood", key: "loss" | "ppl") {
  const ev = run.evals.filter((e) => e.split === split);
  return { steps: ev.map((e) => e.step), values: ev.map((e) => e[key]) };
}

function median(xs: number[]): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Mean over a train record's MoE layers of one routing quantity (null when no layer reports it). */
function layerMean(rec: TrainRecord, pick: (r: RoutingRecord) => number | null | undefined): number | null {
  const vals = (rec.routing ?? []).map(pick).filter((v): v is number => typeof v === "number" && Number.isFinite(v));
  return vals.length ? mean(vals) : null;
}

function loadImbalance(load: number[]): number {
  const m = mean(load);
  return m > 0 ? Math.max(...load) / m : NaN;
}

function routingBands(runs: RunData[]): RoutingBands | null {
  if (!runs.some((r) => r.train.some((t) => (t.routing ?? []).length > 0))) return null;
  const series = (pick: (r: RoutingRecord) => number | null | undefined) =>
    runs.map((run) => {
      const recs = run.train.filter((t) => (t.routing ?? []).length > 0);
      return { steps: recs.map((t) => t.step), values: recs.map((t) => layerMean(t, pick) ?? NaN) };
    });
  const optional = (pick: (r: RoutingRecord) => number | null | undefined) => {
    const b = band(series(pick));
    return b.steps.length ? b : null;
  };
  return {
    loadImbalance: band(series((r) => loadImbalance(r.load))),
    entropy: band(series((r) => r.entropy)),
    candidateFraction: optional((r) => r.candidateFraction),
    sampledNeArgmax: optional((r) => r.sampledNeArgmax),
    unusedExperts: band(series((r) => r.unusedExperts)),
    droppedFraction: optional((r) => r.droppedFraction),
  };
}

/**
 * Picks the target validation loss. `"auto"` reads every arm's mean validation curve at `targetFraction` of
 * training and takes the highest value, i.e. the loss that the slowest arm's mean curve reaches there. The rule
 * treats all arms alike, so it is fixed before anyone knows which arm is faster; every arm's mean curve reaches
 * the target within training, so steps-to-target is defined for typical seeds of every arm.
 */
export function chooseTarget(
  curves: { arm: string; loss: Band }[],
  steps: number,
  options: TargetOptions,
): { loss: number; rule: string } {
  if (options.targetLoss !== "auto") {
    return { loss: options.targetLoss, rule: `fixed in the config (targetLoss = ${options.targetLoss})` };
  }
  const frac = options.targetFraction ?? 0.8;
  const at = frac * steps;
  const values = curves.map((c) => ({ arm: c.arm, v: interpolate(c.loss.steps, c.loss.mean, at) }))
    .filter((x) => Number.isFinite(x.v));
  if (values.length === 0) return { loss: NaN, rule: "auto: no validation curve to read" };
  const worst = values.reduce((a, b) => (b.v > a.v ? b : a));
  return {
    loss: worst.v,
    rule: `auto: the highest of the arms' mean validation losses at ${Math.round(frac * 100)}% of training ` +
      `(step ${Math.round(at)}), i.e. the loss the slowest arm's mean curve reaches there (here: ${worst.arm})`,
  };
}

function verdicts(
  arm: string,
  baseline: string,
  fv: Difference,
  paired: PairedDifference,
  sp: ArmComparison["speedup"],
): ArmComparison["verdict"] {
  let finalValid: string;
  let separates = false;
  if (!Number.isFinite(fv.lo)) {
    finalValid = `${arm} vs ${baseline}: too few seeds for a confidence interval of the final validation loss ` +
      `difference; no claim either way.`;
  } else if (fv.hi < 0 || fv.lo > 0) {
    separates = true;
    finalValid = `${arm} ends ${fv.diff < 0 ? "lower" : "higher"} than ${baseline} in validation loss ` +
      `(difference ${fv.diff.toFixed(4)} nats, 95% CI [${fv.lo.toFixed(4)}, ${fv.hi.toFixed(4)}] excludes 0, ` +
      `Welch p = ${fv.p.toPrecision(2)}): the arms separate beyond seed noise.`;
  } else {
    finalValid = `${arm} and ${baseline} do NOT separate beyond seed noise in final validation loss ` +
      `(difference ${fv.diff.toFixed(4)} nats, 95% CI [${fv.lo.toFixed(4)}, ${fv.hi.toFixed(4)}] contains 0, ` +
      `Welch p = ${fv.p.toPrecision(2)}).`;
  }
  if (Number.isFinite(paired.lo)) {
    // Supplementary: the same seed gives both arms the same initial weights and batches, so the per-seed
    // difference is the sharper test; it does not change the verdict, which stays with the unpaired interval.
    finalValid += ` Paired by seed (n = ${paired.n}): ${paired.diff.toFixed(4)} nats, 95% CI ` +
      `[${paired.lo.toFixed(4)}, ${paired.hi.toFixed(4)}], p = ${paired.p.toPrecision(2)}.`;
  }
  let speedup: string;
  if (!sp) {
    speedup = `Speed-up of ${arm} over ${baseline}: undefined (fewer than 2 seeds of an arm reached the target).`;
  } else if (sp.lo > 1 || sp.hi < 1) {
    separates = true;
    speedup = `${arm} reaches the target ${sp.ratio.toFixed(2)}× ${sp.ratio > 1 ? "faster" : "slower"} than ` +
      `${baseline} (bootstrap 95% CI [${sp.lo.toFixed(2)}, ${sp.hi.toFixed(2)}] excludes 1).`;
  } else {
    speedup = `Speed-up of ${arm} over ${baseline}: ${sp.ratio.toFixed(2)}× with bootstrap 95% CI ` +
      `[${sp.lo.toFixed(2)}, ${sp.hi.toFixed(2)}], which contains 1: no convergence-speed difference beyond ` +
      `seed noise.`;
  }
  return { finalValid, speedup, separates };
}

/**
 * Aggregates runs into per-arm statistics and comparisons with `baseline`. `arms` fixes the order of the arms
 * in the output (the baseline should be first); `steps` is the configured number of training steps.
 */
export function aggregateRuns(
  runs: RunData[],
  options: TargetOptions & { arms: string[]; baseline: string; steps: number; bootstrapSeed?: number },
): Aggregate {
  const { arms, baseline, steps } = options;
  const perArm = arms.map((arm) => ({ arm, runs: runs.filter((r) => r.arm === arm).sort((a, b) => a.seed - b.seed) }));
  const validLoss = perArm.map(({ arm, runs }) => ({
    arm,
    loss: band(runs.map((r) => evalSeries(r, "valid", "loss"))),
  }));
  const target = chooseTarget(validLoss, steps, options);

  const aggregates: ArmAggregate[] = perArm.map(({ arm, runs }, i) => {
    const finals = runs.map((r) => ({ valid: finalValue(r, "valid"), ood: finalValue(r, "ood") }));
    const timing = runs.map((r) => ({
      ms: r.final?.msPerStepMedian ?? median(r.train.map((t) => t.msPerStep ?? NaN)),
      tps: r.final?.tokensPerSecMedian ?? median(r.train.map((t) => t.tokensPerSec ?? NaN)),
    }));
    return {
      arm,
      seeds: runs.map((r) => r.seed),
      completed: runs.filter((r) => r.final?.done).length,
      valid: { loss: validLoss[i].loss, ppl: band(runs.map((r) => evalSeries(r, "valid", "ppl"))) },
      ood: {
        loss: band(runs.map((r) => evalSeries(r, "ood", "loss"))),
        ppl: band(runs.map((r) => evalSeries(r, "ood", "ppl"))),
      },
      trainLoss: band(
        runs.map((r) => ({ steps: r.train.map((t) => t.step), values: r.train.map((t) => t.lmLoss ?? t.loss) })),
      ),
      routing: routingBands(runs),
      final: {
        validLoss: summarize(finals.map((f) => f.valid.loss)),
        validPpl: summarize(finals.map((f) => f.valid.ppl)),
        oodLoss: summarize(finals.map((f) => f.ood.loss)),
        oodPpl: summarize(finals.map((f) => f.ood.ppl)),
      },
      stepsToTarget: runs.map((r) => {
        const s = evalSeries(r, "valid", "loss");
        return Number.isFinite(target.loss) ? stepsToTarget(s.steps, s.values, target.loss) : null;
      }),
      msPerStep: summarize(timing.map((t) => t.ms)),
      tokensPerSec: summarize(timing.map((t) => t.tps)),
    };
  });

  const base = aggregates.find((a) => a.arm === baseline);
  const comparisons: ArmComparison[] = [];
  if (base) {
    for (const a of aggregates) {
      if (a.arm === baseline) continue;
      const finalValidLoss = difference(a.final.validLoss.values, base.final.validLoss.values);
      const finalOodLoss = difference(a.final.oodLoss.values, base.final.oodLoss.values);
      const bySeed = (x: ArmAggregate) => x.seeds.map((seed, i) => ({ seed, value: x.final.validLoss.values[i] }));
      const finalValidLossPaired = pairedDifference(bySeed(a), bySeed(base));
      const num = base.stepsToTarget.filter((s): s is number => s !== null);
      const den = a.stepsToTarget.filter((s): s is number => s !== null);
      const speedup = num.length >= 2 && den.length >= 2
        ? {
          ...bootstrapRatioCI(num, den, { seed: options.bootstrapSeed ?? 0 }),
          seedsReached: [num.length, den.length] as [number, number],
        }
        : null;
      comparisons.push({
        arm: a.arm,
        baseline,
        finalValidLoss,
        finalOodLoss,
        finalValidLossPaired,
        speedup,
        verdict: verdicts(a.arm, baseline, finalValidLoss, finalValidLossPaired, speedup),
      });
    }
  }
  return { arms: aggregates, baseline, target, comparisons, steps };
}
