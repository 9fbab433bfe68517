/**
 * The non-matmul CPU kernels on the kernel Workers (`kernels/cpu/threads/`): elementwise programs (broadcast,
 * strided runs, odd sizes, transcendentals, the fused ops), softmax, sums, AdamW, an MoE layer forward and
 * backward and a few training steps give the same bits with 1, 2 and 3 threads; shared pool buffers
 * survive a checkpoint round trip. Every job is split (`setThreadMinimums` to 1), so odd unit boundaries
 * are exercised. The Workers load the kernels by URL, which needs `--allow-read`; without it the jobs
 * fall back to the calling thread (still checked), and the test that Workers take units is ignored.
 */
import assert from "node:assert/strict";
import {
  actGrad,
  AdamW,
  biasAct,
  crossEntropy,
  decodeCheckpoint,
  encodeCheckpoint,
  exp,
  gelu,
  Generator,
  layerNorm,
  Linear,
  logSoftmax,
  randint,
  randn,
  setCpuOptions,
  softmax,
  sum,
  type Tensor,
  where,
} from "../../mod.ts";
import { MoELayer } from "../../moe/mod.ts";
import { clipGradNorm } from "../../nn/optim/mod.ts";
import { forEachRun, forEachRunIn, planRuns } from "../../kernels/cpu/runs.ts";
import { kernelPool, setThreadMinimums } from "../../kernels/cpu/threads/pool.ts";
import { makeTrainer } from "../../bench/train_moe.ts";
import { type AdamArrays, type AdamScalars, adamStep, adamSteps } from "../../kernels/cpu/adam.ts";

const workerUrl = new URL("../../kernels/cpu/threads/worker.ts", import.meta.url);
const canLoad = Deno.permissions.querySync({ name: "read", path: workerUrl }).state === "granted";

/** Runs `fn` with `threads` threads and every job split; returns the bits of the tensors it returns. */
function bitsUnder(threads: number, fn: () => Tensor[]): Uint32Array[] {
  const before = setCpuOptions({ threads });
  const minimums = setThreadMinimums({
    elementwiseJs: 1,
    gather: 1,
    elementwiseSimd: 1,
    adam: 1,
    softmax: 1,
    rows: 1,
    sum: 1,
  });
  try {
    return fn().map((t) => {
      const d = t.dataSync();
      return d instanceof Float64Array ? new Uint32Array(d.buffer) : new Uint32Array(Float32Array.from(d).buffer);
    });
  } finally {
    setThreadMinimums(minimums);
    setCpuOptions(before);
  }
}

/** Units Workers ran during the bit-identity tests (checked at the end: they did take part). */
let unitsBefore = -1;

/** Asserts `fn` gives the same bits with 1, 2 and 3 threads. */
function sameForAnyThreads(name: string, fn: () => Tensor[]): void {
  const one = bitsUnder(1, fn);
  for (const threads of [2, 3]) {
    const many = bitsUnder(threads, fn);
    assert.equal(many.length, one.length);
    many.forEach((bits, k) => {
      const at = bits.findIndex((b, i) => b !== one[k][i]);
      assert.equal(at, -1, `${name}: output ${k} differs at ${at} with ${threads} threads`);
    });
  }
}

Deno.test({
  name: "the kernel Workers load and take units of large jobs (before the bit-identity tests, so Workers join them)",
  ignore: !canLoad,
  fn() {
    const before = setCpuOptions({ threads: 2 });
    try {
      const x = randn([256, 1024], { generator: new Generator(14) });
      const start = kernelPool()!.workerUnits, deadline = performance.now() + 30_000;
      // Workers load the kernels asynchronously: repeat a job long enough for them to join.
      while (kernelPool()!.workerUnits === start && performance.now() < deadline) gelu(x).dispose();
      assert.ok(kernelPool()!.workerUnits > start, "no Worker took a unit within 30 s");
      assert.ok(kernelPool()!.usable);
      unitsBefore = kernelPool()!.workerUnits;
    } finally {
      setCpuOptions(before);
    }
  },
});

Deno.test("forEachRunIn visits exactly the runs of forEachRun in [from, to)", () => {
  const plan = planRuns([[3, 1, 7], [5, 1], [1]], [3, 5, 7]);
  const all: number[][] = [];
  forEachRun(plan, (o, offsets, n) => {
    for (let j = 0; j < n; j++) all.push([o + j, ...offsets.map((x, q) => x + j * plan.strides[q].at(-1)!)]);
  });
  for (const [from, to] of [[0, 105], [3, 4], [6, 50], [7, 14], [100, 105], [20, 20]]) {
    const got: number[][] = [];
    forEachRunIn(plan, from, to, (o, offsets, n) => {
      for (let j = 0; j < n; j++) got.push([o + j, ...offsets.map((x, q) => x + j * plan.strides[q].at(-1)!)]);
    });
    assert.deepEqual(got, all.slice(from, to), `[${from}, ${to})`);
  }
});

Deno.test("elementwise programs are bit-identical for 1, 2 and 3 threads", () => {
  sameForAnyThreads("elementwise", () => {
    const g = new Generator(7);
    const a = randn([37, 129, 11], { generator: g }), row = randn([129, 1], { generator: g });
    const b = randn([11], { generator: g }), c = randn([37, 1, 11], { generator: g });
    return [
      a.mul(row), // broadcast over the middle: runs of 11 with a broadcast operand
      a.add(b).sub(c), // bias and outer broadcast
      a.div(row.add(3)),
      where(a.gt(0.1), a, c), // bool input
      gelu(a), // a JavaScript loop with erf
      exp(a.mul(0.5)),
      a.mul(a).add(1).sqrt(),
      randn([1, 4099], { generator: g }).mul(2.5), // odd size, one row
      a.permute(2, 0, 1).mul(b.reshape(11, 1, 1)), // strided input materialised, then broadcast
      a.gt(0), // bool output
    ];
  });
});

Deno.test("fused activations and their gradients are bit-identical for 1, 2 and 3 threads", () => {
  sameForAnyThreads("fused", () => {
    const g = new Generator(8);
    const x = randn([65, 257], { generator: g }), bias = randn([257], { generator: g });
    const up = randn([65, 257], { generator: g });
    return [
      biasAct(x, bias, "gelu"),
      biasAct(x, bias, "relu"),
      biasAct(x, bias, "silu"),
      actGrad(x, up, "gelu", bias),
      actGrad(x, up, "silu"),
    ];
  });
});

Deno.test("softmax and sums are bit-identical for 1, 2 and 3 threads", () => {
  sameForAnyThreads("rows", () => {
    const g = new Generator(9);
    const x = randn([23, 31, 67], { generator: g });
    return [
      softmax(x, -1),
      logSoftmax(x, -1),
      softmax(x, 1),
      sum(x, 0),
      sum(x, 1),
      sum(x, -1),
      sum(randn([1001, 3], { generator: g }), 0),
    ];
  });
});

Deno.test("gradient clipping and AdamW over several steps are bit-identical for 1, 2 and 3 threads", () => {
  sameForAnyThreads("adamw", () => {
    const g = new Generator(10);
    const w = randn([97, 131], { generator: g }).requiresGrad_(), b = randn([9001], { generator: g }).requiresGrad_();
    const opt = new AdamW([w, b], { lr: 1e-2, weightDecay: 0.1 });
    for (let step = 0; step < 4; step++) {
      opt.zeroGrad();
      w.mul(w).sum().add(b.mul(b.sin()).sum()).backward();
      clipGradNorm([w, b], 0.5); // scales the gradients in place
      opt.step();
    }
    return [w, b];
  });
});

Deno.test("AdamW's batched update of many parameters (several jobs, clipped in the step) is bit-identical for 1, 2 and 3 threads", () => {
  sameForAnyThreads("adamw-batched", () => {
    const g = new Generator(11);
    // 19 parameters: more than one job's worth (8), sizes from one element to several units, odd lengths.
    const sizes = [1, 3, 17, 4096, 4097, 30001, 70000, 5, 2, 12345, 8, 65536, 9, 100003, 7, 6, 40000, 11, 2049];
    const params = sizes.map((n) => randn([n], { generator: g }).requiresGrad_());
    const opt = new AdamW(params, { lr: 1e-2, weightDecay: 0.1, maxGradNorm: 0.5 });
    for (let step = 0; step < 3; step++) {
      opt.zeroGrad();
      params.map((p) => p.mul(p.sin()).sum()).reduce((a, b) => a.add(b)).backward();
      opt.step();
    }
    return params;
  });
});

Deno.test("adamSteps gives adamStep's bits for each array, and refuses a batch that mixes weight-decay modes", () => {
  const s: AdamScalars = {
    decay: "decoupled",
    wd: Math.fround(0.1),
    shrink: Math.fround(0.999),
    b1: Math.fround(0.9),
    c1: Math.fround(0.1),
    b2: Math.fround(0.999),
    c2: Math.fround(0.001),
    bc2: Math.fround(0.05),
    eps: Math.fround(1e-8),
    step: Math.fround(0.01),
    gscale: Math.fround(0.75),
  };
  let seed = 3;
  const fill = (n: number) =>
    Float32Array.from({ length: n }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647) - 0.5);
  const make = () =>
    [1, 4095, 4096, 4097, 50001, 3, 123457, 9, 10, 11].map((n) => {
      seed = n;
      return { p: fill(n), g: fill(n), m: fill(n), v: fill(n).map(Math.abs), n, s } as AdamArrays;
    });
  const one = make(), many = make();
  for (const u of one) adamStep(u.p, u.g, u.m, u.v, u.n, u.s);
  const before = setCpuOptions({ threads: 2 });
  const minimums = setThreadMinimums({ adam: 1 });
  try {
    // Shared buffers, so the Workers can take the units.
    const shared = many.map((u) => {
      const copy = (a: Float32Array) => {
        const c = new Float32Array(new SharedArrayBuffer(a.byteLength));
        c.set(a);
        return c;
      };
      return { ...u, p: copy(u.p), g: copy(u.g), m: copy(u.m), v: copy(u.v) };
    });
    adamSteps(shared);
    shared.forEach((u, i) => {
      for (const k of ["p", "m", "v"] as const) {
        assert.deepEqual(
          new Uint32Array(Float32Array.from(u[k]).buffer),
          new Uint32Array(one[i][k].buffer),
          `${k} of ${u.n}`,
        );
      }
    });
    const mixed = make().slice(0, 2);
    mixed[1] = { ...mixed[1], s: { ...s, decay: "l2" } };
    assert.throws(() => adamSteps(mixed), /mix weight-decay modes/);
  } finally {
    setThreadMinimums(minimums);
    setCpuOptions(before);
  }
});

Deno.test("strided gathers (permute, slice, broadcast) are bit-identical for 1, 2 and 3 threads", () => {
  sameForAnyThreads("strided", () => {
    const x = randn([1, 29, 3, 41, 7], { generator: new Generator(16) });
    return [
      x.permute(0, 3, 1, 4, 2).mul(1),
      x.narrow(3, 5, 30).mul(1),
      x.slice(3, 1, 40, 3).mul(1),
      x.narrow(1, 2, 20).permute(1, 0, 2, 3, 4).mul(1),
      x.sum(1, true).expand(1, 29, 3, 41, 7).mul(1),
    ];
  });
});

Deno.test("layer norm forward and backward are bit-identical for 1, 2 and 3 threads", () => {
  sameForAnyThreads("layerNorm", () => {
    const g = new Generator(13);
    const x = randn([37, 3, 71], { generator: g }).requiresGrad_();
    const w = randn([71], { generator: g }).requiresGrad_(), b = randn([71], { generator: g }).requiresGrad_();
    const y = layerNorm(x, { weight: w, bias: b }), plain = layerNorm(x.detach().requiresGrad_());
    y.mul(y.sin()).sum().backward();
    const wOnly = layerNorm(x, { weight: w });
    return [y, plain, wOnly, x.grad!, w.grad!, b.grad!];
  });
});

Deno.test("cross-entropy forward and backward are bit-identical for 1, 2 and 3 threads", () => {
  sameForAnyThreads("crossEntropy", () => {
    const g = new Generator(14);
    const logits = randn([173, 59], { generator: g }).requiresGrad_();
    const targets = randint(0, 59, [173], { generator: g, dtype: "i32" });
    const ignored = where(randn([173], { generator: g }).gt(1), -100, targets);
    const loss = crossEntropy(logits, ignored, { labelSmoothing: 0.1 });
    loss.add(crossEntropy(logits, targets, { reduction: "sum" })).backward();
    return [loss, crossEntropy(logits, targets, { reduction: "none" }), logits.grad!];
  });
});

Deno.test("gradient clipping's norm over many gradients of every rank is bit-identical for 1, 2 and 3 threads", () => {
  sameForAnyThreads("clip", () => {
    const g = new Generator(15);
    // 14 gradients of 4096+ elements (more than one job's worth) and a few small ones, ranks 0 to 3.
    const shapes = [[3, 41, 37], [4099], [64, 65], [5, 900], [7, 8, 80], [9000], [61, 67], [2, 2, 1100], [4100, 1]];
    const params = [...shapes, [3], [], [17, 5], [70, 70], [4097], [8193], [3, 1400], [1, 5000], [2]].map((s) =>
      randn(s, { generator: g }).requiresGrad_()
    );
    params.forEach((p, i) => p.mul(p.sin()).sum().mul(i + 1).backward());
    const norm = clipGradNorm(params, 0.5);
    return [norm, ...params.map((p) => p.grad!)];
  });
});

Deno.test("an MoE layer's forward and backward are bit-identical for 1, 2 and 3 threads", () => {
  sameForAnyThreads("moe", () => {
    const g = new Generator(11);
    const layer = new MoELayer(32, { numExperts: 4, estimator: "sparsemixer", generator: g });
    const x = randn([3, 17, 32], { generator: g }).requiresGrad_();
    const y = layer.forward(x);
    y.mul(y).sum().backward();
    return [y, x.grad!, ...layer.parameters().map((p) => p.grad!)];
  });
});

Deno.test("training steps of a small MoE LM are bit-identical for 1, 2 and 3 threads", () => {
  sameForAnyThreads("train", () => {
    const t = makeTrainer({
      vocab: 61,
      dim: 32,
      layers: 2,
      heads: 2,
      experts: 4,
      estimator: "sparsemixer",
      batch: 2,
      seq: 9,
    });
    const losses = [t.step(), t.step(), t.step()];
    return [randn([1]).mul(0).add(losses[0]), randn([1]).mul(0).add(losses[2])];
  });
});

Deno.test("shared pool buffers survive a checkpoint round trip", async () => {
  const before = setCpuOptions({ threads: 2 });
  try {
    const g = new Generator(12);
    const model = new Linear(96, 64, { generator: g });
    const opt = new AdamW(model.parameters(), { lr: 1e-2 });
    const x = randn([5, 96], { generator: g });
    opt.zeroGrad();
    model.forward(x).sum().backward();
    opt.step();
    assert.ok((model.parameters()[0].storage.buf as Float32Array).buffer instanceof SharedArrayBuffer);
    const bytes = await encodeCheckpoint({ model, optimizer: opt, step: 1 });
    const copy = new Linear(96, 64, { generator: new Generator(13) });
    const copyOpt = new AdamW(copy.parameters(), { lr: 1e-2 });
    decodeCheckpoint(bytes, { model: copy, optimizer: copyOpt });
    const pa = model.parameters(), pb = copy.parameters();
    for (let i = 0; i < pa.length; i++) assert.deepEqual(pb[i].dataSync(), pa[i].dataSync());
    assert.ok(!(pa[0].dataSync().buffer instanceof SharedArrayBuffer), "reads hand out unshared copies");
  } finally {
    setCpuOptions(before);
  }
});

Deno.test({
  name: "Workers took part in the bit-identity tests",
  ignore: !canLoad,
  fn() {
    assert.ok(unitsBefore >= 0 && kernelPool()!.workerUnits > unitsBefore);
  },
});
