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
 * Evaluation (eval mode, the same held-out set for every arm of a seed): the held-out MSE, and the routing
 * recovery of `recovery.ts` where each sample's expert is the one with the largest gate of the layer's routing
 * (the only expert for top-1; the heaviest for top-k; the sampled one-hot for the dense estimators, which sample
 * in evaluation too). Evaluation restores the layer's random stream afterwards, so it never changes training.
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
import { stepsToTarget } from "../common/stats.ts";
import { makeTask, sampler, type Samples } from "./task.ts";
import { type Recovery, recovery } from "./recovery.ts";

/** Everything one run needs (derived from the config and the run's cell, arm and seed). */
export interface RunSpec {
  /** Seed (task, data, weights, draws). */
  seed: number;
  /** Registry estimator name. */
  estimator: string;
  /** Registry options (topK for the estimators that take it). */
  estimatorOptions: Record<string, unknown>;
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
  /** Final held-out values (the last evaluation) and per-expert load. */
  final: { heldLoss: number; trainLoss: number } & Recovery;
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
    generator,
  });
}

function asTensors(s: Samples, dim: number): { x: Tensor; y: Tensor } {
  return { x: tensor(s.x, { shape: [s.n, dim] }), y: tensor(s.y, { shape: [s.n, dim] }) };
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
      const x = tensor(new Float32Array(8 * spec.dim).map((_, i) => Math.sin(i)), { shape: [8, spec.dim] });
      const loss = layer.forward(x).square().mean();
      const aux = layer.auxLoss();
      (aux ? loss.add(aux) : loss).backward();
      if (!layer.router.weight.grad) throw new Error("the router received no gradient");
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
  const params = layer.namedParameters();
  const optimizer = new AdamW(params, { lr: spec.lr, weightDecay: spec.weightDecay });
  const heldT = asTensors(held, spec.dim);
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
  };
  let last: Recovery | null = null;
  const evaluate = async (step: number, trainLoss: number) => {
    layer.eval();
    const state = generator.getState();
    try {
      // The routing's tensors are kept past the scope (which disposes everything else it created), read, freed.
      const kept = scope(() =>
        noGrad(() => {
          const loss = layer.forward(heldT.x).sub(heldT.y).square().mean();
          const { gates, experts } = layer.lastRouting!;
          return { loss: keep(loss), gates: keep(gates), experts: keep(experts) };
        })
      );
      const chosen = await chosenExperts(kept, spec.experts);
      const heldLoss = (await kept.loss.data())[0];
      for (const t of [kept.loss, kept.gates, kept.experts]) t.dispose();
      last = recovery(held.cluster, chosen, spec.clusters, spec.experts);
      m.step.push(step);
      m.trainLoss.push(trainLoss);
      m.heldLoss.push(heldLoss);
      m.mi.push(last.mi);
      m.nmi.push(last.nmi);
      m.accuracy.push(last.accuracy);
      m.purity.push(last.purity);
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
      const batch = asTensors(nextBatch(spec.batchSize), spec.dim);
      const loss = scope(() => {
        const mse = layer.forward(batch.x).sub(batch.y).square().mean();
        const aux = layer.auxLoss();
        (aux ? mse.add(aux) : mse).backward();
        optimizer.step();
        optimizer.zeroGrad();
        return keep(mse.detach());
      });
      batch.x.dispose();
      batch.y.dispose();
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
    heldT.x.dispose();
    heldT.y.dispose();
    optimizer.dispose();
    layer.dispose();
  }
  const n = m.step.length - 1;
  return {
    ...m,
    final: { heldLoss: m.heldLoss[n], trainLoss: m.trainLoss[n], ...last! },
    stepsToTarget: stepsToTarget(m.step, m.heldLoss, spec.targetLoss),
    zeroLoss,
  };
}
