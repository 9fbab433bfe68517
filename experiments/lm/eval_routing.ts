/**
 * The routing diagnostics taken at each evaluation of an LM run (no extra sync: the evaluation already reads its
 * loss back per batch): the eval-mode experts of every MoE layer on the fixed validation batches give the mutual
 * information between token id and expert (`routing_diagnostics.ts`), and those of the first validation batch are
 * kept as a routing snapshot (`routing_snapshots.jsonl`), from which the report computes router saturation — how
 * far each step's routing already agrees with the final one.
 *
 * @module
 */
import type { MoELayer } from "../../moe/layer.ts";
import { tokenExpertMI } from "./routing_diagnostics.ts";

/** MI of one MoE layer at an evaluation (in the valid split's eval record). */
export interface EvalRoutingRecord {
  /** Index of the decoder layer. */
  layer: number;
  /** Plug-in MI (nats) between token id and expert over the validation batches (eval mode). */
  mi: number;
  /** The same, Miller–Madow bias-corrected (`routing_diagnostics.ts`). */
  miCorrected: number;
  /** Entropy (nats) of the expert over those tokens (the MI's upper bound). */
  expertEntropy: number;
}

/** One line of `routing_snapshots.jsonl`: the eval-mode experts of the first validation batch at a step. */
export interface RoutingSnapshot {
  /** Optimizer updates done. */
  step: number;
  /** Per MoE layer: K and the experts of the batch's tokens (row major, N·K). */
  layers: { layer: number; topK: number; experts: number[] }[];
}

/** Collects the experts of each validation batch during one evaluation (see the module docs). */
export class EvalRoutingProbe {
  readonly #layers: readonly MoELayer[];
  readonly #indices: readonly number[];
  readonly #ids: readonly ArrayLike<number>[];
  #experts: number[][][] = [];

  /** `ids[b]`: the token ids of validation batch b (host copies, flattened). */
  constructor(layers: readonly MoELayer[], layerIndices: readonly number[], ids: readonly ArrayLike<number>[]) {
    this.#layers = layers;
    this.#indices = layerIndices;
    this.#ids = ids;
  }

  /** Starts an evaluation. */
  reset(): void {
    this.#experts = this.#layers.map(() => []);
  }

  /** Reads the layers' routing of the batch just evaluated (call in order, after each batch's forward). */
  async add(): Promise<void> {
    for (let l = 0; l < this.#layers.length; l++) {
      const experts = this.#layers[l].lastRouting!.experts;
      this.#experts[l].push(Array.from(await experts.data(), Number));
    }
  }

  /** The MI per layer and the snapshot of the first batch, at `step`. */
  result(step: number): { routing: EvalRoutingRecord[]; snapshot: RoutingSnapshot } {
    const ids = this.#ids.flatMap((b) => Array.from(b));
    const routing = this.#layers.map((layer, l) => {
      const { mi, miCorrected, expertEntropy } = tokenExpertMI(ids, this.#experts[l].flat(), layer.numExperts);
      return { layer: this.#indices[l], mi, miCorrected, expertEntropy };
    });
    const snapshot = {
      step,
      layers: this.#layers.map((_, l) => ({
        layer: this.#indices[l],
        topK: this.#experts[l][0].length / this.#ids[0].length,
        experts: this.#experts[l][0],
      })),
    };
    return { routing, snapshot };
  }
}
