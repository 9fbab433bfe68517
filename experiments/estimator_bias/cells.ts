/**
 * The grid of `exp:estimator-bias`: one cell per (downstream function, E, logit scale, estimator, K, ε or τ),
 * in a fixed order, each with a stable id (what `--resume` matches finished cells by), the registry options
 * the estimator is built with, and the objective its gradient is compared with (see `objectives.ts`).
 *
 * Which parameter an estimator sweeps, with which options, which K it runs at and which objective it is compared
 * with, all come from its registry descriptor (`sweep`, `topK`, `objective`). For the built-in ones: the
 * SparseMixer variants and Switch sweep ε (`eps`; mask width, or Switch's multiplicative jitter on the logits);
 * straight-through, st-gumbel and reinmax sweep the temperature τ (`taus`; reinmax only τ ≥ 1); `topk` has
 * none (K = 1 without renormalisation, i.e. GShard top-1 = Switch without jitter; K = 2 renormalised,
 * Mixtral). Only sparsemixer-v2, sparsemixer-v2-heun and topk run at K = 2.
 *
 * @module
 */
import type { EstimatorBiasConfig } from "./config.ts";
import type { FunctionName } from "./problems.ts";
import { createEstimator, estimatorDescriptor, type Objective } from "../../moe/mod.ts";

/** One cell of the grid. */
export interface Cell {
  /** Stable id, e.g. `tanh/E8/s1/sparsemixer/k1/eps=0.1`. */
  id: string;
  /** Downstream function. */
  f: FunctionName;
  /** Number of experts. */
  experts: number;
  /** Logit scale σ. */
  scale: number;
  /** Registry name. */
  estimator: string;
  /** Experts per token. */
  k: 1 | 2;
  /** The swept parameter ("eps", "tau" or "none") and its value (null for "none"). */
  param: "eps" | "tau" | "none";
  /** Value of the swept parameter. */
  value: number | null;
  /** Registry options. */
  options: Record<string, unknown>;
  /** The reference objective. */
  objective: Objective;
}

/** The estimator-level settings of one cell, from the estimator's descriptor: (K, parameter value) → options, objective. */
function variants(name: string, k: 1 | 2, config: EstimatorBiasConfig) {
  const descriptor = estimatorDescriptor(name);
  const sweep = descriptor.sweep;
  if (!sweep) throw new RangeError(`estimator "${name}" declares no estimator-bias sweep`);
  const settings: Pick<Cell, "param" | "value" | "options">[] = sweep.param === "none"
    ? [{ param: "none", value: null, options: sweep.options(k) }]
    : sweep.param === "eps"
    ? config.eps.map((eps) => ({ param: "eps", value: eps, options: sweep.options(eps, k) }))
    : config.taus.filter((tau) => tau >= sweep.min).map((tau) => ({
      param: "tau",
      value: tau,
      options: sweep.options(tau, k),
    }));
  return settings.map((s) => {
    const objective = descriptor.objective(createEstimator(name, s.options));
    if (!objective) throw new RangeError(`estimator "${name}" declares no exact objective`);
    return { ...s, objective };
  });
}

/** Every cell of the grid, in run order (f, E, σ, estimator, K, parameter). */
export function gridCells(config: EstimatorBiasConfig): Cell[] {
  const cells: Cell[] = [];
  const ks = [...new Set(config.topK)].sort() as (1 | 2)[];
  for (const f of new Set(config.functions)) {
    for (const e of new Set(config.experts)) {
      for (const scale of new Set(config.logitScales)) {
        for (const name of new Set(config.estimators)) {
          for (const k of ks) {
            if (k === 2 && !estimatorDescriptor(name).topK.allows(2, e)) continue;
            for (const v of variants(name, k, config)) {
              const p = v.param === "none" ? "default" : `${v.param}=${v.value}`;
              cells.push({
                id: `${f}/E${e}/s${scale}/${name}/k${k}/${p}`,
                f,
                experts: e,
                scale,
                estimator: name,
                k,
                ...v,
              });
            }
          }
        }
      }
    }
  }
  return cells;
}
