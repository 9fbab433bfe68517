/**
 * Tensors in the WebAssembly matmul's memory (kernels/cpu/wasm/heap.ts, kernels/cpu/pool.ts): regions are
 * handed out aligned, reused by size, never twice at once; the matmul packs resident operands in place with
 * the same bits as copied ones, for any thread count, also when its working memory is recycled between
 * products (the case where packing must still wait for the slot's previous product), and when it packs a
 * weight inside each block that uses it (`gemmFused`).
 */
import assert from "node:assert/strict";
import { HEAP_ALIGN, WasmHeap } from "../../kernels/cpu/wasm/heap.ts";
import { sharedWasmMatmul } from "../../kernels/cpu/wasm/matmul.ts";
import type { MatmulOperand, MatmulProduct } from "../../kernels/cpu/wasm/plan.ts";
import { giveBuffer, setPoolShared, takeBuffer } from "../../kernels/cpu/pool.ts";
import { filled } from "../helpers/host_rng.ts";
import { withHeapArrays } from "../helpers/heap_arrays.ts";
import { indexKernels } from "../../kernels/cpu/index.ts";

const PAGE = 65536;

Deno.test("wasm heap: aligned regions, reused by size, double and foreign frees ignored", () => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 64 });
  const heap = new WasmHeap(memory, 128, 64 * PAGE);
  const a = heap.alloc(100)!, b = heap.alloc(5000)!;
  assert.equal(a.address, 128);
  assert.equal(a.reused, false);
  assert.equal(b.address % HEAP_ALIGN, 0);
  assert.equal(heap.sizeOf(a.address), 128);
  assert.equal(heap.free(a.address), 128);
  assert.equal(heap.free(a.address), 0, "a second free of the same region does nothing");
  assert.equal(heap.free(b.address + 64), 0, "an address that is not a region's does nothing");
  assert.equal(heap.freeBytes, 128);
  const c = heap.alloc(65)!;
  assert.deepEqual(c, { address: a.address, reused: true }, "a freed region goes to the next request of its size");
  assert.equal(heap.freeBytes, 0);
  assert.notEqual(heap.alloc(128)!.address, c.address, "a live region is not handed out again");
});

Deno.test("wasm heap: grows the memory, keeps earlier buffers its own, refuses past its limit", () => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 16 });
  const heap = new WasmHeap(memory, 0, 8 * PAGE);
  const first = heap.buffer;
  const big = heap.alloc(3 * PAGE)!;
  assert.ok(memory.buffer.byteLength >= big.address + 3 * PAGE);
  assert.ok(heap.owns(first) && heap.owns(heap.buffer), "both the old and the grown buffer are the heap's");
  assert.ok(!heap.owns(new ArrayBuffer(8)));
  assert.equal(heap.alloc(6 * PAGE), null, "past the limit: null, for the caller to allocate elsewhere");
  assert.ok(heap.alloc(4 * PAGE) !== null, "what still fits is handed out");
});

/** `count` independent products M×K · (N×K)ᵀ whose operands are made by `make` (heap views or plain arrays). */
function job(make: (n: number) => Float32Array, count: number, m: number, k: number, n: number) {
  const lhs: MatmulOperand[] = [], rhs: MatmulOperand[] = [], products: MatmulProduct[] = [];
  for (let t = 0; t < count; t++) {
    const a = make(m * k), b = make(n * k);
    a.set(filled(m * k, 100 + t));
    b.set(filled(n * k, 200 + t));
    // op(A) read transposed for odd t: strides, not copies.
    lhs.push(
      t % 2 ? { data: a, offset: 0, rows: m, k, rs: 1, cs: m } : { data: a, offset: 0, rows: m, k, rs: k, cs: 1 },
    );
    // op(B)ᵀ with contiguous rows for t mod 3 = 0, otherwise read transposed (either way packed inside each
    // block by gemmFused where resident: M = 200 is few enough rows).
    rhs.push(
      t % 3 ? { data: b, offset: 0, rows: n, k, rs: k, cs: 1 } : { data: b, offset: 0, rows: n, k, rs: 1, cs: n },
    );
    products.push({ a: t, b: t, out: make(m * n), outOff: 0 });
  }
  return { lhs, rhs, products };
}

Deno.test("wasm matmul: operands and results in its memory give the bits of copied ones (1–3 threads, recycled slots, op(B)ᵀ packed in advance or fused)", () => {
  const wasm = sharedWasmMatmul();
  if (!wasm || !wasm.options.shared) return; // No WebAssembly SIMD or shared memory: nothing resident to test.
  const heap = wasm.heap, regions: number[] = [];
  const inHeap = (n: number) => {
    const region = heap.alloc(4 * n)!;
    regions.push(region.address);
    return new Float32Array(heap.buffer, region.address, n);
  };
  try {
    // 12 products of ≈ 1 MiB each: more than the 4 MiB slot budget, so slots are reused round-robin. M = 200
    // is not whole 6-row tiles (the last rows go through the working memory); N = 264 is whole 8-column tiles
    // (results written in place), N = 260 is not (copied out). K = 300: two K blocks of the kernel (KC = 256).
    const m = 200, k = 300, count = 12;
    for (const [n, threads] of [[264, 1], [264, 2], [264, 3], [260, 2]]) {
      const copied = job((len) => new Float32Array(len), count, m, k, n);
      wasm.products(copied, 1);
      for (let round = 0; round < 3; round++) {
        const resident = job(inHeap, count, m, k, n);
        assert.ok(heap.owns(resident.lhs[0].data.buffer));
        wasm.products(resident, threads);
        resident.products.forEach((p, t) => {
          assert.deepEqual(p.out, copied.products[t].out, `N ${n}, threads ${threads}, round ${round}, product ${t}`);
        });
        for (
          const data of [...resident.lhs, ...resident.rhs].map((x) => x.data).concat(
            resident.products.map((p) => p.out),
          )
        ) {
          heap.free(data.byteOffset);
          regions.splice(regions.indexOf(data.byteOffset), 1);
        }
      }
    }
  } finally {
    for (const address of regions) heap.free(address);
  }
});

Deno.test("pool: buffers live in the matmul's memory, for any thread count; one given back twice is handed out once", () => {
  const wasm = sharedWasmMatmul();
  if (!wasm || !wasm.options.shared) return;
  for (const shared of [false, true]) {
    const previous = setPoolShared(shared);
    try {
      const b = takeBuffer("i32", 2000);
      assert.ok(wasm.heap.owns(b.buffer), `threads ${shared ? "> 1" : "1"}: a pooled buffer is in the heap`);
      giveBuffer(b);
    } finally {
      setPoolShared(previous);
    }
  }
  const previous = setPoolShared(true);
  try {
    const x = takeBuffer("f32", 3000) as Float32Array;
    assert.ok(wasm.heap.owns(x.buffer), "an f32 buffer is a view of the matmul's memory");
    assert.equal(x.byteOffset % HEAP_ALIGN, 0);
    giveBuffer(x);
    giveBuffer(x); // a double release must not put the region on the free list twice
    const y = takeBuffer("f64", 1500) as Float64Array, z = takeBuffer("f32", 3000) as Float32Array;
    assert.equal(y.byteOffset, x.byteOffset, "the region comes back for the next buffer of its size class");
    assert.notEqual(z.byteOffset, y.byteOffset, "and only once");
    giveBuffer(new Float32Array(z.buffer, z.byteOffset, 10)); // not the view the pool made: ignored
    const w = takeBuffer("f32", 3000) as Float32Array;
    assert.notEqual(w.byteOffset, z.byteOffset);
    for (const b of [y, z, w]) giveBuffer(b);
  } finally {
    setPoolShared(previous);
  }
});

Deno.test("indexAdd on f32 rows in the tensor heap: the JS loop's bits (repeated indices, tails, several outer rows)", () => {
  withHeapArrays((inHeap) => {
    for (const [outer, size, inner, k] of [[1, 8, 1024, 40], [3, 5, 7, 9], [2, 4, 4, 6]]) {
      const x = filled(outer * size * inner, 1), src = filled(outer * k * inner, 2);
      const index = Int32Array.from({ length: k }, (_, j) => (j * 7 + j % 3) % size); // repeats: order matters
      const run = (place: (a: Float32Array) => Float32Array) => {
        const out = place(new Float32Array(outer * size * inner));
        indexKernels.indexAdd(
          [
            { buf: place(x), shape: [outer, size, inner], dtype: "f32" },
            { buf: index, shape: [k], dtype: "i32" },
            { buf: place(src), shape: [outer, k, inner], dtype: "f32" },
          ],
          [{ buf: out, shape: [outer, size, inner], dtype: "f32" }],
          { axis: 1 },
        );
        return Array.from(out);
      };
      assert.deepEqual(run(inHeap), run((a) => a), `[${outer}, ${size}, ${inner}] ← ${k} rows`);
    }
  });
});
