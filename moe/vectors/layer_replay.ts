/**
 * Replays a `layer_*` reference vector (`vectors/`) through {@link MoELayer} with `"linear"` experts
 * in f64 (default) or f32, on any device: loads x, the router weight and the expert weights, routes with the
 * router the case names (`params.router_object`, `top_k`, `jitter_eps`, `training`, see `./layer_routers.ts`)
 * and its logged draws ({@link ReplayDraws}), backpropagates `L = Σ upstream_grad_y ⊙ y`, and reports the max
 * abs / rel error of every quantity (values are read back with `await data()`, so GPU devices work). The
 * file's name plays no part.
 *
 * @module
 */
import type { Tensor } from "../../core/tensor.ts";
import type { Device } from "../../core/device.ts";
import { tensor } from "../../core/ops/creation.ts";
import { OpError } from "../../core/errors.ts";
import { noGrad } from "../../core/autograd.ts";
import { type LoggedDraw, ReplayDraws } from "../estimators/estimator.ts";
import { MULTINOMIAL_INDEX_CALL } from "../estimators/straight_through.ts";
import { MoELayer } from "../layer.ts";
import type { LinearExperts } from "../experts.ts";
import { type ExtraReplayer, isLayerCase, type QuantityResult, TOLERANCES } from "./replay.ts";
import { layerRouter, layerRouterObjects, type LayerRouterParams } from "./layer_routers.ts";

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

/** What {@link replayLayerVector} returns. */
export interface LayerReplayResult {
  /** Errors of every output and gradient of the file. */
  errors: LayerReplayErrors;
  /** The layer it built (call `dispose()` when done). */
  layer: MoELayer;
  /** Logged draws the router consumed, and how many there are (the multinomial result indices excluded). */
  draws: { consumed: number; logged: number };
  /**
   * For a multinomial sampler (ReinMax, Straight-Through): the logged result index vs the sampled expert
   * (exact), or null.
   */
  sampleIndex: ReplayError | null;
  /** The tolerance `ratio` is relative to: the dtype's, loosened for a float32 reference (`st`). */
  tol: { atol: number; rtol: number };
}

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

/** `params.key` if present and not null, checked by `ok`; else undefined. */
function optional<T>(
  params: Record<string, unknown>,
  key: string,
  ok: (x: unknown) => boolean,
  what: string,
): T | undefined {
  const x = params[key];
  if (x === undefined || x === null) return undefined;
  if (!ok(x)) throw new OpError("replayLayerVector", `field "params.${key}" must be ${what}, got ${JSON.stringify(x)}`);
  return x as T;
}

/** The `params` fields a layer case may have. */
const PARAMS = [
  "router_object",
  "num_experts",
  "d",
  "top_k",
  "jitter_eps",
  "training",
  "tau",
  "renormalize",
  "embed_dim",
  "seed",
];

/** A flat array of `path` with one of `shapes` (the first that matches). */
function arrayOfShape(v: Record<string, unknown>, path: string, shapes: number[][]): Nested {
  const s = shapeOf(path, field(v, path));
  const hit = shapes.find((t) => t.join() === s.join());
  if (!hit) {
    const want = shapes.map((t) => `[${t.join(", ")}]`).join(" or ");
    throw new OpError("replayLayerVector", `field "${path}" has shape [${s.join(", ")}], expected ${want}`);
  }
  return field(v, path) as Nested;
}

/**
 * Replays a layer vector (a parsed JSON object). The router comes from `params.router_object` (any object of
 * `layerRouterObjects()`: SwitchGate, SparseMixer, SparseMixerFirst, SparseMixerInf, sparsemixerv2_routing,
 * PhimoeMultiplier / sparsemixer, reinmax, st, gumbel_softmax, the top-k formula) with `params.top_k`,
 * `params.jitter_eps` (absent or null: the reference default), `params.training`, and `params.tau` /
 * `params.renormalize` where they apply; the logged draws are consumed in that router's order. An unknown
 * router object, an unsupported `top_k`, or any field it cannot interpret is an error naming the field and
 * its value. `ratio` of each error is relative to the dtype's tolerance (f64: 1e-9 + 1e-9·|b|, f32: 1e-5 +
 * 1e-4·|b|), loosened to 1e-6 + 1e-6·|b| for the float32 `st` reference.
 */
export async function replayLayerVector(
  v: Record<string, unknown>,
  options: LayerReplayOptions = {},
): Promise<LayerReplayResult> {
  const dtype = options.dtype ?? "f64";
  if (dtype !== "f64" && dtype !== "f32") {
    throw new OpError("replayLayerVector", `dtype must be "f64" or "f32", got ${JSON.stringify(dtype)}`);
  }
  const params = field(v, "params");
  if (params === null || typeof params !== "object" || Array.isArray(params)) {
    throw new OpError("replayLayerVector", `field "params" must be an object`);
  }
  const p = params as Record<string, unknown>;
  for (const key of Object.keys(p)) {
    if (!PARAMS.includes(key)) {
      throw new OpError("replayLayerVector", `field "params.${key}" is unknown (known: ${PARAMS.join(", ")})`);
    }
  }
  const object = field(v, "params.router_object");
  const router = typeof object === "string" ? layerRouter(object) : undefined;
  if (!router) {
    throw new OpError(
      "replayLayerVector",
      `field "params.router_object" = ${JSON.stringify(object)} is not a known router (known: ${
        layerRouterObjects().join(", ")
      })`,
    );
  }
  const e = positiveInt(v, "params.num_experts");
  const d = positiveInt(v, "params.d");
  const k = positiveInt(v, "params.top_k");
  if (!router.supports(k, e)) {
    throw new OpError(
      "replayLayerVector",
      `field "params.top_k" = ${k} is not supported by ${object} with ${e} experts (allowed: ${router.topKAllowed})`,
    );
  }
  const training = field(v, "params.training");
  if (typeof training !== "boolean") {
    throw new OpError(
      "replayLayerVector",
      `field "params.training" must be true or false, got ${JSON.stringify(training)}`,
    );
  }
  const isNum = (x: unknown) => typeof x === "number" && Number.isFinite(x);
  const routerParams: LayerRouterParams = {
    numExperts: e,
    topK: k,
    jitterEps: optional(p, "jitter_eps", (x) => isNum(x) && (x as number) >= 0, "a number ≥ 0"),
    tau: optional(p, "tau", (x) => isNum(x) && (x as number) > 0, "a number > 0"),
    renormalize: optional(p, "renormalize", (x) => typeof x === "boolean", "true or false"),
  };
  optional(p, "embed_dim", (x) => x === d, `equal to params.d (${d})`);
  const estimator = router.estimator(routerParams);
  const base = TOLERANCES[dtype];
  const tol = router.tol
    ? { atol: Math.max(base.atol, router.tol.atol), rtol: Math.max(base.rtol, router.tol.rtol) }
    : base;

  const x = array(v, "inputs.x", [shapeOf("inputs.x", field(v, "inputs.x"))[0], d]);
  const n = (x as Nested[]).length;
  const logged = field(v, "random_draws");
  if (!Array.isArray(logged)) throw new OpError("replayLayerVector", `field "random_draws" must be an array`);
  // A multinomial's logged result index is an output of the sampler, not a draw: checked, not replayed.
  const isIndex = (entry: LoggedDraw) => entry?.call === MULTINOMIAL_INDEX_CALL;
  const draws = (logged as LoggedDraw[]).filter((entry) => !isIndex(entry));
  const indices = (logged as LoggedDraw[]).filter(isIndex);

  const layer = new MoELayer(d, {
    numExperts: e,
    expert: "linear",
    estimator,
    outputScale: router.multiplier === "omega",
    dtype,
    device: options.device,
  });
  layer.train(training);
  const experts = layer.experts as LinearExperts; // built with `expert: "linear"` above
  const f64 = (data: Nested) => tensor(data as number[], { dtype, device: layer.router.weight.device });
  const wr = f64(array(v, "inputs.router_weight_dxE", [d, e]));
  const we = f64(array(v, "inputs.expert_weights_Exdxd", [e, d, d]));
  noGrad(() => {
    layer.router.weight.assign_(wr);
    experts.w.assign_(we);
  });
  const xt = f64(x).requiresGrad_();
  const replay = new ReplayDraws(draws);
  const y = layer.forward(xt, { draws: replay });
  y.mul(f64(array(v, "inputs.upstream_grad_y", [n, d]))).sum().backward();
  const routing = layer.lastRouting!;
  const mult = layer.omega ? routing.gates.mul(layer.omega) : routing.gates;
  const kSel = routing.experts.shape[1];
  const selShapes = kSel === 1 ? [[n, 1], [n]] : [[n, kSel]];
  let sampleIndex: ReplayError | null = null;
  if (indices.length > 0) {
    const sampled = kSel === 1 ? routing.experts : routing.gates.detach().argmax(-1, true);
    const want = indices.flatMap((entry) => flat(entry.values as Nested));
    sampleIndex = await errors(sampled, want, { atol: 0, rtol: 0 });
  }
  const errs: LayerReplayErrors = {
    router_logits: await errors(layer.lastLogits!, array(v, "outputs.router_logits", [n, e]), tol),
    selected_experts: await errors(routing.experts, arrayOfShape(v, "outputs.selected_experts", selShapes), tol),
    multiplier: await errors(
      mult,
      array(v, "outputs.multiplier", [n, router.multiplier === "omega" ? d : kSel]),
      tol,
    ),
    y: await errors(y, array(v, "outputs.y", [n, d]), tol),
    grad_x: await errors(xt.grad!, array(v, "grads.x", [n, d]), tol),
    grad_router_weight: await errors(layer.router.weight.grad!, array(v, "grads.router_weight", [d, e]), tol),
    grad_expert_weights: await errors(experts.w.grad!, array(v, "grads.expert_weights", [e, d, d]), tol),
  };
  for (const section of ["outputs", "grads"] as const) {
    const known = section === "outputs" ? ["router_logits", "selected_experts", "multiplier", "y"] : [
      "x",
      "router_weight",
      "expert_weights",
    ];
    for (const key of Object.keys(field(v, section) as object)) {
      if (!known.includes(key)) {
        throw new OpError("replayLayerVector", `field "${section}.${key}" is unknown (known: ${known.join(", ")})`);
      }
    }
  }
  return { errors: errs, layer, draws: { consumed: replay.consumed, logged: draws.length }, sampleIndex, tol };
}

/**
 * {@link replayLayerVector} as a replayer for `replayVector` / `deno task vectors`, in the requested dtype on
 * the requested device; tolerance as {@link replayLayerVector}'s, the selected experts exactly; plus
 * `random_draws (all consumed)` and, for a multinomial sampler, its logged result index (exact).
 */
export const layerReplayer: ExtraReplayer = {
  match: isLayerCase,
  replay: async (v, options) => {
    const { errors, layer, draws, sampleIndex, tol } = await replayLayerVector(v as Record<string, unknown>, {
      dtype: options.dtype,
      device: options.device,
    });
    layer.dispose();
    const out: QuantityResult[] = Object.entries(errors).map(([quantity, e]) => {
      const exact = quantity === "selected_experts";
      const [atol, rtol] = exact ? [0, 0] : [tol.atol, tol.rtol];
      return { quantity, maxAbs: e.abs, maxRel: e.rel, ok: exact ? e.abs === 0 : e.ratio <= 1, atol, rtol };
    });
    if (sampleIndex) {
      out.push({
        quantity: `random_draws (${MULTINOMIAL_INDEX_CALL})`,
        maxAbs: sampleIndex.abs,
        maxRel: sampleIndex.rel,
        ok: sampleIndex.abs === 0,
        atol: 0,
        rtol: 0,
      });
    }
    const all = draws.consumed === draws.logged;
    out.push({
      quantity: "random_draws (all consumed)",
      maxAbs: draws.logged - draws.consumed,
      maxRel: 0,
      ok: all,
      atol: 0,
      rtol: 0,
      ...(all ? {} : { note: `${draws.consumed} of ${draws.logged} logged draws consumed` }),
    });
    return out;
  },
};
