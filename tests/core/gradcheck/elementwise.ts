/**
 * Gradcheck rows of the elementwise ops: one input (every unary op on random shapes, erf's branches, saturation,
 * the PyTorch conventions at kinks) and two inputs with broadcasting (scalar operands, pow's edge cases, ties,
 * where and clamp).
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  abs,
  add,
  clamp,
  cos,
  div,
  erf,
  exp,
  gelu,
  Generator,
  log,
  maximum,
  minimum,
  mul,
  neg,
  pow,
  rand,
  relu,
  rsqrt,
  sigmoid,
  sign,
  silu,
  sin,
  sqrt,
  sub,
  tanh,
  type Tensor,
  where,
} from "../../../mod.ts";
import type { OpName } from "../../../core/ops/catalog.ts";
import { awayFrom, broadcastShapesFrom, f64Tensor, gradcheck, randnF64, uniformF64 } from "../../helpers/gradcheck.ts";
import {
  assertClose,
  type Fn,
  type GradcheckFamily,
  type GradcheckRow,
  noTies,
  type Shape,
  someShapes,
  vjp,
} from "./row.ts";

// ---- one input -----------------------------------------------------------------------------------------

/** [op, step name, function, input generator]. */
const UNARY: [OpName, string, Fn, (shape: Shape, seed: number) => Tensor][] = [
  ["neg", "neg", neg, (s, g) => randnF64(s, g)],
  ["abs", "abs (away from 0)", abs, (s, g) => awayFrom(s, g, [0], 0.05)],
  ["exp", "exp", exp, (s, g) => randnF64(s, g)],
  ["log", "log (positive)", log, (s, g) => uniformF64(s, g, 0.2, 3)],
  ["sqrt", "sqrt (positive)", sqrt, (s, g) => uniformF64(s, g, 0.2, 3)],
  ["rsqrt", "rsqrt (positive)", rsqrt, (s, g) => uniformF64(s, g, 0.2, 3)],
  ["tanh", "tanh", tanh, (s, g) => randnF64(s, g, 1.5)],
  ["sigmoid", "sigmoid", sigmoid, (s, g) => randnF64(s, g, 2)],
  ["relu", "relu (away from 0)", relu, (s, g) => awayFrom(s, g, [0], 0.05)],
  ["gelu", "gelu exact", (x) => gelu(x), (s, g) => randnF64(s, g, 2)],
  ["gelu", "gelu tanh", (x) => gelu(x, "tanh"), (s, g) => randnF64(s, g, 2)],
  ["silu", "silu", silu, (s, g) => randnF64(s, g, 2)],
  ["erf", "erf", erf, (s, g) => randnF64(s, g, 1.5)],
  ["sin", "sin", sin, (s, g) => randnF64(s, g, 2)],
  ["cos", "cos", cos, (s, g) => randnF64(s, g, 2)],
  ["sign", "sign (no gradient)", sign, (s, g) => awayFrom(s, g, [0], 0.05)],
  ["mul", "square (x·x, one tensor twice)", (x) => x.square(), (s, g) => randnF64(s, g)],
];

/** Unary ops on a scalar and two random shapes each, plus their numerically delicate regions. */
export const UNARY_ROWS: GradcheckFamily = {
  test: "gradcheck: unary elementwise ops",
  rows: [
    ...UNARY.map(([op, name, fn, input], k): GradcheckRow => ({
      ops: [op],
      name,
      run: () => {
        for (const [j, shape] of someShapes(100 + 10 * k).entries()) {
          gradcheck(fn, [input(shape, 1000 + 10 * k + j)], { name: `${name} ${JSON.stringify(shape)}` });
        }
      },
    })),
    {
      ops: ["erf", "gelu"],
      name: "erf and gelu across erf's series / continued-fraction / saturated branches",
      run: () => {
        const x = f64Tensor([-7, -4.5, -3.2, -3.0001, -2.9999, -1, 0, 0.3, 2.9999, 3.0001, 4.5, 5.9, 6.1, 7]);
        gradcheck(erf, [x], { name: "erf" });
        gradcheck((v) => gelu(v), [x.mul(Math.SQRT2)], { name: "gelu exact" });
        gradcheck((v) => gelu(v, "tanh"), [x], { name: "gelu tanh" });
      },
    },
    {
      ops: ["sigmoid", "tanh", "silu"],
      name: "saturating ops far out (sigmoid, tanh, silu) stay finite and correct",
      run: () => {
        const x = f64Tensor([-30, -12, -5, 5, 12, 30]);
        for (const [name, fn] of [["sigmoid", sigmoid], ["tanh", tanh], ["silu", silu]] as const) {
          gradcheck(fn, [x], { name });
        }
      },
    },
    {
      ops: ["abs", "relu"],
      name: "abs and relu at exactly 0 give gradient 0 (PyTorch convention)",
      run: () => {
        const x = f64Tensor([-1, 0, 2]);
        assert.deepEqual([...vjp(abs, [x])[0]], [-1, 0, 1]);
        assert.deepEqual([...vjp(relu, [x])[0]], [0, 0, 1]);
      },
    },
  ],
};

// ---- two inputs with broadcasting ----------------------------------------------------------------------

/** [op, step name, function, generator of a, generator of b]. */
const BINARY: [OpName, string, Fn, (shape: Shape, seed: number) => Tensor, (shape: Shape, seed: number) => Tensor][] = [
  ["add", "add", add, (s, g) => randnF64(s, g), (s, g) => randnF64(s, g)],
  ["sub", "sub", sub, (s, g) => randnF64(s, g), (s, g) => randnF64(s, g)],
  ["mul", "mul", mul, (s, g) => randnF64(s, g), (s, g) => randnF64(s, g)],
  ["div", "div", div, (s, g) => randnF64(s, g), (s, g) => awayFrom(s, g, [0], 0.3)],
  ["pow", "pow tensor^tensor", pow, (s, g) => uniformF64(s, g, 0.3, 2), (s, g) => randnF64(s, g)],
  ["maximum", "maximum (no ties)", maximum, (s, g) => randnF64(s, g), (s, g) => randnF64(s, g)],
  ["minimum", "minimum (no ties)", minimum, (s, g) => randnF64(s, g), (s, g) => randnF64(s, g)],
];

/** Binary ops on fixed and random broadcasting shape pairs, number operands, and their conventions. */
export const BINARY_ROWS: GradcheckFamily = {
  test: "gradcheck: binary elementwise ops with broadcasting",
  rows: [
    ...BINARY.map(([op, name, fn, inA, inB], k): GradcheckRow => ({
      ops: [op],
      name,
      run: () => {
        const pairs: Shape[][] = [[[2, 3], [2, 3]], [[2, 3], [3]], [[4, 1], [1, 3]], [[], [2, 2]], [[2, 1, 3], [4, 1]]];
        for (let j = 0; j < 4; j++) pairs.push(broadcastShapesFrom(200 + 10 * k + j, 2));
        for (const [j, [sa, sb]] of pairs.entries()) {
          const a = inA(sa, 2000 + 20 * k + j);
          let b = inB(sb, 3000 + 20 * k + j);
          if (name.startsWith("max") || name.startsWith("min")) b = noTies(a, b);
          gradcheck(fn, [a, b], { name: `${name} ${JSON.stringify(sa)} ⊕ ${JSON.stringify(sb)}` });
        }
      },
    })),
    {
      ops: ["add", "sub", "mul", "div", "maximum", "minimum"],
      name: "scalar (number) operands on either side",
      run: () => {
        const x = randnF64([3, 4], 11);
        const xNz = awayFrom([3, 4], 13, [0, 0.3], 0.1);
        const cases: [string, Fn, Tensor][] = [
          ["add(x, 2.5)", (v) => add(v, 2.5), x],
          ["add(2.5, x)", (v) => add(2.5, v), x],
          ["sub(x, 1)", (v) => sub(v, 1), x],
          ["sub(1, x)", (v) => sub(1, v), x],
          ["mul(x, -1.5)", (v) => mul(v, -1.5), x],
          ["mul(-1.5, x)", (v) => mul(-1.5, v), x],
          ["div(x, 2)", (v) => div(v, 2), x],
          ["div(3, x)", (v) => div(3, v), xNz],
          ["maximum(x, 0.3)", (v) => maximum(v, 0.3), xNz],
          ["minimum(0.3, x)", (v) => minimum(0.3, v), xNz],
        ];
        for (const [name, fn, input] of cases) gradcheck(fn, [input], { name });
      },
    },
    {
      ops: ["pow"],
      name: "pow tensor^number and number^tensor",
      run: () => {
        const x = randnF64([2, 3, 2], 21);
        const xPos = uniformF64([2, 3, 2], 22, 0.3, 2.5);
        gradcheck((v) => pow(v, 2), [x], { name: "x^2" });
        gradcheck((v) => pow(v, 3), [x], { name: "x^3" });
        gradcheck((v) => pow(v, 0), [x], { name: "x^0" });
        gradcheck((v) => pow(v, 0.5), [xPos], { name: "x^0.5" });
        gradcheck((v) => pow(v, -1.5), [xPos], { name: "x^-1.5" });
        gradcheck((v) => v.pow(2.7), [xPos], { name: "x.pow(2.7)" });
        gradcheck((v) => pow(2.5, v), [x], { name: "2.5^x" });
        gradcheck((v) => pow(0.4, v), [x], { name: "0.4^x" });
      },
    },
    {
      ops: ["pow"],
      name: "pow: d/db of 0^b is 0 for b ≥ 0 (PyTorch convention), finite",
      run: () => {
        const a = f64Tensor([0, 0, 2]), b = f64Tensor([2, 0.5, 1.5]);
        const [, gb] = vjp(pow, [a, b]);
        assertClose(gb, [0, 0, Math.pow(2, 1.5) * Math.log(2)]);
      },
    },
    {
      ops: ["pow"],
      name: "pow: d/da of a^0 is 0, also at a = 0 (PyTorch), and 0^1 has slope 1",
      run: () => {
        const [ga] = vjp((v) => pow(v, 0), [f64Tensor([0, 1.5, -2])]);
        assert.deepEqual([...ga].map((v) => v + 0), [0, 0, 0]);
        const [ga2, gb2] = vjp(pow, [f64Tensor([0, 0, 3]), f64Tensor([0, 1, 0])]);
        assert.deepEqual([...ga2].map((v) => v + 0), [0, 1, 0]);
        assertClose(gb2, [0, 0, Math.log(3)]);
      },
    },
    {
      ops: ["maximum", "minimum"],
      name: "maximum / minimum ties split the gradient 0.5 / 0.5 (PyTorch)",
      run: () => {
        const a = f64Tensor([1, 2, 3, -1]), b = f64Tensor([1, 5, 3, -2]);
        const [ga, gb] = vjp(maximum, [a, b]);
        assert.deepEqual([...ga], [0.5, 0, 0.5, 1]);
        assert.deepEqual([...gb], [0.5, 1, 0.5, 0]);
        const [ha, hb] = vjp(minimum, [a, b]);
        assert.deepEqual([...ha], [0.5, 1, 0.5, 0]);
        assert.deepEqual([...hb], [0.5, 0, 0.5, 1]);
        // Broadcast ties: b [3] against a [2, 3]; b's gradient sums the halves over the broadcast axis.
        const a2 = f64Tensor([[1, 2, 3], [1, 0, 4]]), b2 = f64Tensor([1, 2, 0]);
        const [ga2, gb2] = vjp(maximum, [a2, b2]);
        assert.deepEqual([...ga2], [0.5, 0.5, 1, 0.5, 0, 1]);
        assert.deepEqual([...gb2], [1, 1.5, 0]);
        // max(x, x) = x: the two halves add back up to 1.
        const x = randnF64([5], 31);
        assert.deepEqual([...vjp((v) => maximum(v, v), [x])[0]], [1, 1, 1, 1, 1]);
        assert.deepEqual([...vjp((v) => minimum(v, v), [x])[0]], [1, 1, 1, 1, 1]);
      },
    },
    {
      ops: ["where"],
      name: "where: both branches, broadcast cond and branches",
      run: () => {
        const triples: Shape[][] = [[[2, 3], [2, 3], [2, 3]], [[3], [2, 1], [1]], [[2, 1, 3], [], [4, 1]]];
        for (let j = 0; j < 5; j++) triples.push(broadcastShapesFrom(400 + j, 3));
        for (const [j, [sc, sa, sb]] of triples.entries()) {
          const cond = rand(sc, { dtype: "f64", generator: new Generator(410 + j) }).gt(0.5);
          const a = randnF64(sa, 420 + j), b = randnF64(sb, 430 + j);
          const name = `where ${JSON.stringify([sc, sa, sb])}`;
          gradcheck((x, y) => where(cond, x, y), [a, b], { name });
          gradcheck((x) => where(cond, x, 0), [a], { name: `${name}, b = 0` });
          gradcheck((y) => where(cond, 2, y), [b], { name: `${name}, a = 2` });
          gradcheck((x, y) => x.where(cond, y), [a, b], { name: `Tensor.where ${name}` });
        }
      },
    },
    {
      ops: ["clamp"],
      name: "clamp (inputs away from the bounds) and its gradient at the bounds",
      run: () => {
        for (const [j, shape] of someShapes(500).entries()) {
          const x = awayFrom(shape, 510 + j, [-0.5, 0.5], 0.05);
          gradcheck((v) => clamp(v, -0.5, 0.5), [x], { name: "clamp(-0.5, 0.5)" });
          gradcheck((v) => clamp(v, -0.5), [x], { name: "clamp(min)" });
          gradcheck((v) => clamp(v, undefined, 0.5), [x], { name: "clamp(max)" });
          gradcheck((v) => v.clamp(-0.5, 0.5), [x], { name: "Tensor.clamp" });
        }
        // PyTorch: the gradient passes where min ≤ x ≤ max (bounds included).
        assert.deepEqual([...vjp((v) => clamp(v, -0.5, 0.5), [f64Tensor([-0.5, 0.5, 0.7, -0.9, 0])])[0]], [
          1,
          1,
          0,
          0,
          1,
        ]);
      },
    },
  ],
};
