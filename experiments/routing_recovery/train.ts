/**
 * One run of `exp:routing-recovery`: a {@link MoELayer} trained with AdamW on fresh batches of a task
 * (`task.ts`), evaluated on a fixed held-out set every `evalEvery` steps and at the end.
 *
 * The model is the MoE layer alone, ŷ = MoE(x), with no projection before or after it: the router sees x itself
 * (so the clusters are visible to it), and with linear experts one expert can represent one cluster's target map
 * exactly, so the routing is the only thing that has to be learned beyond per-expert regression. A projection
 * would add capacity that could partly fit several clusters without routing, blurring what recovery means.
 *
 * Loss: mean squared error over the d outputs, plus the layer's auxiliary loss (balance, when α > 0) in training.
 *
 * Evaluation (eval mode, the same held-out set for every arm of a seed): the held-out MSE, and two routing
 * recoveries (`recovery.ts`):
 * - **primary** (`nmi`, `accuracy`, …): each sample's expert is the one with the largest gate of the routing the
 *   layer uses (the only expert for top-1; the heaviest for top-k; the sampled one-hot for the dense estimators,
 *   which sample in evaluation too, so their recovery includes that sampling noise);
 * - **secondary** (`nmiArgmax`, `accuracyArgmax`): each sample's expert is the argmax of the router's
 *   probabilities (`routing.probs`), what the router has learned, free of any sampling. The null controls' and
 *   the oracle's routing ignores the router (their probabilities are the constant 1/E), so for them the
 *   secondary is their routing itself, the same as the primary.
 * Evaluation restores the layer's random stream afterwards, so it never changes training.
 *
 * Route context: arms that route on a key (`route_keys.ts`) get it as `forward(x, { tokenIds })` in training,
 * evaluation and the probe; the key streams are separate from the data, so every arm still sees the same data.
 *
 * Random streams of seed s: the task, the held-out set and the batches come from `task.ts`'s seeded PRNG; the
 * layer's weights (router first, then experts) and then the estimator's draws from `Generator(8s + 1)`. The same
 * seed gives every arm identical task, initial weights, held-out set and batches.
 *
 * @module
 */
import { Generator, keep, noGrad, scope, type Tensor, tensor } from "../../core/mod.ts";
import { AdamW } from "../../nn/optim/mod.ts";
import { MoELayer } from "../../moe/layer.ts";
import { estimatorDescriptor } from "../../moe/mod.ts";
import { stepsToTarget } from "../common/stats.ts";
import { makeTask, sampler, type Samples } from "./task.ts";
import { type Recovery, recovery } from "./recovery.ts";
import { oracleKeys, type RouteKey, sampleKeys } from "./route_keys.ts";

/** Everything one run needs (derived from the config and the run's cell, arm and seed). */
export interface RunSpec {
  /** Seed (task, data, weights, draws). */
  seed: number;
  /** Registry estimator name. */
  estimator: string;
  /** Registry options (topK for the estimators that take it). */
  estimatorOptions: Record<string, unknown>;
  /** Keep the router at its initial weights (the `frozen` control). */
  frozenRouter: boolean;
  /** The key handed to the layer as `tokenIds` (null: none). */
  routeKey: RouteKey;
  /** Experts E. */
  experts: number;
  /** Clusters C = m·E. */
  clusters: number;
  /** Input noise σ. */
  noise: number;
  /** Target noise τ. */
  targetNoise: number;
  /** Width d. */
  dim: number;
  /** Expert kind and hidden width. */
  expert: "linear" | "ffn";
  /** Hidden width of ffn experts. */
  hidden: number;
  /** Balance loss coefficient. */
  balanceCoef: number;
  /** AdamW learning rate. */
  lr: number;
  /** AdamW weight decay. */
  weightDecay: number;
  /** Training steps. */
  steps: number;
  /** Batch size. */
  batchSize: number;
  /** Evaluation cadence. */
  evalEvery: number;
  /** Held-out set size. */
  heldOut: number;
  /** Target held-out loss. */
  targetLoss: number;
}

/** The curves and final values of one run. */
export interface RunMetrics {
  /** Evaluation steps (0 = before training, then every evalEvery and the last). */
  step: number[];
  /** Mean training loss (MSE, without the aux loss) over the steps since the previous evaluation (NaN at 0). */
  trainLoss: number[];
  /** Held-out MSE. */
  heldLoss: number[];
  /** I(cluster; expert), nats. */
  mi: number[];
  /** Normalised MI. */
  nmi: number[];
  /** Best-assignment accuracy. */
  accuracy: number[];
  /** Purity. */
  purity: number[];
  /** Secondary: normalised MI of the argmax of the router probabilities. */
  nmiArgmax: number[];
  /** Secondary: best-assignment accuracy of the argmax of the router probabilities. */
  accuracyArgmax: number[];
  /** Final held-out values (the last evaluation) and per-expert load. */
  final: { heldLoss: number; trainLoss: number; nmiArgmax: number; accuracyArgmax: number } & Recovery;
  /** First step (interpolated) at which the held-out loss reached the target, or null. */
  stepsToTarget: number | null;
  /** Held-out MSE of predicting 0 (the scale of the task). */
  zeroLoss: number;
}

/** The MoE layer of a run (weights drawn from `generator`). */
export function buildLayer(spec: RunSpec, generator: Generator): MoELayer {
  return new MoELayer(spec.dim, {
    numExperts: spec.experts,
    expert: spec.expert,
    hidden: spec.expert === "ffn" ? spec.hidden : undefined,
    estimator: spec.estimator,
    estimatorOptions: spec.estimatorOptions,
    balanceLoss: spec.balanceCoef > 0 ? { coef: spec.balanceCoef, form: "topk" } : undefined,
    frozenRouter: spec.frozenRouter,
    generator,
  });
}

/** Whether the arm's router is trained (not a null control's, the oracle's or a frozen one). */
function routerLearns(spec: RunSpec): boolean {
  return !spec.frozenRouter && !estimatorDescriptor(spec.estimator).nullControl;
}

/** A batch as tensors: inputs, targets and (for an arm routing on a key) the keys. */
interface Batch {
  x: Tensor;
  y: Tensor;
  keys: Tensor | undefined;
}

function asTensors(s: Samples, spec: RunSpec, oracle: Int32Array): Batch {
  const keys = sampleKeys(s, spec.routeKey, oracle);
  return {
    x: tensor(s.x, { shape: [s.n, spec.dim] }),
    y: tensor(s.y, { shape: [s.n, spec.dim] }),
    keys: keys ? tensor(keys, { shape: [s.n], dtype: "i32" }) : undefined,
  };
}

function disposeBatch(b: Batch): void {
  b.x.dispose();
  b.y.dispose();
  b.keys?.dispose();
}

/** Each row's argmax of the router probabilities ([N, E] → [N]). */
async function argmaxExperts(probs: Tensor): Promise<Int32Array> {
  const [n, e] = probs.shape;
  const p = await probs.data();
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < e; j++) if (p[i * e + j] > p[i * e + best]) best = j;
    out[i] = best;
  }
  return out;
}

/** Each row's expert with the largest gate ([N, K] routing → [N]); −1 when no gate is positive (no expert). */
async function chosenExperts(routing: { gates: Tensor; experts: Tensor }, numExperts: number): Promise<Int32Array> {
  const [n, k] = routing.gates.shape;
  const gates = await routing.gates.data();
  const experts = await routing.experts.data();
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (gates[i * k + j] > gates[i * k + best]) best = j;
    const e = experts[i * k + best];
    out[i] = gates[i * k + best] > 0 && e >= 0 && e < numExperts ? e : -1;
  }
  return out;
}

/**
 * Builds the layer and trains it one step on a tiny batch: whether the layer can train with this estimator
 * (null) or why not (the error's message). Used to leave out registered estimators the layer cannot run.
 */
export function probeTrainable(spec: RunSpec): string | null {
  try {
    scope(() => {
      const layer = buildLayer({ ...spec, steps: 1 }, new Generator(0));
      const n = 8;
      const probe: Samples = {
        n,
        x: new Float32Array(n * spec.dim).map((_, i) => Math.sin(i)),
        y: new Float32Array(n * spec.dim),
        cluster: Int32Array.from({ length: n }, (_, i) => i % spec.clusters),
        id: Int32Array.from({ length: n }, (_, i) => i),
      };
      const b = asTensors(probe, spec, oracleKeys(spec.clusters, spec.experts, layer.topK));
      const loss = layer.forward(b.x, { tokenIds: b.keys }).square().mean();
      const aux = layer.auxLoss();
      (aux ? loss.add(aux) : loss).backward();
      // A control's router gets no gradient by design; its experts must still learn.
      if (routerLearns(spec) && !layer.router.weight.grad) throw new Error("the router received no gradient");
      if (!layer.experts.namedParameters().some(([, p]) => p.grad)) throw new Error("the experts received no gradient");
      layer.dispose();
    });
    return null;
  } catch (e) {
    return e instanceof Error ? e.message.split("\n")[0] : String(e);
  }
}

/** Trains and evaluates one run (deterministic given the spec; see the module docs). */
export async function trainRun(spec: RunSpec): Promise<RunMetrics> {
  const task = makeTask(
    { dim: spec.dim, clusters: spec.clusters, noise: spec.noise, targetNoise: spec.targetNoise },
    spec.seed,
  );
  const held = sampler(task, spec.seed, "held-out")(spec.heldOut);
  const nextBatch = sampler(task, spec.seed, "train");
  const generator = new Generator(8 * spec.seed + 1);
  const layer = buildLayer(spec, generator);
  // A frozen router's weights have no gradient: the optimizer gets only the parameters that learn.
  const params = layer.namedParameters().filter(([, p]) => p.requiresGrad);
  const optimizer = new AdamW(params, { lr: spec.lr, weightDecay: spec.weightDecay });
  const oracle = oracleKeys(spec.clusters, spec.experts, layer.topK);
  const heldT = asTensors(held, spec, oracle);
  const ownRouting = !routerLearns(spec) && !spec.frozenRouter; // null controls and the oracle
  let zeroLoss = 0;
  for (const v of held.y) zeroLoss += v * v;
  zeroLoss /= held.y.length;

  const m: Omit<RunMetrics, "final" | "stepsToTarget" | "zeroLoss"> = {
    step: [],
    trainLoss: [],
    heldLoss: [],
    mi: [],
    nmi: [],
    accuracy: [],
    purity: [],
    nmiArgmax: [],
    accuracyArgmax: [],
  };
  let last: Recovery | null = null;
  let lastArgmax: Recovery | null = null;
  const evaluate = async (step: number, trainLoss: number) => {
    layer.eval();
    const state = generator.getState();
    try {
      // The routing's tensors are kept past the scope (which disposes everything else it created), read, freed.
      const kept = scope(() =>
        noGrad(() => {
          const loss = layer.forward(heldT.x, { tokenIds: heldT.keys }).sub(heldT.y).square().mean();
          const { gates, experts, probs } = layer.lastRouting!;
          return { loss: keep(loss), gates: keep(gates), experts: keep(experts), probs: keep(probs) };
        })
      );
      const chosen = await chosenExperts(kept, spec.experts);
      const argmax = ownRouting ? chosen : await argmaxExperts(kept.probs);
      const heldLoss = (await kept.loss.data())[0];
      for (const t of [kept.loss, kept.gates, kept.experts, kept.probs]) t.dispose();
      last = recovery(held.cluster, chosen, spec.clusters, spec.experts);
      lastArgmax = ownRouting ? last : recovery(held.cluster, argmax, spec.clusters, spec.experts);
      m.step.push(step);
      m.trainLoss.push(trainLoss);
      m.heldLoss.push(heldLoss);
      m.mi.push(last.mi);
      m.nmi.push(last.nmi);
      m.accuracy.push(last.accuracy);
      m.purity.push(last.purity);
      m.nmiArgmax.push(lastArgmax.nmi);
      m.accuracyArgmax.push(lastArgmax.accuracy);
    } finally {
      generator.setState(state);
      layer.lastRouting = null;
      layer.lastLogits = null;
      layer.lastMetrics = null;
      layer.train();
    }
  };

  try {
    await evaluate(0, NaN);
    let sum = 0, count = 0;
    for (let step = 1; step <= spec.steps; step++) {
      const batch = asTensors(nextBatch(spec.batchSize), spec, oracle);
      const loss = scope(() => {
        const mse = layer.forward(batch.x, { tokenIds: batch.keys }).sub(batch.y).square().mean();
        const aux = layer.auxLoss();
        (aux ? mse.add(aux) : mse).backward();
        optimizer.step();
        optimizer.zeroGrad();
        return keep(mse.detach());
      });
      disposeBatch(batch);
      sum += (await loss.data())[0];
      loss.dispose();
      count++;
      if (step % spec.evalEvery === 0 || step === spec.steps) {
        await evaluate(step, sum / count);
        sum = 0;
        count = 0;
      }
    }
  } finally {
    disposeBatch(heldT);
    optimizer.dispose();
    layer.dispose();
  }
  const n = m.step.length - 1;
  return {
    ...m,
    final: {
      heldLoss: m.heldLoss[n],
      trainLoss: m.trainLoss[n],
      nmiArgmax: m.nmiArgmax[n],
      accuracyArgmax: m.accuracyArgmax[n],
      ...last!,
    },
    stepsToTarget: stepsToTarget(m.step, m.heldLoss, spec.targetLoss),
    zeroLoss,
  };
}
