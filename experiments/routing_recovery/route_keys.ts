/**
 * The integer keys `exp:routing-recovery` hands to the MoE layer as its route context
 * (`MoELayer.forward(x, { tokenIds })`), which only the `hash` router reads (`plan.ts` says which arm gets which):
 *
 * - `"sample"`: each sample's id (`task.ts`), uniform and independent of its cluster — the `hash` null control;
 * - `"cluster"`: the oracle key of each sample's true cluster ({@link oracleKeys}) — the `oracle` reference.
 *
 * @module
 */
import { hashExperts } from "../../moe/estimators/null_controls.ts";
import { SAMPLE_ID_VOCAB, type Samples } from "./task.ts";

/** Which key an arm routes on (null: none, the router reads x). */
export type RouteKey = "sample" | "cluster" | null;

/**
 * The oracle's key of each of `clusters` clusters for a `hash` router with `experts` experts, `k` per token and
 * hash seed 0: the smallest id whose first hashed expert is c mod E, so the router sends cluster c to expert
 * c mod E (each expert gets ⌈C/E⌉ or ⌊C/E⌋ clusters).
 */
export function oracleKeys(clusters: number, experts: number, k: number): Int32Array {
  const firstIdOf = new Map<number, number>();
  for (let id = 0; id < SAMPLE_ID_VOCAB && firstIdOf.size < experts; id++) {
    const e = hashExperts(id, experts, k, 0)[0];
    if (!firstIdOf.has(e)) firstIdOf.set(e, id);
  }
  if (firstIdOf.size < experts) {
    throw new RangeError(`oracleKeys: no id below ${SAMPLE_ID_VOCAB} hashes to each of ${experts} experts`);
  }
  return Int32Array.from({ length: clusters }, (_, c) => firstIdOf.get(c % experts)!);
}

/** The keys of `samples` for an arm routing on `key` (null for none); `oracle` from {@link oracleKeys}. */
export function sampleKeys(samples: Samples, key: RouteKey, oracle: Int32Array): Int32Array | null {
  if (key === null) return null;
  if (key === "sample") return samples.id;
  return samples.cluster.map((c) => oracle[c]);
}
