/**
 * The two layouts of the experts' rows (`moe/dispatch.ts`) give the same numbers: the grouped dispatch (the
 * default; an exact grouped GEMM over the rows sorted by expert) and the padded one under both padding policies,
 * bit for bit in f64 (forward, and the gradients of x and of every parameter), dropless and with dropping. In f32
 * the grouped forward equals the max-load padded forward bit for bit too. The grouped dispatch reads nothing on
 * the host, and does only the routed rows' work.
 */
import assert from "node:assert/strict";
import { backward, cpu, randn, type Tensor, tensor } from "../../mod.ts";
import { Generator } from "../../core/random/generator.ts";
import { type ExpertKind, MoELayer } from "../../moe/layer.ts";
import { type DispatchMode, type DispatchPadding, dispatchTokens, planDispatch } from "../../moe/dispatch.ts";

const bits = (t: Tensor) => Array.from(t.dataSync(), Number);

function run(
  dispatch: DispatchMode,
  padding: DispatchPadding,
  expert: ExpertKind,
  estimator: string,
  k: number,
  cf?: number,
) {
  const layer = new MoELayer(6, {
    numExperts: 5,
    hidden: 7,
    expert,
    estimator,
    estimatorOptions: estimator === "topk" ? { topK: k } : undefined,
    capacityFactor: cf,
    generator: new Generator(3),
    dtype: "f64",
    dispatch,
    padding,
  });
  const x = randn([13, 6], { generator: new Generator(9), dtype: "f64" }).requiresGrad_();
  const y = layer.forward(x);
  backward(y.mul(y).sum());
  const grads = layer.parameters().map((p) => bits(p.grad!));
  return { y: bits(y), gx: bits(x.grad!), grads, dropped: bits(layer.lastMetrics!.dropped) };
}

for (
  const [expert, estimator, k, cf] of [
    ["ffn", "switch", 1, undefined],
    ["glu", "topk", 2, undefined],
    ["linear", "sparsemixer", 1, undefined],
    ["ffn", "topk", 2, 1.0],
    ["ffn", "switch", 1, 0.5],
    ["glu", "topk", 3, 0.6],
  ] as const
) {
  Deno.test(`MoELayer dispatch: grouped = padded max-load = padded static, bit for bit in f64 (${expert}, ${estimator}, k=${k}, cf=${cf})`, () => {
    const grouped = run("grouped", "auto", expert, estimator, k, cf);
    for (const padding of ["max-load", "static"] as const) {
      const padded = run("padded", padding, expert, estimator, k, cf);
      assert.deepEqual(grouped.y, padded.y, padding);
      assert.deepEqual(grouped.gx, padded.gx, padding);
      assert.deepEqual(grouped.grads, padded.grads, padding);
      assert.deepEqual(grouped.dropped, padded.dropped, padding);
    }
    if (cf !== undefined && cf < 1) assert.ok(grouped.dropped[0] > 0, "the capacity case must actually drop pairs");
  });
}

Deno.test("MoELayer padding / dispatch: a bad value is named", () => {
  assert.throws(
    () => new MoELayer(4, { numExperts: 2, padding: "tight" as "static" }),
    /padding must be "auto", "max-load" or "static", got "tight"/,
  );
  assert.throws(
    () => new MoELayer(4, { numExperts: 2, dispatch: "sparse" as "grouped" }),
    /dispatch must be "grouped" or "padded", got "sparse"/,
  );
});

/** An f32 layer big enough for the WebAssembly matmul, in a given layout. */
function f32Layer(dispatch: DispatchMode, padding: DispatchPadding) {
  return new MoELayer(32, {
    numExperts: 4,
    hidden: 64,
    estimator: "switch",
    generator: new Generator(1),
    dispatch,
    padding,
  });
}

Deno.test("MoELayer dispatch, f32: padded max-load agrees with static; grouped equals max-load bit for bit", () => {
  const x = randn([96, 32], { generator: new Generator(2) });
  const forward = (dispatch: DispatchMode, padding: DispatchPadding) => bits(f32Layer(dispatch, padding).forward(x));
  const a = forward("padded", "max-load"), b = forward("padded", "static");
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= 1e-5 * (1 + Math.abs(b[i])), `y[${i}]: ${v} vs ${b[i]}`));
  assert.deepEqual(forward("grouped", "auto"), a);
});

Deno.test("MoELayer dispatch, f32: grouped gradients equal max-load's (bias gradients to f32 rounding)", () => {
  const grads = (dispatch: DispatchMode) => {
    const layer = f32Layer(dispatch, "max-load");
    const x = randn([96, 32], { generator: new Generator(2) }).requiresGrad_();
    const y = layer.forward(x);
    backward(y.mul(y).sum());
    const out: Record<string, number[]> = { x: bits(x.grad!) };
    for (const [n, p] of layer.namedParameters()) out[n] = bits(p.grad!);
    return out;
  };
  const g = grads("grouped"), p = grads("padded");
  for (const name of ["x", "w1", "w2", "router.weight"]) assert.deepEqual(g[name], p[name], name);
  for (const name of ["b1", "b2"]) {
    g[name].forEach((v, i) =>
      assert.ok(Math.abs(v - p[name][i]) <= 1e-5 * (1 + Math.abs(p[name][i])), `${name}[${i}]`)
    );
  }
});

Deno.test("MoELayer dispatch: the grouped layout reads nothing on the host; padded max-load reads the counts", () => {
  const backend = cpu.backend as { readSync?: (...args: never[]) => unknown };
  const readSync = backend.readSync!;
  let reads = 0;
  backend.readSync = (...args: never[]) => {
    reads++;
    return readSync(...args);
  };
  try {
    const count = (dispatch: DispatchMode, cf?: number) => {
      const layer = new MoELayer(8, {
        numExperts: 4,
        estimator: "topk",
        estimatorOptions: { topK: 2 },
        dispatch,
        capacityFactor: cf,
      });
      const x = randn([10, 8], { generator: new Generator(4) }).requiresGrad_();
      reads = 0;
      const y = layer.forward(x);
      y.sum().backward();
      return reads;
    };
    assert.equal(count("grouped"), 0, "grouped, dropless");
    assert.equal(count("grouped", 0.5), 0, "grouped, with a capacity");
    assert.ok(count("padded") > 0, "padded max-load reads the counts");
  } finally {
    backend.readSync = readSync;
  }
});

Deno.test("planDispatch: grouped rows are the kept pairs at device-computed offsets; padded rows E × busiest load", () => {
  // N = 5 tokens, K = 2, E = 4: counts [5, 3, 1, 1]; sorted pairs: expert 0 tokens 0–4, expert 1 tokens 0, 2, 4, …
  const experts = tensor([[0, 1], [0, 2], [0, 1], [0, 3], [1, 0]], { dtype: "i32" });
  const like = { numExperts: 4, dtype: "f32", device: cpu } as const;
  const ints = (t: Tensor) => Array.from(t.dataSync(), Number);

  const dropless = planDispatch(experts, { ...like, capacity: 5 });
  assert.equal(dropless.mode, "grouped");
  assert.equal(dropless.rows, 10);
  assert.ok(dropless.oneRowPerPair);
  assert.deepEqual(ints(dropless.offsets), [0, 5, 8, 9, 10]);
  assert.deepEqual(ints(dropless.rowExpert), [0, 0, 0, 0, 0, 1, 1, 1, 2, 3]);

  // Capacity 2: each expert keeps min(count, 2) rows, R = min(N·K, E·C) = 8, the last two rows belong to no expert.
  const capped = planDispatch(experts, { ...like, capacity: 2 });
  assert.equal(capped.rows, 8);
  assert.ok(!capped.oneRowPerPair);
  assert.deepEqual(ints(capped.offsets), [0, 2, 4, 5, 6]);
  assert.deepEqual(ints(capped.rowExpert), [0, 0, 1, 1, 2, 3, 3, 3]);
  assert.deepEqual(ints(capped.slot), [0, 1, 1, 1, 1, 2, 3, 3, 4, 5]); // dropped pairs: their expert's last row
  assert.deepEqual(ints(capped.keep), [1, 1, 0, 0, 0, 1, 1, 0, 1, 1]);
  assert.deepEqual(ints(capped.dropped), [4]);

  // The padded layout: E · (busiest load) rows under max-load, E · C under static.
  const padded = planDispatch(experts, { ...like, capacity: 5, mode: "padded", padding: "max-load" });
  assert.equal(padded.rows, 20);
  assert.deepEqual(ints(padded.offsets), [0, 5, 10, 15, 20]);
  assert.equal(planDispatch(experts, { ...like, capacity: 2, mode: "padded", padding: "static" }).rows, 8);
  assert.throws(() => dispatchTokens(randn([5, 3]), dropless), /the plan is grouped/);
});
