/** Shared by the layer tests that compare a layer with a plain-loop construction: run, collect, compare. */
import assert from "node:assert/strict";
import type { MoELayer, Tensor } from "../../mod.ts";

/** A tensor's values as numbers. */
export const values = (t: Tensor): number[] => [...t.dataSync()].map(Number);

/**
 * `y = build(x)` for a fresh leaf copy of `x0`, backward of `sum(y · up)`; returns y, x's gradient and every
 * parameter's gradient of `layer` (cleared first), flattened, keyed by name.
 */
export function layerGrads(
  layer: MoELayer,
  x0: Tensor,
  up: Tensor,
  build: (x: Tensor) => Tensor,
): Record<string, number[]> {
  for (const [, p] of layer.namedParameters()) p.grad = null;
  const x = x0.detach().requiresGrad_();
  const y = build(x);
  y.mul(up).sum().backward();
  const out: Record<string, number[]> = { y: values(y), x: values(x.grad!) };
  for (const [n, p] of layer.namedParameters()) out[n] = values(p.grad!);
  return out;
}

/** Every entry of `got` within `atol + rtol·|ref|` of `ref`, naming the key and index that is not. */
export function assertAllClose(
  got: Record<string, number[]>,
  ref: Record<string, number[]>,
  atol = 1e-12,
  rtol = 1e-12,
) {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(ref).sort());
  for (const key of Object.keys(ref)) {
    ref[key].forEach((b, i) => {
      const a = got[key][i];
      assert.ok(Math.abs(a - b) <= atol + rtol * Math.abs(b), `${key}[${i}]: layer ${a} vs loop ${b}`);
    });
  }
}
