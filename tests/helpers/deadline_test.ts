/**
 * The WebGPU tests' time bound without a GPU: a body that never settles fails by its deadline, naming itself
 * and the bound; and the watchdog's alarm rings while the test's thread is blocked, where no timer of that
 * thread could.
 */
import assert from "node:assert/strict";
import { DeadlineError, formatBound, withDeadline } from "./deadline.ts";
import { Watchdog } from "./gpu_watchdog.ts";

Deno.test("a body that never settles fails by its deadline, naming the test and the bound", async () => {
  const never = () => new Promise<void>(() => {});
  await assert.rejects(withDeadline(never, 50, 'webgpu test "hangs"'), (e) => {
    assert.ok(e instanceof DeadlineError);
    assert.equal(e.message, 'webgpu test "hangs" did not finish within 50 ms');
    return true;
  });
});

Deno.test("a body within its deadline settles as it would without one", async () => {
  assert.equal(await withDeadline(() => Promise.resolve(7), 10_000, "t"), 7);
  assert.equal(await withDeadline(() => 8, 10_000, "t"), 8);
  await assert.rejects(withDeadline(() => Promise.reject(new Error("own")), 10_000, "t"), /own/);
  await assert.rejects(
    withDeadline(
      () => {
        throw new Error("sync");
      },
      10_000,
      "t",
    ),
    /sync/,
  );
  // The test sanitizer fails this test if any of the 10 s timers above was left running.
});

Deno.test("bounds read in seconds from 1 s up", () => {
  assert.equal(formatBound(250), "250 ms");
  assert.equal(formatBound(180_000), "180 s");
});

const readable = Deno.permissions.querySync({ name: "read" }).state === "granted";

Deno.test({
  name: "the watchdog rings while the test thread is blocked, and not once disarmed",
  ignore: !readable, // its worker module is read from disk
  fn: async () => {
    const dog = new Watchdog();
    try {
      const ring = () =>
        new Promise<{ expired: string; at: number }>((resolve) => {
          dog.worker!.onmessage = (e) => resolve(e.data);
        });
      // First make sure the worker thread runs: under a loaded parallel test run its start can take seconds,
      // and an alarm it has not yet received cannot ring while this thread is blocked.
      const warm = ring();
      dog.arm("warm-up", 1, "report");
      assert.equal((await warm).expired, "warm-up");
      const rang = ring();
      dog.arm("disarmed", 100, "report");
      dog.disarm();
      dog.arm("blocked", 200, "report");
      // Stand-in for a native call that never returns: this thread runs no timers until the loop ends.
      const until = Date.now() + 1500;
      while (Date.now() < until) { /* blocked */ }
      const { expired, at } = await rang;
      assert.equal(expired, "blocked");
      assert.ok(at < until, `rang ${at - until} ms after the thread was free again`);
    } finally {
      dog.stop();
    }
  },
});
