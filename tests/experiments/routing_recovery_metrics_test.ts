import assert from "node:assert/strict";
import {
  assignRows,
  bestAssignment,
  contingency,
  mutualInformation,
  recovery,
} from "../../experiments/routing_recovery/recovery.ts";
import { holmAdjust } from "../../experiments/routing_recovery/aggregate.ts";
import { seededRandom } from "../../experiments/common/stats.ts";

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

/** n samples of each cluster 0 … C−1, in order. */
function labels(c: number, n: number): number[] {
  return Array.from({ length: c * n }, (_, i) => Math.floor(i / n));
}

Deno.test("recovery: perfect and permuted routings recover everything", () => {
  const cl = labels(4, 5);
  for (const perm of [[0, 1, 2, 3], [2, 0, 3, 1]]) {
    const r = recovery(cl, cl.map((c) => perm[c]), 4, 4);
    close(r.mi, Math.log(4), "MI = H(cluster) = ln 4");
    close(r.nmi, 1, "NMI");
    close(r.accuracy, 1, "accuracy");
    close(r.purity, 1, "purity");
    assert.deepEqual(r.load, [0.25, 0.25, 0.25, 0.25]);
  }
  // More experts than clusters: still perfect (the bound is H(cluster) < ln E).
  const r = recovery(labels(3, 4), labels(3, 4).map((c) => [5, 1, 3][c]), 3, 6);
  close(r.nmi, 1, "C < E NMI");
  close(r.accuracy, 1, "C < E accuracy");
});

Deno.test("recovery: a routing independent of the cluster has zero MI and chance accuracy", () => {
  // Every cluster spread evenly over the 4 experts.
  const cl = labels(4, 8);
  const ex = cl.map((_, i) => i % 4);
  const r = recovery(cl, ex, 4, 4);
  close(r.mi, 0, "MI");
  close(r.nmi, 0, "NMI");
  close(r.accuracy, 0.25, "accuracy = 1/E");
  close(r.purity, 0.25, "purity");
  // A random routing: small but positive plug-in MI (its bias), accuracy near chance.
  const u = seededRandom(1);
  const big = labels(4, 2000);
  const rnd = recovery(big, big.map(() => Math.floor(u() * 4)), 4, 4);
  assert.ok(rnd.mi > 0 && rnd.mi < 0.005, `random MI ${rnd.mi}`);
  assert.ok(Math.abs(rnd.accuracy - 0.25) < 0.02, `random accuracy ${rnd.accuracy}`);
});

Deno.test("recovery: many-to-one routings (collapse, merged clusters) and C > E", () => {
  // Everything on one expert: no information; one cluster can own that expert; purity is fooled.
  const cl = labels(4, 5);
  const collapse = recovery(cl, cl.map(() => 0), 4, 4);
  close(collapse.mi, 0, "collapse MI");
  close(collapse.accuracy, 0.25, "collapse accuracy");
  close(collapse.purity, 1, "collapse purity (does not penalise collapse)");
  // Clusters 0 and 1 merged on expert 0, 2 → 2, 3 → 3: MI = H(expert) = 1.5 ln 2, NMI 0.75, accuracy 0.75.
  const merged = recovery(cl, cl.map((c) => [0, 0, 2, 3][c]), 4, 4);
  close(merged.mi, 1.5 * Math.log(2), "merged MI");
  close(merged.nmi, 0.75, "merged NMI");
  close(merged.accuracy, 0.75, "merged accuracy");
  // C = 4 clusters, E = 2 experts (m = 2): the optimal partition {0, 2} → 1, {1, 3} → 0 is perfect.
  const part = recovery(cl, cl.map((c) => [1, 0, 1, 0][c]), 4, 2);
  close(part.mi, Math.log(2), "partition MI = ln E");
  close(part.nmi, 1, "partition NMI");
  close(part.accuracy, 1, "partition accuracy");
  // Collapse with C > E: each expert may take 2 clusters, so 2 of 4 clusters are right.
  const c2 = recovery(cl, cl.map(() => 1), 4, 2);
  close(c2.accuracy, 0.5, "C > E collapse accuracy");
  close(c2.purity, 1, "C > E collapse purity");
});

Deno.test("recovery: samples routed to no expert (−1) are wrong and counted as unrouted", () => {
  const cl = labels(4, 5);
  // Cluster 3 dropped, the others perfect.
  const r = recovery(cl, cl.map((c) => (c === 3 ? -1 : c)), 4, 4);
  close(r.unrouted, 0.25, "unrouted share");
  close(r.accuracy, 0.75, "dropped samples are wrong");
  close(r.purity, 0.75, "purity too");
  close(r.mi, Math.log(4), "dropping one whole cluster still identifies it");
  assert.deepEqual(r.load, [0.25, 0.25, 0.25, 0]);
  close(recovery(cl, cl, 4, 4).unrouted, 0, "none");
});

Deno.test("recovery: bad labels are one clear error", () => {
  assert.throws(() => contingency([0, 1], [0], 2, 2), /2 cluster labels but 1 expert labels/);
  assert.throws(() => contingency([0, 2], [0, 1], 2, 2), /cluster label 2 at 1 is not in 0…1/);
  assert.throws(() => contingency([0, 1], [0, -1], 2, 2), /expert label -1 at 1/);
  assert.throws(() => bestAssignment([[1], [2], [3]], 2), /3 clusters do not fit 1 experts × 2/);
});

function permutations(n: number, k: number): number[][] {
  if (k === 0) return [[]];
  const out: number[][] = [];
  for (const p of permutations(n, k - 1)) for (let j = 0; j < n; j++) if (!p.includes(j)) out.push([...p, j]);
  return out;
}

Deno.test("assignRows (Hungarian) equals exhaustive search on random rectangular matrices", () => {
  const u = seededRandom(7);
  for (let trial = 0; trial < 60; trial++) {
    const r = 1 + (trial % 5);
    const k = r + (trial % 3);
    const cost = Array.from({ length: r }, () => Array.from({ length: k }, () => Math.floor(u() * 20) - 5));
    const cols = assignRows(cost);
    assert.equal(new Set(cols).size, r, "distinct columns");
    const got = cols.reduce((s, j, i) => s + cost[i][j], 0);
    const best = Math.min(...permutations(k, r).map((p) => p.reduce((s, j, i) => s + cost[i][j], 0)));
    assert.equal(got, best, `trial ${trial}: ${JSON.stringify(cost)}`);
  }
});

Deno.test("mutualInformation of a table and Holm's adjustment", () => {
  close(mutualInformation([[5, 0], [0, 5]]), Math.log(2), "diagonal");
  close(mutualInformation([[0, 0], [0, 0]]), 0, "empty");
  // Holm: sorted p × (m − rank), made monotone, capped at 1; NaN untouched.
  assert.deepEqual(holmAdjust([0.01, 0.04, NaN, 0.03]), [0.03, 0.06, NaN, 0.06]);
  assert.deepEqual(holmAdjust([0.5, 0.6]), [1, 1]);
});
