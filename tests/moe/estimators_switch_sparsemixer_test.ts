import assert from "node:assert/strict";
import { oneHot, type Tensor, tensor } from "../../mod.ts";
import { GeneratorDraws, type LoggedDraw, ReplayDraws } from "../../moe/estimators/estimator.ts";
import { jitterRouterInput, SwitchEstimator } from "../../moe/estimators/switch.ts";
import { SparseMixerEstimator } from "../../moe/estimators/sparsemixer.ts";
import { TopKEstimator } from "../../moe/estimators/topk.ts";
import { SparseMixerV2Estimator, V2_MIDPOINT_SCALE } from "../../moe/estimators/sparsemixer_v2.ts";
import { gumbelArgmax, jitterMask, maskedSoftmax } from "../../moe/estimators/mask.ts";
import { createEstimator, ESTIMATOR_NAMES, ESTIMATOR_OPTION_SCHEMAS } from "../../moe/estimators/registry.ts";
import { Generator } from "../../core/random/generator.ts";
import { replayF64 } from "./estimators_replay.ts";

import switchTrain from "../../vectors/switchgate_train_8x4.json" with { type: "json" };
import switchEval from "../../vectors/switchgate_eval_8x4.json" with { type: "json" };
import v1Train from "../../vectors/sparsemixer_v1_train_8x4.json" with { type: "json" };
import v1Eval from "../../vectors/sparsemixer_v1_eval_8x4.json" with { type: "json" };
import firstTrain from "../../vectors/sparsemixer_1st_train_8x4.json" with { type: "json" };
import v2Top1 from "../../vectors/sparsemixer_v2_top1_eps0.1_train_8x4.json" with { type: "json" };
import v2Top2Train from "../../vectors/sparsemixer_v2_top2_eps0.01_train_8x16.json" with { type: "json" };
import v2Top2Eval from "../../vectors/sparsemixer_v2_top2_eps0.01_eval_8x16.json" with { type: "json" };

type Nested = number | boolean | Nested[];
/** A vector file, loosely typed (the files differ in their optional fields). */
interface Vec {
  params: any;
  inputs: any;
  random_draws: unknown[];
  intermediates_numpy: any;
}
const f64 = (data: Nested) => tensor(data as number[], { dtype: "f64" });
const flat = (x: Nested): number[] => (Array.isArray(x) ? x.flatMap(flat) : [Number(x)]);
const values = (t: Tensor) => Array.from(t.dataSync(), Number);

/** max |a − b| after checking |a − b| ≤ atol + rtol·|b| elementwise. */
function close(what: string, actual: Tensor | number[], expected: Nested, rtol = 1e-9, atol = 1e-9): number {
  const a = Array.isArray(actual) ? actual : values(actual);
  const b = flat(expected);
  assert.equal(a.length, b.length, `${what}: ${a.length} values, expected ${b.length}`);
  let worst = 0;
  a.forEach((x, i) => {
    const err = Math.abs(x - b[i]);
    worst = Math.max(worst, err);
    assert.ok(err <= atol + rtol * Math.abs(b[i]), `${what}[${i}]: ${x} vs ${b[i]} (|Δ| = ${err})`);
  });
  return worst;
}

/** Max errors per file: the replayed outputs and gradients (`replayF64`) and the intermediates checked here. */
const report: Record<string, Record<string, number>> = {};

function replay(v: { random_draws: unknown[] }) {
  return new ReplayDraws(v.random_draws as LoggedDraw[]);
}

// Outputs, gradients and draw consumption come from the shared replay; each family checks its intermediates.

async function checkSwitch(name: string, v: Vec) {
  const errs = await replayF64(v);
  const z = f64(v.inputs.logits);
  const r = new SwitchEstimator({ jitterEps: v.params.jitter_eps }).route(z, {
    training: v.params.training,
    draws: replay(v),
  });
  errs.probs = close("probs", r.probs, v.intermediates_numpy.probs);
  report[name] = errs;
}

Deno.test("vectors: switchgate_train_8x4", () => checkSwitch("switchgate_train_8x4", switchTrain));
Deno.test("vectors: switchgate_eval_8x4", () => checkSwitch("switchgate_eval_8x4", switchEval));

async function checkV1(name: string, v: Vec, variant: "midpoint" | "first") {
  const errs = await replayF64(v);
  const z = f64(v.inputs.logits);
  const logits = values(z);
  const r = new SparseMixerEstimator({ jitterEps: v.params.jitter_eps, variant }).route(z, {
    training: v.params.training,
    draws: replay(v),
  });
  errs.masked_softmax = close("probs", r.probs, v.intermediates_numpy.masked_softmax);
  assert.deepEqual(values(z), logits, "the caller's logits are not mutated");
  report[name] = errs;
}

Deno.test("vectors: sparsemixer_v1_train_8x4", () => checkV1("sparsemixer_v1_train_8x4", v1Train, "midpoint"));
Deno.test("vectors: sparsemixer_v1_eval_8x4", () => checkV1("sparsemixer_v1_eval_8x4", v1Eval, "midpoint"));
Deno.test("vectors: sparsemixer_1st_train_8x4", () => checkV1("sparsemixer_1st_train_8x4", firstTrain, "first"));

async function checkV2(name: string, v: Vec) {
  const errs = await replayF64(v);
  const est = new SparseMixerV2Estimator({ topK: v.params.top_k as 1 | 2, jitterEps: v.params.jitter_eps });
  const r = est.route(f64(v.inputs.logits), { training: v.params.training, draws: replay(v) });
  errs.masked_softmax_1 = close("π1", r.extra!.maskedSoftmax1, v.intermediates_numpy.masked_softmax_1);
  close("scale 1", r.extra!.forwardScale.narrow(1, 0, 1), v.intermediates_numpy.forward_scale_1);
  if (v.params.top_k === 2) {
    errs.masked_softmax_2 = close("π2", r.extra!.maskedSoftmax2, v.intermediates_numpy.masked_softmax_2);
    close("scale 2", r.extra!.forwardScale.narrow(1, 1, 1), v.intermediates_numpy.forward_scale_2);
  }
  report[name] = errs;
}

Deno.test("vectors: sparsemixer_v2_top1_eps0.1_train_8x4", () =>
  checkV2("sparsemixer_v2_top1_eps0.1_train_8x4", v2Top1));
Deno.test("vectors: sparsemixer_v2_top2_eps0.01_train_8x16", () =>
  checkV2("sparsemixer_v2_top2_eps0.01_train_8x16", v2Top2Train));
Deno.test("vectors: sparsemixer_v2_top2_eps0.01_eval_8x16", () =>
  checkV2("sparsemixer_v2_top2_eps0.01_eval_8x16", v2Top2Eval));

Deno.test("vectors: max errors per file (all at rounding level)", () => {
  const printable = Deno.permissions.querySync({ name: "env", variable: "MOEGRAD_PRINT_ERRORS" }).state === "granted";
  if (printable && Deno.env.get("MOEGRAD_PRINT_ERRORS")) console.log(JSON.stringify(report, null, 1));
  for (const [file, errs] of Object.entries(report)) {
    for (const [what, err] of Object.entries(errs)) assert.ok(err < 1e-12, `${file} ${what}: ${err}`);
  }
});

// ---------------------------------------------------------------------------------------------------
// By the math.

const Z = [[1.0, 0.95, -0.3, 0.2], [2.0, -1.0, 0.5, 1.96], [0, 0, -0.5, -0.3], [-0.5, -0.52, -2, -0.9]];

Deno.test("mask: code form, 0/0 kept, row max kept, not shift-invariant but scale-invariant", () => {
  const z = f64(Z);
  assert.deepEqual(values(jitterMask(z, 0.1)), [0, 0, 1, 1, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 1, 1]);
  // Row 3: all negative → factor = |z|, r − z > 0.2|z| excludes −0.9 (0.4 > 0.18) and keeps −0.52.
  assert.deepEqual(values(jitterMask(z.mul(7), 0.1)), values(jitterMask(z, 0.1)));
  assert.notDeepEqual(values(jitterMask(z.add(10), 0.1)), values(jitterMask(z, 0.1)));
  const p = maskedSoftmax(z, jitterMask(z, 0.1));
  assert.deepEqual(values(p).slice(8, 12).map((x) => x === 0), [false, false, true, true]);
});

Deno.test("gumbel-max: excluded experts never win, ties go to the lowest index", () => {
  const z = f64([[0, 0, -Infinity], [1, 1, 1]]);
  const e = f64([[1, 1, 0], [0.5, 0.5, 0.5]]);
  assert.deepEqual(values(gumbelArgmax(z, e)), [0, 0]);
});

function randomLogits(seed: number, n: number, e: number, scale = 1): Tensor {
  const g = new Generator(seed);
  return new GeneratorDraws(g).draw("uniform", [n, e], "x", { dtype: "f64", device: f64(0).device }).sub(0.5)
    .mul(scale);
}

Deno.test("sparsemixer: router gradient is exactly 0 for single-candidate tokens", () => {
  for (const variant of ["midpoint", "first", "inf"] as const) {
    const z = randomLogits(7, 64, 4, 6).requiresGrad_();
    const draws = new GeneratorDraws(new Generator(3));
    const r = new SparseMixerEstimator({ variant }).route(z, { training: true, draws });
    r.gates.mul(randomLogits(9, 64, 1)).sum().backward();
    const cand = values(r.stats!.candidates);
    const g = values(z.grad!);
    const gates = values(r.gates);
    let single = 0;
    cand.forEach((c, t) => {
      if (c !== 1) return;
      single++;
      assert.deepEqual(g.slice(4 * t, 4 * t + 4).map(Math.abs), [0, 0, 0, 0]);
      assert.equal(gates[t], 1);
    });
    assert.ok(single > 0 && single < 64, `${single} single-candidate tokens`);
  }
});

Deno.test("sparsemixer: backward is 2·g·π_D(e_D − π) whatever the forward scale; inf scale is u′", () => {
  const z = randomLogits(11, 32, 4, 0.5).requiresGrad_();
  const draws = new GeneratorDraws(new Generator(5));
  const r = new SparseMixerEstimator({ variant: "inf" }).route(z, { training: true, draws });
  const g = randomLogits(12, 32, 1);
  r.gates.mul(g).sum().backward();
  const pi = r.probs.detach();
  const piD = pi.gather(1, r.experts);
  const expected = g.mul(piD).mul(2).mul(oneHot(r.experts.reshape([32]), 4, "f64").sub(pi));
  close("∂z", z.grad!, values(expected) as Nested, 1e-12, 1e-15);
  const scale = values(r.extra!.forwardScale);
  assert.ok(scale.some((s) => s < 1) && scale.every((s) => s > 0 && s <= 1));
  close("gate", r.gates, values(piD.mul(r.extra!.forwardScale)) as Nested, 0, 0);
});

Deno.test("sparsemixer-inf: draws exp, rand, rand; forward scale u′ off-argmax when the coin fails", () => {
  const z = f64([[1.0, 0.95, -3, -3]]);
  const run = (u: number, expD: number[]) =>
    new SparseMixerEstimator({ variant: "inf" }).route(z, {
      training: true,
      draws: new ReplayDraws([
        { call: "Tensor.exponential_", shape: [1, 4], values: [expD] },
        { call: "torch.rand_like", shape: [1, 1], values: [[u]] },
        { call: "torch.rand_like", shape: [1, 1], values: [[0.3]] },
      ]),
    });
  const pi = values(maskedSoftmax(z, jitterMask(z, 0.1)));
  assert.deepEqual(values(run(0.2, [1, 1e-9, 1, 1]).gates), [0.3 * pi[1]]); // D ≠ argmax, coin false → u′
  assert.deepEqual(values(run(0.7, [1, 1e-9, 1, 1]).gates), [pi[1]]); // coin true → 1
  assert.deepEqual(values(run(0.2, [1e-9, 1, 1, 1]).gates), [pi[0]]); // D = argmax → 1
});

Deno.test("switch: ∂z = noise ⊙ J(p)(g e_D); input variant does not jitter the logits", () => {
  const z = randomLogits(21, 16, 4, 4).requiresGrad_();
  const g = randomLogits(22, 16, 1);
  const est = new SwitchEstimator({ jitterEps: 0.1 });
  const r = est.route(z, { training: true, draws: new GeneratorDraws(new Generator(1)) });
  r.gates.mul(g).sum().backward();
  const noise = r.extra!.jitteredLogits.detach().div(z.detach());
  const p = r.probs.detach();
  const pD = p.gather(1, r.experts);
  const expected = noise.mul(g.mul(pD).mul(oneHot(r.experts.reshape([16]), 4, "f64").sub(p)));
  close("∂z", z.grad!, values(expected) as Nested, 1e-12, 1e-15);
  const nv = values(noise);
  assert.ok(nv.every((x) => x >= 0.9 - 1e-12 && x <= 1.1 + 1e-12) && nv.some((x) => x !== 1));

  const inp = new SwitchEstimator({ variant: "input" });
  const zi = f64(Z);
  const ri = inp.route(zi, { training: true, draws: new ReplayDraws([]) });
  close("no jitter", ri.probs, values(zi.softmax(-1)) as Nested, 0, 0);
  const x = randomLogits(3, 4, 5).requiresGrad_();
  const xj = jitterRouterInput(x, 0.01, new GeneratorDraws(new Generator(2)));
  const ratio = values(xj.detach().div(x.detach()));
  assert.ok(ratio.every((q) => q >= 0.99 - 1e-12 && q <= 1.01 + 1e-12));
  xj.sum().backward();
  close("∂x", x.grad!, ratio as Nested, 1e-12, 1e-15);
});

Deno.test("sparsemixer-v2: released coin threshold, the 0.3333 f32 literal and the runner-up mask", () => {
  assert.equal(V2_MIDPOINT_SCALE, 0.33329999446868896);
  // Row: winner far ahead, runner-up tied with a third expert → slot 2 has 2 candidates (relative to runner-up).
  const z = f64([[10, 1, 0.99, -5]]);
  const est = new SparseMixerV2Estimator({ topK: 2, jitterEps: 0.01 });
  const log = (d2: number, u: number): LoggedDraw[] => [
    { call: "Tensor.exponential_", shape: [1, 4], values: [[1, 1, 1, 1]] },
    { call: "torch.rand_like", shape: [1, 1], values: [[0.1]] },
    { call: "Tensor.exponential_", shape: [1, 4], values: [d2 === 2 ? [1, 1, 1e-9, 1] : [1, 1, 1, 1]] },
    { call: "torch.rand_like", shape: [1, 1], values: [[0.99]] }, // overwritten, unused
    { call: "Tensor.uniform_", shape: [1, 1], values: [[u]] },
  ];
  const r1 = est.route(z, { training: true, draws: new ReplayDraws(log(2, 0.5)) });
  assert.deepEqual(values(r1.experts), [0, 2]);
  const pi2 = values(r1.extra!.maskedSoftmax2);
  assert.ok(pi2[1] > 0 && pi2[2] > 0 && pi2[0] === 0 && pi2[3] === 0);
  const gates = values(r1.gates);
  assert.equal(gates[0], 1);
  assert.equal(gates[1], V2_MIDPOINT_SCALE * pi2[2]);
  const r2 = est.route(z, { training: true, draws: new ReplayDraws(log(2, 0.8)) });
  assert.equal(values(r2.gates)[1], pi2[2]);
});

Deno.test("sparsemixer-v2-heun: E_coin[m] = 3/4 off-argmax, gradient 2·∂π_D/∂z at temperature 2", () => {
  const z = f64([[1.0, 0.95, 0.9, -3]]);
  const est = new SparseMixerV2Estimator({ topK: 1, jitterEps: 0.1, variant: "heun" });
  const pi = maskedSoftmax(z, jitterMask(z, 0.1), 2);
  const piv = values(pi);
  // Force D = 1 (not the argmax 0); sweep the coin uniform over a fine grid.
  const grid = 200;
  let sum = 0;
  for (let i = 0; i < grid; i++) {
    const u = (i + 0.5) / grid;
    const zz = f64(values(z) as Nested).reshape([1, 4]).requiresGrad_();
    const r = est.route(zz, {
      training: true,
      draws: new ReplayDraws([
        { call: "Tensor.exponential_", shape: [1, 4], values: [[1, 1e-9, 1, 1]] },
        { call: "torch.rand_like", shape: [1, 1], values: [[u]] },
      ]),
    });
    assert.deepEqual(values(r.experts), [1]);
    sum += values(r.gates)[0] / piv[1];
    if (i === 0) {
      r.gates.sum().backward();
      // 2·∂π_1/∂z with π = softmax(z̃/2): 2·½·π_1(e_1 − π) = π_1(e_1 − π).
      const expected = piv.map((p, j) => piv[1] * ((j === 1 ? 1 : 0) - p));
      close("∂z", zz.grad!, expected, 1e-12, 1e-15);
    }
  }
  assert.ok(Math.abs(sum / grid - 0.75) < 1e-3, `E[m] = ${sum / grid}`);
  // Heun's rule: E_B[2 f'(s x)] with s = (1+2B)/3, B ~ Bern(5/8) equals 5/4 f'(x) + 3/4 f'(x/3) — i.e. the
  // coin rate is 5/8 and the low scale 1/3. Check the rate by the same sweep:
  let high = 0;
  for (let i = 0; i < grid; i++) {
    const u = (i + 0.5) / grid;
    const r = est.route(z, {
      training: true,
      draws: new ReplayDraws([
        { call: "Tensor.exponential_", shape: [1, 4], values: [[1, 1e-9, 1, 1]] },
        { call: "torch.rand_like", shape: [1, 1], values: [[u]] },
      ]),
    });
    if (values(r.extra!.forwardScale)[0] === 1) high++;
  }
  assert.equal(high / grid, 5 / 8);
  // Eval: no draws, gate = π_argmax at temperature 2.
  const re = est.route(z, { training: false, draws: new ReplayDraws([]) });
  assert.deepEqual(values(re.experts), [0]);
  assert.equal(values(re.gates)[0], piv[0]);
});

Deno.test("sparsemixer-v2 eval draws: auto consumes only from ReplayDraws, none never", () => {
  const z = randomLogits(4, 3, 16, 4);
  const gen = new Generator(1);
  const before = gen.getState();
  new SparseMixerV2Estimator().route(z, { training: false, draws: new GeneratorDraws(gen) });
  assert.deepEqual(gen.getState(), before);
  const est = new SparseMixerV2Estimator({ evalDraws: "none" });
  const r = est.route(z, { training: false, draws: new ReplayDraws([]) });
  assert.deepEqual(r.experts.shape, [3, 2]);
});

Deno.test("registry: names, defaults and option validation", () => {
  for (const name of ["sparsemixer", "sparsemixer-1st", "sparsemixer-inf", "sparsemixer-v2", "sparsemixer-v2-heun"]) {
    assert.ok(ESTIMATOR_NAMES.includes(name), name);
  }
  for (const name of ESTIMATOR_NAMES) assert.equal(createEstimator(name).name, name);
  assert.equal(createEstimator("sparsemixer-v2", { topK: 1 }).topK, 1);
  assert.equal((createEstimator("switch", { variant: "input" }) as SwitchEstimator).variant, "input");
  assert.throws(() => createEstimator("sparsemixer-v3"), /unknown estimator "sparsemixer-v3".*known: switch/);
  assert.throws(() => createEstimator("sparsemixer-v2", { topK: 3 }), /"topK" must be one of 1, 2, got 3/);
  assert.throws(() => createEstimator("switch", { jitterEps: -1 }), /"jitterEps" must be a finite number ≥ 0/);
  assert.throws(() => createEstimator("switch", { variant: "x" }), /"variant" must be one of "logits", "input"/);
  assert.throws(() => createEstimator("sparsemixer", { topK: 2 }), /no option "topK" \(allowed: jitterEps\)/);
  assert.throws(
    () => createEstimator("topk", { topK: 1.5, renormalize: 1 }),
    /^OpError: estimator: "topk" option "topK" must be an integer ≥ 1, got 1\.5; "topk" option "renormalize" must be true or false, got 1$/,
  );
  // One name for experts per token everywhere: topk's former "k" is rejected with the new name.
  assert.throws(
    () => createEstimator("topk", { k: 2 }),
    /^OpError: estimator: "topk" option "k" was renamed to "topK"$/,
  );
  assert.throws(
    () => createEstimator("topk", { k: 2, kk: 1 }),
    /^OpError: estimator: "topk" option "k" was renamed to "topK"; "topk" has no option "kk" \(allowed: topK, renormalize\)$/,
  );
  assert.throws(() => new TopKEstimator({ k: 2 } as never), /option "k" was renamed to "topK"/);
  for (const name of ESTIMATOR_NAMES) {
    const keys = Object.keys((ESTIMATOR_OPTION_SCHEMAS as unknown as Record<string, { shape: object }>)[name].shape);
    assert.ok(!keys.includes("k"), `${name}: experts per token is "topK", not "k"`);
  }
  assert.throws(
    () => createEstimator("topk", 3 as never),
    /^OpError: estimator: options of "topk" must be an object, got 3$/,
  );
  assert.throws(
    () => createEstimator("reinmax", { tau: 0.5 }),
    /"reinmax" option "tau" must be a finite number ≥ 1, got 0\.5$/,
  );
});

Deno.test("registry: option schemas fill in the constructors' defaults", () => {
  assert.deepEqual(ESTIMATOR_OPTION_SCHEMAS["switch"].parse({}), { jitterEps: 0.1, variant: "logits" });
  assert.deepEqual(ESTIMATOR_OPTION_SCHEMAS["sparsemixer-v2"].parse({ topK: 1 }), {
    topK: 1,
    jitterEps: 0.01,
    evalDraws: "auto",
  });
  assert.deepEqual(ESTIMATOR_OPTION_SCHEMAS["topk"].parse({}), { topK: 1, renormalize: true });
  assert.deepEqual(ESTIMATOR_OPTION_SCHEMAS["st-gumbel"].parse({ numExperts: 4 }), { tau: 1, numExperts: 4 });
  assert.equal(ESTIMATOR_OPTION_SCHEMAS["topk"].safeParse({ kk: 2 }).success, false);
  assert.deepEqual(Object.keys(ESTIMATOR_OPTION_SCHEMAS).sort(), [...ESTIMATOR_NAMES].sort());
});
