/**
 * WebGPU layout and indexing kernels against the CPU kernels on seeded random inputs: strided (permute,
 * broadcast, slices with steps and offsets, flips), stridedScatter, concat of 1..10 inputs along every axis,
 * gather / scatterAdd along every axis, indexSelect / indexAdd, in f32 / i32 / bool, with zero-size and
 * rank-0 shapes. Copies and integer results must match exactly, f32 sums within 1e-5 abs + 1e-5 rel.
 *
 * Each test records all its cases first and reads every output back in one batch (a readback costs ≥10 ms
 * on a software adapter).
 */
import assert from "node:assert/strict";
import { allocArray, type DType, type TypedArray } from "../../core/dtype.ts";
import { broadcastStrides, sizeOf, stridesOf } from "../../core/shape.ts";
import { cpuKernels } from "../../kernels/cpu/mod.ts";
import type { CpuBuffer } from "../../kernels/cpu/buffer.ts";
import type { KernelAttrs, TensorRef } from "../../kernels/registry.ts";
import { indexKernels } from "../../kernels/webgpu/index.ts";
import { coalesce, layoutKernels } from "../../kernels/webgpu/layout.ts";
import type { GpuBuffer, WebGpuRuntime } from "../../kernels/webgpu/runtime.ts";
import { gpuRef, gpuTest } from "../helpers/webgpu.ts";
import { rng01 as rng } from "../helpers/host_rng.ts";

type Kernel = "strided" | "stridedScatter" | "concat" | "gather" | "scatterAdd" | "indexSelect" | "indexAdd";
type Rand = () => number;

const DTYPES: DType[] = ["f32", "i32", "bool"];

const int = (r: Rand, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

function randomData(r: Rand, dtype: DType, n: number): TypedArray {
  const a = allocArray(dtype, n);
  for (let i = 0; i < n; i++) {
    a[i] = dtype === "f32" ? (r() - 0.5) * 8 : dtype === "i32" ? int(r, -1000, 1000) : (r() < 0.5 ? 1 : 0);
  }
  return a;
}

function randomIndex(r: Rand, n: number, size: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = int(r, 0, size - 1);
  return a;
}

function randomShape(r: Rand, rank: number, max = 4, allowZero = false): number[] {
  return Array.from({ length: rank }, () => int(r, allowZero ? 0 : 1, max));
}

/** A value no kernel produces, pre-filled into outputs so an element a kernel fails to write is caught. */
function sentinel(dtype: DType, n: number): TypedArray {
  return allocArray(dtype, n).fill(dtype === "f32" ? -12345.5 : dtype === "i32" ? 0x7eadbeef : 7);
}

interface Arg {
  data: TypedArray;
  shape: number[];
  dtype: DType;
}

const arg = (data: TypedArray, shape: number[], dtype: DType): Arg => ({ data, shape, dtype });

interface Pending {
  name: string;
  out: TensorRef<GpuBuffer>;
  expected: TypedArray;
  /** Whether f32 results are sums (compared with a tolerance) rather than copies (compared exactly). */
  sums: boolean;
  free: GpuBuffer[];
}

/** Records GPU launches with their CPU expectations, then reads all outputs back in one batch. */
class Checker {
  readonly pending: Pending[] = [];
  readonly #layout;
  readonly #index;

  constructor(readonly rt: WebGpuRuntime) {
    this.#layout = layoutKernels(rt);
    this.#index = indexKernels(rt);
  }

  /** Runs `kernel` on the GPU, returning the output (no CPU run). */
  gpu<K extends Kernel>(kernel: K, inputs: Arg[], outShape: number[], outDtype: DType, attrs: KernelAttrs<K>) {
    const ins = inputs.map((a) => gpuRef(this.rt, a.data, a.shape, a.dtype));
    const out = gpuRef(this.rt, sentinel(outDtype, sizeOf(outShape)), outShape, outDtype);
    const table = { ...this.#layout, ...this.#index } as Record<Kernel, (...a: unknown[]) => void>;
    table[kernel](ins, [out], attrs);
    return { out, free: [...ins.map((t) => t.buf), out.buf] };
  }

  /** Runs `kernel` on both backends and records the comparison. */
  check<K extends Kernel>(
    name: string,
    kernel: K,
    inputs: Arg[],
    outShape: number[],
    outDtype: DType,
    attrs: KernelAttrs<K>,
    sums = false,
  ): void {
    const cpuIns: TensorRef<CpuBuffer>[] = inputs.map((a) => ({ buf: a.data.slice(), shape: a.shape, dtype: a.dtype }));
    const cpuOut: TensorRef<CpuBuffer> = {
      buf: sentinel(outDtype, sizeOf(outShape)),
      shape: outShape,
      dtype: outDtype,
    };
    (cpuKernels[kernel] as (...a: unknown[]) => void)(cpuIns, [cpuOut], attrs);
    this.expect(name, kernel, inputs, outShape, outDtype, attrs, cpuOut.buf, sums);
  }

  /** Runs `kernel` on the GPU and records the comparison with a given expectation. */
  expect<K extends Kernel>(
    name: string,
    kernel: K,
    inputs: Arg[],
    outShape: number[],
    outDtype: DType,
    attrs: KernelAttrs<K>,
    expected: TypedArray,
    sums = false,
  ): void {
    const { out, free } = this.gpu(kernel, inputs, outShape, outDtype, attrs);
    this.pending.push({ name: `${kernel} ${name}`, out, expected, sums, free });
  }

  /** Reads every recorded output back and compares; returns the number of cases checked. */
  async verify(): Promise<number> {
    const got = await Promise.all(this.pending.map((p) => this.rt.read(p.out.buf, p.out.dtype, sizeOf(p.out.shape))));
    this.pending.forEach((p, c) => {
      const a = got[c], e = p.expected;
      assert.equal(a.length, e.length, p.name);
      for (let i = 0; i < e.length; i++) {
        if (p.sums && p.out.dtype === "f32") {
          if (!(Math.abs(a[i] - e[i]) <= 1e-5 + 1e-5 * Math.abs(e[i]))) {
            assert.fail(`${p.name}: element ${i} is ${a[i]}, expected ${e[i]}`);
          }
        } else if (!Object.is(a[i], e[i])) {
          assert.fail(`${p.name}: element ${i} is ${a[i]}, expected ${e[i]}`);
        }
      }
      for (const b of p.free) this.rt.free(b);
    });
    const n = this.pending.length;
    this.pending.length = 0;
    return n;
  }
}

// ---- layout ---------------------------------------------------------------------------------------------

Deno.test("coalesce merges contiguous axes and drops size-1 axes", () => {
  assert.deepEqual(coalesce([2, 3, 4], [12, 4, 1]), { shape: [24], strides: [1] });
  assert.deepEqual(coalesce([2, 1, 3], [3, 99, 1]), { shape: [6], strides: [1] });
  assert.deepEqual(coalesce([2, 3], [1, 2]), { shape: [2, 3], strides: [1, 2] });
  assert.deepEqual(coalesce([], []), { shape: [], strides: [] });
  assert.deepEqual(coalesce([4, 5], [0, 1]), { shape: [4, 5], strides: [0, 1] });
});

gpuTest("strided: permutations, broadcasts, slices with steps and offsets, flips, rank 0, zero-size", async (rt) => {
  const c = new Checker(rt);
  const r = rng(1);
  for (const dtype of DTYPES) {
    for (let rank = 0; rank <= 7; rank++) {
      for (let rep = 0; rep < 3; rep++) {
        const shape = randomShape(r, rank, rank > 5 ? 3 : 4);
        const x = arg(randomData(r, dtype, sizeOf(shape)), shape, dtype);
        const st = stridesOf(shape);
        // Permutation.
        const perm = shape.map((_, i) => i).sort(() => r() - 0.5);
        c.check(`permute ${shape} ${perm}`, "strided", [x], perm.map((a) => shape[a]), dtype, {
          offset: 0,
          strides: perm.map((a) => st[a]),
        });
        // Broadcast: size-1 axes of a squeezed input expanded, plus new leading axes.
        const small = shape.map((d) => (r() < 0.4 ? 1 : d));
        const xs = arg(randomData(r, dtype, sizeOf(small)), small, dtype);
        const target = [...(rank < 6 ? [int(r, 1, 3)] : []), ...shape];
        c.check(`expand ${small} -> ${target}`, "strided", [xs], target, dtype, {
          offset: 0,
          strides: broadcastStrides(small, target),
        });
        // Slice with a start and a step along every axis (some empty), then a permutation of it.
        const starts = shape.map((d) => int(r, 0, d));
        const steps = shape.map(() => int(r, 1, 3));
        const lens = shape.map((d, i) => Math.ceil((d - starts[i]) / steps[i]));
        const offset = starts.reduce((p, s, i) => p + s * st[i], 0);
        const sst = st.map((s, i) => s * steps[i]);
        c.check(`slice ${shape} start ${starts} step ${steps}`, "strided", [x], lens, dtype, { offset, strides: sst });
        c.check(`slice+permute ${shape}`, "strided", [x], perm.map((a) => lens[a]), dtype, {
          offset,
          strides: perm.map((a) => sst[a]),
        });
        // Flip every other axis (negative strides).
        if (sizeOf(shape) > 0) {
          const flip = shape.map((_, i) => i % 2 === 0);
          const foff = shape.reduce((p, d, i) => p + (flip[i] ? (d - 1) * st[i] : 0), 0);
          c.check(`flip ${shape}`, "strided", [x], shape, dtype, {
            offset: foff,
            strides: st.map((s, i) => (flip[i] ? -s : s)),
          });
        }
      }
    }
    // Rank 0 from an offset, and zero-size inputs and outputs.
    const v = arg(randomData(r, dtype, 10), [10], dtype);
    c.check("rank 0 at offset 7", "strided", [v], [], dtype, { offset: 7, strides: [] });
    c.check("rank 0 to rank 2 broadcast", "strided", [arg(randomData(r, dtype, 1), [], dtype)], [3, 4], dtype, {
      offset: 0,
      strides: [0, 0],
    });
    c.check("zero-size", "strided", [arg(allocArray(dtype, 0), [3, 0, 2], dtype)], [2, 0, 3], dtype, {
      offset: 0,
      strides: [1, 2, 0],
    });
    c.check("empty slice", "strided", [v], [0], dtype, { offset: 0, strides: [1] });
  }
  const n = await c.verify();
  assert.ok(n > 300, `${n} cases`);
});

gpuTest("strided: a grid over 65535 workgroups (split over x and y)", async (rt) => {
  const c = new Checker(rt);
  const r = rng(2);
  const shape = [65536 + 7, 64];
  const x = arg(randomData(r, "i32", sizeOf(shape)), shape, "i32");
  c.check("transpose of 4M elements", "strided", [x], [64, 65536 + 7], "i32", { offset: 0, strides: [1, 64] });
  await c.verify();
});

gpuTest("stridedScatter: slices with steps, permuted views, rank 0, zero-size", async (rt) => {
  const c = new Checker(rt);
  const r = rng(3);
  for (const dtype of DTYPES) {
    for (let rank = 0; rank <= 6; rank++) {
      for (let rep = 0; rep < 3; rep++) {
        const shape = randomShape(r, rank, rank > 4 ? 3 : 5);
        const base = arg(randomData(r, dtype, sizeOf(shape)), shape, dtype);
        const st = stridesOf(shape);
        const starts = shape.map((d) => int(r, 0, d));
        const steps = shape.map(() => int(r, 1, 3));
        const lens = shape.map((d, i) => Math.ceil((d - starts[i]) / steps[i]));
        const offset = starts.reduce((p, s, i) => p + s * st[i], 0);
        const sst = st.map((s, i) => s * steps[i]);
        const src = arg(randomData(r, dtype, sizeOf(lens)), lens, dtype);
        c.check(`slice ${shape} start ${starts} step ${steps}`, "stridedScatter", [base, src], shape, dtype, {
          offset,
          strides: sst,
        });
        // Scatter through a permuted (transposed) view of the whole base.
        const perm = shape.map((_, i) => i).sort(() => r() - 0.5);
        const pshape = perm.map((a) => shape[a]);
        const psrc = arg(randomData(r, dtype, sizeOf(pshape)), pshape, dtype);
        c.check(`permuted ${shape} ${perm}`, "stridedScatter", [base, psrc], shape, dtype, {
          offset: 0,
          strides: perm.map((a) => st[a]),
        });
      }
    }
    const base = arg(randomData(r, dtype, 6), [2, 3], dtype);
    c.check("empty src", "stridedScatter", [base, arg(allocArray(dtype, 0), [2, 0], dtype)], [2, 3], dtype, {
      offset: 0,
      strides: [3, 1],
    });
    c.check(
      "zero-size base",
      "stridedScatter",
      [
        arg(allocArray(dtype, 0), [0, 4], dtype),
        arg(allocArray(dtype, 0), [0, 2], dtype),
      ],
      [0, 4],
      dtype,
      { offset: 1, strides: [4, 2] },
    );
    c.check(
      "rank 0",
      "stridedScatter",
      [arg(randomData(r, dtype, 1), [], dtype), arg(randomData(r, dtype, 1), [], dtype)],
      [],
      dtype,
      {
        offset: 0,
        strides: [],
      },
    );
  }
  const n = await c.verify();
  assert.ok(n > 100, `${n} cases`);
});

gpuTest("concat: 1..10 inputs along every axis, zero-size inputs", async (rt) => {
  const c = new Checker(rt);
  const r = rng(4);
  for (const dtype of DTYPES) {
    for (let rank = 1; rank <= 5; rank++) {
      for (let axis = 0; axis < rank; axis++) {
        for (let count = 1; count <= 10; count++) {
          if (rank > 2 && count % 3 !== 0 && count !== 1 && count !== 10) continue;
          const shape = randomShape(r, rank, rank > 3 ? 3 : 4, rank === 3 && count === 7);
          const inputs = Array.from({ length: count }, () => {
            const s = shape.map((d, i) => (i === axis ? int(r, r() < 0.2 ? 0 : 1, 4) : d));
            return arg(randomData(r, dtype, sizeOf(s)), s, dtype);
          });
          const total = inputs.reduce((p, t) => p + t.shape[axis], 0);
          const out = shape.map((d, i) => (i === axis ? total : d));
          c.check(`${count} × ${shape} axis ${axis}`, "concat", inputs, out, dtype, { axis });
        }
      }
    }
  }
  const n = await c.verify();
  assert.ok(n > 150, `${n} cases`);
});

// ---- indexing -------------------------------------------------------------------------------------------

gpuTest("gather / scatterAdd along every axis, index smaller than the input off the axis", async (rt) => {
  const c = new Checker(rt);
  const r = rng(5);
  for (const dtype of DTYPES) {
    for (let rank = 1; rank <= 6; rank++) {
      for (let axis = 0; axis < rank; axis++) {
        for (let rep = 0; rep < 2; rep++) {
          const xshape = randomShape(r, rank, rank > 4 ? 3 : 5);
          const size = xshape[axis];
          // Off the axis the index may be smaller than x; along it, any length (more entries → repeats).
          const ishape = xshape.map((d, i) => (i === axis ? int(r, 0, rep === 0 ? 3 : 12) : int(r, 1, d)));
          const index = arg(randomIndex(r, sizeOf(ishape), size), ishape, "i32");
          const x = arg(randomData(r, dtype, sizeOf(xshape)), xshape, dtype);
          c.check(`${xshape} index ${ishape} axis ${axis}`, "gather", [x, index], ishape, dtype, { axis });
          const src = arg(randomData(r, dtype, sizeOf(ishape)), ishape, dtype);
          c.check(
            `${xshape} index ${ishape} axis ${axis}`,
            "scatterAdd",
            [x, index, src],
            xshape,
            dtype,
            { axis },
            true,
          );
        }
      }
    }
    // Many repeats of few targets (long f32 sums), and zero-size tensors.
    const x = arg(randomData(r, dtype, 3 * 4), [3, 4], dtype);
    const ishape = [200, 4];
    const index = arg(randomIndex(r, 800, 3), ishape, "i32");
    c.check(
      "200 entries into 3 rows",
      "scatterAdd",
      [x, index, arg(randomData(r, dtype, 800), ishape, dtype)],
      [3, 4],
      dtype,
      {
        axis: 0,
      },
      true,
    );
    c.check("200 from 3 rows", "gather", [x, index], ishape, dtype, { axis: 0 });
    const empty = arg(allocArray(dtype, 0), [0, 4], dtype);
    const eidx = arg(new Int32Array(0), [0, 2], "i32");
    c.check("zero-size", "gather", [empty, eidx], [0, 2], dtype, { axis: 1 });
    c.check("zero-size", "scatterAdd", [empty, eidx, arg(allocArray(dtype, 0), [0, 2], dtype)], [0, 4], dtype, {
      axis: 1,
    });
    const e2 = arg(new Int32Array(0), [3, 0], "i32");
    c.check("empty index", "scatterAdd", [x, e2, arg(allocArray(dtype, 0), [3, 0], dtype)], [3, 4], dtype, { axis: 0 });
  }
  const n = await c.verify();
  assert.ok(n > 200, `${n} cases`);
});

gpuTest("indexSelect / indexAdd along every axis with repeated indices", async (rt) => {
  const c = new Checker(rt);
  const r = rng(6);
  for (const dtype of DTYPES) {
    for (let rank = 1; rank <= 6; rank++) {
      for (let axis = 0; axis < rank; axis++) {
        for (let rep = 0; rep < 2; rep++) {
          const xshape = randomShape(r, rank, rank > 4 ? 3 : 5);
          const size = xshape[axis];
          const k = int(r, 0, rep === 0 ? 4 : 15);
          const index = arg(randomIndex(r, k, size), [k], "i32");
          const x = arg(randomData(r, dtype, sizeOf(xshape)), xshape, dtype);
          const oshape = xshape.map((d, i) => (i === axis ? k : d));
          c.check(`${xshape} k ${k} axis ${axis}`, "indexSelect", [x, index], oshape, dtype, { axis });
          const src = arg(randomData(r, dtype, sizeOf(oshape)), oshape, dtype);
          c.check(`${xshape} k ${k} axis ${axis}`, "indexAdd", [x, index, src], xshape, dtype, { axis }, true);
        }
      }
    }
    // Embedding-like: many rows into a table, and zero-size tensors.
    const table = arg(randomData(r, dtype, 50 * 8), [50, 8], dtype);
    const ids = arg(randomIndex(r, 700, 50), [700], "i32");
    c.check("700 rows of 50", "indexSelect", [table, ids], [700, 8], dtype, { axis: 0 });
    c.check(
      "700 rows into 50",
      "indexAdd",
      [table, ids, arg(randomData(r, dtype, 5600), [700, 8], dtype)],
      [50, 8],
      dtype,
      {
        axis: 0,
      },
      true,
    );
    const empty = arg(allocArray(dtype, 0), [0, 3], dtype);
    c.check("zero-size table", "indexSelect", [empty, arg(new Int32Array(0), [0], "i32")], [0, 3], dtype, { axis: 0 });
    c.check(
      "zero-size inner",
      "indexAdd",
      [
        arg(allocArray(dtype, 0), [4, 0], dtype),
        arg(randomIndex(r, 3, 4), [3], "i32"),
        arg(allocArray(dtype, 0), [3, 0], dtype),
      ],
      [4, 0],
      dtype,
      { axis: 0 },
    );
  }
  const n = await c.verify();
  assert.ok(n > 200, `${n} cases`);
});

gpuTest("out-of-range indices: gathers give 0, scatters skip the entry (the CPU throws)", async (rt) => {
  const c = new Checker(rt);
  const r = rng(7);
  const x = arg(randomData(r, "f32", 12), [3, 4], "f32");
  const bad = [-1, 3, 2, 1 << 30, 0, -(1 << 30)];
  // gather along axis 0 with index [6, 1]; indexSelect along axis 0.
  const gi = arg(Int32Array.from(bad), [6, 1], "i32");
  const gExp = new Float32Array(6);
  bad.forEach((v, j) => (gExp[j] = v >= 0 && v < 3 ? x.data[v * 4] : 0));
  c.expect("out of range", "gather", [x, gi], [6, 1], "f32", { axis: 0 }, gExp);
  const sExp = new Float32Array(24);
  bad.forEach((v, j) => {
    for (let t = 0; t < 4; t++) sExp[j * 4 + t] = v >= 0 && v < 3 ? x.data[v * 4 + t] : 0;
  });
  const si = arg(Int32Array.from(bad), [6], "i32");
  c.expect("out of range", "indexSelect", [x, si], [6, 4], "f32", { axis: 0 }, sExp);
  // The scatters: entries with bad indices are ignored, i.e. the CPU result with those entries removed.
  const src = arg(randomData(r, "f32", 6), [6, 1], "f32");
  const keep = bad.map((v) => v >= 0 && v < 3);
  const sa = cpuRun(
    "scatterAdd",
    [x, arg(Int32Array.from(bad.map((v, j) => keep[j] ? v : 0)), [6, 1], "i32"), masked(src, keep, 1)],
    [3, 4],
    { axis: 0 },
  );
  c.expect("out of range", "scatterAdd", [x, gi, src], [3, 4], "f32", { axis: 0 }, sa, true);
  const isrc = arg(randomData(r, "f32", 24), [6, 4], "f32");
  const ia = cpuRun(
    "indexAdd",
    [x, arg(Int32Array.from(bad.map((v, j) => keep[j] ? v : 0)), [6], "i32"), masked(isrc, keep, 4)],
    [3, 4],
    { axis: 0 },
  );
  c.expect("out of range", "indexAdd", [x, si, isrc], [3, 4], "f32", { axis: 0 }, ia, true);
  await c.verify();
});

/** `a` with the rows (of `inner` elements) whose `keep` flag is false zeroed. */
function masked(a: Arg, keep: boolean[], inner: number): Arg {
  const d = a.data.slice();
  keep.forEach((k, j) => {
    if (!k) d.fill(0, j * inner, (j + 1) * inner);
  });
  return arg(d, a.shape, a.dtype);
}

function cpuRun<K extends Kernel>(kernel: K, inputs: Arg[], outShape: number[], attrs: KernelAttrs<K>): TypedArray {
  const out: TensorRef<CpuBuffer> = { buf: allocArray("f32", sizeOf(outShape)), shape: outShape, dtype: "f32" };
  const ins = inputs.map((a) => ({ buf: a.data, shape: a.shape, dtype: a.dtype }));
  (cpuKernels[kernel] as (...a: unknown[]) => void)(ins, [out], attrs);
  return out.buf;
}

gpuTest("scatterAdd and indexAdd are bit-identical run to run", async (rt) => {
  const c = new Checker(rt);
  const r = rng(8);
  const x = arg(randomData(r, "f32", 4 * 64), [4, 64], "f32");
  const ishape = [500, 64];
  const index = arg(randomIndex(r, sizeOf(ishape), 4), ishape, "i32");
  const src = arg(randomData(r, "f32", sizeOf(ishape)), ishape, "f32");
  const ids = arg(randomIndex(r, 500, 4), [500], "i32");
  const runs = [0, 1, 2].flatMap(() => [
    c.gpu("scatterAdd", [x, index, src], [4, 64], "f32", { axis: 0 }),
    c.gpu("indexAdd", [x, ids, src], [4, 64], "f32", { axis: 0 }),
  ]);
  const got = await Promise.all(runs.map((g) => rt.read(g.out.buf, "f32", 256)));
  const bits = got.map((a) => new Uint32Array(a.buffer, a.byteOffset, a.length));
  for (let k = 2; k < bits.length; k++) assert.deepEqual(bits[k], bits[k % 2], `run ${k >> 1} differs`);
  for (const g of runs) g.free.forEach((b) => rt.free(b));
});
