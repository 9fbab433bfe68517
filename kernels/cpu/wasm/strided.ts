/**
 * Strided copies (the `strided` gather of permute / slice / expand, and its scatter inverse) in WebAssembly,
 * for arrays of 4-byte elements that live in the tensor memory (`heap.ts`): the copy is cut into runs of
 * contiguous elements under up to three outer axes, and each run is moved with v128 loads and stores.
 *
 * Why: the JavaScript fast path (`../fast_layout.ts`) pays a builtin call per run (`set` of a `subarray`,
 * or `copyWithin`), ≈ 50–80 ns, which for an attention head's split — [4, 128, 4, 64] to [4, 4, 128, 64],
 * 2048 runs of 64 floats — is most of the copy: measured (shared 2-vCPU Zen 4, 2026-12-07), 156–177 µs with
 * `set`, 118–120 with `copyWithin`, 28 with this loop. A copy changes no bits.
 *
 * @module
 */
import { ModuleBuilder, ValType } from "./assembler.ts";
import { currentTensorMemory, instanceOnMemory, TENSOR_MEMORY_IMPORT } from "./heap.ts";

/** Most outer axes a copy may have here (after collapsing); more go to the JavaScript path. */
export const MAX_OUTER_AXES = 3;

/**
 * Emits the module (on the tensor memory): `gather(dense, strided, n0, n1, n2, s0, s1, s2, runBytes)` copies,
 * for i0 < n0, i1 < n1, i2 < n2 in row-major order, the `runBytes` bytes at strided + i0·s0 + i1·s1 + i2·s2
 * to the next `runBytes` bytes from `dense`; `scatter(…)` (same arguments) copies the other way, in the same
 * order (so where runs overlap, the last write wins, as in the reference loop). Byte addresses and strides;
 * `runBytes` a positive multiple of 4 and every n ≥ 1.
 */
export function emitStridedModule(): Uint8Array<ArrayBuffer> {
  const mod = new ModuleBuilder().setMemory(TENSOR_MEMORY_IMPORT);
  const { i32 } = ValType;
  for (const name of ["gather", "scatter"] as const) {
    const f = mod.addFunction(name, [i32, i32, i32, i32, i32, i32, i32, i32, i32]);
    const dense = 0, strided = 1, n = [2, 3, 4], s = [5, 6, 7], runBytes = 8;
    const i = [f.local(i32), f.local(i32), f.local(i32)], at = [f.local(i32), f.local(i32), f.local(i32)];
    const p = f.local(i32), end = f.local(i32), q = f.local(i32);
    const [from, to] = name === "gather" ? [p, q] : [q, p];
    /** One run: p walks the strided run, q the dense one; 16 bytes at a time, then 4 at a time. */
    const copyRun = () => {
      f.get(at[2]).set(p);
      f.get(dense).set(q);
      f.get(p).get(runBytes).i32Add().set(end);
      f.block(() =>
        f.loop(() => {
          f.get(p).i32Const(16).i32Add().get(end).i32GtU().brIf(1);
          f.get(to).get(from).v128Load(0, 2).v128Store(0, 2);
          f.get(p).i32Const(16).i32Add().set(p);
          f.get(q).i32Const(16).i32Add().set(q);
          f.br(0);
        })
      );
      f.block(() =>
        f.loop(() => {
          f.get(p).get(end).i32GeU().brIf(1);
          f.get(to).get(from).f32Load().f32Store();
          f.get(p).i32Const(4).i32Add().set(p);
          f.get(q).i32Const(4).i32Add().set(q);
          f.br(0);
        })
      );
      f.get(dense).get(runBytes).i32Add().set(dense);
    };
    /** The loop over axis d (its strided start `at[d]` set by the caller), the axes inside it nested. */
    const axis = (d: number) => {
      f.i32Const(0).set(i[d]);
      f.loop(() => {
        if (d < 2) {
          f.get(at[d]).set(at[d + 1]);
          axis(d + 1);
        } else copyRun();
        f.get(at[d]).get(s[d]).i32Add().set(at[d]);
        f.get(i[d]).i32Const(1).i32Add().tee(i[d]).get(n[d]).i32LtU().brIf(0);
      });
    };
    f.get(strided).set(at[0]);
    axis(0);
  }
  return mod.encode();
}

type CopyFn = (...args: number[]) => void;
const onMemory = instanceOnMemory(emitStridedModule);

/**
 * Copies between a dense array and strided positions of another where both live in this thread's tensor
 * memory and hold 4-byte elements: `gather` sets dense[k] from strided, `scatter` the reverse, run by run.
 * `outer` and `outerStrides` (elements, at most {@link MAX_OUTER_AXES}) give the runs' starts from
 * `stridedOffset` (elements from `strided`'s start), each run `run` contiguous elements; the dense side is
 * written or read from its start, in row-major order. Returns false (having done nothing) where it cannot run.
 */
export function copyRunsInPlace(
  kind: "gather" | "scatter",
  dense: ArrayBufferView,
  strided: ArrayBufferView,
  stridedOffset: number,
  outer: readonly number[],
  outerStrides: readonly number[],
  run: number,
): boolean {
  if (outer.length > MAX_OUTER_AXES || run < 1) return false;
  if (!isFourByte(dense) || !isFourByte(strided)) return false;
  const tm = currentTensorMemory();
  if (!tm || !tm.owns(dense.buffer) || !tm.owns(strided.buffer)) return false;
  const exports = onMemory(tm.memory);
  if (!exports) return false;
  const n = [1, 1, 1], s = [0, 0, 0], pad = MAX_OUTER_AXES - outer.length;
  for (let d = 0; d < outer.length; d++) {
    if (outer[d] < 1) return true; // nothing to copy
    n[pad + d] = outer[d];
    s[pad + d] = 4 * outerStrides[d];
  }
  const fn = exports[kind] as CopyFn;
  fn(dense.byteOffset, strided.byteOffset + 4 * stridedOffset, n[0], n[1], n[2], s[0], s[1], s[2], 4 * run);
  return true;
}

function isFourByte(a: ArrayBufferView): boolean {
  return a instanceof Float32Array || a instanceof Int32Array || a instanceof Uint32Array;
}
