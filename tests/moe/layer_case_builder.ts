/**
 * Builds `layer_*` vector cases (vectors/README.md format) from the per-estimator reference vectors, so the
 * layer replay can be checked on routers no layer file covers (SparseMixer-v2 top-2 over 16 experts, v2
 * top-1, SparseMixer-1st, Switch eval, ST-Gumbel, the top-k formula …) without running PyTorch.
 *
 * Construction (plain host loops; nothing from moegrad's estimators or layer): d = E, `W_router = I`, so
 * `x = z` reproduces the vector's logits exactly; linear experts `W_e` from a seeded host generator. The
 * upstream gradient `U_t` of each token is the least-norm solution of `h_tk · U_t = G_tk` for every slot k
 * (`h_tk = x_t W_{sel_tk}`, `G` the vector's upstream gradient on the multiplier), so the gradient the router
 * receives is the vector's own `∂L/∂z`. Then, with `m_tk` the vector's multiplier:
 * `y_t = Σ_k m_tk h_tk`, `∂L/∂x_t = Σ_k m_tk U_t W_{sel_tk}ᵀ + ∂L/∂z_t`, `∂L/∂W_router = xᵀ ∂L/∂z`,
 * `∂L/∂W_e = Σ_{(t,k): sel_tk = e} m_tk x_tᵀ U_t`.
 */
import { rngSigned } from "../helpers/host_rng.ts";

type Row = number[];
type Json = Record<string, any>;

/** How to read one per-estimator vector as a router inside a layer. */
export interface CaseSpec {
  /** The new case's `name`. */
  name: string;
  /** The per-estimator vector (parsed JSON). */
  vector: Json;
  /** `params.router_object` of the new case. */
  routerObject: string;
  /** `params.top_k`. */
  topK: number;
  /** Extra params (`jitter_eps`, `tau`, `renormalize`), copied as given. */
  params?: Json;
  /** Logits [N][E] (default `inputs.logits`). */
  logits?: Row[];
  /** Selected experts [N][K]. */
  selected: Row[];
  /** Scalar multiplier per slot [N][K]. */
  multiplier: Row[];
  /** Upstream gradient on each slot's multiplier [N][K]. */
  upstream: Row[];
  /** The vector's ∂L/∂z [N][E] for that upstream gradient. */
  gradLogits: Row[];
  /** The multiplier is SparseMixer v1's `gate ⊗ ω` (ω = ones(d)): written as [N][d]. */
  omega?: boolean;
  /** The logged draws (default `random_draws`). */
  draws?: unknown[];
  /** Training flag (default `params.training`, else true). */
  training?: boolean;
  /** Expert-weight seed. */
  seed?: number;
}

const dot = (a: Row, b: Row) => a.reduce((s, x, i) => s + x * b[i], 0);

/** `row · M` for M [d][d]. */
const vecMat = (row: Row, m: Row[]) => m[0].map((_, j) => row.reduce((s, x, i) => s + x * m[i][j], 0));

/** `row · Mᵀ`. */
const vecMatT = (row: Row, m: Row[]) => m.map((r) => dot(row, r));

/** Solves `A u = b` (A square) by Gaussian elimination with partial pivoting. */
function solve(a: Row[], b: Row): Row {
  const n = b.length;
  const m = a.map((r, i) => [...r, b[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    [m[c], m[p]] = [m[p], m[c]];
    if (m[c][c] === 0) throw new Error("singular system");
    for (let r = c + 1; r < n; r++) {
      const f = m[r][c] / m[c][c];
      for (let j = c; j <= n; j++) m[r][j] -= f * m[c][j];
    }
  }
  const u = new Array(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r][n];
    for (let j = r + 1; j < n; j++) s -= m[r][j] * u[j];
    u[r] = s / m[r][r];
  }
  return u;
}

/** Least-norm `U` with `H U = g` (H [K][d], K ≤ d): `U = Hᵀ (H Hᵀ)⁻¹ g`. */
function leastNorm(h: Row[], g: Row): Row {
  const c = solve(h.map((a) => h.map((b) => dot(a, b))), g);
  return h[0].map((_, j) => h.reduce((s, row, k) => s + c[k] * row[j], 0));
}

/** The layer case (vectors/README.md format) that `spec` describes. */
export function buildLayerCase(spec: CaseSpec): Json {
  const v = spec.vector;
  const z: Row[] = spec.logits ?? v.inputs.logits;
  const n = z.length, e = z[0].length, d = e;
  const next = rngSigned(spec.seed ?? 1234);
  const w: Row[][] = Array.from({ length: e }, () => Array.from({ length: d }, () => Array.from({ length: d }, next)));
  const eye: Row[] = Array.from({ length: d }, (_, i) => Array.from({ length: e }, (_, j) => (i === j ? 1 : 0)));
  const x = z.map((r) => [...r]);
  const y: Row[] = [], up: Row[] = [], gx: Row[] = [];
  const gw: Row[][] = Array.from({ length: e }, () => Array.from({ length: d }, () => new Array(d).fill(0)));
  for (let t = 0; t < n; t++) {
    const sel = spec.selected[t], m = spec.multiplier[t];
    const h = sel.map((s) => vecMat(x[t], w[s]));
    const u = leastNorm(h, spec.upstream[t]);
    up.push(u);
    y.push(new Array(d).fill(0).map((_, j) => h.reduce((s, hk, k) => s + m[k] * hk[j], 0)));
    const back = sel.map((s) => vecMatT(u, w[s]));
    gx.push(spec.gradLogits[t].map((g, j) => g + back.reduce((s, b, k) => s + m[k] * b[j], 0)));
    sel.forEach((s, k) => {
      for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) gw[s][i][j] += m[k] * x[t][i] * u[j];
    });
  }
  const gr: Row[] = eye.map((_, i) =>
    new Array(e).fill(0).map((_, j) => z.reduce((s, _r, t) => s + x[t][i] * spec.gradLogits[t][j], 0))
  );
  return {
    name: spec.name,
    estimator: `${spec.routerObject} inside a tiny MoE layer (built from ${v.name} by tests/moe/layer_case_builder.ts)`,
    source: { router: v.source?.path ?? null, layer: "tests/moe/layer_case_builder.ts: x = logits, W_router = I" },
    params: {
      num_experts: e,
      d,
      top_k: spec.topK,
      training: spec.training ?? v.params.training ?? true,
      router_object: spec.routerObject,
      ...spec.params,
    },
    inputs: { x, router_weight_dxE: eye, expert_weights_Exdxd: w, upstream_grad_y: up },
    random_draws: spec.draws ?? v.random_draws,
    outputs: {
      router_logits: z,
      selected_experts: spec.selected,
      multiplier: spec.omega ? spec.multiplier.map((m) => new Array(d).fill(m[0])) : spec.multiplier,
      y,
    },
    grads: { x: gx, router_weight: gr, expert_weights: gw },
  };
}
