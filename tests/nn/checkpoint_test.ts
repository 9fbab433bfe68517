/**
 * Checkpoints: the safetensors format byte for byte, round trips of every dtype, every kind of corruption
 * (which must raise and leave the target untouched), checkpoint validation, and atomic file writes.
 *
 * The file tests need --allow-read --allow-write (`deno task test` grants both); under plain `deno test` they
 * are ignored with a note, and the in-memory tests still run.
 */
import assert from "node:assert/strict";
import { Generator, rand, type Tensor, tensor } from "../../mod.ts";
import {
  checkpointChecksum,
  CheckpointError,
  checkpointPath,
  compareCodePoints,
  Crc32,
  crc32,
  decodeCheckpoint,
  decodeSafetensors,
  encodeCheckpoint,
  encodeSafetensors,
  inspectCheckpoint,
  latestCheckpoint,
  listCheckpoints,
  loadCheckpoint,
  parseSafetensors,
  SafetensorsError,
  saveCheckpoint,
  type StatefulModel,
  type StatefulOptimizer,
  writeFileAtomic,
} from "../../nn/checkpoint/mod.ts";
import type { OptimizerState } from "../../nn/optim/mod.ts";

// ---- helpers ------------------------------------------------------------------------------------------

const enc = new TextEncoder();

/** The raw bytes of a tensor's data (bit-exact comparison, NaN payloads and −0 included). */
async function rawBytes(t: Tensor): Promise<number[]> {
  const d = await t.data();
  return [...new Uint8Array(d.buffer, d.byteOffset, d.byteLength)];
}

/** dtype, shape and raw bytes of every tensor, for "untouched" checks. */
async function snapshot(state: Record<string, Tensor>): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const [k, t] of Object.entries(state)) out[k] = [t.dtype, [...t.shape], await rawBytes(t)];
  return out;
}

/** A small model over every dtype, with rank-0, empty and unicode-named tensors. */
class FakeModel implements StatefulModel {
  params: Record<string, Tensor>;
  loads = 0;
  constructor(seed: number) {
    const g = new Generator(seed);
    this.params = {
      "embed.weight": rand([4, 3], { generator: g }).requiresGrad_(),
      "layers.0.bias": rand([3], { generator: g, dtype: "f64" }).requiresGrad_(),
      "router.counts": tensor([[seed, -1], [2147483647, -2147483648]], { dtype: "i32" }),
      "mask": tensor([true, false, seed % 2 === 0, true, false]),
      "scale": tensor(seed + 0.5, { dtype: "f32" }),
      "empty": tensor([], { shape: [0, 3], dtype: "f32" }),
      "ünï.😀": tensor([seed, -seed], { dtype: "f32" }),
    };
  }
  stateDict(): Record<string, Tensor> {
    return { ...this.params };
  }
  loadStateDict(state: Record<string, Tensor>): void {
    this.loads++;
    // Parameters require grad: this only works because decodeCheckpoint calls us under noGrad.
    for (const [k, t] of Object.entries(this.params)) t.assign_(state[k]);
  }
}

/** An Adam-like optimizer whose moment tensors are created lazily on the first step. */
class FakeOptimizer implements StatefulOptimizer {
  step = 0;
  lr = 1e-3;
  tensors: Record<string, Tensor> = {};
  hyper: Record<string, number | boolean> = { beta1: 0.9, beta2: 0.999, eps: 1e-8, amsgrad: false };
  loads = 0;
  model: FakeModel;
  constructor(model: FakeModel) {
    this.model = model;
  }
  takeStep(): void {
    this.step++;
    this.lr *= 0.5;
    for (const [k, p] of Object.entries(this.model.params)) {
      if (p.dtype !== "f32" && p.dtype !== "f64") continue;
      this.tensors[`${k}.exp_avg`] = p.mul(0.1 * this.step);
      this.tensors[`${k}.exp_avg_sq`] = p.mul(p).mul(0.01);
    }
  }
  stateDict(): OptimizerState {
    return { step: this.step, lr: this.lr, tensors: { ...this.tensors }, hyper: { ...this.hyper } };
  }
  loadStateDict(s: OptimizerState): void {
    this.loads++;
    this.step = s.step;
    this.lr = s.lr;
    this.tensors = { ...s.tensors };
    this.hyper = { ...s.hyper };
  }
}

function optSnapshot(o: FakeOptimizer): Promise<unknown> {
  return snapshot(o.tensors).then((t) => ({ step: o.step, lr: o.lr, hyper: { ...o.hyper }, t }));
}

/** A trained-looking source: model, stepped optimizer, advanced generator. */
function source() {
  const model = new FakeModel(1);
  const optimizer = new FakeOptimizer(model);
  optimizer.takeStep();
  optimizer.takeStep();
  const generator = new Generator(1234);
  rand([10], { generator });
  return { model, optimizer, generator };
}

/** A fresh target that differs from {@link source} everywhere. */
function target() {
  const model = new FakeModel(2);
  const optimizer = new FakeOptimizer(model);
  const generator = new Generator(99);
  return { model, optimizer, generator };
}

async function targetSnapshot(t: ReturnType<typeof target>) {
  return {
    model: await snapshot(t.model.params),
    opt: await optSnapshot(t.optimizer),
    gen: t.generator.getState(),
    loads: t.model.loads + t.optimizer.loads,
  };
}

/** A safetensors file from a header (object or raw JSON text) and data bytes, padded like the writer does. */
function build(header: unknown, data: ArrayLike<number> = [], pad = true): Uint8Array {
  let json = header instanceof Uint8Array
    ? header
    : enc.encode(typeof header === "string" ? header : JSON.stringify(header));
  if (pad) {
    const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
    padded.set(json);
    json = padded;
  }
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** Re-encodes a checkpoint after `mutate` edits its tensors or metadata, by default with a correct checksum. */
async function reencode(
  bytes: Uint8Array,
  mutate: (tensors: Record<string, Tensor>, metadata: Record<string, string>) => void,
  fixChecksum = true,
): Promise<Uint8Array> {
  const { tensors, metadata } = decodeSafetensors(bytes);
  mutate(tensors, metadata);
  if (!fixChecksum) return encodeSafetensors(tensors, metadata);
  const draft = parseSafetensors(await encodeSafetensors(tensors, metadata));
  metadata.checksum = checkpointChecksum(draft);
  return encodeSafetensors(tensors, metadata);
}

// ---- CRC-32 ---------------------------------------------------------------------------------------------

Deno.test("crc32: standard check value and slicing-by-4 equals the bytewise definition", () => {
  assert.equal(crc32(enc.encode("123456789")), 0xcbf43926);
  assert.equal(crc32(new Uint8Array()), 0);
  const bytewise = (b: Uint8Array) => {
    let c = 0xffffffff;
    for (const x of b) {
      c ^= x;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    }
    return (c ^ 0xffffffff) >>> 0;
  };
  const data = new Uint8Array(1031).map((_, i) => (i * 2654435761) >>> 24);
  for (const n of [0, 1, 3, 4, 5, 7, 8, 100, 1031]) {
    assert.equal(crc32(data.subarray(0, n)), bytewise(data.subarray(0, n)));
  }
  // Incremental updates in odd pieces give the same result.
  const inc = new Crc32().update(data.subarray(0, 5)).update(data.subarray(5, 6)).update(data.subarray(6));
  assert.equal(inc.digest(), bytewise(data));
});

// ---- safetensors: format ------------------------------------------------------------------------------

Deno.test("safetensors: a small file matches the hand-built bytes of the spec", async () => {
  const bytes = await encodeSafetensors(
    {
      b: tensor([1.0, -2.5], { dtype: "f32" }),
      a: tensor(7, { dtype: "i32" }),
      c: tensor([true, false, true]),
    },
    { k: "v" },
  );
  // Compact JSON, __metadata__ first, tensors in name order and contiguous from offset 0.
  const header = `{"__metadata__":{"k":"v"},` +
    `"a":{"dtype":"I32","shape":[],"data_offsets":[0,4]},` +
    `"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},` +
    `"c":{"dtype":"BOOL","shape":[3],"data_offsets":[12,15]}}`;
  assert.equal(header.length, 188); // → 4 spaces of padding to 192, a multiple of 8
  const expected = [
    ...[0xc0, 0, 0, 0, 0, 0, 0, 0], // N = 192, u64 little-endian
    ...enc.encode(header),
    ...[0x20, 0x20, 0x20, 0x20], // padding
    ...[0x07, 0x00, 0x00, 0x00], // a: i32 7
    ...[0x00, 0x00, 0x80, 0x3f], // b[0]: f32 1.0 = 0x3F800000
    ...[0x00, 0x00, 0x20, 0xc0], // b[1]: f32 −2.5 = 0xC0200000
    ...[0x01, 0x00, 0x01], // c: BOOL, one byte each
  ];
  assert.equal(expected.length, 215);
  assert.deepEqual([...bytes], expected);

  // An empty file: just the header "{}" padded to 8 bytes.
  assert.deepEqual([...await encodeSafetensors({})], [8, 0, 0, 0, 0, 0, 0, 0, ...enc.encode("{}      ")]);
  // Metadata given but empty is written as such; no metadata means no "__metadata__" entry.
  assert.match(new TextDecoder().decode(await encodeSafetensors({}, {})), /^.{8}\{"__metadata__":\{\}\}/s);

  const f64 = await encodeSafetensors({ x: tensor([1], { dtype: "f64" }) });
  assert.deepEqual([...f64.subarray(-8)], [0, 0, 0, 0, 0, 0, 0xf0, 0x3f]); // 1.0 = 0x3FF0000000000000
});

Deno.test("safetensors: names are laid out in code-point (UTF-8 byte) order and JSON-escaped", async () => {
  // UTF-16 order would put "😀" (0xD83D…) before "～" (0xFF5E); code-point order puts it after.
  const names = ["z", "ä", "～", "😀", "A", "a.b", "a", "", 'q"uote\\\n'];
  const tensors = Object.fromEntries(names.map((n, i) => [n, tensor([i], { dtype: "i32" })]));
  const bytes = await encodeSafetensors(tensors);
  const parsed = parseSafetensors(bytes);
  const byOffset = Object.entries(parsed.tensors).sort((a, b) => a[1].dataOffsets[0] - b[1].dataOffsets[0]);
  const utf8Order = [...names].sort((a, b) => {
    const x = enc.encode(a), y = enc.encode(b);
    for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
    return x.length - y.length;
  });
  assert.deepEqual(byOffset.map(([n]) => n), utf8Order);
  assert.deepEqual([...names].sort(compareCodePoints), utf8Order);
  byOffset.forEach(([, v], i) => assert.deepEqual(v.dataOffsets, [4 * i, 4 * i + 4]));
  const { tensors: back } = decodeSafetensors(bytes);
  for (const [i, n] of names.entries()) assert.deepEqual(await back[n].array(), [i]);
});

Deno.test("safetensors: round trip of every dtype, special values, rank-0, empty and odd names", async () => {
  const nanPayload = new Float32Array(new Uint32Array([0x7fc12345]).buffer); // a NaN with a payload
  const tensors: Record<string, Tensor> = {
    f32: tensor(new Float32Array([0, -0, 1.5, NaN, Infinity, -Infinity, 1e-45, 3.4028234663852886e38]), {
      shape: [2, 4],
    }),
    f32nan: tensor(nanPayload),
    f64: tensor(new Float64Array([Math.PI, -0, NaN, 5e-324, Number.MAX_VALUE, -Infinity]), { shape: [3, 1, 2] }),
    i32: tensor(new Int32Array([0, -1, 2147483647, -2147483648, 42]), { shape: [5] }),
    bool: tensor([[true, false, false], [false, true, true]]),
    scalar_f32: tensor(2.25),
    scalar_f64: tensor(-1e300, { dtype: "f64" }),
    scalar_i32: tensor(-5, { dtype: "i32" }),
    scalar_bool: tensor(true),
    empty_f32: tensor([], { shape: [0], dtype: "f32" }),
    empty_f64: tensor([], { shape: [2, 0, 3], dtype: "f64" }),
    empty_i32: tensor([], { shape: [0, 0], dtype: "i32" }),
    empty_bool: tensor([], { shape: [0], dtype: "bool" }),
    "名前/ünïcödé 😀": tensor([1, 2, 3]),
    ["__proto__"]: tensor([9], { dtype: "i32" }), // computed key: an own entry, not the prototype
    "": tensor([8], { dtype: "i32" }),
  };
  const metadata = { "clé ü": "välue 😀", empty: "", json: '{"a":[1,2]}' };
  const bytes = await encodeSafetensors(tensors, metadata);
  const { tensors: back, metadata: meta } = decodeSafetensors(bytes);
  assert.deepEqual(meta, metadata);
  assert.deepEqual(Object.keys(back).sort(), Object.keys(tensors).sort());
  for (const [name, t] of Object.entries(tensors)) {
    const b = back[name];
    assert.equal(b.dtype, t.dtype, name);
    assert.deepEqual(b.shape, t.shape, name);
    assert.deepEqual(await rawBytes(b), await rawBytes(t), name);
  }
  assert.equal(Object.getPrototypeOf(back), Object.prototype);
  // Encoding is deterministic: the decoded tensors encode to the same bytes.
  assert.deepEqual(await encodeSafetensors(back, meta), bytes);
});

Deno.test("safetensors: decodes other valid layouts (dtype-first order, unpadded header, no metadata)", async () => {
  // The reference writer orders by dtype (largest first), then name: F64 "z" before F32 "a".
  const data = [...new Uint8Array(new Float64Array([2.5]).buffer), ...new Uint8Array(new Float32Array([-1]).buffer)];
  const header = {
    z: { dtype: "F64", shape: [1], data_offsets: [0, 8] },
    a: { dtype: "F32", shape: [], data_offsets: [8, 12] },
    e: { dtype: "BOOL", shape: [0], data_offsets: [12, 12] },
  };
  for (const pad of [true, false]) {
    const { tensors, metadata } = decodeSafetensors(build(header, data, pad));
    assert.deepEqual(metadata, {});
    assert.deepEqual(await tensors.z.array(), [2.5]);
    assert.equal(await tensors.a.item(), -1);
    assert.deepEqual(tensors.a.shape, []);
    assert.deepEqual(tensors.e.shape, [0]);
  }
  // Unaligned data (header length not a multiple of 8) still decodes: the bytes are copied.
  const odd = build(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}} `, [0, 0, 0x80, 0x3f], false);
  assert.equal((odd.length - 4 - 8) % 4 !== 0, true);
  assert.equal(await decodeSafetensors(odd).tensors.x.item(), 1);
});

Deno.test("safetensors: every malformed file raises a SafetensorsError naming the problem", () => {
  const ok = { dtype: "F32", shape: [2], data_offsets: [0, 8] };
  const eight = new Array(8).fill(0);
  const cases: [string, Uint8Array, RegExp][] = [
    ["empty file", new Uint8Array(), /0 bytes, shorter than the 8-byte header length/],
    ["7 bytes", new Uint8Array(7), /7 bytes, shorter than the 8-byte/],
    ["header length beyond the file", build({ w: ok }, eight).subarray(0, 20), /header length \d+ runs past the end/],
    [
      "huge header length",
      (() => {
        const b = build({ w: ok }, eight);
        new DataView(b.buffer).setBigUint64(0, 0xffffffffffffffffn, true);
        return b;
      })(),
      /header length 18446744073709551615 runs past/,
    ],
    ["zero header length", new Uint8Array(8), /too small/],
    ["invalid UTF-8", build(new Uint8Array([0x7b, 0xff, 0x7d])), /header is not valid UTF-8/],
    ["truncated UTF-8 sequence", build(new Uint8Array([0x7b, 0xc3, 0x7d])), /header is not valid UTF-8/],
    ["not JSON", build(`{"w": nope}`), /not valid JSON/],
    ["not an object", build(`[1, 2]`), /must start with "\{"/],
    ["leading space", build(` {}`), /must start with "\{"/],
    ["entry not an object", build({ w: 5 }), /tensor "w": entry must be an object/],
    ["unknown dtype", build({ w: { ...ok, dtype: "F33" } }, eight), /tensor "w": unknown dtype "F33"/],
    ["unsupported dtype", build({ w: { ...ok, dtype: "BF16" } }, eight), /"w": dtype "BF16" is not supported/],
    ["dtype not a string", build({ w: { ...ok, dtype: 1 } }, eight), /"w": "dtype" must be a string/],
    ["missing shape", build({ w: { dtype: "F32", data_offsets: [0, 8] } }, eight), /"w": "shape" must be an array/],
    ["negative size", build({ w: { ...ok, shape: [-2] } }, eight), /"w": "shape"\[0\] must be a non-negative int/],
    ["fractional size", build({ w: { ...ok, shape: [1.5] } }, eight), /"w": "shape"\[0\]/],
    ["size mismatch", build({ w: { ...ok, shape: [3] } }, eight), /"w": shape \[3\] of F32 needs 12 bytes .* span 8/],
    [
      "size mismatch (dtype)",
      build({ w: { ...ok, dtype: "F64" } }, eight),
      /"w": shape \[2\] of F64 needs 16 bytes/,
    ],
    ["offsets not a pair", build({ w: { ...ok, data_offsets: [0] } }, eight), /"w": "data_offsets" must be \[begin/],
    [
      "offsets reversed",
      build({ w: { ...ok, data_offsets: [8, 0] } }, eight),
      /"w": "data_offsets" \[8, 0\] end before/,
    ],
    ["offsets negative", build({ w: { ...ok, data_offsets: [-8, 0] } }, eight), /"w": "data_offsets"\[0\] must be/],
    [
      "offsets out of range",
      build({ w: { ...ok, data_offsets: [8, 16] } }, eight),
      /"w": "data_offsets" \[8, 16\] are out of range: the data section holds 8 bytes/,
    ],
    [
      "overlap",
      build({ a: ok, b: { ...ok, data_offsets: [4, 12] } }, new Array(12).fill(0)),
      /tensor "b": "data_offsets" \[4, 12\] overlap tensor "a"/,
    ],
    [
      "duplicate range",
      build({ a: ok, b: ok }, new Array(16).fill(0)),
      /tensor "b": "data_offsets" \[0, 8\] overlap tensor "a"/,
    ],
    [
      "gap",
      build({ a: ok, b: { ...ok, data_offsets: [12, 20] } }, new Array(20).fill(0)),
      /tensor "b": .* leave a gap of 4 bytes after tensor "a"/,
    ],
    [
      "gap at the start",
      build({ a: { ...ok, data_offsets: [4, 12] } }, new Array(12).fill(0)),
      /gap of 4 bytes after the start of the data section/,
    ],
    ["trailing garbage", build({ w: ok }, new Array(11).fill(0)), /3 bytes of trailing garbage after the last tensor/],
    ["data without tensors", build({}, [1]), /1 bytes of trailing garbage/],
    ["unknown field", build({ w: { ...ok, extra: 1 } }, eight), /tensor "w": unknown field "extra"/],
    ["metadata not strings", build({ __metadata__: { a: 1 } }), /"__metadata__" entry "a" must be a string/],
    ["metadata not an object", build({ __metadata__: "x" }), /"__metadata__" must be an object/],
    [
      "bool not 0/1",
      build({ m: { dtype: "BOOL", shape: [3], data_offsets: [0, 3] } }, [1, 0, 2]),
      /tensor "m": BOOL element 2 is 2, not 0 or 1/,
    ],
  ];
  for (const [what, bytes, re] of cases) {
    assert.throws(() => decodeSafetensors(bytes), (e: unknown) => {
      assert.ok(e instanceof SafetensorsError, `${what}: ${e}`);
      assert.match(e.message, /^decodeSafetensors: /, what);
      assert.match(e.message, re, what);
      return true;
    }, what);
  }
});

Deno.test("safetensors: truncation at every byte and header byte flips never decode", async () => {
  const bytes = await encodeSafetensors(
    { w: tensor([[1, 2], [3, 4]]), i: tensor([5, 6], { dtype: "i32" }), m: tensor([true]) },
    { note: "x" },
  );
  for (let n = 0; n < bytes.length; n++) {
    assert.throws(() => decodeSafetensors(bytes.subarray(0, n)), SafetensorsError, `truncated to ${n} bytes`);
  }
  // One extra byte is trailing garbage.
  assert.throws(() => decodeSafetensors(new Uint8Array([...bytes, 0])), /trailing garbage/);
  // Flipping the top bit of any header byte breaks UTF-8 (or the length field): always an error.
  const headerEnd = 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true));
  for (let i = 0; i < headerEnd; i++) {
    const bad = bytes.slice();
    bad[i] ^= 0x80;
    assert.throws(() => decodeSafetensors(bad), SafetensorsError, `byte ${i}`);
  }
});

Deno.test("safetensors: encoding rejects what the format cannot hold", async () => {
  const t = tensor([1]);
  await assert.rejects(encodeSafetensors({ __metadata__: t }), /"__metadata__" is reserved/);
  await assert.rejects(encodeSafetensors({ "\ud800": t }), /not well-formed Unicode/);
  await assert.rejects(encodeSafetensors({ x: 5 as unknown as Tensor }), /tensor "x" is not a Tensor/);
  await assert.rejects(encodeSafetensors({ x: t }, { a: 1 as unknown as string }), /metadata "a" must be a string/);
  const gone = tensor([1]);
  gone.dispose();
  await assert.rejects(encodeSafetensors({ gone }), (e: unknown) => {
    assert.ok(e instanceof SafetensorsError);
    assert.match(e.message, /tensor "gone" has been disposed/);
    return true;
  });
});

// ---- checkpoints (in memory) ------------------------------------------------------------------------------

Deno.test("checkpoint: round trip restores model, optimizer, generator, step and config", async () => {
  const src = source();
  const config = { model: { dim: 3, experts: [1, 2] }, lr: 1e-3, name: "rün 😀", flag: true, none: null };
  const bytes = await encodeCheckpoint({ ...src, step: 123, config });

  const dst = target();
  const { step, config: back } = decodeCheckpoint(bytes, dst);
  assert.equal(step, 123);
  assert.deepEqual(back, config);
  assert.deepEqual(await snapshot(dst.model.params), await snapshot(src.model.params));
  assert.deepEqual(await optSnapshot(dst.optimizer), await optSnapshot(src.optimizer));
  assert.deepEqual(dst.generator.getState(), src.generator.getState());
  // The restored generator continues the same stream.
  assert.deepEqual(
    await rand([6], { generator: dst.generator }).data(),
    await rand([6], { generator: src.generator }).data(),
  );
  // Parameters keep their identity (loaded in place) and still require grad.
  assert.ok(dst.model.params["embed.weight"].requiresGrad);

  // A second decode into a now non-empty optimizer works (names, shapes and dtypes match).
  decodeCheckpoint(bytes, target());
  const again = target();
  again.optimizer.takeStep();
  decodeCheckpoint(bytes, again);
  assert.deepEqual(await optSnapshot(again.optimizer), await optSnapshot(src.optimizer));
});

Deno.test("checkpoint: metadata layout, inspectCheckpoint, model-only load, no config", async () => {
  const src = source();
  const bytes = await encodeCheckpoint({ ...src, step: 7 });
  const { metadata, tensors } = decodeSafetensors(bytes);
  assert.deepEqual(Object.keys(metadata).sort(), [
    "checksum",
    "config",
    "format",
    "format_version",
    "generator",
    "optimizer",
    "step",
  ]);
  assert.equal(metadata.format, "moegrad.checkpoint");
  assert.equal(metadata.format_version, "1");
  assert.equal(metadata.step, "7");
  assert.equal(metadata.config, "null");
  assert.deepEqual(JSON.parse(metadata.optimizer), { step: 2, lr: 2.5e-4, hyper: src.optimizer.hyper });
  assert.deepEqual(JSON.parse(metadata.generator), src.generator.getState());
  assert.match(metadata.checksum, /^crc32:[0-9a-f]{8}$/);
  assert.equal(metadata.checksum, checkpointChecksum(parseSafetensors(bytes)));
  assert.ok(Object.keys(tensors).every((n) => n.startsWith("model.") || n.startsWith("optim.")));
  assert.ok("model.ünï.😀" in tensors && "optim.embed.weight.exp_avg" in tensors);

  const info = inspectCheckpoint(bytes);
  assert.equal(info.step, 7);
  assert.equal(info.config, null);
  assert.equal(info.formatVersion, 1);
  assert.deepEqual(info.generator, src.generator.getState());
  assert.deepEqual(info.model.empty, { dtype: "f32", shape: [0, 3] });
  assert.deepEqual(info.model.scale, { dtype: "f32", shape: [] });
  assert.equal(Object.keys(info.optimizerTensors).length, 10); // two moments for each of 5 float tensors

  // Model only: optimizer and generator state in the file are validated and ignored.
  const model = new FakeModel(5);
  assert.equal(decodeCheckpoint(bytes, { model }).step, 7);
  assert.deepEqual(await snapshot(model.params), await snapshot(src.model.params));

  // A checkpoint without optimizer or generator.
  const bare = await encodeCheckpoint({ model: src.model, step: 0, config: [1, "two"] });
  const meta2 = decodeSafetensors(bare).metadata;
  assert.equal(meta2.optimizer, undefined);
  assert.equal(meta2.generator, undefined);
  assert.deepEqual(decodeCheckpoint(bare, { model: new FakeModel(3) }).config, [1, "two"]);
});

Deno.test("checkpoint: every mismatch is rejected before any state is touched", async () => {
  const src = source();
  const bytes = await encodeCheckpoint({ ...src, step: 3, config: { a: 1 } });
  const cases: [string, Uint8Array, (t: ReturnType<typeof target>) => void, RegExp][] = [
    [
      "missing model tensor",
      await reencode(bytes, (t) => delete t["model.mask"]),
      () => {},
      /missing model tensor\(s\) "mask"/,
    ],
    [
      "unexpected model tensor",
      await reencode(bytes, (t) => t["model.extra"] = tensor([1])),
      () => {},
      /unexpected model tensor\(s\) "extra"/,
    ],
    [
      "shape mismatch",
      await reencode(bytes, (t) => t["model.embed.weight"] = tensor(new Float32Array(12), { shape: [3, 4] })),
      () => {},
      /model tensor "embed.weight" is f32 \[3, 4\] in the checkpoint but f32 \[4, 3\] in the model/,
    ],
    [
      "dtype mismatch",
      await reencode(bytes, (t) => t["model.layers.0.bias"] = tensor([1, 2, 3], { dtype: "f32" })),
      () => {},
      /"layers.0.bias" is f32 \[3\] in the checkpoint but f64 \[3\]/,
    ],
    [
      "rank-0 vs rank-1",
      await reencode(bytes, (t) => t["model.scale"] = tensor([1])),
      () => {},
      /"scale" is f32 \[1\] in the checkpoint but f32 \[\] in the model/,
    ],
    [
      "foreign tensor name",
      await reencode(bytes, (t) => t["other.x"] = tensor([1])),
      () => {},
      /unexpected tensor "other.x": names must start with "model." or "optim."/,
    ],
    [
      "optimizer tensors without optimizer metadata",
      await reencode(bytes, (_t, m) => delete m.optimizer),
      () => {},
      /"optim\..*" is optimizer state, but the metadata has no "optimizer" entry/,
    ],
    [
      "no optimizer state",
      await encodeCheckpoint({ model: src.model, generator: src.generator, step: 1 }),
      () => {},
      /an optimizer was given but the checkpoint holds no optimizer state/,
    ],
    [
      "no generator state",
      await encodeCheckpoint({ model: src.model, optimizer: src.optimizer, step: 1 }),
      () => {},
      /a generator was given but the checkpoint holds no generator state/,
    ],
    [
      "different optimizer type",
      bytes,
      (t) => t.optimizer.hyper = { momentum: 0.9, nesterov: false },
      /optimizer hyperparameters differ: the checkpoint has "amsgrad", "beta1", "beta2", "eps", the optimizer "momentum", "nesterov"/,
    ],
    [
      "hyperparameter type",
      bytes,
      (t) => t.optimizer.hyper.amsgrad = 1,
      /hyperparameter "amsgrad" is a boolean in the checkpoint but a number/,
    ],
    [
      "optimizer state names",
      await reencode(bytes, (t) => delete t["optim.embed.weight.exp_avg"]),
      (t) => t.optimizer.takeStep(),
      /missing optimizer tensor\(s\) "embed.weight.exp_avg"/,
    ],
    [
      "not a checkpoint",
      await encodeSafetensors(src.model.stateDict()),
      () => {},
      /not a moegrad checkpoint: metadata has no "format" entry/,
    ],
    [
      "other format",
      await reencode(bytes, (_t, m) => m.format = "pytorch"),
      () => {},
      /metadata "format" is "pytorch", expected "moegrad.checkpoint"/,
    ],
    [
      "future version",
      await reencode(bytes, (_t, m) => m.format_version = "2"),
      () => {},
      /"format_version" is "2"; this moegrad reads version 1/,
    ],
    [
      "unknown metadata",
      await reencode(bytes, (_t, m) => m.extra = "1"),
      () => {},
      /unexpected metadata entry "extra"/,
    ],
    ["missing step", await reencode(bytes, (_t, m) => delete m.step), () => {}, /metadata has no "step" entry/],
    ["bad step", await reencode(bytes, (_t, m) => m.step = "-1"), () => {}, /metadata "step" must be a non-negative/],
    [
      "bad config JSON",
      await reencode(bytes, (_t, m) => m.config = "{"),
      () => {},
      /metadata "config" is not valid JSON/,
    ],
    [
      "bad optimizer lr",
      await reencode(bytes, (_t, m) => m.optimizer = '{"step":1,"lr":"x","hyper":{}}'),
      () => {},
      /metadata "optimizer".lr must be a finite number/,
    ],
    [
      "bad generator",
      await reencode(bytes, (_t, m) => m.generator = '{"seed":1.5,"offset":0}'),
      () => {},
      /metadata "generator".seed must be a non-negative integer/,
    ],
    [
      "checksum mismatch",
      await reencode(bytes, (_t, m) => m.config = '{"a":2}', false), // edited, checksum not updated
      () => {},
      /checksum mismatch: the file says crc32:[0-9a-f]{8}, its content gives crc32:[0-9a-f]{8} \(the file is corrupted\)/,
    ],
    [
      "bad checksum text",
      await reencode(bytes, (_t, m) => m.checksum = "md5:x", false),
      () => {},
      /"checksum" is "md5:x"/,
    ],
  ];
  for (const [what, file, prepare, re] of cases) {
    const dst = target();
    prepare(dst);
    const before = await targetSnapshot(dst);
    assert.throws(() => decodeCheckpoint(file, dst), (e: unknown) => {
      assert.ok(e instanceof CheckpointError, `${what}: ${e}`);
      assert.match(e.message, /^decodeCheckpoint: /, what);
      assert.match(e.message, re, what);
      return true;
    }, what);
    assert.deepEqual(await targetSnapshot(dst), before, `${what}: target touched`);
  }
  // The valid file itself loads into the same kind of target.
  decodeCheckpoint(bytes, target());
});

Deno.test("checkpoint: any single corrupted or missing byte is caught, and nothing is touched", async () => {
  const src = source();
  const bytes = await encodeCheckpoint({ ...src, step: 42, config: { lr: 0.5 } });
  const dst = target();
  const before = await targetSnapshot(dst);
  let failures = 0;
  const expectFailure = (bad: Uint8Array, what: string) => {
    assert.throws(() => decodeCheckpoint(bad, dst), CheckpointError, what);
    failures++;
  };
  for (let n = 0; n < bytes.length; n++) expectFailure(bytes.subarray(0, n), `truncated to ${n}`);
  for (let i = 0; i < bytes.length; i++) {
    for (const mask of [0x01, 0x80]) {
      const bad = bytes.slice();
      bad[i] ^= mask;
      expectFailure(bad, `byte ${i} ^ ${mask}`);
    }
  }
  assert.equal(failures, 3 * bytes.length);
  assert.deepEqual(await targetSnapshot(dst), before);
  assert.equal(dst.model.loads + dst.optimizer.loads, 0);
  // The intact file still loads.
  assert.equal(decodeCheckpoint(bytes, dst).step, 42);
});

Deno.test("checkpoint: encoding rejects invalid steps, configs and optimizer state", async () => {
  const { model, optimizer } = source();
  await assert.rejects(encodeCheckpoint({ model, step: -1 }), /encodeCheckpoint: step must be a non-negative integer/);
  await assert.rejects(encodeCheckpoint({ model, step: 1.5 }), /step must be a non-negative integer, got 1.5/);
  await assert.rejects(encodeCheckpoint({ model, step: 0, config: { a: [1, NaN] } }), /config.a\[1\] is NaN/);
  await assert.rejects(
    encodeCheckpoint({ model, step: 0, config: { d: new Date() } as unknown as null }),
    /config.d is not JSON data \(a class instance\)/,
  );
  await assert.rejects(
    encodeCheckpoint({ model, step: 0, config: { u: undefined } as unknown as null }),
    /config.u is not JSON data \(undefined\)/,
  );
  optimizer.hyper.eps = Infinity;
  await assert.rejects(
    encodeCheckpoint({ model, optimizer, step: 0 }),
    /optimizer hyper.eps must be a finite number or a boolean/,
  );
  const w = tensor([1]);
  w.dispose();
  await assert.rejects(
    encodeCheckpoint({ model: { stateDict: () => ({ w }), loadStateDict() {} }, step: 0 }),
    (e: unknown) => e instanceof CheckpointError && /tensor "model.w" has been disposed/.test(e.message),
  );
});

Deno.test("checkpoint: loaded parameters go through noGrad, so assign_ into leaves works", async () => {
  const src = source();
  const bytes = await encodeCheckpoint({ model: src.model, step: 1 });
  const dst = new FakeModel(9);
  // Outside noGrad, assign_ into a parameter that requires grad raises; decodeCheckpoint must not.
  assert.throws(() => dst.params["embed.weight"].assign_(src.model.params["embed.weight"]), /noGrad/);
  decodeCheckpoint(bytes, { model: dst });
  assert.deepEqual(await snapshot(dst.params), await snapshot(src.model.params));
});

// ---- files -------------------------------------------------------------------------------------------------

const canWrite = Deno.permissions.querySync({ name: "write" }).state === "granted" &&
  Deno.permissions.querySync({ name: "read" }).state === "granted";
if (!canWrite) {
  console.log("checkpoint file tests skipped: they need --allow-read --allow-write (deno task test grants both)");
}

function fileTest(name: string, fn: (dir: string) => Promise<void>): void {
  Deno.test({
    name: `checkpoint files: ${name}`,
    ignore: !canWrite,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "moegrad_ckpt_" });
      try {
        await fn(dir);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

async function ls(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

fileTest("save, load, overwrite; no temporary file is left behind", async (dir) => {
  const src = source();
  const path = checkpointPath(dir, 10);
  assert.equal(path, `${dir}/step-000010.safetensors`);
  await saveCheckpoint(path, { ...src, step: 10, config: { run: "a" } });
  assert.deepEqual(await ls(dir), ["step-000010.safetensors"]);
  assert.deepEqual(await Deno.readFile(path), await encodeCheckpoint({ ...src, step: 10, config: { run: "a" } }));

  const dst = target();
  assert.deepEqual(await loadCheckpoint(path, dst), { step: 10, config: { run: "a" } });
  assert.deepEqual(await snapshot(dst.model.params), await snapshot(src.model.params));
  assert.deepEqual(dst.generator.getState(), src.generator.getState());

  // Overwriting replaces the file atomically.
  await saveCheckpoint(path, { ...src, step: 11 });
  assert.deepEqual(await ls(dir), ["step-000010.safetensors"]);
  assert.equal((await loadCheckpoint(path, target())).step, 11);
});

fileTest("a failed save leaves the previous checkpoint intact and no temporary file", async (dir) => {
  const src = source();
  const path = `${dir}/ckpt.safetensors`;
  await saveCheckpoint(path, { ...src, step: 1 });
  const previous = await Deno.readFile(path);

  // 1. Encoding fails (before any file is opened).
  await assert.rejects(saveCheckpoint(path, { ...src, step: 2, config: { x: NaN } }), /config.x is NaN/);
  assert.deepEqual(await Deno.readFile(path), previous);
  assert.deepEqual(await ls(dir), ["ckpt.safetensors"]);

  // 2. The disk fills up halfway through writing the temporary file.
  const write = Deno.FsFile.prototype.write;
  let calls = 0;
  Deno.FsFile.prototype.write = function (this: Deno.FsFile, p: Uint8Array) {
    if (calls++ === 0) return write.call(this, p.subarray(0, Math.floor(p.length / 2)));
    return Promise.reject(new Error("No space left on device (simulated)"));
  };
  try {
    await assert.rejects(saveCheckpoint(path, { ...src, step: 3 }), (e: unknown) => {
      assert.ok(e instanceof CheckpointError);
      assert.match(e.message, /saveCheckpoint: writing .*ckpt.safetensors failed: No space left on device/);
      return true;
    });
  } finally {
    Deno.FsFile.prototype.write = write;
  }
  assert.ok(calls >= 2);
  assert.deepEqual(await Deno.readFile(path), previous);
  assert.deepEqual(await ls(dir), ["ckpt.safetensors"]);

  // 3. The rename fails after the temporary file was fully written and synced.
  const rename = Deno.rename;
  let tmpSeen = "";
  Deno.rename = (from: string | URL) => {
    tmpSeen = String(from);
    return Promise.reject(new Error("rename failed (simulated)"));
  };
  try {
    await assert.rejects(saveCheckpoint(path, { ...src, step: 4 }), /rename failed \(simulated\)/);
  } finally {
    Deno.rename = rename;
  }
  assert.match(tmpSeen, /ckpt\.safetensors\.tmp-[0-9a-f]{12}$/);
  assert.ok(tmpSeen.startsWith(dir)); // same directory
  assert.deepEqual(await Deno.readFile(path), previous);
  assert.deepEqual(await ls(dir), ["ckpt.safetensors"]);

  // 4. A missing directory.
  await assert.rejects(saveCheckpoint(`${dir}/nope/x.safetensors`, { ...src, step: 5 }), /NotFound|No such file/i);

  // writeFileAtomic on its own.
  await writeFileAtomic(`${dir}/raw.bin`, new Uint8Array([1, 2, 3]));
  assert.deepEqual([...await Deno.readFile(`${dir}/raw.bin`)], [1, 2, 3]);
  assert.deepEqual(await ls(dir), ["ckpt.safetensors", "raw.bin"]);
});

fileTest("loading a missing or corrupted file raises, naming the path, and touches nothing", async (dir) => {
  const dst = target();
  const before = await targetSnapshot(dst);
  await assert.rejects(loadCheckpoint(`${dir}/missing.safetensors`, dst), (e: unknown) => {
    assert.ok(e instanceof CheckpointError);
    assert.match(e.message, /^loadCheckpoint: no checkpoint file at .*missing\.safetensors$/);
    return true;
  });
  const path = `${dir}/step-000001.safetensors`;
  const src = source();
  await saveCheckpoint(path, { ...src, step: 1 });
  const bytes = await Deno.readFile(path);
  await Deno.writeFile(path, bytes.subarray(0, bytes.length - 3)); // a torn write
  await assert.rejects(loadCheckpoint(path, dst), (e: unknown) => {
    assert.ok(e instanceof CheckpointError);
    assert.match(e.message, /^loadCheckpoint\(.*step-000001\.safetensors\): decodeCheckpoint: .*out of range/);
    return true;
  });
  assert.deepEqual(await targetSnapshot(dst), before);
});

fileTest("latestCheckpoint and listCheckpoints find the highest step and ignore everything else", async (dir) => {
  assert.equal(await latestCheckpoint(`${dir}/does-not-exist`), null);
  assert.equal(await latestCheckpoint(dir), null);
  const { model } = source();
  for (const step of [2, 10, 1_000_000]) await saveCheckpoint(checkpointPath(dir, step), { model, step });
  assert.equal(checkpointPath(dir, 1_000_000), `${dir}/step-1000000.safetensors`);
  await Deno.writeFile(`${dir}/step-000099.safetensors.tmp-abcdef012345`, new Uint8Array([1])); // unfinished save
  await Deno.writeFile(`${dir}/notes.txt`, new Uint8Array([1]));
  await Deno.writeFile(`${dir}/step-abc.safetensors`, new Uint8Array([1]));
  await Deno.mkdir(`${dir}/step-000500.safetensors`); // a directory, not a checkpoint
  const all = await listCheckpoints(dir);
  assert.deepEqual(all.map((c) => c.step), [2, 10, 1_000_000]);
  const latest = await latestCheckpoint(dir);
  assert.deepEqual(latest, { path: `${dir}/step-1000000.safetensors`, step: 1_000_000 });
  const m = new FakeModel(7);
  assert.equal((await loadCheckpoint(latest!.path, { model: m })).step, 1_000_000);
  // Custom naming.
  await saveCheckpoint(checkpointPath(dir, 3, { prefix: "ckpt_", suffix: ".st", digits: 2 }), { model, step: 3 });
  assert.deepEqual(await latestCheckpoint(dir, { prefix: "ckpt_", suffix: ".st" }), {
    path: `${dir}/ckpt_03.st`,
    step: 3,
  });
});
