/**
 * The safetensors file format (https://github.com/huggingface/safetensors), written and read exactly:
 *
 * ```text
 * 8 bytes   N, the header length: an unsigned 64-bit little-endian integer
 * N bytes   the header: UTF-8 JSON, padded with spaces to a multiple of 8 bytes
 *           { "__metadata__": { "<key>": "<value>", … },
 *             "<name>": { "dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end] }, … }
 * rest      the data: each tensor's elements, row-major, little-endian, at [begin, end) of this section
 * ```
 *
 * moegrad's dtypes map to `F32`, `F64`, `I32` and `BOOL` (one byte per element, 0 or 1). The encoder writes
 * the tensors contiguously in name order (by Unicode code point, which is the UTF-8 byte order) and puts
 * `__metadata__` first when there is any, with keys in the same order; the JSON is compact, as the reference
 * implementation writes it. The decoder accepts any valid layout (the reference writer orders by dtype
 * first) and validates everything before it creates a single tensor: a truncated or corrupted file raises a
 * {@link SafetensorsError} naming the tensor and field at fault, and never loads partially.
 *
 * @module
 */
import { type Device, type DType, Tensor, type TypedArray } from "../../core/mod.ts";
import { fromArray } from "../../core/ops/creation.ts";
import { isPlainObject } from "../../core/guards.ts";

/** A malformed safetensors file, or tensors or metadata that cannot be written as one. */
export class SafetensorsError extends Error {
  /** Creates an error with `message`. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SafetensorsError";
  }
}

/** The largest header the decoder accepts (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

const ST_DTYPE: Readonly<Record<DType, string>> = { f32: "F32", f64: "F64", i32: "I32", bool: "BOOL" };
const FROM_ST: ReadonlyMap<string, DType> = new Map([["F32", "f32"], ["F64", "f64"], ["I32", "i32"], ["BOOL", "bool"]]);
/** Valid safetensors dtypes that moegrad has no tensor type for (named as such in errors). */
const OTHER_ST = new Set([
  "F4",
  "F6_E2M3",
  "F6_E3M2",
  "F8_E4M3",
  "F8_E5M2",
  "F8_E8M0",
  "F16",
  "BF16",
  "I8",
  "I16",
  "I64",
  "U8",
  "U16",
  "U32",
  "U64",
  "C64",
]);
const ITEM_BYTES: Readonly<Record<DType, number>> = { f32: 4, f64: 8, i32: 4, bool: 1 };
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The safetensors name of a moegrad dtype (`f32` → `"F32"`). */
export function safetensorsDType(dtype: DType): string {
  return ST_DTYPE[dtype];
}

/**
 * Orders strings by Unicode code point (the order of their UTF-8 bytes, which Rust's string comparison and
 * so the reference implementation use). JavaScript's default sort compares UTF-16 units, which differs for
 * characters beyond U+FFFF against U+E000–U+FFFF.
 */
export function compareCodePoints(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const ca = a.codePointAt(i)!;
    const cb = b.codePointAt(j)!;
    if (ca !== cb) return ca - cb;
    i += ca > 0xffff ? 2 : 1;
    j += cb > 0xffff ? 2 : 1;
  }
  return (a.length - i) - (b.length - j);
}

/** One tensor of a parsed file: its dtype, shape and a view of its raw little-endian bytes (not a copy). */
export interface SafetensorsView {
  /** The element type. */
  dtype: DType;
  /** The shape, outermost first. */
  shape: number[];
  /** The tensor's bytes inside the file (a view: copy it before the file's buffer is reused). */
  bytes: Uint8Array;
  /** The tensor's `data_offsets`, relative to the start of the data section. */
  dataOffsets: [number, number];
}

/** A parsed and fully validated safetensors file whose tensors have not been created yet. */
export interface ParsedSafetensors {
  /** The tensors by name, each a view into the file. */
  tensors: Record<string, SafetensorsView>;
  /** The `__metadata__` map (empty when the file has none). */
  metadata: Record<string, string>;
  /** The header length N (the data section starts at byte 8 + N). */
  headerLength: number;
}

/** What {@link decodeSafetensors} returns. */
export interface DecodedSafetensors {
  /** The tensors by name. */
  tensors: Record<string, Tensor>;
  /** The `__metadata__` map (empty when the file has none). */
  metadata: Record<string, string>;
}

function fail(where: string, detail: string): never {
  throw new SafetensorsError(`${where}: ${detail}`);
}

function q(s: string): string {
  return JSON.stringify(s);
}

/** The little-endian bytes of a typed array (a view on little-endian hosts, a swapped copy otherwise). */
function littleEndianBytes(dtype: DType, data: TypedArray): Uint8Array {
  if (dtype === "bool") {
    // One byte per element, 0 or 1, whatever the backend keeps in its mask bytes.
    const out = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i++) out[i] = data[i] ? 1 : 0;
    return out;
  }
  if (LITTLE_ENDIAN) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(data.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) {
    if (dtype === "f32") view.setFloat32(i * 4, data[i], true);
    else if (dtype === "f64") view.setFloat64(i * 8, data[i], true);
    else view.setInt32(i * 4, data[i], true);
  }
  return out;
}

/** A new typed array of `dtype` holding the little-endian `bytes` (copied, so alignment does not matter). */
export function typedArrayFromBytes(dtype: DType, bytes: Uint8Array): TypedArray {
  const n = bytes.length / ITEM_BYTES[dtype];
  if (dtype === "bool") return bytes.slice();
  if (LITTLE_ENDIAN) {
    const copy = bytes.slice().buffer;
    return dtype === "f32" ? new Float32Array(copy) : dtype === "f64" ? new Float64Array(copy) : new Int32Array(copy);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === "f32") return Float32Array.from({ length: n }, (_, i) => view.getFloat32(i * 4, true));
  if (dtype === "f64") return Float64Array.from({ length: n }, (_, i) => view.getFloat64(i * 8, true));
  return Int32Array.from({ length: n }, (_, i) => view.getInt32(i * 4, true));
}

/**
 * Serialises tensors (and optional string metadata) into safetensors bytes. Tensor names may be any
 * well-formed Unicode string except `"__metadata__"`. Reads every tensor back from its device, so it is
 * async; the tensors are not modified.
 *
 * @example
 * ```ts
 * import { tensor } from "@moegrad/moegrad";
 * import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
 * const bytes = await encodeSafetensors({ w: tensor([[1, 2], [3, 4]]) }, { note: "hello" });
 * const { tensors, metadata } = decodeSafetensors(bytes);
 * console.log(await tensors.w.array(), metadata.note); // [[1, 2], [3, 4]] "hello"
 * ```
 */
export async function encodeSafetensors(
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
): Promise<Uint8Array> {
  const where = "encodeSafetensors";
  if (!isPlainObject(tensors)) fail(where, "tensors must be an object mapping names to tensors");
  const names = Object.keys(tensors);
  for (const name of names) {
    const t = tensors[name];
    if (name === "__metadata__") fail(where, `"__metadata__" is reserved for the metadata and cannot name a tensor`);
    if (!name.isWellFormed()) fail(where, `tensor name ${q(name)} is not well-formed Unicode (lone surrogate)`);
    if (!(t instanceof Tensor)) fail(where, `tensor ${q(name)} is not a Tensor`);
    if (t.isDisposed) fail(where, `tensor ${q(name)} has been disposed`);
    if (!(t.dtype in ST_DTYPE)) fail(where, `tensor ${q(name)} has unsupported dtype ${q(t.dtype)}`);
  }
  let metaJson: string | undefined;
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) fail(where, "metadata must be an object mapping strings to strings");
    const keys = Object.keys(metadata).sort(compareCodePoints);
    for (const k of keys) {
      if (typeof metadata[k] !== "string") {
        fail(where, `metadata ${q(k)} must be a string, got ${typeof metadata[k]}`);
      }
      if (!k.isWellFormed() || !metadata[k].isWellFormed()) {
        fail(where, `metadata ${q(k)} is not well-formed Unicode (lone surrogate)`);
      }
    }
    metaJson = `{${keys.map((k) => `${q(k)}:${q(metadata[k])}`).join(",")}}`;
  }

  names.sort(compareCodePoints);
  const entries: string[] = metaJson === undefined ? [] : [`"__metadata__":${metaJson}`];
  const offsets: number[] = [];
  let total = 0;
  for (const name of names) {
    const t = tensors[name];
    const nbytes = t.size * ITEM_BYTES[t.dtype];
    offsets.push(total);
    const info = `{"dtype":${q(ST_DTYPE[t.dtype])},"shape":[${t.shape.join(",")}],"data_offsets":[${total},${
      total + nbytes
    }]}`;
    entries.push(`${q(name)}:${info}`);
    total += nbytes;
  }
  const json = new TextEncoder().encode(`{${entries.join(",")}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + total);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength); // space padding, as the reference implementation writes
  const dataStart = 8 + headerLength;
  for (let i = 0; i < names.length; i++) {
    const t = tensors[names[i]];
    const data = await t.data();
    if (data.length !== t.size) fail(where, `tensor ${q(names[i])}: the device returned ${data.length} elements`);
    out.set(littleEndianBytes(t.dtype, data), dataStart + offsets[i]);
  }
  return out;
}

function checkInt(where: string, v: unknown, field: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    fail(where, `${field} must be a non-negative integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * Parses and validates safetensors bytes without creating any tensor: the header length, the UTF-8 JSON,
 * every entry's dtype, shape and offsets (each tensor's byte count must match its shape, and together the
 * tensors must tile the data section exactly: no overlap, no gap, nothing after the last one) and the BOOL
 * bytes (each 0 or 1). The views share the input buffer.
 */
export function parseSafetensors(bytes: Uint8Array, where = "decodeSafetensors"): ParsedSafetensors {
  if (!(bytes instanceof Uint8Array)) fail(where, "expected a Uint8Array");
  if (bytes.length < 8) {
    fail(where, `file is ${bytes.length} bytes, shorter than the 8-byte header length field (truncated?)`);
  }
  const n64 = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(bytes.length - 8)) {
    fail(where, `header length ${n64} runs past the end of the file (${bytes.length - 8} bytes follow it; truncated?)`);
  }
  const headerLength = Number(n64);
  if (headerLength > MAX_HEADER_BYTES) fail(where, `header length ${headerLength} exceeds ${MAX_HEADER_BYTES} bytes`);
  if (headerLength < 2) fail(where, `header length ${headerLength} is too small to hold a JSON object`);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    fail(where, "header is not valid UTF-8");
  }
  if (text[0] !== "{") fail(where, `header must start with "{", got ${q(text.slice(0, 16))}`);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(where, `header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(header)) fail(where, "header must be a JSON object");

  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const metadata: [string, string][] = [];
  const infos: { name: string; dtype: DType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (!isPlainObject(info)) fail(where, `"__metadata__" must be an object of strings`);
      for (const [k, v] of Object.entries(info)) {
        if (typeof v !== "string") {
          fail(where, `"__metadata__" entry ${q(k)} must be a string, got ${JSON.stringify(v)}`);
        }
        metadata.push([k, v]);
      }
      continue;
    }
    const at = `tensor ${q(name)}`;
    if (!isPlainObject(info)) fail(where, `${at}: entry must be an object with dtype, shape and data_offsets`);
    for (const key of Object.keys(info)) {
      if (key !== "dtype" && key !== "shape" && key !== "data_offsets") fail(where, `${at}: unknown field ${q(key)}`);
    }
    const st = info.dtype;
    if (typeof st !== "string") fail(where, `${at}: "dtype" must be a string, got ${JSON.stringify(st)}`);
    const dtype = FROM_ST.get(st);
    if (!dtype) {
      fail(
        where,
        OTHER_ST.has(st)
          ? `${at}: dtype ${q(st)} is not supported by moegrad (supported: F32, F64, I32, BOOL)`
          : `${at}: unknown dtype ${q(st)} (supported: F32, F64, I32, BOOL)`,
      );
    }
    const shape = info.shape;
    if (!Array.isArray(shape)) fail(where, `${at}: "shape" must be an array, got ${JSON.stringify(shape)}`);
    let size = 1;
    shape.forEach((d, i) => {
      checkInt(where, d, `${at}: "shape"[${i}]`);
      size *= d;
    });
    const offs = info.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2) {
      fail(where, `${at}: "data_offsets" must be [begin, end], got ${JSON.stringify(offs)}`);
    }
    const begin = checkInt(where, offs[0], `${at}: "data_offsets"[0]`);
    const end = checkInt(where, offs[1], `${at}: "data_offsets"[1]`);
    if (end < begin) fail(where, `${at}: "data_offsets" [${begin}, ${end}] end before they begin`);
    const expected = size * ITEM_BYTES[dtype];
    if (!Number.isSafeInteger(expected) || expected !== end - begin) {
      fail(
        where,
        `${at}: shape [${shape.join(", ")}] of ${st} needs ${expected} bytes but "data_offsets" [${begin}, ${end}] ` +
          `span ${end - begin}`,
      );
    }
    if (end > dataLength) {
      fail(
        where,
        `${at}: "data_offsets" [${begin}, ${end}] are out of range: the data section holds ${dataLength} bytes ` +
          `(truncated?)`,
      );
    }
    infos.push({ name, dtype, shape: shape as number[], begin, end });
  }

  // The tensors must tile the data section: sorted by offset, each begins where the previous one ends.
  const byOffset = [...infos].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev: string | undefined;
  for (const t of byOffset) {
    if (t.begin < cursor) {
      fail(where, `tensor ${q(t.name)}: "data_offsets" [${t.begin}, ${t.end}] overlap tensor ${q(prev!)}`);
    }
    if (t.begin > cursor) {
      fail(
        where,
        `tensor ${q(t.name)}: "data_offsets" [${t.begin}, ${t.end}] leave a gap of ${t.begin - cursor} bytes ` +
          `after ${prev === undefined ? "the start of the data section" : `tensor ${q(prev)}`}`,
      );
    }
    cursor = t.end;
    prev = t.name;
  }
  if (cursor !== dataLength) {
    fail(where, `${dataLength - cursor} bytes of trailing garbage after the last tensor (data ends at ${cursor})`);
  }

  const views: [string, SafetensorsView][] = [];
  for (const t of infos) {
    const view = bytes.subarray(dataStart + t.begin, dataStart + t.end);
    if (t.dtype === "bool") {
      const bad = view.findIndex((b) => b > 1);
      if (bad >= 0) fail(where, `tensor ${q(t.name)}: BOOL element ${bad} is ${view[bad]}, not 0 or 1`);
    }
    views.push([t.name, { dtype: t.dtype, shape: t.shape, bytes: view, dataOffsets: [t.begin, t.end] }]);
  }
  // fromEntries defines own properties, so a tensor named "__proto__" stays an ordinary entry.
  return { tensors: Object.fromEntries(views), metadata: Object.fromEntries(metadata), headerLength };
}

/** Creates the tensor a {@link SafetensorsView} describes (its bytes are copied) on `device`. */
export function tensorFromView(view: SafetensorsView, device?: Device | string): Tensor {
  return fromArray(typedArrayFromBytes(view.dtype, view.bytes), view.shape, view.dtype, device);
}

/**
 * Reads safetensors bytes into tensors on `device` (default: the default device). Validates the whole file
 * first (see {@link parseSafetensors}); on any error it throws a {@link SafetensorsError} and creates nothing.
 * The file's data is copied, so `bytes` may be reused afterwards.
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  options: { device?: Device | string } = {},
): DecodedSafetensors {
  const parsed = parseSafetensors(bytes);
  const created: [string, Tensor][] = [];
  try {
    for (const [name, view] of Object.entries(parsed.tensors)) {
      created.push([name, tensorFromView(view, options.device)]);
    }
  } catch (e) {
    // E.g. a device that cannot hold a dtype: free what was created, so nothing loads partially.
    for (const [, t] of created) t.dispose();
    throw e;
  }
  return { tensors: Object.fromEntries(created), metadata: parsed.metadata };
}
