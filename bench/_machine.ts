/**
 * One line describing the machine a benchmark ran on (CPU model, logical cores, Deno and V8 versions, target),
 * printed at the top of every report so that numbers are never read without it.
 */

/** CPU model, core count and runtime, e.g. "AMD EPYC, 2 logical cores, Deno 2.9.6 (V8 …), x86_64-unknown-linux-gnu". */
export async function machine(): Promise<string> {
  let cpu = "unknown CPU";
  try {
    // node:os needs --allow-sys=cpus (the bench tasks grant it); /proc/cpuinfo would need --allow-all in Deno.
    const os = await import("node:os");
    cpu = os.cpus()[0]?.model ?? cpu;
  } catch { /* no permission: report the core count only */ }
  const cores = navigator.hardwareConcurrency ?? 1;
  return `${cpu}, ${cores} logical cores, Deno ${Deno.version.deno} (V8 ${Deno.version.v8}), ${Deno.build.target}`;
}
