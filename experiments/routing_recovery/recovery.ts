/**
 * How well a routing recovers the true clusters of `exp:routing-recovery`, from the contingency table
 * n(c, e) = number of held-out samples of true cluster c routed to expert e (C clusters, E experts, N samples).
 *
 * - **Mutual information** I(cluster; expert) = Σ p(c,e) ln(p(c,e) / (p(c) p(e))) in nats, the plug-in estimate
 *   from the table (p = n / N). Its largest possible value for a routing into E experts is
 *   min(H(cluster), ln E): a routing cannot carry more than the cluster entropy, nor more than ln E through E
 *   experts. **Normalised MI** = I / min(H(cluster), ln E) (H from the same table), so 1 means the best any
 *   routing can do, and 0 a routing independent of the cluster. The plug-in estimate is biased upward by about
 *   (C − 1)(E − 1) / (2N) nats for an independent routing (Miller–Madow), e.g. 0.0044 for C = E = 4, N = 1024.
 * - **Best-assignment accuracy**: the fraction of samples whose expert is their cluster's expert under the
 *   best assignment of clusters to experts in which every expert receives at most m = ⌈C / E⌉ clusters. For
 *   C ≤ E (m = 1) this is the best one-to-one cluster → expert matching; for C = m·E each expert takes exactly m
 *   clusters, which is what the task's optimal routing does. It is solved exactly as a linear assignment
 *   (Hungarian algorithm) of the C clusters to m copies of each expert. The cap matters: without it (each cluster
 *   mapped to its majority expert) a router that sends everything to one expert would score 1.
 * - **Purity** (reported beside it, for reference): the unconstrained many-to-one version, Σ_c max_e n(c,e) / N,
 *   each cluster mapped to its majority expert; it does not penalise collapse onto few experts.
 *
 * A sample that a router sends to no expert (expert label −1, e.g. a router whose experts choose their tokens)
 * counts as wrong in the accuracy and purity, and as its own outcome ("unrouted") in the mutual information; its
 * share is reported as `unrouted`.
 *
 * @module
 */

/** Recovery metrics of one routing of a labelled set. */
export interface Recovery {
  /** I(cluster; expert) in nats (plug-in). */
  mi: number;
  /** I / min(H(cluster), ln E) ∈ [0, 1] (0 when the bound is 0: a single cluster or expert). */
  nmi: number;
  /** Best-assignment accuracy ∈ [0, 1] (each expert takes at most ⌈C/E⌉ clusters). */
  accuracy: number;
  /** Purity: each cluster mapped to its majority expert (no cap) ∈ [0, 1]. */
  purity: number;
  /** Fraction of samples per expert, [E]. */
  load: number[];
  /** Fraction of samples routed to no expert (label −1). */
  unrouted: number;
}

/**
 * The contingency table n[c][e] of labels `clusters` (0 … C−1) against `experts` (0 … E−1); with
 * `allowUnrouted`, expert −1 (no expert) is counted in an extra last column.
 */
export function contingency(
  clusters: ArrayLike<number>,
  experts: ArrayLike<number>,
  numClusters: number,
  numExperts: number,
  allowUnrouted = false,
): number[][] {
  if (clusters.length !== experts.length) {
    throw new RangeError(`contingency: ${clusters.length} cluster labels but ${experts.length} expert labels`);
  }
  const cols = numExperts + (allowUnrouted ? 1 : 0);
  const n = Array.from({ length: numClusters }, () => new Array<number>(cols).fill(0));
  for (let i = 0; i < clusters.length; i++) {
    const c = clusters[i], e = experts[i];
    if (!(Number.isInteger(c) && c >= 0 && c < numClusters)) {
      throw new RangeError(`contingency: cluster label ${c} at ${i} is not in 0…${numClusters - 1}`);
    }
    if (allowUnrouted && e === -1) {
      n[c][numExperts]++;
      continue;
    }
    if (!(Number.isInteger(e) && e >= 0 && e < numExperts)) {
      throw new RangeError(`contingency: expert label ${e} at ${i} is not in 0…${numExperts - 1}`);
    }
    n[c][e]++;
  }
  return n;
}

function entropy(counts: readonly number[], total: number): number {
  let h = 0;
  for (const k of counts) if (k > 0) h -= (k / total) * Math.log(k / total);
  return h;
}

/** Plug-in mutual information (nats) of a contingency table. */
export function mutualInformation(table: readonly (readonly number[])[]): number {
  const rows = table.map((r) => r.reduce((s, x) => s + x, 0));
  const cols = table[0]?.map((_, j) => table.reduce((s, r) => s + r[j], 0)) ?? [];
  const total = rows.reduce((s, x) => s + x, 0);
  if (total === 0) return 0;
  let mi = 0;
  for (let i = 0; i < table.length; i++) {
    for (let j = 0; j < table[i].length; j++) {
      const k = table[i][j];
      if (k > 0) mi += (k / total) * Math.log((k * total) / (rows[i] * cols[j]));
    }
  }
  return Math.max(0, mi);
}

/**
 * Minimum-cost assignment of every row of `cost` (R × K, R ≤ K) to a distinct column (Hungarian algorithm with
 * potentials, O(R²K)); returns the column of each row.
 */
export function assignRows(cost: readonly (readonly number[])[]): number[] {
  const r = cost.length;
  if (r === 0) return [];
  const k = cost[0].length;
  if (r > k) throw new RangeError(`assignRows: ${r} rows need at least as many columns, got ${k}`);
  // 1-based arrays: column 0 is the virtual start of each augmenting path.
  const u = new Array<number>(r + 1).fill(0);
  const v = new Array<number>(k + 1).fill(0);
  const rowOfCol = new Array<number>(k + 1).fill(0);
  const way = new Array<number>(k + 1).fill(0);
  for (let i = 1; i <= r; i++) {
    rowOfCol[0] = i;
    let j0 = 0;
    const minv = new Array<number>(k + 1).fill(Infinity);
    const used = new Array<boolean>(k + 1).fill(false);
    do {
      used[j0] = true;
      const i0 = rowOfCol[j0];
      let delta = Infinity;
      let j1 = 0;
      for (let j = 1; j <= k; j++) {
        if (used[j]) continue;
        const cur = cost[i0 - 1][j - 1] - u[i0] - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (let j = 0; j <= k; j++) {
        if (used[j]) {
          u[rowOfCol[j]] += delta;
          v[j] -= delta;
        } else minv[j] -= delta;
      }
      j0 = j1;
    } while (rowOfCol[j0] !== 0);
    do {
      const j1 = way[j0];
      rowOfCol[j0] = rowOfCol[j1];
      j0 = j1;
    } while (j0 !== 0);
  }
  const colOfRow = new Array<number>(r).fill(-1);
  for (let j = 1; j <= k; j++) if (rowOfCol[j] > 0) colOfRow[rowOfCol[j] - 1] = j - 1;
  return colOfRow;
}

/**
 * The best assignment of clusters (rows) to experts (columns) with at most `cap` clusters per expert, and the
 * samples it gets right: a linear assignment of the rows to `cap` copies of every column.
 */
export function bestAssignment(
  table: readonly (readonly number[])[],
  cap: number,
): { expertOf: number[]; correct: number } {
  const e = table[0]?.length ?? 0;
  if (!(Number.isInteger(cap) && cap >= 1) || table.length > cap * e) {
    throw new RangeError(`bestAssignment: ${table.length} clusters do not fit ${e} experts × ${cap}`);
  }
  const cost = table.map((row) => Array.from({ length: cap * e }, (_, j) => -row[j % e]));
  const expertOf = assignRows(cost).map((j) => j % e);
  return { expertOf, correct: expertOf.reduce((s, ex, c) => s + table[c][ex], 0) };
}

/** Every recovery metric of a routing (see the module docs; expert −1 = routed to no expert). */
export function recovery(
  clusters: ArrayLike<number>,
  experts: ArrayLike<number>,
  numClusters: number,
  numExperts: number,
): Recovery {
  const full = contingency(clusters, experts, numClusters, numExperts, true);
  const table = full.map((row) => row.slice(0, numExperts));
  const total = clusters.length;
  const mi = mutualInformation(full);
  const bound = Math.min(entropy(full.map((r) => r.reduce((s, x) => s + x, 0)), total), Math.log(numExperts));
  const { correct } = bestAssignment(table, Math.ceil(numClusters / numExperts));
  const majority = table.reduce((s, row) => s + Math.max(...row), 0);
  const share = (j: number) => full.reduce((s, r) => s + r[j], 0) / Math.max(1, total);
  const load = Array.from({ length: numExperts }, (_, j) => share(j));
  return {
    unrouted: share(numExperts),
    mi,
    nmi: bound > 0 ? Math.min(1, mi / bound) : 0,
    accuracy: total > 0 ? correct / total : 0,
    purity: total > 0 ? majority / total : 0,
    load,
  };
}
