/**
 * f64 central-difference gradient checks of every differentiable op: the analytic VJP (via `gradients()`,
 * and `backward()` for the same numbers) against numeric derivatives of L = Σ op(...xs) ⊙ W, on several
 * seeded random shapes, with broadcasting wherever the op broadcasts.
 *
 * The rows live in the gradcheck table (`tests/core/gradcheck/table.ts`), one Deno test per family and one step
 * per row; `op_coverage_test.ts` checks that every differentiable op has a row.
 */
import { GRADCHECK_TABLE } from "./gradcheck/table.ts";

for (const family of GRADCHECK_TABLE) {
  Deno.test(family.test, async (t) => {
    for (const row of family.rows) await t.step(row.name, row.run);
  });
}
