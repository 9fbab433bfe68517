/**
 * The routing diagnostics of the LM runs (issue 15, item 5), as pure functions of host numbers — the runner
 * only hands them vectors it already reads back at a log or an evaluation, so none of them adds a GPU sync:
 *
 * - **MaxVio** (maximal violation of balance, Wang et al. 2024): `max_i load_i / mean load − 1`, 0 when balanced,
 *   E − 1 when every assignment goes to one expert; per batch (averaged over the steps of a log interval) and over
 *   the run (of the loads summed over all steps);
 * - **load CV**: the coefficient of variation (population SD / mean) of the per-expert loads;
 * - **MI(token id; expert)** in nats, with the entropy of the expert for scale: the plug-in estimate from the
 *   (token id, expert) counts of the fixed validation batches, in eval mode (for K > 1 every slot is a pair).
 *   The plug-in estimate is biased upwards when ids are many and tokens few (an id seen once "predicts" its
 *   expert perfectly), so the Miller–Madow correction is given too: the plug-in minus
 *   `(B_xy − B_x − B_y + 1) / (2M)`, B the occupied cells of the joint and marginal counts and M the pairs counted
 *   (it removes the first-order bias, not all of it); the `random` null control, whose true MI is 0, shows what
 *   is left;
 * - **router saturation**: how much of the final routing a token already has — the mean over the tokens of a fixed
 *   evaluation batch of `|S_t ∩ S_final| / K`, S the token's K experts (for K = 1 the fraction of tokens routed
 *   as at the end).
 *
 * @module
 */

/** `max / mean − 1` of per-expert loads (NaN for an empty or all-zero load). */
export function maxVio(load: readonly number[]): number {
  const m = load.reduce((a, b) => a + b, 0) / load.length;
  return m > 0 ? Math.max(...load) / m - 1 : NaN;
}

/** Population standard deviation / mean of per-expert loads (NaN for an empty or all-zero load). */
export function loadCv(load: readonly number[]): number {
  const n = load.length;
  const m = load.reduce((a, b) => a + b, 0) / n;
  if (!(m > 0)) return NaN;
  const v = load.reduce((s, x) => s + (x - m) ** 2, 0) / n;
  return Math.sqrt(v) / m;
}

/**
 * Plug-in mutual information (nats) between the token id and its expert, from `ids` (N) and `experts` (N·K, row
 * major: token t's K experts at t·K …), counting every (token, slot) pair; and the entropy of the expert (the MI's
 * upper bound).
 */
export function tokenExpertMI(
  ids: ArrayLike<number>,
  experts: ArrayLike<number>,
  numExperts: number,
): { mi: number; miCorrected: number; expertEntropy: number } {
  const n = ids.length;
  if (n === 0 || experts.length % n !== 0) {
    throw new RangeError(`tokenExpertMI: ${experts.length} experts for ${n} token ids`);
  }
  const k = experts.length / n;
  const joint = new Map<number, Float64Array>();
  const marginal = new Float64Array(numExperts);
  for (let t = 0; t < n; t++) {
    let row = joint.get(ids[t]);
    if (!row) joint.set(ids[t], row = new Float64Array(numExperts));
    for (let j = 0; j < k; j++) {
      const e = experts[t * k + j];
      row[e]++;
      marginal[e]++;
    }
  }
  const total = n * k;
  let expertEntropy = 0;
  for (const c of marginal) if (c > 0) expertEntropy -= (c / total) * Math.log(c / total);
  let mi = 0, cells = 0;
  for (const row of joint.values()) {
    const rowSum = row.reduce((a, b) => a + b, 0);
    for (let e = 0; e < numExperts; e++) {
      if (row[e] === 0) continue;
      cells++;
      mi += (row[e] / total) * Math.log((row[e] * total) / (rowSum * marginal[e]));
    }
  }
  const usedExperts = marginal.filter((c) => c > 0).length;
  const bias = (cells - joint.size - usedExperts + 1) / (2 * total);
  return { mi: Math.max(0, mi), miCorrected: mi - bias, expertEntropy };
}

/** Mean over tokens of `|S_a ∩ S_b| / K` for two routings of the same N tokens (N·K experts each, row major). */
export function routingAgreement(a: readonly number[], b: readonly number[], k: number): number {
  if (a.length !== b.length || a.length % k !== 0 || a.length === 0) {
    throw new RangeError(`routingAgreement: routings of ${a.length} and ${b.length} experts, K = ${k}`);
  }
  let shared = 0;
  for (let t = 0; t < a.length; t += k) {
    const final = new Set(b.slice(t, t + k));
    for (let j = 0; j < k; j++) if (final.has(a[t + j])) shared++;
  }
  return shared / a.length;
}

/**
 * The loads of a whole run from its log records' interval means (each record averages the steps since the
 * previous one, every step routing the same number of tokens): the step-weighted mean of the records' loads.
 */
export function runLoad(records: readonly { step: number; load: readonly number[] }[]): number[] {
  if (records.length === 0) return [];
  const sum = new Array(records[0].load.length).fill(0);
  let prev = 0, steps = 0;
  for (const r of records) {
    const w = r.step - prev;
    prev = r.step;
    steps += w;
    r.load.forEach((v, i) => sum[i] += w * v);
  }
  return sum.map((v) => v / steps);
}
