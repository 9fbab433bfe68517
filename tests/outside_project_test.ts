/**
 * moegrad used from another project: a script in a folder with no `deno.json`, importing `mod.ts` by path, must
 * resolve every dependency by itself (it cannot see our import map). Run with `--no-config` so that no config
 * file on the way up can help it.
 */
import assert from "node:assert/strict";

const canRun = Deno.permissions.querySync({ name: "run", command: Deno.execPath() }).state === "granted" &&
  Deno.permissions.querySync({ name: "write" }).state === "granted";

const SCRIPT = (modUrl: string) => `
import { AdamW, Generator, loadMobyDick, loadSotu, MoELayer, randn, scope } from ${JSON.stringify(modUrl)};
const gen = new Generator(0);
// Estimator options go through zod; the corpora are static JSON imports of npm packages.
const moe = new MoELayer(8, { numExperts: 4, estimator: "sparsemixer", generator: gen });
const opt = new AdamW(moe.namedParameters(), { lr: 1e-3 });
const loss = scope(() => {
  const l = moe.forward(randn([16, 8], { generator: gen })).square().mean();
  l.backward();
  return l;
});
opt.step();
const sotu = await loadSotu();
const moby = await loadMobyDick();
console.log(JSON.stringify({ loss: await loss.item(), sotu: sotu.length, moby: moby.length }));
`;

Deno.test({
  name: "a script outside the repository imports mod.ts by path, without our deno.json, type-checks and runs",
  ignore: !canRun,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "moegrad-user-" });
    try {
      const script = `${dir}/main.ts`;
      await Deno.writeTextFile(script, SCRIPT(new URL("../mod.ts", import.meta.url).href));
      for (const args of [["check", "--no-config", script], ["run", "--no-config", script]]) {
        const out = await new Deno.Command(Deno.execPath(), { args, cwd: dir, stdin: "null" }).output();
        const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
        assert.equal(out.code, 0, `deno ${args[0]} failed:\n${text}`);
        if (args[0] === "run") {
          const result = JSON.parse(text.trim().split("\n").at(-1)!);
          assert.ok(Number.isFinite(result.loss), text);
          assert.equal(result.sotu, 233);
          assert.ok(result.moby > 100, text);
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
