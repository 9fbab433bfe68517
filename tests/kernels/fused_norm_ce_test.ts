/**
 * The fused layerNorm and crossEntropy kernels against the composed chains they replace (forward and
 * gradients, within rounding), their CPU fast paths against the reference loops (bit for bit), the kernel-path
 * VJP against the createGraph one, and one kernel call per direction.
 */
import assert from "node:assert/strict";
import {
  crossEntropy,
  type CrossEntropyOptions,
  gather,
  Generator,
  gradients,
  layerNorm,
  logSoftmax,
  profile,
  randn,
  type Tensor,
  tensor,
  where,
} from "../../mod.ts";
import { withFast } from "../helpers/cpu_options.ts";
import type { FloatDType } from "../../core/dtype.ts";

/** The chain nn.LayerNorm ran before the fused op. */
function composedLayerNorm(x: Tensor, w: Tensor | null, b: Tensor | null, eps: number): Tensor {
  const centered = x.sub(x.mean(-1, true));
  let y = centered.mul(centered.square().mean(-1, true).add(eps).rsqrt());
  if (w) y = y.mul(w);
  if (b) y = y.add(b);
  return y;
}

/** The chain crossEntropy ran before the fused op. */
function composedCrossEntropy(logits: Tensor, targets: Tensor, o: CrossEntropyOptions = {}): Tensor {
  const { ignoreIndex = -100, labelSmoothing = 0, reduction = "mean" } = o;
  const keep = targets.ne(ignoreIndex);
  const logp = logSoftmax(logits, -1);
  let loss = gather(logp, -1, where(keep, targets, 0).unsqueeze(-1)).squeeze(-1).neg();
  if (labelSmoothing > 0) loss = loss.mul(1 - labelSmoothing).sub(logp.mean(-1).mul(labelSmoothing));
  loss = where(keep, loss, 0);
  if (reduction === "none") return loss;
  if (reduction === "sum") return loss.sum();
  return loss.sum().div(keep.astype(logits.dtype).sum());
}

/** Output values and the gradients of Σ out ⊙ w (w fixed) in every input. */
function valueAndGrads(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], seed: number): Float64Array[] {
  const leaves = inputs.map((t) => t.detach().requiresGrad_());
  const y = fn(...leaves);
  const w = randn(y.shape, { dtype: y.dtype as FloatDType, generator: new Generator(seed) });
  return [y, ...gradients(y.mul(w).sum(), leaves)].map((t) => Float64Array.from(t.dataSync()));
}

function assertClose(a: Float64Array[], b: Float64Array[], tol: number, what: string): void {
  assert.equal(a.length, b.length);
  a.forEach((xs, k) => {
    assert.equal(xs.length, b[k].length, `${what} [${k}] length`);
    xs.forEach((v, i) => {
      const e = b[k][i];
      assert.ok(Math.abs(v - e) <= tol * (1 + Math.abs(e)), `${what} [${k}][${i}]: ${v} vs ${e}`);
    });
  });
}

const LN_CASES: [string, number[], boolean, boolean][] = [
  ["weight and bias", [6, 33], true, true],
  ["weight only", [2, 3, 8], true, false],
  ["bias only", [5, 4], false, true],
  ["neither", [7, 16], false, false],
];

function lnInputs(dtype: FloatDType, shape: number[], hasW: boolean, hasB: boolean, seed: number): Tensor[] {
  const d = shape[shape.length - 1];
  const x = randn(shape, { dtype, generator: new Generator(seed) }).mul(2).add(0.5);
  return [
    x,
    ...(hasW ? [randn([d], { dtype, generator: new Generator(seed + 1) })] : []),
    ...(hasB ? [randn([d], { dtype, generator: new Generator(2) })] : []),
  ];
}

/** Runs `f(x, weight, bias)` from the inputs list built by lnInputs. */
const lnCall = (hasW: boolean, f: (x: Tensor, w: Tensor | null, b: Tensor | null) => Tensor) => (...xs: Tensor[]) =>
  f(xs[0], hasW ? xs[1] : null, hasW ? xs[2] ?? null : xs[1] ?? null);

Deno.test("layerNorm: the fused op equals the composed chain within rounding (f64 1e-12, f32 1e-5)", () => {
  for (const dtype of ["f64", "f32"] as const) {
    for (const [k, [name, shape, hasW, hasB]] of LN_CASES.entries()) {
      const inputs = lnInputs(dtype, shape, hasW, hasB, 10 + k);
      const fused = valueAndGrads(lnCall(hasW, (x, w, b) => layerNorm(x, { weight: w, bias: b })), inputs, 90);
      const chain = valueAndGrads(lnCall(hasW, (x, w, b) => composedLayerNorm(x, w, b, 1e-5)), inputs, 90);
      assertClose(fused, chain, dtype === "f64" ? 1e-12 : 1e-5, `${dtype} ${name}`);
    }
  }
});

Deno.test("layerNorm: CPU fast path and reference loop agree bit for bit, forward and backward", () => {
  for (const dtype of ["f64", "f32"] as const) {
    for (const [k, [name, shape, hasW, hasB]] of LN_CASES.entries()) {
      const inputs = lnInputs(dtype, shape, hasW, hasB, 20 + k);
      const run = () => valueAndGrads(lnCall(hasW, (x, w, b) => layerNorm(x, { weight: w, bias: b })), inputs, 91);
      assert.deepEqual(withFast(true, run), withFast(false, run), `${dtype} ${name}`);
    }
  }
});

Deno.test("layerNorm: statistics as PyTorch (biased variance, eps inside the square root)", async () => {
  // Row [1, 2, 3, 6]: mean 3, biased variance (4 + 1 + 0 + 9) / 4 = 3.5.
  const eps = 0.25, s = 1 / Math.sqrt(3.5 + eps);
  const y = await layerNorm(tensor([[1, 2, 3, 6]], { dtype: "f64" }), { eps }).data();
  assert.deepEqual([...y], [-2, -1, 0, 3].map((c) => c * s));
});

Deno.test("layerNorm and crossEntropy: the kernel backward equals the createGraph (composed) backward", () => {
  const x = randn([4, 9], { dtype: "f64", generator: new Generator(5) }).requiresGrad_();
  const w = randn([9], { dtype: "f64", generator: new Generator(6) }).requiresGrad_(),
    b = randn([9], { dtype: "f64", generator: new Generator(7) });
  const targets = tensor([3, -100, 8, 0], { dtype: "i32" });
  const f = () => layerNorm(x, { weight: w, bias: b }).sin().sum().add(crossEntropy(x.mul(1.3), targets));
  const plain = gradients(f(), [x, w]).map((t) => Float64Array.from(t.dataSync()));
  const graph = gradients(f(), [x, w], undefined, { createGraph: true }).map((t) => Float64Array.from(t.dataSync()));
  assertClose(plain, graph, 1e-12, "kernel vs composed VJP");
});

Deno.test("layerNorm and crossEntropy: one kernel call each, forward and backward", () => {
  const x = randn([4, 8], { generator: new Generator(8) }).requiresGrad_(),
    w = randn([8]).requiresGrad_(),
    b = randn([8]).requiresGrad_();
  const { table } = profile(() => {
    const loss = crossEntropy(layerNorm(x, { weight: w, bias: b }), tensor([1, 2, 3, 4], { dtype: "i32" }));
    loss.backward();
  });
  const calls = (kernel: string) => table.rows.filter((r) => r.kernel === kernel).reduce((s, r) => s + r.calls, 0);
  for (const k of ["layerNorm", "layerNormBackward", "crossEntropy", "crossEntropyBackward"]) {
    assert.equal(calls(k), 1, k);
  }
  assert.equal(calls("softmax"), 0);
  assert.equal(calls("gather") + calls("scatterAdd"), 0);
});

const CE_CASES: [string, number[], number[], CrossEntropyOptions][] = [
  ["mean, one ignored", [5, 7], [1, -100, 6, 0, 2], {}],
  ["sum", [5, 7], [1, -100, 6, 0, 2], { reduction: "sum" }],
  ["none", [5, 7], [1, -100, 6, 0, 2], { reduction: "none" }],
  ["ignoreIndex 2, [B, T, C]", [2, 3, 7], [2, 0, 2, 1, 6, 5], { ignoreIndex: 2 }],
  ["label smoothing 0.1", [5, 7], [1, -100, 6, 0, 2], { labelSmoothing: 0.1 }],
  ["label smoothing 1, none", [5, 7], [1, -100, 6, 0, 2], { labelSmoothing: 1, reduction: "none" }],
];

Deno.test("crossEntropy: the fused op equals the composed chain (f32 forward without smoothing bit for bit)", () => {
  for (const dtype of ["f64", "f32"] as const) {
    for (const [k, [name, shape, tg, opts]] of CE_CASES.entries()) {
      const logits = randn(shape, { dtype, generator: new Generator(40 + k) }).mul(3);
      const targets = tensor(tg, { dtype: "i32" }).reshape(shape.slice(0, -1));
      const fused = valueAndGrads((x) => crossEntropy(x, targets, opts), [logits], 92);
      const chain = valueAndGrads((x) => composedCrossEntropy(x, targets, opts), [logits], 92);
      assertClose(fused, chain, dtype === "f64" ? 1e-12 : 1e-5, `${dtype} ${name}`);
      if (!opts.labelSmoothing) assert.deepEqual(fused[0], chain[0], `${dtype} ${name}: forward bit for bit`);
    }
  }
});

Deno.test("crossEntropy: −∞ logits get probability 0; an ignored row gets gradient exactly 0", () => {
  const x = tensor([[0, -Infinity, 1], [5, 5, 5]]).requiresGrad_();
  const loss = crossEntropy(x, tensor([2, -100], { dtype: "i32" }));
  loss.backward();
  const g = [...x.grad!.dataSync()];
  assert.equal(g[1], 0);
  assert.deepEqual(g.slice(3), [0, 0, 0]);
  assert.ok(Math.abs(loss.dataSync()[0] - Math.log(1 + Math.E ** -1)) < 1e-6);
});
