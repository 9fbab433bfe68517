/**
 * The fused in-place optimizer paths on f32 CPU tensors against the plain op-by-op reference
 * (`{ wasm: false, threads: 1, fastKernels: false }`): Adam/AdamW on WebAssembly SIMD and in plain
 * TypeScript, SGD, and clipGradNorm give bit-identical parameters, state and gradients over several steps;
 * steady-state steps create no tensors and leave the memory counters flat; state snapshots stay snapshots.
 */
import assert from "node:assert/strict";
import {
  type CpuOptions,
  Generator,
  memoryStats,
  randn,
  setCpuOptions,
  startProfile,
  stopProfile,
  type Tensor,
  tensor,
  zeros,
} from "../../mod.ts";
import { Adam, AdamW, clipGradNorm, type Optimizer, type ParamsInput, SGD } from "../../nn/optim/mod.ts";
import { sumOfSquaresF32 } from "../../kernels/cpu/sum_squares.ts";

type Path = "simd" | "js" | "plain";
const PATHS: Record<Path, Partial<CpuOptions>> = {
  simd: { wasm: true, fastKernels: true },
  js: { wasm: false, fastKernels: true },
  plain: { wasm: false, threads: 1, fastKernels: false },
};

function onPath<T>(path: Path, fn: () => T): T {
  const prev = setCpuOptions(PATHS[path]);
  try {
    return fn();
  } finally {
    setCpuOptions(prev);
  }
}

function sameBits(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i])) assert.fail(`${what}: element ${i} is ${got[i]}, reference ${want[i]}`);
  }
}

/** Shapes with sizes below, at and above the SIMD chunk (4096 floats), and not multiples of 4. */
const SHAPES = [[37, 9], [9], [], [2, 4099], [4096]];

/** Fresh f32 parameters (the same values every call). */
function makeParams(): [string, Tensor][] {
  const gen = new Generator(11);
  return SHAPES.map((s, i) => [`p${i}`, randn(s, { generator: gen }).requiresGrad_()]);
}

/** Sets a deterministic gradient per step; parameter 1 only gets one on even steps (per-parameter t). */
function setGrads(params: readonly [string, Tensor][], step: number): void {
  params.forEach(([, p], i) => {
    p.grad?.dispose();
    p.grad = i === 1 && step % 2 === 1 ? null : randn(p.shape, { generator: new Generator(1000 * step + i) });
  });
}

/** Runs `steps` steps of `make`'s optimizer on `path`; returns the parameters, the state and the kernels run. */
function run(path: Path, make: (p: ParamsInput) => Optimizer, steps = 5, clip?: number) {
  return onPath(path, () => {
    const params = makeParams();
    const opt = make(params);
    startProfile();
    for (let s = 0; s < steps; s++) {
      setGrads(params, s);
      if (clip !== undefined) clipGradNorm(params, clip).dispose();
      opt.lr = 0.01 * (1 + s) / steps; // a schedule, so the step size changes
      opt.step();
    }
    const kernels = new Set(stopProfile().rows.map((r) => `${r.op}/${r.kernel}`));
    const sd = opt.stateDict();
    const out = new Map<string, Float32Array>();
    for (const [name, p] of params) out.set(name, p.dataSync() as Float32Array);
    for (const [k, t] of Object.entries(sd.tensors)) out.set(k, t.dataSync() as Float32Array);
    return { out, kernels };
  });
}

function assertSameRuns(a: Map<string, Float32Array>, b: Map<string, Float32Array>, what: string): void {
  assert.deepEqual([...a.keys()], [...b.keys()], `${what}: tensors`);
  for (const [k, v] of a) sameBits(v, b.get(k)!, `${what}: ${k}`);
}

const ADAMS: [string, (p: ParamsInput) => Optimizer][] = [
  ["AdamW wd 0.1", (p) => new AdamW(p, { weightDecay: 0.1, betas: [0.8, 0.95], eps: 1e-6 })],
  ["AdamW wd 0", (p) => new AdamW(p, { weightDecay: 0 })],
  ["Adam L2 0.05", (p) => new Adam(p, { weightDecay: 0.05, eps: 1e-7 })],
  ["Adam", (p) => new Adam(p, { betas: [0.5, 0.9] })],
];

for (const [label, make] of ADAMS) {
  Deno.test(`in-place ${label}: SIMD, TypeScript and the op path give the same bits over 5 steps`, () => {
    const plain = run("plain", make), js = run("js", make), simd = run("simd", make);
    assertSameRuns(js.out, plain.out, `${label} TypeScript vs op path`);
    assertSameRuns(simd.out, plain.out, `${label} SIMD vs op path`);
    assert.ok(simd.kernels.has("adamw/wasm-simd"), `the SIMD path ran: ${[...simd.kernels]}`);
    assert.ok(js.kernels.has("adamw/js") && !js.kernels.has("adamw/wasm-simd"), "the TypeScript path ran");
    assert.ok(![...plain.kernels].some((k) => k.startsWith("adamw/")), "the op path ran the ops");
    // The parameters moved (the comparison is not between two no-ops).
    assert.notDeepEqual(plain.out.get("p0"), makeParams()[0][1].dataSync());
  });
}

Deno.test("in-place AdamW with clipGradNorm: the same bits on every path", () => {
  const make = ADAMS[0][1];
  const plain = run("plain", make, 4, 0.5), simd = run("simd", make, 4, 0.5);
  assertSameRuns(simd.out, plain.out, "AdamW + clip");
  assert.ok(simd.kernels.has("clipGradNorm/fused-cpu"));
});

const SGDS: [string, (p: ParamsInput) => Optimizer][] = [
  ["SGD", (p) => new SGD(p, { lr: 0.1 })],
  ["SGD wd", (p) => new SGD(p, { lr: 0.1, weightDecay: 1e-2 })],
  ["SGD momentum", (p) => new SGD(p, { lr: 0.1, momentum: 0.9 })],
  ["SGD momentum + dampening + wd", (p) => new SGD(p, { lr: 0.1, momentum: 0.8, dampening: 0.3, weightDecay: 1e-3 })],
  ["SGD Nesterov + wd", (p) => new SGD(p, { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-3 })],
];

for (const [label, make] of SGDS) {
  Deno.test(`in-place ${label}: the fused update and the op path give the same bits over 5 steps`, () => {
    const plain = run("plain", make), fused = run("simd", make);
    assertSameRuns(fused.out, plain.out, label);
    assert.ok(fused.kernels.has("sgd/fused-cpu"));
  });
}

/** The id the next tensor gets: consecutive probes differ by 1 exactly when nothing else made a tensor. */
function nextTensorId(): number {
  const t = zeros([]);
  t.dispose();
  return t.id;
}

function memory(): number[] {
  return [memoryStats.liveTensors, memoryStats.liveBuffers, memoryStats.liveBytes];
}

Deno.test("in-place steps allocate nothing: no tensor is created and the memory counters stay flat", () => {
  const makers: [string, (p: ParamsInput) => Optimizer][] = [...ADAMS, SGDS[3], SGDS[4]];
  for (const path of ["simd", "js"] as const) {
    for (const [label, make] of makers) {
      onPath(path, () => {
        const params = makeParams();
        const opt = make(params);
        setGrads(params, 0);
        opt.step(); // creates the state
        const before = memory(), id = nextTensorId();
        for (let s = 0; s < 3; s++) opt.step();
        assert.equal(nextTensorId(), id + 1, `${label} (${path}): steady-state steps created tensors`);
        assert.deepEqual(memory(), before, `${label} (${path}): memory`);
        // clipGradNorm creates exactly its result, the norm.
        const norm = clipGradNorm(params, 1e-3);
        assert.equal(nextTensorId(), id + 3, `${label} (${path}): clipGradNorm created temporaries`);
        norm.dispose();
        assert.deepEqual(memory(), before, `${label} (${path}): memory after clipping`);
        params.forEach(([, p]) => (p.grad?.dispose(), p.dispose()));
        opt.dispose();
      });
    }
  }
});

/** Exposes the state tensors (protected) to check that in-place updates respect other views. */
class PeekAdamW extends AdamW {
  peek(name: string, kind: string): Tensor | undefined {
    return this.getState(name, kind);
  }
}

Deno.test("in-place state: stateDict snapshots and other views of the state keep their values", () => {
  const params = makeParams();
  const opt = new PeekAdamW(params, { lr: 0.01 });
  setGrads(params, 0);
  opt.step();
  const sd = opt.stateDict();
  const saved = Object.fromEntries(Object.entries(sd.tensors).map(([k, t]) => [k, t.dataSync().slice()]));
  const view = opt.peek("p0", "exp_avg")!.detach(); // a second view of the live state's storage
  const viewed = view.dataSync().slice();
  for (let s = 1; s < 3; s++) {
    setGrads(params, s);
    opt.step();
  }
  for (const [k, t] of Object.entries(sd.tensors)) sameBits(t.dataSync(), saved[k], `snapshot ${k}`);
  sameBits(view.dataSync(), viewed, "a view of the state taken before the steps");
  assert.notDeepEqual(opt.peek("p0", "exp_avg")!.dataSync(), viewed, "the optimizer's own state moved on");
  assert.notEqual(opt.peek("p0", "exp_avg")!.storage, view.storage, "it got a private copy");
});

// ---- clipGradNorm --------------------------------------------------------------------------------------

/** Gradients of many ranks (0 to 4, empty ones too), with `special` values mixed in if given. */
function clipCase(special?: number): [string, Tensor][] {
  const shapes = [[], [7], [3, 5], [2, 3, 4], [2, 1, 3, 2], [1, 6], [0, 3], [4, 0], [5, 1], [64, 65], [3, 4099]];
  return shapes.map((s, i) => {
    const p = zeros(s).requiresGrad_();
    const g = randn(s, { generator: new Generator(50 + i) }).mul(i + 0.5);
    if (special !== undefined && i === 3) (g.storage.buf as Float32Array)[5] = special;
    p.grad = g;
    return [`g${i}`, p];
  });
}

Deno.test("sumOfSquaresF32 sums in the order of g.square().sum() (wide magnitudes make the order visible)", () => {
  let state = 7;
  const rand = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const dims = () => 1 + Math.floor(rand() * 9);
  let differs = 0;
  for (let c = 0; c < 150; c++) {
    const shape = Array.from({ length: c % 5 }, dims);
    const n = shape.reduce((a, b) => a * b, 1);
    // Mantissas at random, exponents over ±40 octaves: double sums of the squares round, so order matters.
    const data = Float32Array.from({ length: n }, () => (rand() - 0.5) * 2 ** Math.floor(rand() * 80 - 40));
    const want = onPath("plain", () => tensor(data, { shape }).square().sum().dataSync()[0]);
    for (const path of ["simd", "js"] as const) {
      assert.ok(Object.is(onPath(path, () => sumOfSquaresF32(data, shape)), want), `${path}: shape [${shape}]`);
    }
    let flat = 0;
    for (const x of data) flat += Math.fround(x * x);
    if (Math.fround(flat) !== want) differs++;
  }
  assert.ok(differs > 0, "some case tells the axis-by-axis order from a flat sum");
});

function clipOn(path: Path, maxNorm: number, eps: number, special?: number) {
  return onPath(path, () => {
    const params = clipCase(special);
    const grads = params.map(([, p]) => p.grad);
    const norm = clipGradNorm(params, maxNorm, { eps }).dataSync()[0];
    return {
      norm,
      grads: params.map(([, p]) => p.grad!.dataSync() as Float32Array),
      kept: params.filter(([, p], i) => p.grad === grads[i]).length,
    };
  });
}

Deno.test("fused clipGradNorm: the norm and the gradients have the op path's bits (ranks 0–4, specials)", () => {
  const cases: [number, number, number?][] = [
    [0.5, 1e-6],
    [1e6, 1e-6], // below the maximum: a no-op
    [Infinity, 1e-6],
    [3, 0],
    [1, 1e-6, Infinity],
    [1, 1e-6, NaN],
    [1, 1e-6, 1e-40], // a subnormal square
  ];
  for (const [maxNorm, eps, special] of cases) {
    const what = `maxNorm ${maxNorm}, eps ${eps}, special ${special}`;
    const plain = clipOn("plain", maxNorm, eps, special);
    for (const path of ["simd", "js"] as const) {
      const fused = clipOn(path, maxNorm, eps, special);
      assert.ok(Object.is(fused.norm, plain.norm), `${what} (${path}): norm ${fused.norm} vs ${plain.norm}`);
      fused.grads.forEach((g, i) => sameBits(g, plain.grads[i], `${what} (${path}): gradient ${i}`));
      assert.equal(fused.kept, fused.grads.length, `${what} (${path}): every gradient was scaled in place`);
    }
  }
  // Zero gradients with eps 0 and maxNorm 0: 0/0 makes the scale NaN on both paths.
  const zeroCase = (path: Path) =>
    onPath(path, () => {
      const p = zeros([3]).requiresGrad_();
      p.grad = zeros([3]);
      return [clipGradNorm([p], 0, { eps: 0 }).dataSync()[0], ...p.grad.dataSync()];
    });
  sameBits(zeroCase("simd"), zeroCase("plain"), "zero gradients, maxNorm 0, eps 0");
});

Deno.test("fused clipGradNorm: shared gradients get new tensors, scaled once each", () => {
  for (const path of ["simd", "plain"] as const) {
    onPath(path, () => {
      const a = tensor([1, 1]).requiresGrad_(), b = tensor([2, 2]).requiresGrad_();
      a.add(b).mul(tensor([3, 4])).sum().backward(); // add's VJP hands the same gradient to both inputs
      const norm = clipGradNorm([a, b], 1, { eps: 0 }).dataSync()[0];
      const total = Math.fround(Math.sqrt(50));
      assert.equal(norm, total);
      const scale = Math.fround(1 / total);
      for (const p of [a, b]) sameBits(p.grad!.dataSync(), [3, 4].map((x) => Math.fround(x * scale)), path);
      // One tensor as the gradient of two parameters: scaled once.
      const c = tensor([0, 0]).requiresGrad_(), d = tensor([0, 0]).requiresGrad_();
      c.grad = d.grad = tensor([3, 4]);
      clipGradNorm([c, d], 1, { eps: 0 });
      const s2 = Math.fround(1 / Math.fround(Math.sqrt(50)));
      for (const p of [c, d]) sameBits(p.grad!.dataSync(), [3, 4].map((x) => Math.fround(x * s2)), `${path} same`);
    });
  }
});
