/**
 * The rotary position embedding (RoPE) as one fused op: the rotation of each feature pair by its position's
 * angle is one kernel forward, and its backward — the same rotation with the sine negated — one kernel too,
 * instead of the narrow, neg, concat, two muls and add of the composed chain (and their backward). On the
 * CPU the forward gives the chain's bits (see `kernels/cpu/rotary.ts`).
 *
 * @module
 */
import { record } from "../autograd.ts";
import { run1 } from "../engine.ts";
import { fmtShape, OpError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import { assertFloat, assertTensor } from "./operand.ts";
import { sumTo } from "./reduce.ts";

/** Options of {@link rotaryEmbedding}. */
export interface RotaryOptions {
  /** Rotate by −angle instead (the inverse rotation, which is also the backward; default false). */
  inverse?: boolean;
}

function checkTable(x: Tensor, table: Tensor, name: string, t: number, h: number): void {
  assertTensor("rotaryEmbedding", table, name);
  if (table.dtype !== x.dtype || table.rank !== 2 || table.shape[0] !== t || table.shape[1] !== h) {
    throw new OpError(
      "rotaryEmbedding",
      `${name} must be ${x.dtype} [${t}, ${h}] for x ${x.dtype} ${fmtShape(x.shape)}, got ${table.dtype} ${
        fmtShape(table.shape)
      }`,
    );
  }
}

/**
 * Rotates x `[…, T, D]` pair by pair, rotate-half convention (GPT-NeoX, Llama): with h = D/2, feature i < h
 * and feature i + h are rotated by the angle whose cosine and sine are `cos[t, i]` and `sin[t, i]` (tables
 * `[T, h]` in x's dtype) at position t: out = x ⊙ cos + rotateHalf(x) ⊙ sin, rotateHalf([x₁, x₂]) = [−x₂, x₁],
 * with cos and sin repeated along the last axis — like `apply_rotary_pos_emb(x, cos, sin)` in Hugging Face
 * transformers. One kernel each way; `applyRope` builds the tables and calls it. Differentiable in x and in
 * the tables.
 *
 * @example
 * ```ts
 * import { rotaryEmbedding, tensor } from "@moegrad/moegrad";
 * const x = tensor([[1, 0]]); // T = 1, D = 2: one pair (1, 0)
 * const y = rotaryEmbedding(x, tensor([[0]]), tensor([[1]])); // a quarter turn
 * console.log(await y.data()); // [0, 1]
 * ```
 */
export function rotaryEmbedding(x: Tensor, cos: Tensor, sin: Tensor, options: RotaryOptions = {}): Tensor {
  assertTensor("rotaryEmbedding", x);
  assertFloat("rotaryEmbedding", x);
  const inverse = options.inverse ?? false;
  if (x.rank < 2) throw new OpError("rotaryEmbedding", `x must be [..., T, D], got ${fmtShape(x.shape)}`);
  const [t, d] = x.shape.slice(-2);
  if (d % 2 !== 0) throw new OpError("rotaryEmbedding", `the last axis must be even, got ${fmtShape(x.shape)}`);
  checkTable(x, cos, "cos", t, d / 2);
  checkTable(x, sin, "sin", t, d / 2);
  const out = run1("rotaryEmbedding", "rotary", [x, cos, sin], { shape: x.shape, dtype: x.dtype }, { inverse });
  record("rotaryEmbedding", [x, cos, sin], [out], ([g]) => {
    const [dcos, dsin] = cos.requiresGrad || sin.requiresGrad ? tableGrads(x, g, inverse, t, d / 2) : [null, null];
    return [x.requiresGrad ? rotaryEmbedding(g, cos, sin, { inverse: !inverse }) : null, dcos, dsin];
  });
  return out;
}

/** The gradients of the tables: Σ over the leading axes of ∂out/∂cos ⊙ g and ∂out/∂sin ⊙ g (public ops). */
function tableGrads(x: Tensor, g: Tensor, inverse: boolean, t: number, h: number): [Tensor, Tensor] {
  const [x1, x2] = [x.narrow(-1, 0, h), x.narrow(-1, h, h)];
  const [g1, g2] = [g.narrow(-1, 0, h), g.narrow(-1, h, h)];
  const dsin = x1.mul(g2).sub(x2.mul(g1));
  return [sumTo(x1.mul(g1).add(x2.mul(g2)), [t, h]), sumTo(inverse ? dsin.neg() : dsin, [t, h])];
}
