/**
 * Measures one cell of `exp:estimator-bias`: for each seed, a fresh problem (logits, experts, f), the exact
 * gradient g of the cell's objective and M per-draw estimator gradients ĝ_m, then
 *
 * - relative bias ‖ḡ − g‖/‖g‖ (ḡ = mean of the draws),
 * - cosine(ḡ, g),
 * - relative variance tr Cov(ĝ)/‖g‖² (per draw),
 * - noise floor √(tr Cov(ĝ)/M)/‖g‖: the relative bias an UNBIASED estimator shows from Monte-Carlo error alone
 *   (E‖ḡ − g‖² = tr Cov/M), so a bias well above it is real,
 *
 * and the mean and standard error of each over the seeds. Seeds whose true gradient is (numerically) zero — the
 * mask left one expert, so nothing depends on z — are counted as `degenerate` and left out of the relative
 * metrics. Draws use the Generator seeded with the seed number, so every estimator sees the same problems and
 * the cell's record is a deterministic function of the config.
 *
 * @module
 */
import { createEstimator, exactGradient, sampleGradients } from "../../moe/mod.ts";
import { mean, sampleStd } from "../common/stats.ts";
import type { EstimatorBiasConfig } from "./config.ts";
import type { Cell } from "./cells.ts";
import { makeProblem, mixSeed } from "./problems.ts";

/** Mean and standard error over seeds (se null with fewer than 2 values; mean null with none). */
export interface MeanSe {
  /** Mean over the non-degenerate seeds. */
  mean: number | null;
  /** Standard error of the mean (sample std / √n). */
  se: number | null;
}

/** One seed's measurement. */
export interface SeedResult {
  /** Seed index. */
  seed: number;
  /** ‖g‖. */
  trueNorm: number;
  /** ‖ḡ − g‖/‖g‖ (null when degenerate). */
  relBias: number | null;
  /** cos(ḡ, g) (null when degenerate or ḡ = 0). */
  cosine: number | null;
  /** tr Cov(ĝ)/‖g‖² (null when degenerate). */
  relVariance: number | null;
  /** √(tr Cov(ĝ)/M)/‖g‖ (null when degenerate). */
  noiseFloor: number | null;
}

/** The metrics.jsonl record of one cell. */
export interface CellRecord {
  /** Record kind (always "cell"). */
  kind: "cell";
  /** Cell id. */
  id: string;
  /** Downstream function. */
  f: string;
  /** E. */
  experts: number;
  /** Logit scale σ. */
  scale: number;
  /** Registry estimator name. */
  estimator: string;
  /** K. */
  k: number;
  /** Swept parameter. */
  param: string;
  /** Its value. */
  value: number | null;
  /** Objective kind. */
  objective: string;
  /** Draws per seed. */
  draws: number;
  /** Seeds measured. */
  seeds: number;
  /** Seeds with a zero true gradient. */
  degenerate: number;
  /** Relative bias over seeds. */
  relBias: MeanSe;
  /** Cosine over seeds. */
  cosine: MeanSe;
  /** Relative per-draw variance over seeds. */
  relVariance: MeanSe;
  /** Mean noise floor. */
  noiseFloor: number | null;
  /** Per-seed values. */
  perSeed: SeedResult[];
}

function norm(v: readonly number[]): number {
  return Math.sqrt(v.reduce((s, x) => s + x * x, 0));
}

function meanSe(xs: (number | null)[]): MeanSe {
  const v = xs.filter((x): x is number => x !== null && Number.isFinite(x));
  if (v.length === 0) return { mean: null, se: null };
  return { mean: mean(v), se: v.length > 1 ? sampleStd(v) / Math.sqrt(v.length) : null };
}

/** Measures one seed of a cell. */
export function measureSeed(cell: Cell, config: EstimatorBiasConfig, seed: number): SeedResult {
  const problem = makeProblem({
    seed,
    experts: cell.experts,
    scale: cell.scale,
    dim: config.dim,
    hidden: config.hidden,
    f: cell.f,
  });
  const g = exactGradient(problem, cell.objective);
  const rows = sampleGradients({
    estimator: createEstimator(cell.estimator, cell.options),
    ...problem,
    draws: config.draws,
    seed: mixSeed("draws", seed),
    training: true,
  });
  const m = rows.length;
  const e = g.length;
  const avg = new Array<number>(e).fill(0);
  for (const r of rows) r.forEach((x, j) => (avg[j] += x / m));
  let trace = 0;
  for (const r of rows) r.forEach((x, j) => (trace += (x - avg[j]) ** 2 / (m - 1)));
  const gn = norm(g);
  const scaleRef = Math.max(1e-300, ...rows.flat().map(Math.abs), ...g.map(Math.abs));
  if (!(gn > 1e-10 * scaleRef) || !Number.isFinite(gn)) {
    return { seed, trueNorm: gn, relBias: null, cosine: null, relVariance: null, noiseFloor: null };
  }
  const an = norm(avg);
  const dot = avg.reduce((s, x, j) => s + x * g[j], 0);
  return {
    seed,
    trueNorm: gn,
    relBias: norm(avg.map((x, j) => x - g[j])) / gn,
    cosine: an > 0 ? dot / (an * gn) : null,
    relVariance: trace / (gn * gn),
    noiseFloor: Math.sqrt(trace / m) / gn,
  };
}

/** Measures a cell over seeds 0 … seeds − 1. */
export function measureCell(cell: Cell, config: EstimatorBiasConfig): CellRecord {
  const perSeed = Array.from({ length: config.seeds }, (_, s) => measureSeed(cell, config, s));
  const floor = meanSe(perSeed.map((r) => r.noiseFloor)).mean;
  return {
    kind: "cell",
    id: cell.id,
    f: cell.f,
    experts: cell.experts,
    scale: cell.scale,
    estimator: cell.estimator,
    k: cell.k,
    param: cell.param,
    value: cell.value,
    objective: cell.objective.kind,
    draws: config.draws,
    seeds: config.seeds,
    degenerate: perSeed.filter((r) => r.relBias === null).length,
    relBias: meanSe(perSeed.map((r) => r.relBias)),
    cosine: meanSe(perSeed.map((r) => r.cosine)),
    relVariance: meanSe(perSeed.map((r) => r.relVariance)),
    noiseFloor: floor,
    perSeed,
  };
}
