import assert from "node:assert/strict";
import { matmulKernels, matmulReference, useWasmMatmul } from "../../kernels/cpu/matmul.ts";
import type { TensorRef } from "../../internals.ts";
import { ModuleBuilder, sleb128, uleb128, ValType } from "../../kernels/cpu/wasm/assembler.ts";
import { createWasmMatmul, emitMatmulModule, sharedWasmMatmul } from "../../kernels/cpu/wasm/matmul.ts";
import { filled } from "../helpers/host_rng.ts";

/** Checks out against matmulReference with tolerance 1e-5·(1 + Σ|a||b|) per element. */
function check(out: Float32Array, a: Float32Array, b: Float32Array, m: number, k: number, n: number): void {
  const ref = new Float32Array(m * n);
  matmulReference(a, 0, b, 0, ref, 0, m, k, n, false, false);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let mag = 0;
      for (let p = 0; p < k; p++) mag += Math.abs(a[i * k + p] * b[p * n + j]);
      const got = out[i * n + j], want = ref[i * n + j];
      assert(Math.abs(got - want) <= 1e-5 * (1 + mag), `${m}×${k}×${n} at (${i}, ${j}): ${got} vs ${want}`);
    }
  }
}

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 7, 1],
  [2, 3, 4],
  [3, 1, 9],
  [7, 13, 5],
  [4, 8, 8],
  [5, 9, 17],
  [16, 16, 16],
  [65, 33, 17],
  [1, 300, 40],
  [40, 300, 1],
  [128, 256, 96],
  [67, 257, 9], // K just past one K block
  [130, 513, 37], // rows past two row blocks, K past two K blocks
  [200, 100, 300],
];

Deno.test("LEB128 encoders", () => {
  assert.deepStrictEqual(uleb128(0), [0]);
  assert.deepStrictEqual(uleb128(127), [0x7f]);
  assert.deepStrictEqual(uleb128(128), [0x80, 0x01]);
  assert.deepStrictEqual(uleb128(624485), [0xe5, 0x8e, 0x26]);
  assert.deepStrictEqual(uleb128(0xffffffff), [0xff, 0xff, 0xff, 0xff, 0x0f]);
  assert.deepStrictEqual(sleb128(0), [0]);
  assert.deepStrictEqual(sleb128(63), [0x3f]);
  assert.deepStrictEqual(sleb128(64), [0xc0, 0x00]);
  assert.deepStrictEqual(sleb128(-1), [0x7f]);
  assert.deepStrictEqual(sleb128(-64), [0x40]);
  assert.deepStrictEqual(sleb128(-65), [0xbf, 0x7f]);
  assert.deepStrictEqual(sleb128(-123456), [0xc0, 0xbb, 0x78]);
});

Deno.test("assembler: a small module validates and runs", () => {
  const mod = new ModuleBuilder().setMemory({ kind: "export", name: "memory", initialPages: 1 });
  const { i32, f32 } = ValType;
  // sum(ptr, count): f32 sum of count floats at ptr, with a loop and a scalar load.
  const f = mod.addFunction("sum", [i32, i32], [f32]);
  const acc = f.local(f32), end = f.local(i32);
  f.get(0).get(1).i32Const(2).i32Shl().i32Add().set(end);
  f.block(() => {
    f.get(0).get(end).i32GeU().brIf(0);
    f.loop(() => {
      f.get(acc).get(0).f32Load().f32Add().set(acc);
      f.get(0).i32Const(4).i32Add().tee(0).get(end).i32LtU().brIf(0);
    });
  });
  f.get(acc);
  // splat4(ptr, out): out[0..4] = 2·[x, x, x, x] for x = f32 at ptr (exercises SIMD).
  const g = mod.addFunction("splat4", [i32, i32]);
  g.get(1).get(0).v128Load32Splat().get(0).v128Load32Splat().f32x4Add().v128Store();
  const bytes = mod.encode();
  assert(WebAssembly.validate(bytes));
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
  const mem = new Float32Array((inst.exports.memory as WebAssembly.Memory).buffer);
  mem.set([1, 2, 3, 4.5], 0);
  assert.deepStrictEqual((inst.exports.sum as (p: number, n: number) => number)(0, 4), 10.5);
  assert.deepStrictEqual((inst.exports.sum as (p: number, n: number) => number)(0, 0), 0);
  (inst.exports.splat4 as (p: number, o: number) => void)(12, 64);
  assert.deepStrictEqual([...mem.subarray(16, 20)], [9, 9, 9, 9]);
});

Deno.test("wasm matmul: emitted modules validate for several tiles", () => {
  for (
    const opts of [{}, { mr: 6, nv: 2 }, { mr: 3, nv: 4, unroll: 1 }, { mr: 1, nv: 1, unroll: 3 }, {
      mr: 8,
      nv: 1,
      splat: "shuffle" as const,
    }]
  ) {
    assert(WebAssembly.validate(emitMatmulModule(opts)), JSON.stringify(opts));
  }
  // Broadcasting by shuffles takes A's values four rows at a time.
  assert.throws(() => emitMatmulModule({ mr: 6, splat: "shuffle" }), /mr a multiple of 4, got 6/);
});

Deno.test("wasm matmul: matches matmulReference on many shapes", () => {
  const w = createWasmMatmul();
  assert(WebAssembly.validate(w.bytes));
  for (const [m, k, n] of SHAPES) {
    const a = filled(m * k, m * 31 + k), b = filled(k * n, n * 17 + 3);
    const out = new Float32Array(m * n).fill(NaN);
    w.matmul(a, b, out, m, k, n);
    check(out, a, b, m, k, n);
  }
});

Deno.test("wasm matmul: other tiles and blockings agree (edges in every dimension)", () => {
  for (
    const opts of [
      { mr: 6, nv: 2, kc: 16, mc: 12 },
      { mr: 3, nv: 3, kc: 7, mc: 5, unroll: 3 },
      { mr: 1, nv: 1 },
      { mr: 8, nv: 1, kc: 7, mc: 5, unroll: 3, splat: "shuffle" as const },
    ]
  ) {
    const w = createWasmMatmul(opts);
    for (const [m, k, n] of [[1, 1, 1], [7, 13, 5], [65, 33, 17], [29, 40, 31]] as const) {
      const a = filled(m * k, 5), b = filled(k * n, 6), out = new Float32Array(m * n);
      w.matmul(a, b, out, m, k, n);
      check(out, a, b, m, k, n);
    }
  }
});

Deno.test("wasm matmul: blocking does not change results (fixed summation order)", () => {
  const [m, k, n] = [37, 300, 45];
  const a = filled(m * k, 11), b = filled(k * n, 12);
  const x = new Float32Array(m * n), y = new Float32Array(m * n);
  createWasmMatmul().matmul(a, b, x, m, k, n);
  createWasmMatmul({ kc: 13, mc: 8, unroll: 1 }).matmul(a, b, y, m, k, n);
  assert.deepStrictEqual(x, y);
  // Nor does the register tile, nor how A's values are broadcast (each output's multiply-adds keep their order).
  for (const tile of [{ mr: 6, nv: 2, splat: "load" as const }, { mr: 4, nv: 2, splat: "shuffle" as const }]) {
    createWasmMatmul(tile).matmul(a, b, y.fill(NaN), m, k, n);
    assert.deepStrictEqual(x, y, JSON.stringify(tile));
  }
  // Repeated calls give identical bits.
  const w = createWasmMatmul();
  w.matmul(a, b, y, m, k, n);
  w.matmul(a, b, y, m, k, n);
  assert.deepStrictEqual(x, y);
});

Deno.test("wasm matmul: repeated calls with growing and shrinking sizes reuse memory", () => {
  const w = createWasmMatmul();
  const pagesBefore = w.memory.buffer.byteLength;
  for (const [m, k, n] of [[3, 4, 5], [300, 200, 310], [2, 2, 2], [130, 513, 37], [9, 9, 9]] as const) {
    const a = filled(m * k, m), b = filled(k * n, n), out = new Float32Array(m * n);
    w.matmul(a, b, out, m, k, n);
    check(out, a, b, m, k, n);
  }
  assert(w.memory.buffer.byteLength > pagesBefore);
});

Deno.test("wasm matmul: degenerate sizes", () => {
  const w = createWasmMatmul();
  const out = new Float32Array(6).fill(7);
  w.matmul(new Float32Array(0), new Float32Array(0), out, 2, 0, 3);
  assert.deepStrictEqual([...out], [0, 0, 0, 0, 0, 0]);
  w.matmul(new Float32Array(0), new Float32Array(4), new Float32Array(0), 0, 2, 2); // no throw
});

/** The registry kernel, wired: f32 shapes on the WebAssembly path, every transpose, batch broadcasting. */
Deno.test("matmul kernel (f32, WebAssembly path): transposes and batch broadcasting match matmulReference", () => {
  const ref = (buf: Float32Array, shape: number[]): TensorRef<Float32Array> => ({ buf, shape, dtype: "f32" });
  let seed = 1;
  for (const [m, k, n] of [[4, 64, 8], [9, 13, 33], [37, 70, 45], [67, 257, 9], [130, 300, 70]] as const) {
    assert(useWasmMatmul(m, k, n), `${m}×${k}×${n} should take the WebAssembly path`);
    for (const [ba, bb] of [[1, 1], [3, 3], [1, 3], [3, 1]] as const) {
      for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
        const batch = Math.max(ba, bb);
        const a = filled(ba * m * k, seed++), b = filled(bb * k * n, seed++);
        const out = new Float32Array(batch * m * n).fill(NaN);
        matmulKernels.matmul(
          [ref(a, [ba, transA ? k : m, transA ? m : k]), ref(b, [bb, transB ? n : k, transB ? k : n])],
          [ref(out, [batch, m, n])],
          { transA, transB },
        );
        const absA = Float32Array.from(a, Math.abs), absB = Float32Array.from(b, Math.abs);
        const want = new Float32Array(batch * m * n), mag = new Float32Array(batch * m * n);
        for (let t = 0; t < batch; t++) {
          const aOff = ba === 1 ? 0 : t * m * k, bOff = bb === 1 ? 0 : t * k * n;
          matmulReference(a, aOff, b, bOff, want, t * m * n, m, k, n, transA, transB);
          matmulReference(absA, aOff, absB, bOff, mag, t * m * n, m, k, n, transA, transB);
        }
        const what = JSON.stringify({ m, k, n, ba, bb, transA, transB });
        for (let i = 0; i < out.length; i++) {
          assert(Math.abs(out[i] - want[i]) <= 1e-5 * (1 + mag[i]), `${what} [${i}]: ${out[i]} vs ${want[i]}`);
        }
      }
    }
  }
});

Deno.test("wasm matmul: transposed and offset operands match the plain layout bit for bit", () => {
  const w = sharedWasmMatmul();
  if (!w) return; // no WebAssembly SIMD here: the kernel runs matmulBlocked instead
  const [m, k, n] = [13, 37, 21];
  const a = filled(m * k, 3), b = filled(k * n, 4);
  const at = new Float32Array(5 + k * m), bt = new Float32Array(7 + n * k);
  for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) at[5 + p * m + i] = a[i * k + p];
  for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) bt[7 + j * k + p] = b[p * n + j];
  const want = new Float32Array(m * n);
  w.matmul(a, b, want, m, k, n);
  const out = new Float32Array(3 + m * n).fill(NaN);
  w.matmul(at, bt, out, m, k, n, { transA: true, transB: true, aOff: 5, bOff: 7, outOff: 3 });
  assert(Object.is(out[0], NaN) && Object.is(out[2], NaN), "wrote before outOff");
  assert.deepStrictEqual(out.subarray(3), want);
});

Deno.test("wasm matmul: packA/packB exports pack every stride pattern, zero-padding the last panel", () => {
  const bytes = emitMatmulModule({ mr: 6, nv: 2, shared: false, fma: false });
  const memory = new WebAssembly.Memory({ initial: 4, maximum: 100 });
  const ex = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports as Record<
    string,
    (...args: number[]) => number
  >;
  const view = new Float32Array(memory.buffer);
  for (const [rows, k] of [[1, 1], [7, 13], [13, 130], [6, 64], [8, 65], [33, 70]]) {
    for (const [fn, w] of [["packA", 6], ["packB", 8]] as const) {
      // X[i, p] stored row-major (rs = k, cs = 1) and column-major (rs = 1, cs = rows).
      for (const [rs, cs] of [[k, 1], [1, rows]]) {
        const src = 1024, dst = 1024 + rows * k + 64, padded = Math.ceil(rows / w) * w;
        for (let i = 0; i < rows; i++) for (let p = 0; p < k; p++) view[src + i * rs + p * cs] = i * 1000 + p + 0.5;
        view.fill(NaN, dst, dst + padded * k);
        ex[fn](src * 4, rs, cs, rows, k, dst * 4, 0, padded);
        for (let i0 = 0; i0 < padded; i0 += w) {
          for (let p = 0; p < k; p++) {
            for (let r = 0; r < w; r++) {
              const got = view[dst + i0 * k + p * w + r], want = i0 + r < rows ? (i0 + r) * 1000 + p + 0.5 : 0;
              if (got !== want) assert.fail(`${fn} ${rows}×${k} rs ${rs}: X[${i0 + r}, ${p}] = ${got}, want ${want}`);
            }
          }
        }
      }
    }
  }
});
