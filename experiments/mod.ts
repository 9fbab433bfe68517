/**
 * The experiments: reproducible comparisons of routing estimators, each a `deno task` with presets, a zod config,
 * resumable runs and a markdown report. This module documents how they fit together and re-exports the shared
 * library (`experiments/common/`) for writing new ones; the experiments themselves are the entry files.
 *
 * | task | entry | what it compares |
 * |---|---|---|
 * | `exp:switch-vs-sparsemixer` | `experiments/switch_vs_sparsemixer.ts` | Switch vs SparseMixer (+ ω and first-order ablations) on a SOTU Switch Transformer LM |
 * | `exp:grin-top2` | `experiments/grin_top2.ts` | GShard/Mixtral top-2 vs SparseMixer-v2 and v2* with 16 GLU experts |
 * | `exp:estimator-bias` | `experiments/estimator_bias.ts` | exact-gradient bias and variance of every estimator |
 * | `exp:routing-recovery` | `experiments/routing_recovery.ts` | which estimators learn the known optimal routing of a clustered task (recovery, loss, power) |
 *
 * ## How an LM experiment flows
 * 1. The entry file hands `Deno.args` and its {@link ExperimentDefinition} (`experiments/lm/presets.ts`: schema,
 *    arms, presets) to `runLmExperiment` (`experiments/lm/experiment_runner.ts`).
 * 2. {@link parseExperimentCli} applies the preset, then `--seeds`, `--device` and every `--field.path=value`, and
 *    validates the result with the zod schema ({@link ConfigError} names the field and what is allowed).
 * 3. `prepareLmData` (`experiments/lm/data.ts`) trains the BPE tokenizer and tokenizes the corpora once, into an
 *    atomically written cache.
 * 4. Arms × seeds become `RunConfig`s (`experiments/lm/experiment_schema.ts`), run by `runLm`
 *    (`experiments/lm/run.ts`) in parallel subprocesses (`experiments/lm/run_one.ts`, one per core) or in-process.
 *    Each run writes `config.json`, `env.json`, `metrics.jsonl`, checkpoints and `final.json`; `--resume` continues
 *    from the newest checkpoint and reproduces the uninterrupted run bit for bit.
 * 5. `aggregateRuns` (`experiments/lm/aggregate.ts`) leaves out runs that did not finish (`completion.ts`),
 *    computes the curves, intervals ({@link meanCI}, {@link welchTTest}, {@link bootstrapRatioCI}; kept inside each
 *    metric's range by {@link clampInterval}, withheld below {@link MIN_SEEDS_T} / {@link MIN_SEEDS_BOOTSTRAP}
 *    seeds) and steps to target, and takes the verdict from the experiment's declared primary test, paired by seed
 *    ({@link pairedTTest}, `verdicts.ts`); `writeReport` (`experiments/lm/report.ts`) writes `report.md` (unfinished
 *    runs named at the top), the SVG plots ({@link lineChart}, {@link barChart}; one colour per arm) and
 *    `summary.json`. The command exits non-zero when any run did not finish.
 *
 * ## Adding an experiment
 * - **A new comparison of LM arms** (other estimators, sizes, data settings): add arms and presets next to the
 *   existing ones in `experiments/lm/presets.ts`, an entry file like `experiments/grin_top2.ts`, and a `deno.json`
 *   task; the runner, the report and `--resume` come for free. Add a smoke test like
 *   `tests/experiments/grin_top2_smoke_test.ts`.
 * - **A different kind of experiment**: write a zod schema that spreads {@link baseConfigShape} (every field with
 *   `.describe()`), presets `smoke` / `quick` / `paper`, and an entry that calls {@link runExperimentCli}; write
 *   results with {@link writeJsonAtomic} / {@link appendJsonl} so a killed run can resume
 *   (`experiments/estimator_bias/` is the pattern: one JSONL line per finished cell), and the report with
 *   {@link mdTable} and the SVG charts.
 *
 * @example
 * ```ts
 * import { lineChart, meanCI, mdTable } from "./mod.ts";
 * const ci = meanCI([4.51, 4.49, 4.55]);
 * console.log(mdTable(["arm", "loss", "95% CI"], [["switch", ci.mean.toFixed(3), `${ci.lo.toFixed(2)}–${ci.hi.toFixed(2)}`]]));
 * const svg = lineChart({ title: "loss", xLabel: "step", yLabel: "nats", series: [{ label: "a", x: [0, 1], y: [5, 4] }] });
 * console.log(svg.startsWith("<svg")); // true
 * ```
 *
 * @module
 */
export {
  baseConfigShape,
  type CliOptions,
  ConfigError,
  type ExperimentDefinition,
  formatConfigHelp,
  parseExperimentCli,
  runExperimentCli,
} from "./common/config.ts";
export {
  appendJsonl,
  environmentInfo,
  readJsonl,
  writeJsonAtomic,
  writeJsonlAtomic,
  writeTextAtomic,
} from "./common/io.ts";
export {
  bootstrapRatioCI,
  clampInterval,
  mean,
  meanCI,
  MIN_SEEDS_BOOTSTRAP,
  MIN_SEEDS_T,
  pairedTTest,
  sampleStd,
  stepsToTarget,
  tCritical,
  tooFewSeeds,
  welchTTest,
} from "./common/stats.ts";
export {
  minDetectableDifference,
  noncentralTCdf,
  normalApproxSeeds,
  pairedTPower,
  type PowerOptions,
  seedsNeeded,
} from "./common/power.ts";
export { barChart, lineChart } from "./common/svg.ts";
export { fmt, mdImage, mdTable } from "./common/markdown.ts";
export { formatDuration, formatProgress } from "./common/progress.ts";
