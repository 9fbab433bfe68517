/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * The watchdog's own thread (see {@link ./gpu_watchdog.ts}). It keeps one alarm: "arm" sets it for the
 * named test, "disarm" clears it. When it rings, the test's thread has not answered within the bound, so
 * it is stuck in a native call and no timer there can fire: this thread says so on stderr and ends the
 * process (`end: "kill"`), or only reports back (`end: "report"`, for the watchdog's own test).
 */
import type { WatchdogMessage } from "./gpu_watchdog.ts";
import { formatBound } from "./deadline.ts";

let alarm: ReturnType<typeof setTimeout> | undefined;

function ring(name: string, ms: number, end: "kill" | "report"): void {
  if (end === "report") {
    self.postMessage({ expired: name, at: Date.now() });
    return;
  }
  const text = `\nwebgpu watchdog: ${name} is still running ${formatBound(ms)} after it started; its thread is ` +
    `stuck in a GPU call that has not returned (a spinning shader, or a driver compiling one), so no test ` +
    `timeout can fire there. Ending the process.\n`;
  Deno.stderr.writeSync(new TextEncoder().encode(text));
  try {
    // Deno lets a process signal itself without --allow-run; SIGKILL follows if something handles SIGTERM.
    Deno.kill(Deno.pid, "SIGTERM");
    setTimeout(() => Deno.kill(Deno.pid, "SIGKILL"), 5000);
  } catch (e) {
    Deno.stderr.writeSync(new TextEncoder().encode(`webgpu watchdog: could not end the process: ${e}\n`));
  }
}

self.onmessage = (e: MessageEvent<WatchdogMessage>) => {
  clearTimeout(alarm);
  alarm = undefined;
  const m = e.data;
  if (m.kind === "arm") alarm = setTimeout(() => ring(m.name, m.ms, m.end), m.ms);
};
