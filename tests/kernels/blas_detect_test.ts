// Native-BLAS detection (kernels/cpu/blas_library.ts): the search logic on fake runtimes (runs anywhere, no
// FFI needed), the `matmul` option's checks, and the real detection in child processes started with and
// without --allow-ffi (needs --allow-run, as `deno task test` grants; the library itself is optional).
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  blasCandidates,
  type BlasHandle,
  type BlasLibrary,
  type BlasProbe,
  detectBlas,
  findBlas,
} from "../../kernels/cpu/blas_library.ts";
import { cpuOptions, setCpuOptions } from "../../mod.ts";

/** A fake library: gemms that must not be called, `close` counted. */
function fakeHandle(path: string, vendor: BlasLibrary["vendor"], closed: string[]): BlasHandle {
  const never = () => assert.fail("detection must not multiply");
  return {
    info: { vendor, path, config: vendor === "OpenBLAS" ? "OpenBLAS 0.0 fake" : "", threadControl: false },
    sgemm: never,
    dgemm: never,
    setThreads: null,
    close: () => closed.push(path),
  };
}

/** A fake runtime: `libs` maps the paths that load to their vendor; every `open` is logged. */
function probe(
  libs: Record<string, BlasLibrary["vendor"]>,
  options: { env?: string; ffi?: boolean; os?: string; arch?: string } = {},
) {
  const opened: string[] = [], closed: string[] = [];
  const p: BlasProbe = {
    os: options.os ?? "linux",
    arch: options.arch ?? "x86_64",
    env: options.env,
    ffiAllowed: () => options.ffi ?? true,
    open(path) {
      opened.push(path);
      const vendor = libs[path];
      if (!vendor) throw new Error(`${path}: cannot open shared object file`);
      return fakeHandle(path, vendor, closed);
    },
  };
  return { p, opened, closed };
}

const PTHREAD = "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0";
const LIBBLAS = "/usr/lib/x86_64-linux-gnu/libblas.so.3";

Deno.test("blasCandidates: OpenBLAS's pthreads build first, libblas.so.3 last and OpenBLAS only, Accelerate on macOS", () => {
  const linux = blasCandidates("linux", "x86_64");
  assert.deepEqual(linux[0], { path: PTHREAD, accept: "any" });
  assert.ok(linux.some((c) => c.path === "libopenblas.so.0"), "the bare soname (the loader's search)");
  assert.deepEqual(linux.filter((c) => c.accept === "openblas").map((c) => c.path.endsWith("libblas.so.3")), [
    true,
    true,
    true,
  ]);
  assert.equal(blasCandidates("linux", "aarch64")[0].path, PTHREAD.replace("x86_64", "aarch64"));
  assert.deepEqual(blasCandidates("darwin", "aarch64").map((c) => c.path), [
    "/System/Library/Frameworks/Accelerate.framework/Accelerate",
  ]);
  assert.deepEqual(blasCandidates("windows", "x86_64"), []);
});

Deno.test("findBlas: the first candidate that loads wins; nothing after it is opened", () => {
  const openmp = PTHREAD.replace("pthread", "openmp");
  const { p, opened } = probe({ [openmp]: "OpenBLAS", "/usr/lib64/libopenblas.so.0": "OpenBLAS" });
  const found = findBlas(p);
  assert.equal(found.handle?.info.path, openmp);
  assert.deepEqual(opened, [PTHREAD, openmp]);
  assert.ok(found.print);
  assert.match(found.message, /^matmul via OpenBLAS \(OpenBLAS 0\.0 fake\) at .*openblas-openmp.*MOEGRAD_BLAS=off/);
});

Deno.test("findBlas: without FFI permission nothing is opened and nothing printed", () => {
  const { p, opened } = probe({ [PTHREAD]: "OpenBLAS" }, { ffi: false });
  const found = findBlas(p);
  assert.equal(found.handle, null);
  assert.equal(found.print, false);
  assert.deepEqual(opened, []);
});

Deno.test("findBlas: a libblas.so.3 that is not OpenBLAS (likely the reference BLAS) is skipped and closed", () => {
  const { p, closed } = probe({ [LIBBLAS]: "CBLAS" });
  const found = findBlas(p);
  assert.equal(found.handle, null);
  assert.deepEqual(closed, [LIBBLAS]);
  assert.match(found.message, /no BLAS library found \(skipped .*libblas\.so\.3: not OpenBLAS.*apt-get install/);
  // …but an OpenBLAS behind the alternatives link is taken.
  assert.equal(findBlas(probe({ [LIBBLAS]: "OpenBLAS" }).p).handle?.info.path, LIBBLAS);
});

Deno.test("findBlas: nothing found on a system without known paths says how to get one", () => {
  const found = findBlas(probe({}, { os: "windows" }).p);
  assert.equal(found.handle, null);
  assert.ok(found.print);
  assert.match(found.message, /^matmul via WebAssembly: no BLAS library found; install OpenBLAS/);
});

Deno.test("findBlas: MOEGRAD_BLAS=off searches nothing; auto searches as if unset", () => {
  const off = probe({ [PTHREAD]: "OpenBLAS" }, { env: "off" });
  assert.deepEqual(findBlas(off.p), {
    handle: null,
    message: "matmul via WebAssembly (MOEGRAD_BLAS=off)",
    print: true,
  });
  assert.deepEqual(off.opened, []);
  assert.equal(findBlas(probe({ [PTHREAD]: "OpenBLAS" }, { env: "auto" }).p).handle?.info.path, PTHREAD);
});

Deno.test("findBlas: MOEGRAD_BLAS=path loads exactly that library (any CBLAS) or throws saying why", () => {
  const mine = "/opt/blis/lib/libblis.so.4";
  const { p, opened } = probe({ [mine]: "CBLAS", [PTHREAD]: "OpenBLAS" }, { env: mine });
  const found = findBlas(p);
  assert.equal(found.handle?.info.path, mine);
  assert.deepEqual(opened, [mine]);
  assert.match(found.message, /^matmul via CBLAS at \/opt\/blis/);
  assert.throws(
    () => findBlas(probe({}, { env: "/nope.so" }).p),
    /MOEGRAD_BLAS=\/nope\.so: cannot use it.*cannot open/,
  );
  assert.throws(() => findBlas(probe({ [mine]: "CBLAS" }, { env: mine, ffi: false }).p), /needs --allow-ffi/);
});

Deno.test("setCpuOptions: matmul takes auto | wasm | blas; a bad value changes nothing", () => {
  const before = cpuOptions();
  assert.equal(before.matmul, "auto");
  assert.throws(() => setCpuOptions({ threads: 1, matmul: "mkl" as "blas" }), RangeError);
  assert.deepEqual(cpuOptions(), before);
  const prev = setCpuOptions({ matmul: "wasm" });
  assert.equal(cpuOptions().matmul, "wasm");
  setCpuOptions(prev);
  assert.deepEqual(cpuOptions(), before);
});

Deno.test({
  name: "setCpuOptions: matmul 'blas' without a library throws with the detection's account",
  // With --allow-ffi and a library the request succeeds (tests/kernels/blas_matmul_test.ts covers that).
  ignore: Deno.permissions.querySync({ name: "ffi" }).state === "granted",
  fn() {
    assert.equal(detectBlas().library, null);
    assert.throws(() => setCpuOptions({ matmul: "blas" }), /needs a BLAS library; detection said: .*no --allow-ffi/);
    assert.equal(cpuOptions().matmul, "auto");
  },
});

// ── The real detection, in child processes ───────────────────────────────────────────────────────────────────

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const canSpawn = Deno.permissions.querySync({ name: "run", command: Deno.execPath() }).state === "granted";

/** Runs tests/helpers/blas_entry.ts with the given permission flags and environment. */
async function child(flags: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--config", `${ROOT}deno.json`, ...flags, `${ROOT}tests/helpers/blas_entry.ts`],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).output();
  const dec = new TextDecoder();
  const stdout = dec.decode(out.stdout), stderr = dec.decode(out.stderr);
  const notes = stderr.split("\n").filter((l) => l.startsWith("moegrad: "));
  return { code: out.code, report: out.code === 0 ? JSON.parse(stdout) : null, stderr, notes };
}

Deno.test({
  name: "detectBlas in a process: silent without --allow-ffi; printed once with it; MOEGRAD_BLAS=off and a bad path",
  ignore: !canSpawn,
  async fn() {
    const plain = await child([]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.deepEqual(plain.notes, [], "no --allow-ffi: nothing printed");
    assert.equal(plain.report.library, null);

    const ffi = await child(["--allow-ffi"]);
    assert.equal(ffi.code, 0, ffi.stderr);
    assert.equal(ffi.notes.length, 1, "printed exactly once");
    if (ffi.report.library) {
      // A library on this machine: the op went through it and agrees with the built-in kernels.
      assert.match(ffi.notes[0], new RegExp(`^moegrad: matmul via ${ffi.report.library.vendor} .*at `));
      assert.ok(ffi.report.maxDiff < 2e-4, `BLAS vs built-in: ${ffi.report.maxDiff}`); // 2·γ_40·40
    } else {
      assert.match(ffi.notes[0], /^moegrad: matmul via WebAssembly: no BLAS library found/);
    }

    const off = await child(["--allow-ffi", "--allow-env=MOEGRAD_BLAS"], { MOEGRAD_BLAS: "off" });
    assert.deepEqual(off.notes, ["moegrad: matmul via WebAssembly (MOEGRAD_BLAS=off)"]);
    assert.equal(off.report.library, null);

    const bad = await child(["--allow-ffi", "--allow-env=MOEGRAD_BLAS"], { MOEGRAD_BLAS: "/nonexistent/libblas.so" });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /MOEGRAD_BLAS=\/nonexistent\/libblas\.so: cannot use it as a CBLAS library/);
  },
});
