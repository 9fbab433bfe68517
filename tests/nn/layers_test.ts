/**
 * nn/layers: forward values against hand-written formulas, f64 finite-difference gradients (inputs through
 * tests/helpers/gradcheck.ts, parameters by perturbing them in place), masking and RoPE properties, the
 * transformer models' shapes and gradient flow, and a CPU/WebGPU parity check of a small DecoderLM.
 */
import assert from "node:assert/strict";
import {
  cpu,
  crossEntropy,
  Device,
  type DType,
  Generator,
  noGrad,
  ones,
  randint,
  randn,
  type Tensor,
  tensor,
} from "../../mod.ts";
import { type Backend, webGpuBackend } from "../../internals.ts";
import {
  applyRope,
  DecoderLM,
  Dropout,
  Embedding,
  EncoderDecoder,
  FFN,
  GLU,
  LayerNorm,
  Linear,
  Module,
  MultiHeadAttention,
  RMSNorm,
  TransformerBlock,
} from "../../nn/mod.ts";
import { gradcheck } from "../helpers/gradcheck.ts";
import { gpuTest, testRuntime } from "../helpers/webgpu.ts";

// ---- helpers ---------------------------------------------------------------------------------------------

const vals = (t: Tensor): number[] => Array.from(t.dataSync());
const f64 = (shape: number[], seed: number, scale = 1) =>
  randn(shape, { dtype: "f64", generator: new Generator(seed) }).mul(scale);

function allClose(got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    const ok = Math.abs(got[i] - want[i]) <= atol + rtol * Math.abs(want[i]);
    assert.ok(ok, `${what}[${i}]: got ${got[i]}, want ${want[i]}`);
  }
}

/** Gives every parameter of `m` random values (so affine parts and biases are not trivial). */
function randomize(m: Module, seed: number, scale = 0.5): void {
  const g = new Generator(seed);
  const state = Object.fromEntries(
    m.namedParameters().map(([k, p]) => [
      k,
      randn(p.shape, { dtype: p.dtype, generator: g }).mul(scale).add(
        k.endsWith("weight") && p.rank === 1 ? 1 : 0,
      ),
    ]),
  );
  m.loadStateDict(state, { strict: false });
}

/**
 * Checks the parameter gradients of L = Σ f() ⊙ W against central differences, perturbing each parameter
 * element in place (f64 modules).
 */
function paramGradcheck(m: Module, f: () => Tensor, name: string, atol = 1e-6, rtol = 1e-5, h = 1e-6): void {
  const params = m.parameters();
  for (const p of params) p.grad = null;
  const out = f();
  const w = randn(out.shape, { dtype: "f64", generator: new Generator(4321) });
  out.mul(w).sum().backward();
  const loss = () => noGrad(() => f().mul(w).sum().dataSync()[0]);
  m.namedParameters().forEach(([pname, p]) => {
    assert.ok(p.grad, `${name}: ${pname} got no gradient`);
    const analytic = vals(p.grad);
    const base = Float64Array.from(p.dataSync());
    const set = (arr: Float64Array) => noGrad(() => p.assign_(tensor(arr, { dtype: "f64", shape: p.shape })));
    for (let j = 0; j < base.length; j++) {
      const arr = base.slice();
      arr[j] = base[j] + h;
      set(arr);
      const lp = loss();
      arr[j] = base[j] - h;
      set(arr);
      const lm = loss();
      const numeric = (lp - lm) / (2 * h);
      assert.ok(
        Math.abs(analytic[j] - numeric) <= atol + rtol * Math.abs(numeric),
        `${name}: d/d ${pname}[${j}] analytic ${analytic[j]} vs numeric ${numeric}`,
      );
    }
    set(base);
  });
}

// ---- Linear, Embedding, Dropout --------------------------------------------------------------------------

Deno.test("Linear: weight [in, out], forward = x·W + b, PyTorch's init bounds", () => {
  const fc = new Linear(3, 2, { generator: new Generator(1) });
  assert.deepEqual(fc.weight.shape, [3, 2]);
  assert.deepEqual(fc.namedParameters().map(([n]) => n), ["weight", "bias"]);
  fc.loadStateDict({ weight: tensor([[1, 2], [3, 4], [5, 6]]), bias: tensor([0.5, -1]) });
  assert.deepEqual(vals(fc.forward(tensor([[1, 0, -1], [2, 1, 0]]))), [1 - 5 + 0.5, 2 - 6 - 1, 2 + 3 + 0.5, 4 + 4 - 1]);
  assert.deepEqual(fc.forward(randn([2, 4, 5, 3])).shape, [2, 4, 5, 2]);
  const big = new Linear(400, 50, { generator: new Generator(2) });
  const w = vals(big.weight), b = vals(big.bias!);
  assert.ok([...w, ...b].every((v) => Math.abs(v) <= 1 / 20));
  assert.ok(Math.max(...w) > 0.049);
  const noBias = new Linear(3, 2, { bias: false });
  assert.equal(noBias.bias, null);
  assert.deepEqual(noBias.namedParameters().map(([n]) => n), ["weight"]);
  assert.throws(() => new Linear(0, 2), /inFeatures must be a positive integer/);
});

Deno.test("Linear: f64 gradients (input and parameters) match finite differences", () => {
  const fc = new Linear(4, 3, { dtype: "f64", generator: new Generator(3) });
  const x = f64([2, 5, 4], 4);
  gradcheck((t) => fc.forward(t), [x], { name: "Linear input" });
  paramGradcheck(fc, () => fc.forward(x), "Linear");
});

Deno.test("Embedding: rows of the table, gradient accumulates repeated ids", () => {
  const emb = new Embedding(5, 3, { generator: new Generator(5), std: 0.5 });
  const ids = tensor([[4, 0], [4, 2]], { dtype: "i32" });
  const out = emb.forward(ids);
  assert.deepEqual(out.shape, [2, 2, 3]);
  const table = vals(emb.weight);
  assert.deepEqual(vals(out), [4, 0, 4, 2].flatMap((i) => table.slice(3 * i, 3 * i + 3)));
  out.sum().backward();
  assert.deepEqual(vals(emb.weight.grad!), [1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 2, 2, 2]);
});

Deno.test("Dropout: seeded masks in training, identity in eval", () => {
  const x = ones([1000]);
  const a = vals(new Dropout(0.3, { generator: new Generator(7) }).forward(x));
  const b = vals(new Dropout(0.3, { generator: new Generator(7) }).forward(x));
  assert.deepEqual(a, b);
  assert.ok(a.every((v) => v === 0 || Math.abs(v - 1 / 0.7) < 1e-6));
  const kept = a.filter((v) => v !== 0).length;
  assert.ok(kept > 640 && kept < 760, `kept ${kept} of 1000 at p = 0.3`);
  const d = new Dropout(0.3).eval();
  assert.equal(d.forward(x), x);
  assert.throws(() => new Dropout(1.5), /p must be in \[0, 1\]/);
});

// ---- norms -----------------------------------------------------------------------------------------------

Deno.test("LayerNorm / RMSNorm: values against the formulas", () => {
  const rows = [[1, 2, 3, 6], [-1, 0.5, 0, 4]];
  const x = tensor(rows, { dtype: "f64" });
  const ln = new LayerNorm(4, { dtype: "f64", eps: 1e-5 });
  const rms = new RMSNorm(4, { dtype: "f64" });
  randomize(ln, 8);
  randomize(rms, 9);
  const [gw, gb, rw] = [vals(ln.weight!), vals(ln.bias!), vals(rms.weight!)];
  const wantLn: number[] = [], wantRms: number[] = [];
  for (const r of rows) {
    const mean = r.reduce((a, b) => a + b) / 4;
    const variance = r.reduce((a, b) => a + (b - mean) ** 2, 0) / 4;
    const ms = r.reduce((a, b) => a + b * b, 0) / 4;
    r.forEach((v, i) => {
      wantLn.push(((v - mean) / Math.sqrt(variance + 1e-5)) * gw[i] + gb[i]);
      wantRms.push((v / Math.sqrt(ms + 1e-6)) * rw[i]);
    });
  }
  allClose(vals(ln.forward(x)), wantLn, 1e-12, 1e-12, "LayerNorm");
  allClose(vals(rms.forward(x)), wantRms, 1e-12, 1e-12, "RMSNorm");
  const plain = new LayerNorm(4, { affine: false });
  assert.deepEqual(plain.namedParameters(), []);
  assert.deepEqual(new LayerNorm(4, { bias: false }).namedParameters().map(([n]) => n), ["weight"]);
  assert.throws(() => ln.forward(f64([2, 3], 1)), /expected an input of shape \[\.\.\., 4\], got \[2, 3\]/);
});

Deno.test("LayerNorm / RMSNorm: f64 gradients (input and parameters) match finite differences", () => {
  const x = f64([3, 5], 10, 2);
  const ln = new LayerNorm(5, { dtype: "f64" });
  randomize(ln, 11);
  gradcheck((t) => ln.forward(t), [x], { name: "LayerNorm input" });
  paramGradcheck(ln, () => ln.forward(x), "LayerNorm");
  const rms = new RMSNorm(5, { dtype: "f64" });
  randomize(rms, 12);
  gradcheck((t) => rms.forward(t), [x], { name: "RMSNorm input" });
  paramGradcheck(rms, () => rms.forward(x), "RMSNorm");
});

// ---- attention -------------------------------------------------------------------------------------------

interface RefOptions {
  causal?: boolean;
  pad?: boolean[][]; // [B][Tk], true = padding
  ropeBase?: number;
}

/** A plain-JS multi-head attention over the module's weights: one head, one query at a time. */
function referenceAttention(
  attn: MultiHeadAttention,
  x: Tensor,
  kv: Tensor,
  opts: RefOptions = {},
): number[] {
  const [bsz, tq, dim] = x.shape, [, tk, kvDim] = kv.shape;
  const { heads, headDim: hd } = attn;
  const proj = (inp: number[], lin: Linear, rows: number, inF: number): number[][] => {
    const w = vals(lin.weight), b = lin.bias ? vals(lin.bias) : null;
    return Array.from({ length: rows }, (_, r) =>
      Array.from({ length: dim }, (_, o) => {
        let s = b ? b[o] : 0;
        for (let i = 0; i < inF; i++) s += inp[r * inF + i] * w[i * dim + o];
        return s;
      }));
  };
  const rotate = (v: number[], pos: number): number[] => {
    if (opts.ropeBase === undefined) return v;
    const half = hd / 2, out = v.slice();
    for (let i = 0; i < half; i++) {
      const a = pos * Math.pow(opts.ropeBase, (-2 * i) / hd);
      out[i] = v[i] * Math.cos(a) - v[i + half] * Math.sin(a);
      out[i + half] = v[i + half] * Math.cos(a) + v[i] * Math.sin(a);
    }
    return out;
  };
  const q = proj(vals(x), attn.wq, bsz * tq, dim);
  const k = proj(vals(kv), attn.wk, bsz * tk, kvDim);
  const v = proj(vals(kv), attn.wv, bsz * tk, kvDim);
  const merged: number[] = [];
  for (let b = 0; b < bsz; b++) {
    for (let i = 0; i < tq; i++) {
      const row = new Array<number>(dim).fill(0);
      for (let h = 0; h < heads; h++) {
        const head = (m: number[][], r: number) => m[r].slice(h * hd, (h + 1) * hd);
        const qi = rotate(head(q, b * tq + i), i);
        const scores = Array.from({ length: tk }, (_, j) => {
          if ((opts.causal && j > i) || opts.pad?.[b][j]) return -Infinity;
          const kj = rotate(head(k, b * tk + j), j);
          return qi.reduce((s, qv, d) => s + qv * kj[d], 0) / Math.sqrt(hd);
        });
        const m = Math.max(...scores);
        const e = scores.map((s) => (s === -Infinity ? 0 : Math.exp(s - m)));
        const z = e.reduce((a, c) => a + c, 0);
        for (let j = 0; j < tk; j++) {
          if (e[j] === 0) continue;
          const vj = head(v, b * tk + j);
          for (let d = 0; d < hd; d++) row[h * hd + d] += (e[j] / z) * vj[d];
        }
      }
      merged.push(...row);
    }
  }
  return proj(merged, attn.wo, bsz * tq, dim).flat();
}

Deno.test("MultiHeadAttention: self-attention (causal, RoPE) matches a per-head loop", () => {
  const attn = new MultiHeadAttention(8, 2, { causal: true, rope: { base: 100 }, dtype: "f64" });
  randomize(attn, 20);
  const x = f64([2, 5, 8], 21);
  allClose(vals(attn.forward(x)), referenceAttention(attn, x, x, { causal: true, ropeBase: 100 }), 1e-12, 1e-10, "out");
  const plain = new MultiHeadAttention(8, 4, { dtype: "f64", bias: false });
  assert.equal(plain.wq.bias, null);
  allClose(vals(plain.forward(x)), referenceAttention(plain, x, x), 1e-12, 1e-10, "non-causal, no RoPE");
});

Deno.test("MultiHeadAttention: cross-attention with a key padding mask matches a per-head loop", () => {
  const attn = new MultiHeadAttention(6, 3, { kvDim: 4, dtype: "f64", generator: new Generator(22) });
  randomize(attn, 23);
  const x = f64([2, 3, 6], 24), mem = f64([2, 4, 4], 25);
  const pad = [[false, false, true, true], [false, false, false, false]];
  const out = attn.forward(x, mem, { keyPaddingMask: tensor(pad) });
  assert.deepEqual(out.shape, [2, 3, 6]);
  allClose(vals(out), referenceAttention(attn, x, mem, { pad }), 1e-12, 1e-10, "cross");
  // padded keys do not matter
  const mem2 = mem.add(tensor([[[0], [0], [5], [-7]], [[0], [0], [0], [0]]], { dtype: "f64" }));
  allClose(vals(attn.forward(x, mem2, { keyPaddingMask: tensor(pad) })), vals(out), 0, 0, "padded keys changed");
  // a query with every key padded outputs zeros from the attention (so only the output bias remains)
  const allPad = attn.forward(x, mem, { keyPaddingMask: tensor([[true, true, true, true], pad[1]]) });
  const first = vals(allPad).slice(0, 18), bias = vals(attn.wo.bias!);
  allClose(first, [0, 1, 2].flatMap(() => bias), 1e-12, 0, "fully padded row");
  assert.throws(
    () => attn.forward(x, mem, { keyPaddingMask: tensor([[true]]) }),
    /keyPaddingMask must be bool \[2, 4\]/,
  );
  assert.throws(() => new MultiHeadAttention(6, 4), /multiple of heads/);
  assert.throws(() => new MultiHeadAttention(6, 2, { rope: true }), /RoPE needs an even head width/);
});

Deno.test("MultiHeadAttention: f64 gradients (inputs and parameters) match finite differences", () => {
  const attn = new MultiHeadAttention(4, 2, { causal: true, rope: true, dtype: "f64" });
  randomize(attn, 30);
  const x = f64([2, 3, 4], 31);
  gradcheck((t) => attn.forward(t), [x], { name: "self-attention input" });
  paramGradcheck(attn, () => attn.forward(x), "self-attention");
  const cross = new MultiHeadAttention(4, 2, { dtype: "f64" });
  randomize(cross, 32);
  const pad = tensor([[false, true], [false, false]]);
  gradcheck((q, kv) => cross.forward(q, kv, { keyPaddingMask: pad }), [x, f64([2, 2, 4], 33)], {
    name: "cross-attention inputs",
  });
});

Deno.test("causal masking: changing a future token never changes earlier outputs", () => {
  const attn = new MultiHeadAttention(8, 2, { causal: true, rope: true, dtype: "f64" });
  randomize(attn, 40);
  const x = f64([1, 6, 8], 41);
  const base = vals(attn.forward(x));
  for (const t of [2, 5]) {
    const bump = Array.from({ length: 6 }, (_, i) => [i === t ? 3 : 0]);
    const changed = vals(attn.forward(x.add(tensor([bump], { dtype: "f64" }))));
    allClose(changed.slice(0, t * 8), base.slice(0, t * 8), 0, 0, `positions before ${t}`);
    assert.ok(changed.slice(t * 8).some((v, i) => v !== base[t * 8 + i]), `position ${t} must change`);
  }
});

// ---- RoPE ------------------------------------------------------------------------------------------------

Deno.test("RoPE: rotate-half formula, identity at position 0, norm preserving", () => {
  const x = f64([3, 4], 50);
  const out = vals(applyRope(x, { base: 10 }));
  const xs = vals(x);
  for (let p = 0; p < 3; p++) {
    for (let i = 0; i < 2; i++) {
      const a = p * Math.pow(10, -i / 2), [x1, x2] = [xs[p * 4 + i], xs[p * 4 + i + 2]];
      assert.ok(Math.abs(out[p * 4 + i] - (x1 * Math.cos(a) - x2 * Math.sin(a))) < 1e-14);
      assert.ok(Math.abs(out[p * 4 + i + 2] - (x2 * Math.cos(a) + x1 * Math.sin(a))) < 1e-14);
    }
  }
  allClose(out.slice(0, 4), xs.slice(0, 4), 0, 0, "position 0");
  const norms = (a: number[]) => [0, 1, 2].map((p) => Math.hypot(...a.slice(p * 4, p * 4 + 4)));
  allClose(norms(out), norms(xs), 1e-14, 0, "norms");
  assert.throws(() => applyRope(f64([2, 3], 1)), /headDim must be even/);
});

Deno.test("RoPE: scores depend only on the position difference", () => {
  const t = 7, hd = 8;
  const q = f64([1, hd], 51).reshape(1, hd).expand(t, hd), k = f64([1, hd], 52).expand(t, hd);
  const scores = (offset: number) => vals(applyRope(q, { offset }).matmul(applyRope(k, { offset }).transpose()));
  const s = scores(0);
  for (let i = 0; i + 1 < t; i++) {
    for (let j = 0; j + 1 < t; j++) {
      assert.ok(Math.abs(s[i * t + j] - s[(i + 1) * t + j + 1]) < 1e-12, `S[${i},${j}] vs S[${i + 1},${j + 1}]`);
    }
  }
  allClose(scores(13), s, 1e-12, 0, "shifting every position changes nothing");
  assert.ok(Math.abs(s[0 * t + 3] - s[3 * t + 0]) > 1e-6, "but the sign of the difference matters");
});

// ---- feed-forward ----------------------------------------------------------------------------------------

Deno.test("FFN / GLU: shapes, names and values against the manual formulas", () => {
  const x = f64([2, 3, 4], 60);
  const ffn = new FFN(4, 6, { activation: "relu", dtype: "f64" });
  randomize(ffn, 61);
  assert.deepEqual(ffn.namedParameters().map(([n]) => n), ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]);
  const lin = (inp: number[][], l: Linear) =>
    inp.map((r) =>
      Array.from({ length: l.outFeatures }, (_, o) => {
        const w = vals(l.weight), b = l.bias ? vals(l.bias) : null;
        return r.reduce((s, v, i) => s + v * w[i * l.outFeatures + o], b ? b[o] : 0);
      })
    );
  const rows = Array.from({ length: 6 }, (_, r) => vals(x).slice(r * 4, r * 4 + 4));
  const wantFfn = lin(lin(rows, ffn.fc1).map((r) => r.map((v) => Math.max(v, 0))), ffn.fc2).flat();
  const outFfn = ffn.forward(x);
  assert.deepEqual(outFfn.shape, [2, 3, 4]);
  allClose(vals(outFfn), wantFfn, 1e-12, 1e-12, "FFN relu");

  const glu = new GLU(4, 5, { dtype: "f64" });
  randomize(glu, 62);
  assert.deepEqual(glu.namedParameters().map(([n]) => n), ["gate.weight", "up.weight", "down.weight"]);
  const silu = (v: number) => v / (1 + Math.exp(-v));
  const g = lin(rows, glu.gate), u = lin(rows, glu.up);
  const wantGlu = lin(g.map((r, i) => r.map((v, j) => silu(v) * u[i][j])), glu.down).flat();
  allClose(vals(glu.forward(x)), wantGlu, 1e-12, 1e-12, "SwiGLU");

  // GELU variants against the composition of the same core ops
  const geglu = new GLU(4, 5, { activation: "gelu", bias: true, dtype: "f64" });
  const want = geglu.down.forward(geglu.gate.forward(x).gelu().mul(geglu.up.forward(x)));
  allClose(vals(geglu.forward(x)), vals(want), 0, 0, "GeGLU");
  const gffn = new FFN(4, 8, { dtype: "f64" });
  allClose(vals(gffn.forward(x)), vals(gffn.fc2.forward(gffn.fc1.forward(x).gelu())), 0, 0, "FFN gelu");
  assert.throws(() => new FFN(4, 8, { activation: "silu" as "gelu" }), /activation must be "gelu" or "relu"/);
});

// ---- transformer block -----------------------------------------------------------------------------------

/** A custom FFN slot: a learned scale, with an auxiliary loss (what a MoE layer will provide). */
class ScaleFFN extends Module {
  readonly scale: Tensor;
  #aux: Tensor | null = null;
  constructor(dim: number, dtype: DType = "f32") {
    super();
    this.scale = this.param("scale", ones([dim], { dtype }).mul(0.5));
  }
  forward(x: Tensor): Tensor {
    this.#aux = x.square().mean().mul(this.scale.sum());
    return x.mul(this.scale);
  }
  override auxLoss(): Tensor | null {
    return this.#aux;
  }
}

Deno.test("TransformerBlock: pre-LN residual formula with a custom FFN module and its aux loss", () => {
  const block = new TransformerBlock(8, 2, { ffn: new ScaleFFN(8, "f64"), causal: true, dtype: "f64" });
  randomize(block, 70);
  assert.deepEqual(block.namedParameters().map(([n]) => n).filter((n) => n.startsWith("ffn")), ["ffn.scale"]);
  assert.equal(block.auxLoss(), null);
  const x = f64([2, 4, 8], 71);
  const out = block.forward(x);
  const h = x.add(block.attn.forward(block.norm1.forward(x)));
  const want = h.add(block.ffn.forward(block.norm2.forward(h)));
  allClose(vals(out), vals(want), 1e-12, 1e-12, "block");
  const aux = block.auxLoss();
  assert.ok(aux);
  allClose(vals(aux), vals(block.norm2.forward(h).square().mean().mul(block.ffn.parameters()[0].sum())), 1e-12, 0, "");
  // the default FFN is a 4·dim GELU FFN; cross-attention needs memory
  const dflt = new TransformerBlock(8, 2, { crossAttention: true });
  assert.ok(dflt.ffn instanceof FFN && dflt.ffn.fc1.outFeatures === 32);
  assert.throws(() => dflt.forward(randn([1, 2, 8])), /pass \{ memory \}/);
  assert.deepEqual(dflt.forward(randn([1, 2, 8]), { memory: randn([1, 5, 8]) }).shape, [1, 2, 8]);
  assert.deepEqual(
    dflt.namedChildren().map(([n]) => n),
    ["norm1", "attn", "normCross", "cross", "norm2", "ffn", "drop"],
  );
});

// ---- models ----------------------------------------------------------------------------------------------

function checkAllGrads(m: Module, what: string): void {
  for (const [name, p] of m.namedParameters()) {
    assert.ok(p.grad, `${what}: no gradient reached ${name}`);
    assert.ok(vals(p.grad).some((v) => v !== 0), `${what}: zero gradient for ${name}`);
    assert.ok(vals(p.grad).every(Number.isFinite), `${what}: non-finite gradient for ${name}`);
  }
}

Deno.test("DecoderLM: logits shape, names, causal, backward reaches every parameter (learned positions)", () => {
  const lm = new DecoderLM(11, 8, 2, 2, { maxLen: 6, generator: new Generator(80) });
  const names = lm.namedParameters().map(([n]) => n);
  assert.ok(
    names.includes("blocks.1.attn.wq.weight") && names.includes("posEmb.weight") && names.includes("head.weight"),
  );
  const ids = randint(0, 11, [3, 6], { generator: new Generator(81) });
  const logits = lm.forward(ids);
  assert.deepEqual(logits.shape, [3, 6, 11]);
  crossEntropy(logits.slice(1, 0, -1), ids.slice(1, 1)).backward();
  checkAllGrads(lm, "DecoderLM");
  // changing the last token leaves every earlier position's logits unchanged
  const ids2 = ids.where(tensor([1, 1, 1, 1, 1, 0]).gt(0), 3); // the last token becomes 3
  const a = vals(logits), b = vals(lm.forward(ids2));
  for (let bi = 0; bi < 3; bi++) {
    const start = bi * 66;
    allClose(b.slice(start, start + 55), a.slice(start, start + 55), 0, 0, `batch ${bi} earlier positions`);
  }
  assert.throws(() => lm.forward(randint(0, 11, [1, 7])), /exceeds maxLen 6/);
});

Deno.test("DecoderLM: RoPE, tied embeddings, custom FFN factory with aux losses", async () => {
  const lm = new DecoderLM(13, 8, 3, 2, {
    rope: true,
    tieEmbeddings: true,
    norm: "rms",
    ffnFactory: (i) => (i === 1 ? new ScaleFFN(8) : new GLU(8, 16)),
    generator: new Generator(90),
  });
  const names = lm.namedParameters().map(([n]) => n);
  assert.ok(!names.some((n) => n.startsWith("posEmb") || n.startsWith("head")));
  assert.ok(names.includes("blocks.1.ffn.scale") && names.includes("blocks.2.ffn.gate.weight"));
  assert.equal(lm.head, null);
  const ids = randint(0, 13, [2, 5], { generator: new Generator(91) });
  const logits = lm.forward(ids);
  assert.deepEqual(logits.shape, [2, 5, 13]);
  const aux = lm.auxLoss()!;
  assert.equal(await aux.item(), await (lm.blocks.at(1).ffn.auxLoss()!).item());
  crossEntropy(logits, randint(0, 13, [2, 5], { generator: new Generator(92) })).add(aux).backward();
  checkAllGrads(lm, "DecoderLM (RoPE, tied)");
});

Deno.test("EncoderDecoder: logits shape, backward reaches every parameter, source padding is ignored", () => {
  const model = new EncoderDecoder(9, 10, 8, 2, 2, 2, { maxLen: 8, generator: new Generator(100) });
  const names = model.namedParameters().map(([n]) => n);
  assert.ok(names.includes("decoder.1.cross.wk.weight") && names.includes("encoder.0.attn.wo.bias"));
  assert.ok(!names.some((n) => n.startsWith("encoder") && n.includes("cross")));
  const src = randint(0, 9, [2, 7], { generator: new Generator(101) });
  const tgt = randint(0, 10, [2, 6], { generator: new Generator(102) });
  const pad = tensor([[false, false, false, false, false, true, true], new Array(7).fill(false)]);
  const logits = model.forward(src, tgt.slice(1, 0, -1), { srcPaddingMask: pad });
  assert.deepEqual(logits.shape, [2, 5, 10]);
  crossEntropy(logits, tgt.slice(1, 1)).backward();
  checkAllGrads(model, "EncoderDecoder");
  // padded source tokens do not change the logits
  const src2 = src.where(pad.logicalNot(), 8);
  const again = model.forward(src2, tgt.slice(1, 0, -1), { srcPaddingMask: pad });
  allClose(vals(again), vals(logits), 1e-6, 1e-5, "padded source");
  // RoPE + tied output projection
  const tied = new EncoderDecoder(9, 10, 8, 1, 1, 2, { rope: true, tieEmbeddings: true });
  assert.deepEqual(tied.forward(src, tgt).shape, [2, 6, 10]);
  assert.ok(!tied.namedParameters().some(([n]) => n.startsWith("head") || n.includes("Pos")));
});

// ---- WebGPU parity ---------------------------------------------------------------------------------------

const gpu: Device | null = testRuntime ? new Device("webgpu-nn", webGpuBackend(testRuntime) as Backend) : null;

gpuTest("DecoderLM forward + backward on webgpu matches the cpu (same weights)", async () => {
  const build = (device: Device, seed: number) =>
    new DecoderLM(17, 16, 2, 2, {
      rope: true,
      ffnFactory: (i) => (i === 0 ? new GLU(16, 24, { device, generator: new Generator(seed) }) : undefined),
      device,
      generator: new Generator(seed),
    });
  const ref = build(cpu, 1);
  const model = build(gpu!, 2); // different initial weights …
  model.loadStateDict(ref.stateDict()); // … replaced by the CPU model's (cross-device load)
  assert.ok(model.parameters().every((p) => p.device === gpu));
  assert.deepEqual(Array.from(await model.head!.weight.data()), vals(ref.head!.weight));
  // the other way round needs an explicit read: a GPU tensor cannot be read synchronously
  assert.throws(
    () => ref.loadStateDict(model.stateDict()),
    /"tokEmb.weight" is on webgpu-nn.*cannot be read synchronously/,
  );
  const ids = [[1, 5, 9, 16, 0, 3, 3], [2, 2, 8, 11, 4, 7, 15]];
  const targets = [[5, 9, 16, 0, 3, 3, 1], [2, 8, 11, 4, 7, 15, 0]];
  const run = async (m: DecoderLM, device: Device) => {
    const logits = m.forward(tensor(ids, { dtype: "i32", device }));
    const loss = crossEntropy(logits, tensor(targets, { dtype: "i32", device }));
    loss.backward();
    return {
      logits: await logits.data(),
      loss: await loss.item(),
      grads: await Promise.all(m.parameters().map((p) => p.grad!.data())),
    };
  };
  const [want, got] = [await run(ref, cpu), await run(model, gpu!)];
  const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) => {
    assert.equal(a.length, b.length, what);
    let scale = 0;
    for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
    for (let i = 0; i < a.length; i++) {
      assert.ok(Math.abs(a[i] - b[i]) <= 1e-4 * scale + 1e-6, `${what}[${i}]: webgpu ${a[i]} vs cpu ${b[i]}`);
    }
  };
  close(got.logits, want.logits, "logits");
  assert.ok(Math.abs(got.loss - want.loss) < 1e-5, `loss: webgpu ${got.loss} vs cpu ${want.loss}`);
  ref.namedParameters().forEach(([name], i) => close(got.grads[i], want.grads[i], `grad of ${name}`));
  model.dispose();
});

gpuTest("EncoderDecoder forward + backward on webgpu matches the cpu (same weights, padding mask)", async () => {
  const build = (device: Device, seed: number) =>
    new EncoderDecoder(13, 11, 16, 1, 2, 2, { rope: true, device, generator: new Generator(seed) });
  const ref = build(cpu, 1);
  const model = build(gpu!, 2);
  model.loadStateDict(ref.stateDict());
  const src = [[1, 4, 7, 12, 0], [3, 3, 9, 0, 0]];
  const tgtIn = [[0, 5, 2, 10], [0, 1, 1, 7]];
  const tgtOut = [[5, 2, 10, 3], [1, 1, 7, 4]];
  const pad = [[false, false, false, false, true], [false, false, false, true, true]];
  const run = async (m: EncoderDecoder, device: Device) => {
    const logits = m.forward(tensor(src, { dtype: "i32", device }), tensor(tgtIn, { dtype: "i32", device }), {
      srcPaddingMask: tensor(pad, { device }),
    });
    crossEntropy(logits, tensor(tgtOut, { dtype: "i32", device })).backward();
    return {
      logits: await logits.data(),
      grads: await Promise.all(m.parameters().map((p) => p.grad!.data())),
    };
  };
  const [want, got] = [await run(ref, cpu), await run(model, gpu!)];
  const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) => {
    let scale = 0;
    for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
    assert.equal(a.length, b.length, what);
    for (let i = 0; i < a.length; i++) {
      assert.ok(Math.abs(a[i] - b[i]) <= 1e-4 * scale + 1e-6, `${what}[${i}]: webgpu ${a[i]} vs cpu ${b[i]}`);
    }
  };
  close(got.logits, want.logits, "logits");
  ref.namedParameters().forEach(([name], i) => close(got.grads[i], want.grads[i], `grad of ${name}`));
  model.dispose();
});
