/**
 * Gradcheck rows of crossEntropy (reductions, label smoothing, ignored targets), the casts (astype, clone),
 * dropout with a fixed mask, and customGrad (the custom gradient is what arrives, in a chain and with several
 * outputs).
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  astype,
  crossEntropy,
  type CrossEntropyOptions,
  customGrad,
  customGradMulti,
  dropout,
  Generator,
  gradients,
  rand,
  tanh,
  type Tensor,
} from "../../../mod.ts";
import { awayFrom, gradcheck, i32Tensor, randnF64 } from "../../helpers/gradcheck.ts";
import { assertClose, data, type GradcheckFamily, type GradcheckRow, type Shape, vjp } from "./row.ts";

// ---- crossEntropy ----------------------------------------------------------------------------------------

const logits = () => randnF64([5, 4], 1300, 1.5);
const targets = () => i32Tensor([1, -100, 3, 0, 2]);

/** [case, its logits and targets, options]. */
const CROSS_ENTROPY_CASES: [string, () => [Tensor, Tensor], CrossEntropyOptions][] = [
  ["mean, one ignored", () => [logits(), targets()], {}],
  ["sum, one ignored", () => [logits(), targets()], { reduction: "sum" }],
  ["none, one ignored", () => [logits(), targets()], { reduction: "none" }],
  ["label smoothing 0.1, mean", () => [logits(), targets()], { labelSmoothing: 0.1 }],
  ["label smoothing 0.2, sum", () => [logits(), targets()], { labelSmoothing: 0.2, reduction: "sum" }],
  ["label smoothing 0.3, none", () => [logits(), targets()], { labelSmoothing: 0.3, reduction: "none" }],
  ["label smoothing 1", () => [logits(), targets()], { labelSmoothing: 1 }],
  ["ignoreIndex 2", () => [logits(), i32Tensor([2, 0, 2, 1, 3])], { ignoreIndex: 2 }],
  ["no ignored targets", () => [logits(), i32Tensor([0, 1, 2, 3, 3])], {}],
  ["3-D logits [B, T, C]", () => [randnF64([2, 3, 4], 1301), i32Tensor([[0, 3, -100], [2, 2, 1]])], {}],
  ["3-D, label smoothing, none", () => [randnF64([2, 3, 4], 1302), i32Tensor([[0, 3, -100], [2, 2, 1]])], {
    labelSmoothing: 0.1,
    reduction: "none",
  }],
  ["1-D logits, scalar target", () => [randnF64([4], 1303), i32Tensor([2], [])], {}],
];

/** crossEntropy on every reduction and smoothing case; ignored targets get exactly zero gradient. */
export const CROSS_ENTROPY_ROWS: GradcheckFamily = {
  test: "gradcheck: crossEntropy",
  rows: CROSS_ENTROPY_CASES.map(([name, inputs, opts]): GradcheckRow => ({
    ops: ["crossEntropy"],
    name,
    run: () => {
      const [x, tg] = inputs();

      const r = gradcheck((v) => crossEntropy(v, tg, opts), [x], { name: `crossEntropy ${name}` });
      // Ignored targets get exactly zero gradient in their whole row.
      const ignore = opts.ignoreIndex ?? -100, c = x.shape[x.shape.length - 1];
      [...tg.dataSync()].forEach((v, row) => {
        if (v !== ignore) return;
        for (let j = 0; j < c; j++) assert.equal(r.analytic[0][row * c + j], 0, `row ${row} is ignored`);
      });
    },
  })),
};

// ---- casts, dropout, customGrad --------------------------------------------------------------------------

/** astype and clone pass gradients through, dropout's gradient is its mask, customGrad's is the custom one. */
export const CAST_DROPOUT_CUSTOM_ROWS: GradcheckFamily = {
  test: "gradcheck: astype, clone, dropout, customGrad",
  rows: [
    {
      ops: ["astype"],
      name: 'astype("f64") is the identity',
      run: () => {
        const x = randnF64([3, 4], 1400);
        gradcheck((v) => astype(v, "f64"), [x], { name: "astype f64" });
        gradcheck((v) => v.astype("f64").mul(2), [x], { name: "x.astype(f64)·2" });
      },
    },
    {
      ops: ["astype"],
      name: "astype f64 → f32 → f64 passes the gradient back, rounded to f32",
      run: () => {
        const x = randnF64([6], 1401), w = randnF64([6], 1402);
        const [g] = vjp((v) => v.astype("f32").astype("f64"), [x], w);
        assert.deepEqual([...g], [...w.dataSync()].map(Math.fround));
      },
    },
    {
      ops: ["copy"],
      name: "clone (the op copy) passes the gradient through unchanged",
      run: () => {
        const x = randnF64([3, 4], 1405);
        gradcheck((v) => v.clone(), [x], { name: "x.clone()" });
        gradcheck((v) => v.clone().mul(v), [x], { name: "x.clone() · x" });
      },
    },
    {
      ops: ["dropout"],
      name: "dropout with a fixed generator: gradient = mask / (1 − p)",
      run: () => {
        for (const [j, [shape, p]] of ([[[4, 5], 0.3], [[3, 2, 4], 0.5], [[7], 0.9]] as [Shape, number][]).entries()) {
          const x = randnF64(shape, 1410 + j), seed = 1420 + j;
          const r = gradcheck((v) => dropout(v, p, { generator: new Generator(seed) }), [x], {
            name: `dropout p=${p}`,
          });
          const u = rand(shape, { dtype: "f64", generator: new Generator(seed) }).dataSync();
          const expected = r.weights.map((w, i) => (u[i] >= p ? w / (1 - p) : 0));
          assertClose(r.analytic[0], expected, 1e-15, `dropout p=${p} gradient`);
          assert.ok(expected.some((v) => v === 0) && expected.some((v) => v !== 0), "the mask is not trivial");
        }
        const x = randnF64([3, 3], 1430);
        const id = gradcheck((v) => dropout(v, 0.5, { training: false }), [x], { name: "dropout eval" });
        assertClose(id.analytic[0], id.weights, 0, "eval-mode dropout is the identity");
        const p0 = gradcheck((v) => dropout(v, 0), [x], { name: "dropout p=0" });
        assertClose(p0.analytic[0], p0.weights, 0, "p = 0 dropout is the identity");
        const p1 = gradcheck((v) => dropout(v, 1), [x], { name: "dropout p=1" });
        assert.ok(p1.analytic[0].every((v) => v === 0), "p = 1 dropout passes no gradient");
      },
    },
    {
      ops: [],
      name: "customGrad: the custom gradient (not the derivative) is what arrives",
      run: () => {
        // Forward x², backward 3·g: deliberately not the derivative 2x·g.
        const tripled = customGrad((x: Tensor) => ({ value: x.mul(x), grad: (g: Tensor) => [g.mul(3)] }));
        const x = randnF64([2, 3], 1440), w = randnF64([2, 3], 1441);
        const [g] = vjp(tripled, [x], w);
        assertClose(g, [...w.dataSync()].map((v) => 3 * v), 0, "custom gradient");
        // ... the forward value is still x², and gradcheck notices that the gradient is not its derivative.
        assertClose(data(tripled(x)), data(x.mul(x)), 0, "custom forward");
        assert.throws(
          () => gradcheck(tripled, [x], { name: "tripled" }),
          (e: Error) =>
            /gradcheck\[tripled\]: 6 gradient element\(s\) disagree/.test(e.message) && /input 0/.test(e.message),
        );
        // Inside a chain: tanh(custom(2x)) gets tanh' · 3 · 2.
        const [gc] = vjp((v) => tanh(tripled(v.mul(2))), [x], w);
        const y = data(x.mul(2).square().tanh()), wd = w.dataSync();
        assertClose(gc, y.map((t, i) => (1 - t * t) * 3 * 2 * wd[i]), 1e-12, "custom gradient in a chain");
      },
    },
    {
      ops: [],
      name: "customGrad with several inputs and outputs; null gives zeros",
      run: () => {
        const op = customGradMulti((a: Tensor, b: Tensor) => ({
          value: [a.add(b), a.mul(b)],
          grad: ([g1, g2]) => [g1.add(g2), null],
        }));
        const a = randnF64([3], 1450), b = randnF64([3], 1451);
        const la = a.detach().requiresGrad_(), lb = b.detach().requiresGrad_();
        const [o1, o2] = op(la, lb);
        const w1 = randnF64([3], 1452), w2 = randnF64([3], 1453);
        const [ga, gb] = gradients([o1, o2], [la, lb], [w1, w2]).map(data);
        assertClose(ga, data(w1.add(w2)), 0, "first input");
        assert.deepEqual([...gb], [0, 0, 0]);
        // Only one output used: the other gets a zero gradient.
        const [ga2] = gradients(op(la, lb)[1], [la], [w2]).map(data);
        assertClose(ga2, data(w2), 0, "second output only");
      },
    },
    {
      ops: [],
      name: "customGrad whose gradient is the true derivative passes gradcheck",
      run: () => {
        const softplus = customGrad((x: Tensor) => ({
          value: x.exp().add(1).log(),
          grad: (g: Tensor) => [g.mul(x.sigmoid())],
        }));
        gradcheck(softplus, [randnF64([3, 4], 1460, 2)], { name: "softplus (custom)" });
        const ste = customGrad((x: Tensor) => ({ value: x.gt(0).astype("f64"), grad: (g: Tensor) => [g] }));
        const x = awayFrom([5], 1461, [0]), w = randnF64([5], 1462);
        assertClose(vjp(ste, [x], w)[0], data(w), 0, "straight-through estimator");
      },
    },
  ],
};
