/**
 * The op modules, found on disk: every `core/ops/*.ts` file except those listed in {@link NOT_OP_MODULES}. The
 * coverage tests enumerate ops from here, so an op in a new file is checked without anyone listing the file.
 *
 * @module
 */

/** Files of `core/ops/` that hold no ops, and why. */
export const NOT_OP_MODULES: Readonly<Record<string, string>> = {
  "operand.ts": "argument checks shared by the ops",
  "catalog.ts": "data about the ops (the op catalog)",
};

/** Each op module's exports, by file name without `.ts`, in file-name order. */
export async function loadOpModules(): Promise<Record<string, Record<string, unknown>>> {
  const dir = new URL("../../core/ops/", import.meta.url);
  const files = [...Deno.readDirSync(dir)]
    .filter((e) => e.isFile && e.name.endsWith(".ts") && !(e.name in NOT_OP_MODULES))
    .map((e) => e.name)
    .sort();
  const modules: Record<string, Record<string, unknown>> = {};
  for (const file of files) modules[file.slice(0, -3)] = await import(new URL(file, dir).href);
  return modules;
}

/** The functions an op module exports (its ops), by name. */
export function opsOf(module: Record<string, unknown>): string[] {
  return Object.entries(module).filter(([, v]) => typeof v === "function").map(([name]) => name);
}
