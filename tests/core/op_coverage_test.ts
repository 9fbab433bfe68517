/**
 * An op is defined once: each function an op module exports must have an entry in the op catalog
 * (`core/ops/catalog.ts`), and then a `Tensor` method of its name, an export from `core/mod.ts` (and the package
 * root) and — if it has a gradient — a row in the gradcheck table (`tests/core/gradcheck/`), unless its catalog
 * entry says why not. The type checker already enforces the first three through the catalog's type; this test
 * checks them again at run time (op modules are found on disk, and values are compared, not just names) and is
 * the only check of the gradcheck rows. Every failure names the op and the place it is missing from.
 */
import assert from "node:assert/strict";
import * as core from "../../core/mod.ts";
import * as root from "../../mod.ts";
import { Tensor } from "../../core/tensor.ts";
import { type OpCatalog, OPS, type OpSpec } from "../../core/ops/catalog.ts";
import { record1 } from "../../core/autograd.ts";
import { loadOpModules, opsOf } from "../helpers/op_modules.ts";
import { GRADCHECK_TABLE } from "./gradcheck/table.ts";

/** A catalog entry as data (the type of `OPS` is exact per op; the checks below read any entry). */
interface Entry {
  grad: "vjp" | "composite" | { none: string };
  noTensorMethod?: string;
  notInCoreMod?: string;
}

const entries: [string, Entry][] = Object.entries(OPS);
const entryOf = new Map(entries);
// The op modules are found on disk, which needs read access: without it (plain `deno test`) the tests are ignored.
const canRead = Deno.permissions.querySync({ name: "read" }).state === "granted";
const modules = canRead ? await loadOpModules() : {};
/** Every op: its name, the file that exports it and the function. */
const ops = Object.entries(modules).flatMap(([file, mod]) =>
  opsOf(mod).map((name) => ({ name, file: `core/ops/${file}.ts`, fn: mod[name] }))
);

Deno.test({
  name: "op coverage: every function an op module exports has a catalog entry, and every entry an op",
  ignore: !canRead,
}, () => {
  const missing = ops.filter((op) => !(op.name in OPS)).map((op) => `${op.name} (${op.file})`);
  assert.deepEqual(
    missing,
    [],
    `ops without an entry in OPS (core/ops/catalog.ts; a new module also goes into OpModules there): ${
      missing.join(", ")
    }`,
  );
  const names = new Set(ops.map((op) => op.name));
  const stale = entries.filter(([name]) => !names.has(name)).map(([name]) => name);
  assert.deepEqual(stale, [], `catalog entries for functions no op module exports: ${stale.join(", ")}`);
  assert.equal(names.size, ops.length, "two op modules export the same name");
});

Deno.test(
  { name: "op coverage: every op is a Tensor method, or its catalog entry says why not", ignore: !canRead },
  () => {
    const problems: string[] = [];
    for (const [name, entry] of entries) {
      const hasMethod = typeof Object.getOwnPropertyDescriptor(Tensor.prototype, name)?.value === "function";
      if (!hasMethod && !entry.noTensorMethod) {
        problems.push(
          `${name}: no Tensor.${name} (add it to core/tensor.ts, or give the entry a noTensorMethod reason)`,
        );
      }
      if (hasMethod && entry.noTensorMethod) {
        problems.push(`${name}: has Tensor.${name} but the entry gives noTensorMethod`);
      }
    }
    assert.deepEqual(problems, [], problems.join("\n"));
  },
);

Deno.test({
  name: "op coverage: every op is exported by core/mod.ts and mod.ts, or its catalog entry says why not",
  ignore: !canRead,
}, () => {
  const problems: string[] = [];
  const exported = (mod: Record<string, unknown>, name: string) => name in mod;
  for (const op of ops) {
    const entry = entryOf.get(op.name);
    if (!entry) continue; // reported by the catalog test
    for (const [where, mod] of [["core/mod.ts", core], ["mod.ts", root]] as const) {
      const table: Record<string, unknown> = mod;
      if (entry.notInCoreMod) {
        if (exported(table, op.name)) problems.push(`${op.name}: ${where} exports it but the entry gives notInCoreMod`);
      } else if (table[op.name] !== op.fn) {
        problems.push(
          `${op.name}: ${where} does not export ${op.file}'s ${op.name} (add it to core/mod.ts, or give the entry a ` +
            `notInCoreMod reason)`,
        );
      }
    }
  }
  assert.deepEqual(problems, [], problems.join("\n"));
});

Deno.test({
  name: "op coverage: every op with a gradient has a gradcheck row; the others say why not",
  ignore: !canRead,
}, () => {
  const checked = new Set<string>(GRADCHECK_TABLE.flatMap((family) => family.rows.flatMap((row) => row.ops)));
  const problems: string[] = [];
  for (const [name, entry] of entries) {
    if (typeof entry.grad === "object") {
      if (!entry.grad.none.trim()) problems.push(`${name}: grad.none needs a reason`);
    } else if (!checked.has(name)) {
      problems.push(`${name} (grad: ${entry.grad}): no row of the gradcheck table (tests/core/gradcheck/) names it`);
    }
  }
  assert.deepEqual(problems, [], problems.join("\n"));
});

Deno.test({ name: "op coverage: every exemption gives a reason", ignore: !canRead }, () => {
  const empty = entries.filter(([, e]) => e.noTensorMethod?.trim() === "" || e.notInCoreMod?.trim() === "")
    .map(([name]) => name);
  assert.deepEqual(empty, [], `catalog entries with an empty reason: ${empty.join(", ")}`);
});

Deno.test(
  { name: "op catalog: the type checker rejects an entry that does not match the code", ignore: !canRead },
  () => {
    // Each @ts-expect-error fails `deno test` (which type-checks this file) if the line below it compiles.
    const wrong = (x: Tensor) => {
      // @ts-expect-error concat has no Tensor method, so its entry must give a noTensorMethod reason
      const _concat: OpSpec<"concat"> = { grad: "vjp" };
      // @ts-expect-error neg has a Tensor method, so a noTensorMethod reason is wrong
      const _neg: OpSpec<"neg"> = { grad: "vjp", noTensorMethod: "none" };
      // @ts-expect-error core/mod.ts does not export copy, so its entry must give a notInCoreMod reason
      const _copy: OpSpec<"copy"> = { grad: "vjp", noTensorMethod: "clone" };
      // @ts-expect-error a catalog without an entry for every op
      const _partial: OpCatalog = { neg: { grad: "vjp" } };
      // @ts-expect-error sign's entry says it has no gradient, so no tape node may be recorded under its name
      record1("sign", [x], x, (g) => [g]);
      // @ts-expect-error the VJP of a one-input op returns one gradient
      record1("neg", [x], x, (g) => [g, g]);
    };
    assert.equal(typeof wrong, "function"); // never called: the point is that it does not compile
  },
);
