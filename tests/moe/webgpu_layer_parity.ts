/**
 * MoELayer parity between the WebGPU and CPU backends: the same layer built twice (same weights, copied from the
 * CPU one), the same input, the same estimator draws (recorded on the CPU, replayed on the GPU) and the same token
 * ids; two training steps (forward, backward of `y·up + aux loss`, then `updateExpertBias()`), comparing the
 * routing exactly (experts, and the active (token, expert) pairs of expert choice), the dropped count exactly, and
 * y, ∂x, every parameter's gradient and the loss-free bias within f32 tolerance.
 */
import assert from "node:assert/strict";
import { type Device, noGrad, randn, type Tensor, tensor } from "../../mod.ts";
import { Generator } from "../../core/random/generator.ts";
import {
  type DrawKind,
  type DrawSource,
  GeneratorDraws,
  type LoggedDraw,
  ReplayDraws,
} from "../../moe/estimators/estimator.ts";
import type { MoELayer } from "../../moe/layer.ts";
import type { FloatDType } from "../../core/dtype.ts";

const values = (t: Tensor) => Array.from(t.dataSync(), Number);

/** Logs every draw of an inner source so another device can replay it. */
export class Recorder implements DrawSource {
  readonly log: LoggedDraw[] = [];
  constructor(readonly inner: DrawSource) {}
  draw(kind: DrawKind, shape: readonly number[], call: string, like: { dtype: FloatDType; device: Device }): Tensor {
    const t = this.inner.draw(kind, shape, call, like);
    this.log.push({ call, shape: [...shape], values: values(t) });
    return t;
  }
}

/** `|a − b| ≤ tol·(1 + |b|)` elementwise, naming the first element that is not. */
export function close(what: string, a: number[], b: number[], tol: number): void {
  assert.equal(a.length, b.length, `${what}: ${a.length} values, expected ${b.length}`);
  a.forEach((x, i) => {
    assert.ok(Math.abs(x - b[i]) <= tol + tol * Math.abs(b[i]), `${what}[${i}]: ${x} vs ${b[i]}`);
  });
}

async function hostValues(t: Tensor | null | undefined): Promise<number[] | null> {
  return t ? Array.from(await t.data(), Number) : null;
}

/** What {@link compareLayerOnWebGpu} runs. */
export interface ParityCase {
  /** A name for messages. */
  what: string;
  /** Builds the layer on `device` (undefined: the CPU); called once per backend. */
  make(device?: Device): MoELayer;
  /** Token ids [N] for `forward(x, { tokenIds })` (hash routing). */
  tokenIds?: number[];
  /** Tokens N (default 10); the model width is read from the layer. */
  tokens?: number;
  /** Training steps compared (default 2: the second sees the loss-free bias the first updated). */
  steps?: number;
  /** Checks that the case exercises what it is for, on the CPU layer after each step. */
  expect?(layer: MoELayer, step: number): Promise<void> | void;
}

/** Runs `c` on the CPU and on `gpu` and compares them (see the module docs). */
export async function compareLayerOnWebGpu(gpu: Device, c: ParityCase): Promise<void> {
  const cpuLayer = c.make();
  const gpuLayer = c.make(gpu);
  noGrad(() => {
    const src = cpuLayer.namedParameters();
    gpuLayer.namedParameters().forEach(([, p], i) =>
      p.assign_(tensor(src[i][1].dataSync(), { device: gpu, shape: [...p.shape] }))
    );
  });
  const n = c.tokens ?? 10, d = cpuLayer.dim;
  const ids = c.tokenIds;
  for (let step = 0; step < (c.steps ?? 2); step++) {
    const what = `${c.what} step ${step}`;
    const xc = randn([n, d], { generator: new Generator(7 + step) });
    const upc = randn([n, d], { generator: new Generator(17 + step) });
    const rec = new Recorder(new GeneratorDraws(new Generator(9 + step)));
    const xg = tensor(xc.dataSync(), { device: gpu, shape: [n, d] }).requiresGrad_();
    xc.requiresGrad_();
    const tokenIds = (device?: Device) => ids ? tensor(ids, { dtype: "i32", device, shape: [n] }) : undefined;
    const yc = cpuLayer.forward(xc, { draws: rec, tokenIds: tokenIds() });
    const lossC = yc.mul(upc).sum();
    (cpuLayer.auxLoss() ? lossC.add(cpuLayer.auxLoss()!) : lossC).backward();
    const yg = gpuLayer.forward(xg, { draws: new ReplayDraws(rec.log), tokenIds: tokenIds(gpu) });
    const lossG = yg.mul(tensor(upc.dataSync(), { device: gpu, shape: [n, d] })).sum();
    (gpuLayer.auxLoss() ? lossG.add(gpuLayer.auxLoss()!) : lossG).backward();

    const rc = cpuLayer.lastRouting!, rg = gpuLayer.lastRouting!;
    assert.deepEqual(await hostValues(rg.experts), await hostValues(rc.experts), `${what} experts`);
    assert.deepEqual(await hostValues(rg.active), await hostValues(rc.active), `${what} active pairs`);
    close(`${what} y`, Array.from(await yg.data()), values(yc), 1e-4);
    close(
      `${what} dropped`,
      (await hostValues(gpuLayer.lastMetrics!.dropped))!,
      values(cpuLayer.lastMetrics!.dropped),
      0,
    );
    // The CPU gradient is the f64-free reference; both start the next step from zero.
    close(`${what} grad x`, Array.from(await xg.grad!.data()), values(xc.grad!), 1e-4);
    const cp = cpuLayer.namedParameters();
    for (const [i, [name, p]] of gpuLayer.namedParameters().entries()) {
      const [g, want] = [await hostValues(p.grad), await hostValues(cp[i][1].grad)];
      assert.equal(g === null, want === null, `${what} grad ${name}: present on one backend only`);
      if (g && want) close(`${what} grad ${name}`, g, want, 1e-4);
      p.grad = null;
      cp[i][1].grad = null;
    }
    cpuLayer.updateExpertBias();
    gpuLayer.updateExpertBias();
    const [bg, bc] = [await hostValues(gpuLayer.expertBias), await hostValues(cpuLayer.expertBias)];
    if (bc) close(`${what} expertBias`, bg!, bc, 1e-6);
    await c.expect?.(cpuLayer, step);
  }
  cpuLayer.dispose();
  gpuLayer.dispose();
}
