/**
 * The two parts of the LM aggregation that say whether a comparison can mean anything at all:
 *
 * - **Null controls** ({@link compareWithControls}): every learned arm against every null-control arm (`random`,
 *   `hash`, `frozen`; ESTIMATORS.md §12) on the primary endpoint, paired by seed (learned − control; below 0:
 *   the learned router ends lower). Only finished runs count, and only seeds finished in both arms pair.
 * - **Power** ({@link powerRows}): for each comparison with the baseline, the SD of its per-seed differences, the
 *   minimum difference its seeds could detect and the seeds needed for the effect the paper claims, translated into
 *   the primary endpoint: exact power of the paired two-sided t-test (noncentral t; α = 0.05, power 0.8;
 *   `experiments/common/power.ts`).
 *
 * @module
 */
import { interpolate, type PairedDifference, pairedDifference } from "./aggregate.ts";
import type { ArmAggregate, Summary } from "./aggregate.ts";
import type { ClaimedEffect } from "./experiment_schema.ts";
import type { PrimaryTest } from "./verdicts.ts";
import { minDetectableDifference, seedsNeeded } from "../common/power.ts";
import { sampleStd } from "../common/stats.ts";

/** The significance level and power of the power section. */
export const POWER_ALPHA = 0.05;
/** See {@link POWER_ALPHA}. */
export const POWER_TARGET = 0.8;
/** The most seeds the power section searches; a larger need is shown as "> MAX_SEEDS_SEARCHED". */
export const MAX_SEEDS_SEARCHED = 100_000;
/** Reference effects (nats) for which the report lists the seeds needed, besides the paper's. */
export const REFERENCE_EFFECTS: readonly number[] = [0.01, 0.02, 0.05];

/** One learned arm against one null control, on the primary endpoint (learned − control, paired by seed). */
export interface ControlComparison {
  /** The learned arm. */
  learned: string;
  /** The control arm. */
  control: string;
  /** The paired difference. */
  paired: PairedDifference;
}

/** The primary endpoint's per-seed values of an arm. */
function primaryValues(a: ArmAggregate, primary: PrimaryTest): { seed: number; value: number }[] {
  const s: Summary = primary.endpoint === "finalOodLoss" ? a.final.oodLoss : a.final.validLoss;
  return a.seeds.map((seed, i) => ({ seed, value: s.values[i] }));
}

/** Every learned arm (not in `controls`) against every control arm present, in arm order. */
export function compareWithControls(
  arms: readonly ArmAggregate[],
  controls: readonly string[],
  primary: PrimaryTest,
): ControlComparison[] {
  const isControl = new Set(controls);
  const out: ControlComparison[] = [];
  for (const learned of arms.filter((a) => !isControl.has(a.arm))) {
    for (const control of arms.filter((a) => isControl.has(a.arm))) {
      out.push({
        learned: learned.arm,
        control: control.arm,
        paired: pairedDifference(primaryValues(learned, primary), primaryValues(control, primary)),
      });
    }
  }
  return out;
}

/** The power of one comparison with the baseline. */
export interface PowerRow {
  /** The compared arm. */
  arm: string;
  /** Seeds paired. */
  n: number;
  /** SD of the per-seed differences (NaN with fewer than 2). */
  sd: number;
  /** The minimum paired difference these seeds detect at α = 0.05 with power 0.8 (NaN: no SD). */
  minDetectable: number;
  /**
   * Seeds needed for each of {@link REFERENCE_EFFECTS} (same order): Infinity beyond {@link MAX_SEEDS_SEARCHED},
   * NaN without an SD.
   */
  seedsForReference: number[];
  /** Seeds needed for the paper's claimed effect (null: no claim, or it could not be translated; else as above). */
  seedsForClaim: number | null;
}

/** The paper's claimed effect in nats of the primary endpoint, and how it was obtained (null: none). */
export interface ClaimedEffectNats {
  /** The effect (nats; positive = the method's loss lower by this much); NaN when it could not be translated. */
  nats: number;
  /** How it was obtained, in words. */
  rule: string;
}

/**
 * The claimed effect in nats of the baseline's final validation loss. A speed-up factor f ("reaches the same loss
 * f× sooner") becomes `L_base(T / f) − L_base(T)` on the baseline's mean validation curve: the loss the baseline
 * gains over its last (1 − 1/f) of training, which a method f× faster would have gained over the same steps. Loss
 * curves flatten, so this overstates what the method would gain at step T, and the seeds needed are a floor.
 */
export function claimedEffectNats(
  claim: ClaimedEffect | null,
  baseline: ArmAggregate | undefined,
  steps: number,
): ClaimedEffectNats | null {
  if (!claim) return null;
  if (claim.kind === "nats") return { nats: claim.nats, rule: `${claim.nats} nats, as claimed (${claim.source})` };
  const curve = baseline?.valid.loss;
  const early = steps / claim.factor;
  // The curve must have an evaluation at or before T / f (else interpolation would clamp to a later point).
  if (!curve || !curve.steps.some((st) => st <= early)) {
    return {
      nats: NaN,
      rule: `${claim.source}: a ${claim.factor}× speed-up, which cannot be translated here: the baseline has no ` +
        `validation evaluation at or before step ${Math.round(early)}`,
    };
  }
  const nats = interpolate(curve.steps, curve.mean, early) - interpolate(curve.steps, curve.mean, steps);
  if (!(nats > 0)) {
    return {
      nats: NaN,
      rule: `${claim.source}: a ${claim.factor}× speed-up, which cannot be translated here: the baseline's mean ` +
        `validation loss did not fall between steps ${Math.round(early)} and ${steps}`,
    };
  }
  return {
    nats,
    rule: `${claim.source}: a ${claim.factor}× speed-up, translated as the baseline's mean validation loss at ` +
      `step ${Math.round(steps / claim.factor)} minus at step ${steps} (an upper bound of the gain at step ${steps}, ` +
      "so the seeds needed are a floor)",
  };
}

/** The power of each comparison with the baseline on the primary endpoint. */
export function powerRows(
  arms: readonly ArmAggregate[],
  baseline: string,
  primary: PrimaryTest,
  claim: ClaimedEffectNats | null,
): PowerRow[] {
  const base = arms.find((a) => a.arm === baseline);
  if (!base) return [];
  const baseValues = new Map(primaryValues(base, primary).map((v) => [v.seed, v.value]));
  return arms.filter((a) => a.arm !== baseline).map((a) => {
    const diffs = primaryValues(a, primary)
      .filter((v) => Number.isFinite(v.value) && Number.isFinite(baseValues.get(v.seed) ?? NaN))
      .map((v) => v.value - baseValues.get(v.seed)!);
    const sd = diffs.length >= 2 ? sampleStd(diffs) : NaN;
    const ok = Number.isFinite(sd);
    const opts = { alpha: POWER_ALPHA, power: POWER_TARGET };
    // null from seedsNeeded: more than the search's maximum (the effects here are finite and nonzero).
    const need = (effect: number) =>
      ok ? seedsNeeded(effect, sd, { ...opts, max: MAX_SEEDS_SEARCHED }) ?? Infinity : NaN;
    return {
      arm: a.arm,
      n: diffs.length,
      sd,
      minDetectable: ok ? minDetectableDifference(sd, diffs.length, opts) : NaN,
      seedsForReference: REFERENCE_EFFECTS.map(need),
      seedsForClaim: claim && ok && Number.isFinite(claim.nats) ? need(claim.nats) : null,
    };
  });
}
