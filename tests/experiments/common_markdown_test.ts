import assert from "node:assert/strict";
import { fmt, mdImage, mdTable } from "../../experiments/common/markdown.ts";
import { formatDuration, formatProgress } from "../../experiments/common/progress.ts";

Deno.test("markdown: fmt", () => {
  assert.equal(fmt(null), "—");
  assert.equal(fmt(undefined), "—");
  assert.equal(fmt(NaN), "—");
  assert.equal(fmt(Infinity), "∞");
  assert.equal(fmt(-Infinity), "-∞");
  assert.equal(fmt(0), "0");
  assert.equal(fmt(3.14159), "3.14");
  assert.equal(fmt(3.14159, 5), "3.1416");
  assert.equal(fmt(-0.012345), "-0.0123");
  assert.equal(fmt(0.00012345), "1.23e-4");
  assert.equal(fmt(2.5), "2.5");
  assert.equal(fmt(12345.6), "12346");
  assert.equal(fmt(999.6), "1000");
  // digits = 0 rounds to an integer at every magnitude (a CI bound below 1 used to reach toPrecision(0) and throw).
  assert.equal(fmt(271.6, 0), "272");
  assert.equal(fmt(0.4, 0), "0");
  assert.equal(fmt(-0.4, 0), "0");
  assert.equal(fmt(-3.6, 0), "-4");
  assert.throws(() => fmt(1, -1), /digits must be an integer in \[0, 100\], got -1/);
  assert.throws(() => fmt(1, 1.5), /got 1.5/);
});

Deno.test("markdown: mdTable aligns numeric columns, escapes pipes and checks row lengths", () => {
  const t = mdTable(["arm", "loss", "steps"], [["a|b", 3.14159, 100], ["c", null, 2.5]]);
  assert.equal(
    t,
    "| arm | loss | steps |\n| --- | ---: | ---: |\n| a\\|b | 3.14 | 100 |\n| c | — | 2.5 |\n",
  );
  assert.throws(() => mdTable(["a", "b"], [["x"]]), /row 0 has 1 cells, expected 2/);
  assert.equal(mdTable(["a"], []), "| a |\n| --- |\n");
});

Deno.test("markdown: mdImage", () => {
  assert.equal(mdImage("bias [E=4]", "plots/bias vs eps.svg"), "![bias \\[E=4\\]](plots/bias%20vs%20eps.svg)");
});

Deno.test("progress: durations and the progress line", () => {
  assert.equal(formatDuration(0), "0s");
  assert.equal(formatDuration(59.4), "59s");
  assert.equal(formatDuration(65), "1m05s");
  assert.equal(formatDuration(3725), "1h02m");
  assert.equal(formatDuration(NaN), "—");
  assert.equal(formatDuration(-1), "—");
  assert.equal(
    formatProgress({ label: "switch-seed0", step: 50, steps: 200, loss: 3.21, tokensPerSec: 12345.4, elapsedSec: 30 }),
    "[switch-seed0] step 50/200 (25.0%) loss 3.21 12,345 tok/s elapsed 30s ETA 1m30s",
  );
  assert.equal(
    formatProgress({ label: "cell", step: 0, steps: 10, elapsedSec: 0 }),
    "[cell] step 0/10 (0.0%) elapsed 0s ETA —",
  );
});
