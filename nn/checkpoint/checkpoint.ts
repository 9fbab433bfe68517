/**
 * Training checkpoints: the model state, the optimizer state, the RNG state, the step and the config, in one
 * safetensors file.
 *
 * Layout (format version 1): the model's tensors are stored as `model.<name>`, the optimizer's as
 * `optim.<name>`; `__metadata__` holds, all as strings:
 *
 * | key              | value                                                                  |
 * | ---------------- | ---------------------------------------------------------------------- |
 * | `format`         | `moegrad.checkpoint`                                                   |
 * | `format_version` | `1`                                                                    |
 * | `step`           | the training step, a JSON integer                                      |
 * | `config`         | the run's config, JSON (`null` when none was given)                    |
 * | `optimizer`      | JSON `{"step", "lr", "hyper"}` (only with an optimizer)                |
 * | `generator`      | JSON `{"seed", "offset"}` of the RNG (only with a generator)           |
 * | `checksum`       | `crc32:` + 8 hex digits over everything else (see {@link checkpointChecksum}) |
 *
 * Loading validates everything — the file structure, every metadata entry, the checksum (so a corrupted
 * byte anywhere, tensor data included, is caught), missing and unexpected tensors, shapes and dtypes —
 * before it touches any state. Saving writes to a temporary file in the same directory, syncs it and
 * renames it over the target, so a crash mid-save leaves the previous checkpoint intact.
 *
 * @module
 */
import { type Device, type DType, type GeneratorState, getDevice, noGrad, type Tensor } from "../../core/mod.ts";
import { Crc32 } from "./crc32.ts";
import { fmtShape } from "../../core/errors.ts";
import { isPlainObject } from "../../core/guards.ts";
import { CheckpointError } from "./errors.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import type { OptimizerState } from "../optim/optimizer.ts";
import {
  compareCodePoints,
  encodeSafetensors,
  type ParsedSafetensors,
  parseSafetensors,
  safetensorsDType,
  tensorFromView,
} from "./safetensors.ts";

/** The checkpoint format version this module writes (and the only one it reads). */
export const CHECKPOINT_FORMAT_VERSION = 1;
const FORMAT_NAME = "moegrad.checkpoint";
const CHECKSUM_PLACEHOLDER = "crc32:00000000";
const META_KEYS = new Set(["format", "format_version", "step", "config", "optimizer", "generator", "checksum"]);

/** A JSON value (what a checkpoint's config may hold). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** What a checkpoint needs from a model: its named tensors, and a way to load them back. */
export interface StatefulModel {
  /** The model's named tensors (parameters and buffers). */
  stateDict(): Record<string, Tensor>;
  /** Copies `state` (same names, shapes and dtypes as {@link StatefulModel.stateDict}) into the model. */
  loadStateDict(state: Record<string, Tensor>): void;
}

/** What a checkpoint needs from an optimizer. */
export interface StatefulOptimizer {
  /** The optimizer's state. */
  stateDict(): OptimizerState;
  /** Restores a state returned by {@link StatefulOptimizer.stateDict}. */
  loadStateDict(state: OptimizerState): void;
}

/** What a checkpoint needs from a random generator (a moegrad `Generator` has both). */
export interface StatefulGenerator {
  /** The generator's state. */
  getState(): GeneratorState;
  /** Restores a state returned by {@link StatefulGenerator.getState}. */
  setState(state: GeneratorState): unknown;
}

/** What {@link encodeCheckpoint} and {@link saveCheckpoint} store. */
export interface EncodeCheckpointOptions {
  /** The model whose state is stored. */
  model: StatefulModel;
  /** The optimizer whose state is stored (optional). */
  optimizer?: StatefulOptimizer;
  /** The random generator whose state is stored (optional; e.g. `defaultGenerator`). */
  generator?: StatefulGenerator;
  /** The training step (a non-negative integer). */
  step: number;
  /** The run's config (any JSON value; stored as JSON). */
  config?: JsonValue;
}

/** Where {@link decodeCheckpoint} and {@link loadCheckpoint} restore to. */
export interface DecodeCheckpointOptions {
  /** The model to restore (its current state dict fixes the expected names, shapes and dtypes). */
  model: StatefulModel;
  /**
   * The optimizer to restore (the checkpoint must hold optimizer state). Leave it out to load only the model
   * (for evaluation); the optimizer state in the file is then validated and ignored.
   */
  optimizer?: StatefulOptimizer;
  /** The generator to restore (the checkpoint must hold a generator state). */
  generator?: StatefulGenerator;
  /** Where to create the loaded tensors (default: the device of the tensor each one replaces). */
  device?: Device | string;
}

/** What {@link decodeCheckpoint} and {@link loadCheckpoint} return. */
export interface LoadedCheckpoint {
  /** The training step stored. */
  step: number;
  /** The config stored (null when none was given). */
  config: JsonValue;
}

/** What {@link inspectCheckpoint} reports about a checkpoint without loading it. */
export interface CheckpointInfo extends LoadedCheckpoint {
  /** The format version of the file. */
  formatVersion: number;
  /** The optimizer's step, learning rate and hyperparameters, if the checkpoint holds optimizer state. */
  optimizer?: { step: number; lr: number; hyper: Record<string, number | boolean> };
  /** The generator state, if the checkpoint holds one. */
  generator?: GeneratorState;
  /** The model's tensors (names without the `model.` prefix). */
  model: Record<string, { dtype: DType; shape: number[] }>;
  /** The optimizer's tensors (names without the `optim.` prefix). */
  optimizerTensors: Record<string, { dtype: DType; shape: number[] }>;
}

function q(s: string): string {
  return JSON.stringify(s);
}

function fail(where: string, detail: string): never {
  throw new CheckpointError(`${where}: ${detail}`);
}

/** Lists names for an error message (the first few, then a count). */
function listNames(names: string[]): string {
  const shown = names.slice(0, 8).map(q).join(", ");
  return names.length > 8 ? `${shown} and ${names.length - 8} more` : shown;
}

/** Throws unless `v` is plain JSON data that survives a round trip unchanged. */
function assertJson(where: string, v: unknown, path: string): void {
  if (v === null || typeof v === "string" || typeof v === "boolean") return;
  if (typeof v === "number") {
    if (!Number.isFinite(v)) fail(where, `${path} is ${v}, which JSON cannot hold`);
    return;
  }
  if (Array.isArray(v)) {
    v.forEach((x, i) => assertJson(where, x, `${path}[${i}]`));
    return;
  }
  if (typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    for (const [k, x] of Object.entries(v)) assertJson(where, x, `${path}.${k}`);
    return;
  }
  fail(
    where,
    `${path} is not JSON data (${
      v === undefined ? "undefined" : typeof v === "object" ? "a class instance" : typeof v
    })`,
  );
}

function checkStep(where: string, v: unknown, field: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    fail(where, `${field} must be a non-negative integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

function checkHyper(where: string, hyper: unknown, field: string): Record<string, number | boolean> {
  if (!isPlainObject(hyper)) fail(where, `${field} must be an object of numbers and booleans`);
  for (const [k, v] of Object.entries(hyper)) {
    if (typeof v === "boolean") continue;
    if (typeof v !== "number" || !Number.isFinite(v)) {
      fail(where, `${field}.${k} must be a finite number or a boolean, got ${JSON.stringify(v) ?? String(v)}`);
    }
  }
  return hyper as Record<string, number | boolean>;
}

function checkLr(where: string, v: unknown, field: string): number {
  if (typeof v !== "number" || !Number.isFinite(v)) fail(where, `${field} must be a finite number, got ${v}`);
  return v;
}

function checkGeneratorState(where: string, s: unknown, field: string): GeneratorState {
  if (!isPlainObject(s)) fail(where, `${field} must be an object {seed, offset}`);
  for (const k of Object.keys(s)) if (k !== "seed" && k !== "offset") fail(where, `${field} has unknown field ${q(k)}`);
  return { seed: checkStep(where, s.seed, `${field}.seed`), offset: checkStep(where, s.offset, `${field}.offset`) };
}

/**
 * The checksum of a parsed checkpoint: CRC-32 over, in order, every metadata entry except `checksum` (key,
 * NUL, value, NUL; keys by code point) and then every tensor (name, NUL, safetensors dtype, NUL, the shape as
 * comma-separated sizes, NUL, its raw bytes; names by code point). It depends on the content only, not on
 * where the tensors lie in the file. Returned as `crc32:` + 8 lowercase hex digits.
 */
export function checkpointChecksum(parsed: Pick<ParsedSafetensors, "tensors" | "metadata">): string {
  const enc = new TextEncoder();
  const nul = new Uint8Array(1);
  const crc = new Crc32();
  for (const k of Object.keys(parsed.metadata).sort(compareCodePoints)) {
    if (k === "checksum") continue;
    crc.update(enc.encode(k)).update(nul).update(enc.encode(parsed.metadata[k])).update(nul);
  }
  for (const name of Object.keys(parsed.tensors).sort(compareCodePoints)) {
    const t = parsed.tensors[name];
    crc.update(enc.encode(name)).update(nul).update(enc.encode(safetensorsDType(t.dtype))).update(nul);
    crc.update(enc.encode(t.shape.join(","))).update(nul).update(t.bytes);
  }
  return `crc32:${crc.digest().toString(16).padStart(8, "0")}`;
}

/**
 * Serialises a checkpoint (see the module documentation for the layout). Reads every tensor back from its
 * device, so it is async; nothing is modified.
 *
 * @example
 * ```ts
 * import { Generator, tensor, type Tensor } from "@moegrad/moegrad";
 * import { decodeCheckpoint, encodeCheckpoint } from "./checkpoint.ts";
 * let w = tensor([1, 2, 3]);
 * const model = {
 *   stateDict: () => ({ w }),
 *   loadStateDict: (s: Record<string, Tensor>) => void (w = s.w),
 * };
 * const bytes = await encodeCheckpoint({ model, generator: new Generator(7), step: 100, config: { lr: 0.1 } });
 * w = tensor([0, 0, 0]);
 * const gen = new Generator(0);
 * const { step, config } = decodeCheckpoint(bytes, { model, generator: gen });
 * console.log(step, config, await w.data(), gen.getState()); // 100 { lr: 0.1 } Float32Array [1, 2, 3] { seed: 7, offset: 0 }
 * ```
 */
export async function encodeCheckpoint(options: EncodeCheckpointOptions): Promise<Uint8Array> {
  const where = "encodeCheckpoint";
  const { model, optimizer, generator } = options;
  const step = checkStep(where, options.step, "step");
  const config = options.config === undefined ? null : options.config;
  assertJson(where, config, "config");

  const tensors: [string, Tensor][] = [];
  for (const [name, t] of Object.entries(model.stateDict())) tensors.push([`model.${name}`, t]);
  const metadata: [string, string][] = [
    ["format", FORMAT_NAME],
    ["format_version", String(CHECKPOINT_FORMAT_VERSION)],
    ["step", JSON.stringify(step)],
    ["config", JSON.stringify(config)],
    ["checksum", CHECKSUM_PLACEHOLDER],
  ];
  if (optimizer) {
    const s = optimizer.stateDict();
    const optStep = checkStep(where, s.step, "optimizer step");
    const lr = checkLr(where, s.lr, "optimizer lr");
    const hyper = checkHyper(where, s.hyper, "optimizer hyper");
    if (!isPlainObject(s.tensors)) fail(where, "optimizer tensors must be an object of tensors");
    for (const [name, t] of Object.entries(s.tensors)) tensors.push([`optim.${name}`, t]);
    metadata.push(["optimizer", JSON.stringify({ step: optStep, lr, hyper })]);
  }
  if (generator) {
    const g = checkGeneratorState(where, generator.getState(), "generator state");
    metadata.push(["generator", JSON.stringify(g)]);
  }

  let bytes: Uint8Array;
  try {
    bytes = await encodeSafetensors(Object.fromEntries(tensors), Object.fromEntries(metadata));
  } catch (e) {
    throw new CheckpointError(`${where}: ${(e as Error).message}`, { cause: e });
  }
  // The checksum covers the content as written, so compute it from the encoded file and write it over the
  // fixed-width placeholder. Inside the JSON header, quotes within strings are escaped, so the unescaped
  // key-value text below occurs exactly once: as the metadata entry itself.
  const parsed = parseSafetensors(bytes, where);
  const sum = checkpointChecksum(parsed);
  const enc = new TextEncoder();
  const needle = enc.encode(`"checksum":${q(CHECKSUM_PLACEHOLDER)}`);
  const at = indexOfBytes(bytes.subarray(8, 8 + parsed.headerLength), needle);
  if (at < 0) fail(where, "internal error: checksum placeholder not found in the header");
  bytes.set(enc.encode(`"checksum":${q(sum)}`), 8 + at);
  return bytes;
}

function indexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

interface ValidatedCheckpoint {
  parsed: ParsedSafetensors;
  info: CheckpointInfo;
}

function parseJsonMeta(where: string, meta: Record<string, string>, key: string): unknown {
  try {
    return JSON.parse(meta[key]);
  } catch (e) {
    fail(where, `metadata ${q(key)} is not valid JSON (${(e as Error).message})`);
  }
}

/** Validates a checkpoint's structure, metadata and checksum (nothing about any model). */
function validate(bytes: Uint8Array, where: string): ValidatedCheckpoint {
  let parsed: ParsedSafetensors;
  try {
    parsed = parseSafetensors(bytes, where);
  } catch (e) {
    throw new CheckpointError((e as Error).message, { cause: e });
  }
  const meta = parsed.metadata;
  if (meta.format !== FORMAT_NAME) {
    fail(
      where,
      meta.format === undefined
        ? `not a moegrad checkpoint: metadata has no "format" entry`
        : `not a moegrad checkpoint: metadata "format" is ${q(meta.format)}, expected ${q(FORMAT_NAME)}`,
    );
  }
  if (meta.format_version !== String(CHECKPOINT_FORMAT_VERSION)) {
    fail(
      where,
      `metadata "format_version" is ${q(meta.format_version ?? "missing")}; this moegrad reads version ` +
        `${CHECKPOINT_FORMAT_VERSION}`,
    );
  }
  for (const key of Object.keys(meta)) if (!META_KEYS.has(key)) fail(where, `unexpected metadata entry ${q(key)}`);
  for (const key of ["step", "config", "checksum"]) {
    if (meta[key] === undefined) fail(where, `metadata has no ${q(key)} entry`);
  }
  if (!/^crc32:[0-9a-f]{8}$/.test(meta.checksum)) {
    fail(where, `metadata "checksum" is ${q(meta.checksum)}, expected crc32: and 8 hex digits`);
  }
  const sum = checkpointChecksum(parsed);
  if (sum !== meta.checksum) {
    fail(where, `checksum mismatch: the file says ${meta.checksum}, its content gives ${sum} (the file is corrupted)`);
  }

  const step = checkStep(where, parseJsonMeta(where, meta, "step"), `metadata "step"`);
  const config = parseJsonMeta(where, meta, "config") as JsonValue;
  let optimizer: CheckpointInfo["optimizer"];
  if (meta.optimizer !== undefined) {
    const o = parseJsonMeta(where, meta, "optimizer");
    if (!isPlainObject(o)) fail(where, `metadata "optimizer" must be an object {step, lr, hyper}`);
    for (const k of Object.keys(o)) {
      if (k !== "step" && k !== "lr" && k !== "hyper") fail(where, `metadata "optimizer" has unknown field ${q(k)}`);
    }
    optimizer = {
      step: checkStep(where, o.step, `metadata "optimizer".step`),
      lr: checkLr(where, o.lr, `metadata "optimizer".lr`),
      hyper: checkHyper(where, o.hyper, `metadata "optimizer".hyper`),
    };
  }
  const generator = meta.generator === undefined
    ? undefined
    : checkGeneratorState(where, parseJsonMeta(where, meta, "generator"), `metadata "generator"`);

  const model: [string, { dtype: DType; shape: number[] }][] = [];
  const optimizerTensors: [string, { dtype: DType; shape: number[] }][] = [];
  for (const [name, view] of Object.entries(parsed.tensors)) {
    const entry = { dtype: view.dtype, shape: view.shape };
    if (name.startsWith("model.")) model.push([name.slice(6), entry]);
    else if (name.startsWith("optim.")) {
      if (!optimizer) fail(where, `tensor ${q(name)} is optimizer state, but the metadata has no "optimizer" entry`);
      optimizerTensors.push([name.slice(6), entry]);
    } else fail(where, `unexpected tensor ${q(name)}: names must start with "model." or "optim."`);
  }
  return {
    parsed,
    info: {
      formatVersion: CHECKPOINT_FORMAT_VERSION,
      step,
      config,
      optimizer,
      generator,
      model: Object.fromEntries(model),
      optimizerTensors: Object.fromEntries(optimizerTensors),
    },
  };
}

/**
 * Checks that `stored` (names → dtype/shape) matches `current` exactly: the same names, and for each the same
 * shape and dtype.
 */
function matchTensors(
  where: string,
  what: string,
  stored: Record<string, { dtype: DType; shape: number[] }>,
  current: Record<string, Tensor>,
): void {
  if (!isPlainObject(current)) fail(where, `the ${what}'s state dict is not an object of tensors`);
  const missing = Object.keys(current).filter((k) => !Object.hasOwn(stored, k));
  if (missing.length) fail(where, `the checkpoint is missing ${what} tensor(s) ${listNames(missing)}`);
  const unexpected = Object.keys(stored).filter((k) => !Object.hasOwn(current, k));
  if (unexpected.length) fail(where, `the checkpoint has unexpected ${what} tensor(s) ${listNames(unexpected)}`);
  for (const [name, s] of Object.entries(stored)) {
    const t = current[name];
    if (t.dtype !== s.dtype || t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i])) {
      fail(
        where,
        `${what} tensor ${q(name)} is ${s.dtype} ${fmtShape(s.shape)} in the checkpoint but ${t.dtype} ` +
          `${fmtShape(t.shape)} in the ${what}`,
      );
    }
  }
}

/**
 * Reads a checkpoint's step, config, format version, optimizer and generator metadata and tensor list,
 * validating the file (structure, metadata, checksum) but loading nothing — e.g. to build the model from the
 * stored config before {@link decodeCheckpoint}.
 */
export function inspectCheckpoint(bytes: Uint8Array): CheckpointInfo {
  return validate(bytes, "inspectCheckpoint").info;
}

/**
 * Restores a checkpoint into `model` (and `optimizer` and `generator` when given) and returns its step and
 * config. Everything is validated first — the file, its metadata and checksum, and that it holds exactly the
 * model's tensors with the model's shapes and dtypes (and the optimizer's, when the optimizer already holds
 * tensor state; a fresh optimizer that creates its state lazily accepts the stored tensors as they are, and
 * every hyperparameter it has must be stored). On any mismatch a {@link CheckpointError} is thrown and nothing has
 * been touched. Then the optimizer, the model and the generator are restored, in that order, with gradient
 * recording off (so `loadStateDict` may `assign_` into parameters). The loaded tensors are handed to
 * `loadStateDict` and not disposed afterwards (a model may keep them).
 */
export function decodeCheckpoint(bytes: Uint8Array, options: DecodeCheckpointOptions): LoadedCheckpoint {
  const where = "decodeCheckpoint";
  const { model, optimizer, generator } = options;
  const { parsed, info } = validate(bytes, where);

  const currentModel = model.stateDict();
  matchTensors(where, "model", info.model, currentModel);
  let currentOpt: OptimizerState | undefined;
  if (optimizer) {
    if (!info.optimizer) fail(where, "an optimizer was given but the checkpoint holds no optimizer state");
    currentOpt = optimizer.stateDict();
    // Every hyperparameter the optimizer has must be stored. The checkpoint may hold more: scalar state that
    // optimizers create lazily (Adam's per-parameter step counts); the optimizer's own loadStateDict, which
    // validates before it changes anything and runs before the model is touched, judges those.
    const want = Object.keys(currentOpt.hyper ?? {}).sort();
    const have = Object.keys(info.optimizer.hyper).sort();
    const absent = want.filter((k) => !(k in info.optimizer!.hyper));
    if (absent.length > 0) {
      fail(
        where,
        `optimizer hyperparameters differ: the checkpoint has ${listNames(have)}, the optimizer ` +
          `${listNames(want)} (a different optimizer type?)`,
      );
    }
    for (const k of want) {
      if (typeof currentOpt.hyper[k] !== typeof info.optimizer.hyper[k]) {
        fail(
          where,
          `optimizer hyperparameter ${q(k)} is a ${typeof info.optimizer.hyper[k]} in the checkpoint but a ` +
            `${typeof currentOpt.hyper[k]} in the optimizer`,
        );
      }
    }
    if (Object.keys(currentOpt.tensors ?? {}).length > 0) {
      matchTensors(where, "optimizer", info.optimizerTensors, currentOpt.tensors);
    }
  }
  if (generator && !info.generator) fail(where, "a generator was given but the checkpoint holds no generator state");

  // Resolve the device name now so that a bad one fails before anything is created.
  const device = typeof options.device === "string" ? getDevice(options.device) : options.device;
  const firstModel = Object.values(currentModel)[0];
  const created: Tensor[] = [];
  const load = (prefix: string, names: string[], current: Record<string, Tensor>) =>
    Object.fromEntries(names.map((name) => {
      const t = tensorFromView(parsed.tensors[prefix + name], device ?? current[name]?.device ?? firstModel?.device);
      created.push(t);
      return [name, t];
    }));
  let modelState: Record<string, Tensor>;
  let optTensors: Record<string, Tensor> | undefined;
  try {
    modelState = load("model.", Object.keys(info.model), currentModel);
    if (optimizer) optTensors = load("optim.", Object.keys(info.optimizerTensors), currentOpt!.tensors ?? {});
  } catch (e) {
    for (const t of created) t.dispose();
    throw new CheckpointError(`${where}: creating the tensors failed: ${(e as Error).message}`, { cause: e });
  }

  noGrad(() => {
    if (optimizer) {
      const o = info.optimizer!;
      optimizer.loadStateDict({ step: o.step, lr: o.lr, hyper: { ...o.hyper }, tensors: optTensors! });
    }
    model.loadStateDict(modelState);
    if (generator) generator.setState({ ...info.generator! });
  });
  return { step: info.step, config: info.config };
}

// ---- files ----------------------------------------------------------------------------------------------

function joinPath(dir: string, name: string): string {
  return dir.endsWith("/") || dir.endsWith("\\") ? dir + name : `${dir}/${name}`;
}

/** Encodes a checkpoint (see {@link encodeCheckpoint}) and writes it to `path` atomically. */
export async function saveCheckpoint(path: string, options: EncodeCheckpointOptions): Promise<void> {
  const bytes = await encodeCheckpoint(options);
  try {
    await writeFileAtomic(path, bytes);
  } catch (e) {
    throw new CheckpointError(`saveCheckpoint: ${(e as Error).message}`, { cause: e });
  }
}

async function readCheckpointFile(path: string, where: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new CheckpointError(`${where}: no checkpoint file at ${path}`, { cause: e });
    }
    throw new CheckpointError(`${where}: cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** Reads the checkpoint at `path` and restores it (see {@link decodeCheckpoint}). Errors name the path. */
export async function loadCheckpoint(path: string, options: DecodeCheckpointOptions): Promise<LoadedCheckpoint> {
  const bytes = await readCheckpointFile(path, "loadCheckpoint");
  try {
    return decodeCheckpoint(bytes, options);
  } catch (e) {
    throw new CheckpointError(`loadCheckpoint(${path}): ${(e as Error).message}`, { cause: e });
  }
}

/** File naming for {@link checkpointPath}, {@link listCheckpoints} and {@link latestCheckpoint}. */
export interface CheckpointNaming {
  /** Text before the step number (default `"step-"`). */
  prefix?: string;
  /** Text after the step number (default `".safetensors"`). */
  suffix?: string;
  /** Minimum digits of the step number, zero-padded (default 6; larger steps simply use more). */
  digits?: number;
}

/** A checkpoint file found in a directory. */
export interface CheckpointFile {
  /** The file's path (the directory joined with the file name). */
  path: string;
  /** The step parsed from the file name. */
  step: number;
}

/** The path of the checkpoint for `step` in `dir`, e.g. `dir/step-000123.safetensors`. */
export function checkpointPath(dir: string, step: number, naming: CheckpointNaming = {}): string {
  checkStep("checkpointPath", step, "step");
  const { prefix = "step-", suffix = ".safetensors", digits = 6 } = naming;
  return joinPath(dir, `${prefix}${String(step).padStart(digits, "0")}${suffix}`);
}

/**
 * The checkpoint files in `dir` (named as {@link checkpointPath} names them), sorted by step, oldest first.
 * Temporary files of unfinished saves and other files are ignored; a missing directory gives an empty list.
 */
export async function listCheckpoints(dir: string, naming: CheckpointNaming = {}): Promise<CheckpointFile[]> {
  const { prefix = "step-", suffix = ".safetensors" } = naming;
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const re = new RegExp(`^${esc(prefix)}(\\d+)${esc(suffix)}$`);
  const found: CheckpointFile[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const m = entry.isFile ? re.exec(entry.name) : null;
      if (m && Number.isSafeInteger(Number(m[1]))) found.push({ path: joinPath(dir, entry.name), step: Number(m[1]) });
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw new CheckpointError(`listCheckpoints: cannot read directory ${dir}: ${(e as Error).message}`, { cause: e });
  }
  return found.sort((a, b) => a.step - b.step || compareCodePoints(a.path, b.path));
}

/**
 * The checkpoint with the highest step in `dir`, or null if there is none (or no such directory) — what a
 * training script resumes from.
 *
 * @example
 * ```ts ignore
 * const latest = await latestCheckpoint("runs/exp1");
 * const start = latest ? (await loadCheckpoint(latest.path, { model, optimizer, generator })).step : 0;
 * ```
 */
export async function latestCheckpoint(dir: string, naming: CheckpointNaming = {}): Promise<CheckpointFile | null> {
  const all = await listCheckpoints(dir, naming);
  return all.length ? all[all.length - 1] : null;
}
