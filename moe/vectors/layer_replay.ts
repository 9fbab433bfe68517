/**
 * Replays a `layer_*` reference vector (`vectors/`) through {@link MoELayer} with `"linear"` experts
 * in f64 (default) or f32, on any device: loads x, the router weight and the expert weights, routes with the
 * logged draws ({@link ReplayDraws}), backpropagates `L = Σ upstream_grad_y ⊙ y`, and reports the max abs / rel
 * error of every quantity (values are read back with `await data()`, so GPU devices work).
 *
 * @module
 */
import type { Tensor } from "../../core/tensor.ts";
import type { Device } from "../../core/device.ts";
import { tensor } from "../../core/ops/creation.ts";
import { OpError } from "../../core/errors.ts";
import { noGrad } from "../../core/autograd.ts";
import { type LoggedDraw, ReplayDraws } from "../estimators/estimator.ts";
import { MoELayer } from "../layer.ts";
import { type ExtraReplayer, TOLERANCES } from "./replay.ts";

/** Max abs, rel and mixed errors of one quantity. */
export interface ReplayError {
  /** max |actual − expected|. */
  abs: number;
  /** max |actual − expected| / |expected| (entries with expected 0 count as abs). */
  rel: number;
  /** max |actual − expected| / (1 + |expected|): ≤ tol means within tol abs + tol rel. */
  mixed: number;
  /** max |actual − expected| / (atol + rtol·|expected|) for the replay dtype's tolerance: ≤ 1 passes. */
  ratio: number;
}

/** Options of {@link replayLayerVector}. */
export interface LayerReplayOptions {
  /** Working dtype of the layer and every tensor (default f64, the precision the vectors were made in). */
  dtype?: "f64" | "f32";
  /** Device (or registered device name); default: the default device. */
  device?: Device | string;
}

/** Per-quantity errors of a replay. */
export type LayerReplayErrors = Record<
  "router_logits" | "selected_experts" | "multiplier" | "y" | "grad_x" | "grad_router_weight" | "grad_expert_weights",
  ReplayError
>;

type Nested = number | Nested[];

function field(v: Record<string, unknown>, path: string): unknown {
  let cur: unknown = v;
  for (const key of path.split(".")) {
    if (cur === null || typeof cur !== "object" || !(key in (cur as Record<string, unknown>))) {
      throw new OpError("replayLayerVector", `the vector has no field "${path}"`);
    }
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function shapeOf(path: string, x: unknown): number[] {
  if (typeof x === "number") return [];
  if (!Array.isArray(x) || x.length === 0) {
    throw new OpError("replayLayerVector", `field "${path}" is not a non-empty nested array of numbers`);
  }
  const inner = shapeOf(path, x[0]);
  for (const item of x) {
    if (shapeOf(path, item).join() !== inner.join()) {
      throw new OpError("replayLayerVector", `field "${path}" is a ragged array`);
    }
  }
  return [x.length, ...inner];
}

function array(v: Record<string, unknown>, path: string, shape: number[]): Nested {
  const x = field(v, path);
  const s = shapeOf(path, x);
  if (s.join() !== shape.join()) {
    throw new OpError(
      "replayLayerVector",
      `field "${path}" has shape [${s.join(", ")}], expected [${shape.join(", ")}]`,
    );
  }
  return x as Nested;
}

const flat = (x: Nested): number[] => (Array.isArray(x) ? x.flatMap(flat) : [x]);

async function errors(
  actual: Tensor,
  expected: Nested,
  tol: { atol: number; rtol: number },
): Promise<ReplayError> {
  const a = Array.from(await actual.data(), Number);
  const b = flat(expected);
  if (a.length !== b.length) throw new OpError("replayLayerVector", `${a.length} values vs ${b.length} expected`);
  let abs = 0, rel = 0, mixed = 0, ratio = 0;
  a.forEach((x, i) => {
    const diff = Math.abs(x - b[i]);
    abs = Math.max(abs, diff);
    rel = Math.max(rel, b[i] === 0 ? diff : diff / Math.abs(b[i]));
    mixed = Math.max(mixed, diff / (1 + Math.abs(b[i])));
    // NaN compares false with everything: make it fail.
    ratio = Math.max(ratio, Number.isNaN(diff) ? Infinity : diff / (tol.atol + tol.rtol * Math.abs(b[i])));
  });
  return { abs, rel, mixed, ratio };
}

function positiveInt(v: Record<string, unknown>, path: string): number {
  const x = field(v, path);
  if (!Number.isInteger(x) || (x as number) < 1) {
    throw new OpError("replayLayerVector", `field "${path}" must be a positive integer, got ${JSON.stringify(x)}`);
  }
  return x as number;
}

/**
 * Replays a layer vector (a parsed JSON object). The estimator is `"switch"` for a SwitchGate vector and
 * `"sparsemixer"` (with ω = ones, `outputScale`) for a SparseMixer v1 vector, chosen from `name`; ε is
 * `params.jitter_eps` when present, else the reference default 0.1. Rejects with an error naming any field it
 * cannot interpret. `ratio` of each error is relative to `TOLERANCES[dtype]` (f64: 1e-9 + 1e-9·|b|,
 * f32: 1e-5 + 1e-4·|b|).
 */
export async function replayLayerVector(
  v: Record<string, unknown>,
  options: LayerReplayOptions = {},
): Promise<{ errors: LayerReplayErrors; layer: MoELayer }> {
  const dtype = options.dtype ?? "f64";
  if (dtype !== "f64" && dtype !== "f32") {
    throw new OpError("replayLayerVector", `dtype must be "f64" or "f32", got ${JSON.stringify(dtype)}`);
  }
  const tol = TOLERANCES[dtype];
  const name = field(v, "name");
  if (typeof name !== "string") throw new OpError("replayLayerVector", `field "name" must be a string`);
  const kind = /^layer_switch/.test(name) ? "switch" : /^layer_v1/.test(name) ? "sparsemixer" : null;
  if (!kind) {
    throw new OpError(
      "replayLayerVector",
      `field "name" = ${JSON.stringify(name)} names no supported layer case (layer_switch_*, layer_v1_*)`,
    );
  }
  const e = positiveInt(v, "params.num_experts");
  const d = positiveInt(v, "params.d");
  const k = positiveInt(v, "params.top_k");
  if (k !== 1) throw new OpError("replayLayerVector", `field "params.top_k" = ${k}: only top-1 layer cases exist`);
  const params = field(v, "params") as Record<string, unknown>;
  const eps = params.jitter_eps ?? 0.1;
  if (typeof eps !== "number" || !(eps >= 0)) {
    throw new OpError(
      "replayLayerVector",
      `field "params.jitter_eps" must be a number ≥ 0, got ${JSON.stringify(eps)}`,
    );
  }
  const x = array(v, "inputs.x", [shapeOf("inputs.x", field(v, "inputs.x"))[0], d]);
  const n = (x as Nested[]).length;
  const draws = field(v, "random_draws");
  if (!Array.isArray(draws)) throw new OpError("replayLayerVector", `field "random_draws" must be an array`);

  const layer = new MoELayer(d, {
    numExperts: e,
    expert: "linear",
    estimator: kind,
    estimatorOptions: { jitterEps: eps },
    outputScale: kind === "sparsemixer",
    dtype,
    device: options.device,
  });
  const f64 = (data: Nested) => tensor(data as number[], { dtype, device: layer.router.weight.device });
  const wr = f64(array(v, "inputs.router_weight_dxE", [d, e]));
  const we = f64(array(v, "inputs.expert_weights_Exdxd", [e, d, d]));
  noGrad(() => {
    layer.router.weight.assign_(wr);
    layer.weights.w.assign_(we);
  });
  const xt = f64(x).requiresGrad_();
  const y = layer.forward(xt, { draws: new ReplayDraws(draws as LoggedDraw[]) });
  y.mul(f64(array(v, "inputs.upstream_grad_y", [n, d]))).sum().backward();
  const routing = layer.lastRouting!;
  const mult = layer.omega ? routing.gates.mul(layer.omega) : routing.gates;
  const errs: LayerReplayErrors = {
    router_logits: await errors(layer.lastLogits!, array(v, "outputs.router_logits", [n, e]), tol),
    selected_experts: await errors(routing.experts, array(v, "outputs.selected_experts", [n, k]), tol),
    multiplier: await errors(mult, array(v, "outputs.multiplier", [n, kind === "sparsemixer" ? d : 1]), tol),
    y: await errors(y, array(v, "outputs.y", [n, d]), tol),
    grad_x: await errors(xt.grad!, array(v, "grads.x", [n, d]), tol),
    grad_router_weight: await errors(layer.router.weight.grad!, array(v, "grads.router_weight", [d, e]), tol),
    grad_expert_weights: await errors(layer.weights.w.grad!, array(v, "grads.expert_weights", [e, d, d]), tol),
  };
  return { errors: errs, layer };
}

/**
 * {@link replayLayerVector} as a replayer for `replayVector` / `deno task vectors`, in the requested dtype on
 * the requested device; tolerance `TOLERANCES[dtype]` (f64: 1e-9 abs + 1e-9 rel; f32: 1e-5 abs + 1e-4 rel), the
 * selected experts exactly.
 */
export const layerReplayer: ExtraReplayer = {
  match: (v) => typeof v === "object" && v !== null && /^layer_/.test(String((v as { name?: unknown }).name)),
  replay: async (v, options) => {
    const { errors, layer } = await replayLayerVector(v as Record<string, unknown>, {
      dtype: options.dtype,
      device: options.device,
    });
    layer.dispose();
    const tol = TOLERANCES[options.dtype];
    return Object.entries(errors).map(([quantity, e]) => {
      const exact = quantity === "selected_experts";
      const [atol, rtol] = exact ? [0, 0] : [tol.atol, tol.rtol];
      return { quantity, maxAbs: e.abs, maxRel: e.rel, ok: exact ? e.abs === 0 : e.ratio <= 1, atol, rtol };
    });
  },
};
