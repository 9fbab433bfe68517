/**
 * The null controls and the oracle of `exp:routing-recovery` (`plan.ts`, `route_keys.ts`, `train.ts`), the
 * secondary recovery from the argmax of the router probabilities, and the control comparisons' direction.
 */
import assert from "node:assert/strict";
import { routingRecoveryDefinition } from "../../experiments/routing_recovery.ts";
import { parseConfig } from "../../experiments/common/config.ts";
import { routingRecoverySchema } from "../../experiments/routing_recovery/config.ts";
import { cellArms, gridCells, planRuns, runSpec } from "../../experiments/routing_recovery/plan.ts";
import { oracleKeys } from "../../experiments/routing_recovery/route_keys.ts";
import { makeTask, SAMPLE_ID_VOCAB, sampler } from "../../experiments/routing_recovery/task.ts";
import { trainRun } from "../../experiments/routing_recovery/train.ts";
import { aggregate } from "../../experiments/routing_recovery/aggregate.ts";
import { buildReport } from "../../experiments/routing_recovery/report.ts";
import type { RunRecord } from "../../experiments/routing_recovery/store.ts";
import { hashExperts } from "../../moe/estimators/null_controls.ts";

const smoke = parseConfig(routingRecoverySchema, routingRecoveryDefinition.presets.smoke);

Deno.test("oracle keys: the hash router sends cluster c to expert c mod E (first slot), for any E and K", () => {
  for (const [c, e, k] of [[4, 4, 1], [8, 4, 1], [8, 8, 2], [16, 8, 3], [6, 64, 1]]) {
    const keys = oracleKeys(c, e, k);
    assert.equal(keys.length, c);
    keys.forEach((key, cluster) => {
      assert.ok(key >= 0 && key < SAMPLE_ID_VOCAB);
      assert.equal(hashExperts(key, e, k, 0)[0], cluster % e, `C ${c} E ${e} K ${k} cluster ${cluster}`);
    });
  }
});

Deno.test("sample ids: in range, and a stream of their own (the data do not depend on them)", () => {
  const task = makeTask({ dim: 4, clusters: 4, noise: 0.5, targetNoise: 0 }, 3);
  const a = sampler(task, 3, "train")(500);
  const b = sampler(task, 3, "train")(500);
  assert.deepEqual(a, b, "deterministic");
  assert.ok(a.id.every((v) => v >= 0 && v < SAMPLE_ID_VOCAB));
  assert.ok(new Set(a.id).size > 400, "spread over the vocabulary");
  // The id of a sample says nothing about its cluster: every cluster gets ids from the whole range.
  for (let c = 0; c < 4; c++) {
    const ids = [...a.id].filter((_, i) => a.cluster[i] === c);
    assert.ok(Math.min(...ids) < SAMPLE_ID_VOCAB / 4 && Math.max(...ids) > (3 * SAMPLE_ID_VOCAB) / 4, `cluster ${c}`);
  }
});

Deno.test("plan: roles, hash on sample ids, frozen = the cell's baseline frozen, oracle on cluster keys", () => {
  const [cell] = gridCells(smoke);
  const { arms, skipped } = cellArms(smoke, cell);
  assert.deepEqual(skipped, []);
  assert.deepEqual(
    arms.map((a) => [a.name, a.estimator, a.role, a.routeKey, a.frozenRouter]),
    [
      ["topk", "topk", "learned", null, false],
      ["switch", "switch", "learned", null, false],
      ["straight-through", "straight-through", "learned", null, false],
      ["random", "random", "control", null, false],
      ["hash", "hash", "control", "sample", false],
      ["frozen", "switch", "control", null, true],
      ["oracle", "hash", "reference", "cluster", false],
    ],
  );
  // A cell whose baseline does not run: no frozen arm, and the reason is listed.
  const noBase = cellArms(
    { ...smoke, estimators: "topk,random", primary: { ...smoke.primary, baseline: "switch" } },
    cell,
  );
  assert.ok(!noBase.arms.some((a) => a.name === "frozen"));
  assert.deepEqual(noBase.skipped.map((s) => s.arm), ["frozen"]);
  // extraArms [] leaves both out.
  assert.ok(
    !cellArms({ ...smoke, extraArms: [] }, cell).arms.some((a) => a.role === "reference" || a.name === "frozen"),
  );
});

Deno.test("controls train: hash ignores the cluster, oracle recovers it exactly, frozen keeps its initial routing", async () => {
  const [cell] = gridCells(smoke);
  const { arms } = cellArms(smoke, cell);
  // A large held-out set, so that the plug-in MI of an independent routing is small: its bias is
  // (C − 1)(E − 1)/(2N) = 0.0011 nats and its SD about √18/(2N) = 0.0005 for N = 4096.
  const run = (name: string) =>
    trainRun({ ...runSpec(smoke, cell, arms.find((a) => a.name === name)!, 0), heldOut: 4096 });
  const [hash, oracle, frozen, learned] = await Promise.all(["hash", "oracle", "frozen", "switch"].map(run));
  assert.ok(hash.final.mi < 0.005, `hash MI ${hash.final.mi}`);
  assert.equal(oracle.final.nmi, 1);
  assert.equal(oracle.final.accuracy, 1);
  // Their routing ignores the router: the secondary recovery is the routing itself.
  assert.deepEqual(hash.nmiArgmax, hash.nmi);
  assert.deepEqual(oracle.accuracyArgmax, oracle.accuracy);
  // Frozen switch: the same initial router as the learned switch, and its routing never changes.
  assert.equal(frozen.nmi[0], learned.nmi[0]);
  assert.ok(frozen.nmi.every((v) => v === frozen.nmi[0]), `frozen NMI moved: ${frozen.nmi}`);
  assert.ok(frozen.final.heldLoss < frozen.heldLoss[0], "its experts still learn");
});

Deno.test("control comparisons: every learned arm × every control, oriented by the metric's better side", () => {
  const config = { ...smoke, seeds: 4 };
  const { runs, skipped } = planRuns(config);
  // Final values by arm: learned arms recover (NMI 0.8 ± seed noise), controls do not (0.1), oracle 1.
  const nmiOf: Record<string, number> = { random: 0.1, hash: 0.1, frozen: 0.1, oracle: 1 };
  const noise = [0, 0.01, -0.01, 0.005];
  const records = new Map<string, RunRecord>(runs.map((r) => {
    const nmi = r.arm.role === "learned" ? 0.8 + noise[r.seed] : nmiOf[r.arm.name] + noise[r.seed] / 2;
    const loss = 1 - nmi;
    const final = {
      heldLoss: loss,
      trainLoss: loss,
      nmi,
      accuracy: nmi,
      nmiArgmax: nmi,
      accuracyArgmax: nmi,
      mi: nmi,
      purity: nmi,
      load: [0.25, 0.25, 0.25, 0.25],
      unrouted: 0,
    };
    const record = {
      kind: "run",
      id: r.id,
      cell: r.cell.id,
      arm: r.arm.name,
      estimator: r.arm.estimator,
      role: r.arm.role,
      seed: r.seed,
      k: r.arm.k,
      experts: 4,
      clusters: 4,
      noise: 0.5,
      seconds: 0,
      step: [0, 40],
      trainLoss: [NaN, loss],
      heldLoss: [1, loss],
      mi: [0, nmi],
      nmi: [0, nmi],
      accuracy: [0.25, nmi],
      purity: [0.25, nmi],
      nmiArgmax: [0, nmi],
      accuracyArgmax: [0.25, nmi],
      final,
      stepsToTarget: null,
      zeroLoss: 1,
    } satisfies RunRecord;
    return [r.id, record];
  }));
  for (const metric of ["nmi", "heldLoss"] as const) {
    const c = { ...config, primary: { ...config.primary, metric } };
    const agg = aggregate(c, runs, skipped, records, new Map());
    const cell = agg.cells[0];
    assert.deepEqual(cell.controlArms, ["random", "hash", "frozen"]);
    assert.equal(cell.controls.length, 9, "3 learned × 3 controls; the oracle is in none");
    assert.deepEqual(cell.comparisons.map((x) => x.arm), ["topk", "straight-through"], "learned arms only");
    const report = buildReport(c, agg, "test").find((f) => f.path === "report.md")!.text;
    assert.match(report, /Every learned router beats every null control beyond seed noise/, metric);
    const sign = metric === "nmi" ? 1 : -1;
    assert.ok(cell.controls.every((x) => Math.abs(x.paired.diff - sign * 0.7) < 0.01), metric);
  }
});
