/**
 * Layer normalisation over the last axis as one fused op: the forward is one kernel (`layerNorm`, which also
 * saves each row's mean and 1/std), the backward another (`layerNormBackward`: dx, dweight and dbias in one
 * kernel) — instead of the ~10 elementwise and reduction ops of the composed chain and their buffers.
 *
 * Numerics: the biased variance with eps inside the square root, as PyTorch (see the kernel registry). Results
 * differ from the composed chain `(x − mean)·rsqrt(var + eps)·w + b` only by rounding (in f32, the chain rounds
 * every intermediate; the kernels sum in double).
 *
 * Higher-order gradients: the backward kernel has no VJP of its own. When a backward pass records the graph of
 * the gradient (`createGraph`), the VJP is written with public ops instead (the same formula, recomputing the
 * statistics from x), so gradients of any order still work.
 *
 * @module
 */
import { isGradEnabled, record } from "../autograd.ts";
import { runKernel } from "../engine.ts";
import { fmtShape, OpError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import { assertFloat, assertTensor } from "./operand.ts";
import { sumTo } from "./reduce.ts";

/** Options of {@link layerNorm}. */
export interface LayerNormFnOptions {
  /** Scale `[D]` (default: none). */
  weight?: Tensor | null;
  /** Shift `[D]` (default: none). */
  bias?: Tensor | null;
  /** Added to the variance inside the square root (default 1e-5). */
  eps?: number;
}

function checkParam(x: Tensor, p: Tensor, name: string): void {
  assertTensor("layerNorm", p, name);
  const d = x.shape[x.rank - 1];
  if (p.rank !== 1 || p.shape[0] !== d || p.dtype !== x.dtype) {
    throw new OpError(
      "layerNorm",
      `${name} must be ${x.dtype} [${d}] for input ${x.dtype} ${fmtShape(x.shape)}, got ${p.dtype} ${
        fmtShape(p.shape)
      }`,
    );
  }
}

/**
 * Layer normalisation over the last axis, like `torch.nn.functional.layer_norm(x, [D], weight, bias, eps)`:
 * (x − mean) / √(var + eps) · weight + bias per row, with the biased variance. One kernel forward and one
 * backward (dx, dweight, dbias). `nn.LayerNorm` calls it.
 *
 * @example
 * ```ts
 * import { layerNorm, tensor } from "@moegrad/moegrad";
 * const y = layerNorm(tensor([[1, 2, 3]]), { weight: tensor([1, 1, 2]), bias: tensor([0, 0, 1]) });
 * console.log(await y.data()); // ≈ [-1.2247, 0, 3.4495]
 * ```
 */
export function layerNorm(x: Tensor, options: LayerNormFnOptions = {}): Tensor {
  assertTensor("layerNorm", x);
  assertFloat("layerNorm", x);
  if (x.rank < 1) throw new OpError("layerNorm", `input must have at least one axis, got shape ${fmtShape(x.shape)}`);
  const { weight = null, bias = null, eps = 1e-5 } = options;
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new OpError("layerNorm", `eps must be finite and ≥ 0, got ${eps}`);
  if (weight) checkParam(x, weight, "weight");
  if (bias) checkParam(x, bias, "bias");
  const params = [weight, bias].filter((p): p is Tensor => p !== null);
  const inputs: Tensor[] = [x, ...params];
  const rowShape = x.shape.slice(0, -1), stat = { shape: rowShape, dtype: x.dtype };
  const [y, mean, rstd] = runKernel("layerNorm", "layerNorm", inputs, [
    { shape: x.shape, dtype: x.dtype },
    stat,
    stat,
  ], { eps, hasWeight: weight !== null, hasBias: bias !== null });
  record("layerNorm", inputs, [y], ([g]) => {
    const [dx, dw, db] = isGradEnabled()
      ? composedBackward(g, x, weight, eps)
      : runKernel("layerNorm", "layerNormBackward", [g, x, mean, rstd, ...(weight ? [weight] : [])], [
        { shape: x.shape, dtype: x.dtype },
        { shape: [x.shape[x.rank - 1]], dtype: x.dtype },
        { shape: [x.shape[x.rank - 1]], dtype: x.dtype },
      ], { hasWeight: weight !== null });
    const grads = [x.requiresGrad ? dx : null];
    if (weight) grads.push(weight.requiresGrad ? dw : null);
    if (bias) grads.push(bias.requiresGrad ? db : null);
    return grads;
  });
  // Not recorded (no gradient wanted): nothing will read the statistics, so free them now (GPU memory).
  if (!y.requiresGrad) { for (const t of [mean, rstd]) t.dispose(); }
  return y;
}

/** The backward written with differentiable ops (for `createGraph`): the kernel's formula, statistics from x. */
function composedBackward(g: Tensor, x: Tensor, weight: Tensor | null, eps: number): [Tensor, Tensor, Tensor] {
  const centered = x.sub(x.mean(-1, true));
  const rstd = centered.square().mean(-1, true).add(eps).rsqrt();
  const xhat = centered.mul(rstd);
  const gw = weight ? g.mul(weight) : g;
  const dx = rstd.mul(gw.sub(gw.mean(-1, true)).sub(xhat.mul(gw.mul(xhat).mean(-1, true))));
  const d = [x.shape[x.rank - 1]];
  return [dx, sumTo(g.mul(xhat), d), sumTo(g, d)];
}
