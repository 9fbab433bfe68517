/**
 * Learning-rate schedules: pure functions from the step (the number of optimizer steps already taken, so
 * the first step uses `schedule(0)`) to the learning rate, and {@link applySchedule}, which sets an
 * optimizer's `lr` from one. Being pure functions of the step, they need no state of their own in a
 * checkpoint: the optimizer's restored `stepCount` gives the same learning rates on resume.
 *
 * @module
 */
import { checkNumber, checkOptionKeys } from "./_check.ts";

/** A learning-rate schedule: the learning rate for a step (0 for the first). */
export type LrSchedule = (step: number) => number;

function checkStep(owner: string, step: number): number {
  return checkNumber(owner, "step", step, { min: 0 });
}

/**
 * A constant learning rate.
 *
 * @example
 * ```ts
 * import { constantLr } from "./mod.ts";
 * console.log(constantLr(3e-4)(1000)); // 0.0003
 * ```
 */
export function constantLr(lr: number): LrSchedule {
  checkNumber("constantLr", "lr", lr, { min: 0 });
  return (step) => {
    checkStep("constantLr", step);
    return lr;
  };
}

/** Options of {@link inverseSqrtLr}. */
export interface InverseSqrtLrOptions {
  /** The learning rate reached at the end of the warm-up (> 0). */
  peak: number;
  /** Number of warm-up steps (an integer ≥ 1). */
  warmupSteps: number;
  /** The learning rate at step 0 (default 1e-7, ≥ 0). */
  warmupInit?: number;
}

/**
 * fairseq's `inverse_sqrt` schedule: a linear warm-up from `warmupInit` to `peak`, then decay with the
 * inverse square root of the step:
 *
 * ```text
 * step < warmupSteps:  warmupInit + step · (peak − warmupInit) / warmupSteps
 * otherwise:           peak · √warmupSteps / √step          (= peak · √(warmupSteps / step))
 * ```
 *
 * @example
 * ```ts
 * import { inverseSqrtLr } from "./mod.ts";
 * const lr = inverseSqrtLr({ peak: 1e-3, warmupSteps: 100 });
 * console.log(lr(0), lr(100), lr(400)); // 1e-7, 0.001, 0.0005
 * ```
 */
export function inverseSqrtLr(options: InverseSqrtLrOptions): LrSchedule {
  const owner = "inverseSqrtLr";
  checkOptionKeys(owner, options, ["peak", "warmupSteps", "warmupInit"]);
  if (options === undefined) throw new TypeError(`${owner}: options { peak, warmupSteps } are required`);
  const peak = checkNumber(owner, "peak", options.peak, { above: 0 });
  const warmup = checkNumber(owner, "warmupSteps", options.warmupSteps, { min: 1, integer: true });
  const init = checkNumber(owner, "warmupInit", options.warmupInit ?? 1e-7, { min: 0 });
  const lrStep = (peak - init) / warmup;
  const decay = peak * Math.sqrt(warmup);
  return (step) => {
    checkStep(owner, step);
    return step < warmup ? init + step * lrStep : decay / Math.sqrt(step);
  };
}

/** Options of {@link warmupCosineLr}. */
export interface WarmupCosineLrOptions {
  /** The learning rate at the end of the warm-up (> 0). */
  peak: number;
  /** Number of warm-up steps (an integer ≥ 0). */
  warmupSteps: number;
  /** The step at which the decay ends (an integer > warmupSteps); `minLr` from there on. */
  totalSteps: number;
  /** The final learning rate (default 0, in [0, peak]). */
  minLr?: number;
}

function checkWarmupTotal(owner: string, warmupSteps: unknown, totalSteps: unknown): [number, number] {
  const warmup = checkNumber(owner, "warmupSteps", warmupSteps, { min: 0, integer: true });
  const total = checkNumber(owner, "totalSteps", totalSteps, { min: 1, integer: true });
  if (total <= warmup) {
    throw new RangeError(`${owner}: totalSteps (${total}) must exceed warmupSteps (${warmup})`);
  }
  return [warmup, total];
}

/**
 * Linear warm-up from 0 to `peak`, then a half-cosine decay to `minLr` at `totalSteps` (as Hugging Face's
 * `get_cosine_schedule_with_warmup`, with a floor):
 *
 * ```text
 * step < warmupSteps:   peak · step / warmupSteps
 * step < totalSteps:    minLr + (peak − minLr) · ½ · (1 + cos(π · (step − warmupSteps) / (totalSteps − warmupSteps)))
 * otherwise:            minLr
 * ```
 *
 * @example
 * ```ts
 * import { warmupCosineLr } from "./mod.ts";
 * const lr = warmupCosineLr({ peak: 1e-3, warmupSteps: 10, totalSteps: 110 });
 * console.log(lr(0), lr(5), lr(10), lr(60), lr(110)); // 0, 0.0005, 0.001, ≈0.0005, 0
 * ```
 */
export function warmupCosineLr(options: WarmupCosineLrOptions): LrSchedule {
  const owner = "warmupCosineLr";
  checkOptionKeys(owner, options, ["peak", "warmupSteps", "totalSteps", "minLr"]);
  if (options === undefined) throw new TypeError(`${owner}: options { peak, warmupSteps, totalSteps } are required`);
  const peak = checkNumber(owner, "peak", options.peak, { above: 0 });
  const [warmup, total] = checkWarmupTotal(owner, options.warmupSteps, options.totalSteps);
  const minLr = checkNumber(owner, "minLr", options.minLr ?? 0, { min: 0 });
  if (minLr > peak) throw new RangeError(`${owner}: minLr (${minLr}) must not exceed peak (${peak})`);
  return (step) => {
    checkStep(owner, step);
    if (step < warmup) return peak * step / warmup;
    if (step >= total) return minLr;
    const progress = (step - warmup) / (total - warmup);
    return minLr + (peak - minLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
  };
}

/** Options of {@link warmupLinearLr}. */
export interface WarmupLinearLrOptions {
  /** The learning rate at the end of the warm-up (> 0). */
  peak: number;
  /** Number of warm-up steps (an integer ≥ 0). */
  warmupSteps: number;
  /** The step at which the decay ends (an integer > warmupSteps); `endLr` from there on. */
  totalSteps: number;
  /** The final learning rate (default 0, ≥ 0). */
  endLr?: number;
}

/**
 * Linear warm-up from 0 to `peak`, then a linear decay to `endLr` at `totalSteps` (as Hugging Face's
 * `get_linear_schedule_with_warmup`, with an end value):
 *
 * ```text
 * step < warmupSteps:   peak · step / warmupSteps
 * step < totalSteps:    endLr + (peak − endLr) · (totalSteps − step) / (totalSteps − warmupSteps)
 * otherwise:            endLr
 * ```
 *
 * @example
 * ```ts
 * import { warmupLinearLr } from "./mod.ts";
 * const lr = warmupLinearLr({ peak: 1e-3, warmupSteps: 10, totalSteps: 110 });
 * console.log(lr(10), lr(60), lr(200)); // 0.001, 0.0005, 0
 * ```
 */
export function warmupLinearLr(options: WarmupLinearLrOptions): LrSchedule {
  const owner = "warmupLinearLr";
  checkOptionKeys(owner, options, ["peak", "warmupSteps", "totalSteps", "endLr"]);
  if (options === undefined) throw new TypeError(`${owner}: options { peak, warmupSteps, totalSteps } are required`);
  const peak = checkNumber(owner, "peak", options.peak, { above: 0 });
  const [warmup, total] = checkWarmupTotal(owner, options.warmupSteps, options.totalSteps);
  const endLr = checkNumber(owner, "endLr", options.endLr ?? 0, { min: 0 });
  return (step) => {
    checkStep(owner, step);
    if (step < warmup) return peak * step / warmup;
    if (step >= total) return endLr;
    return endLr + (peak - endLr) * (total - step) / (total - warmup);
  };
}

/** What {@link applySchedule} needs of an optimizer. */
export interface ScheduledOptimizer {
  /** The learning rate of the next step. */
  lr: number;
  /** The number of steps taken. */
  readonly stepCount: number;
}

/**
 * Sets `optimizer.lr = schedule(step)` (by default the optimizer's `stepCount`) and returns it. Call it
 * before each `optimizer.step()`.
 *
 * @example
 * ```ts
 * import { tensor } from "@moegrad/moegrad";
 * import { applySchedule, SGD, warmupLinearLr } from "./mod.ts";
 * const w = tensor([1, 2]).requiresGrad_();
 * const opt = new SGD([w], { lr: 0 });
 * const schedule = warmupLinearLr({ peak: 0.1, warmupSteps: 2, totalSteps: 10 });
 * for (let i = 0; i < 3; i++) {
 *   w.square().sum().backward();
 *   applySchedule(opt, schedule); // 0, then 0.05, then 0.1
 *   opt.step();
 *   opt.zeroGrad();
 * }
 * ```
 */
export function applySchedule(
  optimizer: ScheduledOptimizer,
  schedule: LrSchedule,
  step: number = optimizer.stepCount,
): number {
  if (typeof schedule !== "function") throw new TypeError("applySchedule: schedule must be a function of the step");
  const lr = schedule(step);
  optimizer.lr = lr;
  return lr;
}
