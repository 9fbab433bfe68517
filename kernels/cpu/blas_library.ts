/**
 * Finding and loading a native BLAS (OpenBLAS on Linux, Accelerate on macOS) through Deno FFI, so that the
 * CPU matmul can use it where the machine has one. Nothing here runs until a matmul (or {@link detectBlas})
 * asks, and nothing is loaded unless the process was started with `--allow-ffi`: without it the CPU backend
 * stays on its WebAssembly kernel, which needs nothing installed.
 *
 * Detection order: `MOEGRAD_BLAS` when the process may read it (`off`: never; `auto` or unset: search; any
 * other value: the path of a library exporting `cblas_sgemm`/`cblas_dgemm`, an error if it cannot be
 * loaded), then the known paths of {@link blasCandidates}. The outcome is printed once to stderr when FFI is
 * granted or the variable is set, and kept for the life of the process.
 *
 * The search logic ({@link findBlas}) takes its view of the runtime as a {@link BlasProbe}, so tests can
 * drive it with fakes on a machine without FFI or a library.
 *
 * @module
 */

/** A library {@link detectBlas} found: what it is and where. */
export interface BlasLibrary {
  /** `OpenBLAS`, `Accelerate`, or `CBLAS` (another library exporting the CBLAS gemms, named by MOEGRAD_BLAS). */
  vendor: "OpenBLAS" | "Accelerate" | "CBLAS";
  /** The path (or bare soname) it was loaded from. */
  path: string;
  /** The build description the library reports (OpenBLAS's `openblas_get_config()`), else "". */
  config: string;
  /** Whether its thread count follows `cpuOptions().threads` (OpenBLAS); otherwise the library decides. */
  threadControl: boolean;
}

/** The outcome of {@link detectBlas}. */
export interface BlasDetection {
  /** The library matmuls may use, or null (they stay on the built-in kernels). */
  library: BlasLibrary | null;
  /** The one-line account printed at detection (without the `moegrad: ` prefix). */
  message: string;
}

/** Row-major `cblas_?gemm(order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)`. */
export type Gemm<A extends Float32Array | Float64Array> = (
  order: number,
  transA: number,
  transB: number,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: A,
  lda: number,
  b: A,
  ldb: number,
  beta: number,
  c: A,
  ldc: number,
) => void;

/** A loaded library: its description and the calls the matmul kernel makes. */
export interface BlasHandle {
  info: BlasLibrary;
  sgemm: Gemm<Float32Array>;
  dgemm: Gemm<Float64Array>;
  /** Sets the library's thread count; null when it has no such call. */
  setThreads: ((n: number) => void) | null;
  close(): void;
}

/** A place to look, and whether any CBLAS found there will do or only one that identifies as OpenBLAS. */
export interface BlasCandidate {
  path: string;
  /** `any`: use whatever CBLAS is there; `openblas`: skip it unless it is OpenBLAS (see {@link blasCandidates}). */
  accept: "any" | "openblas";
}

/** The runtime as {@link findBlas} sees it. */
export interface BlasProbe {
  os: string;
  arch: string;
  /** MOEGRAD_BLAS if the process may read it and it is set, else undefined. */
  env: string | undefined;
  /** Whether FFI may load `path`, or any library when `path` is omitted (never prompts). */
  ffiAllowed(path?: string): boolean;
  /** Loads the library at `path`; throws when it is missing or lacks `cblas_sgemm`/`cblas_dgemm`. */
  open(path: string): BlasHandle;
}

/**
 * Where to look, best first. Linux: Debian/Ubuntu's OpenBLAS builds (pthreads first: the OpenMP build's
 * idle threads spin under OpenMP's rules, which nothing here controls; the serial build ignores the thread
 * count), the alternatives link, Fedora's and other distributions' names, a source install, the bare soname
 * (the loader's own search: LD_LIBRARY_PATH, ld.so.cache), and finally `libblas.so.3`, but only when it is
 * OpenBLAS: the reference (netlib) BLAS that may sit there is slower than the WebAssembly kernel. macOS:
 * Accelerate, which every Mac has. Other systems: none (MOEGRAD_BLAS can name one).
 */
export function blasCandidates(os: string, arch: string): BlasCandidate[] {
  if (os === "darwin") {
    return [{ path: "/System/Library/Frameworks/Accelerate.framework/Accelerate", accept: "any" }];
  }
  if (os !== "linux") return [];
  const triple = `/usr/lib/${arch}-linux-gnu`;
  const any = (path: string): BlasCandidate => ({ path, accept: "any" });
  const openblasOnly = (path: string): BlasCandidate => ({ path, accept: "openblas" });
  return [
    any(`${triple}/openblas-pthread/libopenblas.so.0`),
    any(`${triple}/openblas-openmp/libopenblas.so.0`),
    any(`${triple}/openblas-serial/libopenblas.so.0`),
    any(`${triple}/libopenblas.so.0`),
    any("/usr/lib64/libopenblasp.so.0"),
    any("/usr/lib64/libopenblaso.so.0"),
    any("/usr/lib64/libopenblas.so.0"),
    any("/usr/lib/libopenblas.so.0"),
    any("/usr/local/lib/libopenblas.so.0"),
    any("libopenblas.so.0"),
    openblasOnly(`${triple}/libblas.so.3`),
    openblasOnly("/usr/lib64/libblas.so.3"),
    openblasOnly("/usr/lib/libblas.so.3"),
  ];
}

const HOW_TO_INSTALL = "install OpenBLAS (Debian/Ubuntu: apt-get install libopenblas0-pthread) or set " +
  "MOEGRAD_BLAS=/path/to/libopenblas.so.0";

function describe(lib: BlasLibrary): string {
  const what = lib.config ? `${lib.vendor} (${lib.config})` : lib.vendor;
  return `matmul via ${what} at ${lib.path}; setCpuOptions({ matmul: "wasm" }) or MOEGRAD_BLAS=off for WebAssembly`;
}

/**
 * The detection itself (see the module doc), on a given runtime view. Returns the open handle (the caller
 * keeps it) or null, with the message to print; `print` is false when there is nothing worth saying (no FFI
 * permission and no MOEGRAD_BLAS: the default, silent WebAssembly path). Throws when MOEGRAD_BLAS names a
 * library that cannot be used: an explicit request is not silently ignored.
 */
export function findBlas(probe: BlasProbe): { handle: BlasHandle | null; message: string; print: boolean } {
  const env = probe.env?.trim();
  if (env === "off") return { handle: null, message: "matmul via WebAssembly (MOEGRAD_BLAS=off)", print: true };
  if (env && env !== "auto") {
    if (!probe.ffiAllowed(env)) {
      throw new Error(`MOEGRAD_BLAS=${env} needs --allow-ffi (or unset it, or set MOEGRAD_BLAS=off)`);
    }
    let handle: BlasHandle;
    try {
      handle = probe.open(env);
    } catch (e) {
      throw new Error(
        `MOEGRAD_BLAS=${env}: cannot use it as a CBLAS library (${(e as Error).message}); ` +
          "name a library exporting cblas_sgemm and cblas_dgemm, or set MOEGRAD_BLAS=off",
      );
    }
    return { handle, message: describe(handle.info), print: true };
  }
  const candidates = blasCandidates(probe.os, probe.arch);
  const allowed = candidates.filter((c) => probe.ffiAllowed(c.path));
  // No place to look is still worth a note (with a way out) when FFI is granted at all.
  if (candidates.length ? allowed.length === 0 : !probe.ffiAllowed()) {
    return { handle: null, message: "matmul via WebAssembly (no --allow-ffi: native BLAS not searched)", print: false };
  }
  const skipped: string[] = [];
  for (const c of allowed) {
    let handle: BlasHandle;
    try {
      handle = probe.open(c.path);
    } catch {
      continue; // not there, or not a CBLAS: try the next place
    }
    if (c.accept === "openblas" && handle.info.vendor !== "OpenBLAS") {
      skipped.push(c.path);
      handle.close();
      continue;
    }
    return { handle, message: describe(handle.info), print: true };
  }
  const note = skipped.length ? ` (skipped ${skipped.join(", ")}: not OpenBLAS, likely the slow reference BLAS)` : "";
  return {
    handle: null,
    message: `matmul via WebAssembly: no BLAS library found${note}; ${HOW_TO_INSTALL}`,
    print: true,
  };
}

const GEMM_INTS = ["i32", "i32", "i32", "i32", "i32", "i32"] as const;
/** The symbols bound from the library; the optional ones identify OpenBLAS and set its thread count. */
const SYMBOLS = {
  cblas_sgemm: {
    parameters: [...GEMM_INTS, "f32", "buffer", "i32", "buffer", "i32", "f32", "buffer", "i32"],
    result: "void",
  },
  cblas_dgemm: {
    parameters: [...GEMM_INTS, "f64", "buffer", "i32", "buffer", "i32", "f64", "buffer", "i32"],
    result: "void",
  },
  openblas_get_config: { parameters: [], result: "pointer", optional: true },
  openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
} as const;

/** Loads `path` with Deno FFI (see {@link BlasProbe.open}). */
export function openBlas(path: string): BlasHandle {
  const lib = Deno.dlopen(path, SYMBOLS);
  const s = lib.symbols;
  const configPtr = s.openblas_get_config?.() ?? null;
  const config = configPtr ? new Deno.UnsafePointerView(configPtr).getCString() : "";
  const vendor = s.openblas_get_config ? "OpenBLAS" : path.includes("Accelerate.framework") ? "Accelerate" : "CBLAS";
  const setThreads = s.openblas_set_num_threads;
  return {
    info: { vendor, path, config, threadControl: setThreads !== null },
    sgemm: s.cblas_sgemm,
    dgemm: s.cblas_dgemm,
    setThreads: setThreads ? (n) => setThreads(n) : null,
    close: () => lib.close(),
  };
}

/** The real runtime: Deno's permissions, `MOEGRAD_BLAS` and FFI. */
function denoProbe(): BlasProbe {
  const granted = (d: Deno.PermissionDescriptor) => Deno.permissions.querySync(d).state === "granted";
  return {
    os: Deno.build.os,
    arch: Deno.build.arch,
    // Without --allow-env for this variable it is treated as unset rather than prompting.
    env: granted({ name: "env", variable: "MOEGRAD_BLAS" }) ? Deno.env.get("MOEGRAD_BLAS") : undefined,
    ffiAllowed: (path) => granted(path === undefined ? { name: "ffi" } : { name: "ffi", path }),
    open: openBlas,
  };
}

let detected: { handle: BlasHandle | null; detection: BlasDetection } | null = null;

/**
 * Detects a native BLAS once per process (see the module doc) and returns what was found, printing the
 * outcome to stderr the first time (unless there was nothing to say: no `--allow-ffi` and no MOEGRAD_BLAS).
 * Throws if MOEGRAD_BLAS names a library that cannot be used.
 *
 * @example
 * ```ts
 * import { detectBlas } from "@moegrad/moegrad";
 * const { library } = detectBlas(); // null without --allow-ffi
 * console.log(library ? `${library.vendor} at ${library.path}` : "WebAssembly matmul");
 * ```
 */
export function detectBlas(): BlasDetection {
  if (detected === null) {
    const found = findBlas(denoProbe());
    detected = { handle: found.handle, detection: { library: found.handle?.info ?? null, message: found.message } };
    if (found.print) console.error(`moegrad: ${found.message}`);
  }
  return { ...detected.detection };
}

/** The loaded library, detecting it on first use; null when there is none. */
export function blasHandle(): BlasHandle | null {
  if (detected === null) detectBlas();
  return detected!.handle;
}
