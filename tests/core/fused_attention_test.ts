/**
 * The fused attention ops equal, bit for bit on the CPU, the chains they replace (written out here with
 * primitive ops, as `applyRope` and `scaledDotProductAttention` computed them before): rotaryEmbedding to
 * narrow/neg/concat/mul/add, scaledMaskedSoftmax to mul/where/softmax/where — forward values and gradients,
 * for f32 and f64, on every CPU path (reference loops, fast loops, WebAssembly) and for 1, 2 and 3 threads
 * (every job split). Masks: none, causal, a random mask with fully masked rows, a broadcast padding mask,
 * and causal with a mask.
 */
import assert from "node:assert/strict";
import {
  concat,
  gradients,
  randn,
  rotaryEmbedding,
  scaledMaskedSoftmax,
  setCpuOptions,
  type Tensor,
  tensor,
} from "../../mod.ts";
import { Generator, rand } from "../../mod.ts";
import { causalMask } from "../../nn/mod.ts";
import { setThreadMinimums } from "../../kernels/cpu/threads/pool.ts";

const PATHS = [
  { name: "fast+wasm", opts: { fastKernels: true, wasm: true } },
  { name: "fast", opts: { fastKernels: true, wasm: false } },
  { name: "reference", opts: { fastKernels: false, wasm: false } },
];

/** Runs `fn` on a CPU path with `threads` threads and every row job split. */
function under<T>(opts: { fastKernels: boolean; wasm: boolean }, threads: number, fn: () => T): T {
  const prev = setCpuOptions({ ...opts, threads });
  const minimums = setThreadMinimums({ softmax: 1, rows: 1, sum: 1, elementwiseJs: 1, gather: 1, elementwiseSimd: 1 });
  try {
    return fn();
  } finally {
    setThreadMinimums(minimums);
    setCpuOptions(prev);
  }
}

/** Asserts equal bits (NaN payloads aside), signs of zero included. */
function sameBits(got: Tensor, want: Tensor, what: string): void {
  assert.deepEqual(got.shape, want.shape, `${what}: shape`);
  const a = got.dataSync(), b = want.dataSync();
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(a[i]) && Number.isNaN(b[i])) continue;
    assert.ok(Object.is(a[i], b[i]), `${what}[${i}]: fused ${a[i]} vs chain ${b[i]}`);
  }
}

/** Rotate-half RoPE as `applyRope` composed it before the fused op. */
function oldRope(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  const h = x.shape[x.rank - 1] / 2;
  const full = (t: Tensor) => concat([t, t], -1);
  const rotated = concat([x.narrow(-1, h, h).neg(), x.narrow(-1, 0, h)], -1);
  return x.mul(full(cos)).add(rotated.mul(full(sin)));
}

/** Attention's scale, mask and softmax as `scaledDotProductAttention` composed them before the fused op. */
function oldMaskedSoftmax(x: Tensor, scale: number, mask: Tensor | null): Tensor {
  let s = x.mul(scale);
  if (mask) s = s.where(mask, -Infinity);
  let p = s.softmax(-1);
  if (mask) p = p.where(mask.astype(x.dtype).max(-1, true).gt(0), 0);
  return p;
}

function tables(t: number, h: number, dtype: "f32" | "f64"): [Tensor, Tensor] {
  const cos = new Float64Array(t * h), sin = new Float64Array(t * h);
  for (let i = 0; i < t * h; i++) {
    const angle = Math.floor(i / h) * Math.pow(10000, -2 * (i % h) / (2 * h));
    [cos[i], sin[i]] = [Math.cos(angle), Math.sin(angle)];
  }
  return [tensor(cos, { shape: [t, h], dtype }), tensor(sin, { shape: [t, h], dtype })];
}

/** Forward and gradient (of Σ out ⊙ w) of `fn` at x. */
function valueAndGrad(fn: (x: Tensor) => Tensor, x: Tensor, seed: number): [Tensor, Tensor] {
  const xv = x.detach().requiresGrad_();
  const y = fn(xv);
  const w = randn(y.shape, { dtype: x.dtype, generator: new Generator(seed) });
  const [g] = gradients(y.mul(w).sum(), [xv]);
  return [y, g];
}

/** A key padding mask [B, 1, 1, Tk]: batch 0 may attend to keys below `keep`, the others to none. */
function padding(b: number, tk: number, keep: number): Tensor {
  const data = Array.from({ length: b * tk }, (_, i) => i < tk && i < keep);
  return tensor(data, { shape: [b, 1, 1, tk], dtype: "bool" });
}

for (const dtype of ["f32", "f64"] as const) {
  Deno.test(`rotaryEmbedding equals the composed RoPE chain bit for bit (${dtype})`, () => {
    for (const path of PATHS) {
      for (const threads of [1, 2, 3]) {
        under(path.opts, threads, () => {
          for (const [k, shape] of [[2, 3, 5, 8], [7, 6], [1, 4, 2]].entries()) {
            const t = shape[shape.length - 2], h = shape[shape.length - 1] / 2;
            const x = randn(shape, { dtype, generator: new Generator(10 + k) }).mul(3);
            const [cos, sin] = tables(t, h, dtype);
            const [y, g] = valueAndGrad((v) => rotaryEmbedding(v, cos, sin), x, 20 + k);
            const [y0, g0] = valueAndGrad((v) => oldRope(v, cos, sin), x, 20 + k);
            const what = `${path.name} ${threads} threads [${shape}]`;
            sameBits(y, y0, `${what} forward`);
            // The chain sums three gradients (one of them 0) where the kernel adds two: equal values (=== ),
            // and the signs of zeros may differ.
            const [a, b] = [g.dataSync(), g0.dataSync()];
            a.forEach((v, i) => assert.ok(v === b[i], `${what} gradient[${i}]: ${v} vs ${b[i]}`));
          }
        });
      }
    }
  });

  Deno.test(`scaledMaskedSoftmax equals the composed masked softmax chain bit for bit (${dtype})`, () => {
    const [b, heads, tq, tk] = [2, 3, 20, 40]; // causal prefixes of 1 to 20 keys: short rows and SIMD-long ones
    const masks: [string, (x: Tensor) => Tensor | null, boolean][] = [
      ["no mask", () => null, false],
      ["causal", () => null, true],
      // About one key in five allowed: several rows have none.
      ["random mask", (x) => rand(x.shape, { generator: new Generator(3) }).lt(0.06), false],
      // Batch 0 attends to its first 30 keys, batch 1 to none (every row of it fully masked).
      ["padding [B, 1, 1, Tk]", () => padding(b, tk, 30), false],
      ["causal and a mask [Tq, Tk]", () => rand([tq, tk], { generator: new Generator(4) }).lt(0.5), true],
    ];
    for (const path of PATHS) {
      for (const threads of [1, 2, 3]) {
        under(path.opts, threads, () => {
          for (const [k, [name, makeMask, causal]] of masks.entries()) {
            const x = randn([b, heads, tq, tk], { dtype, generator: new Generator(30 + k) }).mul(4);
            const mask = makeMask(x);
            const scale = 1 / Math.sqrt(7);
            const chainMask = causal ? (mask ? mask.logicalAnd(causalMask(tq, tk)) : causalMask(tq, tk)) : mask;
            const [y, g] = valueAndGrad((v) => scaledMaskedSoftmax(v, { scale, mask, causal }), x, 40 + k);
            const [y0, g0] = valueAndGrad((v) => oldMaskedSoftmax(v, scale, chainMask), x, 40 + k);
            const what = `${path.name} ${threads} threads, ${name}`;
            sameBits(y, y0, `${what} forward`);
            sameBits(g, g0, `${what} gradient`);
          }
        });
      }
    }
  });
}

Deno.test("scaledMaskedSoftmax and rotaryEmbedding reject bad arguments with a clear message", () => {
  const x = randn([2, 3, 4]);
  assert.throws(() => scaledMaskedSoftmax(x, { mask: tensor([1, 0, 1, 0]) }), /mask must have dtype bool/);
  assert.throws(
    () => scaledMaskedSoftmax(x, { mask: tensor([true, false], { dtype: "bool" }).reshape(2, 1, 1, 1) }),
    /must broadcast to the scores' shape/,
  );
  assert.throws(() => scaledMaskedSoftmax(randn([4]), { causal: true }), /causal/);
  assert.throws(() => rotaryEmbedding(randn([3, 5]), randn([3, 2]), randn([3, 2])), /even/);
  assert.throws(() => rotaryEmbedding(x, randn([3, 2]), randn([3, 3])), /sin must be f32 \[3, 2\]/);
});
