/**
 * The sentences of the report's null-control section: one per (learned arm, control) pair from its paired
 * difference on the primary endpoint, and one overall sentence saying whether learned routing beats the controls
 * at this scale — never more than the intervals support: "beats" only when the 95% CI of learned − control lies
 * below 0, and no claim at all without enough seeds finished in both arms.
 *
 * @module
 */
import { MIN_SEEDS_T, tooFewSeeds } from "../common/stats.ts";
import type { ControlComparison } from "./aggregate_controls.ts";

/** How a learned arm fares against a control. */
export type ControlOutcome = "beats" | "loses" | "no-difference" | "too-few-seeds";

/** The outcome of one comparison (see the module docs). */
export function controlOutcome(c: ControlComparison): ControlOutcome {
  const d = c.paired;
  if (d.n < MIN_SEEDS_T || !Number.isFinite(d.lo)) return "too-few-seeds";
  if (d.hi < 0) return "beats";
  if (d.lo > 0) return "loses";
  return "no-difference";
}

const nats = (x: number) => x.toFixed(4);

/** One sentence for one comparison. */
export function controlSentence(c: ControlComparison): string {
  const d = c.paired;
  const pair = `\`${c.learned}\` − \`${c.control}\``;
  const numbers = () => `${nats(d.diff)} nats, 95% CI [${nats(d.lo)}, ${nats(d.hi)}], n = ${d.n} seeds`;
  switch (controlOutcome(c)) {
    case "too-few-seeds":
      return `${pair}: ${tooFewSeeds(d.n, MIN_SEEDS_T)} finished in both arms; no claim either way.`;
    case "beats":
      return `${pair}: ${numbers()}: \`${c.learned}\` ends lower, beyond seed noise.`;
    case "loses":
      return `${pair}: ${numbers()}: the control \`${c.control}\` ends LOWER than the learned router.`;
    case "no-difference":
      return `${pair}: ${numbers()}: the CI contains 0, so \`${c.learned}\` does NOT beat \`${c.control}\` beyond ` +
        "seed noise.";
  }
}

/** The overall sentence: whether learned routing beats the controls at this scale, and what that means. */
export function controlsSummary(comparisons: readonly ControlComparison[], controlArms: readonly string[]): string {
  if (controlArms.length === 0) {
    return "No null control ran (the arms left them out), so nothing here says whether learned routing matters at " +
      "this scale.";
  }
  if (comparisons.length === 0) return "No learned arm ran, so there is nothing to compare the controls with.";
  const outcomes = comparisons.map(controlOutcome);
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
