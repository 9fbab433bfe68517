/**
 * Is the fused Adam update memory-bound? Times, on one thread, over arrays of `--n` floats (default 4M, far
 * past the caches) and per element:
 *
 * - `adam (wasm-simd)`: the kernel, p, g, m, v read and p, m, v written (28 bytes per element);
 * - `adam in cache`: the kernel on one chunk's worth of elements, repeated (the compute and the chunk copies, no
 *   DRAM);
 * - `SIMD loop only`: the module's loop on its own chunk, repeated (the arithmetic alone);
 * - `chunk copies only`: the kernel's copies in and out through a chunk buffer, without the arithmetic;
 * - `stream 3 copies`: `m.set(g)`, `v.set(p)`, `p.set(g)` — the same 7 arrays' worth of traffic as plain
 *   memcpy (read 3 + write 3, plus a read the update also has, see the bytes column).
 *
 * Indicative, one thread on the shared 2-vCPU AMD EPYC Zen 4 machine (2026-12-07, 4M elements, chunk 16384):
 * the kernel 2.26 ns/element (12.4 GB/s of its 28 bytes), plain copies 21–25 GB/s; the SIMD loop alone 0.82
 * ns/element in cache — two f32 divisions and a square root per element, each a rounding the op path makes, so
 * none can become a multiply without changing bits — and the copies through the chunk 1.4 ns from DRAM. The
 * two phases run one after the other, so the time is about their sum: the update is neither purely
 * memory-bound nor purely compute-bound, and its arithmetic has nothing to remove.
 *
 * ```sh
 * flock /tmp/moegrad-timing.lock deno run bench/adam_bandwidth.ts [--n 4194304] [--reps 20]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type AdamScalars, adamStepJs } from "../kernels/cpu/adam.ts";
import { DEFAULT_ADAM_CHUNK, emitAdamModule, sharedWasmAdam } from "../kernels/cpu/wasm/adam.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { n: { type: "string", default: String(1 << 22) }, reps: { type: "string", default: "20" } },
});
const n = Number(values.n), reps = Number(values.reps);
const f = Math.fround;
const s: AdamScalars = {
  decay: "decoupled",
  wd: f(0.01),
  shrink: f(1 - 1e-5),
  b1: f(0.9),
  c1: f(0.1),
  b2: f(0.999),
  c2: f(0.001),
  bc2: f(Math.sqrt(1 - 0.999 ** 5)),
  eps: f(1e-8),
  step: f(1e-3 / (1 - 0.9 ** 5)),
};
const arrays = () =>
  [0, 1, 2, 3].map((k) => Float32Array.from({ length: n }, (_, i) => Math.sin(i + k) * (k === 3 ? 0 : 1)));
const [p, g, m, v] = arrays();
v.forEach((_, i) => (v[i] = Math.abs(g[i]) * 1e-3));
const wasm = sharedWasmAdam();
if (!wasm) throw new Error("WebAssembly SIMD is unavailable");

/** Median ns per element of `fn` over `reps` runs that each cover `elems` elements. */
function time(elems: number, fn: () => void): number {
  fn();
  const ms: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    fn();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return ms[ms.length >> 1] * 1e6 / elems;
}

const C = DEFAULT_ADAM_CHUNK, heap = new Float32Array(4 * C);
const rows: [string, number, number][] = [];
rows.push(["adam (wasm-simd)", 28, time(n, () => wasm.update(p, g, m, v, n, s))]);
rows.push(["adam (TypeScript)", 28, time(n, () => adamStepJs(p, g, m, v, n, s))]);
const small = C, times = Math.max(1, Math.floor(n / small));
rows.push([
  `adam in cache (${C} × n/${C})`,
  0,
  time(times * small, () => {
    for (let k = 0; k < times; k++) wasm.update(p, g, m, v, small, s);
  }),
]);
// The module's loop alone, on the chunk already in its memory (mode 1: decoupled decay, no clipping).
const loop = new WebAssembly.Instance(new WebAssembly.Module(emitAdamModule()), {}).exports.adam as (
  end: number,
  ...scalarsAndMode: number[]
) => void;
rows.push([
  "SIMD loop only, one chunk in cache",
  0,
  time(times * small, () => {
    for (let k = 0; k < times; k++) loop(small * 4, s.b1, s.c1, s.b2, s.c2, s.bc2, s.eps, s.step, s.wd, s.shrink, 1, 1);
  }),
]);
rows.push([
  "chunk copies only",
  28,
  time(n, () => {
    for (let off = 0; off < n; off += C) {
      const to = Math.min(n, off + C);
      heap.set(p.subarray(off, to), 0);
      heap.set(g.subarray(off, to), C);
      heap.set(m.subarray(off, to), 2 * C);
      heap.set(v.subarray(off, to), 3 * C);
      p.set(heap.subarray(0, to - off), off);
      m.set(heap.subarray(2 * C, 2 * C + to - off), off);
      v.set(heap.subarray(3 * C, 3 * C + to - off), off);
    }
  }),
]);
rows.push([
  "stream 3 copies",
  24,
  time(n, () => {
    m.set(g);
    v.set(p);
    p.set(g);
  }),
]);
console.log(`n = ${n}, ${reps} repetitions, one thread (indicative)`);
console.log("| pass | DRAM bytes/elem | ns/elem | GB/s |");
console.log("| --- | --- | --- | --- |");
for (const [name, bytes, ns] of rows) {
  console.log(`| ${name} | ${bytes || "-"} | ${ns.toFixed(3)} | ${bytes ? (bytes / ns).toFixed(1) : "-"} |`);
}
