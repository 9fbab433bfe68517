/**
 * The experiments' declared primary test and the sentences the report states about the comparisons. An
 * experiment declares ONE primary endpoint and test before any run (in `presets.ts`); the headline verdict — and
 * the `separates` flag of `summary.json` — comes from exactly that test, so the report cannot pick whichever of
 * several tests looks best afterwards. Every other result is stated, labelled secondary.
 *
 * The primary test is paired by seed: with the same seed the runner gives every arm the same initial weights and
 * batches, so the per-seed difference removes that shared noise, and only seeds finished in both arms pair.
 *
 * @module
 */
import { MIN_SEEDS_BOOTSTRAP, MIN_SEEDS_T, tooFewSeeds } from "../common/stats.ts";
import type { Difference, PairedDifference, Speedup } from "./aggregate.ts";

/** The endpoints a primary test can be about (a final eval-mode loss, arm − baseline). */
export type PrimaryEndpoint = "finalValidLoss" | "finalOodLoss";

/** An experiment's primary test. */
export interface PrimaryTest {
  /** The quantity compared. */
  endpoint: PrimaryEndpoint;
  /** The test: a two-sided paired t-test over the seeds finished in both arms (arm − baseline). */
  test: "paired-t";
}

/** What the LM experiments declare unless told otherwise: final validation loss, paired t over seeds. */
export const DEFAULT_PRIMARY_TEST: PrimaryTest = { endpoint: "finalValidLoss", test: "paired-t" };

const ENDPOINT_NAMES: Record<PrimaryEndpoint, string> = {
  finalValidLoss: "final validation loss",
  finalOodLoss: "final out-of-domain loss",
};

/** "final validation loss, arm − baseline, paired t-test over seeds" — for the report's method section. */
export function describePrimaryTest(p: PrimaryTest): string {
  return `${ENDPOINT_NAMES[p.endpoint]} (eval mode, at the last step), arm − baseline, two-sided paired t-test ` +
    `over the seeds finished in both arms, 95% CI`;
}

function nats(x: number): string {
  return x.toFixed(4);
}

function droppedNote(d: PairedDifference, arm: string, baseline: string): string {
  const parts: string[] = [];
  if (d.unpairedArm.length) parts.push(`${arm} seed(s) ${d.unpairedArm.join(", ")}`);
  if (d.unpairedBaseline.length) parts.push(`${baseline} seed(s) ${d.unpairedBaseline.join(", ")}`);
  return parts.length
    ? ` Only seeds finished in both arms are paired (seeds: ${d.seeds.join(", ") || "none"}); left out: ` +
      `${parts.join(" and ")}, finished in one arm only.`
    : "";
}

/** The headline sentence and whether the arms separate, from the primary test's result alone. */
export function primaryVerdict(
  arm: string,
  baseline: string,
  primary: PrimaryTest,
  d: PairedDifference,
): { sentence: string; separates: boolean } {
  const what = ENDPOINT_NAMES[primary.endpoint];
  const head = `Primary test (${what}, ${arm} − ${baseline}, paired t over seeds):`;
  const dropped = droppedNote(d, arm, baseline);
  if (d.n < MIN_SEEDS_T || !Number.isFinite(d.lo)) {
    return {
      sentence: `${head} ${tooFewSeeds(d.n, MIN_SEEDS_T)} finished in both arms; no claim either way.${dropped}`,
      separates: false,
    };
  }
  const numbers = `mean paired difference ${nats(d.diff)} nats over n = ${d.n} seeds, 95% CI ` +
    `[${nats(d.lo)}, ${nats(d.hi)}], p = ${d.p.toPrecision(2)}`;
  if (d.hi < 0 || d.lo > 0) {
    return {
      sentence: `${head} ${arm} ends ${d.diff < 0 ? "lower" : "higher"} than ${baseline} (${numbers}; the CI ` +
        `excludes 0): the arms separate beyond seed noise.${dropped}`,
      separates: true,
    };
  }
  return {
    sentence: `${head} ${arm} and ${baseline} do NOT separate beyond seed noise (${numbers}; the CI contains 0).` +
      dropped,
    separates: false,
  };
}

/** The secondary, unpaired comparison of a final loss (Welch), labelled as such. */
export function welchSentence(arm: string, baseline: string, what: string, d: Difference, n: [number, number]) {
  const head = `Secondary (${what}, unpaired Welch t, ${arm} n = ${n[0]}, ${baseline} n = ${n[1]}):`;
  if (!Number.isFinite(d.lo)) return `${head} ${tooFewSeeds(Math.min(...n), MIN_SEEDS_T)} per arm.`;
  return `${head} difference ${nats(d.diff)} nats, 95% CI [${nats(d.lo)}, ${nats(d.hi)}], p = ${d.p.toPrecision(2)}.`;
}

/** The secondary speed-up sentence: a bootstrap interval only from enough seeds. */
export function speedupSentence(arm: string, baseline: string, sp: Speedup | null): string {
  const head = `Secondary (speed-up to the target loss, ${arm} over ${baseline}):`;
  if (!sp) return `${head} undefined (an arm has no finished seed that reached the target).`;
  const ratio = `${sp.ratio.toFixed(2)}× (mean steps of ${baseline} / ${arm}; seeds that reached the target: ` +
    `${arm} ${sp.seedsReached[1]}, ${baseline} ${sp.seedsReached[0]})`;
  if (!Number.isFinite(sp.lo)) {
    return `${head} ${ratio}; no interval: ${tooFewSeeds(Math.min(...sp.seedsReached), MIN_SEEDS_BOOTSTRAP)} ` +
      `per arm for a bootstrap, so no speed-up claim either way.`;
  }
  const excludes = sp.lo > 1 || sp.hi < 1;
  return `${head} ${ratio}, bootstrap 95% CI [${sp.lo.toFixed(2)}, ${sp.hi.toFixed(2)}], which ` +
    (excludes ? "excludes 1." : "contains 1: no convergence-speed difference beyond seed noise.");
}
