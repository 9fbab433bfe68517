/**
 * Builds the decoder-only Switch Transformer language model of a {@link RunConfig}, with the seeded random
 * streams it draws from.
 *
 * Streams: a run's randomness comes from three counter-based `Generator`s derived from its seed, so each is
 * independent of how much the others were used — `model` (dense weights, dropout masks), `moe` (expert and
 * router weights, then the estimators' draws: jitter, sampling, coins) and `data` (batch offsets). Two arms
 * with the same seed therefore start from identical weights and see identical batches, whatever their
 * estimators draw (common random numbers make the arm comparison less noisy).
 *
 * @module
 */
import { Generator } from "../../core/mod.ts";
import { DecoderLM } from "../../nn/mod.ts";
import { MoELayer } from "../../moe/layer.ts";
import { estimatorDescriptor } from "../../moe/estimators/registry.ts";
import { estimatorOptionsFor, type RunConfig } from "./run_config.ts";

/** The random streams of one run (see the module docs). */
export interface RunGenerators {
  /** Dense weights and dropout masks. */
  model: Generator;
  /** MoE weights, then the estimators' draws. */
  moe: Generator;
  /** Training batch offsets. */
  data: Generator;
}

/** Streams per seed: stream `k` of seed `s` has Philox seed `s · STREAMS + k`. */
const STREAMS = 8;

/** Fresh generators for `seed` (see {@link RunGenerators}). */
export function runGenerators(seed: number): RunGenerators {
  if (!Number.isSafeInteger(seed * STREAMS + STREAMS) || seed < 0) {
    throw new RangeError(`runGenerators: seed must be an integer in [0, 2^50), got ${seed}`);
  }
  return {
    model: new Generator(seed * STREAMS),
    moe: new Generator(seed * STREAMS + 1),
    data: new Generator(seed * STREAMS + 2),
  };
}

/** A built model: the LM and its MoE layers (in layer order). */
export interface LmModel {
  /** The language model. */
  model: DecoderLM;
  /** The MoE FFNs, in layer order. */
  moeLayers: MoELayer[];
  /** Indices of the layers whose FFN is a MoE layer. */
  moeLayerIndices: number[];
}

/**
 * The LM of `config` over a vocabulary of `vocabSize`: `model.layers` pre-LN blocks, the FFN of layer `i` a
 * {@link MoELayer} when `i % moeEvery === 0` (2: layers 0, 2, 4, … as in the SparseMixer fairseq example) and
 * the default 4·dim GELU FFN otherwise.
 *
 * @example
 * ```ts
 * import { parseRunConfig } from "./run_config.ts";
 * import { buildLmModel, runGenerators } from "./run_model.ts";
 * const config = parseRunConfig({ model: { dim: 16, layers: 2, heads: 2, experts: 4 } });
 * const { moeLayerIndices } = buildLmModel(config, 300, runGenerators(0));
 * console.log(moeLayerIndices); // [0]
 * ```
 */
export function buildLmModel(config: RunConfig, vocabSize: number, gens: RunGenerators): LmModel {
  const m = config.model;
  // A router that reads the token ids (the hash null control) gets a lookup table of exactly the vocabulary.
  const estimatorOptions = estimatorDescriptor(m.estimator).needs.tokenIds
    ? { ...estimatorOptionsFor(m), vocabSize }
    : estimatorOptionsFor(m);
  const moeLayers: MoELayer[] = [];
  const moeLayerIndices: number[] = [];
  const model = new DecoderLM(vocabSize, m.dim, m.layers, m.heads, {
    generator: gens.model,
    maxLen: config.data.seqLen,
    rope: m.rope,
    tieEmbeddings: m.tieEmbeddings,
    dropout: m.dropout,
    norm: m.norm,
    ffnFactory: (i) => {
      if (i % m.moeEvery !== 0) return undefined;
      const layer = new MoELayer(m.dim, {
        numExperts: m.experts,
        hidden: m.hidden ?? 4 * m.dim,
        expert: m.expert,
        estimator: m.estimator,
        estimatorOptions,
        routerBias: m.routerBias,
        frozenRouter: m.frozenRouter,
        outputScale: m.outputScale,
        capacityFactor: m.capacityFactor ?? undefined,
        balanceLoss: m.balance,
        zLossCoef: m.zLossCoef,
        generator: gens.moe,
      });
      moeLayers.push(layer);
      moeLayerIndices.push(i);
      return layer;
    },
  });
  return { model, moeLayers, moeLayerIndices };
}
