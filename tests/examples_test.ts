import assert from "node:assert/strict";

const canRead = Deno.permissions.querySync({ name: "read", path: new URL("../README.md", import.meta.url) })
  .state === "granted";

Deno.test("examples/quickstart.ts runs (three MoE training steps in scope()) and prints finite losses", async () => {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => lines.push(args.map(String).join(" "));
  try {
    await import("../examples/quickstart.ts");
  } finally {
    console.log = log;
  }
  const losses = lines.map((l) => l.match(/^step \d: loss (\S+),/)?.[1]).filter((l) => l !== undefined).map(Number);
  assert.equal(losses.length, 3, `expected three step lines in ${JSON.stringify(lines)}`);
  assert.ok(losses.every(Number.isFinite), JSON.stringify(lines));
});

Deno.test({
  name: "README's quick start is examples/quickstart.ts verbatim",
  ignore: !canRead,
  fn() {
    const readme = Deno.readTextFileSync(new URL("../README.md", import.meta.url));
    const example = Deno.readTextFileSync(new URL("../examples/quickstart.ts", import.meta.url));
    const block = readme.match(/```ts\n(import [^]*?)```/);
    assert.ok(block, "README has no ```ts block starting with an import");
    assert.equal(block[1], example);
  },
});
