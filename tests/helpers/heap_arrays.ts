/**
 * Arrays in the tensor heap (`kernels/cpu/wasm/heap.ts`) for tests of the kernels' in-place paths.
 */
import { sharedWasmMatmul } from "../../kernels/cpu/wasm/matmul.ts";
import { setTensorHeap, type WasmHeap } from "../../kernels/cpu/wasm/heap.ts";

/** Copies arrays into the heap, each followed by four sentinel floats (7) that a kernel must leave alone. */
export type InHeap = (a: Float32Array) => Float32Array;

/**
 * Runs `body` with the heap made this thread's tensor heap and a copier into it; frees every region after.
 * Does nothing where there is no heap (no WebAssembly SIMD or shared memory): then only the chunked paths
 * exist.
 */
export function withHeapArrays(body: (inHeap: InHeap, heap: WasmHeap) => void): void {
  const matmul = sharedWasmMatmul();
  if (!matmul || !matmul.options.shared) return;
  const heap = matmul.heap, regions: number[] = [];
  setTensorHeap(heap);
  const inHeap: InHeap = (a) => {
    const at = heap.alloc(4 * (a.length + 4))!.address;
    regions.push(at);
    const view = new Float32Array(heap.buffer, at, a.length + 4);
    view.set(a);
    view.fill(7, a.length);
    return view.subarray(0, a.length);
  };
  try {
    body(inHeap, heap);
  } finally {
    for (const at of regions) heap.free(at);
  }
}

/** The four floats after `a` (the sentinels {@link InHeap} wrote). */
export function sentinelsAfter(a: Float32Array): number[] {
  return Array.from(new Float32Array(a.buffer, a.byteOffset + 4 * a.length, 4));
}
