/**
 * Aggregation of the LM experiments' runs: reads each run's `metrics.jsonl` and `final.json` and turns arms ×
 * seeds into the statistics the report prints — mean ± t-95% CI curves, steps to a target loss with a bootstrap
 * speed-up CI, the declared primary test (paired by seed) with Welch tests as secondary results, routing metrics
 * over time and timing.
 *
 * Only finished runs count (`completion.ts`): a run that stopped early is left out of every statistic, table and
 * band and listed in {@link Aggregate.incomplete}. Intervals are kept inside the range of their quantity
 * (`metric_ranges.ts`), and an interval is only given from enough seeds (`MIN_SEEDS_T`, `MIN_SEEDS_BOOTSTRAP`).
 *
 * The statistics are pure functions of the loaded records ({@link aggregateRuns}), so they are tested without
 * files; {@link loadRunData} is the only part that reads the disk.
 *
 * @module
 */
import { join } from "node:path";
import {
  bootstrapRatioCI,
  clampInterval,
  mean,
  meanCI,
  median,
  MIN_SEEDS_BOOTSTRAP,
  MIN_SEEDS_T,
  pairedTTest,
  sampleStd,
  stepsToTarget,
  tCritical,
  type ValueRange,
  welchTTest,
} from "../common/stats.ts";
import { readJsonl } from "../common/io.ts";
import { finalEvalAt, type IncompleteRun, partitionRuns } from "./completion.ts";
import { type LmMetric, metricRanges } from "./metric_ranges.ts";
import { DEFAULT_PRIMARY_TEST, type PrimaryTest, primaryVerdict, speedupSentence, welchSentence } from "./verdicts.ts";
import type {
  EvalRecord as RunEvalRecord,
  RoutingRecord as RunRoutingRecord,
  TrainRecord as RunTrainRecord,
} from "./run_metrics.ts";
import type { RunSummary } from "./run.ts";
import type { RoutingSnapshot } from "./eval_routing.ts";
import type { ClaimedEffect } from "./experiment_schema.ts";
import { type ArmDiagnostics, armDiagnostics } from "./aggregate_diagnostics.ts";
import {
  type ClaimedEffectNats,
  claimedEffectNats,
  compareWithControls,
  type ControlComparison,
  type PowerRow,
  powerRows,
} from "./aggregate_controls.ts";

// The record types are the runner's (`run_metrics.ts`, `run.ts`), with the fields the aggregation does not read made
// optional, so partial or synthetic records (the tests') aggregate too.
type RoutingRequired = "layer" | "load" | "unusedExperts";
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
  /** `routing_snapshots.jsonl` (absent or empty for runs from before it existed). */
  snapshots?: RoutingSnapshot[];
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
  /**
   * Entropy (nats) of the full softmax of the router logits, the same quantity for every estimator (the
   * estimator's own routing distribution differs: SparseMixer's is a masked softmax, Switch's a full one).
   */
  routerEntropy: Band;
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
  /** Seeds of the arm's finished runs, ascending (the order of every per-seed array below). */
  seeds: number[];
  /** Finished runs of this arm (= `seeds.length`). */
  completed: number;
  /** Runs of this arm that were attempted (finished or not). */
  attempted: number;
  /** Held-out SOTU loss and perplexity curves. */
  valid: { loss: Band; ppl: Band };
  /** Moby Dick loss and perplexity curves. */
  ood: { loss: Band; ppl: Band };
  /** Training LM loss (train mode; perturbed for SparseMixer). */
  trainLoss: Band;
  /** Routing metrics over time (null when the runs logged none). */
  routing: RoutingBands | null;
  /** Routing diagnostics: MaxVio, load CV, MI, saturation, load heatmaps (null when the runs logged no routing). */
  diagnostics: ArmDiagnostics | null;
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
  /** The paired seeds (finished, with a value, in both arms). */
  seeds: number[];
  /** Seeds with a value in the arm only (left out of the pairing). */
  unpairedArm: number[];
  /** Seeds with a value in the baseline only (left out of the pairing). */
  unpairedBaseline: number[];
}

/**
 * mean(baseline steps to target) / mean(arm steps to target). The bootstrap interval is NaN when an arm has fewer
 * than `MIN_SEEDS_BOOTSTRAP` seeds that reached the target (too few distinct resamples to mean anything).
 */
export interface Speedup {
  /** The ratio of the means. */
  ratio: number;
  /** Lower edge of the bootstrap 95% CI (NaN: too few seeds). */
  lo: number;
  /** Upper edge (NaN: too few seeds). */
  hi: number;
  /** Seeds that reached the target: [baseline, arm]. */
  seedsReached: [number, number];
}

/** Comparison of one arm with the baseline. */
export interface ArmComparison {
  /** The compared arm. */
  arm: string;
  /** The baseline arm. */
  baseline: string;
  /** Final validation loss, arm − baseline, unpaired (Welch; secondary). */
  finalValidLoss: Difference;
  /** Final out-of-domain loss, arm − baseline, unpaired (Welch; secondary). */
  finalOodLoss: Difference;
  /** Final validation loss, arm − baseline, paired by seed. */
  finalValidLossPaired: PairedDifference;
  /** Final out-of-domain loss, arm − baseline, paired by seed. */
  finalOodLossPaired: PairedDifference;
  /** The result of the experiment's primary test (one of the paired differences above). */
  primary: PairedDifference;
  /** Speed-up to the target (secondary); null when an arm has no finished seed that reached the target. */
  speedup: Speedup | null;
  /**
   * Plain-language verdicts (used verbatim in the report): the headline sentence of the primary test, the
   * secondary results (labelled so), and `separates`, which comes from the primary test alone.
   */
  verdict: { primary: string; secondary: string[]; speedup: string; separates: boolean };
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
  /** The primary test the verdicts come from. */
  primaryTest: PrimaryTest;
  /** Runs left out of every statistic because they did not finish (named at the top of the report). */
  incomplete: IncompleteRun[];
  /** The null-control arms among `arms` (the others are learned routers). */
  controlArms: string[];
  /** Every learned arm against every control on the primary endpoint (paired by seed). */
  controls: ControlComparison[];
  /** The power of every comparison with the baseline. */
  power: PowerRow[];
  /** The paper's claimed effect in nats of the primary endpoint (null: none given, or not translatable). */
  claimedEffect: ClaimedEffectNats | null;
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
  const snapshots = await readJsonl<RoutingSnapshot>(join(dir, "routing_snapshots.jsonl"));
  return { arm, seed, train, evals, final, snapshots };
}

const UNBOUNDED: ValueRange = { min: -Infinity, max: Infinity };

/**
 * Summary (mean, t-95% CI) of finite values; NaNs when there are none, and no interval with fewer than
 * `MIN_SEEDS_T` values. The interval is intersected with `range`, the values the quantity can take.
 */
export function summarize(values: number[], range: ValueRange = UNBOUNDED): Summary {
  const xs = values.filter((v) => Number.isFinite(v));
  if (xs.length === 0) return { mean: NaN, lo: NaN, hi: NaN, n: 0, values };
  if (xs.length < MIN_SEEDS_T) return { mean: mean(xs), lo: NaN, hi: NaN, n: xs.length, values };
  const ci = meanCI(xs);
  const { lo, hi } = clampInterval(ci.lo, ci.hi, range);
  return { mean: ci.mean, lo, hi, n: ci.n, values };
}

/**
 * Pointwise band over seeds: each series is (steps, values); a step present in several seeds is averaged over
 * those seeds (runs of one arm share their evaluation steps, so normally every seed contributes).
 */
export function band(series: { steps: number[]; values: number[] }[], range: ValueRange = UNBOUNDED): Band {
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
    const s = summarize(byStep.get(st)!, range);
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

/**
 * Paired (by seed) arm − baseline difference with a t-95% CI and two-sided p-value, over the seeds that have a
 * finite value in both arms only; the seeds of one arm only are returned too, so the report can name them.
 */
export function pairedDifference(
  arm: { seed: number; value: number }[],
  baseline: { seed: number; value: number }[],
): PairedDifference {
  const base = new Map(baseline.filter((b) => Number.isFinite(b.value)).map((b) => [b.seed, b.value]));
  const own = new Map(arm.filter((a) => Number.isFinite(a.value)).map((a) => [a.seed, a.value]));
  const seeds = [...own.keys()].filter((s) => base.has(s)).sort((x, y) => x - y);
  const t = pairedTTest(seeds.map((s) => own.get(s)! - base.get(s)!));
  return {
    ...t,
    seeds,
    unpairedArm: [...own.keys()].filter((s) => !base.has(s)).sort((x, y) => x - y),
    unpairedBaseline: [...base.keys()].filter((s) => !own.has(s)).sort((x, y) => x - y),
  };
}

function finalValue(run: RunData, split: "valid" | "ood", steps: number): { loss: number; ppl: number } {
  // The evaluation at the configured last step, never an earlier one (a run's last record may be from the step
  // it stopped at); final.json's copy is the fallback for a finished run whose metrics were lost.
  const last = finalEvalAt(run, split, steps);
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

/** Mean over a train record's MoE layers of one routing quantity (null when no layer reports it). */
function layerMean(rec: TrainRecord, pick: (r: RoutingRecord) => number | null | undefined): number | null {
  const vals = (rec.routing ?? []).map(pick).filter((v): v is number => typeof v === "number" && Number.isFinite(v));
  return vals.length ? mean(vals) : null;
}

function loadImbalance(load: number[]): number {
  const m = mean(load);
  return m > 0 ? Math.max(...load) / m : NaN;
}

/** The number of experts the runs' routing records show (NaN when none logged routing). */
function expertCount(runs: RunData[]): number {
  let e = NaN;
  for (const run of runs) for (const t of run.train) for (const r of t.routing ?? []) e = r.load.length;
  return e;
}

function routingBands(runs: RunData[], ranges: Record<LmMetric, ValueRange>): RoutingBands | null {
  if (!runs.some((r) => r.train.some((t) => (t.routing ?? []).length > 0))) return null;
  const series = (pick: (r: RoutingRecord) => number | null | undefined) =>
    runs.map((run) => {
      const recs = run.train.filter((t) => (t.routing ?? []).length > 0);
      return { steps: recs.map((t) => t.step), values: recs.map((t) => layerMean(t, pick) ?? NaN) };
    });
  const optional = (pick: (r: RoutingRecord) => number | null | undefined, range: ValueRange) => {
    const b = band(series(pick), range);
    return b.steps.length ? b : null;
  };
  return {
    loadImbalance: band(series((r) => loadImbalance(r.load)), ranges.loadImbalance),
    // Records without `routerEntropy` (older runs) give no point rather than the estimator's entropy, which is a
    // different quantity for the sampling routers.
    routerEntropy: band(series((r) => r.routerEntropy), ranges.routerEntropy),
    candidateFraction: optional((r) => r.candidateFraction, ranges.fraction),
    sampledNeArgmax: optional((r) => r.sampledNeArgmax, ranges.fraction),
    unusedExperts: band(series((r) => r.unusedExperts), ranges.unusedExperts),
    droppedFraction: optional((r) => r.droppedFraction, ranges.fraction),
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

/** Options of {@link aggregateRuns}. */
export interface AggregateOptions extends TargetOptions {
  /** The arms, in report order (the baseline should be first). */
  arms: string[];
  /** The arm every other arm is compared with. */
  baseline: string;
  /** The configured number of training steps (a run is finished only at this step). */
  steps: number;
  /** Seed of the speed-up bootstrap (default 0). */
  bootstrapSeed?: number;
  /** The experiment's declared primary test (default {@link DEFAULT_PRIMARY_TEST}). */
  primary?: PrimaryTest;
  /** Errors the runner reported, keyed by run name (`<arm>-seed<s>`): such runs count as not finished. */
  errors?: Record<string, string | undefined>;
  /** The arms that are null controls (default none). */
  controls?: string[];
  /** The paper's claimed effect, for the power section (default none). */
  claimedEffect?: ClaimedEffect | null;
}

/**
 * Aggregates runs into per-arm statistics and comparisons of the learned arms with `baseline` (the null controls
 * named in `options.controls` are compared with every learned arm instead, in `controls`). Runs that did not finish
 * `options.steps` steps (or that the runner reported as failed) are left out of everything and listed in
 * `incomplete`.
 */
export function aggregateRuns(runs: RunData[], options: AggregateOptions): Aggregate {
  const { arms, baseline, steps } = options;
  const primaryTest = options.primary ?? DEFAULT_PRIMARY_TEST;
  const { finished, incomplete } = partitionRuns(runs, steps, options.errors);
  const ranges = metricRanges(expertCount(finished));
  const perArm = arms.map((arm) => ({
    arm,
    attempted: runs.filter((r) => r.arm === arm).length,
    runs: finished.filter((r) => r.arm === arm).sort((a, b) => a.seed - b.seed),
  }));
  const validLoss = perArm.map(({ arm, runs }) => ({
    arm,
    loss: band(runs.map((r) => evalSeries(r, "valid", "loss")), ranges.loss),
  }));
  // The target comes from the learned arms only: a null control far behind would make it trivially easy.
  const isControl = (arm: string) => (options.controls ?? []).includes(arm);
  const target = chooseTarget(validLoss.filter((c) => !isControl(c.arm)), steps, options);

  const aggregates: ArmAggregate[] = perArm.map(({ arm, attempted, runs }, i) => {
    const finals = runs.map((r) => ({ valid: finalValue(r, "valid", steps), ood: finalValue(r, "ood", steps) }));
    const timing = runs.map((r) => ({
      ms: r.final?.msPerStepMedian ?? median(r.train.map((t) => t.msPerStep ?? NaN)),
      tps: r.final?.tokensPerSecMedian ?? median(r.train.map((t) => t.tokensPerSec ?? NaN)),
    }));
    return {
      arm,
      seeds: runs.map((r) => r.seed),
      completed: runs.length,
      attempted,
      valid: { loss: validLoss[i].loss, ppl: band(runs.map((r) => evalSeries(r, "valid", "ppl")), ranges.ppl) },
      ood: {
        loss: band(runs.map((r) => evalSeries(r, "ood", "loss")), ranges.loss),
        ppl: band(runs.map((r) => evalSeries(r, "ood", "ppl")), ranges.ppl),
      },
      trainLoss: band(
        runs.map((r) => ({ steps: r.train.map((t) => t.step), values: r.train.map((t) => t.lmLoss ?? t.loss) })),
        ranges.loss,
      ),
      routing: routingBands(runs, ranges),
      diagnostics: armDiagnostics(runs, steps, expertCount(finished)),
      final: {
        validLoss: summarize(finals.map((f) => f.valid.loss), ranges.loss),
        validPpl: summarize(finals.map((f) => f.valid.ppl), ranges.ppl),
        oodLoss: summarize(finals.map((f) => f.ood.loss), ranges.loss),
        oodPpl: summarize(finals.map((f) => f.ood.ppl), ranges.ppl),
      },
      stepsToTarget: runs.map((r) => {
        const s = evalSeries(r, "valid", "loss");
        return Number.isFinite(target.loss) ? stepsToTarget(s.steps, s.values, target.loss) : null;
      }),
      msPerStep: summarize(timing.map((t) => t.ms), ranges.msPerStep),
      tokensPerSec: summarize(timing.map((t) => t.tps), ranges.tokensPerSec),
    };
  });

  const base = aggregates.find((a) => a.arm === baseline);
  const controlArms = arms.filter(isControl);
  const learned = aggregates.filter((a) => !isControl(a.arm));
  // The headline compares the learned routers; the null controls have their own section (`controls`).
  const comparisons: ArmComparison[] = [];
  if (base) {
    for (const a of learned) {
      if (a.arm === baseline) continue;
      comparisons.push(compareArms(a, base, primaryTest, options.bootstrapSeed ?? 0));
    }
  }
  const claimedEffect = claimedEffectNats(options.claimedEffect ?? null, base, steps);
  return {
    arms: aggregates,
    baseline,
    target,
    comparisons,
    steps,
    primaryTest,
    incomplete,
    controlArms,
    controls: compareWithControls(aggregates, controlArms, primaryTest),
    power: powerRows(learned, baseline, primaryTest, claimedEffect),
    claimedEffect,
  };
}

/** One arm against the baseline: the primary test, the secondary tests and the speed-up. */
function compareArms(a: ArmAggregate, base: ArmAggregate, primaryTest: PrimaryTest, seed: number): ArmComparison {
  const finalValidLoss = difference(a.final.validLoss.values, base.final.validLoss.values);
  const finalOodLoss = difference(a.final.oodLoss.values, base.final.oodLoss.values);
  const bySeed = (x: ArmAggregate, pick: (x: ArmAggregate) => Summary) =>
    x.seeds.map((seed, i) => ({ seed, value: pick(x).values[i] }));
  const paired = (pick: (x: ArmAggregate) => Summary) => pairedDifference(bySeed(a, pick), bySeed(base, pick));
  const finalValidLossPaired = paired((x) => x.final.validLoss);
  const finalOodLossPaired = paired((x) => x.final.oodLoss);
  const primary = primaryTest.endpoint === "finalOodLoss" ? finalOodLossPaired : finalValidLossPaired;

  const num = base.stepsToTarget.filter((s): s is number => s !== null);
  const den = a.stepsToTarget.filter((s): s is number => s !== null);
  let speedup: Speedup | null = null;
  if (num.length > 0 && den.length > 0) {
    const seedsReached: [number, number] = [num.length, den.length];
    // A percentile bootstrap of a few seeds has a handful of distinct resamples: the ratio alone, no interval.
    speedup = Math.min(num.length, den.length) >= MIN_SEEDS_BOOTSTRAP
      ? { ...bootstrapRatioCI(num, den, { seed }), seedsReached }
      : { ratio: mean(num) / mean(den), lo: NaN, hi: NaN, seedsReached };
  }

  const verdict = primaryVerdict(a.arm, base.arm, primaryTest, primary);
  const n = (pick: (x: ArmAggregate) => Summary): [number, number] => [pick(a).n, pick(base).n];
  const secondary = [
    welchSentence(a.arm, base.arm, "final validation loss", finalValidLoss, n((x) => x.final.validLoss)),
    welchSentence(a.arm, base.arm, "final out-of-domain loss", finalOodLoss, n((x) => x.final.oodLoss)),
  ];
  return {
    arm: a.arm,
    baseline: base.arm,
    finalValidLoss,
    finalOodLoss,
    finalValidLossPaired,
    finalOodLossPaired,
    primary,
    speedup,
    verdict: {
      primary: verdict.sentence,
      secondary,
      speedup: speedupSentence(a.arm, base.arm, speedup),
      separates: verdict.separates,
    },
  };
}
