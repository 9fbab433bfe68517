/**
 * A small well-formedness check for the SVG documents of experiment reports (used by tests, including the
 * experiments' smoke tests): balanced tags, one `<svg>` root with the SVG namespace, quoted attributes, no
 * stray `<`/`&`, and every numeric attribute finite (a NaN coordinate renders as nothing, silently).
 *
 * It is not a general XML parser: no DOCTYPE, CDATA, comments or processing instructions (our writer emits none).
 *
 * @example
 * ```ts
 * import { svgProblems } from "./svg_check.ts";
 * console.log(svgProblems('<svg xmlns="http://www.w3.org/2000/svg"><rect x="1"/></svg>')); // []
 * console.log(svgProblems('<svg xmlns="http://www.w3.org/2000/svg"><g></svg>').length > 0); // true
 * ```
 *
 * @module
 */

const NUMERIC_ATTRS = new Set([
  "x",
  "y",
  "x1",
  "x2",
  "y1",
  "y2",
  "cx",
  "cy",
  "r",
  "width",
  "height",
  "stroke-width",
  "fill-opacity",
  "font-size",
]);

/** The problems found in `svg` (empty when it is well formed); each names the offending tag or attribute. */
export function svgProblems(svg: string): string[] {
  const problems: string[] = [];
  const stack: string[] = [];
  let roots = 0;
  const tagRe = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  let m: RegExpExecArray | null;
  const text = (s: string) => {
    if (/[<>]/.test(s)) problems.push(`stray "<" or ">" in text near ${JSON.stringify(s.slice(0, 40))}`);
    for (const amp of s.matchAll(/&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/g)) {
      problems.push(`unescaped "&" near ${JSON.stringify(s.slice(Math.max(0, amp.index - 10), amp.index + 10))}`);
    }
  };
  while ((m = tagRe.exec(svg)) !== null) {
    text(svg.slice(last, m.index));
    last = m.index + m[0].length;
    const [, close, name, attrs, selfClose] = m;
    if (close) {
      if (attrs.trim() || selfClose) problems.push(`malformed closing tag </${name}>`);
      const open = stack.pop();
      if (open !== name) problems.push(`</${name}> closes <${open ?? "nothing"}>`);
      continue;
    }
    if (stack.length === 0) {
      roots++;
      if (name !== "svg") problems.push(`root element is <${name}>, expected <svg>`);
      else if (!/\sxmlns="http:\/\/www\.w3\.org\/2000\/svg"/.test(attrs)) problems.push("<svg> lacks the SVG xmlns");
    }
    for (const a of attrs.matchAll(/([\w:-]+)="([^"]*)"/g)) {
      const [, key, value] = a;
      text(value);
      if (NUMERIC_ATTRS.has(key) && !Number.isFinite(Number(value))) {
        problems.push(`<${name}> ${key}="${value}" is not a finite number`);
      }
      if (key === "points" || key === "viewBox") {
        for (const n of value.split(/[\s,]+/).filter((s) => s !== "")) {
          if (!Number.isFinite(Number(n))) problems.push(`<${name}> ${key} has a non-finite number "${n}"`);
        }
      }
    }
    if (!selfClose) stack.push(name);
  }
  text(svg.slice(last));
  if (stack.length) problems.push(`unclosed tags: ${stack.map((s) => `<${s}>`).join(" ")}`);
  if (roots !== 1) problems.push(`expected exactly one root element, found ${roots}`);
  return problems;
}
