/**
 * The Markdown report of the side-by-side benchmark (`step_vs_torch.ts`): the per-cell table (time and peak RSS
 * of each side and their ratios), the two-threads-vs-one table, and the headline ratios the issue's targets are
 * read from. Every ratio is moegrad ÷ PyTorch, so > 1 means moegrad is slower or larger. Where moegrad also ran
 * on a native BLAS, the tables get "moegrad+BLAS" columns and the headline its ratios, next to the default's.
 *
 * @module
 */
import type { Cell, Comparison, SideResult } from "./step_vs_torch.ts";
import { TORCH_INSTALL_HINT } from "./step_runner.ts";

const int = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const mib = (kib: number) => int.format(kib / 1024);
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;

/** A cell's measured sides, by name. */
type SideName = "moegrad" | "moegradBlas" | "torch";

/** "a× before, b× after". */
function ceilingText(c: { before: { speedup: number }; after: { speedup: number } }): string {
  return `${c.before.speedup.toFixed(2)}× before, ${c.after.speedup.toFixed(2)}× after`;
}

function cellAt(cells: Cell[], dim: number, threads: number): Cell | undefined {
  return cells.find((c) => c.dim === dim && c.threads === threads);
}

/**
 * `(1 thread, 2 threads)` values of `f(moegrad side, PyTorch side)` at `dim` for moegrad's `side`, "n/a" where a
 * cell or either side is missing.
 */
function byThreads(cells: Cell[], dim: number, side: SideName, f: (m: SideResult, t: SideResult) => string): string {
  return [1, 2].map((t) => {
    const c = cellAt(cells, dim, t), m = c?.[side];
    return `${t === 1 ? "1 thread" : "2 threads"} ${m && c?.torch ? f(m, c.torch) : "n/a"}`;
  }).join(", ");
}

function speedup(cells: Cell[], dim: number, side: SideName): string {
  const one = cellAt(cells, dim, 1)?.[side], two = cellAt(cells, dim, 2)?.[side];
  return one && two ? ratio(one.ms, two.ms) : "n/a";
}

/**
 * Two threads vs one round by round at `dim` for `side`: each round's one-thread process median ÷ its two-thread
 * one (the two ran in the same minutes), "n/a" where a cell is missing. Their spread is the host's drift that the
 * cell medians average over.
 */
function speedupByRound(cells: Cell[], dim: number, side: SideName): string {
  const one = cellAt(cells, dim, 1)?.[side]?.processMs, two = cellAt(cells, dim, 2)?.[side]?.processMs;
  if (!one || !two) return "n/a";
  return one.slice(0, two.length).map((ms, i) => ratio(ms, two[i])).join(", ");
}

const time = (m: SideResult, t: SideResult) => ratio(m.ms, t.ms);
const rss = (m: SideResult, t: SideResult) => ratio(m.peakRssKiB, t.peakRssKiB);

/** One side's cells of the main table: ms/step, its time ratio to PyTorch, peak RSS and its ratio. */
function sideColumns(m: SideResult | null, t: SideResult | null): string[] {
  if (!m) return ["—", "—", "—", "—"];
  return [int.format(m.ms), t ? time(m, t) : "—", mib(m.peakRssKiB), t ? rss(m, t) : "—"];
}

/** The report of a comparison, in Markdown. */
export function formatComparison(result: Comparison): string {
  const { plan, cells, torch } = result;
  const c0 = cells[0]?.moegrad.report.sizes;
  const lines: string[] = ["## moegrad vs PyTorch, one training step", ""];
  if (c0) {
    lines.push(
      `DecoderLM vocab ${c0.vocab}, ${c0.layers} layers, ${c0.heads} heads, RoPE; MoE FFN (hidden 4d, ${c0.experts} ` +
        `experts, top-1 SparseMixer v1, Switch balance loss 0.01) in every layer; batch ${c0.batch} × seq ${c0.seq}; ` +
        "f32; forward, cross-entropy, backward, clip 1.0, AdamW. PyTorch's step is `bench/torch_step.py` (same " +
        "architecture, sizes, routing, optimizer and clipping; experts dispatched by sorting the tokens by expert).",
      "",
      `Each cell: median of ${plan.rounds * plan.repeats} timed steps per side (${plan.rounds} process(es) per ` +
        `side, ${plan.warmup} warm-up step(s) each, the sides alternating). Peak RSS: getrusage's ru_maxrss of the ` +
        "side's own process (the largest over its processes). Ratios are moegrad ÷ PyTorch (> 1: moegrad slower or " +
        "larger).",
      "",
    );
  }
  lines.push(`Machine: ${result.machine}`);
  if (torch.ok) {
    const r = cells.find((c) => c.torch)?.torch?.report;
    lines.push(`PyTorch: ${r?.runtime ?? torch.version} (${torch.python}); BLAS loaded: ${r?.blas ?? "none found"}`);
  } else {
    lines.push(`PyTorch: comparison skipped, ${torch.reason}. ${TORCH_INSTALL_HINT}`);
  }
  lines.push(
    result.blas.ok
      ? `moegrad+BLAS: moegrad with --allow-ffi and setCpuOptions({ matmul: "blas" }), on ${result.blas.library}; ` +
        "moegrad: its default kernels (no --allow-ffi: WebAssembly)"
      : `moegrad+BLAS: not measured, ${result.blas.reason}`,
  );
  const dims = [...new Set(cells.map((c) => c.dim))];
  const params = dims.map((d) => {
    const c = cells.find((x) => x.dim === d)!;
    const loss = `first loss ${c.moegrad.firstLoss.toFixed(3)}${c.torch ? ` / ${c.torch.firstLoss.toFixed(3)}` : ""}`;
    return `d = ${d}: ${int.format(c.moegrad.parameters)} (${loss})`;
  });
  lines.push(
    `Parameters${torch.ok ? " (equal on both sides; first-step loss moegrad / PyTorch)" : ""}: ${params.join("; ")}`,
  );
  const withBlas = cells.some((c) => c.moegradBlas);
  const header = [
    "d",
    "threads",
    "moegrad ms/step",
    "PyTorch ms/step",
    "time moegrad ÷ PyTorch",
    "moegrad peak RSS MiB",
    "PyTorch peak RSS MiB",
    "RSS moegrad ÷ PyTorch",
    ...(withBlas ? ["moegrad+BLAS ms/step", "time moegrad+BLAS ÷ PyTorch", "moegrad+BLAS peak RSS MiB"] : []),
  ];
  const row = (values: string[]) => `| ${values.join(" | ")} |`;
  lines.push("", row(header), row(header.map(() => "---:")));
  for (const c of cells) {
    const t = c.torch, [ms, timeRatio, peak, rssRatio] = sideColumns(c.moegrad, t);
    const torchMs = t ? int.format(t.ms) : "—", torchPeak = t ? mib(t.peakRssKiB) : "—";
    const values = [`${c.dim}`, `${c.threads}`, ms, torchMs, timeRatio, peak, torchPeak, rssRatio];
    // moegrad+BLAS: ms/step, its time ratio and its peak RSS.
    if (withBlas) values.push(...sideColumns(c.moegradBlas, t).slice(0, 3));
    lines.push(row(values));
  }
  if (plan.threads.includes(1) && plan.threads.includes(2)) {
    const sides: SideName[] = withBlas ? ["moegrad", "moegradBlas", "torch"] : ["moegrad", "torch"];
    const names = { moegrad: "moegrad", moegradBlas: "moegrad+BLAS", torch: "PyTorch" };
    lines.push(
      "",
      "Two threads vs one (time at 1 thread ÷ time at 2):",
      "",
      row(["d", ...sides.map((s) => names[s])]),
      row(["---:", ...sides.map(() => "---:")]),
    );
    for (const d of dims) lines.push(row([`${d}`, ...sides.map((s) => speedup(cells, d, s))]));
    if (plan.rounds > 1) {
      lines.push(
        "",
        "Round by round (each round's one-thread process median ÷ its two-thread one, measured in the same minutes):",
        "",
        ...dims.map((d) => `- d = ${d}: ${sides.map((s) => `${names[s]} ${speedupByRound(cells, d, s)}`).join("; ")}`),
      );
    }
    const c = result.ceiling;
    if (c !== undefined) {
      lines.push(
        "",
        typeof c === "string"
          ? `This machine's two-thread ceiling for vector multiply-add work: not measured, ${c}.`
          : "This machine's two-thread ceiling for vector multiply-add work (bench/_fma_ceiling.ts: the WebAssembly " +
            "matmul on L2-resident 192³ products, two Workers against one, best of several runs), measured before " +
            `and after the comparison: ${ceilingText(c)}. A step that is mostly matmul cannot gain more from its ` +
            "second thread than that for long.",
      );
    }
  }
  if (torch.ok) {
    lines.push(
      "",
      "Headline ratios (moegrad ÷ PyTorch):",
      "",
      `- step time at d = 256: ${byThreads(cells, 256, "moegrad", time)}`,
      `- the gap at d = 512: ${byThreads(cells, 512, "moegrad", time)}`,
      `- two threads vs one on the step at d = 256: moegrad ${speedup(cells, 256, "moegrad")}, PyTorch ${
        speedup(cells, 256, "torch")
      }${
        result.ceiling && typeof result.ceiling !== "string"
          ? ` (this machine's ceiling: ${ceilingText(result.ceiling)})`
          : ""
      }`,
      `- peak RSS at d = 256: ${byThreads(cells, 256, "moegrad", rss)}`,
    );
    if (withBlas) {
      lines.push(
        `- with moegrad on the native BLAS, step time at d = 256: ${byThreads(cells, 256, "moegradBlas", time)}`,
        `- with moegrad on the native BLAS, the gap at d = 512: ${byThreads(cells, 512, "moegradBlas", time)}`,
        `- with moegrad on the native BLAS, two threads vs one at d = 256: ${speedup(cells, 256, "moegradBlas")}`,
        `- with moegrad on the native BLAS, peak RSS at d = 256: ${byThreads(cells, 256, "moegradBlas", rss)}`,
      );
    }
  }
  lines.push("", `Comparison time: ${result.seconds.toFixed(0)} s`);
  return lines.join("\n");
}
