/**
 * The grouped MoE dispatch against the padded one on the benchmark's training step (`train_moe.ts`): the expert
 * work each does (rows through the experts' matmuls: grouped N·K; padded on the CPU E × the busiest expert's
 * load, on WebGPU E·N) and the wall time per step, steps of the two trainers interleaved so that a machine
 * shared with other work slows both alike (still indicative only).
 *
 * `deno run --allow-read --allow-env bench/moe_dispatch.ts [--steps N]`
 */
import { parseArgs } from "node:util";
import { DEFAULT_TRAIN, makeTrainer, type Trainer } from "./train_moe.ts";
import { median } from "../experiments/common/stats.ts";

/** Rows through the experts in one step, per MoE layer, under each layout (read from the layers' routings). */
function expertRows(trainer: Trainer): { grouped: number; maxLoad: number; static: number }[] {
  return trainer.moeLayers.map((layer) => {
    const experts = layer.lastRouting!.experts;
    const [n, k] = experts.shape;
    const counts = new Array(layer.numExperts).fill(0);
    for (const e of experts.dataSync()) counts[Number(e)]++;
    return { grouped: n * k, maxLoad: layer.numExperts * Math.max(...counts), static: layer.numExperts * n };
  });
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { steps: { type: "string", default: "3" } } });
  const steps = Number(values.steps);
  const trainers = {
    grouped: makeTrainer({ ...DEFAULT_TRAIN, dispatch: "grouped" }),
    padded: makeTrainer({ ...DEFAULT_TRAIN, dispatch: "padded" }),
  };
  const ms: Record<keyof typeof trainers, number[]> = { grouped: [], padded: [] };
  const ratios: number[] = [];
  for (let s = -1; s < steps; s++) {
    for (const [name, trainer] of Object.entries(trainers) as [keyof typeof trainers, Trainer][]) {
      const t0 = performance.now();
      trainer.step();
      if (s >= 0) ms[name].push(performance.now() - t0);
    }
    const rows = expertRows(trainers.grouped);
    const line = rows.map((r) => `${(r.maxLoad / r.grouped).toFixed(2)}×`).join(" ");
    ratios.push(...rows.map((r) => r.maxLoad / r.grouped));
    console.log(
      `step ${s + 1}: padded (cpu, max-load) / grouped expert rows per layer: ${line}; ` +
        `static padding (webgpu) ${(rows[0].static / rows[0].grouped).toFixed(0)}×`,
    );
  }
  const { experts, batch, seq } = DEFAULT_TRAIN;
  console.log(
    `expert matmul work, padded / grouped: ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}× on ` +
      `the cpu (max-load), ${experts}× on webgpu (static C = N = ${batch * seq}, top-1)`,
  );
  for (const [name, list] of Object.entries(ms)) {
    console.log(`${name}: ${median(list).toFixed(0)} ms/step (median of ${list.length}, indicative)`);
  }
}
