/**
 * The optimizers' `maxGradNorm` option against its definition, `clipGradNorm(params, c)` followed by an
 * unclipped `step()`: bit-identical parameters, state and norm over several steps — f32 and f64; coefficients
 * below 1, at 1 and non-finite; on the op path, the fused CPU path (SIMD and TypeScript) at 1, 2 and 3
 * threads, and WebGPU where there is an adapter — with `.grad` left untouched; plus resume from a state
 * dict, shared gradients, and the errors; and the order of the fused sum of squares for long rows.
 */
import assert from "node:assert/strict";
import {
  type CpuOptions,
  Device,
  type DType,
  Generator,
  randn,
  setCpuOptions,
  startProfile,
  stopProfile,
  type Tensor,
  tensor,
} from "../../mod.ts";
import type { Backend } from "../../internals.ts";
import { Adam, AdamW, clipGradNorm, type Optimizer, type ParamsInput, SGD } from "../../nn/optim/mod.ts";
import { setThreadMinimums } from "../../kernels/cpu/threads/pool.ts";
import { webGpuBackend } from "../../kernels/webgpu/mod.ts";
import { sumOfSquaresF32 } from "../../kernels/cpu/sum_squares.ts";
import { sameBits } from "../helpers/blas_checks.ts";
import { withHeapArrays } from "../helpers/heap_arrays.ts";
import { withCpuOptions } from "../helpers/cpu_options.ts";
import { gpuTest } from "../helpers/webgpu.ts";

type Maker = (p: ParamsInput, maxGradNorm?: number) => Optimizer;

const MAKERS: [string, Maker][] = [
  ["AdamW", (p, c) => new AdamW(p, { lr: 0.01, weightDecay: 0.1, betas: [0.8, 0.95], maxGradNorm: c })],
  ["Adam L2", (p, c) => new Adam(p, { lr: 0.01, weightDecay: 0.05, maxGradNorm: c })],
  ["Adam", (p, c) => new Adam(p, { lr: 0.01, maxGradNorm: c })],
  ["SGD momentum + wd", (p, c) => new SGD(p, { lr: 0.1, momentum: 0.9, weightDecay: 1e-3, maxGradNorm: c })],
  ["SGD", (p, c) => new SGD(p, { lr: 0.1, maxGradNorm: c })],
];

/** Sizes below, at and above the SIMD chunk (4096) and the threads' unit, not all multiples of 4. */
const SHAPES = [[37, 9], [9], [], [2, 4099], [70000]];

/** CPU configurations: the op path, and the fused one on SIMD / TypeScript with 1, 2 and 3 threads. */
const CONFIGS: [string, Partial<CpuOptions>][] = [
  ["op path", { wasm: false, threads: 1, fastKernels: false }],
  ["SIMD, 1 thread", { wasm: true, threads: 1, fastKernels: true }],
  ["SIMD, 2 threads", { wasm: true, threads: 2, fastKernels: true }],
  ["SIMD, 3 threads", { wasm: true, threads: 3, fastKernels: true }],
  ["TypeScript, 2 threads", { wasm: false, threads: 2, fastKernels: true }],
];

function makeParams(dtype: DType, device?: Device): [string, Tensor][] {
  const gen = new Generator(3);
  return SHAPES.map((s, i) => [`p${i}`, randn(s, { generator: gen, dtype, device }).requiresGrad_()]);
}

/**
 * Gradients of step `step`, scaled by `mag` (so the global norm is around 200·mag); parameter 1 skips odd
 * steps; `special` goes into one element of parameter 0's gradient at step 1.
 */
function setGrads(params: readonly [string, Tensor][], step: number, mag: number, special?: number): void {
  params.forEach(([, p], i) => {
    p.grad?.dispose();
    if (i === 1 && step % 2 === 1) return void (p.grad = null);
    const g = randn(p.shape, { generator: new Generator(100 * step + i), dtype: p.dtype, device: p.device }).mul(mag);
    if (special !== undefined && step === 1 && i === 0) {
      const data = g.dataSync().slice();
      data[5] = special;
      p.grad = tensor(data, { shape: g.shape, dtype: g.dtype, device: g.device });
      g.dispose();
    } else {
      p.grad = g;
    }
  });
}

interface Trace {
  /** Parameters and state tensors after the last step, by name. */
  out: Map<string, ArrayLike<number>>;
  /** The norm of each step. */
  norms: number[];
  kernels: Set<string>;
}

/** `steps` steps with clipping at `c`: `folded` through `maxGradNorm`, else with clipGradNorm before step(). */
async function train(
  make: Maker,
  c: number,
  folded: boolean,
  o: { dtype?: DType; mag?: number; special?: number; steps?: number; device?: Device } = {},
): Promise<Trace> {
  const params = makeParams(o.dtype ?? "f32", o.device);
  const opt = folded ? make(params, c) : make(params);
  const norms: number[] = [];
  startProfile();
  for (let s = 0; s < (o.steps ?? 4); s++) {
    setGrads(params, s, o.mag ?? 1, o.special);
    opt.lr = 0.01 * (1 + s);
    if (folded) {
      const before = await Promise.all(params.map(([, p]) => p.grad?.data()));
      opt.step();
      norms.push((await opt.lastGradNorm!.data())[0]);
      for (const [i, [, p]] of params.entries()) {
        if (before[i]) sameBits(await p.grad!.data(), before[i]!, `step ${s}: .grad of p${i} is untouched`);
      }
    } else {
      const norm = clipGradNorm(params, c);
      norms.push((await norm.data())[0]);
      norm.dispose();
      opt.step();
    }
  }
  const kernels = new Set(stopProfile().rows.map((r) => `${r.op}/${r.kernel}`));
  const out = new Map<string, ArrayLike<number>>();
  for (const [name, p] of params) out.set(name, await p.data());
  const sd = opt.stateDict();
  for (const [k, t] of Object.entries(sd.tensors)) out.set(k, await t.data());
  for (const t of Object.values(sd.tensors)) t.dispose();
  opt.dispose();
  params.forEach(([, p]) => (p.grad?.dispose(), p.dispose()));
  return { out, norms, kernels };
}

function assertSame(got: Trace, want: Trace, what: string): void {
  assert.deepEqual([...got.out.keys()], [...want.out.keys()], `${what}: tensors`);
  for (const [k, v] of got.out) sameBits(v, want.out.get(k)!, `${what}: ${k}`);
  sameBits(got.norms, want.norms, `${what}: norms`);
}

/** Runs `fn` under CPU options `cfg` with every threaded job split (so 2 and 3 threads really split). */
async function under<T>(cfg: Partial<CpuOptions>, fn: () => Promise<T>): Promise<T> {
  const minimums = setThreadMinimums({ adam: 1, sum: 1 }), prev = setCpuOptions(cfg);
  try {
    return await fn();
  } finally {
    setCpuOptions(prev);
    setThreadMinimums(minimums);
  }
}

for (const [label, make] of MAKERS) {
  Deno.test(`maxGradNorm, ${label}: bit-identical to clipGradNorm + step on every CPU path (f32)`, async () => {
    // mag 1: norms ≈ 270, clipped at 1 (coefficient < 1) and not at 1e4 (coefficient 1).
    for (const c of [1, 1e4, Infinity]) {
      for (const [cfgName, cfg] of CONFIGS) {
        const what = `${label}, c ${c}, ${cfgName}`;
        const [want, got] = await under(cfg, async () => [await train(make, c, false), await train(make, c, true)]);
        assertSame(got, want, what);
        assert.ok(got.norms.every((n) => n > 100), `${what}: norms ${got.norms}`);
        if (cfg.fastKernels) {
          assert.ok(got.kernels.has("gradNorm/fused-cpu"), `${what}: the fused norm ran (${[...got.kernels]})`);
          assert.ok(!got.kernels.has("clipGradNorm/fused-cpu"), `${what}: no separate clipping pass`);
        }
      }
    }
  });
}

Deno.test("maxGradNorm: bit-identical to clipGradNorm + step in f64 (the op path)", async () => {
  for (const [label, make] of MAKERS) {
    for (const c of [0.5, 1e4]) {
      const o = { dtype: "f64" as const };
      assertSame(await train(make, c, true, o), await train(make, c, false, o), `${label} f64 c ${c}`);
    }
  }
});

Deno.test("maxGradNorm: non-finite norms propagate into the update as with clipGradNorm", async () => {
  for (const special of [Infinity, NaN]) {
    for (const [cfgName, cfg] of [CONFIGS[0], CONFIGS[1], CONFIGS[2]]) {
      for (const [label, make] of [MAKERS[0], MAKERS[3]]) {
        const what = `${label}, special ${special}, ${cfgName}`;
        const o = { special, steps: 3 };
        const [want, got] = await under(
          cfg,
          async () => [await train(make, 1, false, o), await train(make, 1, true, o)],
        );
        assertSame(got, want, what);
        assert.ok(!Number.isFinite(got.norms[1]), `${what}: the norm of step 1 is ${got.norms[1]}`);
      }
    }
  }
});

Deno.test("maxGradNorm: lastGradNorm is undefined without clipping, a zero scalar with no gradients", () => {
  const p = tensor([1, 2]).requiresGrad_();
  const plain = new AdamW([p]);
  p.grad = tensor([3, 4]);
  plain.step();
  assert.equal(plain.lastGradNorm, undefined);
  assert.equal(plain.maxGradNorm, undefined);
  const opt = new AdamW([p], { maxGradNorm: 1 });
  assert.equal(opt.lastGradNorm, undefined, "before the first step");
  opt.step();
  assert.equal(opt.lastGradNorm!.item !== undefined, true);
  assert.equal(opt.lastGradNorm!.dataSync()[0], 5);
  const first = opt.lastGradNorm!;
  p.grad = null;
  opt.step();
  assert.ok(first.isDisposed, "the previous norm is freed by the next step");
  assert.deepEqual(Array.from(opt.lastGradNorm!.dataSync()), [0]);
  opt.maxGradNorm = undefined;
  assert.equal(opt.maxGradNorm, undefined);
  opt.dispose();
  assert.equal(opt.lastGradNorm, undefined);
});

Deno.test("maxGradNorm: a resumed run (state dict) continues bit for bit", async () => {
  for (const [cfgName, cfg] of [CONFIGS[0], CONFIGS[2]]) {
    await under(cfg, async () => {
      const whole = await train(MAKERS[0][1], 1, true, { steps: 4 });
      // Two steps, save, a fresh optimizer (the threshold passed again), load, two more steps.
      const params = makeParams("f32");
      const a = MAKERS[0][1](params, 1);
      for (let s = 0; s < 2; s++) {
        setGrads(params, s, 1);
        a.lr = 0.01 * (1 + s);
        a.step();
      }
      const sd = a.stateDict();
      a.dispose();
      const b = MAKERS[0][1](params, 1);
      b.loadStateDict(sd);
      for (let s = 2; s < 4; s++) {
        setGrads(params, s, 1);
        b.lr = 0.01 * (1 + s);
        b.step();
      }
      for (const [name, p] of params) sameBits(p.dataSync(), whole.out.get(name)!, `${cfgName}: resumed ${name}`);
      const sd2 = b.stateDict();
      for (const [k, t] of Object.entries(sd2.tensors)) sameBits(t.dataSync(), whole.out.get(k)!, `${cfgName}: ${k}`);
      assert.deepEqual(Object.keys(sd.hyper).filter((k) => /clip|norm/i.test(k)), [], "the threshold is not saved");
    });
  }
});

Deno.test("maxGradNorm: one tensor as the gradient of two parameters counts twice and is scaled once", async () => {
  for (const [cfgName, cfg] of [CONFIGS[0], CONFIGS[1]]) {
    const run = (folded: boolean) =>
      under(cfg, async () => {
        const a = tensor([1, 2, 3]).requiresGrad_(), b = tensor([4, 5, 6]).requiresGrad_();
        const opt = new AdamW([a, b], { lr: 0.1, maxGradNorm: folded ? 0.5 : undefined });
        a.grad = b.grad = tensor([3, -4, 12]);
        const norm = folded ? undefined : clipGradNorm([a, b], 0.5);
        opt.step();
        const n = (norm ?? opt.lastGradNorm!).dataSync()[0];
        if (folded) sameBits(a.grad!.dataSync(), [3, -4, 12], `${cfgName}: the shared gradient is untouched`);
        return [n, ...await a.data(), ...await b.data()];
      });
    sameBits(await run(true), await run(false), cfgName);
  }
});

Deno.test("maxGradNorm: bad values and mixed gradients fail with one clear line", () => {
  const p = tensor([1]).requiresGrad_();
  for (const bad of [-1, NaN, "1", -Infinity]) {
    assert.throws(() => new AdamW([p], { maxGradNorm: bad as number }), {
      name: "RangeError",
      message: `AdamW: maxGradNorm must be a number ≥ 0, got ${typeof bad === "string" ? '"1"' : bad}`,
    });
  }
  assert.throws(() => new SGD([p], { lr: 0.1, maxGradNorm: -2 }), /^RangeError: SGD: maxGradNorm must be/);
  const opt = new Adam([p], { maxGradNorm: 1 });
  assert.throws(() => (opt.maxGradNorm = -0.5), /Adam: maxGradNorm must be a number ≥ 0, got -0.5/);
  assert.equal(opt.maxGradNorm, 1, "a rejected value changes nothing");
  const q = tensor([1], { dtype: "f64" }).requiresGrad_();
  const mixed = new AdamW([p, q], { maxGradNorm: 1 });
  p.grad = tensor([1]);
  q.grad = tensor([1], { dtype: "f64" });
  assert.throws(() => mixed.step(), /AdamW\.step: the gradients differ in dtype or device/);
  assert.deepEqual(Array.from(p.dataSync()), [1], "nothing was updated");
});

gpuTest("maxGradNorm on WebGPU: the same bits as clipGradNorm + step there", async (rt) => {
  const gpu = new Device("webgpu-clip-step", webGpuBackend(rt) as Backend);
  for (const [label, make] of [MAKERS[0], MAKERS[3]]) {
    for (const c of [1, 1e4]) {
      const o = { device: gpu, steps: 3 };
      assertSame(await train(make, c, true, o), await train(make, c, false, o), `webgpu ${label} c ${c}`);
    }
  }
});

Deno.test("sumOfSquaresF32 matches g.square().sum() for rows longer than the SIMD chunk and ranks 3–4", () => {
  // (The order of summation for ranks 2–4 is pinned by tests/nn/optim_inplace_test.ts on small shapes; these
  // shapes take the block-by-block path of rows longer than a chunk, and in the heap the fused first two
  // reductions: columns a multiple of 4, past one scratch block of 8192 sums.)
  let state = 99;
  const rand = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (
    const shape of [
      [3, 2, 4099],
      [5, 8193],
      [2, 3, 700, 7],
      [8, 64, 130],
      [1, 4100],
      [4, 1, 1],
      [8, 32, 1024],
      [3, 5, 8200],
      [6, 44],
      [2, 2, 3, 8],
    ]
  ) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = Float32Array.from({ length: n }, () => (rand() - 0.5) * 2 ** Math.floor(rand() * 80 - 40));
    const want = withCpuOptions(
      { wasm: false, threads: 1, fastKernels: false },
      () => tensor(data, { shape }).square().sum().dataSync()[0],
    );
    for (const wasm of [true, false]) {
      const got = withCpuOptions({ wasm }, () => sumOfSquaresF32(data, shape));
      assert.ok(Object.is(got, want), `[${shape}], wasm ${wasm}: ${got} vs ${want}`);
    }
    // In the tensor memory the first two axes are summed in one SIMD pass (ranks ≥ 3), or the first alone.
    withHeapArrays((inHeap) => {
      const got = withCpuOptions({ wasm: true }, () => sumOfSquaresF32(inHeap(data), shape));
      assert.ok(Object.is(got, want), `[${shape}] in the heap: ${got} vs ${want}`);
    });
  }
});
