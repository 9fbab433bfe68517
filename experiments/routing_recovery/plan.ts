/**
 * The runs of `exp:routing-recovery`, in one canonical order: cells (E, m, σ, k, in the config's order) ×
 * arms (registry order) × seeds. Each run has a stable id (`E4-m1-s0.5-k1/switch/seed3`), which is also its
 * file under `runs/`, and belongs to shard `(index mod n) + 1` of n (round-robin, so every shard gets a similar
 * mix of cells and arms).
 *
 * Arms of a cell (from each estimator's registry descriptor, never from its name):
 * - a sparse estimator whose K is set by the `topK` option runs with `topK: k` where its rule allows (k, E);
 * - a sparse estimator with a fixed K (top-1) runs in the cells with k = 1 only;
 * - a dense estimator (K = E) runs in the cells of the smallest k in the config only (its runs would be the
 *   same in every k);
 * - an estimator the layer cannot train with (building the layer and one training step fail: `probeTrainable`)
 *   is left out, with the reason, and the report lists it.
 *
 * Roles: an arm is **learned** (its router is trained), a **control** (routing that ignores what the router
 * learns: the registry's null controls `random` and `hash`, and `frozen`) or a **reference** (`oracle`). The
 * report compares every learned arm with every control (does learned routing matter here at all?) and shows the
 * reference beside them.
 * - `hash` routes on each sample's id (`task.ts`): uniform, independent of the cluster, so its routing carries no
 *   information about the cluster — a fixed random assignment (each held-out sample keeps its expert across
 *   evaluations; training samples are fresh, so in training it is as uninformative as `random`).
 * - `frozen` (config `extraArms`): the cell's baseline arm (same estimator and K) with `frozenRouter: true`: the
 *   routing a random linear router gives, never improved.
 * - `oracle` (config `extraArms`): the `hash` router keyed on the true cluster, with keys chosen so that cluster c
 *   goes to expert c mod E (`oracleKeys` in `route_keys.ts`): each expert gets m clusters, which for linear experts is the
 *   optimal routing at k = 1 (for k > 1 its K experts include c mod E, with gates 1/K). Its recovery is 1 by
 *   construction; its loss and steps to target show what learning the experts alone costs when routing is given.
 *
 * @module
 */
import { estimatorDescriptor } from "../../moe/mod.ts";
import { baselineNames, estimatorNames, type RoutingRecoveryConfig } from "./config.ts";
import { SAMPLE_ID_VOCAB } from "./task.ts";
import type { RouteKey } from "./route_keys.ts";
import { inShard, type Shard } from "../common/shard.ts";
import { probeTrainable, type RunSpec } from "./train.ts";

/** One cell of the grid. */
export interface Cell {
  /** Stable id, e.g. `E4-m1-s0.5-k1`. */
  id: string;
  /** Experts E. */
  experts: number;
  /** Clusters per expert m (C = m·E). */
  clustersPerExpert: number;
  /** Input noise σ. */
  noise: number;
  /** Experts per token k of the sparse top-k arms. */
  k: number;
}

/** What an arm is for (module docs). */
export type ArmRole = "learned" | "control" | "reference";

/** An arm of a cell. */
export interface Arm {
  /** The arm's name: its registry name, or `frozen` / `oracle`. */
  name: string;
  /** The registry estimator it runs. */
  estimator: string;
  /** Experts per token of this arm (E for a dense estimator). */
  k: number;
  /** Registry options. */
  options: Record<string, unknown>;
  /** Learned, control or reference. */
  role: ArmRole;
  /** Whether the router stays at its initial weights (`frozen`). */
  frozenRouter: boolean;
  /** The key handed to the layer as `tokenIds`: each sample's id, its true cluster's oracle key, or none. */
  routeKey: RouteKey;
}

/** One run. */
export interface PlannedRun {
  /** `<cell>/<arm>/seed<s>`. */
  id: string;
  /** Its cell. */
  cell: Cell;
  /** Its arm. */
  arm: Arm;
  /** Seed. */
  seed: number;
  /** Position in the canonical order. */
  index: number;
}

/** A registered estimator left out of a cell, and why. */
export interface SkippedArm {
  /** Cell id. */
  cell: string;
  /** Registry name. */
  arm: string;
  /** Why. */
  reason: string;
}

/** The cells of the grid, in order. */
export function gridCells(config: RoutingRecoveryConfig): Cell[] {
  const cells: Cell[] = [];
  for (const e of new Set(config.experts)) {
    for (const m of new Set(config.clustersPerExpert)) {
      for (const noise of new Set(config.noise)) {
        for (const k of new Set(config.topK)) {
          cells.push({ id: `E${e}-m${m}-s${noise}-k${k}`, experts: e, clustersPerExpert: m, noise, k });
        }
      }
    }
  }
  return cells;
}

/** The run spec of an arm in a cell for a seed. */
export function runSpec(config: RoutingRecoveryConfig, cell: Cell, arm: Arm, seed: number): RunSpec {
  return {
    seed,
    estimator: arm.estimator,
    estimatorOptions: arm.options,
    frozenRouter: arm.frozenRouter,
    routeKey: arm.routeKey,
    experts: cell.experts,
    clusters: cell.clustersPerExpert * cell.experts,
    noise: cell.noise,
    targetNoise: config.targetNoise,
    dim: config.dim,
    expert: config.model.expert,
    hidden: config.model.hidden,
    balanceCoef: config.model.balanceCoef,
    lr: config.optim.lr,
    weightDecay: config.optim.weightDecay,
    steps: config.steps,
    batchSize: config.batchSize,
    evalEvery: config.evalEvery,
    heldOut: config.heldOut,
    targetLoss: config.targetLoss,
  };
}

/** The hash router's options: K, and ids below the sample-id vocabulary (a small lookup table). */
function hashOptions(k: number): Record<string, unknown> {
  return { topK: k, vocabSize: SAMPLE_ID_VOCAB };
}

/** The registry arms of a cell (module docs), before probing; estimators not allowed here go to `skipped`. */
function registryArms(config: RoutingRecoveryConfig, cell: Cell, skipped: SkippedArm[]): Arm[] {
  const arms: Arm[] = [];
  const smallestK = Math.min(...config.topK);
  for (const name of estimatorNames(config.estimators)) {
    const d = estimatorDescriptor(name);
    const base = { name, estimator: name, frozenRouter: false, routeKey: null };
    const role = d.nullControl ? "control" : "learned";
    if (d.routing === "dense") {
      if (cell.k !== smallestK) continue; // run once, in the cells of the smallest k
      arms.push({ ...base, role, k: cell.experts, options: {} });
    } else if (!d.topK.allows(cell.k, cell.experts)) {
      skipped.push({ cell: cell.id, arm: name, reason: `K = ${cell.k} not allowed (allows ${d.topK.words})` });
    } else if (name === "hash") {
      arms.push({ ...base, role, k: cell.k, options: hashOptions(cell.k), routeKey: "sample" });
    } else {
      arms.push({ ...base, role, k: cell.k, options: d.topK.option === "topK" ? { topK: cell.k } : {} });
    }
  }
  return arms;
}

/** The arms of a cell, and the estimators left out of it (see the module docs). */
export function cellArms(config: RoutingRecoveryConfig, cell: Cell): { arms: Arm[]; skipped: SkippedArm[] } {
  const skipped: SkippedArm[] = [];
  const candidates = registryArms(config, cell, skipped);
  const extra = new Set(config.extraArms);
  if (extra.has("frozen")) {
    const base = baselineNames(config.primary.baseline)
      .map((b) => candidates.find((a) => a.name === b && a.role === "learned")).find((a) => a !== undefined);
    if (base) candidates.push({ ...base, name: "frozen", role: "control", frozenRouter: true });
    else skipped.push({ cell: cell.id, arm: "frozen", reason: "no baseline arm runs in this cell to freeze" });
  }
  if (extra.has("oracle")) {
    candidates.push({
      name: "oracle",
      estimator: "hash",
      k: cell.k,
      options: hashOptions(cell.k),
      role: "reference",
      frozenRouter: false,
      routeKey: "cluster",
    });
  }
  const arms: Arm[] = [];
  for (const arm of candidates) {
    const why = probeTrainable(runSpec(config, cell, arm, 0));
    if (why !== null) skipped.push({ cell: cell.id, arm: arm.name, reason: `the layer cannot train with it: ${why}` });
    else arms.push(arm);
  }
  return { arms, skipped };
}

/** Every run in canonical order, and the estimators left out. */
export function planRuns(config: RoutingRecoveryConfig): { runs: PlannedRun[]; skipped: SkippedArm[] } {
  const runs: PlannedRun[] = [];
  const skipped: SkippedArm[] = [];
  for (const cell of gridCells(config)) {
    const c = cellArms(config, cell);
    skipped.push(...c.skipped);
    for (const arm of c.arms) {
      for (let seed = 0; seed < config.seeds; seed++) {
        runs.push({ id: `${cell.id}/${arm.name}/seed${seed}`, cell, arm, seed, index: runs.length });
      }
    }
  }
  return { runs, skipped };
}

/** The runs of shard `i/n` (`common/shard.ts`): those whose canonical index is i − 1 modulo n. */
export function shardRuns(runs: readonly PlannedRun[], shard: Shard): PlannedRun[] {
  return runs.filter((r) => inShard(r.index, shard));
}
