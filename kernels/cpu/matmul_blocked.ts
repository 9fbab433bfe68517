/**
 * The fast CPU matmul, in plain TypeScript: operands are packed into zero-padded Float64 panels and a
 * register-blocked 4×4 micro-kernel computes each tile of the output in local variables.
 *
 * Why this shape:
 * - JS engines do not vectorise, so the speed comes from keeping 16 accumulators in registers and doing
 *   16 multiply-adds per 8 loads (an i-k-j loop does one multiply-add per load and store of `out`).
 * - Packing makes the micro-kernel read both operands sequentially whatever `transA`/`transB` are, so the
 *   transposes cost one O(M·K + K·N) copy and nothing in the O(M·N·K) loop.
 * - The panels are always Float64Array, so the micro-kernel sees one array type (monomorphic and fast in
 *   V8) and f32 inputs are widened once instead of at every load; accumulation is in doubles and f32
 *   results are rounded once, when the tile is stored.
 * - Zero padding to whole tiles means the micro-kernel never handles edges; the store copies the valid part.
 * - Blocking: a KC-deep strip of packed B (KC·NR doubles) stays in L1 while it is used against every row
 *   panel of an MC×KC block of packed A (in L2); B is packed a chunk of columns at a time to bound its size.
 *
 * Vector cases (M = 1 or N = 1) skip packing: they are memory-bound and packing would double the traffic.
 *
 * @module
 */

/** A float buffer the fast path accepts. */
export type FloatBuffer = Float32Array | Float64Array;

/** Micro-tile: rows of A and columns of B per micro-kernel call. 4×4 = 16 accumulators, about what x64's
 * 16 vector registers hold; 4×8 measured 30% slower (spills), 3×4 and 3×3 about the same. `packPanels`
 * and `kernel4x4` are written for 4. */
const MR = 4, NR = 4;
/** Depth of a K block: MC·KC·8 B = 128 KiB of packed A stays in L2, a KC·NR strip of B (8 KiB) in L1. */
const KC = 256;
/** Rows of A per block. */
const MC = 64;
/** Cap (doubles, 8 MiB) on packed B and on the C scratch: sets how many columns are done per chunk. */
const PACK_CAP = 1 << 20;
/** Scratch buffers larger than this (doubles) are not kept between calls, so one huge product does not
 * pin its scratch forever. */
const KEEP_CAP = 1 << 21;

// Reused scratch (kernels are synchronous and never re-entered, so sharing is safe).
let scratchA: Float64Array = new Float64Array(0);
let scratchB: Float64Array = new Float64Array(0);
let scratchC: Float64Array = new Float64Array(0);
let scratchV: Float64Array = new Float64Array(0);

function grow(buf: Float64Array, size: number): Float64Array {
  if (buf.length >= size) return buf;
  return new Float64Array(size);
}

/**
 * Batched out[t] = op(a[t])·op(b[t]) for t < `batch`, written over `out` (never accumulated into). `a` holds
 * [M, K] matrices ([K, M] if `transA`) `aBatchStride` elements apart (0 reuses one matrix for every batch),
 * likewise `b` with [K, N] ([N, K] if `transB`); `out` holds `batch` contiguous [M, N] matrices.
 */
export function matmulBlocked(
  a: FloatBuffer,
  aBatchStride: number,
  b: FloatBuffer,
  bBatchStride: number,
  out: FloatBuffer,
  batch: number,
  m: number,
  k: number,
  n: number,
  transA: boolean,
  transB: boolean,
): void {
  if (m === 0 || n === 0 || batch === 0) return;
  if (k === 0) {
    out.fill(0, 0, batch * m * n);
    return;
  }
  if (m === 1 || n === 1) {
    for (let t = 0; t < batch; t++) {
      matvec(a, t * aBatchStride, b, t * bBatchStride, out, t * m * n, m, k, n, transA, transB);
    }
    return;
  }
  // Element strides of op(A) along i and p, and of op(B) along j and p.
  const aI = transA ? 1 : k, aP = transA ? m : 1, bJ = transB ? k : 1, bP = transB ? 1 : n;
  // Columns per chunk: packed B (k·nc) and the C scratch (MC·nc) both stay within PACK_CAP doubles.
  const nc = Math.min(roundUp(n, NR), Math.max(NR, Math.floor(PACK_CAP / Math.max(k, MC) / NR) * NR));
  const pb = scratchB = grow(scratchB, k * nc);
  const cs = scratchC = grow(scratchC, roundUp(Math.min(m, MC), MR) * nc);
  const pa = scratchA = grow(scratchA, MC * KC);
  for (let jc = 0; jc < n; jc += nc) {
    const ncols = Math.min(nc, n - jc), ldc = roundUp(ncols, NR);
    for (let t = 0; t < batch; t++) {
      // A shared B (bBatchStride 0) is packed once per column chunk, not once per batch.
      if (t === 0 || bBatchStride !== 0) packPanels(b, t * bBatchStride + jc * bJ, bJ, bP, ncols, k, pb);
      const aOff = t * aBatchStride, oOff = t * m * n;
      for (let ic = 0; ic < m; ic += MC) {
        const rows = Math.min(MC, m - ic), rowsP = roundUp(rows, MR);
        cs.fill(0, 0, rowsP * ldc);
        for (let pc = 0; pc < k; pc += KC) {
          const kc = Math.min(KC, k - pc);
          packPanels(a, aOff + ic * aI + pc * aP, aI, aP, rows, kc, pa);
          for (let jr = 0; jr < ldc; jr += NR) {
            const bo = jr * k + pc * NR;
            for (let ir = 0; ir < rowsP; ir += MR) kernel4x4(kc, pa, ir * kc, pb, bo, cs, ir * ldc + jr, ldc);
          }
        }
        storeC(cs, ldc, out, oOff + ic * n + jc, n, rows, ncols);
      }
    }
  }
  if (scratchB.length > KEEP_CAP) scratchB = new Float64Array(0);
  if (scratchC.length > KEEP_CAP) scratchC = new Float64Array(0);
}

function roundUp(x: number, to: number): number {
  return Math.ceil(x / to) * to;
}

/**
 * C[4×4 at co, row stride ldc] += Apanel(kc×4)ᵀ · Bpanel(kc×4). Each step loads 4 values of A and 4 of B
 * (contiguous in the panels) and does 16 multiply-adds into locals; C is touched once per call.
 */
function kernel4x4(
  kc: number,
  A: Float64Array,
  ao: number,
  B: Float64Array,
  bo: number,
  C: Float64Array,
  co: number,
  ldc: number,
): void {
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
  const end = ao + kc * MR;
  for (; ao < end; ao += MR, bo += NR) {
    const b0 = B[bo], b1 = B[bo + 1], b2 = B[bo + 2], b3 = B[bo + 3];
    let x = A[ao];
    c00 += x * b0, c01 += x * b1, c02 += x * b2, c03 += x * b3;
    x = A[ao + 1];
    c10 += x * b0, c11 += x * b1, c12 += x * b2, c13 += x * b3;
    x = A[ao + 2];
    c20 += x * b0, c21 += x * b1, c22 += x * b2, c23 += x * b3;
    x = A[ao + 3];
    c30 += x * b0, c31 += x * b1, c32 += x * b2, c33 += x * b3;
  }
  C[co] += c00, C[co + 1] += c01, C[co + 2] += c02, C[co + 3] += c03;
  co += ldc;
  C[co] += c10, C[co + 1] += c11, C[co + 2] += c12, C[co + 3] += c13;
  co += ldc;
  C[co] += c20, C[co + 1] += c21, C[co + 2] += c22, C[co + 3] += c23;
  co += ldc;
  C[co] += c30, C[co + 1] += c31, C[co + 2] += c32, C[co + 3] += c33;
}

/**
 * Packs `lines` × `depth` elements, element (l, p) at src[off + l·ls + p·ps], into panels of 4 lines:
 * dst[(l − l mod 4)·depth + p·4 + l mod 4]. Lines past the end of the last panel are zero. Rows of op(A)
 * and columns of op(B) are both "lines" along the shared K "depth", so one routine packs either operand
 * in any transpose: the strides say which way is contiguous.
 */
function packPanels(
  src: FloatBuffer,
  off: number,
  ls: number,
  ps: number,
  lines: number,
  depth: number,
  dst: Float64Array,
): void {
  let l = 0;
  // Whole panels: four source pointers advance together, so either stride layout reads sequentially.
  for (; l + 4 <= lines; l += 4) {
    let x0 = off + l * ls, x1 = x0 + ls, x2 = x1 + ls, x3 = x2 + ls;
    for (let p = 0, d = l * depth; p < depth; p++, d += 4) {
      dst[d] = src[x0], dst[d + 1] = src[x1], dst[d + 2] = src[x2], dst[d + 3] = src[x3];
      x0 += ps, x1 += ps, x2 += ps, x3 += ps;
    }
  }
  if (l === lines) return;
  // Last partial panel: copy the live lines, zero the rest.
  for (let q = 0; q < 4; q++) {
    const live = l + q < lines;
    for (let p = 0, d = l * depth + q, x = off + (l + q) * ls; p < depth; p++, d += 4, x += ps) {
      dst[d] = live ? src[x] : 0;
    }
  }
}

/** Copies the valid rows × cols of the padded C scratch into `out` (rounding to f32 happens here). */
function storeC(
  cs: Float64Array,
  ldc: number,
  out: FloatBuffer,
  oOff: number,
  n: number,
  rows: number,
  cols: number,
): void {
  for (let i = 0; i < rows; i++) {
    const s = i * ldc, d = oOff + i * n;
    for (let j = 0; j < cols; j++) out[d + j] = cs[s + j];
  }
}

/**
 * M = 1 or N = 1: y = W·v for the matrix operand W and the vector operand v (contiguous either way, since
 * a [1, K] and a [K, 1] matrix have the same layout). Picks the loop order that reads W sequentially.
 */
function matvec(
  a: FloatBuffer,
  aOff: number,
  b: FloatBuffer,
  bOff: number,
  out: FloatBuffer,
  oOff: number,
  m: number,
  k: number,
  n: number,
  transA: boolean,
  transB: boolean,
): void {
  if (n === 1) {
    // out[i] = Σ_p op(A)[i, p] · b[p]; op(A) rows are contiguous unless transA.
    if (!transA || m === 1) dotRows(a, aOff, k, b, bOff, out, oOff, m, k);
    else axpyRows(a, aOff, m, b, bOff, out, oOff, m, k);
  } else {
    // out[j] = Σ_p a[p] · op(B)[p, j]; op(B) columns are contiguous rows of b when transB.
    if (transB) dotRows(b, bOff, k, a, aOff, out, oOff, n, k);
    else axpyRows(b, bOff, n, a, aOff, out, oOff, n, k);
  }
}

/** y[l] = Σ_p W[wOff + l·ldw + p] · v[vOff + p]: one dot product per contiguous row of W. */
function dotRows(
  w: FloatBuffer,
  wOff: number,
  ldw: number,
  v: FloatBuffer,
  vOff: number,
  y: FloatBuffer,
  yOff: number,
  len: number,
  k: number,
): void {
  const k4 = k - (k % 4);
  for (let l = 0; l < len; l++) {
    const row = wOff + l * ldw;
    // Four partial sums break the floating-point add dependency chain.
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    let p = 0;
    for (; p < k4; p += 4) {
      s0 += w[row + p] * v[vOff + p];
      s1 += w[row + p + 1] * v[vOff + p + 1];
      s2 += w[row + p + 2] * v[vOff + p + 2];
      s3 += w[row + p + 3] * v[vOff + p + 3];
    }
    for (; p < k; p++) s0 += w[row + p] * v[vOff + p];
    y[yOff + l] = (s0 + s1) + (s2 + s3);
  }
}

/** y[l] = Σ_p v[vOff + p] · W[wOff + p·ldw + l]: accumulates scaled contiguous rows of W in doubles. */
function axpyRows(
  w: FloatBuffer,
  wOff: number,
  ldw: number,
  v: FloatBuffer,
  vOff: number,
  y: FloatBuffer,
  yOff: number,
  len: number,
  k: number,
): void {
  const acc = scratchV = grow(scratchV, len);
  acc.fill(0, 0, len);
  for (let p = 0; p < k; p++) {
    // No skip of zero scales: 0·∞ must still give NaN, as in the packed path.
    const s = v[vOff + p];
    const row = wOff + p * ldw;
    for (let l = 0; l < len; l++) acc[l] += s * w[row + l];
  }
  for (let l = 0; l < len; l++) y[yOff + l] = acc[l];
  if (scratchV.length > KEEP_CAP) scratchV = new Float64Array(0);
}
