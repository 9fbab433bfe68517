import assert from "node:assert/strict";
import {
  cpu,
  Device,
  type DType,
  Generator,
  memoryStats,
  randn,
  scope,
  type Tensor,
  tensor,
  type TypedArray,
  zeros,
} from "../../mod.ts";
import { type Backend, webGpuBackend } from "../../internals.ts";
import type { WebGpuRuntime } from "../../kernels/webgpu/runtime.ts";
import {
  Adam,
  AdamW,
  applySchedule,
  clipGradNorm,
  constantLr,
  inverseSqrtLr,
  type LrSchedule,
  type Optimizer,
  type OptimizerState,
  type ParamsInput,
  SGD,
  warmupCosineLr,
  warmupLinearLr,
} from "../../nn/optim/mod.ts";
import { gpuTest } from "../helpers/webgpu.ts";

// ---- helpers ------------------------------------------------------------------------------------------

function f64(data: number[]): Tensor {
  return tensor(data, { dtype: "f64" });
}

/** A leaf parameter (f64 on the CPU unless told otherwise). */
function param(data: number[], dtype: DType = "f64"): Tensor {
  return tensor(data, { dtype }).requiresGrad_();
}

/** Replaces p.grad by the given values (the hand-computed tests control the gradient exactly). */
function setGrad(p: Tensor, data: number[]): void {
  p.grad?.dispose();
  p.grad = tensor(data, { dtype: p.dtype, device: p.device });
}

function assertClose(actual: ArrayLike<number>, expected: readonly number[], rel = 1e-13, msg = ""): void {
  assert.equal(actual.length, expected.length, `${msg} length`);
  for (let i = 0; i < expected.length; i++) {
    const tol = rel * Math.max(1, Math.abs(expected[i]));
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tol,
      `${msg} [${i}]: got ${actual[i]}, expected ${expected[i]} (±${tol})`,
    );
  }
}

const zip = <T>(a: readonly number[], b: readonly number[], f: (x: number, y: number) => T): T[] =>
  a.map((x, i) => f(x, b[i]));

let gpuDevice: Device | undefined;
function gpuOf(rt: WebGpuRuntime): Device {
  return gpuDevice ??= new Device("webgpu-opt", webGpuBackend(rt) as Backend);
}

// ---- SGD ----------------------------------------------------------------------------------------------

Deno.test("SGD: plain steps are p ← p − lr·g", () => {
  const p = param([1, -2, 3]);
  const opt = new SGD([p], { lr: 0.1 });
  const g1 = [0.5, -1, 2], g2 = [-0.25, 4, 1];
  setGrad(p, g1);
  opt.step();
  const p1 = zip([1, -2, 3], g1, (x, g) => x - 0.1 * g);
  assertClose(p.dataSync(), p1);
  setGrad(p, g2);
  opt.step();
  assertClose(p.dataSync(), zip(p1, g2, (x, g) => x - 0.1 * g));
  assert.equal(opt.stepCount, 2);
  assert.deepEqual(Object.keys(opt.stateDict().tensors), [], "no momentum: no state");
});

Deno.test("SGD: momentum, dampening and weight decay (the first step copies d into the buffer)", () => {
  const [lr, mu, tau, wd] = [0.1, 0.9, 0.1, 0.01];
  const p0 = [1, -2, 3];
  const p = param(p0);
  const opt = new SGD([["p", p]], { lr, momentum: mu, dampening: tau, weightDecay: wd });
  const g1 = [0.5, -1, 2], g2 = [-0.25, 4, 1];
  setGrad(p, g1);
  opt.step();
  const d1 = zip(g1, p0, (g, x) => g + wd * x);
  const b1 = d1; // first step: no dampening
  const p1 = zip(p0, b1, (x, b) => x - lr * b);
  assertClose(p.dataSync(), p1, 1e-13, "step 1");
  setGrad(p, g2);
  opt.step();
  const d2 = zip(g2, p1, (g, x) => g + wd * x);
  const b2 = zip(b1, d2, (b, d) => mu * b + (1 - tau) * d);
  const p2 = zip(p1, b2, (x, b) => x - lr * b);
  assertClose(p.dataSync(), p2, 1e-13, "step 2");
  const sd = opt.stateDict();
  assertClose(sd.tensors["momentum_buffer.p"].dataSync(), b2);
  assert.deepEqual(sd.hyper, { momentum: mu, dampening: tau, nesterov: false, weightDecay: wd });
  sd.tensors["momentum_buffer.p"].dispose();
});

Deno.test("SGD: Nesterov momentum d ← g + μ·b", () => {
  const [lr, mu] = [0.05, 0.9];
  const p0 = [0.5, -1.5];
  const p = param(p0);
  const opt = new SGD([p], { lr, momentum: mu, nesterov: true });
  const g1 = [1, -3], g2 = [2, 0.5];
  setGrad(p, g1);
  opt.step();
  const b1 = g1;
  const p1 = zip(p0, zip(g1, b1, (g, b) => g + mu * b), (x, d) => x - lr * d);
  assertClose(p.dataSync(), p1, 1e-13, "step 1");
  setGrad(p, g2);
  opt.step();
  const b2 = zip(b1, g2, (b, g) => mu * b + g);
  const p2 = zip(p1, zip(g2, b2, (g, b) => g + mu * b), (x, d) => x - lr * d);
  assertClose(p.dataSync(), p2, 1e-13, "step 2");
});

Deno.test("SGD: the momentum buffer is a copy, not the gradient's storage", () => {
  const p = param([1, 2]);
  const opt = new SGD([p], { lr: 0.1, momentum: 0.5 });
  setGrad(p, [1, 1]);
  opt.step();
  opt.zeroGrad(); // disposes the gradient: the buffer must survive
  const sd = opt.stateDict();
  assert.deepEqual(Array.from(sd.tensors["momentum_buffer.0"].dataSync()), [1, 1]);
  sd.tensors["momentum_buffer.0"].dispose();
});

// ---- Adam / AdamW -------------------------------------------------------------------------------------

interface AdamRef {
  p: number[];
  m: number[];
  v: number[];
}

/** One Adam/AdamW step in plain JS numbers, in the order the docs give. */
function adamRef(
  s: AdamRef,
  g: number[],
  t: number,
  o: { lr: number; b1: number; b2: number; eps: number; wd: number; decoupled: boolean },
): AdamRef {
  const gg = o.decoupled ? g : zip(g, s.p, (gi, pi) => gi + o.wd * pi);
  const base = o.decoupled ? s.p.map((x) => x * (1 - o.lr * o.wd)) : s.p;
  const m = zip(s.m, gg, (mi, gi) => mi * o.b1 + gi * (1 - o.b1));
  const v = zip(s.v, gg, (vi, gi) => vi * o.b2 + gi * gi * (1 - o.b2));
  const stepSize = o.lr / (1 - o.b1 ** t);
  const bc2Sqrt = Math.sqrt(1 - o.b2 ** t);
  const p = base.map((x, i) => x - (m[i] / (Math.sqrt(v[i]) / bc2Sqrt + o.eps)) * stepSize);
  return { p, m, v };
}

for (const decoupled of [false, true]) {
  const Cls = decoupled ? AdamW : Adam;
  const label = decoupled ? "AdamW (decoupled decay)" : "Adam (L2 decay)";
  Deno.test(`${label}: first and second steps match the bias-corrected formulas`, () => {
    const o = { lr: 0.01, b1: 0.8, b2: 0.99, eps: 1e-6, wd: 0.1, decoupled };
    const p0 = [1, -2, 0.5];
    const p = param(p0);
    const opt = new Cls([["w", p]], { lr: o.lr, betas: [o.b1, o.b2], eps: o.eps, weightDecay: o.wd });
    const g1 = [0.3, -0.7, 2], g2 = [-0.1, 0.4, 1.5];
    let ref: AdamRef = { p: p0, m: [0, 0, 0], v: [0, 0, 0] };
    setGrad(p, g1);
    opt.step();
    ref = adamRef(ref, g1, 1, o);
    assertClose(p.dataSync(), ref.p, 1e-13, "step 1");
    setGrad(p, g2);
    opt.step();
    ref = adamRef(ref, g2, 2, o);
    assertClose(p.dataSync(), ref.p, 1e-13, "step 2");
    const sd = opt.stateDict();
    assertClose(sd.tensors["exp_avg.w"].dataSync(), ref.m);
    assertClose(sd.tensors["exp_avg_sq.w"].dataSync(), ref.v);
    assert.deepEqual(sd.hyper, {
      beta1: o.b1,
      beta2: o.b2,
      eps: o.eps,
      weightDecay: o.wd,
      decoupledWeightDecay: decoupled,
      "step.w": 2,
    });
    Object.values(sd.tensors).forEach((t) => t.dispose());
  });
}

Deno.test("Adam vs AdamW: the same weight decay gives different updates; defaults follow PyTorch", () => {
  const a = param([1, -2]), b = param([1, -2]);
  const adam = new Adam([a], { lr: 0.1, weightDecay: 0.5 });
  const adamw = new AdamW([b], { lr: 0.1, weightDecay: 0.5 });
  setGrad(a, [0.1, 0.1]);
  setGrad(b, [0.1, 0.1]);
  adam.step();
  adamw.step();
  // Adam: g' = g + λp = [0.6, −0.9] → the first step is −lr·sign(g') (up to ε).
  assertClose(a.dataSync(), [1 - 0.1, -2 + 0.1], 1e-6);
  // AdamW: p·(1 − lr·λ) − lr·sign(g).
  assertClose(b.dataSync(), [1 * 0.95 - 0.1, -2 * 0.95 - 0.1], 1e-6);
  class MyAdamW extends AdamW {}
  assert.equal(new MyAdamW([param([1])]).decoupledWeightDecay, true, "subclasses of AdamW stay decoupled");
  const d = new Adam([param([1])]), dw = new AdamW([param([1])]);
  assert.deepEqual([d.lr, d.betas, d.eps, d.weightDecay], [1e-3, [0.9, 0.999], 1e-8, 0]);
  assert.deepEqual([dw.lr, dw.betas, dw.eps, dw.weightDecay, dw.decoupledWeightDecay], [
    1e-3,
    [0.9, 0.999],
    1e-8,
    0.01,
    true,
  ]);
});

Deno.test("Adam: bias correction counts each parameter's own updates (PyTorch's per-parameter step)", () => {
  const o = { lr: 0.05, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0, decoupled: false };
  const a = param([1, 2]), b = param([-1]);
  const opt = new Adam([["a", a], ["b", b]], { lr: o.lr });
  setGrad(a, [0.5, -0.5]);
  opt.step(); // b has no gradient: untouched, no state
  assert.deepEqual(Array.from(b.dataSync()), [-1]);
  assert.deepEqual(Object.keys(opt.stateDict().hyper).filter((k) => k.startsWith("step.")), ["step.a"]);
  setGrad(a, [0.25, 1]);
  setGrad(b, [2]);
  opt.step();
  const refB = adamRef({ p: [-1], m: [0], v: [0] }, [2], 1, o); // b's first update: t = 1
  assertClose(b.dataSync(), refB.p);
  let refA = adamRef({ p: [1, 2], m: [0, 0], v: [0, 0] }, [0.5, -0.5], 1, o);
  refA = adamRef(refA, [0.25, 1], 2, o);
  assertClose(a.dataSync(), refA.p);
  const sd = opt.stateDict();
  assert.equal(sd.hyper["step.a"], 2);
  assert.equal(sd.hyper["step.b"], 1);
  Object.values(sd.tensors).forEach((t) => t.dispose());
});

// ---- validation ---------------------------------------------------------------------------------------

Deno.test("option and parameter validation raises clear errors", () => {
  const p = param([1]);
  // @ts-expect-error lr is required
  assert.throws(() => new SGD([p], {}), /SGD: options.lr is required/);
  assert.throws(() => new SGD([p], { lr: -1 }), /SGD: lr must be a finite number ≥ 0, got -1/);
  assert.throws(() => new SGD([p], { lr: NaN }), /SGD: lr must be/);
  assert.throws(() => new SGD([p], { lr: 0.1, momentum: -0.5 }), /SGD: momentum must be a finite number ≥ 0/);
  assert.throws(
    () => new SGD([p], { lr: 0.1, nesterov: true }),
    /SGD: Nesterov momentum requires momentum > 0 and dampening = 0, got momentum 0, dampening 0/,
  );
  assert.throws(
    () => new SGD([p], { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }),
    /SGD: Nesterov momentum requires momentum > 0 and dampening = 0/,
  );
  assert.throws(() => new SGD([p], { lr: 0.1, weightDecay: -1 }), /SGD: weightDecay must be a finite number ≥ 0/);
  // @ts-expect-error a PyTorch spelling is caught rather than silently ignored
  assert.throws(() => new SGD([p], { lr: 0.1, weight_decay: 0.1 }), /SGD: unknown option "weight_decay"/);
  assert.throws(
    () => new Adam([p], { betas: [1, 0.999] }),
    /Adam: beta1 \(betas\[0\]\) must be a finite number in \[0, 1\), got 1/,
  );
  assert.throws(() => new AdamW([p], { betas: [0.9, -0.1] }), /AdamW: beta2 \(betas\[1\]\) must be/);
  // @ts-expect-error betas is a pair
  assert.throws(() => new Adam([p], { betas: [0.9] }), /Adam: betas must be a pair/);
  assert.throws(() => new Adam([p], { eps: -1e-8 }), /Adam: eps must be a finite number ≥ 0/);
  assert.throws(() => new Adam([], {}), /Adam: got an empty parameter list/);
  assert.throws(() => new SGD([p, p], { lr: 1 }), /SGD: the same tensor is given twice \(as "0" and "1"\)/);
  const q = param([2]);
  assert.throws(() => new SGD([["a", p], ["a", q]], { lr: 1 }), /SGD: two parameters are named "a"/);
  assert.throws(
    () => new SGD([p, ["b", q]] as unknown as ParamsInput, { lr: 1 }),
    /SGD: params mix Tensors and \[name, Tensor\] pairs/,
  );
  assert.throws(() => new SGD([tensor([1], { dtype: "i32" })], { lr: 1 }), /SGD: parameter "0" must be f32 or f64/);
  assert.throws(() => new SGD([p.mul(2)], { lr: 1 }), /SGD: parameter "0" is not a leaf tensor/);
  assert.throws(() => new SGD(42 as unknown as ParamsInput, { lr: 1 }), /SGD: params must be an iterable/);
  const opt = new SGD(new Map([["w", p]]), { lr: 1 });
  assert.deepEqual(opt.namedParameters().map(([n]) => n), ["w"]);
  assert.throws(() => (opt.lr = -0.1), /SGD: lr must be a finite number ≥ 0, got -0.1/);
  opt.lr = 0.5;
  assert.equal(opt.lr, 0.5);
  setGrad(p, [1, 2]);
  assert.throws(() => opt.step(), /SGD.step: the gradient of "w" \(f64 \[2\] on cpu\) does not match the parameter/);
  assert.equal(opt.stepCount, 0, "a failed step changes nothing");
});

Deno.test("zeroGrad disposes and clears every gradient", () => {
  const a = param([1, 2]), b = param([3]);
  const opt = new SGD([a, b], { lr: 0.1 });
  scope(() => a.mul(b).sum().backward());
  const ga = a.grad!, gb = b.grad!;
  const before = memoryStats.liveTensors;
  opt.zeroGrad();
  assert.equal(a.grad, null);
  assert.equal(b.grad, null);
  assert.ok(ga.isDisposed && gb.isDisposed);
  assert.equal(memoryStats.liveTensors, before - 2);
  opt.zeroGrad(); // harmless without gradients
});

// ---- state dict ---------------------------------------------------------------------------------------

interface Saved {
  params: Record<string, { data: TypedArray; shape: number[] }>;
  tensors: Record<string, { data: TypedArray; shape: number[]; dtype: DType }>;
  meta: string;
}

/** What a checkpoint does: state tensors to host arrays (safetensors), step/lr/hyper through JSON. */
async function checkpoint(opt: Optimizer): Promise<Saved> {
  const sd = opt.stateDict();
  const tensors: Saved["tensors"] = {};
  for (const [k, t] of Object.entries(sd.tensors)) {
    tensors[k] = { data: (await t.data()).slice(), shape: [...t.shape], dtype: t.dtype };
    t.dispose();
  }
  const params: Saved["params"] = {};
  for (const [name, p] of opt.namedParameters()) params[name] = { data: (await p.data()).slice(), shape: [...p.shape] };
  return { params, tensors, meta: JSON.stringify({ step: sd.step, lr: sd.lr, hyper: sd.hyper }) };
}

/** Loads the state tensors on the CPU, as a checkpoint reader would. */
function restoreState(saved: Saved): OptimizerState {
  const tensors: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(saved.tensors)) {
    tensors[k] = tensor(t.data, { shape: t.shape, dtype: t.dtype, device: cpu });
  }
  return { ...JSON.parse(saved.meta), tensors };
}

type Make = (params: ParamsInput) => Optimizer;

function initParams(device: Device, dtype: DType): [string, Tensor][] {
  const gen = new Generator(5);
  return [
    ["layer.w", randn([3, 2], { generator: gen, device, dtype }).requiresGrad_()],
    ["layer.b", randn([2], { generator: gen, device, dtype }).requiresGrad_()],
  ];
}

/** Steps `from..to−1` on per-step data; "layer.b" only gets a gradient on even steps. */
function train(opt: Optimizer, from: number, to: number, schedule: LrSchedule, clip?: number): void {
  const [[, w], [, b]] = opt.namedParameters();
  for (let s = from; s < to; s++) {
    scope(() => {
      const gen = new Generator(1000 + s);
      const o = { generator: gen, device: w.device, dtype: w.dtype };
      const x = randn([8, 3], o), y = randn([8, 2], o);
      let out = x.matmul(w);
      if (s % 2 === 0) out = out.add(b);
      out.sub(y).square().mean().backward();
      if (clip !== undefined) clipGradNorm(opt.namedParameters(), clip);
      applySchedule(opt, schedule);
      opt.step();
      opt.zeroGrad();
    });
  }
}

const ROUND_TRIP: [string, Make][] = [
  ["SGD nesterov + wd", (p) => new SGD(p, { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-3 })],
  ["SGD momentum + dampening", (p) => new SGD(p, { lr: 0.1, momentum: 0.8, dampening: 0.3 })],
  ["Adam", (p) => new Adam(p, { lr: 0.01, weightDecay: 1e-2 })],
  ["AdamW", (p) => new AdamW(p, { lr: 0.01, betas: [0.85, 0.99] })],
];

/** Uninterrupted vs save-after-k / fresh optimizer / loadStateDict / continue: the parameters' bits. */
async function roundTrip(make: Make, device: Device, dtype: DType, total = 9, k = 4): Promise<void> {
  const schedule = warmupCosineLr({ peak: 0.05, warmupSteps: 3, totalSteps: 20, minLr: 1e-3 });
  const clip = 0.5;
  const straight = make(initParams(device, dtype));
  train(straight, 0, total, schedule, clip);

  const first = make(initParams(device, dtype));
  train(first, 0, k, schedule, clip);
  const saved = await checkpoint(first);
  first.parameters().forEach((p) => p.dispose());
  first.dispose();

  const resumedParams: [string, Tensor][] = Object.entries(saved.params).map((
    [name, p],
  ) => [name, tensor(p.data, { shape: p.shape, dtype, device }).requiresGrad_()]);
  const resumed = make(resumedParams);
  const state = restoreState(saved);
  resumed.loadStateDict(state);
  Object.values(state.tensors).forEach((t) => t.dispose()); // the optimizer copied them
  assert.equal(resumed.stepCount, k);
  train(resumed, k, total, schedule, clip);

  for (let i = 0; i < 2; i++) {
    const [name, a] = straight.namedParameters()[i];
    const b = resumed.namedParameters()[i][1];
    assert.deepEqual(await b.data(), await a.data(), `parameter ${name} differs after resuming`);
  }
  const [sa, sb] = [await checkpoint(straight), await checkpoint(resumed)];
  assert.deepEqual(sb, sa, "the final states are identical too");
  for (const o of [straight, resumed]) {
    o.parameters().forEach((p) => p.dispose());
    o.dispose();
  }
}

for (const [label, make] of ROUND_TRIP) {
  Deno.test(`stateDict round trip is bit-identical to an uninterrupted run: ${label} (f64 and f32)`, async () => {
    await roundTrip(make, cpu, "f64");
    await roundTrip(make, cpu, "f32");
  });
}

gpuTest(
  "stateDict round trip on WebGPU, state restored from CPU tensors: bit-identical (SGD, Adam, AdamW)",
  async (rt) => {
    for (const [, make] of ROUND_TRIP) await roundTrip(make, gpuOf(rt), "f32", 7, 3);
  },
);

Deno.test("stateDict restores lr, step and hyperparameters; its tensors are snapshots owned by the caller", () => {
  const p = param([1, 2]);
  const opt = new SGD([["p", p]], { lr: 0.1, momentum: 0.9 });
  setGrad(p, [1, 1]);
  opt.step();
  const sd = opt.stateDict();
  const buf = sd.tensors["momentum_buffer.p"];
  setGrad(p, [3, 3]);
  opt.step();
  assert.deepEqual(Array.from(buf.dataSync()), [1, 1], "later steps do not change a saved state");
  const q = param([0, 0]);
  const other = new SGD([["p", q]], { lr: 5, momentum: 0.5, dampening: 0.2 });
  other.loadStateDict(sd);
  assert.deepEqual([other.lr, other.stepCount, other.momentum, other.dampening], [0.1, 1, 0.9, 0]);
  buf.dispose(); // the caller's handle: neither optimizer's buffer is affected
  const loaded = other.stateDict();
  assert.deepEqual(Array.from(loaded.tensors["momentum_buffer.p"].dataSync()), [1, 1]);
  loaded.tensors["momentum_buffer.p"].dispose();
  const now = opt.stateDict();
  assert.deepEqual(Array.from(now.tensors["momentum_buffer.p"].dataSync()), [3.9, 3.9]);
  now.tensors["momentum_buffer.p"].dispose();
});

Deno.test("loadStateDict validates names, shapes, kinds and hyper keys before changing anything", () => {
  const w = param([1, 2, 3]), b = param([0]);
  const opt = new Adam([["w", w], ["b", b]], { lr: 0.01 });
  setGrad(w, [1, 1, 1]);
  setGrad(b, [1]);
  opt.step();
  const good = opt.stateDict();
  const with_ = (over: Partial<OptimizerState>): OptimizerState => ({ ...good, ...over });
  const t3 = f64([0, 0, 0]), t2 = f64([0, 0]);
  const bad: [OptimizerState, RegExp][] = [
    [
      with_({ tensors: { ...good.tensors, "exp_avg.w": t2 } }),
      /"exp_avg.w": shape \[2\] does not match parameter "w" \[3\]/,
    ],
    [with_({ tensors: { ...good.tensors, "exp_avg.nope": t3 } }), /"exp_avg.nope": no parameter is named "nope"/],
    [with_({ tensors: { ...good.tensors, "momentum_buffer.w": t3 } }), /"momentum_buffer.w": unknown state kind/],
    [
      with_({ tensors: { "exp_avg.w": good.tensors["exp_avg.w"] } }),
      /missing "exp_avg_sq.w" \(a parameter's state holds exp_avg and exp_avg_sq\)/,
    ],
    [with_({ tensors: { ...good.tensors, "exp_avg.w": tensor([0, 0, 0]) } }), /"exp_avg.w": dtype f32 does not match/],
    [with_({ hyper: { ...good.hyper, "step.w": undefined as unknown as number } }), /"step.w" must be an integer ≥ 1/],
    [with_({ hyper: { ...good.hyper, momentum: 0.9 } }), /unknown hyper key "momentum"/],
    [with_({ hyper: { beta1: 0.9 } }), /missing hyper keys "beta2", "eps", "weightDecay", "decoupledWeightDecay"/],
    [with_({ hyper: { ...good.hyper, decoupledWeightDecay: true } }), /the state was saved by AdamW/],
    [with_({ hyper: { ...good.hyper, beta2: 1 } }), /beta2 \(betas\[1\]\) must be/],
    [with_({ hyper: { ...good.hyper, "step.w": 7 } }), /"step.w" \(7\) exceeds the optimizer's step \(1\)/],
    [with_({ step: -1 }), /state.step must be an integer ≥ 0/],
    [with_({ lr: -1 }), /state.lr must be a finite number ≥ 0/],
  ];
  const fresh = new Adam([["w", param([1, 2, 3])], ["b", param([0])]]);
  fresh.lr = 0.123;
  for (const [state, re] of bad) {
    assert.throws(() => fresh.loadStateDict(state), (e: Error) => {
      assert.match(e.message, /^Adam.loadStateDict: /);
      assert.match(e.message, re);
      return true;
    });
    assert.equal(fresh.stepCount, 0);
    assert.equal(fresh.lr, 0.123);
    assert.deepEqual(fresh.stateDict().tensors, {});
  }
  const sgd = new SGD([["w", param([1, 2, 3])], ["b", param([0])]], { lr: 1 });
  assert.throws(() => sgd.loadStateDict(good), /SGD.loadStateDict: "exp_avg.w": unknown state kind "exp_avg"/);
  fresh.loadStateDict(good);
  assert.equal(fresh.stepCount, 1);
  [t3, t2, ...Object.values(good.tensors)].forEach((t) => t.dispose());
});

// ---- clipGradNorm -------------------------------------------------------------------------------------

Deno.test("clipGradNorm: returns the total norm, scales by maxNorm/(norm+eps), and is a no-op below max", async () => {
  const a = param([0, 0]), b = param([0]);
  setGrad(a, [3, 4]);
  setGrad(b, [12]); // total norm 13
  const norm = clipGradNorm([a, b], 6.5);
  assert.equal(await norm.item(), 13);
  const scale = 6.5 / (13 + 1e-6);
  assertClose(a.grad!.dataSync(), [3 * scale, 4 * scale]);
  assertClose(b.grad!.dataSync(), [12 * scale]);
  norm.dispose();

  setGrad(a, [0.3, -0.4]);
  setGrad(b, [1.2]);
  const before = [Array.from(a.grad!.dataSync()), Array.from(b.grad!.dataSync())];
  const n2 = clipGradNorm([["a", a], ["b", b]], 2, { eps: 0 });
  assertClose(n2.dataSync(), [1.3]);
  assert.deepEqual([Array.from(a.grad!.dataSync()), Array.from(b.grad!.dataSync())], before, "bit-identical");

  b.grad!.dispose();
  b.grad = null; // parameters without a gradient are skipped
  const n3 = clipGradNorm(a, 0.25);
  assertClose(n3.dataSync(), [0.5]);
  assertClose(a.grad!.dataSync(), [0.3 * 0.25 / (0.5 + 1e-6), -0.4 * 0.25 / (0.5 + 1e-6)]);
  a.grad!.dispose();
  a.grad = null;
  assert.deepEqual(Array.from(clipGradNorm([a, b], 1).dataSync()), [0], "no gradients: norm 0");
  assert.throws(() => clipGradNorm([a], -1), /clipGradNorm: maxNorm must be a number ≥ 0, got -1/);
  assert.throws(() => clipGradNorm([a], 1, { eps: -1 }), /clipGradNorm: eps must be a finite number ≥ 0/);
  setGrad(a, [1, 1]);
  const c = tensor([1]).requiresGrad_();
  setGrad(c, [1]);
  assert.throws(() => clipGradNorm([a, c], 1), /clipGradNorm: the gradients differ in dtype or device/);
});

Deno.test("clipGradNorm: gradients that share storage are each scaled once", () => {
  const a = param([1, 1]), b = param([2, 2]);
  a.add(b).mul(f64([3, 4])).sum().backward(); // add's VJP hands the same gradient to both inputs
  const norm = clipGradNorm([a, b], 1, { eps: 0 });
  const total = Math.sqrt(2 * (9 + 16));
  assertClose(norm.dataSync(), [total]);
  assertClose(a.grad!.dataSync(), [3 / total, 4 / total]);
  assertClose(b.grad!.dataSync(), [3 / total, 4 / total]);
});

// ---- schedules ----------------------------------------------------------------------------------------

Deno.test("schedules: values at step 0, the end of the warm-up and later match the formulas", () => {
  assert.equal(constantLr(0.3)(0), 0.3);
  assert.equal(constantLr(0.3)(1e6), 0.3);

  const inv = inverseSqrtLr({ peak: 1e-3, warmupSteps: 100 });
  assert.equal(inv(0), 1e-7);
  assertClose([inv(50)], [1e-7 + 50 * (1e-3 - 1e-7) / 100], 1e-15);
  assertClose([inv(100)], [1e-3], 1e-15);
  assertClose([inv(400)], [1e-3 * Math.sqrt(100 / 400)], 1e-15);
  assertClose([inv(2500)], [1e-3 / 5], 1e-15);
  assert.equal(inverseSqrtLr({ peak: 2, warmupSteps: 4, warmupInit: 0 })(1), 0.5);

  const cos = warmupCosineLr({ peak: 0.1, warmupSteps: 10, totalSteps: 110, minLr: 0.01 });
  assert.equal(cos(0), 0);
  assertClose([cos(5)], [0.05], 1e-15);
  assertClose([cos(10)], [0.1], 1e-15);
  assertClose([cos(35)], [0.01 + 0.09 * 0.5 * (1 + Math.cos(Math.PI * 0.25))], 1e-15);
  assertClose([cos(60)], [0.055], 1e-15);
  assert.equal(cos(110), 0.01);
  assert.equal(cos(1000), 0.01);
  assert.equal(warmupCosineLr({ peak: 1, warmupSteps: 0, totalSteps: 4 })(0), 1, "no warm-up: starts at peak");

  const lin = warmupLinearLr({ peak: 0.1, warmupSteps: 10, totalSteps: 110, endLr: 0.02 });
  assert.equal(lin(0), 0);
  assertClose([lin(10)], [0.1], 1e-15);
  assertClose([lin(60)], [0.06], 1e-15);
  assertClose([lin(85)], [0.02 + 0.08 * 25 / 100], 1e-15);
  assert.equal(lin(110), 0.02);
  assert.equal(lin(500), 0.02);
});

Deno.test("schedules: argument validation, and applySchedule sets lr from the step count", () => {
  assert.throws(() => constantLr(-1), /constantLr: lr must be a finite number ≥ 0/);
  assert.throws(
    () => inverseSqrtLr({ peak: 1e-3, warmupSteps: 0 }),
    /inverseSqrtLr: warmupSteps must be an integer ≥ 1/,
  );
  assert.throws(() => inverseSqrtLr({ peak: 0, warmupSteps: 10 }), /inverseSqrtLr: peak must be a finite number > 0/);
  assert.throws(
    () => warmupCosineLr({ peak: 1, warmupSteps: 10, totalSteps: 10 }),
    /warmupCosineLr: totalSteps \(10\) must exceed warmupSteps \(10\)/,
  );
  assert.throws(
    () => warmupCosineLr({ peak: 1, warmupSteps: 1, totalSteps: 10, minLr: 2 }),
    /warmupCosineLr: minLr \(2\) must not exceed peak \(1\)/,
  );
  assert.throws(() => warmupLinearLr({ peak: 1, warmupSteps: 1.5, totalSteps: 10 }), /warmupSteps must be an integer/);
  assert.throws(
    // @ts-expect-error a misspelt option
    () => warmupLinearLr({ peak: 1, warmupSteps: 1, totalSteps: 10, minLr: 0 }),
    /warmupLinearLr: unknown option "minLr"/,
  );
  assert.throws(() => constantLr(1)(-1), /constantLr: step must be a finite number ≥ 0, got -1/);
  assert.throws(() => warmupLinearLr({ peak: 1, warmupSteps: 1, totalSteps: 10 })(NaN), /step must be/);

  const p = param([1]);
  const opt = new SGD([p], { lr: 123 });
  const schedule = warmupLinearLr({ peak: 0.1, warmupSteps: 2, totalSteps: 4 });
  const seen: number[] = [];
  for (let i = 0; i < 5; i++) {
    setGrad(p, [1]);
    seen.push(applySchedule(opt, schedule));
    assert.equal(opt.lr, seen[i]);
    opt.step();
  }
  assertClose(seen, [0, 0.05, 0.1, 0.05, 0], 1e-15);
  assert.equal(applySchedule(opt, schedule, 1), 0.05);
});

// ---- memory -------------------------------------------------------------------------------------------

const MEMORY: [string, Make][] = [
  ["SGD momentum", (p) => new SGD(p, { lr: 0.01, momentum: 0.9, weightDecay: 1e-4 })],
  ["Adam", (p) => new Adam(p, { lr: 1e-3, weightDecay: 1e-4 })],
  ["AdamW", (p) => new AdamW(p, { lr: 1e-3 })],
];

Deno.test("memory: 200 steps (with clipping and a schedule) leave live tensors and buffers flat", () => {
  for (const [label, make] of MEMORY) {
    const opt = make(initParams(cpu, "f32"));
    const schedule = warmupCosineLr({ peak: 1e-2, warmupSteps: 5, totalSteps: 200 });
    train(opt, 0, 2, schedule, 1); // creates the state
    const before = { t: memoryStats.liveTensors, b: memoryStats.liveBuffers, bytes: memoryStats.liveBytes };
    train(opt, 2, 202, schedule, 1);
    const after = { t: memoryStats.liveTensors, b: memoryStats.liveBuffers, bytes: memoryStats.liveBytes };
    assert.deepEqual(after, before, label);
    const n = memoryStats.liveTensors;
    opt.parameters().forEach((p) => p.dispose());
    opt.dispose();
    assert.equal(memoryStats.liveTensors, n - 2 - (label === "SGD momentum" ? 2 : 4), "dispose() frees the state");
  }
});

gpuTest("memory on WebGPU: 200 Adam steps leave tensors, buffers and GPU memory flat", (rt) => {
  const gpu = gpuOf(rt);
  const opt = new Adam(initParams(gpu, "f32"), { lr: 1e-3 });
  const schedule = constantLr(1e-3);
  train(opt, 0, 2, schedule, 1);
  const snap = () => [memoryStats.liveTensors, memoryStats.liveBuffers, rt.stats.gpuBuffers, rt.stats.gpuBytes];
  const before = snap();
  train(opt, 2, 202, schedule, 1);
  assert.deepEqual(snap(), before);
  opt.parameters().forEach((p) => p.dispose());
  opt.dispose();
});

// ---- linear regression --------------------------------------------------------------------------------

const REGRESSION: [string, Make, LrSchedule | undefined][] = [
  ["SGD", (p) => new SGD(p, { lr: 0.1 }), undefined],
  ["SGD + Nesterov momentum", (p) => new SGD(p, { lr: 0.05, momentum: 0.9, nesterov: true }), undefined],
  ["Adam", (p) => new Adam(p, { lr: 0.1 }), warmupCosineLr({ peak: 0.1, warmupSteps: 10, totalSteps: 300 })],
  [
    "AdamW",
    (p) => new AdamW(p, { lr: 0.1, weightDecay: 1e-4 }),
    warmupLinearLr({ peak: 0.1, warmupSteps: 10, totalSteps: 300 }),
  ],
];

/** Fits y = X·w* (64 samples, 4 features) from w = 0; returns the first and the final loss. */
async function regress(make: Make, schedule: LrSchedule | undefined, device: Device, dtype: DType, steps = 300) {
  const gen = new Generator(7);
  const { x, y, w } = scope(() => {
    const x = randn([64, 4], { generator: gen, device, dtype });
    const wStar = tensor([1, -2, 0.5, 3], { shape: [4, 1], dtype, device });
    return { x, y: x.matmul(wStar), w: zeros([4, 1], { dtype, device }).requiresGrad_() };
  });
  const opt = make([["w", w]]);
  const lossOf = () => x.matmul(w).sub(y).square().mean();
  const firstT = scope(() => lossOf());
  const first = await firstT.item();
  firstT.dispose();
  for (let s = 0; s < steps; s++) {
    scope(() => {
      lossOf().backward();
      if (schedule) applySchedule(opt, schedule);
      opt.step();
      opt.zeroGrad();
    });
  }
  const lastT = scope(() => lossOf());
  const last = await lastT.item();
  [lastT, x, y, w].forEach((t) => t.dispose());
  opt.dispose();
  return { first, last };
}

Deno.test("each optimizer fits a linear regression to near-zero loss on the CPU (f64)", async () => {
  for (const [label, make, schedule] of REGRESSION) {
    const { first, last } = await regress(make, schedule, cpu, "f64");
    assert.ok(first > 5, `${label}: initial loss ${first}`);
    assert.ok(last < 1e-6, `${label}: loss ${first} → ${last}`);
  }
});

gpuTest("each optimizer fits a linear regression to near-zero loss on WebGPU (f32)", async (rt) => {
  for (const [label, make, schedule] of REGRESSION) {
    const { first, last } = await regress(make, schedule, gpuOf(rt), "f32");
    assert.ok(first > 5, `${label}: initial loss ${first}`);
    assert.ok(last < 1e-6, `${label}: loss ${first} → ${last}`);
  }
});
