/**
 * The third-party modules the library uses, each pinned here once.
 *
 * They are full `npm:` specifiers rather than names in `deno.json`'s import map (so the lint rule `no-import-prefix`
 * is off): a project that imports moegrad by path, or from JSR, does not see our `deno.json`, and a bare `"zod"`
 * would not resolve there. `tests/outside_project_test.ts` runs such a project.
 *
 * @module
 */
export { z } from "npm:zod@4.6.7";
