import assert from "node:assert/strict";
import { barChart, escapeXml, lineChart, logTicks, niceTicks, PALETTE } from "../../experiments/common/svg.ts";
import { svgProblems } from "../../experiments/common/svg_check.ts";

function assertWellFormed(svg: string) {
  assert.deepEqual(svgProblems(svg), []);
}

Deno.test("svg: the checker catches unbalanced tags, stray text and non-finite numbers", () => {
  const ns = 'xmlns="http://www.w3.org/2000/svg"';
  assert.deepEqual(svgProblems(`<svg ${ns}><g><rect x="1" y="2"/></g></svg>`), []);
  assert.match(svgProblems(`<svg ${ns}><g></svg>`).join(), /<\/svg> closes <g>/);
  assert.match(svgProblems(`<svg ${ns}><rect x="NaN"/></svg>`).join(), /x="NaN" is not a finite number/);
  assert.match(svgProblems(`<svg ${ns}><polyline points="1,2 3,Infinity"/></svg>`).join(), /non-finite/);
  assert.match(svgProblems(`<svg ${ns}><text>a & b</text></svg>`).join(), /unescaped "&"/);
  assert.match(svgProblems(`<svg ${ns}><text>a < b</text></svg>`).join(), /stray/);
  assert.match(svgProblems(`<svg><g/></svg>`).join(), /xmlns/);
  assert.match(svgProblems(`<svg ${ns}></svg><svg ${ns}></svg>`).join(), /exactly one root/);
  assert.match(svgProblems(`<svg ${ns}>`).join(), /unclosed/);
});

Deno.test("svg: nice ticks", () => {
  assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0.13, 0.87, 4), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(-3, 7, 5), [-4, -2, 0, 2, 4, 6, 8]);
  assert.deepEqual(niceTicks(5, 5, 4).length > 1, true);
  assert.deepEqual(logTicks(0.03, 40), [0.01, 0.1, 1, 10, 100]);
  assert.deepEqual(logTicks(2, 30), [1, 2, 5, 10, 20, 50]);
});

Deno.test("svg: a line chart with bands, dashes, log axes, gaps and hlines is well formed", () => {
  const svg = lineChart({
    title: "bias <vs> ε & τ",
    xLabel: "ε",
    yLabel: "relative bias",
    series: [
      { label: "switch", x: [0.01, 0.1, 1], y: [0.5, 0.6, 0.7], lo: [0.4, 0.5, 0.6], hi: [0.6, 0.7, 0.8] },
      { label: "sparsemixer", x: [0.01, 0.1, 1, 10], y: [0.1, NaN, 0, 0.05], dashed: true },
    ],
    logX: true,
    logY: true,
    hlines: [{ y: 0.3, label: "reference" }],
  });
  assertWellFormed(svg);
  assert.ok(svg.includes("bias &lt;vs&gt; ε &amp; τ"));
  assert.ok(svg.includes(PALETTE[0]) && svg.includes(PALETTE[1]));
  assert.ok(svg.includes('stroke-dasharray="6 4"'));
  assert.ok(svg.includes("<polygon")); // band
  assert.ok(svg.includes(">reference</text>"));
  assert.ok(svg.includes(">switch</text>") && svg.includes(">sparsemixer</text>"));
  // The NaN and the 0 (log axis) are skipped: the second series draws no polyline of 2+ points there.
  assert.ok(!svg.includes("NaN"));
  assert.throws(
    () => lineChart({ title: "", xLabel: "", yLabel: "", series: [{ label: "a", x: [1], y: [] }] }),
    /1 x but 0 y/,
  );
});

Deno.test("svg: empty and degenerate inputs still give a valid document", () => {
  assertWellFormed(lineChart({ title: "empty", xLabel: "x", yLabel: "y", series: [] }));
  assertWellFormed(lineChart({ title: "one", xLabel: "x", yLabel: "y", series: [{ label: "a", x: [1], y: [1] }] }));
  assertWellFormed(barChart({ title: "empty", yLabel: "y", categories: [], groups: [] }));
});

Deno.test("svg: a bar chart with error bars (linear and log) is well formed", () => {
  for (const logY of [false, true]) {
    const svg = barChart({
      title: "bias by estimator",
      yLabel: "relative bias",
      categories: ["linear", "quadratic", "a-much-longer-category-name-that-rotates"],
      groups: [
        { label: "switch", values: [0.5, 0.7, 0.2], err: [0.05, 0.02, 0.01] },
        { label: "sparsemixer", values: [0.01, -0.02, Infinity] },
      ],
      logY,
    });
    assertWellFormed(svg);
    assert.equal((svg.match(/<rect /g) ?? []).length, 1 + (logY ? 4 : 5)); // background + drawable bars
  }
  assert.throws(
    () => barChart({ title: "", yLabel: "", categories: ["a"], groups: [{ label: "g", values: [] }] }),
    /expected 1/,
  );
  assert.equal(escapeXml(`<a href="x">&'`), "&lt;a href=&quot;x&quot;&gt;&amp;&apos;");
});

Deno.test("svg: explicit colours win over the palette order, and bars take asymmetric interval edges", () => {
  const line = lineChart({
    title: "t",
    xLabel: "x",
    yLabel: "y",
    series: [{ label: "second-arm", x: [0, 1], y: [1, 2], lo: [0.5, 1.5], hi: [1.5, 2.5], color: PALETTE[3] }],
  });
  assertWellFormed(line);
  assert.ok(line.includes(`stroke="${PALETTE[3]}"`) && !line.includes(PALETTE[0]));
  const bars = barChart({
    title: "t",
    yLabel: "y",
    categories: ["c"],
    groups: [{ label: "g", values: [0.1], lo: [0], hi: [0.5], color: PALETTE[2] }],
  });
  assertWellFormed(bars);
  assert.ok(bars.includes(`fill="${PALETTE[2]}"`));
  // The error bar reaches its upper edge 0.5 (the axis extends to it), not a symmetric ± around the bar's 0.1.
  assert.ok(bars.includes(">0.5</text>"), "the y axis covers the interval's upper edge");
  assert.throws(
    () => barChart({ title: "", yLabel: "", categories: ["a"], groups: [{ label: "g", values: [1], lo: [] }] }),
    /lo has 0 values/,
  );
});
