/**
 * Executing the runs of an LM experiment: either one subprocess per run (`run_one.ts`), at most `jobs` at a time,
 * or in this process one after the other (with `--jobs 1`, or when the process may not start subprocesses, as in
 * the test suite). Both report progress through the same callback, so the caller prints one line per report plus
 * an overall ETA whatever the mode.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { writeJsonAtomic } from "../common/io.ts";
import { onShutdown } from "../common/shutdown.ts";
import type { RunConfig } from "./run_config.ts";
import { runLm } from "./run.ts";

/** One run to execute. */
export interface RunJob {
  /** `<arm>-seed<s>`. */
  name: string;
  /** Arm name. */
  arm: string;
  /** Seed. */
  seed: number;
  /** The run directory. */
  dir: string;
  /** The run's resolved config. */
  config: RunConfig;
}

/** A progress report of one run (train records only carry loss and throughput). */
export interface JobProgress {
  /** The run (`<arm>-seed<s>`). */
  name: string;
  /** Steps done. */
  step: number;
  /** Steps of the run. */
  steps: number;
  /** Training LM loss of the latest train record. */
  loss?: number;
  /** Throughput of the latest train record. */
  tokensPerSec?: number;
  /** Seconds this run has trained (all segments of a resumed run). */
  elapsedSec?: number;
  /** A free-form event (resume, eval) instead of a train report. */
  note?: string;
}

/** How the jobs run. */
export interface JobOptions {
  /** Resume each run from its newest checkpoint. */
  resume: boolean;
  /** Where the tokenized data is cached (shared by every run). */
  dataCacheDir: string;
  /** Parallel subprocesses; 1 (or `inProcess`) runs the jobs here, sequentially. */
  jobs: number;
  /** Run in this process even when jobs > 1 (no `--allow-run`). */
  inProcess: boolean;
  /** Progress callback. */
  onProgress(p: JobProgress): void;
  /** A run's stray output line (warnings, errors of a subprocess). */
  onOutput?(name: string, line: string): void;
  /** Called when a run starts (in-process or spawned). */
  onStart?(name: string): void;
}

/** Result of one job. */
export interface JobResult {
  /** The run. */
  name: string;
  /** Whether it completed. */
  ok: boolean;
  /** Error message or the tail of a failed subprocess's stderr. */
  error?: string;
}

const RUN_ONE = fileURLToPath(new URL("./run_one.ts", import.meta.url));

/** Runs every job (see the module docs); never throws for a failed run, it reports it in the results. */
export async function runJobs(jobs: RunJob[], options: JobOptions): Promise<JobResult[]> {
  if (options.inProcess || options.jobs <= 1) {
    const results: JobResult[] = [];
    for (const job of jobs) results.push(await runInProcess(job, options));
    return results;
  }
  const results: JobResult[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await runSubprocess(jobs[i], options);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.jobs, jobs.length) }, worker));
  return results;
}

async function runInProcess(job: RunJob, options: JobOptions): Promise<JobResult> {
  options.onStart?.(job.name);
  try {
    await runLm(job.config, job.dir, {
      resume: options.resume,
      dataCacheDir: options.dataCacheDir,
      onWarning: (message) => options.onOutput?.(job.name, message),
      onProgress: (p) => {
        if (p.kind === "train") {
          options.onProgress({
            name: job.name,
            step: p.step,
            steps: p.steps,
            loss: p.loss,
            tokensPerSec: p.tokensPerSec,
            elapsedSec: p.elapsedSec,
          });
        } else if (p.kind === "resume") {
          options.onProgress({ name: job.name, step: p.step, steps: p.steps, note: `resumed from step ${p.step}` });
        } else {
          options.onProgress({
            name: job.name,
            step: p.step,
            steps: p.steps,
            note: `eval ${p.split} loss ${p.loss.toFixed(4)}`,
          });
        }
      },
    });
    return { name: job.name, ok: true };
  } catch (e) {
    return { name: job.name, ok: false, error: e instanceof Error ? e.stack ?? e.message : String(e) };
  }
}

/**
 * Parses a progress line of `run_one.ts` (the `formatProgress` format: `[label] step 12/600 (2.0%) loss 4.5678
 * 1,234 tok/s elapsed 3s ETA 2m 30s`); null for any other line.
 */
export function parseProgressLine(line: string): Omit<JobProgress, "name"> | null {
  const m = /\bstep (\d+)\/(\d+)/.exec(line);
  if (!m) return null;
  const out: Omit<JobProgress, "name"> = { step: Number(m[1]), steps: Number(m[2]) };
  const loss = /\bloss (-?[\d.]+(?:e[-+]?\d+)?)/i.exec(line);
  if (loss) out.loss = Number(loss[1]);
  const tps = /([\d,.]+) tok\/s/.exec(line);
  if (tps) out.tokensPerSec = Number(tps[1].replaceAll(",", ""));
  const rest = line.slice(m.index + m[0].length).trim();
  if (/^(eval|resum)/i.test(rest)) out.note = rest;
  return out;
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buf = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, nl).replace(/\r$/, "");
      buf = buf.slice(nl + 1);
    }
  }
  if (buf) yield buf;
}

async function runSubprocess(job: RunJob, options: JobOptions): Promise<JobResult> {
  const configPath = `${job.dir}/run.json`;
  await writeJsonAtomic(configPath, job.config);
  const args = [
    "run",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-sys=cpus", // env.json's CPU model
    RUN_ONE,
    "--config",
    configPath,
    "--dir",
    job.dir,
    "--data-cache",
    options.dataCacheDir,
    "--exit-with-parent",
  ];
  if (options.resume) args.push("--resume");
  options.onStart?.(job.name);
  // The child's stdin is a pipe this process never writes: when this process dies, even by SIGKILL, the pipe
  // closes and the child (--exit-with-parent) stops, instead of writing on beside a later --resume.
  const child = new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped", stdin: "piped" }).spawn();
  // On SIGINT/SIGTERM of this process, stop the child and wait for it (it releases its run lock on the way).
  const unregister = onShutdown(async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already exited */ }
    const timeout = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 10_000));
    if (await Promise.race([child.status, timeout]) === "timeout") {
      try {
        child.kill("SIGKILL");
      } catch { /* exited meanwhile */ }
    }
  });
  const stderrTail: string[] = [];
  const readOut = (async () => {
    for await (const line of lines(child.stdout)) {
      const p = parseProgressLine(line);
      if (p) options.onProgress({ name: job.name, ...p });
      else if (line.trim()) options.onOutput?.(job.name, line.replace(/^\[[^\]]*\]\s*/, ""));
    }
  })();
  const readErr = (async () => {
    for await (const line of lines(child.stderr)) {
      stderrTail.push(line);
      if (stderrTail.length > 40) stderrTail.shift();
      options.onOutput?.(job.name, line);
    }
  })();
  const status = await child.status;
  unregister();
  await child.stdin.close().catch(() => {}); // the child is gone; the pipe may already be broken
  await Promise.all([readOut, readErr]);
  return status.success
    ? { name: job.name, ok: true }
    : { name: job.name, ok: false, error: `exit code ${status.code}:\n${stderrTail.join("\n")}` };
}
