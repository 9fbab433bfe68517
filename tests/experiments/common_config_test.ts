import assert from "node:assert/strict";
import { z } from "../../deps.ts";
import {
  baseConfigShape,
  ConfigError,
  configFieldPaths,
  formatConfigHelp,
  parseConfig,
  parseExperimentCli,
  runExperimentCli,
  undocumentedFields,
} from "../../experiments/common/config.ts";

const schema = z.strictObject({
  ...baseConfigShape,
  lr: z.number().positive().describe("Learning rate."),
  model: z.strictObject({
    dim: z.int().min(8).max(1024).describe("Model width."),
    act: z.enum(["gelu", "relu"]).default("gelu").describe("Activation."),
  }).describe("The model."),
  arms: z.array(z.string()).min(1).describe("Arms to run."),
  es: z.array(z.int().min(2)).describe("Expert counts."),
  flag: z.boolean().describe("A switch."),
  name: z.string().describe("A free-form name."),
});
const def = {
  name: "demo",
  description: "A demo experiment.",
  schema,
  presets: {
    smoke: {
      seeds: 1,
      device: "cpu" as const,
      lr: 0.1,
      model: { dim: 16 },
      arms: ["a"],
      es: [4],
      flag: false,
      name: "x",
    },
    big: {
      seeds: 3,
      device: "auto" as const,
      lr: 0.01,
      model: { dim: 64 },
      arms: ["a", "b"],
      es: [4, 8],
      flag: true,
      name: "y",
    },
  },
  defaultPreset: "smoke",
  parallelJobs: true,
};

function fails(argv: string[], pattern: RegExp) {
  assert.throws(() => parseExperimentCli(def, argv), (e: unknown) => {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    assert.match(e.message, pattern);
    return true;
  });
}

Deno.test("config: the default preset, defaults filled in, default out folder", () => {
  const { config, cli } = parseExperimentCli(def, []);
  assert.deepEqual(config, {
    seeds: 1,
    device: "cpu",
    lr: 0.1,
    model: { dim: 16, act: "gelu" },
    arms: ["a"],
    es: [4],
    flag: false,
    name: "x",
  });
  assert.deepEqual(cli, {
    preset: "smoke",
    out: "results/demo/smoke",
    resume: false,
    force: false,
    jobs: undefined,
    help: false,
  });
});

Deno.test("config: every flag and override form", () => {
  const { config, cli } = parseExperimentCli(def, [
    "--preset",
    "big",
    "--out=/tmp/x",
    "--seeds",
    "5",
    "--device=cpu",
    "--resume",
    "--jobs",
    "2",
    "--model.dim=32",
    "--model.act",
    "relu",
    "--arms=p,q",
    "--es",
    "[16, 32]",
    "--flag",
    "false",
    "--name=3",
    "--lr",
    "1e-3",
  ]);
  assert.deepEqual(cli, { preset: "big", out: "/tmp/x", resume: true, force: false, jobs: 2, help: false });
  assert.equal(config.seeds, 5);
  assert.equal(config.device, "cpu");
  assert.deepEqual(config.model, { dim: 32, act: "relu" });
  assert.deepEqual(config.arms, ["p", "q"]);
  assert.deepEqual(config.es, [16, 32]);
  assert.equal(config.flag, false);
  assert.equal(config.lr, 1e-3);
  assert.equal(config.name, "3");
  // A bare boolean flag is true; a single value for a list field is a one-element list; the preset is not mutated.
  const r = parseExperimentCli(def, ["--flag", "--es=8", "--arms", "only"]);
  assert.equal(r.config.flag, true);
  assert.deepEqual(r.config.es, [8]);
  assert.deepEqual(r.config.arms, ["only"]);
  assert.deepEqual(def.presets.smoke.es, [4]);
  assert.equal(parseExperimentCli(def, ["--preset=big"]).cli.out, "results/demo/big");
  assert.equal(parseExperimentCli(def, ["--force"]).cli.force, true);
});

Deno.test("config: a string field always gets a string; other fields get JSON when it parses", () => {
  assert.equal(parseExperimentCli(def, ["--name=3"]).config.name, "3");
  assert.equal(parseExperimentCli(def, ["--name", "hello world"]).config.name, "hello world");
  assert.equal(parseExperimentCli(def, ["--name", '"3"']).config.name, "3");
  assert.equal(parseExperimentCli(def, ["--lr", "0.5"]).config.lr, 0.5);
});

Deno.test("config: every error path names the field, what is allowed and the bad value", () => {
  fails(["--model.dim=3"], /field "model\.dim" must be an integer ≥ 8 and ≤ 1024, got 3/);
  fails(["--lr=-1"], /field "lr" must be a finite number > 0, got -1/);
  fails(["--lr=abc"], /field "lr" must be a finite number > 0, got "abc"/);
  fails(["--model.act=tanh"], /field "model\.act" must be one of "gelu", "relu", got "tanh"/);
  fails(["--seeds=1.5"], /field "seeds" must be an integer ≥ 1, got 1\.5/);
  fails(["--seeds", "0"], /field "seeds" must be an integer ≥ 1, got 0/);
  fails(["--device=gpu"], /field "device" must be one of "auto", "cpu", "webgpu", got "gpu"/);
  fails(["--es=a,b"], /field "es\.0" must be an integer ≥ 2, got "a"/);
  fails(["--arms="], /field "arms" must be a list with at least 1 item\(s\), got \[\]/);
  fails(["--flag=maybe"], /field "flag" must be true or false, got "maybe"/);
  fails(["--nope=1"], /unknown option --nope;.*config fields: seeds, device, lr, model, model\.dim, model\.act, arms/);
  fails(["--model.width=1"], /unknown option --model\.width/);
  fails(["--preset=x"], /unknown preset "x" \(allowed: smoke, big\)/);
  fails(["--jobs=0"], /--jobs must be an integer ≥ 1, got "0"/);
  fails(["--jobs=two"], /--jobs must be an integer ≥ 1/);
  fails(["--jobs"], /--jobs needs a value/);
  fails(["--preset"], /--preset needs a value/);
  fails(["--lr", "--seeds=2"], /--lr needs a value/);
  fails(["--out="], /--out must be a non-empty folder path/);
  fails(["--resume=yes"], /--resume takes no value/);
  fails(["positional"], /unexpected argument "positional"/);
  fails(["--force=yes"], /--force takes no value/);
  fails(["--resume", "--force"], /--resume and --force exclude each other/);
  // --jobs only where the experiment runs in parallel; --help then does not offer it either.
  const serial = { ...def, parallelJobs: false };
  assert.throws(() => parseExperimentCli(serial, ["--jobs=2"]), /--jobs is not supported by demo/);
  assert.doesNotMatch(formatConfigHelp(serial), /--jobs/);
  assert.match(formatConfigHelp(def), /\[--resume \| --force\] \[--jobs N\]/);
  // A bad preset is reported as the preset's fault; an unknown key inside an object lists the valid ones.
  const bad = { ...def, presets: { smoke: { ...def.presets.smoke, model: { dim: 16, extra: 1 } } } };
  assert.throws(
    () => parseExperimentCli(bad, []),
    /preset "smoke": unknown field "model\.extra" \(valid here: dim, act\)/,
  );
});

Deno.test("config: --help skips the overrides; the help text lists presets and every field", () => {
  const { cli, config } = parseExperimentCli(def, ["--help", "--lr=-1"]);
  assert.equal(cli.help, true);
  assert.equal(config.lr, 0.1);
  const help = formatConfigHelp(def);
  assert.match(help, /smoke \(default\)/);
  assert.match(help, /^\s+big$/m);
  for (const path of configFieldPaths(schema)) assert.ok(help.includes(`--${path}`), `help misses --${path}`);
  assert.match(help, /--model\.dim = 16\n\s+Model width\. Allowed: an integer ≥ 8 and ≤ 1024\./);
  assert.match(help, /--model\.act = "gelu" \(default\)/);
  // The usage line offers the devices the schema allows, not a fixed list.
  assert.match(help, /--device auto\|cpu\|webgpu/);
  const cpuSchema = schema.extend({ device: z.enum(["cpu"]).describe("CPU only.") });
  const cpuOnly = { ...def, schema: cpuSchema, presets: { smoke: def.presets.smoke } };
  assert.match(formatConfigHelp(cpuOnly), /\[--device cpu\]/);
  assert.deepEqual(undocumentedFields(schema), []);
  assert.deepEqual(undocumentedFields(z.object({ a: z.number(), b: z.number().describe("b") })), ["a"]);
});

Deno.test("config: parseConfig validates a config read back from disk", () => {
  assert.equal(parseConfig(schema, parseExperimentCli(def, []).config).lr, 0.1);
  assert.throws(() => parseConfig(schema, { seeds: 1 }, "config.json"), /config\.json: field "device"/);
});

Deno.test("config: runExperimentCli returns 2 on a bad command line and runs the experiment otherwise", async () => {
  const errors: unknown[] = [];
  const origError = console.error;
  console.error = (...a: unknown[]) => errors.push(a.join(" "));
  try {
    assert.equal(await runExperimentCli(def, ["--lr=0"], () => Promise.reject(new Error("must not run"))), 2);
  } finally {
    console.error = origError;
  }
  assert.match(String(errors[0]), /field "lr"/);
  assert.equal(errors.length, 1);
  assert.doesNotMatch(String(errors[0]), /\n/, "one line");
  let seen: number | undefined;
  assert.equal(await runExperimentCli(def, ["--seeds=4"], (c) => Promise.resolve(void (seen = c.seeds))), 0);
  assert.equal(seen, 4);
});
