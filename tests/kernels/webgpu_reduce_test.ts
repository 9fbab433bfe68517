/**
 * WebGPU axis kernels (reduce, argReduce, softmax, cumsum) against the CPU kernels on the same seeded data:
 * every axis of rank 1–4 shapes, both kernel shapes (workgroup per lane and thread per lane), special
 * values (ties, NaN, ±∞), empty tensors and empty axes, grids beyond 65535 workgroups, and determinism.
 */
import assert from "node:assert/strict";
import { allocArray, type DType, type TypedArray } from "../../core/dtype.ts";
import { cpuKernels } from "../../kernels/cpu/mod.ts";
import type { TensorRef } from "../../kernels/registry.ts";
import { reduceKernels, type ReduceStrategy, useRowKernel } from "../../kernels/webgpu/reduce.ts";
import type { GpuBuffer, WebGpuRuntime } from "../../kernels/webgpu/runtime.ts";
import { gpuOut, gpuRef, gpuTest } from "../helpers/webgpu.ts";
import { rngSigned as rng } from "../helpers/host_rng.ts";

type Family = "reduce" | "argReduce" | "softmax" | "cumsum";
// deno-lint-ignore no-explicit-any
type AnyKernel<B> = (inputs: TensorRef<B>[], outputs: TensorRef<B>[], attrs: any) => void;

const sizeOf = (shape: readonly number[]) => shape.reduce((p, d) => p * d, 1);

function around(shape: readonly number[], axis: number): [number, number, number] {
  return [sizeOf(shape.slice(0, axis)), shape[axis], sizeOf(shape.slice(axis + 1))];
}

/** Shapes whose every axis is tested: n ∈ {1, 7, 64, 257, 1000}, inner > 1, both kernel shapes, empties. */
const SHAPES: number[][] = [
  [1],
  [7],
  [64],
  [257],
  [1000],
  [3, 7],
  [5, 64],
  [4, 257],
  [2, 1000],
  [64, 3],
  [300, 5],
  [257, 1100],
  [2, 7, 3],
  [3, 64, 5],
  [2, 257, 4],
  [4, 1, 6],
  [2, 3, 4, 5],
  [2, 1, 64, 3],
  [1, 2, 3, 257],
  [0],
  [0, 5],
  [3, 0],
  [2, 0, 3],
];

function* cases(): Generator<{ shape: number[]; axis: number }> {
  for (const shape of SHAPES) for (let axis = 0; axis < shape.length; axis++) yield { shape, axis };
}

type Gen = "f32" | "f32nan" | "ties" | "tiesnan" | "i32" | "i32big" | "i32ties" | "bool" | "softmax";

/** Seeded data of each flavour: ties are small integers, NaNs are sparse, big i32 sums overflow (and wrap). */
function data(gen: Gen, size: number, seed: number): TypedArray {
  const next = rng(seed);
  const dtype: DType = gen === "bool" ? "bool" : gen.startsWith("i32") ? "i32" : "f32";
  const x = allocArray(dtype, size);
  for (let i = 0; i < size; i++) {
    const u = next();
    switch (gen) {
      case "f32":
        x[i] = u;
        break;
      case "f32nan":
        x[i] = next() > 0.96 ? NaN : u;
        break;
      case "ties":
        x[i] = Math.round(u * 3);
        break;
      case "tiesnan":
        x[i] = next() > 0.9 ? NaN : Math.round(u * 3);
        break;
      case "i32":
        x[i] = Math.round(u * 50);
        break;
      case "i32big":
        x[i] = Math.round(u * 2 ** 30);
        break;
      case "i32ties":
        x[i] = Math.round(u * 2);
        break;
      case "bool":
        x[i] = u > 0 ? 1 : 0;
        break;
      case "softmax":
        x[i] = next() > 0.85 ? -Infinity : 4 * u;
        break;
    }
  }
  return x;
}

const dtypeOf = (gen: Gen): DType => (gen === "bool" ? "bool" : gen.startsWith("i32") ? "i32" : "f32");

interface Pending {
  label: string;
  out: TensorRef<GpuBuffer>;
  expect: TypedArray;
  /** Absolute tolerance for floats (integers and indices are exact). */
  atol: number;
}

/** Runs kernels on both backends and compares the results, reading every GPU output in one batch. */
class Harness {
  readonly gpu: Record<Family, AnyKernel<GpuBuffer>>;
  pending: Pending[] = [];
  checked = 0;

  constructor(readonly rt: WebGpuRuntime, strategy: ReduceStrategy) {
    this.gpu = reduceKernels(rt, strategy) as unknown as Record<Family, AnyKernel<GpuBuffer>>;
  }

  run(
    label: string,
    family: Family,
    x: TypedArray,
    shape: number[],
    dtype: DType,
    outShape: number[],
    outDtype: DType,
    attrs: unknown,
    atol = 1e-5,
  ): void {
    const expect = allocArray(outDtype, sizeOf(outShape));
    (cpuKernels[family] as unknown as AnyKernel<TypedArray>)(
      [{ buf: x, shape, dtype }],
      [{ buf: expect, shape: outShape, dtype: outDtype }],
      attrs,
    );
    const gx = gpuRef(this.rt, x, shape, dtype);
    const out = gpuOut(this.rt, outShape, outDtype);
    this.gpu[family]([gx], [out], attrs);
    this.rt.free(gx.buf); // later users of the buffer are ordered after this kernel
    this.pending.push({ label, out, expect, atol });
  }

  /** Reads every pending output (concurrently) and compares; throws listing the first mismatches. */
  async check(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    const got = await Promise.all(batch.map((p) => this.rt.read(p.out.buf, p.out.dtype, p.expect.length)));
    const failures: string[] = [];
    batch.forEach((p, b) => {
      this.rt.free(p.out.buf);
      const g = got[b], e = p.expect;
      assert.equal(g.length, e.length, p.label);
      const float = p.out.dtype === "f32";
      for (let i = 0; i < e.length; i++) {
        const a = g[i], c = e[i];
        const ok = float
          ? (Number.isNaN(c)
            ? Number.isNaN(a)
            : Number.isFinite(c)
            ? Math.abs(a - c) <= p.atol + 1e-4 * Math.abs(c)
            : a === c)
          : a === c;
        if (!ok) {
          failures.push(`${p.label} [${i}]: gpu ${a}, cpu ${c}`);
          break;
        }
      }
      this.checked++;
    });
    if (failures.length > 0) {
      throw new Error(`${failures.length} of ${batch.length} mismatched:\n${failures.slice(0, 12).join("\n")}`);
    }
  }
}

/** Tolerance of an f32 sum (or prefix sum) over n elements of magnitude ≤ 1. */
const sumTol = (n: number) => 1e-5 * Math.max(1, n / 8);

gpuTest("the test shapes cover both kernel shapes, contiguous and strided", () => {
  const kinds = new Set<string>();
  for (const { shape, axis } of cases()) {
    const [outer, n, inner] = around(shape, axis);
    kinds.add(`${useRowKernel(outer, n, inner) ? "row" : "lane"}:${inner === 1 ? "contiguous" : "strided"}`);
  }
  assert.deepEqual([...kinds].sort(), ["lane:contiguous", "lane:strided", "row:contiguous", "row:strided"]);
});

/** Softmax input with sparse −∞, and (when there are ≥ 4 lanes) lane 0 all −∞, lane 1 with a NaN, lane 2 with +∞. */
function softmaxInput(shape: number[], axis: number, seed: number): Float32Array {
  const x = data("softmax", sizeOf(shape), seed) as Float32Array;
  const [outer, n, inner] = around(shape, axis);
  const lanes = outer * inner;
  const at = (lane: number, k: number) => Math.floor(lane / inner) * n * inner + (lane % inner) + k * inner;
  if (lanes >= 4 && n > 0) {
    for (let k = 0; k < n; k++) x[at(0, k)] = -Infinity;
    x[at(1, n - 1)] = NaN;
    x[at(2, Math.floor(n / 2))] = Infinity;
  }
  return x;
}

for (const strategy of ["rows", "lanes"] as const) {
  gpuTest(`reduce sum/max/min (f32, i32, bool sum → i32) matches the CPU on every axis (${strategy})`, async (rt) => {
    const h = new Harness(rt, strategy);
    let seed = 1;
    for (const { shape, axis } of cases()) {
      const n = shape[axis];
      const outShape = shape.map((d, i) => (i === axis ? 1 : d));
      const size = sizeOf(shape);
      const plan: [Gen, ("sum" | "max" | "min")[]][] = [
        ["f32", ["sum", "max", "min"]],
        ["f32nan", ["sum", "max", "min"]],
        ["i32", ["sum", "max", "min"]],
        ["i32big", ["sum"]],
        ["bool", ["sum"]],
      ];
      for (const [gen, ops] of plan) {
        const x = data(gen, size, seed++);
        const dtype = dtypeOf(gen);
        for (const op of ops) {
          const outDtype = op === "sum" && dtype !== "f32" ? "i32" : dtype;
          const label = `${op} ${gen} [${shape}] axis ${axis}`;
          h.run(label, "reduce", x, shape, dtype, outShape, outDtype, { op, axis }, sumTol(n));
        }
      }
    }
    await h.check();
    assert.ok(h.checked > 500, `${h.checked} comparisons`);
  });

  gpuTest(`argmax/argmin: ties go to the lowest index, the first NaN wins (${strategy})`, async (rt) => {
    const h = new Harness(rt, strategy);
    let seed = 1000;
    for (const { shape, axis } of cases()) {
      const outShape = shape.map((d, i) => (i === axis ? 1 : d));
      for (const gen of ["f32", "ties", "tiesnan", "i32ties"] as const) {
        const x = data(gen, sizeOf(shape), seed++);
        for (const op of ["argmax", "argmin"] as const) {
          h.run(`${op} ${gen} [${shape}] axis ${axis}`, "argReduce", x, shape, dtypeOf(gen), outShape, "i32", {
            op,
            axis,
          });
        }
      }
    }
    await h.check();
  });

  gpuTest(`softmax/logSoftmax: −∞ entries, all −∞ rows, NaN and +∞ rows (${strategy})`, async (rt) => {
    const h = new Harness(rt, strategy);
    let seed = 2000;
    for (const { shape, axis } of cases()) {
      const x = softmaxInput(shape, axis, seed++);
      for (const log of [false, true]) {
        h.run(`softmax log=${log} [${shape}] axis ${axis}`, "softmax", x, shape, "f32", shape, "f32", { axis, log });
      }
    }
    await h.check();
  });

  gpuTest(`cumsum forward/reverse (f32, i32, bool → i32) (${strategy})`, async (rt) => {
    const h = new Harness(rt, strategy);
    let seed = 3000;
    for (const { shape, axis } of cases()) {
      const n = shape[axis];
      for (const gen of ["f32", "i32big", "bool"] as const) {
        const x = data(gen, sizeOf(shape), seed++);
        const dtype = dtypeOf(gen);
        const outDtype = dtype === "f32" ? "f32" : "i32";
        for (const reverse of [false, true]) {
          const label = `cumsum ${gen} reverse=${reverse} [${shape}] axis ${axis}`;
          h.run(label, "cumsum", x, shape, dtype, shape, outDtype, { axis, reverse }, sumTol(n));
        }
      }
    }
    await h.check();
  });
}

gpuTest("grids of more than 65535 workgroups (row and lane kernels)", async (rt) => {
  // Row kernels: a workgroup per row, 65600 of them (one launch: barriers are slow on software adapters).
  const rowsH = new Harness(rt, "rows");
  const rows = [65600, 32];
  rowsH.run("sum rows", "reduce", data("f32", sizeOf(rows), 7), rows, "f32", [65600, 1], "f32", {
    op: "sum",
    axis: 1,
  }, sumTol(32));
  await rowsH.check();
  // Lane kernels: a thread per lane; 65537 · 64 lanes need 65537 workgroups of 64.
  const h = new Harness(rt, "lanes");
  const cols = [1, 65537 * 64];
  const c = data("i32", sizeOf(cols), 9);
  h.run("max cols", "reduce", c, cols, "i32", [1, cols[1]], "i32", { op: "max", axis: 0 });
  h.run("cumsum cols", "cumsum", c, cols, "i32", cols, "i32", { axis: 0, reverse: true });
  await h.check();
});

gpuTest("n == 0: sums are 0, argmax is 0; zero-size outputs launch nothing", async (rt) => {
  for (const strategy of ["rows", "lanes"] as const) {
    const h = new Harness(rt, strategy);
    const x = new Float32Array(0);
    h.run("sum over empty axis", "reduce", x, [3, 0, 2], "f32", [3, 1, 2], "f32", { op: "sum", axis: 1 });
    h.run("i32 sum over empty axis", "reduce", new Int32Array(0), [4, 0], "i32", [4, 1], "i32", {
      op: "sum",
      axis: 1,
    });
    h.run("argmax over empty axis", "argReduce", x, [5, 0], "f32", [5, 1], "i32", { op: "argmax", axis: 1 });
    await h.check();
    const before = rt.stats.dispatches;
    const k = reduceKernels(rt, strategy);
    const e = gpuRef(rt, x, [0, 4], "f32");
    const outs = [gpuOut(rt, [1, 4], "f32"), gpuOut(rt, [0, 1], "f32"), gpuOut(rt, [0, 4], "f32")];
    k.reduce([e], [outs[0]], { op: "sum", axis: 0 }); // four zeros: the only launch
    k.reduce([e], [outs[1]], { op: "sum", axis: 1 });
    k.softmax([e], [outs[2]], { axis: 1, log: false });
    k.cumsum([e], [outs[2]], { axis: 0, reverse: false });
    k.argReduce([e], [outs[1]], { op: "argmin", axis: 1 });
    assert.equal(rt.stats.dispatches - before, 1);
    assert.deepEqual([...await rt.read(outs[0].buf, "f32", 4)], [0, 0, 0, 0]);
    for (const o of [e, ...outs]) rt.free(o.buf);
  }
});

gpuTest("the same reduction twice gives bit-identical results", async (rt) => {
  const shapes: [number[], number][] = [[[16, 3000], 1], [[8, 700], 1], [[1000, 3], 0], [[64, 5], 1]];
  const outs: { buf: GpuBuffer; size: number }[] = [];
  for (const strategy of ["rows", "lanes"] as const) {
    const k = reduceKernels(rt, strategy);
    for (const [shape, axis] of shapes) {
      const x = gpuRef(rt, data("f32", sizeOf(shape), 42), shape, "f32");
      const reduced = shape.map((d, i) => (i === axis ? 1 : d));
      for (let rep = 0; rep < 2; rep++) {
        const s = gpuOut(rt, reduced, "f32"), sm = gpuOut(rt, shape, "f32"), cs = gpuOut(rt, shape, "f32");
        k.reduce([x], [s], { op: "sum", axis });
        k.softmax([x], [sm], { axis, log: true });
        k.cumsum([x], [cs], { axis, reverse: false });
        outs.push({ buf: s.buf, size: sizeOf(reduced) }, { buf: sm.buf, size: sizeOf(shape) }, {
          buf: cs.buf,
          size: sizeOf(shape),
        });
      }
      rt.free(x.buf);
    }
  }
  const got = await Promise.all(outs.map((o) => rt.read(o.buf, "f32", o.size)));
  for (let i = 0; i < got.length; i += 6) {
    for (let j = 0; j < 3; j++) {
      const a = new Uint32Array(got[i + j].buffer), b = new Uint32Array(got[i + 3 + j].buffer);
      assert.deepEqual(a, b, `output ${i + j}`);
    }
  }
  for (const o of outs) rt.free(o.buf);
});
