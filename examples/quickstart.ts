import { AdamW, crossEntropy, Generator, grad, MoELayer, randint, randn, scope, tensor } from "@moegrad/moegrad";

// Tensors and autograd (PyTorch-style tape, JAX-style function transforms).
const x = tensor([[1, 2], [3, 4]]).requiresGrad_();
x.matmul(x).sum().backward();
console.log(x.grad!.toString()); // d/dx Σ(x·x)
const dsin = grad((t) => t.sin().sum());
console.log(dsin(tensor([0, Math.PI])).toString()); // cos: [1, -1]

// A MoE layer with SparseMixer routing: 8 experts, top-1, output scale ω.
const gen = new Generator(0);
const moe = new MoELayer(32, { numExperts: 8, estimator: "sparsemixer", outputScale: true, generator: gen });
const head = randn([32, 10], { generator: gen }).requiresGrad_();
const opt = new AdamW([...moe.namedParameters(), ["head", head]], { lr: 1e-3 });

// Three training steps on random data. scope() frees what a step creates as soon as it ends, except what it
// returns: optional on the CPU (garbage collection also frees it), but it keeps GPU memory flat on WebGPU.
const inputs = randn([64, 32], { generator: gen });
const labels = randint(0, 10, [64], { generator: gen });
for (let step = 0; step < 3; step++) {
  const [loss, load] = scope(() => {
    const loss = crossEntropy(moe.forward(inputs).matmul(head), labels);
    loss.backward();
    return [loss, moe.lastMetrics!.load];
  });
  opt.step();
  opt.zeroGrad();
  const shares = Array.from(await load.data(), (f) => f.toFixed(2));
  console.log(`step ${step}: loss ${(await loss.item()).toFixed(4)}, expert load ${shares.join(" ")}`);
}
