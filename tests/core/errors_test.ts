/**
 * Bad input raises an error whose message starts with the op's name and names the shapes or dtypes
 * involved.
 */
import assert from "node:assert/strict";
import {
  add,
  arange,
  argmax,
  concat,
  crossEntropy,
  cumsum,
  div,
  dropout,
  embedding,
  exp,
  expand,
  flatten,
  full,
  gather,
  gelu,
  Generator,
  indexAdd,
  indexSelect,
  logicalAnd,
  logicalNot,
  manualSeed,
  matmul,
  max,
  mean,
  mul,
  narrow,
  oneHot,
  ones,
  OpError,
  permute,
  rand,
  randint,
  reshape,
  scatterAdd,
  slice,
  sliceScatter,
  softmax,
  sort,
  split,
  squeeze,
  stack,
  sum,
  tensor,
  topk,
  transpose,
  unsqueeze,
  where,
  zeros,
} from "../../mod.ts";

const i32 = { dtype: "i32" } as const;
const f64 = { dtype: "f64" } as const;

function caught(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof Error, `threw a non-Error: ${String(e)}`);
    return e;
  }
  assert.fail("expected an error, none was thrown");
}

/** `fn` throws an OpError of `op` whose message starts with "op: " and matches every pattern. */
function throwsOp(fn: () => unknown, op: string, ...patterns: RegExp[]): void {
  const e = caught(fn);
  assert.ok(e instanceof OpError, `expected an OpError, got ${e.name}: ${e.message}`);
  assert.equal(e.op, op, `wrong op in "${e.message}"`);
  assert.ok(e.message.startsWith(`${op}: `), `message "${e.message}" does not start with "${op}: "`);
  for (const p of patterns) assert.match(e.message, p);
}

/** `fn` throws an error of class `type` whose message matches every pattern. */
function throwsType(fn: () => unknown, type: ErrorConstructor, ...patterns: RegExp[]): void {
  const e = caught(fn);
  assert.ok(e instanceof type, `expected ${type.name}, got ${e.name}: ${e.message}`);
  for (const p of patterns) assert.match(e.message, p);
}

const idx = (data: number[] | number[][]) => tensor(data, i32);

Deno.test("mismatched shapes", async (t) => {
  await t.step("add and friends: not broadcastable", () => {
    throwsOp(() => add(zeros([2]), zeros([3])), "add", /^add: shapes \[2\] and \[3\] are not broadcastable$/);
    throwsOp(() => zeros([2, 3]).add(zeros([4, 3])), "add", /\[2, 3\] and \[4, 3\]/);
    throwsOp(() => mul(zeros([2, 1, 3]), zeros([5, 2])), "mul", /\[2, 1, 3\] and \[5, 2\] are not broadcastable/);
    throwsOp(() => zeros([3]).gt(zeros([2])), "gt", /\[3\] and \[2\]/);
    throwsOp(() => zeros([3]).maximum(zeros([4])), "maximum", /\[3\] and \[4\]/);
  });
  await t.step("matmul: inner dimensions and batch dimensions", () => {
    throwsOp(
      () => matmul(zeros([2, 3]), zeros([4, 5])),
      "matmul",
      /^matmul: inner dimensions differ: \[2, 3\] @ \[4, 5\] \(3 vs 4\)$/,
    );
    throwsOp(() => matmul(zeros([3]), zeros([4])), "matmul", /\[3\] @ \[4\]/);
    throwsOp(() => matmul(zeros([2, 1, 2]), zeros([3, 2, 1])), "matmul", /\[2\] and \[3\] are not broadcastable/);
    throwsOp(() => matmul(zeros([]), zeros([2])), "matmul", /at least one dimension/, /\[\] and \[2\]/);
  });
  await t.step("concat and stack", () => {
    throwsOp(
      () => concat([zeros([2, 3]), zeros([3, 2])]),
      "concat",
      /^concat: tensors f32 \[2, 3\], f32 \[3, 2\] do not match outside axis 0$/,
    );
    throwsOp(() => concat([zeros([2, 3]), zeros([2])], 1), "concat", /\[2, 3\], f32 \[2\]/);
    throwsOp(() => concat([zeros([2]), zeros([2], f64)]), "concat", /f32 \[2\], f64 \[2\]/);
    throwsOp(() => concat([]), "concat", /non-empty/);
    throwsOp(() => stack([zeros([2]), zeros([3])]), "stack", /^stack: tensors must share a shape, got \[2\], \[3\]$/);
  });
  await t.step("where", () => {
    throwsOp(
      () => where(tensor([true, false]), zeros([3]), 0),
      "where",
      /^where: shapes \[2\] and \[3\] and \[\] are not broadcastable$/,
    );
    throwsOp(() => where(tensor([true]), zeros([2, 2]), zeros([3])), "where", /\[2, 2\] and \[3\]/);
  });
  await t.step("reshape to an incompatible size", () => {
    throwsOp(
      () => reshape(zeros([2, 3]), [4, -1]),
      "reshape",
      /^reshape: cannot reshape a tensor of shape \[2, 3\] \(6 elements\) to \[4, -1\]$/,
    );
    throwsOp(() => zeros([2, 3]).reshape(7), "reshape", /\[2, 3\]/, /\[7\]/);
    throwsOp(() => zeros([4]).reshape(-1, -1), "reshape", /\[-1, -1\]/);
    throwsOp(() => zeros([4]).reshape(2, -2), "reshape", /\[2, -2\]/);
  });
  await t.step("expand", () => {
    throwsOp(() => expand(zeros([2]), [3]), "expand", /^expand: cannot expand shape \[2\] to \[3\]$/);
    throwsOp(() => zeros([2, 3]).expand(4, 3, 2), "expand", /\[2, 3\]/, /\[4, 3, 2\]/);
    throwsOp(() => expand(zeros([2, 2]), [2]), "expand", /\[2, 2\] to fewer dims \[2\]/);
    throwsOp(() => expand(zeros([2]), [-1, 2]), "expand", /\[-1, 2\]/, /\[2\]/);
    throwsOp(() => expand(zeros([1]), [-3]), "expand", /\[-3\]/);
  });
  await t.step("scatterAdd, indexAdd, sliceScatter", () => {
    throwsOp(
      () => scatterAdd(zeros([2, 3]), 1, zeros([2, 2], i32), zeros([2, 3])),
      "scatterAdd",
      /index \[2, 2\] and src \[2, 3\]/,
      /input \[2, 3\]/,
    );
    throwsOp(() => scatterAdd(zeros([2, 3]), 1, zeros([3, 1], i32), zeros([3, 1])), "scatterAdd", /\[3, 1\]/);
    throwsOp(() => scatterAdd(zeros([2]), 0, zeros([2], i32), zeros([2], f64)), "scatterAdd", /f64/, /f32/);
    throwsOp(
      () => indexAdd(zeros([3, 2]), 0, idx([0, 1]), zeros([3, 2])),
      "indexAdd",
      /^indexAdd: index \[2\] must be 1-D and src \(f32 \[3, 2\]\) must be f32 \[2, 2\]$/,
    );
    throwsOp(() => indexAdd(zeros([3]), 0, zeros([1, 1], i32), zeros([1])), "indexAdd", /\[1, 1\]/);
    throwsOp(
      () => sliceScatter(zeros([5]), zeros([3]), 0, 1, undefined, 2),
      "sliceScatter",
      /^sliceScatter: src is f32 \[3\] but the slice of f32 \[5\] is \[2\]$/,
    );
  });
  await t.step("crossEntropy", () => {
    throwsOp(
      () => crossEntropy(zeros([2, 3]), idx([0, 1, 2])),
      "crossEntropy",
      /^crossEntropy: logits \[2, 3\] must be targets \[3\] plus a class axis$/,
    );
    throwsOp(() => crossEntropy(zeros([2, 3]), zeros([2, 1], i32)), "crossEntropy", /\[2, 3\]/, /\[2, 1\]/);
  });
  await t.step("tensor(): ragged data and shape/data mismatch", () => {
    throwsOp(() => tensor([[1, 2], [3]] as number[][]), "tensor", /ragged/, /\[2, 2\]/);
    throwsOp(() => tensor([1, [2]] as never), "tensor", /ragged/, /\[2\]/);
    throwsOp(() => tensor([[1], 2] as never), "tensor", /ragged/);
    throwsOp(() => tensor(["a"] as never), "tensor", /non-number/);
    throwsOp(
      () => tensor([1, 2, 3], { shape: [2, 2] }),
      "tensor",
      /^tensor: shape \[2, 2\] needs 4 elements, data has 3$/,
    );
    throwsOp(() => tensor([1], { shape: [-1] }), "tensor", /non-negative integers/);
  });
  await t.step("other shape checks", () => {
    throwsOp(() => squeeze(zeros([2, 3]), 1), "squeeze", /^squeeze: axis 1 has size 3, not 1 \(shape \[2, 3\]\)$/);
    throwsOp(() => narrow(zeros([3]), 0, 2, 2), "narrow", /\[2, 4\)/, /\[3\]/);
    throwsOp(() => split(zeros([5]), [2, 2]), "split", /\[2, 2\] do not add up to 5/, /\[5\]/);
    throwsOp(() => split(zeros([5]), 0), "split", /positive integer/);
    throwsOp(() => slice(zeros([5]), 0, 0, 5, 0), "slice", /step/);
    throwsOp(() => slice(zeros([5]), 0, 0, 5, -1), "slice", /step/);
    throwsOp(() => flatten(zeros([2, 3, 4]), 2, 1), "flatten", /\[2, 3, 4\]/);
    throwsOp(() => indexSelect(zeros([3]), 0, zeros([1, 1], i32)), "indexSelect", /1-D/, /\[1, 1\]/);
    throwsOp(() => embedding(zeros([4]), idx([0])), "embedding", /2-D/, /\[4\]/);
    throwsOp(() => gather(zeros([2, 3]), 1, zeros([3, 1], i32)), "gather", /\[3, 1\]/, /\[2, 3\]/);
    throwsOp(() => gather(zeros([2, 3]), 1, zeros([2], i32)), "gather", /\[2\]/, /\[2, 3\]/);
    throwsOp(() => full([2, 1.5], 0), "full", /non-negative integers/);
    throwsOp(() => zeros([-1]), "full", /\[-1\]/);
    throwsOp(() => max(zeros([2, 0]), 1), "max", /size 0/, /\[2, 0\]/);
    throwsOp(() => argmax(zeros([0])), "argmax", /empty/, /\[0\]/);
    throwsOp(() => sort(tensor(1)), "sort", /at least one dimension/);
    throwsOp(() => topk(tensor(1), 1), "topk", /at least one dimension/);
  });
});

Deno.test("wrong dtypes", async (t) => {
  await t.step("mixing f32 and f64", () => {
    throwsOp(
      () => add(zeros([2]), zeros([2], f64)),
      "add",
      /^add: dtypes differ: f32 \[2\] and f64 \[2\]; cast one with astype\(\)$/,
    );
    throwsOp(() => matmul(zeros([2, 2]), zeros([2, 2], f64)), "matmul", /f32 \[2, 2\] and f64 \[2, 2\]/);
    throwsOp(() => where(tensor([true]), zeros([1]), zeros([1], i32)), "where", /f32 \[1\] and i32 \[1\]/);
    throwsOp(() => zeros([2]).eq(zeros([2], i32)), "eq", /dtypes differ/);
  });
  await t.step("float-only ops reject i32 and bool", () => {
    throwsOp(() => exp(zeros([2], i32)), "exp", /^exp: expected a float tensor \(f32 or f64\), got i32 \[2\]$/);
    throwsOp(() => zeros([3], i32).sqrt(), "sqrt", /i32 \[3\]/);
    throwsOp(() => zeros([2], i32).tanh(), "tanh", /i32/);
    throwsOp(() => gelu(tensor([true])), "gelu", /bool \[1\]/);
    throwsOp(() => softmax(zeros([2], i32)), "softmax", /i32 \[2\]/);
    throwsOp(() => mean(zeros([2], i32)), "mean", /i32 \[2\]/);
    throwsOp(() => div(zeros([2], i32), 2), "div", /f32 or f64/, /i32 \[2\]/);
    throwsOp(() => zeros([2], i32).pow(2), "pow", /i32 \[2\]/);
    throwsOp(() => matmul(zeros([2, 2], i32), zeros([2, 2], i32)), "matmul", /i32 \[2, 2\]/);
    throwsOp(() => crossEntropy(zeros([2, 3], i32), idx([0, 1])), "crossEntropy", /i32 \[2, 3\]/);
    throwsOp(() => dropout(zeros([2], i32), 0.5), "dropout", /i32/);
  });
  await t.step("bool arithmetic", () => {
    throwsOp(
      () => add(tensor([true]), tensor([false])),
      "add",
      /^add: input must have dtype f32 or f64 or i32, got bool \[1\]$/,
    );
    throwsOp(() => tensor([true, false]).mul(tensor([true, true])), "mul", /bool \[2\]/);
    throwsOp(() => tensor([true]).neg(), "neg", /bool/);
    throwsOp(() => tensor([true]).max(), "max", /bool/);
    throwsOp(() => topk(tensor([true, false]), 1), "topk", /bool/);
  });
  await t.step("logical ops want bool", () => {
    throwsOp(() => logicalAnd(zeros([2]), tensor([true, false])), "logicalAnd", /bool/, /f32 \[2\]/);
    throwsOp(() => tensor([true]).logicalOr(zeros([1])), "logicalOr", /other must have dtype bool, got f32 \[1\]/);
    throwsOp(() => logicalNot(zeros([2])), "logicalNot", /f32 \[2\]/);
    throwsOp(() => where(zeros([2]), zeros([2]), 0), "where", /^where: cond must have dtype bool, got f32 \[2\]$/);
  });
  await t.step("indices must be i32", () => {
    throwsOp(
      () => gather(zeros([2, 3]), 1, zeros([2, 1])),
      "gather",
      /^gather: index must have dtype i32, got f32 \[2, 1\]$/,
    );
    throwsOp(() => indexSelect(zeros([3]), 0, zeros([1])), "indexSelect", /index must have dtype i32, got f32 \[1\]/);
    throwsOp(() => scatterAdd(zeros([3]), 0, zeros([1]), zeros([1])), "scatterAdd", /f32 \[1\]/);
    throwsOp(() => embedding(zeros([3, 2]), zeros([2], f64)), "embedding", /f64 \[2\]/);
    throwsOp(() => oneHot(zeros([2]), 3), "oneHot", /f32 \[2\]/);
    throwsOp(
      () => crossEntropy(zeros([2, 3]), zeros([2])),
      "crossEntropy",
      /targets must have dtype i32, got f32 \[2\]/,
    );
  });
  await t.step("requiresGrad_ on non-float tensors", () => {
    throwsOp(
      () => zeros([2], i32).requiresGrad_(),
      "requiresGrad_",
      /^requiresGrad_: only float tensors can require gradients, got i32$/,
    );
    throwsOp(() => tensor([true]).requiresGrad_(), "requiresGrad_", /bool/);
    throwsOp(() => zeros([1]).requiresGrad_().mul(2).requiresGrad_(false), "requiresGrad_", /leaf/);
  });
  await t.step("unknown dtypes and bad random dtypes", () => {
    throwsType(() => tensor([1], { dtype: "f16" as never }), TypeError, /^tensor: unknown dtype "f16"/);
    throwsType(() => zeros([1]).astype("int8" as never), TypeError, /^astype: unknown dtype "int8"/);
    throwsOp(() => rand([2], i32), "rand", /i32/);
  });
});

Deno.test("axis out of range", async (t) => {
  await t.step("reductions", () => {
    throwsOp(() => sum(zeros([2, 3]), 2), "sum", /^sum: axis 2 is out of range for a tensor of shape \[2, 3\]$/);
    throwsOp(() => zeros([2, 3]).sum(-3), "sum", /axis -3/, /\[2, 3\]/);
    throwsOp(() => zeros([2, 3]).sum([0, 5]), "sum", /axis 5/);
    throwsOp(() => zeros([2, 3]).sum([1, -1]), "sum", /repeated axis/, /\[2, 3\]/);
    throwsOp(() => zeros([2, 3]).mean(2), "mean", /axis 2/);
    throwsOp(() => zeros([2, 3]).max(1.5), "max", /axis 1.5/);
    throwsOp(() => argmax(zeros([2, 3]), 2), "argmax", /axis 2/, /\[2, 3\]/);
    throwsOp(() => zeros([2]).logsumexp(1), "logsumexp", /axis 1/);
  });
  await t.step("softmax, cumsum, topk, sort", () => {
    throwsOp(
      () => softmax(zeros([2, 3]), 2),
      "softmax",
      /^softmax: axis 2 is out of range for a tensor of shape \[2, 3\]$/,
    );
    throwsOp(() => zeros([2, 3]).logSoftmax(-3), "logSoftmax", /axis -3/);
    throwsOp(() => cumsum(zeros([3]), 1), "cumsum", /^cumsum: axis 1 is out of range for a tensor of shape \[3\]$/);
    throwsOp(() => topk(zeros([2, 3]), 1, { axis: 2 }), "topk", /axis 2/, /\[2, 3\]/);
    throwsOp(() => sort(zeros([2, 3]), { axis: -3 }), "sort", /axis -3/);
  });
  await t.step("layout ops", () => {
    throwsOp(
      () => transpose(zeros([2, 3]), 0, 2),
      "transpose",
      /^transpose: axis 2 is out of range for a tensor of shape \[2, 3\]$/,
    );
    throwsOp(() => zeros([3]).transpose(), "transpose", /axis -2/, /\[3\]/);
    throwsOp(() => permute(zeros([2, 3]), [0, 2]), "permute", /axis 2/, /\[2, 3\]/);
    throwsOp(
      () => permute(zeros([2, 3]), [0]),
      "permute",
      /^permute: got 1 dims \[0\] for a tensor of shape \[2, 3\]$/,
    );
    throwsOp(() => permute(zeros([2, 3]), [1, 1]), "permute", /\[1, 1\] are not a permutation/);
    throwsOp(() => unsqueeze(zeros([2]), 2), "unsqueeze", /axis 2/, /\[2\]/);
    throwsOp(() => unsqueeze(zeros([2]), -3), "unsqueeze", /axis -3/);
    throwsOp(() => squeeze(zeros([2]), 1), "squeeze", /axis 1/);
    throwsOp(() => concat([zeros([2]), zeros([2])], 1), "concat", /axis 1/, /\[2\]/);
    throwsOp(() => stack([zeros([2]), zeros([2])], 2), "stack", /axis 2/);
    throwsOp(() => slice(zeros([2]), 1, 0), "slice", /axis 1/);
    throwsOp(() => split(zeros([2]), 1, 1), "split", /axis 1/);
    throwsOp(() => narrow(zeros([2]), -2, 0, 1), "narrow", /axis -2/);
  });
  await t.step("indexing ops", () => {
    throwsOp(
      () => gather(zeros([2, 3]), 2, zeros([2, 3], i32)),
      "gather",
      /^gather: axis 2 is out of range for a tensor of shape \[2, 3\]$/,
    );
    throwsOp(() => scatterAdd(zeros([2]), 1, zeros([2], i32), zeros([2])), "scatterAdd", /axis 1/);
    throwsOp(() => indexSelect(zeros([2]), -2, idx([0])), "indexSelect", /axis -2/);
    throwsOp(() => indexAdd(zeros([2]), 1, idx([0]), zeros([1])), "indexAdd", /axis 1/);
  });
});

Deno.test("index out of range", async (t) => {
  await t.step("gather", () => {
    throwsOp(
      () => gather(zeros([2, 3]), 1, idx([[3], [0]])),
      "gather",
      /^gather: index 3 is out of range for axis 1 of size 3 \(input shape \[2, 3\]\)$/,
    );
    throwsOp(() => gather(zeros([2]), 0, idx([-1])), "gather", /index -1/, /\[2\]/);
  });
  await t.step("indexSelect, scatterAdd, indexAdd", () => {
    throwsOp(
      () => indexSelect(zeros([3, 2]), 0, idx([0, 5])),
      "indexSelect",
      /^indexSelect: index 5 is out of range for axis 0 of size 3 \(input shape \[3, 2\]\)$/,
    );
    throwsOp(() => scatterAdd(zeros([3]), 0, idx([4]), zeros([1])), "scatterAdd", /index 4/, /size 3/, /\[3\]/);
    throwsOp(() => scatterAdd(zeros([3]), 0, idx([-1]), zeros([1])), "scatterAdd", /index -1/);
    throwsOp(() => indexAdd(zeros([2, 2]), 1, idx([2]), zeros([2, 1])), "indexAdd", /index 2/, /axis 1 of size 2/);
  });
  await t.step("embedding names itself, the ids and the weight", () => {
    throwsOp(() => embedding(zeros([3, 2]), idx([[0, 5]])), "embedding", /\[1, 2\]/, /\[0, 3\)/, /\[3, 2\]/, /index 5/);
    throwsOp(() => embedding(zeros([3, 2]), idx([-1])), "embedding", /index -1/);
  });
  await t.step("crossEntropy target ≥ C (or a negative target that is not ignored)", () => {
    throwsOp(() => crossEntropy(zeros([2, 3]), idx([0, 3])), "crossEntropy", /\[0, 3\)/, /\[2, 3\]/, /index 3/);
    throwsOp(() => crossEntropy(zeros([2, 3]), idx([-1, 0])), "crossEntropy", /index -1/);
    // The ignored target is not an index: no error.
    crossEntropy(zeros([2, 3]), idx([-100, 0]));
  });
  await t.step("topk k too big, negative or fractional", () => {
    throwsOp(() => topk(zeros([3]), 4), "topk", /^topk: k = 4 is out of range for axis 0 of shape \[3\]$/);
    throwsOp(() => topk(zeros([2, 3]), 3, { axis: 0 }), "topk", /k = 3/, /axis 0/, /\[2, 3\]/);
    throwsOp(() => topk(zeros([3]), -1), "topk", /k = -1/);
    throwsOp(() => topk(zeros([3]), 1.5), "topk", /k = 1.5/);
  });
  await t.step("oneHot needs a positive class count", () => {
    throwsOp(() => oneHot(idx([0]), 0), "oneHot", /numClasses/);
  });
});

Deno.test("autograd misuse", async (t) => {
  await t.step("backward on a non-scalar without a gradient", () => {
    const y = zeros([2]).requiresGrad_().mul(2);
    throwsOp(
      () => y.backward(),
      "backward",
      /^backward: a gradient must be given for a non-scalar output of shape \[2\]$/,
    );
  });
  await t.step("backward with a gradient of the wrong shape", () => {
    const y = zeros([2]).requiresGrad_().mul(2);
    throwsOp(() => y.backward(ones([3])), "backward", /gradient of shape \[3\] does not match the output shape \[2\]/);
  });
  await t.step("backward on a tensor outside the graph", () => {
    throwsOp(() => zeros([]).backward(), "backward", /shape \[\] does not depend on any tensor that requires grad/);
  });
});

Deno.test("other invalid arguments", async (t) => {
  await t.step("invalid seeds and generator states", () => {
    const seedMsg = /seed must be an integer in \[0, 2\^53\)/;
    throwsType(() => manualSeed(-1), RangeError, /^manualSeed: /, seedMsg, /-1/);
    throwsType(() => manualSeed(1.5), RangeError, seedMsg);
    throwsType(() => manualSeed(NaN), RangeError, seedMsg);
    throwsType(() => manualSeed(2 ** 53), RangeError, seedMsg);
    throwsType(() => new Generator(-3), RangeError, seedMsg);
    throwsType(() => new Generator("1" as never), RangeError, seedMsg);
    const g = new Generator(7);
    rand([8], { generator: g });
    const before = g.getState();
    throwsType(() => g.setState({ seed: 1, offset: -1 }), RangeError, /^Generator.setState: offset/);
    throwsType(() => g.setState({ seed: 0.5, offset: 0 }), RangeError, seedMsg);
    assert.deepEqual(g.getState(), before); // a rejected state changes nothing
  });
  await t.step("random ops", () => {
    throwsOp(() => randint(5, 5, [2]), "randint", /\[5, 5\)/);
    throwsOp(() => randint(0, 1.5, [2]), "randint", /1.5/);
    throwsOp(() => randint(0, 2 ** 31 + 1, [2]), "randint", /2\^31/);
    throwsOp(() => randint(2 ** 31, 2 ** 31 + 5, [2]), "randint", /i32/);
    throwsOp(() => rand([2, -1]), "rand", /\[2,-1\]/);
    throwsOp(() => dropout(zeros([2]), 1.5), "dropout", /p must be in \[0, 1\], got 1.5/);
    throwsOp(() => dropout(zeros([2]), NaN), "dropout", /NaN/);
  });
  await t.step("creation ops", () => {
    throwsOp(() => arange(0, 5, 0), "arange", /step non-zero/);
    throwsOp(() => arange(0, Infinity), "arange", /finite/);
  });
  await t.step("loss options", () => {
    throwsOp(() => crossEntropy(zeros([1, 2]), idx([0]), { labelSmoothing: 1.5 }), "crossEntropy", /labelSmoothing/);
    throwsOp(
      () => crossEntropy(zeros([1, 2]), idx([0]), { reduction: "avg" as never }),
      "crossEntropy",
      /reduction/,
      /"avg"/,
    );
  });
  await t.step("operands", () => {
    throwsOp(() => add(1 as never, 2 as never), "add", /at least one operand must be a Tensor/);
    throwsOp(() => where(tensor([true]), 1, 0), "where", /at least one operand/);
    throwsOp(() => exp([1, 2] as never), "exp", /must be a Tensor/);
    throwsOp(() => matmul(zeros([2, 2]), [[1]] as never), "matmul", /other must be a Tensor/);
    throwsType(() => zeros([2]).clamp(1, 0), RangeError, /^clamp: min \(1\) is greater than max \(0\)$/);
    throwsType(() => gelu(zeros([1]), "erf" as never), TypeError, /^gelu: approximate/);
  });
  await t.step("item on a tensor with more than one element", async () => {
    await assert.rejects(
      () => zeros([2, 2]).item(),
      (e: Error) =>
        e instanceof OpError && /^item: expected a tensor with one element, got shape \[2, 2\]$/.test(e.message),
    );
  });
  await t.step("using a disposed tensor", () => {
    const x = arange(3);
    x.dispose();
    throwsType(() => x.add(1), Error, /disposed tensor of shape \[3\]/);
  });
});
