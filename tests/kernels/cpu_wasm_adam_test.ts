/**
 * The WebAssembly SIMD Adam update against the plain-TypeScript loop: the same bits for every weight-decay
 * mode, for lengths around the chunk size and the vector width, and for special values (±0, ±∞, NaN,
 * subnormals, huge values). Tensor-level agreement with the op path is in tests/nn/optim_inplace_test.ts.
 */
import assert from "node:assert/strict";
import { type AdamDecay, type AdamScalars, adamStepJs } from "../../kernels/cpu/adam.ts";
import { adamInPlace, createWasmAdam, emitAdamModule } from "../../kernels/cpu/wasm/adam.ts";
import { sentinelsAfter, withHeapArrays } from "../helpers/heap_arrays.ts";

const f = Math.fround;

/** Deterministic values with specials mixed in. */
function values(n: number, seed: number, nonNegative = false): Float32Array {
  const specials = [0, -0, Infinity, -Infinity, NaN, 1e-40, -3e-39, 3e38, 1, -1];
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, (_, i) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const u = s / 2 ** 32;
    const x = u < 0.1 ? specials[i % specials.length] : (u - 0.5) * 2 ** ((i % 13) - 6);
    return nonNegative ? Math.abs(x) : x;
  });
}

function scalars(decay: AdamDecay, t: number, gscale?: number): AdamScalars {
  const lr = 1e-2, wd = 0.05, b1 = 0.9, b2 = 0.999;
  return {
    decay,
    wd: f(wd),
    shrink: f(1 - lr * wd),
    b1: f(b1),
    c1: f(1 - b1),
    b2: f(b2),
    c2: f(1 - b2),
    bc2: f(Math.sqrt(1 - b2 ** t)),
    eps: f(1e-8),
    step: f(lr / (1 - b1 ** t)),
    gscale,
  };
}

Deno.test("the emitted Adam module validates", () => {
  assert.ok(WebAssembly.validate(emitAdamModule()));
  assert.ok(WebAssembly.validate(emitAdamModule(0)), "the in-place variant");
  assert.throws(() => emitAdamModule(6), /positive multiple of 4/);
});

Deno.test("wasm SIMD Adam is bit-identical to the TypeScript loop (modes, clip, tails, chunk edges, specials)", () => {
  const wasm = createWasmAdam(16); // a small chunk, so short arrays cross chunk boundaries
  // gscale: none, a clip coefficient, 1 (no scaling), 0 (a zero norm threshold) and NaN (a NaN norm).
  for (const gscale of [undefined, f(0.37), 1, 0, NaN]) {
    for (const decay of ["none", "decoupled", "l2"] as const) {
      for (const n of [0, 1, 3, 4, 5, 15, 16, 17, 33, 64, 250]) {
        const g = values(n, 1 + n), ref = [values(n, 2 + n), values(n, 3 + n), values(n, 4 + n, true)];
        const got = ref.map((a) => a.slice());
        for (let t = 1; t <= 3; t++) {
          adamStepJs(ref[0], g, ref[1], ref[2], n, scalars(decay, t, gscale));
          wasm.update(got[0], g, got[1], got[2], n, scalars(decay, t, gscale));
        }
        for (let k = 0; k < 3; k++) {
          for (let i = 0; i < n; i++) {
            if (!Object.is(got[k][i], ref[k][i])) {
              assert.fail(`${decay}, gscale ${gscale}, n ${n}, array ${k}, element ${i}: ${got[k][i]} vs ${ref[k][i]}`);
            }
          }
        }
      }
    }
  }
});

Deno.test("wasm SIMD Adam leaves elements past n alone", () => {
  const wasm = createWasmAdam(8);
  const n = 10, p = new Float32Array(16).fill(7), m = new Float32Array(16).fill(7), v = new Float32Array(16).fill(7);
  wasm.update(p, new Float32Array(16).fill(1), m, v, n, scalars("decoupled", 1));
  for (const a of [p, m, v]) {
    assert.deepEqual(Array.from(a.subarray(n)), [7, 7, 7, 7, 7, 7]);
    assert.notEqual(a[0], 7);
  }
});

Deno.test("wasm SIMD Adam in place on the tensor heap: the loop's bits, a scalar tail, nothing past n touched", () => {
  withHeapArrays((inHeap) => {
    for (const gscale of [undefined, f(0.37), NaN]) {
      for (const decay of ["none", "decoupled", "l2"] as const) {
        for (const n of [1, 3, 4, 5, 17, 250]) {
          const g = values(n, 1 + n), ref = [values(n, 2 + n), values(n, 3 + n), values(n, 4 + n, true)];
          const got = ref.map(inHeap), gh = inHeap(g);
          for (let t = 1; t <= 3; t++) {
            adamStepJs(ref[0], g, ref[1], ref[2], n, scalars(decay, t, gscale));
            assert.ok(adamInPlace(got[0], gh, got[1], got[2], n, scalars(decay, t, gscale), adamStepJs));
          }
          for (let k = 0; k < 3; k++) {
            assert.deepEqual(got[k], ref[k], `${decay}, gscale ${gscale}, n ${n}, array ${k}`);
            assert.deepEqual(sentinelsAfter(got[k]), [7, 7, 7, 7]);
          }
        }
      }
    }
    // An array outside the heap: declined, nothing done.
    const p = inHeap(values(8, 9)), before = p.slice(), s = scalars("none", 1);
    assert.equal(
      adamInPlace(p, new Float32Array(8), inHeap(values(8, 1)), inHeap(values(8, 2)), 8, s, adamStepJs),
      false,
    );
    assert.deepEqual(p, before);
  });
});
