/**
 * A pool of freed CPU buffers, so that a training step reuses the memory of the step before instead of
 * allocating fresh typed arrays.
 *
 * Why: a fresh `Float32Array` of a few megabytes costs far more than the loop that fills it — the engine
 * maps new pages, the kernel zeroes them on first touch, and the garbage collector runs more often under
 * the external-memory pressure (measured: an 8 MB elementwise `mul` took 2.5 ms into a reused array and
 * 7.9 ms into a fresh one).
 *
 * The pool holds `ArrayBuffer`s in size classes of 8 per power of two (a buffer is at most 12.5% larger than
 * asked), shared by every dtype; a buffer is handed out as a typed-array view of exactly the length asked
 * for. Classes rather than exact lengths because MoE shapes move from step to step (the experts' token
 * counts follow the routing), and a step that asks for [8, 268, 1024] where the last asked for
 * [8, 261, 1024] should still reuse.
 *
 * A buffer enters the pool only when its last reference is released explicitly (`Tensor.dispose`, which
 * `scope()` and `backward()` call); a tensor the garbage collector reclaims takes its buffer with it.
 * Kernels never rely on zeroed outputs (the registry's rule: they fill what they are given), so a reused
 * buffer is handed out as it is. {@link setPoolPoison} fills reused buffers with garbage instead, which
 * is how tests check that rule.
 *
 * Pooled buffers are regions of one shared WebAssembly memory, the matmul kernel's (`wasm/heap.ts`), so
 * WebAssembly kernels work on tensors where they are: the matmul packs its operands and writes its results
 * in place, and the elementwise programs, the Adam update and clipping's passes run on them instead of
 * copying chunks through memory of their own (measured, 2-vCPU VM, the d = 256 training step: see the
 * README). The kernel Workers (`threads/pool.ts`) see the same memory and run on it in place too. A region
 * comes back to the heap when its tensor is disposed, or when the garbage collector reclaims a tensor that
 * was not (a `FinalizationRegistry` on the view). Where that memory is full (2 GiB) or WebAssembly SIMD or
 * shared memory is missing, buffers are `ArrayBuffer`s of their own as before, or `SharedArrayBuffer`s with
 * more than one thread ({@link setPoolShared}); those are pooled apart, by kind. The heap keeps its freed
 * regions whatever the pool's byte limit: a WebAssembly memory cannot shrink. Shared storage never leaves
 * the backend: reads hand out `slice()`d copies, which are ordinary `ArrayBuffer`s.
 *
 * @module
 */
import type { DType, TypedArray } from "../../core/dtype.ts";
import { allocArray, bytesPerElement } from "../../core/dtype.ts";
import { memoryStats } from "../../core/memory.ts";
import { sharedWasmMatmul } from "./wasm/matmul.ts";
import { currentTensorHeap, setTensorHeap, type WasmHeap } from "./wasm/heap.ts";

/** Buffers below this many bytes are not pooled: V8 allocates small typed arrays cheaply on its heap. */
export const MIN_POOLED_BYTES = 4096;

/** Default cap on the bytes the pool holds (the CPU option `poolBytes`). */
export const DEFAULT_POOL_BYTES: number = 2 ** 30;

/** Free buffers by class size in bytes: ordinary ones, and shared ones. */
const plainPool = new Map<number, ArrayBufferLike[]>();
const sharedPool = new Map<number, ArrayBufferLike[]>();
let limit = DEFAULT_POOL_BYTES;
let poison = false;
let shared = false;

/**
 * Whether pooled buffers made outside the heap are `SharedArrayBuffer`s (set by the CPU options: on when
 * `threads` > 1 and the runtime has shared memory). Returns the previous setting.
 */
export function setPoolShared(on: boolean): boolean {
  const previous = shared;
  shared = on && typeof SharedArrayBuffer === "function";
  return previous;
}

/** The size class of a request of `bytes` (≥ {@link MIN_POOLED_BYTES}): the next m·2^(e−3), m = 8…16. */
export function sizeClass(bytes: number): number {
  const step = 2 ** (Math.floor(Math.log2(bytes)) - 3);
  return Math.ceil(bytes / step) * step;
}

function view(dtype: DType, buffer: ArrayBufferLike, size: number, byteOffset = 0): TypedArray {
  switch (dtype) {
    case "f32":
      return new Float32Array(buffer, byteOffset, size);
    case "f64":
      return new Float64Array(buffer, byteOffset, size);
    case "i32":
      return new Int32Array(buffer, byteOffset, size);
    case "bool":
      return new Uint8Array(buffer, byteOffset, size);
  }
}

/** The heap pooled buffers come from, or null where there is none (see the module docs). */
function tensorHeap(): WasmHeap | null {
  const wasm = sharedWasmMatmul();
  if (!wasm || !wasm.options.shared) return null;
  if (currentTensorHeap() !== wasm.heap) setTensorHeap(wasm.heap);
  return wasm.heap;
}

/** Takes back the heap region of a view the garbage collector reclaimed without a dispose. */
const reclaimed = new FinalizationRegistry<{ heap: WasmHeap; address: number }>(({ heap, address }) => {
  const size = heap.free(address);
  if (size > 0) {
    memoryStats.pooledBytes += size;
    collected.add(address);
  }
});

/** Heap regions whose last tensor the collector reclaimed (not disposed): see {@link takeFromHeap}. */
const collected = new Set<number>();

/** The latest ballast (see {@link takeFromHeap}), kept in a property so that it is surely allocated. */
const ballast: { latest: ArrayBuffer | null } = { latest: null };

/** A view on a heap region of class `cls` (a freed one if there is), or null when the heap has no room. */
function takeFromHeap(heap: WasmHeap, dtype: DType, size: number, cls: number): TypedArray | null {
  const region = heap.alloc(cls);
  if (!region) return null;
  if (region.reused) {
    memoryStats.pooledBytes -= cls;
    memoryStats.reusedBuffers++;
  } else {
    memoryStats.allocatedBuffers++;
    memoryStats.allocatedBytes += cls;
  }
  // The collector schedules its collections partly by the external memory that array buffers hold, and heap
  // regions hold none: a loop that leaves its tensors to the collector would pile them up (the live counts
  // growing) long before a collection ran their finalizers. So a region whose last tensor was collected
  // rather than disposed is, when handed out again, paired with an array buffer of its size, dropped at once
  // and never written: it counts as external memory until the next collection, as the fresh buffer a plain
  // pool allocated in its place did. (Not for regions the heap grows for: in the first steps of a training
  // run that paired every tensor with an allocation the C allocator zeroes, +35 MiB of peak RSS at d = 256.)
  if (region.reused && collected.delete(region.address)) ballast.latest = new ArrayBuffer(cls);
  const out = view(dtype, heap.buffer, size, region.address);
  reclaimed.register(out, { heap, address: region.address }, out);
  if (region.reused && poison) fillGarbage(out);
  return out;
}

/** A buffer of `size` elements of `dtype`: a pooled one of the right class if one is free, else a new one. */
export function takeBuffer(dtype: DType, size: number): TypedArray {
  const bytes = size * bytesPerElement(dtype);
  if (bytes < MIN_POOLED_BYTES || limit === 0) {
    memoryStats.allocatedBuffers++;
    memoryStats.allocatedBytes += bytes;
    return allocArray(dtype, size);
  }
  const cls = sizeClass(bytes);
  const heap = tensorHeap();
  const fromHeap = heap && takeFromHeap(heap, dtype, size, cls);
  if (fromHeap) return fromHeap;
  const reused = (shared ? sharedPool : plainPool).get(cls)?.pop();
  if (reused) {
    memoryStats.pooledBytes -= cls;
    memoryStats.reusedBuffers++;
    const out = view(dtype, reused, size);
    if (poison) fillGarbage(out);
    return out;
  }
  memoryStats.allocatedBuffers++;
  memoryStats.allocatedBytes += cls;
  return view(dtype, shared ? new SharedArrayBuffer(cls) : new ArrayBuffer(cls), size);
}

/**
 * Takes back a buffer that nothing references any more (it is kept while the pool is under its byte limit).
 * Only buffers {@link takeBuffer} made whole-class views of are pooled; others go to the collector.
 */
export function giveBuffer(buf: TypedArray): void {
  const buffer = buf.buffer, isShared = typeof SharedArrayBuffer === "function" && buffer instanceof SharedArrayBuffer;
  const heap = isShared ? tensorHeap() : null;
  if (heap?.owns(buffer)) {
    if (!reclaimed.unregister(buf)) return;
    memoryStats.pooledBytes += heap.free(buf.byteOffset);
    return;
  }
  if (!(isShared || buffer instanceof ArrayBuffer) || buf.byteOffset !== 0) return;
  const cls = buffer.byteLength;
  if (cls < MIN_POOLED_BYTES || cls !== sizeClass(cls) || memoryStats.pooledBytes + cls > limit) return;
  const pool = isShared ? sharedPool : plainPool;
  let list = pool.get(cls);
  if (!list) pool.set(cls, list = []);
  list.push(buffer);
  memoryStats.pooledBytes += cls;
}

/** Empties the pool (its buffers go to the garbage collector; the heap's free regions stay, see above). */
export function clearPool(): void {
  plainPool.clear();
  sharedPool.clear();
  memoryStats.pooledBytes = sharedWasmMatmul()?.heap.freeBytes ?? 0;
}

/** Sets the pool's byte limit (0 disables pooling); a smaller limit empties the pool. */
export function setPoolLimit(bytes: number): void {
  if (bytes < limit) clearPool();
  limit = bytes;
}

/**
 * Test hook: while on, every reused buffer is filled with garbage (NaN for floats, −1 for integers, 0xff
 * for bool) before it is handed out, so a kernel that reads its output before writing it fails loudly.
 * Returns the previous setting.
 */
export function setPoolPoison(on: boolean): boolean {
  const previous = poison;
  poison = on;
  return previous;
}

function fillGarbage(buf: TypedArray): void {
  if (buf instanceof Float32Array || buf instanceof Float64Array) buf.fill(NaN);
  else if (buf instanceof Int32Array) buf.fill(-1);
  else buf.fill(0xff);
}
