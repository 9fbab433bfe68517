/**
 * A heatmap SVG for experiment reports (a standalone document like `svg.ts`' charts): one or more panels stacked
 * vertically, each a grid of cells (rows × columns) coloured on one shared sequential scale from white (`min`) to
 * dark blue (`max`), with a colour bar. The LM reports draw each MoE layer's expert load over training this way:
 * a panel per arm, a row per expert, a column per logged step. Non-finite cells are drawn grey.
 *
 * @example
 * ```ts
 * import { heatmap } from "./svg_heatmap.ts";
 * const svg = heatmap({
 *   title: "expert load",
 *   xLabel: "step",
 *   rowLabel: "expert",
 *   panels: [{ label: "switch", columns: [10, 20], rows: [[0.5, 0.7], [0.5, 0.3]] }],
 * });
 * console.log(svg.startsWith("<svg"), svg.endsWith("</svg>\n")); // true true
 * ```
 *
 * @module
 */
import { escapeXml, tickLabel } from "./svg.ts";

/** One panel: `rows[r][j]` is the value of row r at column `columns[j]`. */
export interface HeatmapPanel {
  /** Panel title (e.g. the arm). */
  label: string;
  /** The column positions (e.g. training steps), ascending; only labelled, cells have equal widths. */
  columns: number[];
  /** Values, one array per row, each as long as `columns`. */
  rows: number[][];
}

/** Options of {@link heatmap}. */
export interface HeatmapOptions {
  /** Chart title. */
  title: string;
  /** Label under the columns. */
  xLabel: string;
  /** What a row is ("expert"): rows are labelled `${rowLabel} 0`, … */
  rowLabel: string;
  /** The panels, drawn top to bottom. */
  panels: HeatmapPanel[];
  /** Value of the lightest colour (default: the smallest finite value). */
  min?: number;
  /** Value of the darkest colour (default: the largest finite value). */
  max?: number;
  /** Width in px (default 720). */
  width?: number;
}

const c = (v: number) => Number(v.toFixed(2));

/** White → dark blue: `t` ∈ [0, 1] (clamped). */
function shade(t: number): string {
  const u = Math.min(1, Math.max(0, t));
  const mix = (from: number, to: number) => Math.round(from + (to - from) * u).toString(16).padStart(2, "0");
  return `#${mix(255, 8)}${mix(255, 48)}${mix(255, 107)}`;
}

/** The heatmap as a standalone SVG document (see {@link HeatmapOptions}). */
export function heatmap(opts: HeatmapOptions): string {
  const width = opts.width ?? 720;
  const left = 90, right = 90, top = 40, panelGap = 34, rowHeight = 16, xAxisHeight = 40;
  const finite = opts.panels.flatMap((p) => p.rows.flat()).filter(Number.isFinite);
  const lo = opts.min ?? (finite.length ? Math.min(...finite) : 0);
  const hiRaw = opts.max ?? (finite.length ? Math.max(...finite) : 1);
  const hi = hiRaw > lo ? hiRaw : lo + 1;
  const plotW = width - left - right;
  const heights = opts.panels.map((p) => Math.max(1, p.rows.length) * rowHeight);
  const height = top + heights.reduce((a, b) => a + b + panelGap, 0) + xAxisHeight;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${c(height)}" ` +
    `viewBox="0 0 ${width} ${c(height)}" font-family="Helvetica, Arial, sans-serif" font-size="11">`,
    `<title>${escapeXml(opts.title)}</title>`,
    `<rect x="0" y="0" width="${width}" height="${c(height)}" fill="#ffffff"/>`,
    `<text x="${c(width / 2)}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${
      escapeXml(opts.title)
    }</text>`,
  ];
  let y = top;
  opts.panels.forEach((panel, pi) => {
    y += panelGap - 14;
    out.push(`<text x="${left}" y="${c(y - 4)}" font-weight="bold" fill="#000000">${escapeXml(panel.label)}</text>`);
    const n = Math.max(1, panel.columns.length);
    const cellW = plotW / n;
    panel.rows.forEach((row, r) => {
      const yy = y + r * rowHeight;
      out.push(
        `<text x="${c(left - 6)}" y="${c(yy + rowHeight - 4)}" text-anchor="end" fill="#333333">${
          escapeXml(`${opts.rowLabel} ${r}`)
        }</text>`,
      );
      row.forEach((v, j) => {
        const fill = Number.isFinite(v) ? shade((v - lo) / (hi - lo)) : "#bbbbbb";
        out.push(
          `<rect x="${c(left + j * cellW)}" y="${c(yy)}" width="${c(cellW + 0.3)}" height="${rowHeight}" ` +
            `fill="${fill}"/>`,
        );
      });
    });
    y += heights[pi];
    out.push(
      `<rect x="${left}" y="${c(y - heights[pi])}" width="${c(plotW)}" height="${heights[pi]}" fill="none" ` +
        `stroke="#000000" stroke-width="1"/>`,
    );
    // Column labels under the last panel only, at most ~8 of them.
    if (pi === opts.panels.length - 1) {
      const every = Math.max(1, Math.ceil(n / 8));
      panel.columns.forEach((col, j) => {
        if (j % every !== 0 && j !== n - 1) return;
        out.push(
          `<text x="${c(left + (j + 0.5) * cellW)}" y="${c(y + 14)}" text-anchor="middle" fill="#333333">${
            tickLabel(col)
          }</text>`,
        );
      });
      out.push(
        `<text x="${c(left + plotW / 2)}" y="${c(y + 32)}" text-anchor="middle" fill="#000000">${
          escapeXml(opts.xLabel)
        }</text>`,
      );
    }
  });
  // The colour bar: 10 steps from min (bottom) to max (top).
  const barX = width - right + 24, barTop = top + 10, barH = Math.min(160, height - top - xAxisHeight - 20);
  for (let i = 0; i < 10; i++) {
    out.push(
      `<rect x="${barX}" y="${c(barTop + (9 - i) * barH / 10)}" width="14" height="${c(barH / 10 + 0.3)}" ` +
        `fill="${shade((i + 0.5) / 10)}"/>`,
    );
  }
  // The bar's ends are data values, not nice ticks: three significant digits keep the label inside the image.
  const end = (v: number) => tickLabel(Number(v.toPrecision(3)));
  out.push(`<text x="${barX + 18}" y="${c(barTop + 8)}" fill="#333333">${end(hi)}</text>`);
  out.push(`<text x="${barX + 18}" y="${c(barTop + barH)}" fill="#333333">${end(lo)}</text>`);
  out.push("</svg>");
  return out.join("\n") + "\n";
}
