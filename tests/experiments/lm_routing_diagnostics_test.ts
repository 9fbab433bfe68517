/**
 * The LM report's routing diagnostics (`routing_diagnostics.ts`, the heatmap SVG) from their definitions, on
 * hand-computed cases. (The power section's numbers come from `experiments/common/power.ts`, tested in
 * `common_power_test.ts`.)
 */
import assert from "node:assert/strict";
import { loadCv, maxVio, routingAgreement, runLoad, tokenExpertMI } from "../../experiments/lm/routing_diagnostics.ts";
import { heatmap } from "../../experiments/common/svg_heatmap.ts";
import { svgProblems } from "../../experiments/common/svg_check.ts";

const close = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

Deno.test("routing diagnostics: MaxVio, load CV, MI, agreement and run loads from their definitions", () => {
  assert.equal(maxVio([0.25, 0.25, 0.25, 0.25]), 0);
  assert.equal(maxVio([1, 0, 0, 0]), 3); // E − 1
  assert.equal(maxVio([0.5, 0.25, 0.25, 0]), 1);
  assert.equal(loadCv([0.25, 0.25, 0.25, 0.25]), 0);
  close(loadCv([1, 0, 0, 0]), Math.sqrt(3), 1e-12, "CV of one-hot load");

  // Expert = a function of the id: MI = H(expert); expert independent of the id: MI = 0 (exactly, here).
  const ids = [0, 1, 2, 3, 0, 1, 2, 3];
  const determined = tokenExpertMI(ids, [0, 1, 0, 1, 0, 1, 0, 1], 2);
  close(determined.mi, Math.log(2), 1e-12, "MI of a function");
  close(determined.expertEntropy, Math.log(2), 1e-12, "H(expert)");
  const independent = tokenExpertMI(ids, [0, 0, 0, 0, 1, 1, 1, 1], 2);
  close(independent.mi, 0, 1e-12, "MI of an independent expert");
  // Miller–Madow: plug-in − (B_xy − B_x − B_y + 1) / 2M = 0 − (8 − 4 − 2 + 1) / 16.
  close(independent.miCorrected, -3 / 16, 1e-12, "Miller–Madow");
  // K = 2: every slot is a pair.
  close(tokenExpertMI([5, 6], [0, 1, 2, 3], 4).mi, Math.log(2), 1e-12, "K = 2");
  assert.throws(() => tokenExpertMI([1, 2], [0, 1, 2], 4), /3 experts for 2 token ids/);

  assert.equal(routingAgreement([0, 1, 2, 3], [0, 1, 3, 3], 1), 0.75);
  assert.equal(routingAgreement([0, 1, 2, 3], [1, 0, 2, 0], 2), 0.75); // sets {0,1}={1,0}, {2,3}∩{2,0}
  assert.deepEqual(runLoad([{ step: 10, load: [1, 0] }, { step: 15, load: [0, 1] }]), [10 / 15, 5 / 15]);
});

Deno.test("heatmap: a well-formed SVG with one cell per value, NaN cells grey, one panel per arm", () => {
  const svg = heatmap({
    title: "load <&>",
    xLabel: "step",
    rowLabel: "expert",
    panels: [
      { label: "a", columns: [10, 20, 30], rows: [[0.5, 0.6, NaN], [0.5, 0.4, 0.3]] },
      { label: "b", columns: [10, 20, 30], rows: [[0.1, 0.2, 0.3], [0.9, 0.8, 0.7]] },
    ],
    min: 0,
  });
  assert.deepEqual(svgProblems(svg), []);
  assert.equal(svg.match(/<rect [^>]*height="16" fill="#/g)!.length, 12);
  assert.equal(svg.match(/fill="#bbbbbb"/g)!.length, 1);
  assert.ok(svg.includes("load &lt;&amp;&gt;"));
});
