/**
 * Optimizers (SGD, Adam, AdamW), global-norm gradient clipping and learning-rate schedules, with PyTorch's
 * semantics. Optimizers update parameters in place, free their temporaries, and save a state dict from
 * which a resumed run continues bit for bit.
 *
 * @example
 * ```ts
 * import { Generator, randn, scope } from "@moegrad/moegrad";
 * import { AdamW, applySchedule, warmupCosineLr } from "./mod.ts";
 *
 * const gen = new Generator(0);
 * const x = randn([64, 3], { generator: gen });
 * const y = x.matmul(randn([3, 1], { generator: gen }));
 * const w = randn([3, 1], { generator: gen }).requiresGrad_();
 * // maxGradNorm: clip to global norm 1 inside step(), as clipGradNorm(opt.parameters(), 1) before it would.
 * const opt = new AdamW([["w", w]], { lr: 0.05, weightDecay: 0, maxGradNorm: 1.0 });
 * const schedule = warmupCosineLr({ peak: 0.05, warmupSteps: 10, totalSteps: 200 });
 * for (let step = 0; step < 200; step++) {
 *   scope(() => {
 *     x.matmul(w).sub(y).square().mean().backward();
 *     applySchedule(opt, schedule);
 *     opt.step();
 *     opt.zeroGrad();
 *   });
 * }
 * ```
 *
 * @module
 */
export { checkHyperKeys, namedParams, Optimizer, type OptimizerState, type ParamsInput } from "./optimizer.ts";
export { SGD, type SGDOptions } from "./sgd.ts";
export { Adam, type AdamOptions, AdamW } from "./adam.ts";
export { clipGradNorm, type ClipGradNormOptions } from "./clip.ts";
export {
  applySchedule,
  constantLr,
  inverseSqrtLr,
  type InverseSqrtLrOptions,
  type LrSchedule,
  type ScheduledOptimizer,
  warmupCosineLr,
  type WarmupCosineLrOptions,
  warmupLinearLr,
  type WarmupLinearLrOptions,
} from "./schedules.ts";
