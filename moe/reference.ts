/**
 * The trusted per-token loop reference of {@link MoELayer} (tests only): for each token and slot, slice the
 * chosen expert's weights, run the expert on that one token with small matmuls, multiply by the gate and
 * accumulate, then add every shared expert (option `sharedExperts`) on the token. It shares the layer's weights and a given routing, so forward values and gradients (router
 * through the gates, experts, x, ω) can be compared with the dispatched layer. Reads the chosen experts with
 * `dataSync()` (CPU tensors).
 *
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import { concat } from "../core/ops/layout.ts";
import { zeros } from "../core/ops/creation.ts";
import type { Routing } from "./estimators/estimator.ts";
import type { MoELayer } from "./layer.ts";
import type { BuiltinExperts } from "./experts.ts";

/** Expert `e` of `ex` (default the layer's routed experts) on one token `xt` [1, d], from weight slices → [1, d]. */
export function expertOnToken(layer: MoELayer, e: number, xt: Tensor, ex: BuiltinExperts = layer.experts): Tensor {
  const w = (weight: Tensor) => weight.slice(0, e, e + 1).squeeze(0);
  const act = (a: Tensor) => layer.activation === "relu" ? a.relu() : layer.activation === "silu" ? a.silu() : a.gelu();
  if (ex.kind === "linear") return xt.matmul(w(ex.w));
  if (ex.kind === "ffn") return act(xt.matmul(w(ex.w1)).add(w(ex.b1))).matmul(w(ex.w2)).add(w(ex.b2));
  return act(xt.matmul(w(ex.wGate))).mul(xt.matmul(w(ex.wUp))).matmul(w(ex.wDown));
}

/**
 * `y` [..., d] for `x` [..., d] under `routing` (of `x` flattened to [N, d]). With `capacity`, the pairs beyond
 * the first `capacity` per expert in token order contribute nothing (the layer's dropping rule).
 */
export function moeLoopReference(layer: MoELayer, x: Tensor, routing: Routing, capacity?: number): Tensor {
  const d = layer.dim;
  const x2 = x.reshape(-1, d);
  const n = x2.shape[0];
  const experts = routing.experts.dataSync();
  const active = routing.active?.dataSync();
  const k = routing.experts.shape[1];
  const used = new Array(layer.numExperts).fill(0);
  const rows: Tensor[] = [];
  for (let t = 0; t < n; t++) {
    const xt = x2.slice(0, t, t + 1);
    let yt = zeros([1, d], { dtype: x.dtype, device: x.device });
    for (let s = 0; s < k; s++) {
      if (active && !active[t * k + s]) continue; // not routed (expert choice)
      const e = Number(experts[t * k + s]);
      if (capacity !== undefined && used[e]++ >= capacity) continue;
      const gate = routing.gates.slice(0, t, t + 1).slice(1, s, s + 1);
      yt = yt.add(expertOnToken(layer, e, xt).mul(gate));
    }
    for (let s = 0; s < (layer.shared?.numExperts ?? 0); s++) yt = yt.add(expertOnToken(layer, s, xt, layer.shared!));
    rows.push(layer.omega ? yt.mul(layer.omega) : yt);
  }
  return concat(rows, 0).reshape(...x.shape);
}
