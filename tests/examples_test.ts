import assert from "node:assert/strict";

const canRead = Deno.permissions.querySync({ name: "read", path: new URL("../README.md", import.meta.url) })
  .state === "granted";

Deno.test("examples/quickstart.ts runs (one MoE training step) and prints a finite loss", async () => {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => lines.push(args.map(String).join(" "));
  try {
    await import("../examples/quickstart.ts");
  } finally {
    console.log = log;
  }
  const lossLine = lines.find((l) => l.startsWith("loss "));
  assert.ok(lossLine, `no loss line in ${JSON.stringify(lines)}`);
  assert.ok(Number.isFinite(Number(lossLine.split(" ")[1])), lossLine);
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
