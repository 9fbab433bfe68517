/**
 * The reference-vector replay shared by the per-family estimator tests: `replayVector` in f64 on the CPU
 * (the replay `tests/moe/vectors_test.ts` runs over every file), with every quantity asserted to pass. The
 * family tests add only what that replay does not check: intermediates and tighter error bounds.
 *
 * @module
 */
import assert from "node:assert/strict";
import "../../mod.ts";
import { type QuantityResult, replayVector } from "../../moe/vectors/replay.ts";

/**
 * Replays the vector file `v` in f64 on the CPU, asserts that every quantity is within its tolerance, and
 * returns the largest absolute error of each quantity, keyed by its name (`outputs.<key>`, `grads.<key>`, …).
 */
export async function replayF64(v: unknown): Promise<Record<string, number>> {
  const r = await replayVector(v, { dtype: "f64", device: "cpu" });
  const bad = r.results.filter((q: QuantityResult) => !q.ok);
  assert.deepEqual(bad, [], `${r.name}: ${JSON.stringify(bad)}`);
  assert.ok(r.results.some((q) => q.quantity === "random_draws (all consumed)"), `${r.name}: draws checked`);
  return Object.fromEntries(r.results.map((q) => [q.quantity, q.maxAbs]));
}
