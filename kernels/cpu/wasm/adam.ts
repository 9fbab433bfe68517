/**
 * The Adam/AdamW update (see `../adam.ts` for the formulas) in WebAssembly 128-bit SIMD, emitted at run time
 * by our assembler: four f32 lanes per instruction, each lane the same sequence of IEEE operations as the
 * scalar loop (`f32x4.mul/add/sub/div/sqrt`, never relaxed SIMD's fused multiply-add), so the results are
 * bit-identical to it.
 *
 * Where the data lives. A WebAssembly function can only touch its own linear memory, while a CPU tensor's
 * storage is an ordinary `Float32Array`. We considered allocating parameters and optimizer state in a wasm
 * memory, but the parameter is owned by the model and the gradient is a fresh tensor from `backward()`, so
 * at least those two would still be copied; a growing non-shared memory detaches every view into it (and
 * a shared one hands out `SharedArrayBuffer` views that not every consumer of tensor data accepts); and it
 * would make one optimizer a special case of the CPU allocator. Instead the module owns a small fixed
 * memory (256 KiB by default) holding one chunk of each of p, g, m and v; the driver copies a chunk
 * in (`TypedArray.set`, a memcpy), runs the SIMD loop, and copies p, m and v back. A chunk stays in the L1/L2
 * cache between the copies and the loop, so main memory sees each array read once and p, m, v written once —
 * the same traffic as a loop over the tensors' own storage — and the memory never grows, so no view ever
 * detaches and nothing is allocated per step.
 *
 * Layout: region r ∈ {p, g, m, v} of a chunk starts at byte r·S (S = 4·chunk); the loop walks byte offsets
 * a = 0, 16, … < end and reaches the four regions through the load/store offset immediates, so it has one
 * induction variable. A chunk's tail is rounded up to whole vectors: the extra lanes compute on stale
 * values and are never copied out.
 *
 * @module
 */
import { ModuleBuilder, ValType } from "./assembler.ts";
import { lazyWasmInstance } from "./lazy.ts";
import { currentTensorMemory, instanceOnMemory, TENSOR_MEMORY_IMPORT } from "./heap.ts";
import type { AdamDecay, AdamUpdate } from "../adam.ts";

/**
 * Elements of each array per chunk by default: 4 arrays × 16384 floats = 256 KiB, four wasm pages, L2-resident
 * (one instance per thread; two fit a 1 MiB L2). Each chunk costs a call and seven `subarray` + `set` pairs,
 * about 0.7 µs, so small chunks pay for it: indicative, one thread on the shared 2-vCPU Zen 4 machine over 4M
 * elements (2026-12-07, bench/adam_bandwidth.ts and a chunk sweep), 3.7 ns per element at 512 and 1024, 3.3 at
 * 2048, 2.47 at 4096, 2.26 at 16384 and 32768. The chunk changes no bits (every element's update is independent).
 */
export const DEFAULT_ADAM_CHUNK = 16384;

const PAGE = 65536;
const MODE: Record<AdamDecay, number> = { none: 0, decoupled: 1, l2: 2 };

/**
 * Emits the module: an exported memory of 4·4·`chunk` bytes (rounded up to pages) and
 * `adam(end, b1, c1, b2, c2, bc2, eps, step, wd, shrink, gscale, mode)`, which updates the chunk's p, m and v
 * at byte offsets [0, end) (end a multiple of 16) with the f32 scalars; mode = decay + 3·clip, decay 0: no
 * weight decay, 1: decoupled, 2: L2; clip 1: the gradient is first scaled, g ← g·gscale. `chunk` must be a
 * positive multiple of 4.
 *
 * With `chunk` 0, the in-place variant: it imports a shared `env.memory` (the tensor heap's, see `heap.ts`)
 * and `adam(end, p, g, m, v, b1, …, mode)` updates the arrays at byte addresses p, g, m, v over byte offsets
 * [0, end) where they are — the same operations in the same order, so the same bits.
 */
export function emitAdamModule(chunk: number = DEFAULT_ADAM_CHUNK): Uint8Array<ArrayBuffer> {
  if (!Number.isInteger(chunk) || chunk < 0 || chunk % 4 !== 0) {
    throw new RangeError(`emitAdamModule: chunk must be a positive multiple of 4 (or 0), got ${chunk}`);
  }
  const inPlace = chunk === 0, S = 4 * chunk, pages = Math.ceil((4 * S) / PAGE);
  const mod = new ModuleBuilder().setMemory(
    inPlace ? TENSOR_MEMORY_IMPORT : { kind: "export", name: "memory", initialPages: pages, maxPages: pages },
  );
  const { i32, f32, v128 } = ValType;
  const pointers = inPlace ? [i32, i32, i32, i32] : [];
  const f = mod.addFunction("adam", [i32, ...pointers, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, i32]);
  const end = 0, first = 1 + pointers.length, mode = first + 10;
  // Parameters first..first+9 are the scalars; each is splatted once into a v128 local.
  const [B1, C1, B2, C2, BC2, EPS, STEP, WD, SHRINK, GSCALE] = Array.from({ length: 10 }, (_, i) => {
    const l = f.local(v128);
    f.get(first + i).f32x4Splat().set(l);
    return l;
  });
  const a = f.local(i32);
  const p = f.local(v128), g = f.local(v128), base = f.local(v128), m = f.local(v128), v = f.local(v128);
  /** Pushes the address of the current vector of array r (0 p, 1 g, 2 m, 3 v); returns the memarg offset. */
  const at = (r: number): number => {
    if (!inPlace) {
      f.get(a);
      return r * S;
    }
    f.get(1 + r).get(a).i32Add();
    return 0;
  };
  const load = (r: number) => f.v128Load(at(r));

  /** One pass over the chunk for one mode (branching outside the loop, not per vector). */
  const pass = (decay: AdamDecay, clip: boolean) => {
    f.i32Const(0).set(a);
    f.block(() => {
      f.get(a).get(end).i32GeU().brIf(0);
      f.loop(() => {
        load(0).tee(p).set(base);
        load(1).set(g);
        // g ← g·c (gradient clipping folded in).
        if (clip) f.get(g).get(GSCALE).f32x4Mul().set(g);
        // g ← g + p·λ (L2), or base ← p·(1 − η·λ) (decoupled).
        if (decay === "l2") f.get(g).get(p).get(WD).f32x4Mul().f32x4Add().set(g);
        if (decay === "decoupled") f.get(p).get(SHRINK).f32x4Mul().set(base);
        // m ← m·β₁ + g·(1 − β₁)
        const mAt = at(2);
        load(2).get(B1).f32x4Mul().get(g).get(C1).f32x4Mul().f32x4Add().tee(m);
        f.v128Store(mAt);
        // v ← v·β₂ + (g·g)·(1 − β₂)
        const vAt = at(3);
        load(3).get(B2).f32x4Mul().get(g).get(g).f32x4Mul().get(C2).f32x4Mul().f32x4Add().tee(v);
        f.v128Store(vAt);
        // p ← base − (m / (√v / bc2 + ε)) · step
        const pAt = at(0);
        f.get(base).get(m);
        f.get(v).f32x4Sqrt().get(BC2).f32x4Div().get(EPS).f32x4Add();
        f.f32x4Div().get(STEP).f32x4Mul().f32x4Sub();
        f.v128Store(pAt);
        f.get(a).i32Const(16).i32Add().tee(a).get(end).i32LtU().brIf(0);
      });
    });
  };
  const decays = Object.keys(MODE) as AdamDecay[];
  const modes = [false, true].flatMap((clip) => decays.map((decay) => () => pass(decay, clip)));
  /** if mode == k: pass k, else try k + 1 (the last mode needs no test). */
  const dispatch = (k: number): void => {
    if (k === modes.length - 1) return modes[k]();
    f.get(mode).i32Const(k).i32Eq().if(modes[k], () => dispatch(k + 1));
  };
  dispatch(0);
  return mod.encode();
}

/** An instance of the Adam module with its chunk buffer (see the module docs). */
export interface WasmAdam {
  /** Updates the first `n` elements of `p`, `m` and `v` in place from `g`, chunk by chunk. */
  update: AdamUpdate;
  /** Elements of each array per chunk. */
  readonly chunk: number;
  /** The emitted module's bytes (for validation and inspection). */
  readonly bytes: Uint8Array<ArrayBuffer>;
}

type AdamFn = (end: number, ...scalarsAndMode: number[]) => void;

/** Instantiates the module (`chunk` elements per array per chunk, a positive multiple of 4). */
export function createWasmAdam(chunk: number = DEFAULT_ADAM_CHUNK): WasmAdam {
  const bytes = emitAdamModule(chunk);
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
  const fn = exports.adam as AdamFn;
  // The memory never grows, so these views stay valid for the instance's life.
  const heap = new Float32Array((exports.memory as WebAssembly.Memory).buffer);
  const P = 0, G = chunk, M = 2 * chunk, V = 3 * chunk;
  const pv = heap.subarray(P, P + chunk), mv = heap.subarray(M, M + chunk), vv = heap.subarray(V, V + chunk);

  const update: AdamUpdate = (p, g, m, v, n, s) => {
    const gscale = s.gscale ?? 1, mode = MODE[s.decay] + (gscale !== 1 ? 3 : 0);
    for (let off = 0; off < n; off += chunk) {
      const len = Math.min(chunk, n - off), to = off + len;
      heap.set(p.subarray(off, to), P);
      heap.set(g.subarray(off, to), G);
      heap.set(m.subarray(off, to), M);
      heap.set(v.subarray(off, to), V);
      fn(Math.ceil(len / 4) * 16, s.b1, s.c1, s.b2, s.c2, s.bc2, s.eps, s.step, s.wd, s.shrink, gscale, mode);
      const full = len === chunk;
      p.set(full ? pv : pv.subarray(0, len), off);
      m.set(full ? mv : mv.subarray(0, len), off);
      v.set(full ? vv : vv.subarray(0, len), off);
    }
  };
  return { update, chunk, bytes };
}

/**
 * Updates p, m and v in place where all four arrays live in this thread's tensor heap (`heap.ts`): whole
 * vectors on the in-place module, the last n mod 4 elements by `tail` (the scalar loop, same bits). Returns
 * false, having done nothing, when an array is elsewhere (or the heap is not this module's kind of memory).
 */
export function adamInPlace(...[p, g, m, v, n, s, tail]: [...Parameters<AdamUpdate>, tail: AdamUpdate]): boolean {
  const tm = currentTensorMemory();
  if (!tm || ![p, g, m, v].every((x) => tm.owns(x.buffer))) return false;
  const fn = inPlaceAdam(tm.memory)?.adam as AdamFn | undefined;
  if (!fn) return false;
  const gscale = s.gscale ?? 1, mode = MODE[s.decay] + (gscale !== 1 ? 3 : 0), whole = n - n % 4;
  if (whole > 0) {
    fn(
      4 * whole,
      p.byteOffset,
      g.byteOffset,
      m.byteOffset,
      v.byteOffset,
      s.b1,
      s.c1,
      s.b2,
      s.c2,
      s.bc2,
      s.eps,
      s.step,
      s.wd,
      s.shrink,
      gscale,
      mode,
    );
  }
  if (whole < n) tail(p.subarray(whole), g.subarray(whole), m.subarray(whole), v.subarray(whole), n - whole, s);
  return true;
}

/** The in-place module on a tensor memory. */
const inPlaceAdam = instanceOnMemory(() => emitAdamModule(0));

/**
 * The shared instance, created on first use; undefined where WebAssembly or its SIMD proposal is missing
 * (the module fails to validate or instantiate), so callers use the TypeScript loop.
 */
export const sharedWasmAdam: () => WasmAdam | undefined = lazyWasmInstance(
  () => emitAdamModule(),
  () => createWasmAdam(),
);
