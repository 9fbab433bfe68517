/**
 * Regions of a WebAssembly memory handed out and taken back, so that tensors can live in the memory the
 * matmul kernel computes in.
 *
 * Why: every WebAssembly kernel copied its operands into its module's own memory and its results back out
 * (the matmul's copies in alone ≈ 25–47 ms of a two-thread training step at d = 256, spent by the calling
 * thread while the Workers waited; measured 2026-12-07). A tensor that lives in the memory the kernels run
 * on is read and written where it is; the buffer pool (`../pool.ts`) puts tensors here, and the kernels find
 * them through {@link currentTensorMemory}.
 *
 * How: the memory above `start` is cut into regions of the sizes asked for (callers ask in size classes, as
 * the buffer pool does, so freed regions are asked for again), each 64-byte aligned. A freed region goes on
 * the free list of its size; a request takes from that list, else from the top, growing the memory by at
 * least 1/8 of its size (few growths: each gives the memory a new `SharedArrayBuffer` object, which every
 * kernel Worker is told about once). Regions are never split or merged, and the memory never shrinks (a
 * WebAssembly memory cannot): like the buffer pool, the heap keeps what the busiest step needed.
 * A shared memory does not move when it grows, so views made before a growth stay valid.
 *
 * @module
 */

/** Bytes of a WebAssembly page. */
const PAGE = 65536;

/** Region alignment in bytes (a cache line; also any typed array's alignment). */
export const HEAP_ALIGN = 64;

/** Regions of one WebAssembly memory (see the module docs). */
export class WasmHeap {
  readonly #memory: WebAssembly.Memory;
  readonly #maxBytes: number;
  /** Byte address of the first region never handed out. */
  #top: number;
  /** Free regions' addresses by region size in bytes. */
  readonly #free = new Map<number, number[]>();
  /** Live regions' sizes by address (a double free, or freeing a foreign address, is ignored). */
  readonly #live = new Map<number, number>();
  /** Bytes of the free regions. */
  #freeBytes = 0;
  /** Every `ArrayBuffer` object the memory has had (one per growth). */
  readonly #buffers = new WeakSet<ArrayBufferLike>();

  /**
   * Regions of `memory` from byte `start` (a multiple of {@link HEAP_ALIGN}) up to `maxBytes` (at most the
   * memory's maximum).
   */
  constructor(memory: WebAssembly.Memory, start: number, maxBytes: number) {
    if (start % HEAP_ALIGN !== 0) throw new RangeError(`WasmHeap: start ${start} is not ${HEAP_ALIGN}-byte aligned`);
    this.#memory = memory;
    this.#maxBytes = maxBytes;
    this.#top = start;
    this.#buffers.add(memory.buffer);
  }

  /** The memory the regions are of. */
  get memory(): WebAssembly.Memory {
    return this.#memory;
  }

  /** The memory's buffer as it is now (remembered, so {@link owns} knows it). */
  get buffer(): ArrayBufferLike {
    const buffer = this.#memory.buffer;
    this.#buffers.add(buffer);
    return buffer;
  }

  /** Whether `buffer` is (one of the buffer objects of) this heap's memory. */
  owns(buffer: ArrayBufferLike): boolean {
    return this.#buffers.has(buffer);
  }

  /** Bytes below the top: every region handed out so far, live or free (and what lies below `start`). */
  get usedBytes(): number {
    return this.#top;
  }

  /** Bytes of the regions freed and not handed out again. */
  get freeBytes(): number {
    return this.#freeBytes;
  }

  /**
   * The byte address of a free region of `bytes` (rounded up to {@link HEAP_ALIGN}), and whether it was
   * reused; null when the memory cannot grow that far (the caller then allocates elsewhere).
   */
  alloc(bytes: number): { address: number; reused: boolean } | null {
    const size = Math.ceil(Math.max(bytes, 1) / HEAP_ALIGN) * HEAP_ALIGN;
    const address = this.#free.get(size)?.pop();
    if (address !== undefined) {
      this.#live.set(address, size);
      this.#freeBytes -= size;
      return { address, reused: true };
    }
    const end = this.#top + size;
    if (end > this.#maxBytes) return null;
    const have = this.#memory.buffer.byteLength;
    if (end > have) {
      const want = Math.min(this.#maxBytes, Math.max(end, have + Math.ceil(have / 8)));
      try {
        this.#memory.grow(Math.ceil((want - have) / PAGE));
      } catch {
        return null;
      }
    }
    const at = this.#top;
    this.#top = end;
    this.#live.set(at, size);
    return { address: at, reused: false };
  }

  /** The size of the live region at `address`, or 0 when there is none. */
  sizeOf(address: number): number {
    return this.#live.get(address) ?? 0;
  }

  /** Takes back the region at `address`; returns its size (0, and nothing done, if it is not live). */
  free(address: number): number {
    const size = this.#live.get(address);
    if (size === undefined) return 0;
    this.#live.delete(address);
    let list = this.#free.get(size);
    if (!list) this.#free.set(size, list = []);
    list.push(address);
    this.#freeBytes += size;
    return size;
  }
}

/**
 * What a thread's kernels need of the memory tensors live in, to run on them in place: the memory, whether
 * an array's buffer is (a buffer object of) it, and some bytes of it that are this thread's own.
 */
export interface TensorMemory {
  /** The memory. */
  readonly memory: WebAssembly.Memory;
  /** Whether `buffer` is one of the memory's buffer objects (as this thread knows them). */
  owns(buffer: ArrayBufferLike): boolean;
  /**
   * Byte address of this thread's {@link SCRATCH_BYTES} bytes of the memory: kernels stage small values
   * there (an elementwise program's broadcast values, a block of column sums of squares), one call at a time.
   */
  readonly scratch: number;
}

/** Bytes of a thread's own scratch in the tensor memory. */
export const SCRATCH_BYTES = 65536;

let tensorHeap: WasmHeap | null = null;
let tensorMemory: TensorMemory | null = null;

/**
 * The heap the calling thread's CPU tensors are allocated from, once the buffer pool (`../pool.ts`) has put
 * one there; null before that, and in the kernel Workers.
 */
export function currentTensorHeap(): WasmHeap | null {
  return tensorHeap;
}

/**
 * This thread's view of the memory tensors live in: on the calling thread, the heap's (see
 * {@link setTensorHeap}); in a kernel Worker, what the pool registered (see `../threads/worker.ts`). Kernels
 * that find all their arrays in it run in place instead of copying chunks through memory of their own.
 */
export function currentTensorMemory(): TensorMemory | null {
  return tensorMemory;
}

/** Sets a Worker's view of the tensor memory (see {@link currentTensorMemory}). */
export function setTensorMemory(memory: TensorMemory): void {
  tensorMemory = memory;
}

/** Records the heap the buffer pool hands tensors out of, on the calling thread. */
export function setTensorHeap(heap: WasmHeap): void {
  if (tensorHeap === heap) return;
  const region = heap.alloc(SCRATCH_BYTES);
  if (!region) return;
  tensorHeap = heap;
  tensorMemory = { memory: heap.memory, owns: (buffer) => heap.owns(buffer), scratch: region.address };
}

/** The largest maximum a module importing a shared memory accepts (4 GiB, wasm32's whole address space). */
export const SHARED_MAX_PAGES = 65536;

/** The memory import of a module that runs on the tensor memory (any shared memory fits it). */
export const TENSOR_MEMORY_IMPORT = {
  kind: "import",
  module: "env",
  name: "memory",
  initialPages: 1,
  maxPages: SHARED_MAX_PAGES,
  shared: true,
} as const;

/**
 * A getter of the exports of the module `emit()` makes (importing {@link TENSOR_MEMORY_IMPORT}), instantiated
 * on the memory asked for: compiled once, instantiated again only when the memory changes; null from then on
 * where compiling or instantiating fails (the caller copies chunks through memory of its own).
 */
export function instanceOnMemory(
  emit: () => Uint8Array<ArrayBuffer>,
): (memory: WebAssembly.Memory) => WebAssembly.Exports | null {
  let module: WebAssembly.Module | undefined, failed = false;
  let last: { memory: WebAssembly.Memory; exports: WebAssembly.Exports } | null = null;
  return (memory) => {
    if (last?.memory === memory) return last.exports;
    if (failed) return null;
    try {
      module ??= new WebAssembly.Module(emit());
      last = { memory, exports: new WebAssembly.Instance(module, { env: { memory } }).exports };
      return last.exports;
    } catch {
      failed = true;
      return null;
    }
  };
}
