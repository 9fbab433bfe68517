/**
 * A small MLP trained with plain SGD, each step in a `scope`: the loop the memory tests run on every device
 * to show that forward + backward + in-place update leaves no tensors or buffers behind.
 */
import { type Device, Generator, memoryStats, noGrad, randn, scope, type Tensor } from "../../mod.ts";

/** Counters to compare before and after. */
export function snapshot(): { tensors: number; buffers: number; bytes: number } {
  return { tensors: memoryStats.liveTensors, buffers: memoryStats.liveBuffers, bytes: memoryStats.liveBytes };
}

/** Trains a 8→16→4 MLP on fixed random data for `steps` steps; returns the first and last loss. */
export async function trainMlp(
  device: Device,
  steps: number,
): Promise<{ first: number; last: number; params: Tensor[] }> {
  const gen = new Generator(123);
  const opts = { device, generator: gen };
  const { x, target, w1, w2 } = scope(() => ({
    x: randn([32, 8], opts),
    target: randn([32, 4], opts),
    w1: randn([8, 16], opts).mul(0.3).requiresGrad_(),
    w2: randn([16, 4], opts).mul(0.3).requiresGrad_(),
  }));
  const params = [w1, w2];
  let first = NaN, last = NaN;
  for (let step = 0; step < steps; step++) {
    const loss = scope(() => {
      const out = x.matmul(w1).tanh().matmul(w2);
      const l = out.sub(target).square().mean();
      l.backward();
      noGrad(() => {
        for (const p of params) {
          p.assign_(p.sub(p.grad!.mul(0.1)));
          p.grad!.dispose();
          p.grad = null;
        }
      });
      return l.detach();
    });
    // Read back rarely: on WebGPU every read is a CPU↔GPU sync.
    if (step === 0) first = await loss.item();
    if (step === steps - 1) last = await loss.item();
    loss.dispose();
  }
  return { first, last, params: [...params, x, target] };
}
