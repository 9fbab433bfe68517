/**
 * Rotary position embeddings (RoPE), rotate-half convention.
 *
 * @module
 */
import { rotaryEmbedding, type Tensor, tensor } from "../../core/mod.ts";

/** Options of {@link applyRope}. */
export interface RopeOptions {
  /** The frequency base θ (default 10000). */
  base?: number;
  /** The position of the first row (default 0), e.g. the number of cached tokens when decoding. */
  offset?: number;
}

/**
 * Rotates `x` `[…, T, headDim]` by its positions along axis −2 (`offset`, `offset + 1`, …).
 *
 * Convention (**rotate-half**, as in GPT-NeoX and Llama, not the interleaved pairs of the RoFormer paper):
 * with h = headDim / 2, feature i < h is paired with feature i + h and the pair is rotated by the angle
 * p·θ^(−2i/headDim) at position p:
 *
 *   out = x ⊙ cos + rotateHalf(x) ⊙ sin,   rotateHalf([x₁, x₂]) = [−x₂, x₁],
 *
 * where cos and sin repeat their h angles twice along the last axis. Each pair is a 2-D rotation, so
 * ⟨rope(q, m), rope(k, n)⟩ depends on m − n only. Angles are computed in f64 on the host and uploaded in
 * `x`'s dtype; `headDim` must be even. One fused kernel each way ({@link rotaryEmbedding}).
 *
 * @example
 * ```ts
 * import { randn } from "@moegrad/moegrad";
 * import { applyRope } from "../mod.ts";
 * const q = randn([2, 4, 10, 16]); // [batch, heads, T, headDim]
 * console.log(applyRope(q).shape); // [2, 4, 10, 16]
 * ```
 */
export function applyRope(x: Tensor, options: RopeOptions = {}): Tensor {
  const base = options.base ?? 10000, offset = options.offset ?? 0;
  if (x.rank < 2) throw new RangeError(`applyRope: expected [..., T, headDim], got [${x.shape.join(", ")}]`);
  const [t, dim] = x.shape.slice(-2);
  if (dim % 2 !== 0) throw new RangeError(`applyRope: headDim must be even, got ${dim}`);
  if (!(base > 0) || !Number.isInteger(offset) || offset < 0) {
    throw new RangeError(`applyRope: need base > 0 and an integer offset ≥ 0, got ${base} and ${offset}`);
  }
  const { cos, sin } = angleTables(t, dim, base, offset);
  const opts = { shape: [t, dim / 2], dtype: x.dtype, device: x.device };
  return rotaryEmbedding(x, tensor(cos, opts), tensor(sin, opts));
}

/** Host tables by `t,dim,base,offset`, most recent last: a training step asks for the same ones in every layer. */
const tables = new Map<string, { cos: Float64Array; sin: Float64Array }>();
/** Enough for several models and a decoding loop's recent offsets; the oldest entry goes first. */
const MAX_TABLES = 64;

/** cos and sin of the angles, `[t, dim / 2]` in f64, computed once per size and position range (they are constants). */
function angleTables(t: number, dim: number, base: number, offset: number): { cos: Float64Array; sin: Float64Array } {
  const key = `${t},${dim},${base},${offset}`;
  let found = tables.get(key);
  if (found) {
    tables.delete(key); // re-inserted below: most recently used last
  } else {
    const half = dim / 2;
    found = { cos: new Float64Array(t * half), sin: new Float64Array(t * half) };
    for (let p = 0; p < t; p++) {
      for (let i = 0; i < half; i++) {
        const angle = (offset + p) * Math.pow(base, (-2 * i) / dim);
        found.cos[p * half + i] = Math.cos(angle);
        found.sin[p * half + i] = Math.sin(angle);
      }
    }
    if (tables.size >= MAX_TABLES) tables.delete(tables.keys().next().value!);
  }
  tables.set(key, found);
  return found;
}
