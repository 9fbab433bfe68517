/**
 * The fused elementwise ops are bit-identical, on the CPU, to the chains of ops they replace: biasAct to
 * add-then-activation, actGrad to the VJP chains the activations used before (written out here with public
 * ops), on every CPU path (reference loops, fast loops, WebAssembly) and for f32 and f64; and the MoE
 * experts and FFN that use them give the same outputs and gradients as the unfused layer.
 */
import assert from "node:assert/strict";
import {
  actGrad,
  add,
  biasAct,
  erf,
  exp,
  FFN,
  FfnExperts,
  type FusedActivation,
  gelu,
  Generator,
  gradients,
  mul,
  randn,
  relu,
  setCpuOptions,
  sigmoid,
  silu,
  sub,
  tanh,
  type Tensor,
  tensor,
  where,
} from "../../mod.ts";

const ACTS: FusedActivation[] = ["gelu", "gelu_tanh", "silu", "relu"];

const PATHS = [
  { name: "fast+wasm", opts: { fastKernels: true, wasm: true } },
  { name: "fast", opts: { fastKernels: true, wasm: false } },
  { name: "reference", opts: { fastKernels: false, wasm: false } },
];

function onPath<T>(opts: { fastKernels: boolean; wasm: boolean }, fn: () => T): T {
  const prev = setCpuOptions(opts);
  try {
    return fn();
  } finally {
    setCpuOptions(prev);
  }
}

function activation(act: FusedActivation, z: Tensor): Tensor {
  return act === "gelu" ? gelu(z) : act === "gelu_tanh" ? gelu(z, "tanh") : act === "silu" ? silu(z) : relu(z);
}

/** The VJP chains of core/ops/unary.ts before the fused kernel (45cb2c4), op by op. */
function oldActGrad(act: FusedActivation, x: Tensor, g: Tensor): Tensor {
  switch (act) {
    case "gelu": {
      const cdf = add(erf(x.mul(Math.SQRT1_2)), 1).mul(0.5);
      const pdf = exp(x.mul(x).mul(-0.5)).mul(1 / Math.sqrt(2 * Math.PI));
      return mul(g, cdf.add(x.mul(pdf)));
    }
    case "gelu_tanh": {
      const k = Math.sqrt(2 / Math.PI);
      const x2 = x.mul(x);
      const t = tanh(x.add(x2.mul(x).mul(0.044715)).mul(k));
      const du = add(1, x2.mul(3 * 0.044715)).mul(k);
      const dy = add(t, 1).mul(0.5).add(x.mul(0.5).mul(sub(1, t.mul(t))).mul(du));
      return mul(g, dy);
    }
    case "silu": {
      const s = sigmoid(x);
      return mul(g, s.mul(add(1, x.mul(sub(1, s)))));
    }
    case "relu":
      return where(x.gt(0), g, 0);
  }
}

/** Random values with specials (0, ±∞, NaN, large) mixed in. */
function sample(shape: number[], seed: number, dtype: "f32" | "f64"): Tensor {
  const t = randn(shape, { generator: new Generator(seed), dtype }).mul(2.5);
  const data = t.dataSync();
  const specials = [0, -0, Infinity, -Infinity, NaN, 40, -40, 7, -7];
  for (let i = 0; i < specials.length; i++) data[i * 7] = specials[i];
  return tensor(data, { dtype, shape });
}

function assertSameBits(got: Tensor, want: Tensor, what: string): void {
  const a = got.dataSync(), b = want.dataSync();
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) assert.fail(`${what}: element ${i} is ${a[i]}, unfused ${b[i]}`);
  }
}

Deno.test("biasAct and actGrad are bit-identical to the unfused chains on every CPU path", () => {
  for (const dtype of ["f32", "f64"] as const) {
    const x = sample([5, 7, 33], 1, dtype), b = sample([5, 1, 33], 2, dtype), g = sample([5, 7, 33], 3, dtype);
    for (const { name, opts } of PATHS) {
      onPath(opts, () => {
        for (const act of ACTS) {
          const what = `${act} ${dtype} ${name}`;
          const z = add(x, b);
          assertSameBits(biasAct(x, b, act), activation(act, z), `biasAct ${what}`);
          assertSameBits(actGrad(z, g, act), oldActGrad(act, z, g), `actGrad ${what}`);
          assertSameBits(actGrad(x, g, act, b), oldActGrad(act, z, g), `actGrad with bias ${what}`);
        }
      });
    }
  }
});

Deno.test("the activations' VJPs (now actGrad) give the old chains' gradients bit for bit", () => {
  const x = sample([4, 50], 4, "f32"), g = sample([4, 50], 5, "f32");
  for (const act of ACTS) {
    const leaf = x.detach().requiresGrad_();
    const [dx] = gradients(activation(act, leaf), [leaf], [g]);
    assertSameBits(dx, oldActGrad(act, x, g), act);
  }
});

Deno.test("FfnExperts and FFN with biasAct match the unfused layer: outputs and every gradient, bit for bit", () => {
  for (const activation of ["gelu", "relu"] as const) {
    const experts = new FfnExperts(3, 8, 16, { generator: new Generator(7), activation });
    const x = randn([3, 5, 8], { generator: new Generator(8) }).requiresGrad_();
    const params = [x, experts.w1, experts.b1, experts.w2, experts.b2];
    const fused = experts.run(x);
    const a = x.matmul(experts.w1).add(experts.b1.unsqueeze(1));
    const unfused = (activation === "gelu" ? gelu(a) : relu(a)).matmul(experts.w2).add(experts.b2.unsqueeze(1));
    assertSameBits(fused, unfused, `experts ${activation} forward`);
    const w = randn(fused.shape, { generator: new Generator(9) });
    const gf = gradients(fused.mul(w).sum(), params), gu = gradients(unfused.mul(w).sum(), params);
    gf.forEach((t, i) => assertSameBits(t, gu[i], `experts ${activation} gradient ${i}`));

    const ffn = new FFN(8, 16, { generator: new Generator(10), activation });
    const y = ffn.forward(x);
    const h = x.matmul(ffn.fc1.weight).add(ffn.fc1.bias!);
    const yu = ffn.fc2.forward(activation === "gelu" ? gelu(h) : relu(h));
    assertSameBits(y, yu, `FFN ${activation} forward`);
  }
});

Deno.test("biasAct and actGrad validate their arguments", () => {
  const x = tensor([[1, 2]]);
  assert.throws(() => biasAct(x, tensor([1, 2, 3]), "gelu"), /biasAct/);
  assert.throws(() => biasAct(x, tensor([[1], [2]]), "gelu"), /broadcast to x's shape/);
  assert.throws(() => biasAct(x, 1, "tanh" as FusedActivation), /act must be one of/);
  assert.throws(() => actGrad(x, tensor([1, 2]), "relu"), /must have x's shape/);
  assert.throws(() => biasAct(tensor([1], { dtype: "i32" }), 1, "relu"), /float/);
});
