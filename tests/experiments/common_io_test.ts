import assert from "node:assert/strict";
import {
  appendJsonl,
  environmentInfo,
  joinPath,
  parseJsonl,
  readJsonl,
  writeJsonAtomic,
  writeJsonlAtomic,
  writeTextAtomic,
} from "../../experiments/common/io.ts";

const canWrite = Deno.permissions.querySync({ name: "write" }).state === "granted" &&
  Deno.permissions.querySync({ name: "read" }).state === "granted";

Deno.test({
  name: "io: atomic writes create parent folders, replace the file and leave no temporary files",
  ignore: !canWrite,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const path = joinPath(dir, "a/b/c.json");
      await writeJsonAtomic(path, { x: 1, y: [1, 2] });
      assert.deepEqual(JSON.parse(await Deno.readTextFile(path)), { x: 1, y: [1, 2] });
      await writeTextAtomic(path, "replaced\n");
      assert.equal(await Deno.readTextFile(path), "replaced\n");
      const names = [...Deno.readDirSync(joinPath(dir, "a/b"))].map((e) => e.name);
      assert.deepEqual(names, ["c.json"]);
      await writeJsonlAtomic(joinPath(dir, "m.jsonl"), [{ a: 1 }, { a: 2 }]);
      assert.equal(await Deno.readTextFile(joinPath(dir, "m.jsonl")), '{"a":1}\n{"a":2}\n');
      await assert.rejects(() => writeJsonlAtomic(joinPath(dir, "bad.jsonl"), [undefined]), /cannot write/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "io: JSONL append/read, a torn final line is ignored on read and cut off before the next append",
  ignore: !canWrite,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const path = joinPath(dir, "sub/metrics.jsonl");
      assert.deepEqual(await readJsonl(path), []); // missing file
      await appendJsonl(path, { step: 1, loss: 2.5 });
      await appendJsonl(path, { step: 2, loss: 2.25 });
      assert.deepEqual(await readJsonl(path), [{ step: 1, loss: 2.5 }, { step: 2, loss: 2.25 }]);
      // Simulate a kill mid-write: half a record without its newline.
      await Deno.writeTextFile(path, '{"step":3,"lo', { append: true });
      assert.deepEqual((await readJsonl<{ step: number }>(path)).map((r) => r.step), [1, 2]);
      await appendJsonl(path, { step: 3, loss: 2 });
      assert.equal(
        await Deno.readTextFile(path),
        '{"step":1,"loss":2.5}\n{"step":2,"loss":2.25}\n{"step":3,"loss":2}\n',
      );
      // A complete final record missing only its newline is kept and terminated.
      await Deno.writeTextFile(path, '{"step":4}', { append: true });
      assert.equal((await readJsonl(path)).length, 4);
      await appendJsonl(path, { step: 5 });
      assert.deepEqual((await readJsonl<{ step: number }>(path)).map((r) => r.step), [1, 2, 3, 4, 5]);
      // A bad line in the middle is an error naming the line.
      await Deno.writeTextFile(path, '{"a":1}\n{oops\n{"a":2}\n');
      await assert.rejects(() => readJsonl(path), /line 2 is not valid JSON/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("io: parseJsonl skips blank lines and a torn tail", () => {
  assert.deepEqual(parseJsonl('{"a":1}\n\n{"a":2}\n{"a"'), [{ a: 1 }, { a: 2 }]);
  assert.deepEqual(parseJsonl(""), []);
  assert.throws(() => parseJsonl('x\n{"a":1}\n', "f.jsonl"), /f\.jsonl: line 1/);
});

Deno.test("io: environmentInfo never throws and records the device", () => {
  const env = environmentInfo({ name: "cpu" });
  assert.equal(env.device, "cpu");
  assert.equal(env.adapter, "none");
  assert.equal(env.deno, Deno.version.deno);
  assert.equal(typeof env.moegrad, "string");
  assert.ok(typeof env.cpu === "string" && env.cpu.length > 0);
  assert.ok(env.gitCommit === "unknown" || /^[0-9a-f]{40}$/.test(String(env.gitCommit)));
  assert.equal(environmentInfo({ name: "webgpu", adapter: "NVIDIA" }).adapter, "NVIDIA");
});

Deno.test("io: joinPath", () => {
  assert.equal(joinPath("a/", "/b/", "c.json"), "a/b/c.json");
  assert.equal(joinPath("/tmp", "x"), "/tmp/x");
});
