import assert from "node:assert/strict";
import { main } from "../../moe/vectors/cli.ts";

const canRead = Deno.permissions.querySync({ name: "read" }).state === "granted";

async function captured(args: string[]): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = console.error = (...a: unknown[]) => lines.push(a.map(String).join(" "));
  try {
    return { code: await main(args), lines };
  } finally {
    [console.log, console.error] = [log, error];
  }
}

Deno.test({
  name: "deno task vectors: no argument replays the bundled vectors/, a folder stands for its *.json files",
  ignore: !canRead,
  async fn() {
    const bundled = await captured([]);
    assert.equal(bundled.code, 0, bundled.lines.join("\n"));
    assert.equal(bundled.lines.at(-1), "14 passed, 0 failed (f64)");
    const folder = await captured([new URL("../../vectors", import.meta.url).pathname]);
    assert.deepEqual(
      folder.lines.filter((l) => l.startsWith("PASS")),
      bundled.lines.filter((l) => l.startsWith("PASS")),
    );
    const missing = await captured(["/no/such/vector.json"]);
    assert.equal(missing.code, 1);
    assert.match(missing.lines.join("\n"), /FAIL \/no\/such\/vector\.json: .*\n0 passed, 1 failed/);
  },
});
