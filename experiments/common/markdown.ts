/**
 * Markdown helpers for experiment reports: tables, number formatting and image links.
 *
 * @example
 * ```ts
 * import { fmt, mdTable } from "./markdown.ts";
 * console.log(mdTable(["arm", "loss"], [["switch", 3.14159], ["sparsemixer", null]]));
 * // | arm | loss |
 * // | --- | ---: |
 * // | switch | 3.14 |
 * // | sparsemixer | — |
 * console.log(fmt(0.000012345)); // 1.23e-5
 * ```
 *
 * @module
 */

/**
 * Formats a number with `digits` significant digits for a report: "—" for null, undefined and NaN, "∞"/"-∞" for
 * infinities, plain decimals between 1e-3 and 10^digits (trailing zeros dropped), a rounded integer at or above
 * 10^digits, and exponent notation below 1e-3. `digits = 0` rounds to an integer (step counts, ms, tokens/s).
 */
export function fmt(x: number | null | undefined, digits = 3): string {
  if (!Number.isInteger(digits) || digits < 0 || digits > 100) {
    throw new RangeError(`fmt: digits must be an integer in [0, 100], got ${digits}`);
  }
  if (x === null || x === undefined || Number.isNaN(x)) return "—";
  if (x === Infinity) return "∞";
  if (x === -Infinity) return "-∞";
  if (x === 0 || digits === 0) return String(Math.round(x) || 0);
  const a = Math.abs(x);
  if (a >= 10 ** digits) return String(Math.round(x));
  if (a < 1e-3) return x.toExponential(Math.max(0, digits - 1)).replace("e+", "e");
  return String(Number(x.toPrecision(digits)));
}

/** Escapes a table cell: `|` and newlines would break the row. */
function cell(v: string | number | null): string {
  if (v === null) return "—";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : fmt(v);
  return v.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}

/**
 * A GitHub-flavoured markdown table. Numbers are right-aligned (a column is numeric when every non-null cell is a
 * number); integers print as they are, other numbers through {@link fmt}; null prints "—".
 *
 * @throws {RangeError} a row whose length differs from the header's.
 */
export function mdTable(headers: string[], rows: (string | number | null)[][]): string {
  rows.forEach((r, i) => {
    if (r.length !== headers.length) {
      throw new RangeError(
        `mdTable: row ${i} has ${r.length} cells, expected ${headers.length} (${headers.join(", ")})`,
      );
    }
  });
  const numeric = headers.map((_, j) => {
    const vs = rows.map((r) => r[j]).filter((v) => v !== null);
    return vs.length > 0 && vs.every((v) => typeof v === "number");
  });
  const lines = [
    `| ${headers.map(cell).join(" | ")} |`,
    `| ${numeric.map((n) => (n ? "---:" : "---")).join(" | ")} |`,
    ...rows.map((r) => `| ${r.map(cell).join(" | ")} |`),
  ];
  return lines.join("\n") + "\n";
}

/** A markdown image `![alt](relPath)`; brackets in `alt` and spaces/parentheses in the path are escaped. */
export function mdImage(alt: string, relPath: string): string {
  const a = alt.replace(/([\[\]\\])/g, "\\$1");
  const p = relPath.replace(/ /g, "%20").replace(/\(/g, "%28").replace(/\)/g, "%29");
  return `![${a}](${p})`;
}
