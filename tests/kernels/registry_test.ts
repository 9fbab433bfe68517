import assert from "node:assert/strict";
import { KERNEL_NAMES, type KernelTable } from "../../kernels/registry.ts";
import { cpuKernels } from "../../kernels/cpu/mod.ts";
import type { CpuBuffer } from "../../kernels/cpu/buffer.ts";

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
