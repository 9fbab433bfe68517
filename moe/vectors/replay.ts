/**
 * Replays a reference vector file (`vectors/*.json`, format in its README.md) against moegrad's
 * estimators: recomputes every entry of the file's `outputs` and `grads` from its `inputs` and logged
 * `random_draws`, and reports the largest absolute and relative error of each quantity.
 *
 * Conventions (from the vectors' README): gradients are of `L = Σ upstream_grad_* ⊙ output`, except the
 * `…_from_balance_loss` (and the formula file's `…_lb_loss` / `…_z_loss`) gradients, which are of that loss
 * alone. Every logged draw must be consumed. Anything the replayer does not know — an estimator, a top-level
 * field, a parameter, an input, an output or a gradient key — is a {@link VectorFormatError} naming the file
 * and the field. Layer vectors (`layer_*` cases, recognised by {@link isLayerCase}) need an extra replayer passed
 * to {@link replayVector}.
 *
 * Tolerances: f64 `|a − b| ≤ 1e-9 + 1e-9·|b|`, f32 `≤ 1e-5 + 1e-4·|b|`; the straight-through reference
 * computes in float32 (quirk 5), so its file is compared with at least `1e-6 + 1e-6·|b|`.
 *
 * @module
 */
import type { Tensor } from "../../core/tensor.ts";
import type { Device } from "../../core/device.ts";
import type { FloatDType } from "../../core/dtype.ts";
import { tensor } from "../../core/ops/creation.ts";
import { gradients, noGrad } from "../../core/autograd.ts";
import { type LoggedDraw, ReplayDraws, type Routing } from "../estimators/estimator.ts";
import { createEstimator, estimatorDescriptors } from "../estimators/registry.ts";
import type { VectorFile, VectorFileFormat } from "../estimators/descriptor.ts";
import { MULTINOMIAL_INDEX_CALL } from "../estimators/straight_through.ts";
import { routerZLoss, switchBalanceLoss, topkBalanceLoss } from "../aux_losses.ts";

/** Options of {@link replayVector}. */
export interface ReplayOptions {
  /** Working dtype of every tensor. */
  dtype: FloatDType;
  /** Device (or registered device name); default: the default device. */
  device?: Device | string;
}

/** The comparison of one quantity (an output or a gradient). */
export interface QuantityResult {
  /** `outputs.<key>`, `grads.<key>` or another field path of the file. */
  quantity: string;
  /** Largest |ours − reference| (NaN when the sizes differ). */
  maxAbs: number;
  /** Largest |ours − reference| / |reference| over the nonzero reference entries. */
  maxRel: number;
  /** Every element within `atol + rtol·|reference|`. */
  ok: boolean;
  /** Absolute tolerance used. */
  atol: number;
  /** Relative tolerance used. */
  rtol: number;
  /** Why it failed, when it is not a tolerance matter (e.g. a size mismatch). */
  note?: string;
}

/** The replay of one file. */
export interface VectorResult {
  /** The file's `name`. */
  name: string;
  /** One entry per quantity. */
  results: QuantityResult[];
}

/** An additional replayer (e.g. for the layer vectors), tried before the built-in families. */
export interface ExtraReplayer {
  /** Whether this replayer handles `v`. */
  match(v: unknown): boolean;
  /** Replays `v`. */
  replay(v: unknown, options: ReplayOptions): QuantityResult[] | Promise<QuantityResult[]>;
}

/** A file or field the replayer cannot interpret. */
export class VectorFormatError extends Error {
  /** Builds the error for `file` and `field`. */
  constructor(readonly file: string, readonly field: string, detail: string) {
    super(`${file}: cannot interpret${field ? ` ${field}` : ""}: ${detail}`);
    this.name = "VectorFormatError";
  }
}

/** The suggested tolerances of the vectors' README. */
export const TOLERANCES: Readonly<Record<FloatDType, { atol: number; rtol: number }>> = Object.freeze({
  f64: { atol: 1e-9, rtol: 1e-9 },
  f32: { atol: 1e-5, rtol: 1e-4 },
});

/** Whether every quantity of `r` passed. */
export function passed(r: VectorResult): boolean {
  return r.results.length > 0 && r.results.every((q) => q.ok);
}

// ---------------------------------------------------------------------------------------------------

type Obj = Record<string, any>;
type Tol = { atol: number; rtol: number };

const TOP_LEVEL = new Set([
  "name",
  "estimator",
  "source",
  "params",
  "inputs",
  "random_draws",
  "outputs",
  "grads",
  "intermediates_numpy",
  "numpy_crosscheck",
  "meta",
  "precision_note",
  "transformers_phimoe_sparsemixer",
]);

function flat(file: string, field: string, x: unknown): number[] {
  if (Array.isArray(x)) return x.flatMap((e) => flat(file, field, e));
  if (typeof x === "number") return [x];
  if (typeof x === "boolean") return [x ? 1 : 0];
  throw new VectorFormatError(file, field, `expected numbers, got ${JSON.stringify(x)}`);
}

async function hostValues(x: Tensor | number): Promise<number[]> {
  return typeof x === "number" ? [x] : Array.from(await x.data(), Number);
}

function compare(quantity: string, actual: number[], expected: number[], tol: Tol): QuantityResult {
  const base = { quantity, atol: tol.atol, rtol: tol.rtol };
  if (actual.length !== expected.length) {
    return {
      ...base,
      maxAbs: NaN,
      maxRel: NaN,
      ok: false,
      note: `${actual.length} values, the file has ${expected.length}`,
    };
  }
  let maxAbs = 0;
  let maxRel = 0;
  let ok = true;
  actual.forEach((a, i) => {
    const b = expected[i];
    const err = Math.abs(a - b);
    if (!(err <= tol.atol + tol.rtol * Math.abs(b))) ok = false; // NaN fails too
    maxAbs = Math.max(maxAbs, Number.isNaN(err) ? Infinity : err);
    if (b !== 0) maxRel = Math.max(maxRel, Number.isNaN(err) ? Infinity : err / Math.abs(b));
  });
  return { ...base, maxAbs, maxRel, ok };
}

/** A parsed vector file with the helpers its family replayer needs. */
class Ctx {
  readonly name: string;
  readonly v: Obj;
  readonly o: ReplayOptions;
  readonly draws: LoggedDraw[];
  /** The registry name of the estimator whose descriptor claims this file. */
  readonly estimator: string;
  tol: Tol;
  constructor(v: Obj, o: ReplayOptions, estimator: string) {
    this.v = v;
    this.o = o;
    this.estimator = estimator;
    this.name = v.name;
    this.tol = TOLERANCES[o.dtype];
    this.draws = v.random_draws as LoggedDraw[];
  }
  /** Checks the keys of section `section` (e.g. "params") against `known`. */
  keys(section: string, known: readonly string[]): void {
    const obj = this.v[section];
    if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
      throw new VectorFormatError(this.name, section, "expected an object");
    }
    for (const k of Object.keys(obj)) {
      if (!known.includes(k)) {
        throw new VectorFormatError(this.name, `${section}.${k}`, `unknown field (known: ${known.join(", ")})`);
      }
    }
  }
  param(key: string): any {
    if (!(key in this.v.params)) throw new VectorFormatError(this.name, `params.${key}`, "missing");
    return this.v.params[key];
  }
  input(key: string): Tensor {
    const x = this.v.inputs[key];
    if (x === undefined) throw new VectorFormatError(this.name, `inputs.${key}`, "missing");
    flat(this.name, `inputs.${key}`, x);
    return tensor(x, { dtype: this.o.dtype, device: this.o.device });
  }
  replay(): ReplayDraws {
    return new ReplayDraws(this.draws);
  }
  async check(quantity: string, actual: Tensor | number, expected: unknown): Promise<QuantityResult> {
    return compare(quantity, await hostValues(actual), flat(this.name, quantity, expected), this.tol);
  }
  consumed(draws: ReplayDraws): QuantityResult {
    const n = this.draws.length;
    return {
      quantity: "random_draws (all consumed)",
      maxAbs: n - draws.consumed,
      maxRel: 0,
      ok: draws.consumed === n,
      atol: 0,
      rtol: 0,
      ...(draws.consumed === n ? {} : { note: `${draws.consumed} of ${n} logged draws consumed` }),
    };
  }
}

/**
 * Outputs and gradients of one family: `outputs` computes every known output from one forward pass (and its
 * draw-consumption check), `grads` maps each known gradient key to a closure computing it on a fresh pass.
 */
interface Family {
  params: readonly string[];
  inputs: readonly string[];
  outputs(c: Ctx): Promise<{ values: Record<string, Tensor | number>; checks: QuantityResult[] }>;
  grads: Record<string, (c: Ctx) => Tensor | Promise<Tensor>>;
  /** Optional extra checks (e.g. a second implementation recorded in the file). */
  extra?(c: Ctx): Promise<QuantityResult[]>;
}

/**
 * The repo routers' balance loss (ESTIMATORS.md §2.3): E·Σ f_i·P̄_i with f = counts / (Σ counts + 1e-6)
 * computed in float32 as the reference does (quirk 1); gradient only through P̄.
 */
async function repoBalanceLoss(probs: Tensor, experts: Tensor, numExperts: number): Promise<Tensor> {
  const counts = new Array(numExperts).fill(0);
  for (const d of await hostValues(experts)) counts[d]++;
  const denom = Math.fround(counts.reduce((s, c) => s + c, 0) + 1e-6);
  const f = noGrad(() =>
    tensor(counts.map((c) => Math.fround(c / denom)), { dtype: probs.dtype, device: probs.device })
  );
  return probs.mean(0).mul(f).sum().mul(numExperts);
}

// ---- SwitchGate ----

function switchRoute(c: Ctx, z: Tensor, draws: ReplayDraws): Routing {
  return createEstimator(c.estimator, { jitterEps: c.param("jitter_eps") }).route(z, {
    training: c.param("training"),
    draws,
  });
}

const SWITCH_GATE: Family = {
  params: ["num_experts", "jitter_eps", "training"],
  inputs: ["logits", "upstream_grad_multiplier"],
  async outputs(c) {
    const draws = c.replay();
    const r = switchRoute(c, c.input("logits"), draws);
    const values = {
      selected_experts: r.experts,
      multiplier: r.gates,
      balance_loss: await repoBalanceLoss(r.probs, r.experts, c.param("num_experts")),
    };
    return { values, checks: [c.consumed(draws)] };
  },
  grads: {
    logits_from_multiplier(c) {
      const z = c.input("logits").requiresGrad_();
      const r = switchRoute(c, z, c.replay());
      return gradients(r.gates.mul(c.input("upstream_grad_multiplier")).sum(), [z])[0];
    },
    async logits_from_balance_loss(c) {
      const z = c.input("logits").requiresGrad_();
      const r = switchRoute(c, z, c.replay());
      return gradients(await repoBalanceLoss(r.probs, r.experts, c.param("num_experts")), [z])[0];
    },
  },
};

// ---- SparseMixer v1 / -1st / -inf (multiplier = gates ⊗ ω) ----

function v1Family(): Family {
  const run = (c: Ctx, draws: ReplayDraws) => {
    const z = c.input("logits").requiresGrad_();
    const omega = c.input("omega").requiresGrad_();
    const r = createEstimator(c.estimator, { jitterEps: c.param("jitter_eps") }).route(z, {
      training: c.param("training"),
      draws,
    });
    return { z, omega, r, mult: r.gates.mul(omega) };
  };
  const fromMultiplier = (c: Ctx) => {
    const { z, omega, mult } = run(c, c.replay());
    return gradients(mult.mul(c.input("upstream_grad_multiplier")).sum(), [z, omega]);
  };
  return {
    params: ["num_experts", "embed_dim", "jitter_eps", "training"],
    inputs: ["logits", "omega", "upstream_grad_multiplier"],
    async outputs(c) {
      const draws = c.replay();
      const { r, mult } = run(c, draws);
      const values = {
        selected_experts: r.experts,
        multiplier: mult,
        balance_loss: await repoBalanceLoss(r.probs, r.experts, c.param("num_experts")),
      };
      return { values, checks: [c.consumed(draws)] };
    },
    grads: {
      logits_from_multiplier: (c) => fromMultiplier(c)[0],
      omega_from_multiplier: (c) => fromMultiplier(c)[1],
      async logits_from_balance_loss(c) {
        const { z, r } = run(c, c.replay());
        return gradients(await repoBalanceLoss(r.probs, r.experts, c.param("num_experts")), [z])[0];
      },
    },
  };
}

// ---- SparseMixer-v2 (released) ----

function v2Route(c: Ctx, z: Tensor, draws: ReplayDraws): Routing {
  const topK = c.param("top_k");
  return createEstimator(c.estimator, { topK, jitterEps: c.param("jitter_eps") }).route(z, {
    training: c.param("training"),
    draws,
  });
}

const V2: Family = {
  params: ["num_experts", "top_k", "jitter_eps", "training"],
  inputs: ["logits", "upstream_grad_multiplier"],
  outputs(c) {
    const draws = c.replay();
    const r = v2Route(c, c.input("logits"), draws);
    const values = { selected_experts: r.experts, multiplier: r.gates, original_gates_softmax: r.probs };
    return Promise.resolve({ values, checks: [c.consumed(draws)] });
  },
  grads: {
    logits(c) {
      const z = c.input("logits").requiresGrad_();
      const r = v2Route(c, z, c.replay());
      return gradients(r.gates.mul(c.input("upstream_grad_multiplier")).sum(), [z])[0];
    },
  },
  async extra(c) {
    // The transformers PhiMoE sparsemixer run with the same draws, when the file records it.
    const hf = c.v.transformers_phimoe_sparsemixer;
    if (hf === undefined) return [];
    const known = [
      "selected_experts",
      "multiplier",
      "grad_logits",
      "random_draws_consumed",
      "identical_to_sparsemixer_repo",
    ];
    for (const k of Object.keys(hf)) {
      if (!known.includes(k)) {
        throw new VectorFormatError(c.name, `transformers_phimoe_sparsemixer.${k}`, "unknown field");
      }
    }
    const r = v2Route(c, c.input("logits"), c.replay());
    const p = "transformers_phimoe_sparsemixer";
    const out = [
      await c.check(`${p}.selected_experts`, r.experts, hf.selected_experts),
      await c.check(`${p}.multiplier`, r.gates, hf.multiplier),
    ];
    if (hf.grad_logits !== undefined) {
      out.push(await c.check(`${p}.grad_logits`, await V2.grads.logits(c), hf.grad_logits));
    }
    return out;
  },
};

// ---- ReinMax / straight-through (multinomial sample; logged result index) ----

function denseFamily(): Family {
  const run = (c: Ctx, draws: ReplayDraws) => {
    const z = c.input("logits").requiresGrad_();
    const r = createEstimator(c.estimator, { tau: c.param("tau") }).route(z, { training: true, draws });
    return { z, r };
  };
  return {
    params: ["tau"],
    inputs: ["logits", "upstream_grad_one_hot", "upstream_grad_y_soft"],
    async outputs(c) {
      const draws = c.replay();
      const { r } = run(c, draws);
      const checks: QuantityResult[] = [];
      // The logged multinomial result index (not a draw the estimator requests) must equal our sample.
      const idx = draws.draw("uniform", [r.gates.shape[0], 1], MULTINOMIAL_INDEX_CALL, {
        dtype: c.o.dtype,
        device: r.gates.device,
      });
      checks.push(
        compare(
          `random_draws[${draws.consumed - 1}] (${MULTINOMIAL_INDEX_CALL})`,
          await hostValues(r.gates.argmax(-1)),
          await hostValues(idx),
          { atol: 0, rtol: 0 },
        ),
      );
      checks.push(c.consumed(draws));
      return { values: { one_hot_sample: r.gates, y_soft: r.extra!.ySoft }, checks };
    },
    grads: {
      logits(c) {
        const { z, r } = run(c, c.replay());
        const loss = r.gates.mul(c.input("upstream_grad_one_hot")).sum()
          .add(r.extra!.ySoft.mul(c.input("upstream_grad_y_soft")).sum());
        return gradients(loss, [z])[0];
      },
    },
  };
}

// ---- ST-Gumbel-Softmax ----

function gumbelRun(c: Ctx, draws: ReplayDraws) {
  const z = c.input("logits").requiresGrad_();
  const r = createEstimator(c.estimator, { tau: c.param("tau") }).route(z, { training: true, draws });
  return { z, r };
}

const GUMBEL: Family = {
  params: ["tau"],
  inputs: ["logits", "upstream_grad_one_hot"],
  outputs(c) {
    const draws = c.replay();
    const { r } = gumbelRun(c, draws);
    return Promise.resolve({
      values: { one_hot_sample: r.gates, y_soft: r.extra!.ySoft },
      checks: [c.consumed(draws)],
    });
  },
  grads: {
    logits(c) {
      const { z, r } = gumbelRun(c, c.replay());
      return gradients(r.gates.mul(c.input("upstream_grad_one_hot")).sum(), [z])[0];
    },
  },
};

// ---- Formula file: top-k softmax routing, balance losses, z-loss ----

function topk(c: Ctx, z: Tensor, renormalize: boolean): Routing {
  const est = createEstimator(c.estimator, { topK: c.param("top_k"), renormalize });
  return est.route(z, { training: true, draws: c.replay() });
}

function switchLb(c: Ctx, z: Tensor): Tensor {
  const p = z.softmax(-1);
  return switchBalanceLoss(p, p.argmax(-1), c.param("num_experts"));
}

function topkLb(c: Ctx, z: Tensor): Tensor {
  const r = topk(c, z, true);
  return topkBalanceLoss(r.probs, r.experts, c.param("num_experts"));
}

function formulaGrad(c: Ctx, loss: (z: Tensor) => Tensor): Tensor {
  const z = c.input("logits").requiresGrad_();
  return gradients(loss(z), [z])[0];
}

const FORMULA: Family = {
  params: ["num_experts", "top_k"],
  inputs: ["logits", "upstream_grad_weights"],
  outputs(c) {
    const z = c.input("logits");
    const ren = topk(c, z, true);
    const values = {
      topk_indices: ren.experts,
      topk_weights_renormalized: ren.gates,
      topk_weights_raw: topk(c, z, false).gates,
      switch_load_balance_loss_top1: switchLb(c, z),
      topk_load_balance_loss: topkLb(c, z),
      router_z_loss: routerZLoss(z),
    };
    const none = c.replay();
    return Promise.resolve({ values, checks: [c.consumed(none)] });
  },
  grads: {
    logits_from_renormalized_weights: (c) =>
      formulaGrad(c, (z) => topk(c, z, true).gates.mul(c.input("upstream_grad_weights")).sum()),
    logits_from_raw_weights: (c) =>
      formulaGrad(c, (z) => topk(c, z, false).gates.mul(c.input("upstream_grad_weights")).sum()),
    logits_from_switch_lb_loss: (c) => formulaGrad(c, (z) => switchLb(c, z)),
    logits_from_topk_lb_loss: (c) => formulaGrad(c, (z) => topkLb(c, z)),
    logits_from_z_loss: (c) => formulaGrad(c, routerZLoss),
  },
};

/** The replay of each vector file format (`VectorFile.format` of the descriptors). */
const FORMATS: Readonly<Record<VectorFileFormat, Family>> = {
  "switch-gate": SWITCH_GATE,
  "masked-top1-omega": v1Family(),
  "v2-routing": V2,
  "multinomial-dense": denseFamily(),
  "gumbel-dense": GUMBEL,
  "topk-formula": FORMULA,
};

/** The vector file that a registered estimator's descriptor claims for `description`, with its estimator. */
function claimOf(description: string): { name: string; file: VectorFile } | undefined {
  for (const d of estimatorDescriptors()) {
    const file = d.vectorFiles?.find((f) => f.pattern.test(description));
    if (file) return { name: d.name, file };
  }
  return undefined;
}

/**
 * Whether `v` is a `layer_*` case, read from its content, never its name: it names a router object
 * (`params.router_object`) or carries a router weight (`inputs.router_weight_dxE`).
 */
export function isLayerCase(v: unknown): boolean {
  if (v === null || typeof v !== "object") return false;
  const o = v as { params?: { router_object?: unknown }; inputs?: { router_weight_dxE?: unknown } };
  return (typeof o.params === "object" && o.params !== null && o.params.router_object !== undefined) ||
    (typeof o.inputs === "object" && o.inputs !== null && o.inputs.router_weight_dxE !== undefined);
}

/**
 * Replays the vector file `v` (parsed JSON) in `options.dtype` on `options.device`. `extra` replayers are
 * tried first (e.g. the layer replayer). Throws a {@link VectorFormatError} naming the file and field for
 * anything it cannot interpret; tolerance failures are reported in the results, not thrown.
 */
export async function replayVector(
  v: unknown,
  options: ReplayOptions,
  extra: readonly ExtraReplayer[] = [],
): Promise<VectorResult> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new VectorFormatError("<vector>", "the file", "expected a JSON object");
  }
  const o = v as Obj;
  if (typeof o.name !== "string") throw new VectorFormatError("<vector>", "name", "missing or not a string");
  const name = o.name;
  if (!(options.dtype in TOLERANCES)) {
    throw new VectorFormatError(name, "options.dtype", `must be f64 or f32, got ${JSON.stringify(options.dtype)}`);
  }
  for (const r of extra) {
    if (r.match(v)) return { name, results: await r.replay(v, options) };
  }
  if (isLayerCase(o)) throw new VectorFormatError(name, "", "no replayer for layer vectors");
  for (const k of Object.keys(o)) {
    if (!TOP_LEVEL.has(k)) throw new VectorFormatError(name, k, "unknown top-level field");
  }
  if (typeof o.estimator !== "string") throw new VectorFormatError(name, "estimator", "missing or not a string");
  const hit = claimOf(o.estimator);
  if (!hit) throw new VectorFormatError(name, "estimator", `unknown estimator ${JSON.stringify(o.estimator)}`);
  const fam = FORMATS[hit.file.format];
  if (!Array.isArray(o.random_draws)) throw new VectorFormatError(name, "random_draws", "expected an array");
  o.random_draws.forEach((d: any, i: number) => {
    if (!d || typeof d.call !== "string" || !Array.isArray(d.shape) || d.values === undefined) {
      throw new VectorFormatError(name, `random_draws[${i}]`, "expected {call, shape, values}");
    }
  });

  const c = new Ctx(o, options, hit.name);
  c.keys("params", fam.params);
  c.keys("inputs", fam.inputs);
  c.keys("grads", Object.keys(fam.grads));
  const tol = hit.file.tol;
  if (tol) c.tol = { atol: Math.max(c.tol.atol, tol.atol), rtol: Math.max(c.tol.rtol, tol.rtol) };

  const results: QuantityResult[] = [];
  const { values, checks } = await fam.outputs(c);
  c.keys("outputs", Object.keys(values));
  for (const [k, expected] of Object.entries(o.outputs as Obj)) {
    results.push(await c.check(`outputs.${k}`, values[k], expected));
  }
  for (const [k, expected] of Object.entries(o.grads as Obj)) {
    results.push(await c.check(`grads.${k}`, await fam.grads[k](c), expected));
  }
  results.push(...checks);
  if (fam.extra) results.push(...await fam.extra(c));
  return { name, results };
}
