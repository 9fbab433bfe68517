/**
 * The sentences of a report's null-control section (the LM experiments', `exp:routing-recovery`'s): one per
 * (learned arm, control) pair from its paired difference learned − control on the primary metric, and one overall
 * sentence saying whether learned routing beats the controls at this scale — never more than the intervals
 * support: "beats" only when the 95% CI of learned − control lies entirely on the better side of 0 (below 0 for a
 * loss, above 0 for a recovery score: {@link ControlScale}), and no claim at all without enough seeds finished in
 * both arms.
 *
 * @module
 */
import { MIN_SEEDS_T, tooFewSeeds } from "./stats.ts";

/** How a learned arm fares against a control. */
export type ControlOutcome = "beats" | "loses" | "no-difference" | "too-few-seeds";

/** One learned arm against one control: the paired difference learned − control over the seeds both finished. */
export interface ControlPair {
  /** The learned arm. */
  learned: string;
  /** The control arm. */
  control: string;
  /** Mean difference learned − control, its 95% paired-t interval (NaN edges: too few pairs) and the pairs. */
  paired: { diff: number; lo: number; hi: number; n: number };
}

/** Which direction of the metric is better, and how its numbers are written. */
export interface ControlScale {
  /** "lower" for a loss, "higher" for a score. */
  better: "lower" | "higher";
  /** Unit after a number ("" for none). */
  unit: string;
  /** Decimals. */
  digits: number;
}

/** The LM experiments' scale: a loss in nats, lower is better. */
export const LOSS_NATS: ControlScale = { better: "lower", unit: "nats", digits: 4 };

/** The outcome of one comparison (see the module docs). */
export function controlOutcome(c: ControlPair, scale: ControlScale = LOSS_NATS): ControlOutcome {
  const d = c.paired;
  if (d.n < MIN_SEEDS_T || !Number.isFinite(d.lo)) return "too-few-seeds";
  const [betterSide, worseSide] = scale.better === "lower" ? [d.hi < 0, d.lo > 0] : [d.lo > 0, d.hi < 0];
  if (betterSide) return "beats";
  if (worseSide) return "loses";
  return "no-difference";
}

/** One sentence for one comparison. */
export function controlSentence(c: ControlPair, scale: ControlScale = LOSS_NATS): string {
  const d = c.paired;
  const pair = `\`${c.learned}\` − \`${c.control}\``;
  const num = (x: number) => x.toFixed(scale.digits);
  const unit = scale.unit ? ` ${scale.unit}` : "";
  const numbers = () => `${num(d.diff)}${unit}, 95% CI [${num(d.lo)}, ${num(d.hi)}], n = ${d.n} seeds`;
  const side = scale.better; // "lower" or "higher": where the better arm ends
  switch (controlOutcome(c, scale)) {
    case "too-few-seeds":
      return `${pair}: ${tooFewSeeds(d.n, MIN_SEEDS_T)} finished in both arms; no claim either way.`;
    case "beats":
      return `${pair}: ${numbers()}: \`${c.learned}\` ends ${side}, beyond seed noise.`;
    case "loses":
      return `${pair}: ${numbers()}: the control \`${c.control}\` ends ${side.toUpperCase()} than the learned router.`;
    case "no-difference":
      return `${pair}: ${numbers()}: the CI contains 0, so \`${c.learned}\` does NOT beat \`${c.control}\` beyond ` +
        "seed noise.";
  }
}

/** The overall sentence: whether learned routing beats the controls at this scale, and what that means. */
export function controlsSummary(
  comparisons: readonly ControlPair[],
  controlArms: readonly string[],
  scale: ControlScale = LOSS_NATS,
): string {
  if (controlArms.length === 0) {
    return "No null control ran (the arms left them out), so nothing here says whether learned routing matters at " +
      "this scale.";
  }
  if (comparisons.length === 0) return "No learned arm ran, so there is nothing to compare the controls with.";
  const outcomes = comparisons.map((c) => controlOutcome(c, scale));
  if (outcomes.every((o) => o === "too-few-seeds")) {
    return "Too few seeds finished to compare the learned routers with the null controls: no claim either way.";
  }
  const pairs = (o: ControlOutcome) =>
    comparisons.filter((_, i) => outcomes[i] === o).map((c) => `${c.learned} vs ${c.control}`).join(", ");
  const unsettled = outcomes.some((o) => o === "too-few-seeds") ? ` (no claim for ${pairs("too-few-seeds")})` : "";
  if (outcomes.every((o) => o === "beats")) {
    return "Every learned router beats every null control beyond seed noise: learned routing matters at this scale, " +
      "so differences between the learned routers can reflect routing quality (each still needs its own test).";
  }
  if (!outcomes.includes("beats")) {
    return "No learned router beats any null control beyond seed noise" + unsettled + ": at this scale and with " +
      "these seeds, routing learned by gradient is not shown to matter, so a difference between the learned " +
      "routers here cannot be read as one router routing better than another.";
  }
  return `The learned routers beat some null controls but not all: not beaten beyond seed noise: ` +
    `${[pairs("no-difference"), pairs("loses")].filter(Boolean).join(", ")}${unsettled}. Where a learned router ` +
    "does not beat a control, a comparison at this scale says little about how well it routes.";
}
