/**
 * Result files of experiments: atomic text/JSON writes (temporary file, fsync, rename, via {@link writeFileAtomic}
 * of `nn/io/atomic.ts`), append-only JSONL metrics that survive a kill mid-line, and a record of the environment
 * a run used.
 *
 * JSONL convention: every record is one line ending in `\n`. A kill during {@link appendJsonl} can leave a
 * final line without its `\n` (a torn line): {@link readJsonl} ignores it, and the next {@link appendJsonl}
 * first cuts it off, so the file stays a valid JSONL file.
 *
 * @module
 */
import { cpus } from "node:os";
import { dirname, writeFileAtomic } from "../../nn/io/atomic.ts";
import denoJson from "../../deno.json" with { type: "json" };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Joins path segments with `/` (no normalisation beyond dropping duplicate separators at the joins). */
export function joinPath(...parts: string[]): string {
  return parts.filter((p) => p !== "").map((p, i) => (i === 0 ? p.replace(/\/+$/, "") : p.replace(/^\/+|\/+$/g, "")))
    .join("/") || ".";
}

/** Creates `dir` and its parents (no error if it exists). */
export async function ensureDir(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
}

/** Writes `text` (UTF-8) to `path` atomically, creating the parent folders. */
export async function writeTextAtomic(path: string, text: string): Promise<void> {
  await ensureDir(dirname(path));
  await writeFileAtomic(path, encoder.encode(text));
}

/** Writes `value` as pretty JSON (2-space indent, trailing newline) to `path` atomically. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeTextAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/** Writes `records` as JSONL (one compact JSON per line) to `path` atomically, replacing the file. */
export async function writeJsonlAtomic(path: string, records: readonly unknown[]): Promise<void> {
  await writeTextAtomic(path, records.map((r) => jsonLine(r)).join(""));
}

function jsonLine(record: unknown): string {
  const s = JSON.stringify(record);
  if (s === undefined) throw new TypeError(`cannot write ${String(record)} as a JSON line`);
  return s + "\n";
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Cuts a torn final line (one without its `\n`, left by a kill mid-write) off `path`. A final line that is
 * complete JSON but lacks only the newline is kept and terminated instead (it was written in full).
 */
async function repairTail(path: string): Promise<void> {
  const file = await Deno.open(path, { read: true, write: true });
  try {
    const size = (await file.stat()).size;
    if (size === 0) return;
    await file.seek(size - 1, Deno.SeekMode.Start);
    const last = new Uint8Array(1);
    await file.read(last);
    if (last[0] === 0x0a) return;
    // Rare path: read the whole file to find the start of the final line.
    const bytes = await Deno.readFile(path);
    const start = bytes.lastIndexOf(0x0a) + 1;
    const tail = decoder.decode(bytes.subarray(start));
    let complete = false;
    try {
      JSON.parse(tail);
      complete = tail.trim() !== "";
    } catch { /* torn */ }
    if (complete) {
      await file.seek(0, Deno.SeekMode.End);
      await file.write(encoder.encode("\n"));
    } else {
      await file.truncate(start);
    }
  } finally {
    file.close();
  }
}

/**
 * Appends one record as a JSON line to `path` (created with its parent folders if missing) and syncs it.
 * A torn final line left by an earlier kill is cut off first (see the module documentation).
 */
export async function appendJsonl(path: string, record: unknown): Promise<void> {
  const line = encoder.encode(jsonLine(record));
  if (await exists(path)) await repairTail(path);
  else await ensureDir(dirname(path));
  const file = await Deno.open(path, { append: true, create: true });
  try {
    for (let off = 0; off < line.length;) off += await file.write(line.subarray(off));
    await file.sync();
  } finally {
    file.close();
  }
}

/**
 * Reads a JSONL file: one parsed value per non-empty line. A final line without its `\n` that does not parse is
 * a torn write and is ignored; a bad line anywhere else is an error naming the line. A missing file reads as `[]`.
 */
export async function readJsonl<T = unknown>(path: string): Promise<T[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return parseJsonl<T>(text, path);
}

/** Parses JSONL text (see {@link readJsonl}); `name` is used in error messages. */
export function parseJsonl<T = unknown>(text: string, name = "JSONL"): T[] {
  const lines = text.split("\n");
  const out: T[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    const isLast = i === lines.length - 1; // no "\n" after it
    try {
      out.push(JSON.parse(line) as T);
    } catch (e) {
      if (isLast) return; // torn final line
      throw new SyntaxError(`${name}: line ${i + 1} is not valid JSON (${(e as Error).message})`);
    }
  });
  return out;
}

function granted(desc: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(desc).state === "granted";
  } catch {
    return false;
  }
}

function readTextSync(path: string): string | undefined {
  if (!granted({ name: "read", path })) return undefined;
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

function cpuModel(): string {
  // `os.cpus()` needs only `--allow-sys=cpus` (the experiment tasks grant it); Deno 2 treats /proc/cpuinfo as a
  // special file that only --allow-all may read, so it is the fallback.
  if (granted({ name: "sys", kind: "cpus" })) {
    try {
      const model = cpus()[0]?.model?.trim();
      if (model) return model;
    } catch { /* fall through */ }
  }
  const info = readTextSync("/proc/cpuinfo");
  const m = info?.match(/^model name\s*:\s*(.+)$/m);
  return m ? m[1].trim() : "unknown";
}

/** The git commit of the checkout, read from `.git/` without a subprocess; "unknown" when not readable. */
function gitCommit(): string {
  const root = new URL("../../", import.meta.url);
  if (root.protocol !== "file:") return "unknown";
  const git = decodeURIComponent(root.pathname) + ".git/";
  const head = readTextSync(git + "HEAD")?.trim();
  if (!head) return "unknown";
  if (/^[0-9a-f]{40}$/.test(head)) return head;
  const ref = head.match(/^ref:\s*(.+)$/)?.[1];
  if (!ref) return "unknown";
  const direct = readTextSync(git + ref)?.trim();
  if (direct && /^[0-9a-f]{40}$/.test(direct)) return direct;
  const packed = readTextSync(git + "packed-refs");
  const line = packed?.split("\n").find((l) => l.endsWith(" " + ref));
  return line ? line.slice(0, 40) : "unknown";
}

/** The adapter fields of a WebGPU device (`GPUAdapterInfo`'s identifying strings). */
export interface AdapterFields {
  /** Vendor. */
  vendor: string;
  /** Architecture. */
  architecture: string;
  /** Device. */
  device: string;
  /** Driver description. */
  description: string;
}

/** The device an env record describes: a selected `Device` (a WebGPU one carries its runtime) or a name. */
export interface EnvDevice {
  /** `cpu`, `webgpu`, or a requested `auto` not resolved in this process. */
  name: string;
  /** An explicit adapter description (wins over `runtime`). */
  adapter?: string;
  /** A WebGPU device's runtime, whose adapter info is recorded. */
  runtime?: { adapterInfo?: Partial<AdapterFields> };
}

function adapterOf(device: EnvDevice): string | AdapterFields {
  if (device.adapter) return device.adapter;
  const info = device.runtime?.adapterInfo;
  if (info) {
    return {
      vendor: info.vendor ?? "",
      architecture: info.architecture ?? "",
      device: info.device ?? "",
      description: info.description ?? "",
    };
  }
  // A name without a runtime: this process did not open the device (an experiment's top level; each run records
  // the device and adapter it opened in its own env.json).
  return device.name === "cpu" ? "none" : "not opened in this process (see each run's env.json)";
}

/**
 * What a run ran on: Deno/V8/TypeScript versions, OS, arch, CPU model (`os.cpus()` with `--allow-sys=cpus`, else
 * `/proc/cpuinfo` when readable), logical cores, the device and its WebGPU adapter (vendor, architecture, device,
 * description; "none" on the CPU), the moegrad version and the git commit (read from `.git/`, no subprocess).
 * Never throws: a value that needs a missing permission is `"unknown"`.
 */
export function environmentInfo(device: EnvDevice): Record<string, unknown> {
  return {
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    os: Deno.build.os,
    arch: Deno.build.arch,
    cpu: cpuModel(),
    cores: typeof navigator !== "undefined" ? navigator.hardwareConcurrency ?? "unknown" : "unknown",
    device: device.name,
    adapter: adapterOf(device),
    moegrad: (denoJson as { version?: string }).version ?? "unknown",
    gitCommit: gitCommit(),
    recordedAt: new Date().toISOString(),
  };
}
