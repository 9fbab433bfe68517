/**
 * CPU elementwise kernels: fill, random, cast, and the expression-defined families — unary, binary, where
 * and fused `elementwise` programs — which all run one program (`kernels/expr/ops.ts` defines the ops) on
 * the reference loop or the fast loops (`expr_run.ts`), as the `fastKernels` option says.
 *
 * @module
 */
import { fillRandom } from "../../core/random/philox.ts";
import type { KernelFamily, TensorRef } from "../registry.ts";
import type { ElementwiseProgram } from "../expr/ir.ts";
import { binaryProgram, unaryProgram, whereProgram } from "../expr/ops.ts";
import type { CpuBuffer } from "./buffer.ts";
import { liveCpuOptions } from "./config.ts";
import { runFast, runReference } from "./expr_run.ts";

function run(p: ElementwiseProgram, inputs: readonly TensorRef<CpuBuffer>[], out: TensorRef<CpuBuffer>): void {
  if (liveCpuOptions.fastKernels) runFast(p, inputs, out, liveCpuOptions.wasm, liveCpuOptions.threads);
  else runReference(p, inputs, out);
}

/** The elementwise family of the CPU backend. */
export const elementwiseKernels: KernelFamily<
  CpuBuffer,
  "fill" | "random" | "cast" | "unary" | "binary" | "where" | "elementwise"
> = {
  fill(_inputs, [out], { value }) {
    out.buf.fill(value);
  },
  random(_inputs, [out], { dist, key, counter, loc, scale }) {
    fillRandom(out.buf, dist, key, counter, loc, scale);
  },
  cast([x], [out]) {
    const src = x.buf, dst = out.buf;
    if (out.dtype === "bool") { for (let i = 0; i < dst.length; i++) dst[i] = src[i] !== 0 ? 1 : 0; }
    else if (out.dtype === "i32") { for (let i = 0; i < dst.length; i++) dst[i] = Math.trunc(src[i]); }
    else dst.set(src);
  },
  unary([x], [out], { op }) {
    run(unaryProgram(op, x.dtype), [x], out);
  },
  binary([a, b], [out], { op }) {
    run(binaryProgram(op, a.dtype), [a, b], out);
  },
  where([c, a, b], [out]) {
    run(whereProgram(out.dtype), [c, a, b], out);
  },
  elementwise(inputs, [out], { program }) {
    run(program, inputs, out);
  },
};
