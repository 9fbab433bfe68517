/**
 * The WebAssembly SIMD elementwise kernel (kernels/cpu/wasm/elementwise.ts) against the JavaScript fast
 * loop it stands in for: bit-identical on every program it accepts (ops, broadcast patterns, chunk edges,
 * special values), and it accepts only programs whose f32x4 rendering is exact.
 */
import assert from "node:assert/strict";
import { allocArray, type DType } from "../../core/dtype.ts";
import { broadcastShapes, sizeOf } from "../../core/shape.ts";
import type { BinaryOp, TensorRef, UnaryOp } from "../../kernels/registry.ts";
import type { CpuBuffer } from "../../kernels/cpu/buffer.ts";
import { runFast } from "../../kernels/cpu/expr_run.ts";
import { planRuns } from "../../kernels/cpu/runs.ts";
import { binaryProgram, unaryProgram, whereProgram } from "../../kernels/expr/ops.ts";
import { add, type ElementwiseProgram, input, mul, program, round, sqrt, sub } from "../../kernels/expr/ir.ts";
import {
  CHUNK,
  emitElementwiseModule,
  f32Exact,
  runWasmElementwise,
  wasmElementwiseSupported,
} from "../../kernels/cpu/wasm/elementwise.ts";
import { sharedWasmMatmul } from "../../kernels/cpu/wasm/matmul.ts";
import { setTensorHeap } from "../../kernels/cpu/wasm/heap.ts";

const SPECIALS = [0, -0, Infinity, -Infinity, NaN, 1, -1, 1e-40, -1e-40, 3.4e38, -3.4e38, 0.1, 7];

function values(dtype: DType, shape: number[], seed: number): TensorRef<CpuBuffer> {
  const n = sizeOf(shape), buf = allocArray(dtype, n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const u = s / 2 ** 32;
    if (dtype === "bool") buf[i] = u < 0.5 ? 1 : 0;
    else buf[i] = u < 0.1 ? SPECIALS[i % SPECIALS.length] : (u - 0.5) * 10;
  }
  return { buf, shape, dtype };
}

/** A copy of `t` in a region of the tensor heap (`kernels/cpu/wasm/heap.ts`); the region goes into `regions`. */
function inHeap(t: TensorRef<CpuBuffer>, regions: number[]): TensorRef<CpuBuffer> {
  const heap = sharedWasmMatmul()!.heap, n = sizeOf(t.shape), width = t.dtype === "bool" ? 1 : 4;
  const at = heap.alloc(Math.max(n * width, 1))!.address;
  regions.push(at);
  const buf = t.dtype === "bool" ? new Uint8Array(heap.buffer, at, n) : new Float32Array(heap.buffer, at, n);
  buf.set(t.buf as Float32Array & Uint8Array);
  return { buf, shape: t.shape, dtype: t.dtype };
}

/**
 * Runs `p` on the SIMD kernel three ways — arrays outside the tensor heap (chunks copied through the
 * kernel's memory), all in the heap (in place), and the output and full-size inputs in the heap with the
 * broadcast ones outside (in place, their values staged) — each bit for bit against the JS loop.
 */
function check(p: ElementwiseProgram, inputs: TensorRef<CpuBuffer>[], what: string): void {
  const shape = broadcastShapes("test", ...inputs.map((t) => t.shape));
  const n = sizeOf(shape);
  const js = { buf: allocArray("f32", n), shape, dtype: "f32" as DType };
  runFast(p, inputs, js, false);
  const plan = planRuns(inputs.map((t) => t.shape), shape);
  const wasm = sharedWasmMatmul(), heap = wasm?.options.shared ? wasm.heap : null;
  if (heap) setTensorHeap(heap);
  for (const where of heap ? ["outside", "heap", "mixed"] : ["outside"]) {
    const regions: number[] = [];
    try {
      const ins = inputs.map((t) =>
        where === "outside" || (where === "mixed" && sizeOf(t.shape) < n) ? t : inHeap(t, regions)
      );
      const simd = where === "outside"
        ? { buf: allocArray("f32", n), shape, dtype: "f32" as DType }
        : inHeap({ buf: allocArray("f32", n), shape, dtype: "f32" }, regions);
      assert.ok(runWasmElementwise(p, plan, ins, simd), `${what}: the SIMD kernel applies`);
      for (let i = 0; i < n; i++) {
        if (!Object.is(simd.buf[i], js.buf[i])) {
          assert.fail(`${what} (${where}): element ${i} is ${simd.buf[i]}, JS ${js.buf[i]}`);
        }
      }
    } finally {
      for (const at of regions) heap!.free(at);
    }
  }
}

const SHAPES: [number[], number[]][] = [
  [[1001], [1001]], // a tail that is not a whole vector
  [[2 * CHUNK + 5], [2 * CHUNK + 5]], // several chunks
  [[37, 300], [300]], // row broadcast (bias)
  [[300, 37], [300, 1]], // column broadcast
  [[4, 333], []], // scalar
  [[], [4, 333]],
  [[3, 5, 70], [3, 1, 70]],
];

Deno.test({
  name: "wasm elementwise is bit-identical to the JS loop for every exact op and broadcast",
  ignore: !wasmElementwiseSupported(),
  fn() {
    const ops: BinaryOp[] = ["add", "sub", "mul", "div", "maximum", "minimum"];
    let seed = 1;
    for (const op of ops) {
      const p = binaryProgram(op, "f32");
      assert.ok(f32Exact(p), op);
      for (const [sa, sb] of SHAPES) {
        check(p, [values("f32", sa, seed++), values("f32", sb, seed++)], `${op} [${sa}] [${sb}]`);
      }
    }
    for (const op of ["neg", "abs", "relu", "sign", "sqrt"] as UnaryOp[]) {
      const p = unaryProgram(op, "f32");
      assert.ok(f32Exact(p), op);
      check(p, [values("f32", [2 * CHUNK + 3], seed++)], op);
    }
    const w = whereProgram("f32");
    check(w, [values("bool", [128, 128], 3), values("f32", [4, 128, 128], 4), values("f32", [], 5)], "where mask");
    check(w, [values("bool", [999], 6), values("f32", [999], 7), values("f32", [999], 8)], "where dense");
  },
});

Deno.test({
  name: "wasm elementwise computes fused chains that round between steps, bit for bit",
  ignore: !wasmElementwiseSupported(),
  fn() {
    const x = input(0, "f32"), y = input(1, "f32"), z = input(2, "f32");
    // (x·y rounded) + z, then − x: what mul, add, sub as three ops store.
    const p = program(["f32", "f32", "f32"], sub(round(add(round(mul(x, y)), z)), x));
    assert.ok(f32Exact(p));
    check(p, [values("f32", [5000], 1), values("f32", [5000], 2), values("f32", [5000], 3)], "fused chain");
  },
});

Deno.test({
  name: "wasm elementwise on f64x2 lanes (transcendentals) gives the JS loop's bits in place and through chunks",
  ignore: !wasmElementwiseSupported(),
  fn() {
    let seed = 50;
    for (const op of ["gelu", "exp", "silu", "tanh"] as UnaryOp[]) {
      // 2·CHUNK + 5 elements: several chunks, and a tail that is not a whole unrolled iteration.
      check(unaryProgram(op, "f32"), [values("f32", [2 * CHUNK + 5], seed++)], op);
    }
    check(binaryProgram("add", "f32"), [values("f32", [37, 300], seed++), values("f32", [300], seed++)], "bias");
  },
});

Deno.test("wasm elementwise declines programs whose f32x4 rendering would round differently", () => {
  const x = input(0, "f32");
  for (const op of ["rsqrt", "gelu", "exp", "sigmoid", "tanh", "erf"] as UnaryOp[]) {
    assert.equal(f32Exact(unaryProgram(op, "f32")), false, op);
  }
  assert.equal(f32Exact(program(["f32"], mul(x, Math.SQRT1_2))), false, "a double constant");
  assert.equal(f32Exact(program(["f32"], add(mul(x, x), 1))), false, "a chain without rounding");
  assert.equal(f32Exact(program(["f32"], sqrt(add(x, 1)))), false, "√ of an unrounded sum");
  assert.equal(f32Exact(binaryProgram("add", "f64")), false, "f64");
  assert.equal(f32Exact(binaryProgram("lt", "f32")), false, "bool output");
  assert.throws(() => emitElementwiseModule(unaryProgram("exp", "f32"), [true]), /not exact/);
});
