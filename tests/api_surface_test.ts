/**
 * The package's API surface. `mod.ts` (the root) and `internals.ts` (`@moegrad/moegrad/internals`) export exactly
 * the names pinned in `tests/api_surface_lists.ts`; the engine's internals are exported from the sub-path and not
 * from the root; every name the library's barrels export is reachable from one of the two; and the root's
 * overview lists every registered estimator with the class it builds.
 *
 * Run-time exports (classes, functions, constants) are compared without permissions; type-only exports need
 * `deno doc` (a subprocess), so that half runs under `deno task test` (and is skipped without `--allow-run`).
 */
import assert from "node:assert/strict";
import * as root from "../mod.ts";
import * as internals from "../internals.ts";
import { INTERNAL_API, PUBLIC_API } from "./api_surface_lists.ts";

const LISTS = "tests/api_surface_lists.ts";
const ENTRY_POINTS = [
  { file: "mod.ts", list: "PUBLIC_API", pinned: PUBLIC_API, module: root as Record<string, unknown> },
  { file: "internals.ts", list: "INTERNAL_API", pinned: INTERNAL_API, module: internals as Record<string, unknown> },
] as const;

/**
 * The library's barrels: the modules that `nn/`, `moe/`, `core/` and `kernels/` add names to. Each of their names
 * must be exported from the root or from internals, so a new one cannot be left out of both by accident.
 */
const BARRELS: Record<string, Record<string, unknown>> = {
  "core/mod.ts": await import("../core/mod.ts"),
  "nn/mod.ts": await import("../nn/mod.ts"),
  "nn/optim/mod.ts": await import("../nn/optim/mod.ts"),
  "nn/checkpoint/mod.ts": await import("../nn/checkpoint/mod.ts"),
  "nn/data/mod.ts": await import("../nn/data/mod.ts"),
  "moe/mod.ts": await import("../moe/mod.ts"),
  "kernels/registry.ts": await import("../kernels/registry.ts"),
  "kernels/select.ts": await import("../kernels/select.ts"),
  "kernels/webgpu/mod.ts": await import("../kernels/webgpu/mod.ts"),
};

/** Engine internals that must never be exported from the root (a sample of INTERNAL_API, named in the issue). */
const ENGINE_INTERNALS = [
  "Storage",
  "Node",
  "WebGpuRuntime",
  "webGpuBackend",
  "registerDevice",
  "KERNEL_NAMES",
  "type Backend",
  "type KernelDefs",
  "type KernelName",
  "type KernelTable",
  "type KernelImpl",
  "type TensorRef",
  "type GpuBuffer",
  "type DispatchSpec",
  "type RuntimeStats",
];

/**
 * The public types that reference an internal type: the documented ways from the root into the engine. A new one
 * means the root's API leaks an internal type; export that type from the root instead, or keep it out of the
 * public signature.
 */
const ROOT_REFERENCES_TO_INTERNALS = [
  "Device.prototype.backend -> Backend",
  "Tensor.prototype.node -> Node",
  "Tensor.prototype.storage -> Storage",
  'WebGpuDevice["runtime"] -> WebGpuRuntime',
];

const bare = (entry: string) => entry.replace(/^type /, "");
const isType = (entry: string) => entry.startsWith("type ");
/** The lists' order: by name ignoring case, then by name. */
const byName = (a: string, b: string) => {
  const [x, y] = [bare(a), bare(b)];
  const [lx, ly] = [x.toLowerCase(), y.toLowerCase()];
  return lx < ly ? -1 : lx > ly ? 1 : x < y ? -1 : x > y ? 1 : 0;
};

/** Why `actual` differs from the pinned list `list` of `file`, or null when they agree. */
function surfaceDiff(file: string, list: string, actual: readonly string[], pinned: readonly string[]): string | null {
  const [have, want] = [new Set(actual), new Set(pinned)];
  const added = [...have].filter((n) => !want.has(n)).sort(byName);
  const removed = [...want].filter((n) => !have.has(n)).sort(byName);
  if (added.length === 0 && removed.length === 0) return null;
  const lines = (names: string[]) => names.map((n) => `    ${JSON.stringify(n)},`).join("\n");
  return [
    `${file}'s exports differ from ${list} in ${LISTS}. If the change is intended, edit the list; if not, ${file}.`,
    ...(added.length ? [`  exported by ${file} but not in ${list} (${added.length}):\n${lines(added)}`] : []),
    ...(removed.length ? [`  in ${list} but not exported by ${file} (${removed.length}):\n${lines(removed)}`] : []),
  ].join("\n");
}

Deno.test("the pinned export lists are sorted by name, without duplicates, and share no name", () => {
  for (const { list, pinned } of ENTRY_POINTS) {
    const sorted = [...pinned].sort(byName);
    const firstOff = pinned.findIndex((n, i) => n !== sorted[i]);
    assert.equal(
      firstOff,
      -1,
      `${list} in ${LISTS} is not sorted: ${JSON.stringify(pinned[firstOff])} is out of place`,
    );
    const seen = new Set<string>();
    for (const n of pinned) {
      assert.ok(/^(type )?[A-Za-z_$][\w$]*$/.test(n), `${list}: ${JSON.stringify(n)} is not "Name" or "type Name"`);
      assert.ok(!seen.has(bare(n)), `${list} lists ${bare(n)} twice`);
      seen.add(bare(n));
    }
  }
  const publicNames = new Set(PUBLIC_API.map(bare));
  const both = INTERNAL_API.map(bare).filter((n) => publicNames.has(n));
  assert.deepEqual(both, [], `names in both PUBLIC_API and INTERNAL_API (each belongs to one entry point)`);
});

Deno.test("mod.ts and internals.ts export exactly the pinned run-time names (classes, functions, constants)", () => {
  for (const { file, list, pinned, module } of ENTRY_POINTS) {
    const diff = surfaceDiff(file, list, Object.keys(module), pinned.filter((n) => !isType(n)));
    assert.equal(diff, null, diff ?? "");
  }
});

Deno.test("engine internals (Storage, Node, WebGpuRuntime, the kernel registry…) come from internals.ts, not mod.ts", () => {
  const pinnedPublic = new Set(PUBLIC_API.map(bare));
  const pinnedInternal = new Set(INTERNAL_API);
  for (const entry of ENGINE_INTERNALS) {
    assert.ok(pinnedInternal.has(entry), `${entry} is not in INTERNAL_API`);
    assert.ok(!pinnedPublic.has(bare(entry)), `${bare(entry)} is in PUBLIC_API`);
    if (isType(entry)) continue; // checked at compile time below, and by the deno doc test
    assert.ok(!(entry in root), `mod.ts exports ${entry}`);
    assert.ok(entry in internals, `internals.ts does not export ${entry}`);
  }
});

// The type-only half, at compile time (so plain `deno test` checks it too): each type resolves from internals.ts…
export type EngineInternalTypes = [
  internals.Backend,
  internals.KernelDefs,
  internals.KernelName,
  internals.KernelTable<unknown>,
  internals.KernelImpl<"unary", unknown>,
  internals.TensorRef<unknown>,
  internals.GpuBuffer,
  internals.DispatchSpec,
  internals.RuntimeStats,
];
// …and not from mod.ts: each line below fails to compile once mod.ts exports that type.
// @ts-expect-error Backend is internal
export type RootBackend = root.Backend;
// @ts-expect-error KernelDefs is internal
export type RootKernelDefs = root.KernelDefs;
// @ts-expect-error KernelName is internal
export type RootKernelName = root.KernelName;
// @ts-expect-error KernelTable is internal
export type RootKernelTable = root.KernelTable<unknown>;
// @ts-expect-error KernelImpl is internal
export type RootKernelImpl = root.KernelImpl<"unary", unknown>;
// @ts-expect-error TensorRef is internal
export type RootTensorRef = root.TensorRef<unknown>;
// @ts-expect-error GpuBuffer is internal
export type RootGpuBuffer = root.GpuBuffer;
// @ts-expect-error DispatchSpec is internal
export type RootDispatchSpec = root.DispatchSpec;
// @ts-expect-error RuntimeStats is internal
export type RootRuntimeStats = root.RuntimeStats;

Deno.test("every run-time name of the library's barrels is exported, as the same object, from mod.ts or internals.ts", () => {
  const orphans: string[] = [];
  for (const [file, barrel] of Object.entries(BARRELS)) {
    for (const [name, value] of Object.entries(barrel)) {
      const owner = name in root ? root as Record<string, unknown> : internals as Record<string, unknown>;
      if (!(name in owner)) orphans.push(`${file}: ${name}`);
      else assert.equal(owner[name], value, `${name} of ${file} is not the one the entry point exports`);
    }
  }
  assert.deepEqual(
    orphans,
    [],
    `exported by a barrel but by neither entry point; export each from mod.ts (user-facing) or internals.ts, and ` +
      `pin it in ${LISTS}`,
  );
});

const repo = new URL("../", import.meta.url);
const canRead = Deno.permissions.querySync({ name: "read", path: repo }).state === "granted";
const canRunDeno = canRead && Deno.permissions.querySync({ name: "run", command: Deno.execPath() }).state === "granted";

/** Runs `deno <args>` in the repository (no colour); its exit code and its output. */
async function deno(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: repo,
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

interface DocLocation {
  filename: string;
  line: number;
  col: number;
}

interface DocDeclaration {
  kind: string;
  location: DocLocation;
  /** For kind "reference" (a re-export of a symbol declared in another file deno doc was given): where it is. */
  def?: { target?: DocLocation };
}

Deno.test({
  name: "deno doc: mod.ts and internals.ts export exactly the pinned names, types included; so do the barrels",
  ignore: !canRunDeno,
  async fn() {
    const files = [...ENTRY_POINTS.map((e) => e.file), ...Object.keys(BARRELS)];
    const { code, stdout, stderr } = await deno(["doc", "--json", ...files]);
    assert.equal(code, 0, stderr);
    const nodes: Record<string, { symbols: { name: string; declarations: DocDeclaration[] }[] }> =
      JSON.parse(stdout).nodes;
    const at = (l: DocLocation) => `${l.filename}:${l.line}:${l.col}`;
    const declared = new Map<string, DocDeclaration>();
    for (const node of Object.values(nodes)) {
      for (const s of node.symbols) for (const d of s.declarations) declared.set(at(d.location), d);
    }
    /** A declaration's kind, following references to the file that declares it. */
    const kindOf = (d: DocDeclaration, depth = 0): string => {
      if (d.kind !== "reference") return d.kind;
      const target = d.def?.target && declared.get(at(d.def.target));
      assert.ok(target && depth < 10, `deno doc: unresolved reference ${JSON.stringify(d)}`);
      return kindOf(target, depth + 1);
    };
    const valueKinds = new Set(["class", "function", "variable", "namespace", "enum"]);
    const exportsOf = (file: string): string[] => {
      const node = nodes[new URL(file, repo).href];
      assert.ok(node, `deno doc gave nothing for ${file}`);
      return node.symbols.map((s) => s.declarations.some((d) => valueKinds.has(kindOf(d))) ? s.name : `type ${s.name}`);
    };
    for (const { file, list, pinned } of ENTRY_POINTS) {
      const diff = surfaceDiff(file, list, exportsOf(file), pinned);
      assert.equal(diff, null, diff ?? "");
    }
    const exported = new Set([...PUBLIC_API, ...INTERNAL_API].map(bare));
    const orphans = Object.keys(BARRELS).flatMap((file) =>
      exportsOf(file).filter((n) => !exported.has(bare(n))).map((n) => `${file}: ${n}`)
    );
    assert.deepEqual(orphans, [], "exported by a barrel but by neither entry point");
  },
});

Deno.test({
  name: "deno doc --lint mod.ts: the root's API references internal types only through the known fields",
  ignore: !canRunDeno,
  async fn() {
    // Linted alone, the root reports each internal type its API references (linted with internals.ts, as JSR
    // documents the package and `deno task check` lints it, there is nothing to report).
    const { stdout, stderr } = await deno(["doc", "--lint", "mod.ts"]);
    const refs = [...(stdout + stderr).matchAll(/public type '([^']+)' references private type '([^']+)'/g)]
      .map(([, from, to]) => `${from} -> ${to}`).sort();
    assert.deepEqual(refs, ROOT_REFERENCES_TO_INTERNALS, `the root references internal types:\n${stdout}${stderr}`);
    const others = (stdout + stderr).match(/error\[(?!private-type-ref)[^\]]+\]/g);
    assert.equal(others, null, `deno doc --lint mod.ts reports other problems:\n${stdout}${stderr}`);
  },
});

Deno.test({
  name: "mod.ts's overview lists every registered estimator with the class (and variant) it builds",
  ignore: !canRead,
  fn() {
    const text = Deno.readTextFileSync(new URL("mod.ts", repo));
    const doc = text.slice(0, text.indexOf("@module"));
    const rows = [...doc.matchAll(/^ \* \| `([\w-]+)` \| \{@link (\w+)\}(?: \(`variant: "(\w+)"`\))? \| (.*) \|$/gm)];
    assert.deepEqual(rows.map((r) => r[1]).sort(), [...root.ESTIMATOR_NAMES].sort(), "the table's registry names");
    const publicTypes = new Set(PUBLIC_API);
    for (const [, name, className, variant, options] of rows) {
      const estimator = root.createEstimator(name) as { constructor: { name: string }; variant?: string };
      assert.equal(estimator.constructor.name, className, `createEstimator("${name}") builds a ${className}`);
      if (variant) assert.equal(estimator.variant, variant, `the variant of "${name}"`);
      const links = [...options.matchAll(/\{@link (\w+)\}/g)].map((m) => m[1]);
      assert.ok(links.length > 0, `the row of "${name}" links no options interface`);
      for (const type of links) assert.ok(publicTypes.has(`type ${type}`), `${type} is not a public type of mod.ts`);
    }
  },
});
