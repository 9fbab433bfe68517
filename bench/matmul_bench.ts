/**
 * f32 matmul at 128², 256², 512²: our kernel (called directly, and through the public `matmul` op) against
 * a peer, a plain blocked i-k-j TypeScript loop. One group per size with the peer as baseline, so
 * `deno bench bench/matmul_bench.ts` prints the ratios; a GFLOP/s table (2·M·N·K / median time of the
 * iterations deno bench ran) is printed after deno bench's own table.
 */
import { matmulKernels } from "../kernels/cpu/matmul.ts";
import { matmul, tensor } from "../mod.ts";
import type { TensorRef } from "../internals.ts";
import { filled } from "../tests/helpers/host_rng.ts";
import { MatmulTimes } from "./_timing.ts";

const SIZES = [128, 256, 512];
/** Block edge of the peer's K and N loops. */
const PEER_BLOCK = 64;

/** The peer: out = a·b with the K and N loops blocked so a block of b stays in cache across rows of a. */
function ikjBlocked(a: Float32Array, b: Float32Array, out: Float32Array, m: number, k: number, n: number): void {
  out.fill(0);
  for (let p0 = 0; p0 < k; p0 += PEER_BLOCK) {
    const p1 = Math.min(k, p0 + PEER_BLOCK);
    for (let j0 = 0; j0 < n; j0 += PEER_BLOCK) {
      const j1 = Math.min(n, j0 + PEER_BLOCK);
      for (let i = 0; i < m; i++) {
        const ai = i * k, oi = i * n;
        for (let p = p0; p < p1; p++) {
          const av = a[ai + p], bp = p * n;
          for (let j = j0; j < j1; j++) out[oi + j] += av * b[bp + j];
        }
      }
    }
  }
}

const times = new MatmulTimes();

const PEER = "peer: blocked ikj", KERNEL = "ours: kernel", OP = "ours: matmul op";

for (const size of SIZES) {
  const [m, k, n] = [size, size, size];
  const a = filled(m * k, 1), b = filled(k * n, 2);
  const outPeer = new Float32Array(m * n), outOurs = new Float32Array(m * n);
  const refs = (buf: Float32Array, shape: number[]): TensorRef<Float32Array> => ({ buf, shape, dtype: "f32" });
  const runKernel = () =>
    matmulKernels.matmul([refs(a, [1, m, k]), refs(b, [1, k, n])], [refs(outOurs, [1, m, n])], {
      transA: false,
      transB: false,
    });
  const ta = tensor(a, { shape: [m, k] }), tb = tensor(b, { shape: [k, n] });

  // Benchmark only a kernel that agrees with the peer.
  ikjBlocked(a, b, outPeer, m, k, n);
  runKernel();
  const viaOp = matmul(ta, tb).dataSync();
  for (let i = 0; i < m * n; i++) {
    const tol = 1e-4 * (1 + Math.abs(outPeer[i]));
    if (!(Math.abs(outOurs[i] - outPeer[i]) <= tol && Math.abs(viaOp[i] - outPeer[i]) <= tol)) {
      throw new Error(`${size}²: results differ at ${i}: peer ${outPeer[i]}, kernel ${outOurs[i]}, op ${viaOp[i]}`);
    }
  }

  const group = `matmul f32 ${size}×${size}×${size}`;
  // Fewer iterations for the big sizes keep the whole run around a minute.
  const iters = size >= 512 ? 15 : size >= 256 ? 60 : undefined;
  const opts = { group, n: iters, warmup: iters === undefined ? undefined : 3 };
  Deno.bench({
    ...opts,
    name: `${PEER} ${size}`,
    baseline: true,
    fn: times.timed(`${PEER} ${size}`, size, () => ikjBlocked(a, b, outPeer, m, k, n)),
  });
  Deno.bench({ ...opts, name: `${KERNEL} ${size}`, fn: times.timed(`${KERNEL} ${size}`, size, runKernel) });
  Deno.bench({
    ...opts,
    name: `${OP} ${size}`,
    fn: times.timed(`${OP} ${size}`, size, () => matmul(ta, tb).dispose()),
  });
}

globalThis.addEventListener("unload", () => {
  const rows: string[] = [];
  for (const size of SIZES) {
    const peer = times.stats(`${PEER} ${size}`);
    if (!peer) continue;
    for (const name of [PEER, KERNEL, OP]) {
      const r = times.stats(`${name} ${size}`);
      if (!r) continue;
      rows.push(
        `| ${`${size}³`.padEnd(5)} | ${name.padEnd(17)} | ${r.ms.toFixed(3).padStart(9)} | ${
          r.gflops.toFixed(2).padStart(7)
        } | ${(peer.ms / r.ms).toFixed(2).padStart(5)}× |`,
      );
    }
  }
  if (rows.length === 0) return;
  console.log("\nGFLOP/s = 2·M·N·K / median ms per iteration (of the iterations deno bench ran above)\n");
  console.log("| size  | implementation    | median ms | GFLOP/s | vs peer |");
  console.log("| ----- | ----------------- | --------- | ------- | ------- |");
  for (const r of rows) console.log(r);
});
