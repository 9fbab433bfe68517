/**
 * What two threads give work bound by vector multiply-add throughput on this machine right now: the
 * WebAssembly matmul on L2-resident 192³ products (`_matmul_worker.ts`) in one module Worker, then split over
 * two, best of `rounds` alternated runs. The training step's matmuls are that kind of work, so its two-thread
 * gain cannot exceed this ceiling for long; on a 2-vCPU VM whose vCPUs at times share one core's vector units
 * it moves with the host's load (measured 1.25–1.96× between minutes). `threads_ceiling.ts` prints it as a row;
 * `step_vs_torch.ts` measures it before and after its comparison.
 *
 * @module
 */

/** Best times of the same products on one Worker and split over two, ms, and their ratio. */
export interface Ceiling {
  one: number;
  two: number;
  /** one ÷ two. */
  speedup: number;
}

/** Products in each timed run (a few hundred ms on one thread); the warm-up runs a fifth of that on both. */
export const CEILING_PRODUCTS = 2000;

/** Asks one Worker to do `n` units of work; resolves when it has. */
export type Ask = (n: number) => Promise<void>;

/**
 * `total` units on the first Worker alone, then half on each of two at once, best of `rounds` alternated runs,
 * after a warm-up of `warm` units on both.
 */
export async function oneVersusTwo(
  asks: readonly Ask[],
  total: number,
  warm: number,
  rounds: number,
): Promise<Ceiling> {
  const run = (count: number, n: number) => Promise.all(asks.slice(0, count).map((ask) => ask(n)));
  await run(2, warm);
  let one = Infinity, two = Infinity;
  for (let r = 0; r < rounds; r++) {
    let t0 = performance.now();
    await run(1, total);
    one = Math.min(one, performance.now() - t0);
    t0 = performance.now();
    await run(2, total / 2);
    two = Math.min(two, performance.now() - t0);
  }
  return { one, two, speedup: one / two };
}

/** Measures {@link Ceiling} with two fresh module Workers (needs the permission to read this package). */
export async function fmaCeiling(rounds = 5): Promise<Ceiling> {
  const workers = [0, 1].map(() => new Worker(new URL("./_matmul_worker.ts", import.meta.url), { type: "module" }));
  try {
    const asks = workers.map((w): Ask => (n) =>
      new Promise<void>((done, fail) => {
        w.onmessage = () => done();
        w.onerror = (e) => (e.preventDefault(), fail(new Error(`matmul Worker: ${e.message}`)));
        w.postMessage(n);
      })
    );
    return await oneVersusTwo(asks, CEILING_PRODUCTS, CEILING_PRODUCTS / 5, rounds);
  } finally {
    workers.forEach((w) => w.terminate());
  }
}
