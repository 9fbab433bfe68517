import assert from "node:assert/strict";
import {
  KERNEL_NAMES,
  type KernelName,
  type KernelTable,
  type Refs,
  type TensorRef,
  type TupleOf,
} from "../../kernels/registry.ts";
import { cpuKernels } from "../../kernels/cpu/mod.ts";
import type { CpuBuffer } from "../../kernels/cpu/buffer.ts";
import type { GpuBuffer } from "../../kernels/webgpu/runtime.ts";
import type { elementwiseKernels } from "../../kernels/webgpu/elementwise.ts";
import type { layoutKernels } from "../../kernels/webgpu/layout.ts";
import type { indexKernels } from "../../kernels/webgpu/index.ts";
import type { reduceKernels } from "../../kernels/webgpu/reduce.ts";
import type { matmulKernels } from "../../kernels/webgpu/matmul.ts";
import type { groupedMatmulKernels } from "../../kernels/webgpu/grouped_matmul.ts";
import type { sortKernels } from "../../kernels/webgpu/sort.ts";
import type { layerNormKernels } from "../../kernels/webgpu/layer_norm.ts";
import type { crossEntropyKernels } from "../../kernels/webgpu/cross_entropy.ts";
import type { attentionKernels } from "../../kernels/webgpu/attention.ts";

Deno.test("registry: a backend that misses a kernel does not type-check", () => {
  const { matmul: _dropped, ...rest } = cpuKernels;
  // deno test type-checks this file: if an incomplete table compiled, this directive would be an error.
  // @ts-expect-error matmul is missing from the table
  const incomplete: KernelTable<CpuBuffer> = rest;
  assert.equal("matmul" in incomplete, false);
});

Deno.test("registry: a kernel with the wrong signature does not type-check", () => {
  const wrong = {
    ...cpuKernels,
    // @ts-expect-error matmul's attributes are { transA, transB }, not { axis }
    matmul: (_i: unknown, _o: unknown, _a: { axis: number; other: string }) => {},
  } satisfies KernelTable<CpuBuffer>;
  assert.equal(typeof wrong.matmul, "function");
});

Deno.test("registry: the CPU backend implements every kernel name", () => {
  assert.ok(KERNEL_NAMES.length >= 20);
  for (const name of KERNEL_NAMES) assert.equal(typeof cpuKernels[name], "function", name);
  assert.deepEqual(Object.keys(cpuKernels).sort(), [...KERNEL_NAMES].sort());
});

Deno.test("registry: the WebGPU families cover exactly the kernel names (checked by type, no adapter needed)", () => {
  // webGpuBackend spreads these families into a KernelTable<GpuBuffer>, which fails to compile if one is missing;
  // this pins the same fact here, next to the CPU check, and also rules out a family declaring an unknown kernel.
  type Families =
    & ReturnType<typeof elementwiseKernels>
    & ReturnType<typeof layoutKernels>
    & ReturnType<typeof indexKernels>
    & ReturnType<typeof reduceKernels>
    & ReturnType<typeof matmulKernels>
    & ReturnType<typeof groupedMatmulKernels>
    & ReturnType<typeof sortKernels>
    & ReturnType<typeof layerNormKernels>
    & ReturnType<typeof crossEntropyKernels>
    & ReturnType<typeof attentionKernels>;
  type Missing = Exclude<KernelName, keyof Families>;
  type Unknown = Exclude<keyof Families, KernelName>;
  const none: [Missing, Unknown] extends [never, never] ? true : [Missing, Unknown] = true;
  const signatures: Families extends KernelTable<GpuBuffer> ? true : false = true;
  assert.ok(none && signatures);
});

Deno.test("registry: TupleOf (the engine's counts) agrees with Refs (the backends') for every arity", () => {
  type R = TensorRef<"buf">;
  type Pairs = [
    [Refs<"buf", 0>, TupleOf<R, 0>],
    [Refs<"buf", 1>, TupleOf<R, 1>],
    [Refs<"buf", 2>, TupleOf<R, 2>],
    [Refs<"buf", 3>, TupleOf<R, 3>],
    [Refs<"buf", number>, TupleOf<R, number>],
  ];
  type Same<P> = {
    [I in keyof P]: P[I] extends [infer A, infer B] ? ([A] extends [B] ? ([B] extends [A] ? true : false) : false)
      : never;
  };
  const same: Same<Pairs> = [true, true, true, true, true];
  assert.deepEqual(same, [true, true, true, true, true]);
});
