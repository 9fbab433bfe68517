/**
 * Starts the children of the side-by-side benchmark: `step_child.ts` under this Deno, `torch_step.py` under the
 * system Python, one process per measurement (see `step_protocol.ts` for why), and checks their answers.
 *
 * PyTorch is optional: {@link probeTorch} says whether the Python interpreter (`/usr/bin/python3`, Debian's
 * `python3-torch` being built for it; `MOEGRAD_BENCH_PYTHON` overrides it) can import torch.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { parseReport, requestArgs, type StepReport, type StepRequest } from "./step_protocol.ts";

/** The two implementations compared. */
export type Side = StepReport["side"];

/** How to install what the comparison needs (printed when it is skipped). */
export const TORCH_INSTALL_HINT =
  "On Debian or Ubuntu: `sudo apt-get install -y python3-torch libopenblas0-pthread` (run by /usr/bin/python3); " +
  "or set MOEGRAD_BENCH_PYTHON to a python3 that can `import torch`.";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TORCH_SCRIPT = fileURLToPath(new URL("./torch_step.py", import.meta.url));
const MOEGRAD_CHILD = fileURLToPath(new URL("./step_child.ts", import.meta.url));
/**
 * What the moegrad child may do: read its WebAssembly kernel, read its options' variables, count cores; and,
 * only when the request names a matmul kernel other than `wasm`, load a native BLAS (`--allow-ffi`): the
 * default child stays on WebAssembly whatever the machine has.
 */
function childPermissions(request: StepRequest): string[] {
  const ffi = request.matmul !== undefined && request.matmul !== "wasm";
  return ["--allow-read", "--allow-env", ...(ffi ? ["--allow-ffi"] : []), "--allow-sys=cpus"];
}

/** The Python interpreter the comparison runs (`MOEGRAD_BENCH_PYTHON`, else `/usr/bin/python3`). */
export function pythonPath(): string {
  let override: string | undefined;
  try {
    override = Deno.env.get("MOEGRAD_BENCH_PYTHON");
  } catch { /* no env permission: the default */ }
  return override || "/usr/bin/python3";
}

/** Whether PyTorch can run: its version, or why not. */
export type TorchProbe = { ok: true; python: string; version: string } | { ok: false; python: string; reason: string };

/** Asks `python` for `torch.__version__` (never throws: a missing interpreter or module is a reason). */
export async function probeTorch(python: string = pythonPath()): Promise<TorchProbe> {
  if (Deno.permissions.querySync({ name: "run" }).state !== "granted") {
    return { ok: false, python, reason: "the benchmark was run without --allow-run" };
  }
  try {
    const out = await new Deno.Command(python, {
      args: ["-c", "import torch; print(torch.__version__)"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = (b: Uint8Array) => new TextDecoder().decode(b).trim();
    if (out.code === 0) return { ok: true, python, version: text(out.stdout) };
    return { ok: false, python, reason: `${python} cannot import torch (${text(out.stderr).split("\n").at(-1)})` };
  } catch (e) {
    return { ok: false, python, reason: `${python} could not be started (${(e as Error).message})` };
  }
}

/**
 * Linux keeps `ru_maxrss` across `execve`, and a process forked from this one starts with this one's high-water
 * mark: a child exec'd directly would report the benchmark's own peak whenever that is larger (it did, 1,335 MiB
 * for both sides after `report.ts`'s tables). So each child is forked by a small shell instead, whose `"$@"`
 * runs it as a separate process (the trailing `exit` keeps the shell from exec'ing it in place).
 */
const VIA_SHELL = ["/bin/sh", "-c", '"$@"; exit $?', "sh"];

/** The command line of one side's child for `request`. */
export function childCommand(side: Side, request: StepRequest, python: string = pythonPath()): [string, string[]] {
  const args = requestArgs(request);
  const [command, ...rest] = side === "moegrad"
    ? [Deno.execPath(), "run", ...childPermissions(request), MOEGRAD_CHILD, ...args]
    : [python, TORCH_SCRIPT, ...args];
  return Deno.build.os === "windows" ? [command, rest] : [VIA_SHELL[0], [...VIA_SHELL.slice(1), command, ...rest]];
}

/**
 * Runs one side's child for `request` and returns its answer, checked to come from that side with the
 * requested sizes and threads (and on a native BLAS when it asked for `matmul: "blas"`). Throws with the child's
 * stderr when it fails.
 */
export async function runSide(side: Side, request: StepRequest, python?: string): Promise<StepReport> {
  const [command, args] = childCommand(side, request, python);
  const out = await new Deno.Command(command, { args, cwd: ROOT, stdout: "piped", stderr: "piped" }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (out.code !== 0) {
    const stderr = new TextDecoder().decode(out.stderr);
    throw new Error(`${side} step child exited with ${out.code}:\n${stderr.slice(-3000)}`);
  }
  const report = parseReport(stdout);
  const mismatch = report.side !== side || report.threads !== request.threads ||
    JSON.stringify(report.sizes) !== JSON.stringify(request.sizes) ||
    (request.matmul === "blas" && report.blas === null);
  if (mismatch) {
    throw new Error(`${side} step child answered for another request: ${JSON.stringify(report)}`);
  }
  return report;
}
