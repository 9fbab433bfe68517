/**
 * The shape of the gradcheck table (`table.ts`) and the small helpers its rows share. A row names the ops whose
 * gradients it checks, so `tests/core/op_coverage_test.ts` can tell which differentiable ops have no row; the
 * rows themselves are plain closures, run as test steps by `tests/core/gradcheck_test.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { gradients, ones, sub, type Tensor } from "../../../mod.ts";
import type { OpName } from "../../../core/ops/catalog.ts";
import { randomShape } from "../../helpers/gradcheck.ts";

/** One step of the table: the ops it checks, its name and its body. */
export interface GradcheckRow {
  /** The ops whose gradients this row checks (empty for rows about autograd itself, e.g. customGrad). */
  readonly ops: readonly OpName[];
  /** The step's name. */
  readonly name: string;
  /** The checks (throws on a mismatch). */
  readonly run: () => void;
}

/** Rows run as the steps of one Deno test. */
export interface GradcheckFamily {
  /** The Deno test's name. */
  readonly test: string;
  /** Its steps, in order. */
  readonly rows: readonly GradcheckRow[];
}

/** A shape. */
export type Shape = readonly number[];

/** An op under test, over tensors. */
export type Fn = (...xs: Tensor[]) => Tensor;

/** A scalar, a random rank ≥ 1 shape and a random rank ≥ 2 shape, all from `seed`. */
export function someShapes(seed: number): Shape[] {
  return [[], randomShape(seed, { minRank: 1 }), randomShape(seed + 1, { minRank: 2 })];
}

/** The elements of `t` as f64. */
export function data(t: Tensor): Float64Array {
  return Float64Array.from(t.dataSync());
}

/** The analytic gradient of Σ fn(...xs) ⊙ gOut (gOut defaults to ones) with respect to each input. */
export function vjp(fn: Fn, xs: Tensor[], gOut?: Tensor): Float64Array[] {
  const leaves = xs.map((x) => x.detach().requiresGrad_());
  const y = fn(...leaves);
  return gradients(y, leaves, [gOut ?? ones(y.shape, { dtype: "f64" })]).map(data);
}

/** Asserts |actual − expected| ≤ tol·(1 + |expected|) element by element. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol = 1e-12,
  what = "values",
): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} vs ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tol * (1 + Math.abs(expected[i])),
      `${what}[${i}]: got ${actual[i]}, expected ${expected[i]}`,
    );
  }
}

/** Shifts `b` until no broadcast pair (a, b) is within 1e-3 of a tie. */
export function noTies(a: Tensor, b: Tensor): Tensor {
  while (data(sub(a, b).abs().min())[0] < 1e-3) b = b.add(0.0137);
  return b;
}
