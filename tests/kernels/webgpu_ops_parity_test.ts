/**
 * The op suite on both backends: every public op runs on the CPU and on WebGPU from the same inputs, and the
 * forward values and the gradients (of Σ out ⊙ W for a fixed random W) must agree within f32 tolerances
 * (exactly for integer and bool results). A public op that is neither compared here nor listed in
 * tests/helpers/webgpu_gaps.ts fails the coverage test, so nothing is skipped silently.
 */
import assert from "node:assert/strict";
import * as mg from "../../mod.ts";
import { cpu, type Device, Generator, type Tensor, tensor } from "../../mod.ts";
import { Device as DeviceClass } from "../../core/device.ts";
import { type Backend, webGpuBackend } from "../../internals.ts";
import { gpuTest, testRuntime } from "../helpers/webgpu.ts";
import { WEBGPU_UNCOMPARED_OPS } from "../helpers/webgpu_gaps.ts";
import { loadOpModules, opsOf } from "../helpers/op_modules.ts";
import { fromArray } from "../../core/ops/creation.ts";
import * as rope from "../../nn/layers/rope.ts";
import * as attention from "../../nn/layers/attention.ts";

type InputKind =
  | { randn: readonly number[] }
  | { positive: readonly number[] }
  | { distinct: readonly number[] }
  | { int: readonly number[]; low: number; high: number }
  | { bool: readonly number[] };

interface Case {
  /** Public ops this case exercises (the coverage test reads them). */
  ops: readonly string[];
  inputs: readonly InputKind[];
  fn: (...xs: Tensor[]) => Tensor | Tensor[];
  /** Compare gradients too (default: when any input is float and the output is float). */
  grad?: boolean;
}

const i32 = (data: number[], device: Device) => tensor(data, { dtype: "i32", device });

const CASES: readonly Case[] = [
  ...["neg", "abs", "exp", "tanh", "sigmoid", "relu", "silu", "erf", "sin", "cos"].map((op): Case => ({
    ops: [op],
    inputs: [{ randn: [3, 5] }],
    fn: (x) => (mg as unknown as Record<string, (t: Tensor) => Tensor>)[op](x),
  })),
  { ops: ["sign"], inputs: [{ randn: [7] }], fn: (x) => mg.sign(x), grad: false },
  {
    ops: ["log", "sqrt", "rsqrt"],
    inputs: [{ positive: [4, 3] }],
    fn: (x) => mg.log(x).add(mg.sqrt(x)).add(mg.rsqrt(x)),
  },
  { ops: ["gelu"], inputs: [{ randn: [9] }], fn: (x) => mg.gelu(x).add(mg.gelu(x, "tanh")) },
  ...(["gelu", "gelu_tanh", "silu", "relu"] as const).map((act): Case => ({
    ops: ["biasAct", "actGrad"],
    inputs: [{ randn: [2, 3, 5] }, { randn: [2, 1, 5] }, { randn: [2, 3, 5] }],
    // actGrad with and without a bias; its gradients exercise the second-derivative VJPs.
    fn: (x, b, g) => mg.biasAct(x, b, act).add(mg.actGrad(x, g, act, b)).add(mg.actGrad(x, g, act)),
  })),
  {
    ops: ["add", "sub", "mul", "div"],
    inputs: [{ randn: [2, 3, 4] }, { positive: [3, 1] }],
    fn: (a, b) => a.add(b).mul(a.sub(b)).div(b),
  },
  { ops: ["pow"], inputs: [{ positive: [2, 3] }, { randn: [3] }], fn: (a, b) => mg.pow(a, b).add(mg.pow(a, 2)) },
  {
    ops: ["maximum", "minimum"],
    inputs: [{ distinct: [4, 4] }, { distinct: [4] }],
    fn: (a, b) => mg.maximum(a, b).add(mg.minimum(a, b).mul(3)),
  },
  {
    ops: ["eq", "ne", "lt", "le", "gt", "ge", "logicalAnd", "logicalOr", "logicalNot"],
    inputs: [{ int: [3, 4], low: 0, high: 3 }, { int: [4], low: 0, high: 3 }],
    fn: (a, b) =>
      mg.stack([
        a.eq(b).logicalOr(a.lt(b)),
        a.ne(b).logicalAnd(a.ge(b)),
        a.le(b).logicalNot(),
        a.gt(b),
      ]),
  },
  { ops: ["isnan"], inputs: [{ randn: [6] }], fn: (x) => x.log().isnan() },
  { ops: ["where"], inputs: [{ bool: [3, 1] }, { randn: [3, 4] }, { randn: [4] }], fn: (c, a, b) => mg.where(c, a, b) },
  { ops: ["clamp"], inputs: [{ distinct: [10] }], fn: (x) => x.clamp(-0.3, 0.4) },
  {
    ops: ["sum", "mean", "max", "min"],
    inputs: [{ distinct: [3, 4, 5] }],
    fn: (x) => [x.sum(), x.mean(1), x.max([0, 2], true), x.min(-1)],
  },
  { ops: ["sum"], inputs: [{ int: [5, 6], low: -4, high: 4 }], fn: (x) => [x.sum(0), x.gt(0).sum(1)] },
  {
    ops: ["argmax", "argmin"],
    inputs: [{ int: [4, 9], low: 0, high: 3 }],
    fn: (x) => [x.argmax(1), x.argmin(0), x.argmax()],
  },
  {
    ops: ["logsumexp", "softmax", "logSoftmax"],
    inputs: [{ randn: [4, 6] }],
    fn: (x) => [x.logsumexp(1), x.softmax(0), x.logSoftmax(-1)],
  },
  {
    ops: ["softmax", "logSoftmax"],
    inputs: [{ randn: [3, 5] }, { bool: [3, 5] }],
    fn: (x, keep) => {
      const masked = mg.where(keep.logicalOr(x.eq(x.max(1, true))), x, -Infinity);
      return [masked.softmax(), masked.logSoftmax().where(masked.gt(-Infinity), 0)];
    },
  },
  {
    ops: ["matmul"],
    inputs: [{ randn: [2, 5, 7] }, { randn: [7, 3] }, { randn: [2, 3, 4] }, { randn: [7] }],
    fn: (a, w, c, v) => [a.matmul(w).matmul(c), a.matmul(v), mg.matmul(v, w)],
  },
  { ops: ["matmul"], inputs: [{ randn: [33, 65] }, { randn: [65, 17] }], fn: (a, b) => a.matmul(b) },
  {
    // An empty group, a one-row group, rows outside every group, a group spanning two 32-row tiles.
    ops: ["groupedMatmul", "groupedOuter"],
    inputs: [{ randn: [47, 6] }, { randn: [4, 6, 5] }, { randn: [4, 5, 6] }, { randn: [47, 3] }],
    fn: (x, w, wt, b) => {
      const off = i32([2, 5, 5, 6, 43], x.device);
      return [mg.groupedMatmul(x, w, off), mg.groupedMatmul(x, wt, off, { transB: true }), mg.groupedOuter(x, b, off)];
    },
  },
  {
    ops: ["reshape", "flatten", "squeeze", "unsqueeze", "permute", "transpose", "expand"],
    inputs: [{ randn: [2, 1, 3, 4] }],
    fn: (
      x,
    ) => [
      x.reshape(4, -1),
      x.flatten(1),
      x.squeeze(1).unsqueeze(0),
      x.permute(3, 0, 2, 1),
      x.transpose(0, 2),
      x.expand(2, 5, 3, 4),
    ],
  },
  {
    ops: ["slice", "narrow", "sliceScatter"],
    inputs: [{ randn: [5, 9] }, { randn: [5, 3] }],
    fn: (x, src) => [x.slice(1, -8, undefined, 3), x.narrow(0, 1, 3), mg.sliceScatter(x, src, 1, 1, 9, 3)],
  },
  {
    ops: ["concat", "stack", "split"],
    inputs: [{ randn: [2, 3] }, { randn: [2, 5] }],
    fn: (a, b) => {
      const c = mg.concat([a, b, a], 1);
      return [c, mg.stack([a, a.mul(2)], 1), ...c.split([4, 7], 1)];
    },
  },
  {
    ops: ["gather", "scatterAdd"],
    inputs: [{ randn: [4, 6] }, { randn: [4, 3] }],
    fn: (x, src) => {
      const idx = i32([0, 5, 5, 1, 1, 1, 2, 3, 4, 0, 0, 5], x.device).reshape(4, 3);
      return [x.gather(1, idx), x.scatterAdd(1, idx, src)];
    },
  },
  {
    ops: ["indexSelect", "indexAdd", "embedding"],
    inputs: [{ randn: [5, 4] }, { randn: [6, 4] }],
    fn: (x, src) => {
      const idx = i32([4, 0, 0, 2, 4, 4], x.device);
      return [x.indexSelect(0, idx), x.indexAdd(0, idx, src), mg.embedding(x, idx.reshape(2, 3))];
    },
  },
  { ops: ["oneHot"], inputs: [{ int: [2, 5], low: 0, high: 4 }], fn: (i) => [mg.oneHot(i, 4), mg.oneHot(i, 4, "f32")] },
  {
    ops: ["topk", "sort", "argsort"],
    inputs: [{ distinct: [3, 8] }],
    fn: (x) => {
      const t = x.topk(3), s = x.sort({ axis: 0, descending: true });
      return [t.values, t.indices, x.topk(2, { largest: false, axis: 0 }).values, s.values, s.indices, x.argsort()];
    },
  },
  {
    ops: ["topk", "sort"],
    inputs: [{ int: [4, 10], low: 0, high: 3 }],
    fn: (x) => [x.topk(4).indices, x.sort().indices],
  },
  {
    ops: ["applyRope", "scaledDotProductAttention", "causalMask"],
    inputs: [{ randn: [2, 5, 4] }, { randn: [2, 5, 4] }, { randn: [2, 5, 3] }],
    fn: (q, k, v) => [
      mg.applyRope(q, { offset: 2 }),
      mg.scaledDotProductAttention(mg.applyRope(q), mg.applyRope(k), v, { mask: mg.causalMask(5, 5, q.device) }),
    ],
  },
  {
    // Both rotation directions, tables broadcast over two leading axes.
    ops: ["rotaryEmbedding"],
    inputs: [{ randn: [2, 3, 5, 6] }, { randn: [5, 3] }, { randn: [5, 3] }],
    fn: (x, c, s) => [mg.rotaryEmbedding(x, c, s), mg.rotaryEmbedding(x, c, s, { inverse: true })],
  },
  {
    // No mask, causal, a broadcast [B, 1, 1, Tk] mask with a fully masked batch, and causal with a mask.
    ops: ["scaledMaskedSoftmax"],
    inputs: [{ randn: [2, 3, 4, 7] }, { bool: [4, 7] }],
    fn: (x, m) => {
      const pad = tensor([1, 1, 1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0], { shape: [2, 1, 1, 7], device: x.device })
        .gt(0);
      return [
        mg.scaledMaskedSoftmax(x, { scale: 0.6 }),
        mg.scaledMaskedSoftmax(x.narrow(-1, 0, 4), { causal: true }),
        mg.scaledMaskedSoftmax(x, { scale: 1.3, mask: pad }),
        mg.scaledMaskedSoftmax(x, { scale: 0.4, mask: m, causal: true }),
      ];
    },
  },
  { ops: ["cumsum"], inputs: [{ randn: [3, 6] }], fn: (x) => [x.cumsum(1), x.cumsum(0, true)] },
  {
    ops: ["crossEntropy"],
    inputs: [{ randn: [6, 5] }],
    fn: (x) => {
      const y = i32([0, 4, -100, 2, 2, 1], x.device);
      return [mg.crossEntropy(x, y), mg.crossEntropy(x, y, { labelSmoothing: 0.1, reduction: "none" })];
    },
  },
  {
    // Rows longer than a workgroup (70 > 64 threads), [B, T, C] logits, another ignore index, sum reduction.
    ops: ["crossEntropy"],
    inputs: [{ randn: [2, 3, 70] }],
    fn: (x) => {
      const y = tensor([[3, 69, 5], [0, 5, 41]], { dtype: "i32", device: x.device });
      return [mg.crossEntropy(x, y, { ignoreIndex: 5, reduction: "sum" }), mg.crossEntropy(x.mul(3), y)];
    },
  },
  {
    // With weight and bias, weight only, bias only, neither; rows of 5 and of 70 (> 64 threads per row).
    ops: ["layerNorm"],
    inputs: [{ randn: [2, 3, 5] }, { randn: [5] }, { randn: [5] }, { randn: [4, 70] }, { randn: [70] }],
    fn: (x, w, b, x2, w2) => [
      mg.layerNorm(x, { weight: w, bias: b }),
      mg.layerNorm(x.mul(2), { weight: w }),
      mg.layerNorm(x, { bias: b, eps: 0.1 }),
      mg.layerNorm(x2),
      mg.layerNorm(x2, { weight: w2, bias: w2 }),
    ],
  },
  {
    ops: ["dropout", "rand", "randn", "randint"],
    inputs: [{ randn: [4, 8] }],
    fn: (x) => {
      const g = new Generator(9);
      return [
        mg.dropout(x, 0.3, { generator: g }),
        mg.rand([5, 3], { device: x.device, generator: g }),
        mg.randn([7], { device: x.device, generator: g }),
        mg.randint(-5, 5, [9], { device: x.device, generator: g }),
      ];
    },
  },
  {
    ops: [
      "astype",
      "full",
      "zeros",
      "ones",
      "arange",
      "tensor",
      "fromArray",
      "zerosLike",
      "onesLike",
      "fullLike",
      "copy",
      "sumTo",
    ],
    inputs: [{ randn: [2, 3] }],
    fn: (x) => [
      x.clone().mul(2),
      mg.sumTo(x, [1, 3]),
      fromArray(new Float32Array([1, 2]), [2], "f32", x.device),
      x.mul(3).astype("i32"),
      x.gt(0).astype("f32"),
      mg.full([2], 2.5, { device: x.device }).add(mg.ones([2], { device: x.device })).add(
        mg.zeros([2], { device: x.device }),
      ),
      mg.arange(0, 3, 0.5, { device: x.device }),
      mg.zerosLike(x).add(mg.onesLike(x)).add(mg.fullLike(x, 2)),
    ],
  },
];

// ---------------------------------------------------------------------------------------------------------

function makeInputs(
  kinds: readonly InputKind[],
  seed: number,
): { data: Float32Array | Int32Array | Uint8Array; shape: number[]; dtype: mg.DType }[] {
  const g = new Generator(seed);
  return kinds.map((k) => {
    if ("int" in k) {
      return {
        data: mg.randint(k.low, k.high, k.int, { generator: g }).dataSync() as Int32Array,
        shape: [...k.int],
        dtype: "i32",
      };
    }
    if ("bool" in k) {
      return {
        data: mg.rand(k.bool, { generator: g }).gt(0.5).dataSync() as Uint8Array,
        shape: [...k.bool],
        dtype: "bool",
      };
    }
    const shape = "randn" in k ? k.randn : "positive" in k ? k.positive : k.distinct;
    const n = shape.reduce((p, d) => p * d, 1);
    let data: Float32Array;
    if ("positive" in k) data = mg.rand([n], { generator: g }).mul(2).add(0.2).dataSync() as Float32Array;
    else if ("distinct" in k) {
      // A shuffled grid: no ties, so max/min/topk/sort/clamp are well defined and well separated.
      const perm = mg.rand([n], { generator: g }).argsort().dataSync();
      data = Float32Array.from(perm, (p) => (p - n / 2) * 0.173);
    } else data = mg.randn([n], { generator: g }).dataSync() as Float32Array;
    return { data, shape: [...shape], dtype: "f32" };
  });
}

interface Outcome {
  outputs: { data: ArrayLike<number>; dtype: mg.DType; shape: readonly number[] }[];
  grads: (ArrayLike<number> | null)[];
}

async function runOn(device: Device, c: Case, seed: number): Promise<Outcome> {
  const inputs = makeInputs(c.inputs, seed).map((i) => tensor(i.data, { shape: i.shape, dtype: i.dtype, device }));
  const wantGrad = c.grad !== false && inputs.some((t) => t.dtype === "f32");
  if (wantGrad) inputs.forEach((t) => t.dtype === "f32" && t.requiresGrad_());
  const raw = c.fn(...inputs);
  const outs = Array.isArray(raw) ? raw : [raw];
  if (wantGrad) {
    const g = new Generator(seed + 1);
    let loss: Tensor | null = null;
    for (const o of outs) {
      if (!o.requiresGrad) continue;
      const w = tensor(mg.randn(o.shape, { generator: g }).dataSync(), { shape: o.shape, device });
      const term = o.where(o.abs().lt(Infinity), 0).mul(w).sum();
      loss = loss ? loss.add(term) : term;
    }
    loss?.backward();
  }
  const outputs = await Promise.all(outs.map(async (o) => ({ data: await o.data(), dtype: o.dtype, shape: o.shape })));
  const grads = await Promise.all(inputs.map((t) => (t.grad ? t.grad.data() : Promise.resolve(null))));
  return { outputs, grads };
}

function close(a: ArrayLike<number>, b: ArrayLike<number>, exact: boolean, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    const x = a[i], y = b[i];
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    if (exact || !Number.isFinite(y)) {
      assert.equal(x, y, `${what}[${i}]: webgpu ${x} vs cpu ${y}`);
      continue;
    }
    assert.ok(Math.abs(x - y) <= 2e-5 + 2e-4 * Math.abs(y), `${what}[${i}]: webgpu ${x} vs cpu ${y}`);
  }
}

const gpuDevice: Device | null = testRuntime
  ? new DeviceClass("webgpu-test", webGpuBackend(testRuntime) as Backend)
  : null;

gpuTest("every op: forward values and gradients match the cpu backend", async (_rt, t) => {
  for (const [n, c] of CASES.entries()) {
    await t.step(`${n}: ${c.ops.join(", ")}`, async () => {
      const [ref, got] = [await runOn(cpu, c, 100 + n), await runOn(gpuDevice!, c, 100 + n)];
      assert.equal(got.outputs.length, ref.outputs.length);
      ref.outputs.forEach((o, j) => {
        assert.deepEqual(got.outputs[j].shape, o.shape, `output ${j} shape`);
        assert.equal(got.outputs[j].dtype, o.dtype, `output ${j} dtype`);
        close(got.outputs[j].data, o.data, o.dtype !== "f32", `output ${j}`);
      });
      ref.grads.forEach((g, j) => {
        assert.equal(got.grads[j] === null, g === null, `grad ${j} presence`);
        if (g) close(got.grads[j]!, g, false, `grad of input ${j}`);
      });
    });
  }
});

gpuTest("the same program twice gives bit-identical results", async () => {
  const c = CASES.find((x) => x.ops.includes("gather"))!;
  const m = CASES.find((x) => x.ops.includes("matmul"))!;
  for (const k of [c, m]) {
    const [a, b] = [await runOn(gpuDevice!, k, 7), await runOn(gpuDevice!, k, 7)];
    a.outputs.forEach((o, j) => assert.deepEqual(Array.from(b.outputs[j].data), Array.from(o.data)));
    a.grads.forEach((g, j) => assert.deepEqual(b.grads[j] && Array.from(b.grads[j]!), g && Array.from(g)));
  }
});

Deno.test({
  name: "parity coverage: every op function is compared on webgpu or listed as a known gap",
  // The op modules are found on disk (so a new one is covered too), which needs read access.
  ignore: Deno.permissions.querySync({ name: "read" }).state !== "granted",
  fn: parityCoverage,
});

async function parityCoverage() {
  const covered = new Set(CASES.flatMap((c) => c.ops));
  // Every core op module (found on disk, so a new one is covered too) and the functional layers of nn.
  const opModules: Record<string, Record<string, unknown>> = { ...await loadOpModules(), rope, attention };
  const missing: string[] = [];
  for (const [file, mod] of Object.entries(opModules)) {
    for (const name of opsOf(mod)) {
      const isOp = /^[a-z]/.test(name); // classes (layers) are tested in tests/nn
      if (isOp && !covered.has(name) && !(name in WEBGPU_UNCOMPARED_OPS)) {
        missing.push(`${file}.${name}`);
      }
    }
  }
  assert.deepEqual(missing, [], `ops not compared on webgpu: ${missing.join(", ")}`);
}
