/**
 * The contract every routing-gradient estimator implements, and the random-draw sources they consume.
 *
 * An estimator turns router logits `z` [N, E] into a routing: which experts each token uses (`experts`
 * [N, K]), the multiplier of each chosen expert's output (`gates` [N, K], whose gradient with respect to `z`
 * is the estimator's — usually a custom gradient, see `customGrad`), and the probabilities the load-balancing
 * loss uses (`probs` [N, E]). Every random number comes from a {@link DrawSource}, in a documented order, so
 * the reference vectors (`vectors/`) can replay the draws the PyTorch code made.
 *
 * @module
 */
import type { Tensor } from "../../core/tensor.ts";
import type { Generator } from "../../core/random/generator.ts";
import { rand } from "../../core/ops/random.ts";
import { tensor } from "../../core/ops/creation.ts";
import { OpError } from "../../core/errors.ts";
import type { FloatDType } from "../../core/dtype.ts";
import type { Device } from "../../core/device.ts";
import type { Module } from "../../nn/module.ts";
import type { DispatchPlan } from "../dispatch.ts";

/** The kinds of random draws estimators make (named after the PyTorch calls the vectors log). */
export type DrawKind = "exponential" | "uniform";

/** Where an estimator's random numbers come from. */
export interface DrawSource {
  /**
   * The next draw of `kind` with `shape` (Exp(1) for "exponential", U[0, 1) for "uniform"). `call` names the
   * PyTorch call it stands for (`"Tensor.exponential_"`, `"torch.rand_like"`, `"Tensor.uniform_"`), which a
   * replaying source checks against its log.
   */
  draw(kind: DrawKind, shape: readonly number[], call: string, like: { dtype: FloatDType; device: Device }): Tensor;
}

/** Draws from a moegrad {@link Generator}: Exp(1) as −log(1 − U). */
export class GeneratorDraws implements DrawSource {
  /** The stream. */
  readonly generator: Generator;
  /** Draws from `generator`. */
  constructor(generator: Generator) {
    this.generator = generator;
  }
  /** See {@link DrawSource.draw}. */
  draw(kind: DrawKind, shape: readonly number[], _call: string, like: { dtype: FloatDType; device: Device }): Tensor {
    const u = rand(shape, { dtype: like.dtype, device: like.device, generator: this.generator });
    return kind === "uniform" ? u : u.neg().add(1).log().neg();
  }
}

/** One logged draw of a reference vector file. */
export interface LoggedDraw {
  /** The PyTorch call, e.g. `"Tensor.exponential_"`. */
  call: string;
  /** Its shape. */
  shape: number[];
  /** Its values (nested arrays). */
  values: unknown;
}

/**
 * Replays logged draws in order, checking each request's call and shape against the log; asking for more
 * draws than were logged, or for a different call or shape, is an error that names both.
 */
export class ReplayDraws implements DrawSource {
  readonly #log: readonly LoggedDraw[];
  #next = 0;
  /** Replays `log` (the `random_draws` array of a vector file). */
  constructor(log: readonly LoggedDraw[]) {
    this.#log = log;
  }
  /** How many logged draws have been consumed. */
  get consumed(): number {
    return this.#next;
  }
  /** See {@link DrawSource.draw}. */
  draw(_kind: DrawKind, shape: readonly number[], call: string, like: { dtype: FloatDType; device: Device }): Tensor {
    const entry = this.#log[this.#next];
    if (!entry) {
      throw new OpError("ReplayDraws", `draw ${this.#next} (${call} ${JSON.stringify(shape)}) was not logged`);
    }
    if (entry.call !== call || entry.shape.join() !== shape.join()) {
      throw new OpError(
        "ReplayDraws",
        `draw ${this.#next}: the estimator asked for ${call} ${JSON.stringify(shape)}, the log has ${entry.call} ${
          JSON.stringify(entry.shape)
        }`,
      );
    }
    this.#next++;
    return tensor(entry.values as number[], { dtype: like.dtype, device: like.device, shape: [...shape] });
  }
}

/** Options of {@link Estimator.route}. */
export interface RouteOptions {
  /** Training mode (sampling, jitter, custom gradients) or evaluation (deterministic). */
  training: boolean;
  /** The source of every random number. */
  draws: DrawSource;
  /**
   * A per-expert bias [E] (no gradient) added to the scores for the choice of experts only, never to the gates:
   * loss-free balancing (`moe/loss_free_balance.ts`). Only estimators with {@link Estimator.acceptsSelectionBias}
   * read it; the layer refuses the option for the others.
   */
  selectionBias?: Tensor;
  /**
   * The route context: the ids (i32) of the N tokens being routed, in the order of the logits' rows, when the
   * caller has them (`MoELayer.forward(x, { tokenIds })`; `DecoderLM` passes them). Only an estimator whose
   * descriptor says `needs.tokenIds` (the `hash` null control) reads them.
   */
  tokenIds?: Tensor;
}

/** What an estimator returns. */
export interface Routing {
  /** Chosen experts, i32 [N, K]. */
  experts: Tensor;
  /** Multiplier of each chosen expert's output, [N, K]; carries the estimator's gradient to the logits. */
  gates: Tensor;
  /** Router probabilities for the load-balancing loss, [N, E] (which ones depends on the estimator). */
  probs: Tensor;
  /** Estimator-specific outputs (e.g. ReinMax's soft probabilities), keyed by name. */
  extra?: Record<string, Tensor>;
  /** Routing statistics for metrics, each [N]: e.g. `candidates` (i32), `sampledNotArgmax` (bool). */
  stats?: Record<string, Tensor>;
  /**
   * Which (token, slot) pairs are routed at all, bool [N, K] (absent: every pair). A routing with a variable
   * number of experts per token (expert choice: 0…E) lists K = E slots and marks the unused ones false; the
   * dispatch gives them no expert row and the combine no weight.
   */
  active?: Tensor;
  /**
   * The most pairs any expert receives, when the estimator knows it (expert choice: exactly C each): the layer
   * sizes the experts' buffer by it instead of N (no pair is ever dropped by it).
   */
  maxPerExpert?: number;
}

/**
 * A term of the layer output computed from the experts' outputs, with state the layer keeps across calls (Default
 * MoE's default vectors): a module whose parameters and buffers the layer adopts under their own names.
 */
export interface ExpertOutputTerm extends Module {
  /**
   * The term added to the layer output, [N, d], for a routing dispatched by `plan`, whose pairs' expert outputs
   * are `rows` [N·K, d] (the dispatch's sorted order); in training the term may update its state first.
   * `allExperts()` runs every expert on every token, [E, N, d], when the term needs it (DenseMixer); it is
   * computed only when called, and records the tape unless called under `noGrad`.
   */
  terms(rows: Tensor, routing: Routing, plan: DispatchPlan, training: boolean, allExperts: () => Tensor): Tensor;
}

/** A routing-gradient estimator. */
export interface Estimator {
  /** Its registry name, e.g. `"sparsemixer"`. */
  readonly name: string;
  /** Experts per token (K). */
  readonly topK: number;
  /** True for estimators whose output needs every expert (straight-through, ReinMax): K = E. */
  readonly dense: boolean;
  /** True when `route` reads {@link RouteOptions.selectionBias} (top-K selections: `topk`, `sigmoid-topk`). */
  readonly acceptsSelectionBias?: boolean;
  /** Routes logits `z` [N, E]. */
  route(logits: Tensor, options: RouteOptions): Routing;
  /**
   * For estimators that act on the router input `x` [N, d] before the router matmul (Switch's input jitter):
   * the input to use. The layer calls it when present, in training and evaluation.
   */
  routerInput?(x: Tensor, options: RouteOptions): Tensor;
  /**
   * For estimators that need the experts' outputs (Default MoE): builds the output term and its state for a
   * layer of `numExperts` experts of width `dim`. The layer calls it once, at construction.
   */
  outputTerm?(numExperts: number, dim: number, like: { dtype: FloatDType; device: Device }): ExpertOutputTerm;
}
