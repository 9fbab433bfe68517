/**
 * The counter-based RNG: Philox4x32-10 known-answer vectors, the documented stream layout, determinism of
 * generators, and statistical sanity of the distributions (fixed seeds, so these never flake).
 */
import assert from "node:assert/strict";
import { defaultGenerator, Generator, manualSeed, rand, randint, randn, type Tensor } from "../../mod.ts";
import { laneToInt, laneToUniform, mulhi32, philox4x32 } from "../../core/random/philox.ts";

function block(c: readonly number[], k: readonly number[]): number[] {
  const out = new Uint32Array(4);
  philox4x32(c[0], c[1], c[2], c[3], k[0], k[1], out);
  return [...out];
}

async function vals(x: Tensor): Promise<number[]> {
  return Array.from(await x.data());
}

/** A tiny deterministic u32 source for test inputs (xorshift32), independent of the code under test. */
function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

function moments(xs: readonly number[]): { mean: number; variance: number } {
  const mean = xs.reduce((p, v) => p + v, 0) / xs.length;
  const variance = xs.reduce((p, v) => p + (v - mean) ** 2, 0) / xs.length;
  return { mean, variance };
}

const TWO32 = 2 ** 32;

Deno.test("Philox4x32-10 known-answer vectors (Random123 kat_vectors)", async (t) => {
  await t.step("counter 0, key 0", () => {
    assert.deepEqual(block([0, 0, 0, 0], [0, 0]), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
  });
  await t.step("all-ones counter and key", () => {
    const ones = 0xffffffff;
    assert.deepEqual(block([ones, ones, ones, ones], [ones, ones]), [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
  });
  await t.step("pi digits", () => {
    assert.deepEqual(
      block([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]),
      [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
    );
  });
  await t.step("outputs are u32 written into the given array", () => {
    const out = new Uint32Array([1, 2, 3, 4]);
    philox4x32(0, 0, 0, 0, 0, 0, out);
    assert.deepEqual([...out], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
  });
});

Deno.test("mulhi32 and lane conversions", async (t) => {
  await t.step("mulhi32 matches BigInt arithmetic", () => {
    const next = xorshift(0x9e3779b9);
    const edge = [0, 1, 2, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
    const pairs: [number, number][] = [];
    for (const a of edge) for (const b of edge) pairs.push([a, b]);
    for (let i = 0; i < 2000; i++) pairs.push([next(), next()]);
    for (const [a, b] of pairs) {
      const want = Number((BigInt(a) * BigInt(b)) >> 32n);
      assert.equal(mulhi32(a, b), want, `mulhi32(${a}, ${b})`);
    }
  });
  await t.step("laneToUniform: the top 24 bits times 2^-24", () => {
    assert.equal(laneToUniform(0), 0);
    assert.equal(laneToUniform(255), 0);
    assert.equal(laneToUniform(256), 2 ** -24);
    assert.equal(laneToUniform(0x80000000), 0.5);
    assert.equal(laneToUniform(0xffffffff), 1 - 2 ** -24);
    const next = xorshift(5);
    for (let i = 0; i < 200; i++) {
      const x = next();
      assert.equal(laneToUniform(x), Math.floor(x / 256) / 2 ** 24);
    }
  });
  await t.step("laneToInt: floor(lane · range / 2^32)", () => {
    assert.equal(laneToInt(0, 10), 0);
    assert.equal(laneToInt(0xffffffff, 10), 9);
    assert.equal(laneToInt(0x80000000, 10), 5);
    assert.equal(laneToInt(0xffffffff, 2 ** 31), 2 ** 31 - 1);
    const next = xorshift(11);
    for (let i = 0; i < 200; i++) {
      const x = next(), range = (next() % 1000) + 1;
      assert.equal(laneToInt(x, range), Number((BigInt(x) * BigInt(range)) >> 32n));
    }
  });
});

Deno.test("stream layout (core/random/philox.ts)", async (t) => {
  await t.step("rand element i = uniform(lane i % 4 of block counter + floor(i / 4))", async () => {
    const u = await vals(rand([6], { generator: new Generator(5), dtype: "f64" }));
    const b0 = block([0, 0, 0, 0], [5, 0]), b1 = block([1, 0, 0, 0], [5, 0]);
    assert.deepEqual(u, [...b0, b1[0], b1[1]].map(laneToUniform));
  });
  await t.step("the next draw starts at the next unused block", async () => {
    const g = new Generator(5);
    rand([6], { generator: g }); // blocks 0 and 1 (lanes 2, 3 of block 1 are skipped)
    const u = await vals(rand([3], { generator: g, dtype: "f64" }));
    assert.deepEqual(u, block([2, 0, 0, 0], [5, 0]).slice(0, 3).map(laneToUniform));
  });
  await t.step("seeds ≥ 2^32 fill both key words", async () => {
    const g = new Generator(3 * TWO32 + 11);
    assert.deepEqual(g.key, [11, 3]);
    const u = await vals(rand([4], { generator: g, dtype: "f64" }));
    assert.deepEqual(u, block([0, 0, 0, 0], [11, 3]).map(laneToUniform));
  });
  await t.step("the 64-bit counter carries into its high word", async () => {
    const g = new Generator(123).setState({ seed: 123, offset: TWO32 - 1 });
    const u = await vals(rand([8], { generator: g, dtype: "f64" }));
    const lo = block([0xffffffff, 0, 0, 0], [123, 0]), hi = block([0, 1, 0, 0], [123, 0]);
    assert.deepEqual(u, [...lo, ...hi].map(laneToUniform));
    assert.deepEqual(g.getState(), { seed: 123, offset: TWO32 + 1 });
  });
  await t.step("randn: Box–Muller on lane pairs, cos for even i, sin for odd i", async () => {
    const z = await vals(randn([6], { generator: new Generator(77), dtype: "f64" }));
    const lanes = [...block([0, 0, 0, 0], [77, 0]), ...block([1, 0, 0, 0], [77, 0])];
    const want = [0, 1, 2, 3, 4, 5].map((i) => {
      const pair = Math.floor(i / 2) * 2;
      const r = Math.sqrt(-2 * Math.log(1 - laneToUniform(lanes[pair])));
      const theta = 2 * Math.PI * laneToUniform(lanes[pair + 1]);
      return i % 2 === 0 ? r * Math.cos(theta) : r * Math.sin(theta);
    });
    want.forEach((w, i) => assert.ok(Math.abs(z[i] - w) <= 1e-15 * Math.max(1, Math.abs(w)), `z[${i}]`));
  });
  await t.step("randint: low + floor(lane · (high − low) / 2^32)", async () => {
    const r = await vals(randint(-3, 10, [5], { generator: new Generator(8) }));
    const lanes = [...block([0, 0, 0, 0], [8, 0]), ...block([1, 0, 0, 0], [8, 0])];
    assert.deepEqual(r, lanes.slice(0, 5).map((x) => -3 + Number((BigInt(x) * 13n) >> 32n)));
  });
});

Deno.test("generator determinism and counter accounting", async (t) => {
  await t.step("same seed → identical draws; different seeds differ", async () => {
    const a = await vals(rand([100], { generator: new Generator(42) }));
    const b = await vals(rand([100], { generator: new Generator(42) }));
    const c = await vals(rand([100], { generator: new Generator(43) }));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    const n1 = await vals(randn([10], { generator: new Generator(1) }));
    const n2 = await vals(randn([10], { generator: new Generator(1) }));
    assert.deepEqual(n1, n2);
  });
  await t.step("manualSeed restarts the default generator", async () => {
    manualSeed(42);
    const a = await vals(rand([7]));
    const a2 = await vals(randn([3]));
    manualSeed(42);
    assert.deepEqual(await vals(rand([7])), a);
    assert.deepEqual(await vals(randn([3])), a2);
    assert.deepEqual(defaultGenerator.getState(), { seed: 42, offset: 3 });
    assert.equal(manualSeed(0), defaultGenerator);
  });
  await t.step("each draw of n numbers advances the counter by ceil(n / 4) blocks", () => {
    const g = new Generator(9);
    const steps: [() => unknown, number][] = [
      [() => rand([6], { generator: g }), 2],
      [() => rand([4], { generator: g }), 1],
      [() => rand([1], { generator: g }), 1],
      [() => rand([0], { generator: g }), 0],
      [() => rand([2, 0, 3], { generator: g }), 0],
      [() => randn([5], { generator: g }), 2],
      [() => randint(0, 3, [3, 3], { generator: g }), 3],
      [() => rand([], { generator: g }), 1],
      [() => rand([400], { generator: g, dtype: "f64" }), 100],
    ];
    let offset = 0;
    assert.deepEqual(g.getState(), { seed: 9, offset: 0 });
    for (const [draw, blocks] of steps) {
      draw();
      offset += blocks;
      assert.deepEqual(g.getState(), { seed: 9, offset });
    }
  });
  await t.step("getState / setState resume the exact stream", async () => {
    const g = new Generator(2024);
    rand([13], { generator: g });
    const state = g.getState();
    const a = await vals(randn([9], { generator: g }));
    const b = await vals(rand([5], { generator: g }));
    g.setState(state);
    assert.deepEqual(await vals(randn([9], { generator: g })), a);
    assert.deepEqual(await vals(rand([5], { generator: g })), b);
    const fresh = new Generator(0).setState(state);
    assert.deepEqual(await vals(randn([9], { generator: fresh })), a);
    // getState returns a snapshot, not a live view.
    assert.deepEqual(state, { seed: 2024, offset: 4 });
  });
  await t.step("splitting a draw on block boundaries gives the same numbers", async () => {
    const whole = await vals(rand([12], { generator: new Generator(31) }));
    const g = new Generator(31);
    const parts = [...await vals(rand([4], { generator: g })), ...await vals(rand([8], { generator: g }))];
    assert.deepEqual(parts, whole);
  });
  await t.step("a draw does not depend on its shape, only on its size", async () => {
    const flat = await vals(rand([6], { generator: new Generator(4) }));
    const shaped = await vals(rand([2, 3], { generator: new Generator(4) }));
    assert.deepEqual(shaped, flat);
  });
});

Deno.test("statistical sanity (fixed seeds)", async (t) => {
  const N = 100_000;
  await t.step("uniform: in [0, 1), mean ≈ 1/2, variance ≈ 1/12", async () => {
    const u = await vals(rand([N], { generator: new Generator(1234), dtype: "f64" }));
    assert.ok(u.every((v) => v >= 0 && v < 1));
    const { mean, variance } = moments(u);
    // standard errors: √(1/12/N) ≈ 9.1e-4 for the mean, √(1/180/N) ≈ 2.4e-4 for the variance
    assert.ok(Math.abs(mean - 0.5) < 5 * Math.sqrt(1 / 12 / N), `mean ${mean}`);
    assert.ok(Math.abs(variance - 1 / 12) < 5 * Math.sqrt(1 / 180 / N), `variance ${variance}`);
    // every 24-bit value: u·2^24 is an integer
    assert.ok(u.every((v) => Number.isInteger(v * 2 ** 24)));
    // decile counts: N/10 ± 5·√(N·0.1·0.9)
    const bins = new Array(10).fill(0);
    for (const v of u) bins[Math.floor(v * 10)]++;
    for (const c of bins) assert.ok(Math.abs(c - N / 10) < 5 * Math.sqrt(N * 0.09), `decile count ${c}`);
  });
  await t.step("normal: mean ≈ 0, variance ≈ 1, P(|z| < 1) ≈ 0.6827", async () => {
    const z = await vals(randn([N], { generator: new Generator(99), dtype: "f64" }));
    assert.ok(z.every(Number.isFinite));
    const { mean, variance } = moments(z);
    assert.ok(Math.abs(mean) < 5 / Math.sqrt(N), `mean ${mean}`);
    assert.ok(Math.abs(variance - 1) < 5 * Math.sqrt(2 / N), `variance ${variance}`);
    const inside = z.filter((v) => Math.abs(v) < 1).length / N;
    assert.ok(Math.abs(inside - 0.682689492) < 5 * Math.sqrt(0.6827 * 0.3173 / N), `P(|z| < 1) = ${inside}`);
    // odd and even lanes (sin and cos halves) are each standard normal
    const even = moments(z.filter((_, i) => i % 2 === 0)), odd = moments(z.filter((_, i) => i % 2 === 1));
    for (const m of [even, odd]) assert.ok(Math.abs(m.mean) < 5 / Math.sqrt(N / 2) && Math.abs(m.variance - 1) < 0.05);
  });
  await t.step("randint: stays in [low, high), hits every value, roughly uniform", async () => {
    const r = await vals(randint(-3, 5, [N], { generator: new Generator(7) }));
    const counts = new Map<number, number>();
    for (const v of r) {
      assert.ok(Number.isInteger(v) && v >= -3 && v < 5, `value ${v}`);
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    assert.equal(counts.size, 8);
    const sd = Math.sqrt(N * (1 / 8) * (7 / 8));
    for (const [v, c] of counts) assert.ok(Math.abs(c - N / 8) < 5 * sd, `count of ${v}: ${c}`);
  });
  await t.step("randint edge ranges", async () => {
    const one = await vals(randint(4, 5, [50], { generator: new Generator(1) }));
    assert.ok(one.every((v) => v === 4));
    const wide = await vals(randint(-(2 ** 30), 2 ** 30, [1000], { generator: new Generator(2) }));
    assert.ok(wide.every((v) => v >= -(2 ** 30) && v < 2 ** 30));
    const low = await vals(randint(-(2 ** 31), 0, [1000], { generator: new Generator(3) }));
    assert.ok(low.every((v) => v >= -(2 ** 31) && v < 0));
    const high = await vals(randint(2 ** 31 - 5, 2 ** 31, [200], { generator: new Generator(3) }));
    assert.ok(high.every((v) => v >= 2 ** 31 - 5 && v <= 2 ** 31 - 1));
    const asFloat = randint(0, 3, [10], { generator: new Generator(1), dtype: "f32" });
    assert.equal(asFloat.dtype, "f32");
    assert.ok((await vals(asFloat)).every((v) => v === 0 || v === 1 || v === 2));
  });
});

Deno.test("dtypes of random draws", async (t) => {
  await t.step("f32 and f64 uniform draws are bit-identical values", async () => {
    const a = rand([1000], { generator: new Generator(7) });
    const b = rand([1000], { generator: new Generator(7), dtype: "f64" });
    assert.equal(a.dtype, "f32");
    assert.equal(b.dtype, "f64");
    assert.deepEqual(await vals(a), await vals(b));
  });
  await t.step("f32 normals are the f64 normals rounded", async () => {
    const a = await vals(randn([500], { generator: new Generator(8) }));
    const b = await vals(randn([500], { generator: new Generator(8), dtype: "f64" }));
    assert.deepEqual(a, b.map(Math.fround));
  });
  await t.step("randint defaults to i32", async () => {
    const r = randint(0, 10, [3], { generator: new Generator(1) });
    assert.equal(r.dtype, "i32");
    assert.ok((await r.data()) instanceof Int32Array);
  });
});
