/**
 * How the WebAssembly matmul's register tile broadcasts A (`splat` in `kernels/cpu/wasm/emit.ts`), measured two
 * ways on one thread, alternating the variants round by round in this one process:
 * - `step`: a loop of nothing but the micro-kernel's inner step on L1-resident data (4 steps unrolled), for the
 *   default 4×8 tile by shuffles, the former 6×8 tile by splat loads, 4×8 by splat loads, and the step's
 *   multiply-adds alone (12 independent accumulators: the ceiling of 128-bit fused multiply-adds here);
 * - `product`: whole products through `createWasmMatmul` at the training step's shapes (dense 512³ with each
 *   transpose, 64 rows against a 512 × 2048 weight both ways, 1024³), 4×8 by shuffles against 6×8 by splat
 *   loads, checking that both give the same bits.
 * GFLOP/s are 2·m·n·k (or 2 × 4 lanes per multiply-add) over the best time of `--rounds`. Indicative only on a
 * shared machine; what the defaults rest on is the training step itself (`DEFAULT_OPTIONS`).
 *
 * `deno run --allow-sys=cpus bench/matmul_tile.ts [--rounds N]`
 */
import { parseArgs } from "node:util";
import { ModuleBuilder, ValType } from "../kernels/cpu/wasm/assembler.ts";
import { relaxedSimdSupported } from "../kernels/cpu/wasm/emit.ts";
import { createWasmMatmul } from "../kernels/cpu/wasm/matmul.ts";
import { filled } from "../tests/helpers/host_rng.ts";
import { machine } from "./_machine.ts";

const { values } = parseArgs({ args: Deno.args, options: { rounds: { type: "string" } } });
const rounds = Number(values.rounds ?? 7);
if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError(`--rounds must be a positive integer`);
if (!relaxedSimdSupported()) throw new Error("this engine has no relaxed SIMD: the tiles would not use FMA");

/** One inner-step loop: `mr` rows × `nv` vectors of accumulators, A broadcast by `splat` (none: registers only). */
interface StepLoop {
  name: string;
  mr: number;
  nv: number;
  splat: "load" | "shuffle" | "none";
}
const LOOPS: StepLoop[] = [
  { name: "4×8, shuffles (default)", mr: 4, nv: 2, splat: "shuffle" },
  { name: "6×8, splat loads", mr: 6, nv: 2, splat: "load" },
  { name: "4×8, splat loads", mr: 4, nv: 2, splat: "load" },
  { name: "12 multiply-adds alone", mr: 6, nv: 2, splat: "none" },
];
/** Bytes the loop walks (wrapping), well inside L1. */
const WINDOW = 2048;

/** The module: one exported function per loop, `loop(iterations) → f32` (a lane of the summed accumulators). */
function emitLoops(): Uint8Array<ArrayBuffer> {
  const mod = new ModuleBuilder().setMemory({ kind: "export", name: "memory", initialPages: 1, maxPages: 1 });
  for (const l of LOOPS) {
    const f = mod.addFunction(l.name, [ValType.i32], [ValType.f32]);
    const acc = Array.from({ length: l.mr * l.nv }, () => f.local(ValType.v128));
    const b = Array.from({ length: l.nv }, () => f.local(ValType.v128));
    const s = f.local(ValType.v128), quad = f.local(ValType.v128), i = f.local(ValType.i32), p = f.local(ValType.i32);
    for (const x of [...b, s]) f.v128Const(new Uint8Array(16).fill(1)).set(x);
    const stride = 16 * l.nv + 4 * Math.ceil(l.mr / 4) * 4;
    f.block(() =>
      f.loop(() => {
        f.get(i).get(0).i32GeU().brIf(1);
        for (let u = 0; u < 4; u++) {
          if (l.splat !== "none") { for (let c = 0; c < l.nv; c++) f.get(p).v128Load(u * stride + 16 * c).set(b[c]); }
          for (let r = 0; r < l.mr; r++) {
            const at = u * stride + 16 * l.nv + 4 * r;
            if (l.splat === "load") f.get(p).v128Load32Splat(at).set(s);
            if (l.splat === "shuffle") {
              if (r % 4 === 0) f.get(p).v128Load(at).set(quad);
              f.get(quad).get(quad).i32x4Shuffle([r % 4, r % 4, r % 4, r % 4]).set(s);
            }
            for (let c = 0; c < l.nv; c++) {
              f.get(s).get(b[c]).get(acc[l.nv * r + c]).f32x4RelaxedMadd().set(acc[l.nv * r + c]);
            }
          }
        }
        f.get(p).i32Const(4 * stride).i32Add().i32Const(WINDOW - 1).i32And().set(p);
        f.get(i).i32Const(1).i32Add().set(i).br(0);
      })
    );
    f.get(acc[0]);
    for (let k = 1; k < acc.length; k++) f.get(acc[k]).f32x4Add();
    f.f32x4ExtractLane(0);
  }
  return mod.encode();
}

console.log(`machine: ${await machine()}`);
console.log(`one thread, best of ${rounds} rounds, variants alternating\n`);

const loops = new WebAssembly.Instance(new WebAssembly.Module(emitLoops())).exports as Record<
  string,
  (n: number) => number
>;
const stepBest = new Map<string, number>();
for (let round = 0; round < rounds; round++) {
  for (const l of LOOPS) {
    // The same multiply-adds per call for every loop: 48M vector multiply-adds.
    const iterations = Math.round(12e6 / (l.mr * l.nv));
    const t = performance.now();
    loops[l.name](iterations);
    const gflops = (iterations * 4 * l.mr * l.nv * 8) / ((performance.now() - t) * 1e6);
    stepBest.set(l.name, Math.max(stepBest.get(l.name) ?? 0, gflops));
  }
}
console.log("| inner step (L1-resident) | GFLOP/s |\n| --- | --- |");
for (const l of LOOPS) console.log(`| ${l.name} | ${stepBest.get(l.name)!.toFixed(1)} |`);

const tiles = {
  "4×8, shuffles": createWasmMatmul({ mr: 4, nv: 2, splat: "shuffle", shared: false }),
  "6×8, splat loads": createWasmMatmul({ mr: 6, nv: 2, splat: "load", shared: false }),
};
const SHAPES: [m: number, k: number, n: number, transA: boolean, transB: boolean][] = [
  [512, 512, 512, false, false],
  [512, 512, 512, true, false],
  [512, 512, 512, false, true],
  [64, 512, 2048, false, false],
  [64, 2048, 512, false, true],
  [1024, 1024, 1024, false, false],
];
console.log(`\n| product (m × k × n) | ${Object.keys(tiles).join(" | ")} | same bits |\n| --- | --- | --- | --- |`);
for (const [m, k, n, transA, transB] of SHAPES) {
  const a = filled(m * k, 1), b = filled(k * n, 2), flops = 2 * m * n * k;
  const calls = Math.max(2, Math.round(2e8 / flops));
  const outs = new Map<string, Float32Array>(), best = new Map<string, number>();
  for (let round = 0; round < rounds; round++) {
    for (const [name, w] of Object.entries(tiles)) {
      const out = outs.get(name) ?? new Float32Array(m * n);
      outs.set(name, out);
      const t = performance.now();
      for (let c = 0; c < calls; c++) w.matmul(a, b, out, m, k, n, { transA, transB });
      best.set(name, Math.max(best.get(name) ?? 0, (calls * flops) / ((performance.now() - t) * 1e6)));
    }
  }
  const [x, y] = [...outs.values()];
  const same = x.every((v, i) => Object.is(v, y[i]));
  const label = `${m} × ${k} × ${n}${transA ? ", Aᵀ" : ""}${transB ? ", Bᵀ" : ""}`;
  console.log(`| ${label} | ${[...best.values()].map((g) => g.toFixed(1)).join(" | ")} | ${same ? "yes" : "NO"} |`);
}
