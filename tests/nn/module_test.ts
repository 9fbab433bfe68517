/**
 * nn/module.ts (registration, names, train/eval, state dicts, aux losses, ownership) and nn/init.ts
 * (initialiser statistics and fan rules, with fixed seeds).
 */
import assert from "node:assert/strict";
import { Generator, memoryStats, noGrad, ones, randn, scope, type Tensor, tensor, zeros } from "../../mod.ts";
import { Dropout, init, Linear, Module, ModuleList, StateDictError } from "../../nn/mod.ts";

// ---- fixtures --------------------------------------------------------------------------------------------

class Inner extends Module {
  readonly proj: Linear;
  readonly count: Tensor;
  readonly drop: Dropout;
  constructor(gen: Generator) {
    super();
    this.proj = this.child("proj", new Linear(3, 2, { generator: gen }));
    this.count = this.buffer("count", zeros([1]));
    this.drop = this.child("drop", new Dropout(0.5, { generator: gen }));
  }
  forward(x: Tensor): Tensor {
    return this.drop.forward(this.proj.forward(x));
  }
}

class Outer extends Module {
  readonly scale: Tensor;
  readonly blocks: ModuleList<Inner>;
  readonly head: Linear;
  constructor(seed = 0) {
    super();
    const gen = new Generator(seed);
    this.scale = this.param("scale", ones([3]));
    this.blocks = this.child("blocks", new ModuleList([new Inner(gen), new Inner(gen)]));
    this.head = this.child("head", new Linear(2, 4, { generator: gen }));
  }
}

const names = (pairs: [string, unknown][]) => pairs.map(([n]) => n);
const values = (t: Tensor) => Array.from(t.dataSync());

// ---- registration and naming -----------------------------------------------------------------------------

Deno.test("Module: dotted names in registration order, own state first, recursive", () => {
  const m = new Outer();
  assert.deepEqual(names(m.namedParameters()), [
    "scale",
    "blocks.0.proj.weight",
    "blocks.0.proj.bias",
    "blocks.1.proj.weight",
    "blocks.1.proj.bias",
    "head.weight",
    "head.bias",
  ]);
  assert.deepEqual(names(m.namedBuffers()), ["blocks.0.count", "blocks.1.count"]);
  assert.deepEqual(names(m.namedModules()), [
    "",
    "blocks",
    "blocks.0",
    "blocks.0.proj",
    "blocks.0.drop",
    "blocks.1",
    "blocks.1.proj",
    "blocks.1.drop",
    "head",
  ]);
  assert.deepEqual(names(m.namedChildren()), ["blocks", "head"]);
  assert.equal(m.namedModules()[0][1], m);
  // parameters() are the registered tensors themselves, in the same order
  assert.deepEqual(m.parameters(), m.namedParameters().map(([, t]) => t));
  assert.equal(m.parameters()[1], m.blocks.at(0).proj.weight);
  assert.equal(m.blocks.at(-1), m.blocks.at(1));
  assert.equal(m.numParameters(), 3 + 2 * (3 * 2 + 2) + (2 * 4 + 4));
});

Deno.test("Module: params require grad, buffers do not", () => {
  const m = new Outer();
  assert.ok(m.parameters().every((p) => p.requiresGrad));
  assert.ok(m.namedBuffers().every(([, b]) => !b.requiresGrad));
});

Deno.test("Module: bad registrations raise", () => {
  class Bad extends Module {
    constructor(kind: string) {
      super();
      if (kind === "dot") this.param("a.b", zeros([1]));
      if (kind === "empty") this.buffer("", zeros([1]));
      if (kind === "dup") {
        this.param("w", zeros([1]));
        this.buffer("w", zeros([1]));
      }
      if (kind === "dupChild") {
        this.child("c", new Linear(1, 1));
        this.param("c", zeros([1]));
      }
      if (kind === "nonLeaf") this.param("w", zeros([2]).requiresGrad_().mul(2));
      if (kind === "notModule") this.child("c", {} as Module);
      if (kind === "int") this.param("w", zeros([2], { dtype: "i32" }));
    }
  }
  assert.throws(() => new Bad("dot"), /invalid name "a\.b"/);
  assert.throws(() => new Bad("empty"), /invalid name ""/);
  assert.throws(() => new Bad("dup"), /"w" is already registered/);
  assert.throws(() => new Bad("dupChild"), /"c" is already registered/);
  assert.throws(() => new Bad("nonLeaf"), /must be a leaf tensor/);
  assert.throws(() => new Bad("notModule"), /is not a Module/);
  assert.throws(() => new Bad("int"), /only float tensors/);
});

Deno.test("Module: tied tensors and shared modules are listed once", () => {
  class Tied extends Module {
    readonly a: Linear;
    constructor() {
      super();
      this.a = this.child("a", new Linear(2, 2));
      this.child("b", this.a); // the same module under two names
      this.param("alias", this.a.weight); // and the same tensor again
    }
  }
  const m = new Tied();
  assert.deepEqual(names(m.namedParameters()), ["alias", "a.bias"]);
  assert.equal(m.numParameters(), 6);
  assert.deepEqual(Object.keys(m.stateDict()), ["alias", "a.bias"]);
  assert.deepEqual(names(m.namedModules()), ["", "a"]);
});

Deno.test("ModuleList: children named by index, iteration, append, bounds", () => {
  const list = new ModuleList<Linear>();
  assert.equal(list.length, 0);
  list.append(new Linear(2, 3)).append(new Linear(3, 1, { bias: false }));
  assert.equal(list.length, 2);
  assert.deepEqual(names(list.namedParameters()), ["0.weight", "0.bias", "1.weight"]);
  assert.deepEqual([...list].map((l) => l.outFeatures), [3, 1]);
  assert.throws(() => list.at(2), /index 2 is out of range for 2 modules/);
});

// ---- train / eval ----------------------------------------------------------------------------------------

Deno.test("Module: train()/eval() set the flag on every descendant and drive dropout", async () => {
  const m = new Outer();
  assert.ok(m.namedModules().every(([, x]) => x.training));
  assert.equal(m.eval(), m);
  assert.ok(m.namedModules().every(([, x]) => !x.training));
  const x = ones([4, 3]);
  const inner = m.blocks.at(0);
  const a = await inner.forward(x).data(), b = await inner.proj.forward(x).data();
  assert.deepEqual(a, b); // eval: dropout is the identity
  m.train();
  assert.ok(m.namedModules().every(([, x]) => x.training));
  const dropped = await inner.forward(x).data();
  assert.ok(dropped.some((v, i) => v === 0 && b[i] !== 0), "training: some entries dropped");
  assert.ok(dropped.every((v, i) => v === 0 || Math.abs(v - 2 * b[i]) < 1e-6), "survivors scaled by 1/(1-p)");
  m.train(false);
  assert.ok(!m.blocks.at(1).drop.training);
});

// ---- state dicts -----------------------------------------------------------------------------------------

Deno.test("stateDict: parameters then buffers, by dotted name, the module's own tensors", () => {
  const m = new Outer();
  const sd = m.stateDict();
  assert.deepEqual(Object.keys(sd), [...names(m.namedParameters()), ...names(m.namedBuffers())]);
  assert.equal(sd["head.weight"], m.head.weight);
  assert.equal(sd["blocks.1.count"], m.blocks.at(1).count);
});

Deno.test("loadStateDict: copies values in place and keeps tensor identities", () => {
  const a = new Outer(1), b = new Outer(2);
  const before = b.parameters();
  assert.notDeepEqual(values(a.head.weight), values(b.head.weight));
  noGradAssign(a.blocks.at(0).count, tensor([7]));
  const res = b.loadStateDict(a.stateDict());
  assert.deepEqual(res, { missingKeys: [], unexpectedKeys: [] });
  for (const [k, t] of Object.entries(b.stateDict())) assert.deepEqual(values(t), values(a.stateDict()[k]), k);
  assert.deepEqual(b.parameters(), before);
  assert.ok(b.parameters().every((p) => p.requiresGrad && p.node === null));
  // the copy is a copy: changing the source afterwards does not change the target
  noGradAssign(a.head.bias!, zeros([4]).add(3));
  assert.notDeepEqual(values(b.head.bias!), values(a.head.bias!));
  // and the loaded model still trains
  b.head.forward(ones([1, 2])).sum().backward();
  assert.deepEqual(values(b.head.bias!.grad!), [1, 1, 1, 1]);
});

/** assign_ with recording off (parameters may only be written under noGrad). */
function noGradAssign(t: Tensor, src: Tensor): void {
  noGrad(() => t.assign_(src));
}

function snapshotValues(m: Module): Record<string, number[]> {
  return Object.fromEntries(Object.entries(m.stateDict()).map(([k, t]) => [k, values(t)]));
}

function loadError(m: Module, state: Record<string, Tensor>, strict = true): StateDictError {
  const before = snapshotValues(m);
  let err: unknown;
  try {
    m.loadStateDict(state, { strict });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof StateDictError, `expected a StateDictError, got ${err}`);
  assert.deepEqual(snapshotValues(m), before, "a failed load must not change anything");
  return err;
}

Deno.test("loadStateDict: each error case is named, with keys and shapes", () => {
  const src = new Outer(1);
  const m = new Outer(2);
  const good = () => ({ ...src.stateDict() });

  const missing = good();
  delete missing["head.bias"];
  let e = loadError(m, missing);
  assert.deepEqual(e.problems, ['missing key "head.bias" (model has f32 [4])']);
  assert.match(e.message, /^loadStateDict: 1 problem\(s\); nothing was loaded:\n {2}missing key "head.bias"/);

  e = loadError(m, { ...good(), "head.extra": zeros([5, 2]) });
  assert.deepEqual(e.problems, ['unexpected key "head.extra" (f32 [5, 2])']);

  e = loadError(m, { ...good(), "blocks.0.proj.weight": zeros([2, 3]) });
  assert.deepEqual(e.problems, ['shape mismatch for "blocks.0.proj.weight": state has [2, 3], model has [3, 2]']);

  e = loadError(m, { ...good(), "scale": ones([3], { dtype: "f64" }) });
  assert.deepEqual(e.problems, ['dtype mismatch for "scale": state has f64, model has f32']);

  e = loadError(m, { ...good(), "scale": [1, 2, 3] as unknown as Tensor });
  assert.deepEqual(e.problems, ['"scale" is not a Tensor (got object)']);

  const dead = ones([3]);
  dead.dispose();
  e = loadError(m, { ...good(), "scale": dead });
  assert.deepEqual(e.problems, ['"scale" is a disposed tensor']);
});

Deno.test("loadStateDict: all problems in one error, and never a partial load", () => {
  const src = new Outer(1);
  const m = new Outer(2);
  const state: Record<string, Tensor> = { ...src.stateDict() };
  delete state["blocks.1.count"];
  state["head.weight"] = zeros([4, 2]);
  state["blocks.0.proj.bias"] = zeros([2], { dtype: "i32" });
  state["bogus"] = zeros([1]);
  // every other entry is valid and differs from m's current values, yet nothing may be written
  const e = loadError(m, state);
  assert.deepEqual(e.problems, [
    'missing key "blocks.1.count" (model has f32 [1])',
    'unexpected key "bogus" (f32 [1])',
    'dtype mismatch for "blocks.0.proj.bias": state has i32, model has f32',
    'shape mismatch for "head.weight": state has [4, 2], model has [2, 4]',
  ]);
  assert.match(e.message, /4 problem\(s\)/);
});

Deno.test("loadStateDict: strict=false reports missing/unexpected keys but still rejects mismatches", () => {
  const src = new Outer(1);
  const m = new Outer(2);
  const state: Record<string, Tensor> = { ...src.stateDict(), extra: zeros([1]) };
  delete state["head.weight"];
  const headBefore = values(m.head.weight);
  const res = m.loadStateDict(state, { strict: false });
  assert.deepEqual(res, { missingKeys: ["head.weight"], unexpectedKeys: ["extra"] });
  assert.deepEqual(values(m.head.weight), headBefore, "a missing key is left unchanged");
  assert.deepEqual(values(m.head.bias!), values(src.head.bias!));
  const e = loadError(m, { "scale": zeros([4]) }, false);
  assert.deepEqual(e.problems, ['shape mismatch for "scale": state has [4], model has [3]']);
});

// ---- ownership, aux losses -------------------------------------------------------------------------------

Deno.test("Module: building inside scope() keeps the parameters; dispose() frees them", () => {
  const before = memoryStats.liveTensors;
  const m = scope(() => new Outer(3));
  assert.ok(m.parameters().every((p) => !p.isDisposed));
  assert.ok(m.namedBuffers().every(([, b]) => !b.isDisposed));
  const owned = m.parameters().length + m.namedBuffers().length;
  assert.equal(memoryStats.liveTensors - before, owned, "only the module's own tensors survive the scope");
  m.head.forward(ones([1, 2])).sum().backward();
  m.dispose();
  assert.ok(m.parameters().every((p) => p.isDisposed && p.grad === null));
});

Deno.test("Module.auxLoss: null by default, summed over the tree when layers provide one", async () => {
  class WithAux extends Module {
    #last: Tensor | null = null;
    readonly w: Tensor = this.param("w", ones([1]));
    forward(x: Tensor): Tensor {
      this.#last = x.square().sum().mul(this.w);
      return x;
    }
    override auxLoss(): Tensor | null {
      return this.#last;
    }
  }
  class Holder extends Module {
    readonly a = this.child("a", new WithAux());
    readonly b = this.child("b", new ModuleList([new WithAux(), new WithAux()]));
    readonly c = this.child("c", new Linear(1, 1));
  }
  const h = new Holder();
  assert.equal(new Outer().auxLoss(), null);
  assert.equal(h.auxLoss(), null, "no forward yet");
  h.a.forward(tensor([2]));
  h.b.at(1).forward(tensor([3]));
  assert.equal(await h.auxLoss()!.item(), 4 + 9);
  h.auxLoss()!.backward();
  assert.deepEqual(values(h.a.w.grad!), [4]);
});

// ---- init --------------------------------------------------------------------------------------------------

function stats(t: Tensor): { mean: number; std: number; min: number; max: number } {
  const d = t.dataSync();
  let s = 0, s2 = 0, min = Infinity, max = -Infinity;
  for (const v of d) {
    s += v;
    s2 += v * v;
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const mean = s / d.length;
  return { mean, std: Math.sqrt(s2 / d.length - mean * mean), min, max };
}

function near(got: number, want: number, rel: number, what: string): void {
  assert.ok(Math.abs(got - want) <= rel * Math.abs(want), `${what}: got ${got}, want ${want} ± ${rel * 100}%`);
}

Deno.test("init.fans: [in, out] convention, leading axes are a batch", () => {
  assert.deepEqual(init.fans([300, 500]), { fanIn: 300, fanOut: 500 });
  assert.deepEqual(init.fans([8, 300, 500]), { fanIn: 300, fanOut: 500 });
  assert.throws(() => init.fans([5]), /rank ≥ 2/);
  assert.equal(init.calculateGain("relu"), Math.SQRT2);
  assert.equal(init.calculateGain("tanh"), 5 / 3);
  assert.equal(init.calculateGain("linear"), 1);
  assert.equal(init.calculateGain("sigmoid"), 1);
  assert.equal(init.calculateGain("selu"), 0.75);
  assert.equal(init.calculateGain("leakyRelu", 0.2), Math.sqrt(2 / 1.04));
});

Deno.test("init: normal and uniform statistics", () => {
  const g = new Generator(11);
  const n = init.normal([200, 500], 0.5, { generator: g, mean: 1 });
  const s = stats(n);
  near(s.mean, 1, 0.01, "normal mean");
  near(s.std, 0.5, 0.01, "normal std");
  const u = stats(init.uniform([200, 500], -3, 1, { generator: g }));
  assert.ok(u.min >= -3 && u.max < 1);
  near(u.mean, -1, 0.02, "uniform mean");
  near(u.std, 4 / Math.sqrt(12), 0.01, "uniform std");
});

Deno.test("init: xavier bounds and std follow (fanIn + fanOut) with [in, out] fans", () => {
  const g = new Generator(12);
  const shape = [300, 500];
  const bound = 2 * Math.sqrt(6 / 800);
  const xu = stats(init.xavierUniform(shape, 2, { generator: g }));
  assert.ok(xu.min >= -bound && xu.max <= bound);
  assert.ok(xu.max > 0.99 * bound && xu.min < -0.99 * bound);
  near(xu.std, bound / Math.sqrt(3), 0.01, "xavierUniform std");
  near(stats(init.xavierNormal(shape, 1, { generator: g })).std, Math.sqrt(2 / 800), 0.01, "xavierNormal std");
  // a batch of matrices [E, in, out] gets the per-matrix fans
  near(stats(init.xavierNormal([4, 300, 500], 1, { generator: g })).std, Math.sqrt(2 / 800), 0.01, "batched");
  // explicit fans override the shape
  near(
    stats(init.xavierNormal([100, 100], 1, { generator: g, fans: { fanIn: 10, fanOut: 10 } })).std,
    Math.sqrt(2 / 20),
    0.02,
    "fans override",
  );
});

Deno.test("init: kaiming uses fanIn = shape[-2] (or fanOut = shape[-1]) and the nonlinearity's gain", () => {
  const g = new Generator(13);
  const shape = [400, 100]; // fanIn 400, fanOut 100
  near(stats(init.kaimingNormal(shape, { generator: g })).std, Math.SQRT2 / 20, 0.01, "default: relu gain, fanIn");
  near(stats(init.kaimingNormal(shape, { generator: g, mode: "fanOut" })).std, Math.SQRT2 / 10, 0.01, "fanOut");
  near(
    stats(init.kaimingNormal(shape, { generator: g, nonlinearity: "tanh" })).std,
    5 / 3 / 20,
    0.01,
    "tanh gain",
  );
  const ku = stats(init.kaimingUniform(shape, { generator: g, nonlinearity: "leakyRelu", a: Math.sqrt(5) }));
  // PyTorch's nn.Linear default: kaiming_uniform(a=√5) is U(±1/√fanIn)
  assert.ok(ku.max <= 1 / 20 && ku.min >= -1 / 20 && ku.max > 0.99 / 20);
  near(ku.std, 1 / 20 / Math.sqrt(3), 0.01, "kaimingUniform std");
  assert.throws(() => init.kaimingNormal([3]), /rank ≥ 2/);
});

Deno.test("init.truncatedNormal: inside [a, b], truncated std, reproducible, f64, bad intervals", () => {
  const t = init.truncatedNormal([100, 1000], 0.02, undefined, undefined, { generator: new Generator(14) });
  const s = stats(t);
  assert.ok(s.min >= -0.04 && s.max <= 0.04);
  assert.ok(Math.abs(s.mean) < 1e-3 * 0.02 * 100);
  // Var of N(0,1) truncated to [-2, 2]: 1 − 2·2φ(2)/(Φ(2) − Φ(−2)) = 0.77372…
  near(s.std, 0.02 * Math.sqrt(0.773721), 0.01, "truncated std");
  const again = init.truncatedNormal([100, 1000], 0.02, undefined, undefined, { generator: new Generator(14) });
  assert.deepEqual(values(again), values(t));
  const asym = init.truncatedNormal([5000], 1, 0.5, 3, { generator: new Generator(15), mean: 1, dtype: "f64" });
  assert.equal(asym.dtype, "f64");
  const sa = stats(asym);
  assert.ok(sa.min >= 0.5 && sa.max <= 3);
  assert.throws(() => init.truncatedNormal([3], 1, 1, 1), /need a < b/);
  assert.throws(() => init.truncatedNormal([100], 1, 20, 30), /too little/);
});

Deno.test("init: seeded, device and dtype options", () => {
  const a = init.kaimingUniform([4, 5], { generator: new Generator(5), dtype: "f64" });
  const b = init.kaimingUniform([4, 5], { generator: new Generator(5), dtype: "f64" });
  assert.equal(a.dtype, "f64");
  assert.deepEqual(values(a), values(b));
  const c = init.kaimingUniform([4, 5], { generator: new Generator(6), dtype: "f64" });
  assert.notDeepEqual(values(a), values(c));
  assert.equal(init.normal([2, 2], 1, { device: "cpu" }).device.name, "cpu");
  assert.equal(randn([1]).dtype, "f32");
});
