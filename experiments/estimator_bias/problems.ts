/**
 * Seeded problem instances of `exp:estimator-bias`: one token's router logits z ∈ R^E, the expert outputs
 * h ∈ R^{E×d} and the parameters of the downstream function f: R^d → R. Everything is drawn from the small
 * seeded PRNG of `common/stats.ts` (Box–Muller normals), so a (seed, E, σ, d) tuple always gives the same
 * numbers, on any machine, independently of which estimator or cell asks (common random problems).
 *
 * Downstream functions (row-wise on [M, d]):
 * - `linear`: f(v) = wᵀv, w ~ N(0, I). f' is constant: every SparseMixer branch gives the same per-draw gradient.
 * - `quadratic`: f(v) = ½ vᵀAv + wᵀv, A symmetric with N(0, 1/d) entries (indefinite). f'' is constant, so the
 *   mid-point rule is exact and the Euler rule is not.
 * - `tanh`: f(v) = cᵀ tanh(Uv + b), U ~ N(0, 4/d) (so tanh is well into its nonlinear range), b ~ N(0, ¼),
 *   c ~ N(0, 1/r): a small smooth network, no derivative constant.
 *
 * @module
 */
import { type Tensor, tensor } from "../../core/mod.ts";
import { seededRandom } from "../common/stats.ts";

/** A downstream function name. */
export type FunctionName = "linear" | "quadratic" | "tanh";

/** One problem instance. */
export interface Problem {
  /** Router logits [E] (f64). */
  logits: Tensor;
  /** Expert outputs [E, d] (f64). */
  experts: Tensor;
  /** The downstream function, row-wise [M, d] → [M]. */
  f: (v: Tensor) => Tensor;
}

/** Mixes integers into a 32-bit seed (FNV-1a over their decimal text; stable across platforms). */
export function mixSeed(...parts: (number | string)[]): number {
  let h = 0x811c9dc5;
  for (const ch of parts.join("|")) {
    h ^= ch.codePointAt(0)!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** A seeded standard-normal sampler (Box–Muller on {@link seededRandom}). */
export function normalSampler(seed: number): () => number {
  const u = seededRandom(seed);
  return () => {
    const u1 = 1 - u(); // (0, 1]
    const u2 = u();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  };
}

function matrix(rows: number, cols: number, sd: number, n: () => number): number[][] {
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => sd * n()));
}

/** The downstream function `name` with parameters drawn from `seed` (independent of E and σ). */
export function downstream(name: FunctionName, seed: number, dim: number, hidden: number): (v: Tensor) => Tensor {
  const n = normalSampler(mixSeed("f", name, seed, dim, hidden));
  const f64 = (x: number[] | number[][]) => tensor(x, { dtype: "f64" });
  if (name === "linear") {
    const w = f64(matrix(1, dim, 1, n)[0]);
    return (v) => v.mul(w).sum(-1);
  }
  if (name === "quadratic") {
    const b = matrix(dim, dim, 1 / Math.sqrt(dim), n);
    const a = f64(b.map((row, i) => row.map((x, j) => (x + b[j][i]) / Math.SQRT2)));
    const w = f64(matrix(1, dim, 1, n)[0]);
    return (v) => v.matmul(a).mul(v).sum(-1).mul(0.5).add(v.mul(w).sum(-1));
  }
  if (name === "tanh") {
    const u = f64(matrix(dim, hidden, 2 / Math.sqrt(dim), n));
    const b = f64(matrix(1, hidden, 0.5, n)[0]);
    const c = f64(matrix(1, hidden, 1 / Math.sqrt(hidden), n)[0]);
    return (v) => v.matmul(u).add(b).tanh().mul(c).sum(-1);
  }
  throw new RangeError(`unknown downstream function "${String(name)}" (allowed: linear, quadratic, tanh)`);
}

/** The problem of seed `seed` for E experts, logit scale σ and function `f`. */
export function makeProblem(options: {
  seed: number;
  experts: number;
  scale: number;
  dim: number;
  hidden: number;
  f: FunctionName;
}): Problem {
  const { seed, experts: e, scale, dim } = options;
  const n = normalSampler(mixSeed("problem", seed, e, scale, dim));
  const logits = tensor(Array.from({ length: e }, () => scale * n()), { dtype: "f64" });
  const experts = tensor(matrix(e, dim, 1, n), { dtype: "f64" });
  return { logits, experts, f: downstream(options.f, seed, dim, options.hidden) };
}
