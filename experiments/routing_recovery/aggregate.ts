/**
 * Aggregation of `exp:routing-recovery`: per cell and arm, the final metrics' means with 95% Student-t intervals
 * across seeds (kept inside each metric's range) and the mean curves; per cell, every arm's paired-by-seed
 * differences from the declared baseline arm (over the seeds both finished), with t intervals, p-values (and
 * Holm-adjusted p over the arms of the cell for the primary metric), and the power of the primary test: the
 * minimum detectable difference of those seeds and their observed SD, and the seeds needed to detect the
 * declared effect size. The baseline comparisons are over the learned arms; every learned arm (the baseline
 * included) is also compared with every control arm (`plan.ts`) on the primary metric, paired by seed, to say
 * whether learned routing beats routing that ignores what the router learns. The reference arm (`oracle`) is
 * summarised but in no comparison. Runs that did not finish are never in any number; they are listed instead.
 *
 * @module
 */
import { clampInterval, mean, meanCI, pairedTTest, sampleStd, type ValueRange } from "../common/stats.ts";
import { minDetectableDifference, seedsNeeded } from "../common/power.ts";
import type { ControlPair, ControlScale } from "../common/control_verdicts.ts";
import { baselineNames, PRIMARY_METRICS, type PrimaryMetric, type RoutingRecoveryConfig } from "./config.ts";
import type { ArmRole, Cell, PlannedRun, SkippedArm } from "./plan.ts";
import type { RunRecord } from "./store.ts";

/** The final metrics aggregated per arm. */
export const FINAL_METRICS = [
  "heldLoss",
  "nmi",
  "accuracy",
  "mi",
  "purity",
  "trainLoss",
  "unrouted",
  "nmiArgmax",
  "accuracyArgmax",
] as const;

/** A final metric name. */
export type FinalMetric = typeof FINAL_METRICS[number];

/** The range of each final metric (intervals are clamped to it). */
export const METRIC_RANGES: Record<FinalMetric, ValueRange> = {
  heldLoss: { min: 0, max: Infinity },
  trainLoss: { min: 0, max: Infinity },
  nmi: { min: 0, max: 1 },
  accuracy: { min: 0, max: 1 },
  purity: { min: 0, max: 1 },
  mi: { min: 0, max: Infinity },
  unrouted: { min: 0, max: 1 },
  nmiArgmax: { min: 0, max: 1 },
  accuracyArgmax: { min: 0, max: 1 },
};

/** How a primary metric's numbers are read in the control comparisons: a loss is better lower, recovery higher. */
export function metricScale(metric: PrimaryMetric): ControlScale {
  return { better: metric === "heldLoss" ? "lower" : "higher", unit: "", digits: 3 };
}

/** A mean with its 95% interval (NaN edges with fewer than 2 seeds). */
export interface Interval {
  /** Mean. */
  mean: number;
  /** Lower edge. */
  lo: number;
  /** Upper edge. */
  hi: number;
}

/** One arm of one cell, over its finished seeds. */
export interface ArmSummary {
  /** Arm name. */
  arm: string;
  /** Learned, control or reference (`plan.ts`). */
  role: ArmRole;
  /** Its K. */
  k: number;
  /** Finished seeds. */
  seeds: number[];
  /** Final metrics. */
  final: Record<FinalMetric, Interval>;
  /** Steps to the target loss: seeds that reached it, and the mean (interval) over those. */
  toTarget: { reached: number; steps: Interval };
  /** Mean curves at the evaluation steps. */
  curve: { step: number[]; heldLoss: number[]; nmi: number[]; accuracy: number[]; nmiArgmax: number[] };
}

/** A paired difference arm − baseline on one metric. */
export interface PairedDiff {
  /** Pairs (seeds both finished). */
  n: number;
  /** Mean difference. */
  diff: number;
  /** 95% interval. */
  lo: number;
  /** Upper edge. */
  hi: number;
  /** Two-sided p. */
  p: number;
  /** SD of the per-seed differences. */
  sd: number;
}

/** A learned arm against a control arm on the primary metric (learned − control, paired by seed). */
export interface ControlComparison extends ControlPair {
  /** The paired difference. */
  paired: PairedDiff;
}

/** An arm compared with the baseline in a cell. */
export interface Comparison {
  /** Arm. */
  arm: string;
  /** Differences on the primary metric and the others. */
  diffs: Record<PrimaryMetric, PairedDiff>;
  /** Holm-adjusted p of the primary metric over the cell's comparisons. */
  holmP: number;
  /** Minimum detectable difference of the primary metric (power 0.8, α = 0.05) with these seeds and SD. */
  mdd: number;
  /** Seeds needed to detect the declared effect with that SD (null: not computable or > 100 000). */
  seedsForEffect: number | null;
}

/** One cell's aggregate. */
export interface CellSummary {
  /** The cell. */
  cell: Cell;
  /** Its arms, in order. */
  arms: ArmSummary[];
  /** Each learned non-baseline arm vs the baseline (empty when the baseline has no finished runs). */
  comparisons: Comparison[];
  /** The control arms planned in this cell. */
  controlArms: string[];
  /** Every learned arm vs every control arm with finished runs, on the primary metric. */
  controls: ControlComparison[];
  /** This cell's baseline: the first arm of `primary.baseline` that runs in it (null: none does). */
  baseline: string | null;
}

/** The whole aggregate. */
export interface Aggregate {
  /** Per cell. */
  cells: CellSummary[];
  /** Runs without a result file. */
  missing: string[];
  /** Runs that failed (id → first line of the error). */
  failed: Record<string, string>;
  /** Registered estimators left out. */
  skipped: SkippedArm[];
  /** Finished runs, canonical order. */
  records: RunRecord[];
  /** Planned runs. */
  planned: number;
}

function interval(xs: number[], range: ValueRange): Interval {
  const ci = meanCI(xs);
  return { mean: ci.mean, ...clampInterval(ci.lo, ci.hi, range) };
}

/** Holm step-down adjusted p-values (same order as the input; NaN stays NaN and is not counted). */
export function holmAdjust(ps: readonly number[]): number[] {
  const idx = ps.map((p, i) => [p, i] as const).filter(([p]) => Number.isFinite(p)).sort((a, b) => a[0] - b[0]);
  const out = ps.map(() => NaN);
  let running = 0;
  idx.forEach(([p, i], rank) => {
    running = Math.max(running, Math.min(1, (idx.length - rank) * p));
    out[i] = running;
  });
  return out;
}

function meanCurve(runs: RunRecord[], key: "heldLoss" | "nmi" | "accuracy" | "nmiArgmax"): number[] {
  return runs[0].step.map((_, i) => mean(runs.map((r) => r[key][i])));
}

function summariseArm(arm: string, role: ArmRole, runs: RunRecord[]): ArmSummary {
  const final = Object.fromEntries(
    FINAL_METRICS.map((m) => [m, interval(runs.map((r) => r.final[m]), METRIC_RANGES[m])]),
  ) as Record<FinalMetric, Interval>;
  const reached = runs.map((r) => r.stepsToTarget).filter((s): s is number => s !== null);
  return {
    arm,
    role,
    k: runs[0].k,
    seeds: runs.map((r) => r.seed),
    final,
    toTarget: { reached: reached.length, steps: interval(reached, { min: 0, max: Infinity }) },
    curve: {
      step: runs[0].step,
      heldLoss: meanCurve(runs, "heldLoss"),
      nmi: meanCurve(runs, "nmi"),
      accuracy: meanCurve(runs, "accuracy"),
      nmiArgmax: meanCurve(runs, "nmiArgmax"),
    },
  };
}

function paired(arm: RunRecord[], base: RunRecord[], metric: PrimaryMetric): PairedDiff {
  const bySeed = new Map(base.map((r) => [r.seed, r.final[metric]]));
  const d = arm.filter((r) => bySeed.has(r.seed)).map((r) => r.final[metric] - bySeed.get(r.seed)!);
  const t = pairedTTest(d);
  return { n: t.n, diff: t.diff, lo: t.lo, hi: t.hi, p: t.p, sd: sampleStd(d) };
}

/**
 * Aggregates the finished runs of a config. `records` maps run id → its record (finished runs only), `failed`
 * run id → error; planned runs with neither are missing.
 */
export function aggregate(
  config: RoutingRecoveryConfig,
  planned: readonly PlannedRun[],
  skipped: readonly SkippedArm[],
  records: ReadonlyMap<string, RunRecord>,
  failed: ReadonlyMap<string, string>,
): Aggregate {
  const { metric, effect } = config.primary;
  const cellOrder: Cell[] = [];
  for (const r of planned) if (!cellOrder.some((c) => c.id === r.cell.id)) cellOrder.push(r.cell);
  const cells = cellOrder.map((cell): CellSummary => {
    const inCell = planned.filter((r) => r.cell.id === cell.id);
    const roleOf = new Map(inCell.map((r) => [r.arm.name, r.arm.role]));
    const armNames = [...roleOf.keys()];
    const runsOf = (arm: string) =>
      inCell.filter((r) => r.arm.name === arm && records.has(r.id)).map((r) => records.get(r.id)!);
    const arms = armNames.filter((a) => runsOf(a).length > 0).map((a) => summariseArm(a, roleOf.get(a)!, runsOf(a)));
    const learned = arms.filter((a) => a.role === "learned");
    const baseline = baselineNames(config.primary.baseline).find((b) => roleOf.get(b) === "learned") ?? null;
    const base = baseline === null ? [] : runsOf(baseline);
    const raw = base.length === 0 ? [] : learned.filter((a) => a.arm !== baseline).map((a) => {
      const runs = runsOf(a.arm);
      const diffs = Object.fromEntries(PRIMARY_METRICS.map((m) => [m, paired(runs, base, m)])) as Record<
        PrimaryMetric,
        PairedDiff
      >;
      const primary = diffs[metric];
      return {
        arm: a.arm,
        diffs,
        mdd: minDetectableDifference(primary.sd, primary.n),
        seedsForEffect: seedsNeeded(effect, primary.sd),
      };
    });
    const holm = holmAdjust(raw.map((c) => c.diffs[metric].p));
    const controlArms = armNames.filter((a) => roleOf.get(a) === "control");
    const controls = learned.flatMap((l) =>
      arms.filter((c) => c.role === "control").map((c) => ({
        learned: l.arm,
        control: c.arm,
        paired: paired(runsOf(l.arm), runsOf(c.arm), metric),
      }))
    );
    return {
      cell,
      arms,
      comparisons: raw.map((c, i) => ({ ...c, holmP: holm[i] })),
      baseline,
      controlArms,
      controls,
    };
  });
  const finished = planned.filter((r) => records.has(r.id)).map((r) => records.get(r.id)!);
  return {
    cells,
    missing: planned.filter((r) => !records.has(r.id) && !failed.has(r.id)).map((r) => r.id),
    failed: Object.fromEntries(planned.filter((r) => failed.has(r.id)).map((r) => [r.id, failed.get(r.id)!])),
    skipped: [...skipped],
    records: finished,
    planned: planned.length,
  };
}
