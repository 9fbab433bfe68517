/**
 * WebGPU matmul throughput and dispatch overhead, with tfjs-backend-webgpu's matmul as a peer.
 *
 *     XDG_RUNTIME_DIR=/tmp deno task bench:webgpu [--sizes=256,512] [--budget=3000] [--no-tfjs]
 *
 * For each square f32 size: GFLOP/s (2·n³ / time per product) of the register kernel, the tiled kernel, the
 * automatic choice (the family the backend uses) and tfjs's `tf.matMul` on the webgpu backend. Each
 * measurement warms up (pipeline compilation, first touch), then encodes `iters` products back to back
 * and waits once (`await rt.sync()`); `iters` is sized to a time budget per measurement, so the slow
 * sizes on a software adapter run once. Where the estimated product time exceeds the budget the warm-up
 * is skipped: our pipelines depend only on the specialisation, which the previous size compiled; a
 * measurement that compiled a pipeline anyway is marked "(+compile)". Every result is spot-checked
 * against f64 dot products on the host before it is reported.
 *
 * Then the cost of a tiny dispatch: 1000 one-element `fill`s (and 1×1×1 matmuls) encoded back to back,
 * timed encode-only and encode + submit + sync, plus one dispatch followed by a sync (the round trip).
 *
 * Exits 0 with a message when there is no WebGPU adapter.
 */
import { WebGpuRuntime } from "../kernels/webgpu/runtime.ts";
import type { GpuBuffer } from "../kernels/webgpu/runtime.ts";
import { chooseMatmulVariant, type MatmulConfig, matmulKernels } from "../kernels/webgpu/matmul.ts";
import { elementwiseKernels } from "../kernels/webgpu/elementwise.ts";
import type { TensorRef } from "../kernels/registry.ts";
import { filled } from "../tests/helpers/host_rng.ts";

/** The peer, pinned (tfjs-core and tfjs-backend-webgpu must be the same release). */
const TFJS_VERSION = "4.22.0";

function flag(name: string): string | undefined {
  const arg = Deno.args.find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  return arg === undefined ? undefined : arg.split("=")[1] ?? "";
}
const SIZES = (flag("sizes") ?? "256,512,1024,2048").split(",").map(Number);
/** Target wall time of one measurement's timed loop, ms. */
const BUDGET_MS = Number(flag("budget") ?? 3000);
/** Above this estimated time per product (ms), skip the warm-up. */
const NO_WARMUP_MS = 10_000;
const MAX_ITERS = 50;

const adapter = await navigator.gpu?.requestAdapter().catch(() => null);
const device = adapter ? await adapter.requestDevice().catch(() => null) : null;
if (!adapter || !device) {
  console.log(
    `webgpu matmul bench: no WebGPU adapter here (navigator.gpu ${
      navigator.gpu ? "present, but no adapter/device" : "absent"
    }); nothing to measure. On Linux without a GPU, install Mesa's llvmpipe Vulkan driver and set XDG_RUNTIME_DIR.`,
  );
  Deno.exit(0);
}
const rt = new WebGpuRuntime(device, adapter.info, adapter.info.isFallbackAdapter);
const adapterName = `${adapter.info.description || adapter.info.vendor} (${rt.isSoftware ? "software" : "hardware"})`;
console.log(`adapter: ${adapterName}; Deno ${Deno.version.deno}; ${navigator.hardwareConcurrency} CPU threads`);

/** Compares 64 sampled entries of `got` (n×n) with f64 dot products of the host inputs. */
function spotCheck(name: string, got: ArrayLike<number>, a: Float32Array, b: Float32Array, n: number): void {
  for (let s = 0; s < 64; s++) {
    const i = (s * 7919) % n, j = (s * 104729 + 13) % n;
    let want = 0, scale = 0;
    for (let p = 0; p < n; p++) {
      want += a[i * n + p] * b[p * n + j];
      scale += Math.abs(a[i * n + p] * b[p * n + j]);
    }
    const err = Math.abs(got[i * n + j] - want);
    if (!(err <= 1e-4 * (1 + scale))) {
      throw new Error(`${name} ${n}³: out[${i}, ${j}] = ${got[i * n + j]}, expected ${want}`);
    }
  }
}

/** One contender: how to launch a product, wait for the GPU, count compiled pipelines and read the result. */
interface Contender {
  name: string;
  launch(): void;
  sync(): Promise<void>;
  pipelines(): number;
  result(): Promise<ArrayLike<number>>;
  dispose(): void;
}

interface Measurement {
  ms: number;
  iters: number;
  compiled: boolean;
}

/** Warm-up (unless the estimate says the product is too slow), then `iters` launches and one sync. */
async function measure(c: Contender, estimateMs: number | undefined): Promise<Measurement> {
  let est = estimateMs;
  if (est === undefined || est < NO_WARMUP_MS) {
    const t0 = performance.now();
    c.launch();
    await c.sync();
    est = performance.now() - t0;
  }
  const iters = Math.max(1, Math.min(MAX_ITERS, Math.floor(BUDGET_MS / est)));
  const before = c.pipelines();
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) c.launch();
  await c.sync();
  return { ms: (performance.now() - t0) / iters, iters, compiled: c.pipelines() > before };
}

function ours(name: string, config: MatmulConfig, a: GpuBuffer, b: GpuBuffer, n: number): Contender {
  const kernels = matmulKernels(rt, config);
  const ref = (buf: GpuBuffer): TensorRef<GpuBuffer> => ({ buf, shape: [1, n, n], dtype: "f32" });
  const out = rt.alloc(n * n * 4);
  return {
    name,
    launch: () => kernels.matmul([ref(a), ref(b)], [ref(out)], { transA: false, transB: false }),
    sync: () => rt.sync(),
    pipelines: () => rt.stats.pipelines,
    result: () => rt.read(out, "f32", n * n),
    dispose: () => rt.free(out),
  };
}

// ---- tfjs-backend-webgpu -----------------------------------------------------------------------------

// deno-lint-ignore no-explicit-any
type Tf = any;
let tf: Tf = null;
let tfBackend: Tf = null;
let tfWhyNot = "";
if (flag("no-tfjs") === undefined) {
  try {
    // Pinned inline on purpose: the peer is a bench-only dependency, kept out of deno.json's imports.
    tf = await import("@tensorflow/tfjs-core");
    await import("@tensorflow/tfjs-backend-webgpu");
    if (tf.version_core !== TFJS_VERSION) throw new Error(`expected tfjs-core ${TFJS_VERSION}, got ${tf.version_core}`);
    if (!tf.findBackendFactory("webgpu")) {
      throw new Error("tfjs-backend-webgpu registered no 'webgpu' backend (its isWebGPUSupported() check failed)");
    }
    // Keep every op on the GPU: by default tfjs runs ops on small host-resident inputs on its CPU backend.
    tf.env().set("WEBGPU_CPU_FORWARD", false);
    if (!(await tf.setBackend("webgpu"))) {
      throw new Error("tf.setBackend('webgpu') returned false (backend init failed)");
    }
    tfBackend = tf.backend();
    if (typeof tfBackend.submitQueue !== "function" || typeof tfBackend.endComputePassEncoder !== "function") {
      throw new Error("this tfjs-backend-webgpu has no submitQueue/endComputePassEncoder to flush its command batch");
    }
  } catch (e) {
    tfWhyNot = e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e);
    tf = null;
  }
  console.log(
    tf
      ? `tfjs: @tensorflow/tfjs-core@${TFJS_VERSION} + @tensorflow/tfjs-backend-webgpu@${TFJS_VERSION} run under Deno ` +
        `(backend "${tf.getBackend()}", its own device from navigator.gpu.requestAdapter())`
      : `tfjs: @tensorflow/tfjs-backend-webgpu@${TFJS_VERSION} cannot run here: ${tfWhyNot}`,
  );
}

/** Submits tfjs's open command batch (it defers submission) and waits for the GPU. */
async function tfSync(): Promise<void> {
  if (tfBackend.commandEncoder) {
    tfBackend.endComputePassEncoder();
    tfBackend.submitQueue();
  }
  await tfBackend.device.queue.onSubmittedWorkDone();
}

function tfjs(a: Float32Array, b: Float32Array, n: number): Contender {
  const ta = tf.tensor2d(a, [n, n]), tb = tf.tensor2d(b, [n, n]);
  let last: Tf = null;
  return {
    name: `tfjs-backend-webgpu ${TFJS_VERSION}`,
    launch: () => {
      last?.dispose();
      last = tf.matMul(ta, tb);
    },
    sync: tfSync,
    pipelines: () => Object.keys(tfBackend.pipelineCache).length,
    result: () => last.data(),
    dispose: () => {
      last?.dispose();
      ta.dispose();
      tb.dispose();
    },
  };
}

// ---- matmul throughput -------------------------------------------------------------------------------

const CONFIGS: [string, MatmulConfig][] = [
  ["register", { variant: "register" }],
  ["tiled", { variant: "tiled" }],
  ["auto", {}],
];
const columns = [...CONFIGS.map(([name]) => name), ...(tf ? [`tfjs-backend-webgpu ${TFJS_VERSION}`] : [])];
const table: string[][] = [];
/** Last measured ms per product of each contender and its size, for the next size's estimate. */
const last = new Map<string, { ms: number; n: number }>();

for (const n of SIZES) {
  const ha = filled(n * n, 1), hb = filled(n * n, 2);
  const a = rt.upload(ha), b = rt.upload(hb);
  const contenders = CONFIGS.map(([name, config]) => {
    const label = name === "auto" ? `auto (→ ${chooseMatmulVariant(1, n, n, n, rt.isSoftware)})` : name;
    return ours(label, config, a, b, n);
  });
  if (tf) contenders.push(tfjs(ha, hb, n));
  const row = [`${n}³`];
  for (const [ci, c] of contenders.entries()) {
    const prev = last.get(columns[ci]);
    const m = await measure(c, prev ? prev.ms * (n / prev.n) ** 3 : undefined);
    last.set(columns[ci], { ms: m.ms, n });
    spotCheck(c.name, await c.result(), ha, hb, n);
    const gflops = 2 * n ** 3 / m.ms / 1e6;
    const cell = `${gflops.toFixed(2)} (${m.ms.toFixed(m.ms < 100 ? 1 : 0)} ms × ${m.iters}${
      m.compiled ? ", +compile" : ""
    })`;
    console.log(`  ${`${n}³`.padEnd(6)} ${c.name.padEnd(28)} ${cell}`);
    row.push(c.name.startsWith("auto") ? `${c.name.slice(6, -1)}: ${cell}` : cell);
    c.dispose();
  }
  table.push(row);
  rt.free(a);
  rt.free(b);
}

// ---- dispatch overhead -------------------------------------------------------------------------------

const DISPATCHES = 1000;
const overhead: string[][] = [];

async function dispatchCost(name: string, launch: () => void, sync: () => Promise<void>): Promise<void> {
  for (let i = 0; i < 10; i++) launch(); // compile, allocate
  await sync();
  const t0 = performance.now();
  for (let i = 0; i < DISPATCHES; i++) launch();
  const t1 = performance.now();
  await sync();
  const t2 = performance.now();
  const trips = 20;
  for (let i = 0; i < trips; i++) {
    launch();
    await sync();
  }
  const t3 = performance.now();
  overhead.push([
    name,
    ((t1 - t0) / DISPATCHES * 1000).toFixed(1),
    ((t2 - t0) / DISPATCHES * 1000).toFixed(1),
    ((t3 - t2) / trips).toFixed(1),
  ]);
}

{
  const el = elementwiseKernels(rt);
  const one = rt.alloc(4);
  const oneRef: TensorRef<GpuBuffer> = { buf: one, shape: [1], dtype: "f32" };
  await dispatchCost("fill, 1 element", () => el.fill([], [oneRef], { value: 1 }), () => rt.sync());
  const mm = matmulKernels(rt);
  const r = (buf: GpuBuffer): TensorRef<GpuBuffer> => ({ buf, shape: [1, 1, 1], dtype: "f32" });
  const x = rt.upload(new Float32Array([2])), y = rt.upload(new Float32Array([3]));
  await dispatchCost(
    "matmul 1×1×1",
    () => mm.matmul([r(x), r(y)], [r(one)], { transA: false, transB: false }),
    () => rt.sync(),
  );
  if (tf) {
    const ta = tf.tensor1d([1]), tb = tf.tensor1d([2]);
    await dispatchCost(`tfjs ${TFJS_VERSION} add, 1 element`, () => tf.add(ta, tb).dispose(), tfSync);
  }
}

// ---- report ------------------------------------------------------------------------------------------

console.log(
  `\nf32 square matmul on ${adapterName}: GFLOP/s = 2·n³ / time per product (time per product × products timed)\n`,
);
console.log(`| size | ${columns.join(" | ")} |`);
console.log(`| ---- | ${columns.map(() => "---").join(" | ")} |`);
for (const row of table) console.log(`| ${row.join(" | ")} |`);
if (flag("no-tfjs") === undefined && !tf) {
  console.log(`\ntfjs-backend-webgpu ${TFJS_VERSION} not measured: ${tfWhyNot}`);
}
console.log(
  `\nTiny dispatches (${DISPATCHES} back to back; the runtime submits every 256): µs per dispatch, encode only and ` +
    `encode + submit + sync; one dispatch followed by a sync (round trip), ms\n`,
);
console.log("| dispatch | encode µs | encode+submit+sync µs | round trip ms |");
console.log("| -------- | --------- | --------------------- | ------------- |");
for (const row of overhead) console.log(`| ${row.join(" | ")} |`);
