/**
 * The protocol between the side-by-side benchmark (`step_vs_torch.ts`) and its child processes (`step_child.ts`
 * for moegrad, `torch_step.py` for PyTorch): the request is a command line, the answer ONE JSON line, the last
 * line the child prints on stdout.
 *
 * Each configuration runs in its own process so that the peak resident set size it reports (getrusage's
 * `ru_maxrss` of the child itself, in KiB: `process.resourceUsage().maxRSS` in Deno, `resource.getrusage` in
 * Python) is that side's alone, and so that one side's allocator or thread pool never slows the other. The
 * children are forked by a shell, not by the benchmark itself, so that they do not inherit its high-water mark
 * (`step_runner.ts`).
 *
 *     --vocab 256 --dim 256 --layers 4 --heads 4 --experts 8 --batch 4 --seq 128 --threads 2 --warmup 1 --repeats 3 [--matmul blas]
 *
 * @module
 */
import { z } from "../deps.ts";
import type { MatmulChoice } from "../core/mod.ts";

/** The model and batch of the compared step (the routing, losses and optimizer are fixed: see `train_moe.ts`). */
export interface StepSizes {
  /** Vocabulary size. */
  vocab: number;
  /** Model width d. */
  dim: number;
  /** Transformer layers (each with a MoE FFN). */
  layers: number;
  /** Attention heads. */
  heads: number;
  /** Experts per MoE layer. */
  experts: number;
  /** Sequences per batch. */
  batch: number;
  /** Tokens per sequence. */
  seq: number;
}

/** What a child is asked to do: build the model at `sizes`, run `warmup` untimed steps, then time `repeats`. */
export interface StepRequest {
  /** The sizes. */
  sizes: StepSizes;
  /** Threads the side may use (moegrad's `setCpuOptions({ threads })`; PyTorch's intra-op and BLAS threads). */
  threads: number;
  /** Untimed steps first. */
  warmup: number;
  /** Timed steps. */
  repeats: number;
  /**
   * moegrad's matmul kernel (`setCpuOptions({ matmul })`; `blas` needs the child to have `--allow-ffi`);
   * omitted: the default, which without `--allow-ffi` is WebAssembly. PyTorch's child is never asked for one.
   */
  matmul?: MatmulChoice;
}

/** The matmul kernels a request may name (`CpuOptions.matmul`). */
const MATMUL_CHOICES = ["auto", "wasm", "blas"] as const;

const SIZE_KEYS = ["vocab", "dim", "layers", "heads", "experts", "batch", "seq"] as const;
const RUN_KEYS = ["threads", "warmup", "repeats"] as const;

const count = z.int().min(0);
const positive = z.int().min(1);

const sizesSchema = z.strictObject({
  vocab: positive,
  dim: positive,
  layers: positive,
  heads: positive,
  experts: positive,
  batch: positive,
  seq: positive,
});

/** The schema of a child's answer (both children print exactly these fields). */
export const stepReportSchema = z.strictObject({
  /** Which implementation answered. */
  side: z.enum(["moegrad", "torch"]),
  /** The sizes it built (echoed, so a mix-up shows). */
  sizes: sizesSchema,
  /** The threads it used. */
  threads: positive,
  /** Trainable scalars of its model (must be equal on both sides). */
  parameters: positive,
  /** Wall time of each timed step, ms. */
  stepMs: z.array(z.number().nonnegative()),
  /** Loss of every step run, warm-up included. */
  losses: z.array(z.number()),
  /** Peak resident set size of the whole child process, KiB. */
  peakRssKiB: z.number().positive(),
  /** Runtime and version, e.g. "Deno 2.9.6" or "PyTorch 1.13.0, Python 3.11.2". */
  runtime: z.string(),
  /**
   * The BLAS shared libraries mapped into the process (PyTorch), or the library moegrad's matmuls ran on
   * (`vendor (build) at path`), or null (moegrad on its own kernels).
   */
  blas: z.string().nullable(),
});

/** A child's answer (see {@link stepReportSchema}). */
export type StepReport = z.infer<typeof stepReportSchema>;

/** The command-line arguments that ask a child for `request` (the same for both children). */
export function requestArgs(request: StepRequest): string[] {
  const args: string[] = [];
  for (const key of SIZE_KEYS) args.push(`--${key}`, String(request.sizes[key]));
  for (const key of RUN_KEYS) args.push(`--${key}`, String(request[key]));
  if (request.matmul !== undefined) args.push("--matmul", request.matmul);
  return args;
}

/**
 * Parses {@link requestArgs}' output back (the moegrad child's side); every flag but `--matmul` is required.
 */
export function parseRequestArgs(args: readonly string[]): StepRequest {
  const values = new Map<string, number>();
  let matmul: MatmulChoice | undefined;
  for (let i = 0; i < args.length; i += 2) {
    const flag = args[i], value = Number(args[i + 1]);
    if (flag === "--matmul") {
      const choice = MATMUL_CHOICES.find((c) => c === args[i + 1]);
      if (!choice) throw new RangeError(`step child: --matmul must be auto, wasm or blas, got ${args[i + 1]}`);
      matmul = choice;
      continue;
    }
    if (!flag.startsWith("--") || !Number.isInteger(value)) {
      throw new RangeError(`step child: expected "--name integer" pairs, got ${JSON.stringify(args.slice(i, i + 2))}`);
    }
    values.set(flag.slice(2), value);
  }
  const pick = (key: string) => values.get(key);
  const sizes = sizesSchema.parse(Object.fromEntries(SIZE_KEYS.map((k) => [k, pick(k)])));
  const run = z.strictObject({ threads: positive, warmup: count, repeats: count }).parse(
    Object.fromEntries(RUN_KEYS.map((k) => [k, pick(k)])),
  );
  const unknown = [...values.keys()].filter((k) =>
    !(SIZE_KEYS as readonly string[]).includes(k) && !(RUN_KEYS as readonly string[]).includes(k)
  );
  if (unknown.length) throw new RangeError(`step child: unknown flags ${unknown.map((k) => `--${k}`).join(", ")}`);
  return matmul === undefined ? { sizes, ...run } : { sizes, ...run, matmul };
}

/** The line a child prints as its answer. */
export function formatReport(report: StepReport): string {
  return JSON.stringify(report);
}

/**
 * The answer in a child's stdout: its last non-empty line, parsed and validated. Throws with the child's
 * output when it is missing or malformed.
 */
export function parseReport(stdout: string): StepReport {
  const last = stdout.trimEnd().split("\n").at(-1) ?? "";
  let json: unknown;
  try {
    json = JSON.parse(last);
  } catch {
    throw new Error(`step child: the last line of its output is not JSON:\n${stdout.slice(-2000)}`);
  }
  const parsed = stepReportSchema.safeParse(json);
  if (!parsed.success) throw new Error(`step child: malformed answer ${last}: ${parsed.error.message}`);
  return parsed.data;
}
