/**
 * The controlled task of `exp:routing-recovery`: a regression problem whose optimal routing is known.
 *
 * A task instance (drawn from its seed) has C latent clusters, each with
 * - a mean μ_c ~ N(0, I_d) (pairwise distances ≈ √(2d)),
 * - its own linear target map A_c with N(0, 1/d) entries (so ‖A_c x‖ ≈ ‖x‖).
 *
 * A sample picks a cluster c uniformly, then x = μ_c + σ·ε (ε ~ N(0, I_d), σ = `noise`) and the target
 * y = A_c x (+ τ·η with η ~ N(0, I_d) when `targetNoise` τ > 0). Low loss needs a different map per cluster, and
 * one linear expert represents one A_c exactly, so with C = E clusters the optimal routing sends each cluster to
 * its own expert and reaches the target-noise floor τ²; with C = m·E an expert must serve m clusters.
 * Larger σ makes the clusters overlap (the router cannot tell them apart), larger m and E make the assignment
 * harder to find.
 *
 * Each sample also carries an integer **id** drawn uniformly from [0, {@link SAMPLE_ID_VOCAB}), independently of
 * its cluster and of everything else: the key the `hash` null control routes on (a fixed random assignment that
 * carries no information about the cluster; `plan.ts`).
 *
 * Every number comes from the seeded PRNG of `common/stats.ts` (Box–Muller normals), through independent streams
 * derived from (seed, purpose): the task's parameters, the held-out set and the training batches (the ids from a
 * stream of their own, so adding them changed no other number). The same seed therefore gives every arm the same
 * task, held-out set and batches (common random numbers).
 *
 * @module
 */
import { mixSeed, normalSampler } from "../estimator_bias/problems.ts";
import { seededRandom } from "../common/stats.ts";

/** What shapes a task. */
export interface TaskSpec {
  /** Input and output width d. */
  dim: number;
  /** Number of clusters C. */
  clusters: number;
  /** Input noise σ around each cluster mean. */
  noise: number;
  /** Target noise τ (0: noise-free targets). */
  targetNoise: number;
}

/** A task instance. */
export interface Task extends TaskSpec {
  /** Cluster means, [C][d]. */
  means: Float64Array[];
  /** Target maps, [C] of row-major d×d (y = A x). */
  maps: Float64Array[];
}

/** The sample ids are in [0, SAMPLE_ID_VOCAB). */
export const SAMPLE_ID_VOCAB = 4096;

/** A labelled sample set: inputs and targets row-major [n, d] (f32), true clusters [n], sample ids [n]. */
export interface Samples {
  /** Number of samples. */
  n: number;
  /** Inputs x, [n·d]. */
  x: Float32Array;
  /** Targets y, [n·d]. */
  y: Float32Array;
  /** The true cluster of each sample. */
  cluster: Int32Array;
  /** Each sample's id: uniform in [0, SAMPLE_ID_VOCAB), independent of its cluster. */
  id: Int32Array;
}

/** The task instance of `seed` (independent of everything but the spec and the seed). */
export function makeTask(spec: TaskSpec, seed: number): Task {
  const { dim: d, clusters: c } = spec;
  const normal = normalSampler(mixSeed("task", seed, d, c));
  const means = Array.from({ length: c }, () => Float64Array.from({ length: d }, () => normal()));
  const sd = 1 / Math.sqrt(d);
  const maps = Array.from({ length: c }, () => Float64Array.from({ length: d * d }, () => sd * normal()));
  return { ...spec, means, maps };
}

/** A sampler of labelled batches from the stream (seed, purpose): deterministic, consumed in order. */
export function sampler(task: Task, seed: number, purpose: string): (n: number) => Samples {
  const stream = mixSeed("samples", purpose, seed);
  const normal = normalSampler(stream);
  const uniform = seededRandom(mixSeed("clusters", stream));
  const idStream = seededRandom(mixSeed("ids", stream));
  const d = task.dim;
  return (n) => {
    const x = new Float32Array(n * d);
    const y = new Float32Array(n * d);
    const cluster = new Int32Array(n);
    const id = Int32Array.from({ length: n }, () => Math.floor(idStream() * SAMPLE_ID_VOCAB));
    const row = new Float64Array(d);
    for (let i = 0; i < n; i++) {
      const c = Math.min(task.clusters - 1, Math.floor(uniform() * task.clusters));
      cluster[i] = c;
      const mu = task.means[c];
      for (let k = 0; k < d; k++) row[k] = mu[k] + task.noise * normal();
      const a = task.maps[c];
      for (let r = 0; r < d; r++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += a[r * d + k] * row[k];
        y[i * d + r] = s + (task.targetNoise > 0 ? task.targetNoise * normal() : 0);
        x[i * d + r] = row[r];
      }
    }
    return { n, x, y, cluster, id };
  };
}
