/**
 * Dependency-free SVG charts for experiment reports: line charts (optional log axes, shaded lo/hi bands,
 * dashed series, horizontal reference lines) and grouped bar charts (optional error bars). The output is one
 * standalone `<svg>` document with inline attributes only (no CSS, no scripts), so it renders the same in a
 * browser, on GitHub and in an image viewer.
 *
 * Points that cannot be drawn (non-finite, or ≤ 0 on a log axis) are skipped and break the line there.
 *
 * @example
 * ```ts
 * import { lineChart } from "./svg.ts";
 * const svg = lineChart({
 *   title: "loss",
 *   xLabel: "step",
 *   yLabel: "loss",
 *   series: [{ label: "switch", x: [0, 10, 20], y: [3, 2.5, 2.2] }],
 * });
 * console.log(svg.startsWith("<svg"), svg.endsWith("</svg>\n")); // true true
 * ```
 *
 * @module
 */

/** The fixed colour palette, in series order (colour-blind-friendly, high contrast on white). */
export const PALETTE: readonly string[] = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#17becf",
  "#7f7f7f",
  "#bcbd22",
  "#393b79",
  "#637939",
];

/** One series of a line chart. */
export interface LineSeries {
  /** Legend label. */
  label: string;
  /** x values. */
  x: number[];
  /** y values (same length as x). */
  y: number[];
  /** Lower edge of a shaded band (e.g. a confidence interval), same length as x. */
  lo?: number[];
  /** Upper edge of the band. */
  hi?: number[];
  /** Draw the line dashed. */
  dashed?: boolean;
  /**
   * Colour of the line, band and legend entry (default: {@link PALETTE} by series index). Reports pass one colour
   * per arm so that an arm looks the same in every plot, whichever arms a plot leaves out.
   */
  color?: string;
}

/** Options of {@link lineChart}. */
export interface LineChartOptions {
  /** Title above the plot. */
  title: string;
  /** x-axis label. */
  xLabel: string;
  /** y-axis label. */
  yLabel: string;
  /** The series, drawn in order with {@link PALETTE} colours. */
  series: LineSeries[];
  /** Logarithmic x axis (non-positive x values are skipped). */
  logX?: boolean;
  /** Logarithmic y axis (non-positive y values are skipped). */
  logY?: boolean;
  /** Horizontal reference lines (dashed grey, labelled at the right). */
  hlines?: { y: number; label: string }[];
  /** Width in pixels (default 720). */
  width?: number;
  /** Height in pixels (default 420). */
  height?: number;
}

/** Options of {@link barChart}. */
export interface BarChartOptions {
  /** Title above the plot. */
  title: string;
  /** y-axis label. */
  yLabel: string;
  /** Category labels along the x axis. */
  categories: string[];
  /**
   * One bar per category per group; `err` draws symmetric ± error bars, `lo`/`hi` draw bars between explicit
   * edges instead (an interval clamped to the range of its quantity is not symmetric). `color` as in
   * {@link LineSeries.color}.
   */
  groups: { label: string; values: number[]; err?: number[]; lo?: number[]; hi?: number[]; color?: string }[];
  /** Logarithmic y axis (bars start at the bottom of the axis). */
  logY?: boolean;
  /** Width in pixels (default 720). */
  width?: number;
  /** Height in pixels (default 420). */
  height?: number;
}

/** Escapes text for SVG/XML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

/** A coordinate with at most 2 decimals (keeps files small and diffs stable). */
function c(x: number): string {
  return String(Math.round(x * 100) / 100);
}

/** Tick label: short and exact enough to tell ticks apart. */
export function tickLabel(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(0).replace("e+", "e");
  return String(Number(v.toPrecision(6)));
}

/** "Nice" linear ticks (steps of 1, 2 or 5 × 10^k) covering [lo, hi], about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 6): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (lo === hi) {
    const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const start = Math.floor(lo / step) * step;
  const ticks: number[] = [];
  for (let v = start; v <= hi + step * 1e-9; v += step) {
    ticks.push(Number((Math.round(v / step) * step).toPrecision(12)));
  }
  if (ticks[ticks.length - 1] < hi) ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
  return ticks;
}

/** Log ticks: powers of 10 covering [lo, hi] (lo > 0), with 2 and 5 added when there are few decades. */
export function logTicks(lo: number, hi: number): number[] {
  const a = Math.floor(Math.log10(lo));
  const b = Math.ceil(Math.log10(hi));
  const ticks: number[] = [];
  const mults = b - a <= 2 ? [1, 2, 5] : [1];
  for (let k = a; k <= b; k++) {
    for (const m of mults) {
      const v = Number((m * 10 ** k).toPrecision(12));
      ticks.push(v);
    }
  }
  // Keep one tick on each side of the data, drop the rest.
  const inside = ticks.filter((v) => v >= lo && v <= hi);
  const below = ticks.filter((v) => v < lo).pop();
  const above = ticks.find((v) => v > hi);
  return [...(below !== undefined ? [below] : []), ...inside, ...(above !== undefined ? [above] : [])];
}

interface Axis {
  ticks: number[];
  map: (v: number) => number;
  ok: (v: number) => boolean;
}

function makeAxis(values: number[], log: boolean, p0: number, p1: number, zero = false): Axis {
  const ok = (v: number) => Number.isFinite(v) && (!log || v > 0);
  let vs = values.filter(ok);
  if (zero && !log) vs = [...vs, 0];
  if (vs.length === 0) vs = log ? [1, 10] : [0, 1];
  let lo = Math.min(...vs);
  let hi = Math.max(...vs);
  if (log) {
    if (lo === hi) {
      lo /= 2;
      hi *= 2;
    }
    const ticks = logTicks(lo, hi);
    const l0 = Math.log10(ticks[0]);
    const l1 = Math.log10(ticks[ticks.length - 1]);
    return { ticks, ok, map: (v) => p0 + ((Math.log10(v) - l0) / (l1 - l0 || 1)) * (p1 - p0) };
  }
  const ticks = niceTicks(lo, hi);
  lo = ticks[0];
  hi = ticks[ticks.length - 1];
  return { ticks, ok, map: (v) => p0 + ((v - lo) / (hi - lo || 1)) * (p1 - p0) };
}

function header(width: number, height: number, title: string): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${c(width / 2)}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${
      escapeXml(title)
    }</text>`,
  ];
}

function yAxis(out: string[], axis: Axis, left: number, right: number, top: number, bottom: number, label: string) {
  for (const t of axis.ticks) {
    const y = axis.map(t);
    out.push(`<line x1="${c(left)}" y1="${c(y)}" x2="${c(right)}" y2="${c(y)}" stroke="#e5e5e5" stroke-width="1"/>`);
    out.push(`<text x="${c(left - 6)}" y="${c(y + 4)}" text-anchor="end" fill="#333333">${tickLabel(t)}</text>`);
  }
  const my = (top + bottom) / 2;
  out.push(
    `<text x="16" y="${c(my)}" text-anchor="middle" transform="rotate(-90 16 ${c(my)})" fill="#000000">` +
      `${escapeXml(label)}</text>`,
  );
  out.push(`<line x1="${c(left)}" y1="${c(top)}" x2="${c(left)}" y2="${c(bottom)}" stroke="#000000"/>`);
  out.push(`<line x1="${c(left)}" y1="${c(bottom)}" x2="${c(right)}" y2="${c(bottom)}" stroke="#000000"/>`);
}

/**
 * The stroke pattern of series `i`: dashed when asked; otherwise dotted once the palette has come round (a
 * series past the 12th: the reports colour arms by their index in the palette), so that two series do not share
 * both colour and line style.
 */
function dashOf(s: { dashed?: boolean }, i: number): string {
  if (s.dashed) return ` stroke-dasharray="6 4"`;
  return i >= PALETTE.length ? ` stroke-dasharray="1.5 3"` : "";
}

function legend(out: string[], items: { label: string; color: string; dash?: string }[], x: number, y: number) {
  items.forEach((it, i) => {
    const yy = y + i * 18;
    const dash = it.dash ?? "";
    out.push(
      `<line x1="${c(x)}" y1="${c(yy)}" x2="${c(x + 22)}" y2="${
        c(yy)
      }" stroke="${it.color}" stroke-width="2.5"${dash}/>`,
    );
    out.push(`<text x="${c(x + 28)}" y="${c(yy + 4)}" fill="#000000">${escapeXml(it.label)}</text>`);
  });
}

function legendWidth(labels: string[]): number {
  const longest = Math.max(0, ...labels.map((l) => l.length));
  return labels.length ? Math.min(260, 40 + longest * 7) : 0;
}

/** A line chart as a standalone SVG document (see {@link LineChartOptions}). */
export function lineChart(opts: LineChartOptions): string {
  const width = opts.width ?? 720;
  const height = opts.height ?? 420;
  opts.series.forEach((s, i) => {
    if (s.y.length !== s.x.length) {
      throw new RangeError(`lineChart: series ${i} ("${s.label}") has ${s.x.length} x but ${s.y.length} y`);
    }
    for (const k of ["lo", "hi"] as const) {
      const v = s[k];
      if (v && v.length !== s.x.length) {
        throw new RangeError(
          `lineChart: series ${i} ("${s.label}") ${k} has ${v.length} values, expected ${s.x.length}`,
        );
      }
    }
  });
  const lw = legendWidth(opts.series.map((s) => s.label));
  const left = 70;
  const right = width - 20 - lw;
  const top = 36;
  const bottom = height - 48;
  const xs = opts.series.flatMap((s) => s.x);
  const ys = opts.series.flatMap((s) => [...s.y, ...(s.lo ?? []), ...(s.hi ?? [])])
    .concat((opts.hlines ?? []).map((h) => h.y));
  const ax = makeAxis(xs, !!opts.logX, left, right);
  const ay = makeAxis(ys, !!opts.logY, bottom, top);
  const out = header(width, height, opts.title);
  yAxis(out, ay, left, right, top, bottom, opts.yLabel);
  for (const t of ax.ticks) {
    const x = ax.map(t);
    out.push(`<line x1="${c(x)}" y1="${c(bottom)}" x2="${c(x)}" y2="${c(bottom + 5)}" stroke="#000000"/>`);
    out.push(`<text x="${c(x)}" y="${c(bottom + 18)}" text-anchor="middle" fill="#333333">${tickLabel(t)}</text>`);
  }
  out.push(
    `<text x="${c((left + right) / 2)}" y="${c(height - 10)}" text-anchor="middle">${escapeXml(opts.xLabel)}</text>`,
  );
  opts.series.forEach((s, si) => {
    const color = s.color ?? PALETTE[si % PALETTE.length];
    if (s.lo && s.hi) {
      const idx = s.x.map((_, i) => i).filter((i) => ax.ok(s.x[i]) && ay.ok(s.lo![i]) && ay.ok(s.hi![i]));
      if (idx.length >= 2) {
        const upper = idx.map((i) => `${c(ax.map(s.x[i]))},${c(ay.map(s.hi![i]))}`);
        const lower = idx.slice().reverse().map((i) => `${c(ax.map(s.x[i]))},${c(ay.map(s.lo![i]))}`);
        out.push(
          `<polygon points="${[...upper, ...lower].join(" ")}" fill="${color}" fill-opacity="0.18" stroke="none"/>`,
        );
      }
    }
    const dash = dashOf(s, si);
    let seg: string[] = [];
    const flush = () => {
      if (seg.length >= 2) {
        out.push(`<polyline points="${seg.join(" ")}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`);
      }
      seg = [];
    };
    s.x.forEach((xv, i) => {
      if (ax.ok(xv) && ay.ok(s.y[i])) {
        const px = c(ax.map(xv));
        const py = c(ay.map(s.y[i]));
        seg.push(`${px},${py}`);
        out.push(`<circle cx="${px}" cy="${py}" r="2.5" fill="${color}"/>`);
      } else flush();
    });
    flush();
  });
  for (const h of opts.hlines ?? []) {
    if (!ay.ok(h.y)) continue;
    const y = c(ay.map(h.y));
    out.push(`<line x1="${c(left)}" y1="${y}" x2="${c(right)}" y2="${y}" stroke="#555555" stroke-dasharray="3 3"/>`);
    out.push(
      `<text x="${c(right - 4)}" y="${c(Number(y) - 4)}" text-anchor="end" fill="#555555">${escapeXml(h.label)}</text>`,
    );
  }
  legend(
    out,
    opts.series.map((s, i) => ({ label: s.label, color: s.color ?? PALETTE[i % PALETTE.length], dash: dashOf(s, i) })),
    right + 16,
    top + 8,
  );
  out.push("</svg>");
  return out.join("\n") + "\n";
}

/** A grouped bar chart as a standalone SVG document (see {@link BarChartOptions}). */
export function barChart(opts: BarChartOptions): string {
  const width = opts.width ?? 720;
  const height = opts.height ?? 420;
  const nc = opts.categories.length;
  opts.groups.forEach((g, i) => {
    if (g.values.length !== nc) {
      throw new RangeError(`barChart: group ${i} ("${g.label}") has ${g.values.length} values, expected ${nc}`);
    }
    for (const k of ["err", "lo", "hi"] as const) {
      const v = g[k];
      if (v && v.length !== nc) {
        throw new RangeError(`barChart: group ${i} ("${g.label}") ${k} has ${v.length} values, expected ${nc}`);
      }
    }
  });
  // The error bar of each bar as [low, high] edges (NaN: none).
  const edges = (g: BarChartOptions["groups"][number], i: number): [number, number] => {
    if (g.lo && g.hi) return [g.lo[i], g.hi[i]];
    const e = g.err?.[i];
    return e !== undefined && Number.isFinite(e) && e > 0 ? [g.values[i] - e, g.values[i] + e] : [NaN, NaN];
  };
  const lw = legendWidth(opts.groups.map((g) => g.label));
  const left = 70;
  const right = width - 20 - lw;
  const top = 36;
  const longestCat = Math.max(0, ...opts.categories.map((s) => s.length));
  const rotate = longestCat * 7 > (right - left) / Math.max(1, nc);
  const bottom = height - (rotate ? Math.min(140, 30 + longestCat * 5) : 48);
  const ys = opts.groups.flatMap((g) => g.values.flatMap((v, i) => [v, ...edges(g, i)]));
  const ay = makeAxis(ys, !!opts.logY, bottom, top, true);
  const out = header(width, height, opts.title);
  yAxis(out, ay, left, right, top, bottom, opts.yLabel);
  const slot = (right - left) / Math.max(1, nc);
  const ng = Math.max(1, opts.groups.length);
  const bw = (slot * 0.8) / ng;
  const base = opts.logY ? bottom : ay.map(0);
  opts.categories.forEach((cat, ci) => {
    const cx = left + slot * (ci + 0.5);
    if (rotate) {
      out.push(
        `<text x="${c(cx)}" y="${c(bottom + 12)}" text-anchor="end" transform="rotate(-40 ${c(cx)} ${
          c(bottom + 12)
        })">` +
          `${escapeXml(cat)}</text>`,
      );
    } else out.push(`<text x="${c(cx)}" y="${c(bottom + 18)}" text-anchor="middle">${escapeXml(cat)}</text>`);
    opts.groups.forEach((g, gi) => {
      const v = g.values[ci];
      if (!ay.ok(v)) return;
      const color = g.color ?? PALETTE[gi % PALETTE.length];
      const x = left + slot * ci + slot * 0.1 + bw * gi;
      const y = ay.map(v);
      out.push(
        `<rect x="${c(x)}" y="${c(Math.min(y, base))}" width="${c(Math.max(1, bw - 1))}" ` +
          `height="${c(Math.abs(base - y))}" fill="${color}"><title>${
            escapeXml(`${g.label} / ${cat}: ${v}`)
          }</title></rect>`,
      );
      const [lo, hi] = edges(g, ci);
      if (Number.isFinite(lo) && Number.isFinite(hi) && hi > lo) {
        const ylo = ay.ok(lo) ? ay.map(lo) : bottom;
        const yhi = ay.map(hi);
        const mx = x + bw / 2;
        out.push(`<line x1="${c(mx)}" y1="${c(ylo)}" x2="${c(mx)}" y2="${c(yhi)}" stroke="#000000"/>`);
        out.push(`<line x1="${c(mx - 3)}" y1="${c(yhi)}" x2="${c(mx + 3)}" y2="${c(yhi)}" stroke="#000000"/>`);
        out.push(`<line x1="${c(mx - 3)}" y1="${c(ylo)}" x2="${c(mx + 3)}" y2="${c(ylo)}" stroke="#000000"/>`);
      }
    });
  });
  if (!opts.logY) {
    out.push(`<line x1="${c(left)}" y1="${c(base)}" x2="${c(right)}" y2="${c(base)}" stroke="#000000"/>`);
  }
  legend(
    out,
    opts.groups.map((g, i) => ({ label: g.label, color: g.color ?? PALETTE[i % PALETTE.length] })),
    right + 16,
    top + 8,
  );
  out.push("</svg>");
  return out.join("\n") + "\n";
}
