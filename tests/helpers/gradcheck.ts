/**
 * Gradient checking for tests: the analytic VJP of an op (through `gradients()`) against f64 central
 * differences, plus seeded generators of shapes and inputs so every check is reproducible.
 *
 * The checked scalar is L = Σ fn(...xs) ⊙ W with W a fixed random tensor of the output's shape, so every
 * output element (not just their sum) takes part: dL/dx = Jᵀ W is a random vector-Jacobian product.
 *
 * @module
 */
import { AssertionError } from "node:assert";
import {
  argsort,
  backward,
  Generator,
  grad,
  gradients,
  mul,
  rand,
  randint,
  randn,
  type Shape,
  sum,
  type Tensor,
  tensor,
  zerosLike,
} from "../../mod.ts";
import { sizeOf } from "../../internals.ts";

/** Options of {@link gradcheck}. */
export interface GradcheckOptions {
  /** The op's name, shown in failure messages (default: the function's name). */
  name?: string;
  /** Central-difference step (default 1e-6). */
  h?: number;
  /** Absolute tolerance (default 1e-6). */
  atol?: number;
  /** Relative tolerance, times |numeric| (default 1e-5). */
  rtol?: number;
  /** Seed of the output weights W (default 1234). */
  seed?: number;
  /** Indices of the inputs to differentiate (default: all). The others are passed as constants. */
  wrt?: readonly number[];
  /** Also run `backward()` on a fresh graph and compare the `.grad` it leaves (default true). */
  checkBackward?: boolean;
}

/** What {@link gradcheck} computed (for tests that assert more than closeness). */
export interface GradcheckResult {
  /** fn's output at the given inputs (detached). */
  output: Tensor;
  /** The weights W of the checked scalar L = Σ output ⊙ W. */
  weights: Float64Array;
  /** dL/dx for each input in `wrt` order, analytic. */
  analytic: Float64Array[];
  /** dL/dx for each input in `wrt` order, by central differences. */
  numeric: Float64Array[];
}

function f64(t: Tensor): Float64Array {
  return Float64Array.from(t.dataSync());
}

/** The row-major multi-index of flat element `i` of `shape`. */
export function unravel(i: number, shape: Shape): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return idx;
}

function fmt(shape: Shape): string {
  return `[${shape.join(", ")}]`;
}

/**
 * Checks the VJP of `fn` at `inputs` (f64 tensors) against central differences, element by element, with
 * |analytic − numeric| ≤ atol + rtol·|numeric|. Throws an AssertionError naming the op, the input, the
 * element and both values. Inputs holding ±∞ are fine: the numeric derivative there is 0.
 */
export function gradcheck(
  fn: (...xs: Tensor[]) => Tensor,
  inputs: readonly Tensor[],
  options: GradcheckOptions = {},
): GradcheckResult {
  const name = options.name ?? (fn.name || "fn");
  const h = options.h ?? 1e-6, atol = options.atol ?? 1e-6, rtol = options.rtol ?? 1e-5;
  const wrt = options.wrt ?? inputs.map((_, i) => i);
  inputs.forEach((x, i) => {
    if (x.dtype !== "f64") throw new TypeError(`gradcheck[${name}]: input ${i} is ${x.dtype}, expected f64`);
  });
  const base = inputs.map(f64);

  // ---- analytic: dL/dx through the tape ----
  const leaves = inputs.map((x, i) => (wrt.includes(i) ? x.detach().requiresGrad_() : x.detach()));
  const out = fn(...leaves);
  if (out.dtype !== "f64") throw new AssertionError({ message: `gradcheck[${name}]: output is ${out.dtype}, not f64` });
  const w = randn(out.shape, { dtype: "f64", generator: new Generator(options.seed ?? 1234) });
  const weights = f64(w);
  const watched = wrt.map((i) => leaves[i]);
  const loss = sum(mul(out, w));
  const grads = loss.requiresGrad ? gradients(loss, watched) : watched.map((x) => zerosLike(x));
  grads.forEach((g, k) => {
    const x = watched[k];
    if (g.dtype !== "f64" || g.shape.length !== x.shape.length || g.shape.some((d, j) => d !== x.shape[j])) {
      throw new AssertionError({
        message: `gradcheck[${name}]: gradient of input ${wrt[k]} is ${g.dtype} ${fmt(g.shape)}, expected f64 ${
          fmt(x.shape)
        }`,
      });
    }
  });
  const analytic = grads.map(f64);

  // ---- backward(): the same numbers must land in .grad ----
  if ((options.checkBackward ?? true) && loss.requiresGrad) {
    const leaves2 = inputs.map((x, i) => (wrt.includes(i) ? x.detach().requiresGrad_() : x.detach()));
    backward(sum(mul(fn(...leaves2), w)));
    wrt.forEach((i, k) => {
      const g = leaves2[i].grad;
      const got = g ? f64(g) : new Float64Array(inputs[i].size);
      for (let j = 0; j < got.length; j++) {
        const a = analytic[k][j], b = got[j];
        if (!(Math.abs(a - b) <= 1e-12 * (1 + Math.abs(a))) && !(Number.isNaN(a) && Number.isNaN(b))) {
          throw new AssertionError({
            message: `gradcheck[${name}]: backward() left ${b} in .grad of input ${i} element ${j} ${
              fmt(unravel(j, inputs[i].shape))
            }, gradients() gave ${a}`,
          });
        }
      }
    });
  }

  // ---- numeric: central differences of L, one element at a time ----
  const evalLoss = (arrays: Float64Array[]): number => {
    const xs = arrays.map((a, i) => tensor(a, { dtype: "f64", shape: inputs[i].shape }));
    const y = fn(...xs);
    if (y.shape.length !== out.shape.length || y.shape.some((d, j) => d !== out.shape[j])) {
      throw new AssertionError({ message: `gradcheck[${name}]: output shape changed under perturbation` });
    }
    const d = y.dataSync();
    let s = 0;
    for (let k = 0; k < d.length; k++) s += d[k] * weights[k];
    return s;
  };
  const arrays = base.map((a) => a.slice());
  const numeric = wrt.map((i) => {
    const num = new Float64Array(base[i].length);
    for (let j = 0; j < num.length; j++) {
      const x0 = base[i][j];
      arrays[i][j] = x0 + h;
      const lp = evalLoss(arrays);
      arrays[i][j] = x0 - h;
      const lm = evalLoss(arrays);
      arrays[i][j] = x0;
      num[j] = lp === lm ? 0 : (lp - lm) / (2 * h); // ±∞ inputs: x ± h = x, so the derivative is 0
    }
    return num;
  });

  // ---- compare ----
  const problems: string[] = [];
  let count = 0;
  wrt.forEach((i, k) => {
    for (let j = 0; j < numeric[k].length; j++) {
      const a = analytic[k][j], n = numeric[k][j];
      const tol = atol + rtol * Math.abs(n);
      if (!(Math.abs(a - n) <= tol)) {
        count++;
        if (problems.length < 6) {
          problems.push(
            `  input ${i} ${fmt(inputs[i].shape)} element ${j} ${fmt(unravel(j, inputs[i].shape))} (x = ${
              base[i][j]
            }): analytic ${a}, numeric ${n}, |diff| ${Math.abs(a - n).toExponential(3)} > tol ${tol.toExponential(3)}`,
          );
        }
      }
    }
  });
  if (count > 0) {
    throw new AssertionError({
      message: `gradcheck[${name}]: ${count} gradient element(s) disagree with central differences\n${
        problems.join("\n")
      }${count > problems.length ? `\n  … and ${count - problems.length} more` : ""}`,
    });
  }

  // The op must not have written into its inputs.
  inputs.forEach((x, i) => {
    const now = x.dataSync();
    for (let j = 0; j < now.length; j++) {
      if (!Object.is(now[j], base[i][j])) {
        throw new AssertionError({ message: `gradcheck[${name}]: input ${i} element ${j} was modified` });
      }
    }
  });
  return { output: out.detach(), weights, analytic, numeric };
}

/** Options of {@link gradgradcheck}. */
export interface GradgradcheckOptions extends GradcheckOptions {
  /** How the first derivative is built: `gradients(..., {createGraph: true})`, `grad()`, or both (default). */
  via?: "gradients" | "grad" | "both";
}

/**
 * Checks second derivatives of a scalar function `f`: for every input k, the first derivative
 * ∂f/∂x_k — built with `gradients(f, xs, undefined, {createGraph: true})` and/or with `grad(f, ks)` —
 * is differentiated again through the tape and compared with central differences of the first
 * derivative itself. With the W weighting this covers every block (pure and mixed) of the Hessian.
 */
export function gradgradcheck(
  f: (...xs: Tensor[]) => Tensor,
  inputs: readonly Tensor[],
  options: GradgradcheckOptions = {},
): void {
  const name = options.name ?? (f.name || "f");
  const via = options.via ?? "both";
  const wrt = options.wrt ?? inputs.map((_, i) => i);
  wrt.forEach((k, pos) => {
    if (via !== "grad") {
      const firstByGradients = (...xs: Tensor[]) => {
        const ws = xs.map((x, i) => (wrt.includes(i) && !x.requiresGrad ? x.detach().requiresGrad_() : x));
        return gradients(f(...ws), wrt.map((i) => ws[i]), undefined, { createGraph: true })[pos];
      };
      gradcheck(firstByGradients, inputs, { ...options, name: `d²(${name}) via gradients, ∂/∂x${k}` });
    }
    if (via !== "gradients") {
      const firstByGrad = (...xs: Tensor[]) => grad(f, wrt)(...xs)[pos];
      gradcheck(firstByGrad, inputs, { ...options, name: `d²(${name}) via grad, ∂/∂x${k}` });
    }
  });
}

// ---- seeded random shapes and inputs ----------------------------------------------------------------

/** A generator from a seed (or the generator itself). */
export function rng(seed: number | Generator): Generator {
  return typeof seed === "number" ? new Generator(seed) : seed;
}

/** `n` integers uniform in [low, high) from `gen`. */
export function randInts(gen: Generator, low: number, high: number, n: number): number[] {
  if (n === 0) return [];
  return Array.from(randint(low, high, [n], { generator: gen }).dataSync());
}

/** Options of {@link randomShape}. */
export interface ShapeOptions {
  /** Smallest rank (default 0). */
  minRank?: number;
  /** Largest rank (default 3). */
  maxRank?: number;
  /** Smallest size of an axis (default 1). */
  minSize?: number;
  /** Largest size of an axis (default 4). */
  maxSize?: number;
}

/** A random shape (rank 0–3, sizes 1–4 unless told otherwise) drawn from `seed`. */
export function randomShape(seed: number | Generator, options: ShapeOptions = {}): number[] {
  const gen = rng(seed);
  const { minRank = 0, maxRank = 3, minSize = 1, maxSize = 4 } = options;
  const [rank] = randInts(gen, minRank, maxRank + 1, 1);
  return randInts(gen, minSize, maxSize + 1, rank);
}

/**
 * `count` shapes that broadcast together (NumPy rules): each is a random base shape (rank 1–3, sizes 2–4
 * unless told otherwise) with some leading axes dropped (few, more often none) and about a quarter of the
 * axes set to 1, so the broadcast result is at most the base shape.
 */
export function broadcastShapesFrom(seed: number | Generator, count: number, options: ShapeOptions = {}): number[][] {
  const gen = rng(seed);
  const baseShape = randomShape(gen, { minRank: 1, minSize: 2, ...options });
  return Array.from({ length: count }, () => {
    const drop = Math.min(...randInts(gen, 0, baseShape.length + 1, 2));
    const ones = randInts(gen, 0, 4, baseShape.length);
    return baseShape.slice(drop).map((d, i) => (ones[i + drop] === 0 ? 1 : d));
  });
}

/** Standard normal f64 samples times `scale`. */
export function randnF64(shape: Shape, seed: number | Generator, scale = 1): Tensor {
  const t = randn(shape, { dtype: "f64", generator: rng(seed) });
  return scale === 1 ? t : t.mul(scale);
}

/** Uniform f64 samples in [lo, hi). */
export function uniformF64(shape: Shape, seed: number | Generator, lo = 0, hi = 1): Tensor {
  return rand(shape, { dtype: "f64", generator: rng(seed) }).mul(hi - lo).add(lo);
}

/**
 * Uniform f64 samples in [lo, hi) pushed at least `margin` away from each point of `avoid` (kinks, bounds,
 * zeros of a denominator), so that x ± h never crosses one.
 */
export function awayFrom(
  shape: Shape,
  seed: number | Generator,
  avoid: readonly number[],
  margin = 0.05,
  lo = -2,
  hi = 2,
): Tensor {
  const data = f64(uniformF64(shape, seed, lo, hi));
  for (let i = 0; i < data.length; i++) {
    for (const p of avoid) {
      const d = data[i] - p;
      if (Math.abs(d) < margin) data[i] = p + (d >= 0 ? margin : -margin) + d;
    }
  }
  return tensor(data, { dtype: "f64", shape });
}

/**
 * Pairwise distinct f64 values (a random permutation of a grid with spacing `spacing`, jittered by less
 * than spacing/2), for max/min/sort/topk whose gradients are only defined without ties.
 */
export function distinctF64(shape: Shape, seed: number | Generator, spacing = 0.1): Tensor {
  const gen = rng(seed);
  const n = sizeOf(shape);
  const perm = argsort(rand([n], { dtype: "f64", generator: gen })).dataSync();
  const jitter = rand([n], { dtype: "f64", generator: gen }).dataSync();
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) data[i] = (perm[i] - n / 2) * spacing + jitter[i] * spacing * 0.4;
  return tensor(data, { dtype: "f64", shape });
}

/** i32 indices uniform in [0, high) of the given shape. */
export function randomIndex(shape: Shape, high: number, seed: number | Generator): Tensor {
  return randint(0, high, shape, { generator: rng(seed) });
}

/** An f64 tensor from nested arrays. */
export function f64Tensor(data: number[] | number[][] | number[][][] | number, shape?: Shape): Tensor {
  return tensor(data, { dtype: "f64", shape });
}

/** An i32 tensor from nested arrays. */
export function i32Tensor(data: number[] | number[][] | number[][][], shape?: Shape): Tensor {
  return tensor(data, { dtype: "i32", shape });
}
