// The estimator-bias report on fabricated cells: an estimator has one colour in every plot, although the ε, τ
// and variance-vs-bias plots each show a different subset of the estimators.
import assert from "node:assert/strict";
import { buildReport } from "../../experiments/estimator_bias/report.ts";
import type { EstimatorBiasConfig } from "../../experiments/estimator_bias/config.ts";
import type { CellRecord } from "../../experiments/estimator_bias/measure.ts";

function cell(estimator: string, param: string, value: number | null, f = "linear"): CellRecord {
  const ms = (m: number) => ({ mean: m, se: m / 10 });
  return {
    kind: "cell",
    id: `${estimator}-${param}-${value}-${f}`,
    f,
    experts: 4,
    scale: 1,
    estimator,
    k: 1,
    param,
    value,
    objective: "x",
    draws: 10,
    seeds: 2,
    degenerate: 0,
    relBias: ms(0.1 + (value ?? 1) / 10),
    cosine: ms(0.9),
    relVariance: ms(1 + (value ?? 1)),
    noiseFloor: 0.05,
    perSeed: [],
  };
}

Deno.test("estimator-bias report: one colour per estimator across every plot", () => {
  // st-gumbel (τ) appears only in the τ plot; sparsemixer (ε) only in the ε plot; both in variance-vs-bias.
  const records = [
    cell("switch", "none", null),
    cell("sparsemixer", "eps", 0.1),
    cell("sparsemixer", "eps", 1),
    cell("st-gumbel", "tau", 0.5),
    cell("st-gumbel", "tau", 1),
  ];
  const config = {
    seeds: 2,
    device: "cpu",
    experts: [4],
    dim: 3,
    hidden: 4,
    logitScales: [1],
    functions: ["linear"],
    estimators: ["switch", "sparsemixer", "st-gumbel"],
    topK: [1],
    eps: [0.1, 1],
    taus: [0.5, 1],
    draws: 10,
  } as unknown as EstimatorBiasConfig;
  const files = buildReport(config, records, "smoke");
  const colorIn = (path: string, label: string) => {
    const svg = files.find((f) => f.path === path)?.text ?? "";
    return svg.match(new RegExp(`stroke="(#[0-9a-f]{6})" stroke-width="2.5"/>\\n<text[^>]*>${label}</text>`))?.[1];
  };
  const tau = colorIn("plots/bias_vs_tau_linear.svg", "st-gumbel");
  const eps = colorIn("plots/bias_vs_eps_linear.svg", "sparsemixer");
  assert.ok(tau && eps);
  assert.notEqual(tau, eps, "two estimators, two colours, although each is alone in its plot");
  assert.equal(colorIn("plots/variance_vs_bias.svg", "st-gumbel"), tau);
  assert.equal(colorIn("plots/variance_vs_bias.svg", "sparsemixer"), eps);
});
