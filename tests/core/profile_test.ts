import assert from "node:assert/strict";
import {
  formatProfile,
  groupProfile,
  isProfiling,
  profile,
  profilePhase,
  randn,
  softmax,
  startProfile,
  stopProfile,
  tensor,
} from "../../mod.ts";

Deno.test("profile counts every kernel call by op and kernel, forward and backward", () => {
  const x = randn([8, 16]).requiresGrad_();
  const { result, table } = profile(() => {
    const y = profilePhase("forward", () => softmax(x.mul(2), -1).sum());
    profilePhase("backward", () => y.backward());
    return y;
  });
  assert.equal(result.shape.length, 0);
  const row = (phase: string, op: string, kernel: string) =>
    table.rows.find((r) => r.phase === phase && r.op === op && r.kernel === kernel);
  assert.equal(row("forward", "softmax", "softmax")?.calls, 1);
  assert.equal(row("forward", "sum", "reduce")?.calls, 2); // two axes, one kernel call each
  assert.ok(row("forward", "mul", "binary")!.calls >= 1);
  // The backward of softmax runs mul/sub/sum kernels, attributed to the backward phase by op name.
  assert.ok(row("backward", "mul", "binary")!.calls >= 2);
  assert.ok(table.rows.every((r) => r.ms >= 0 && r.calls > 0));
  for (let i = 1; i < table.rows.length; i++) assert.ok(table.rows[i - 1].ms >= table.rows[i].ms);
  assert.ok(table.kernelMs <= table.wallMs + 1e-9);
  assert.equal(isProfiling(), false);
});

Deno.test("nothing is recorded outside a profile, and profiles do not nest", () => {
  tensor([1, 2]).add(1);
  startProfile();
  assert.equal(isProfiling(), true);
  assert.throws(() => startProfile(), /already running/);
  const t = stopProfile();
  assert.deepEqual(t.rows, []);
  assert.throws(() => stopProfile(), /no profile is running/);
  // A throwing function stops the profile it started.
  assert.throws(() => profile(() => tensor([1]).reshape(2, 2)));
  assert.equal(isProfiling(), false);
});

Deno.test("groupProfile merges rows and formatProfile prints a Markdown table", () => {
  const { table } = profile(() => {
    profilePhase("a", () => tensor([1, 2, 3]).add(1).mul(2));
    profilePhase("b", () => tensor([1, 2, 3]).add(1));
  });
  const byOp = groupProfile(table, { by: ["op"] });
  assert.equal(byOp.rows.find((r) => r.op === "add")?.calls, 2);
  // Phase b ran one add (plus the fill that turns the number 1 into a scalar tensor).
  const b = table.rows.filter((r) => r.phase === "b");
  assert.deepEqual(b.map((r) => r.op).sort(), ["add", "full"]);
  assert.equal(groupProfile(table, { by: ["phase"] }).rows.find((r) => r.phase === "b")?.calls, 2);
  const text = formatProfile(table, { by: ["op", "kernel"], top: 1 });
  const lines = text.split("\n");
  assert.equal(lines[0], "| op | kernel | calls | ms | % of wall |");
  assert.match(text, /\(\d+ others\)/);
  assert.match(text, /\(outside kernels\)/);
  assert.equal(lines.length, 2 + 1 + 1 + 1);
});
