/**
 * The Markdown report of the side-by-side benchmark (`step_vs_torch.ts`): the per-cell table (time and peak RSS
 * of each side and their ratios), the two-threads-vs-one table, and the headline ratios the issue's targets are
 * read from. Every ratio is moegrad ÷ PyTorch, so > 1 means moegrad is slower or larger.
 *
 * @module
 */
import type { Cell, Comparison, SideResult } from "./step_vs_torch.ts";
import { TORCH_INSTALL_HINT } from "./step_runner.ts";

const int = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const mib = (kib: number) => int.format(kib / 1024);
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;

function cellAt(cells: Cell[], dim: number, threads: number): Cell | undefined {
  return cells.find((c) => c.dim === dim && c.threads === threads);
}

/** `(1 thread, 2 threads)` values of `f` at `dim`, "n/a" where a cell is missing or has no PyTorch side. */
function byThreads(cells: Cell[], dim: number, f: (c: Cell & { torch: SideResult }) => string): string {
  return [1, 2].map((t) => {
    const c = cellAt(cells, dim, t);
    return `${t === 1 ? "1 thread" : "2 threads"} ${c?.torch ? f(c as Cell & { torch: SideResult }) : "n/a"}`;
  }).join(", ");
}

function speedup(cells: Cell[], dim: number, side: "moegrad" | "torch"): string {
  const one = cellAt(cells, dim, 1)?.[side], two = cellAt(cells, dim, 2)?.[side];
  return one && two ? ratio(one.ms, two.ms) : "n/a";
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
  const dims = [...new Set(cells.map((c) => c.dim))];
  const params = dims.map((d) => {
    const c = cells.find((x) => x.dim === d)!;
    const loss = `first loss ${c.moegrad.firstLoss.toFixed(3)}${c.torch ? ` / ${c.torch.firstLoss.toFixed(3)}` : ""}`;
    return `d = ${d}: ${int.format(c.moegrad.parameters)} (${loss})`;
  });
  lines.push(
    `Parameters${torch.ok ? " (equal on both sides; first-step loss moegrad / PyTorch)" : ""}: ${params.join("; ")}`,
  );
  lines.push(
    "",
    "| d | threads | moegrad ms/step | PyTorch ms/step | time moegrad ÷ PyTorch | moegrad peak RSS MiB | PyTorch peak RSS MiB | RSS moegrad ÷ PyTorch |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  );
  for (const c of cells) {
    const m = c.moegrad, t = c.torch;
    lines.push(
      `| ${c.dim} | ${c.threads} | ${int.format(m.ms)} | ${t ? int.format(t.ms) : "—"} | ${
        t ? ratio(m.ms, t.ms) : "—"
      } | ` +
        `${mib(m.peakRssKiB)} | ${t ? mib(t.peakRssKiB) : "—"} | ${t ? ratio(m.peakRssKiB, t.peakRssKiB) : "—"} |`,
    );
  }
  if (plan.threads.includes(1) && plan.threads.includes(2)) {
    lines.push(
      "",
      "Two threads vs one (time at 1 thread ÷ time at 2):",
      "",
      "| d | moegrad | PyTorch |",
      "| ---: | ---: | ---: |",
    );
    for (const d of dims) lines.push(`| ${d} | ${speedup(cells, d, "moegrad")} | ${speedup(cells, d, "torch")} |`);
  }
  if (torch.ok) {
    const time = (c: Cell & { torch: SideResult }) => ratio(c.moegrad.ms, c.torch.ms);
    const rss = (c: Cell & { torch: SideResult }) => ratio(c.moegrad.peakRssKiB, c.torch.peakRssKiB);
    lines.push(
      "",
      "Headline ratios (moegrad ÷ PyTorch):",
      "",
      `- step time at d = 256: ${byThreads(cells, 256, time)}`,
      `- the gap at d = 512: ${byThreads(cells, 512, time)}`,
      `- two threads vs one on the step at d = 256: moegrad ${speedup(cells, 256, "moegrad")}, PyTorch ${
        speedup(cells, 256, "torch")
      }`,
      `- peak RSS at d = 256: ${byThreads(cells, 256, rss)}`,
    );
  }
  lines.push("", `Comparison time: ${result.seconds.toFixed(0)} s`);
  return lines.join("\n");
}
