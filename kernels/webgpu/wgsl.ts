/**
 * WGSL snippets shared by the WebGPU kernels.
 *
 * @module
 */

/** Threads per workgroup of the 1-D kernels. */
export const WG = 64;

/**
 * The opening of a 1-D kernel: `main` with the linear thread index `i` (grids split over x and y are
 * linearised with `wgIndex`). The kernel body follows and must close the function.
 */
export const MAIN_1D = `@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = wgIndex(wid, nwg) * ${WG}u + lid.x;`;

/**
 * The opening of a kernel with one workgroup of `threads` threads per row of `params[1]` contiguous elements
 * (`params[0]` rows): binds `n` (the row length), `row` (uniform in the workgroup, so barriers may follow),
 * `base` (the row's first element) and `t` (the thread). The body follows and must close the function.
 */
export function rowKernelMain(threads: number): string {
  return `@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let n = params[1];
  let row = wgIndex(wid, nwg);
  if (row >= params[0]) { return; }
  let base = row * n;
  let t = lid.x;`;
}

/** What {@link coordWalkWgsl} needs: where the walked shape lies in `params`, and the code around the walk. */
export interface CoordWalk {
  /** WGSL expression of the rank (bound to `rank`). */
  rank: string;
  /** params index of the walked shape's first axis: axis `k` has extent `params[shapeAt + k]`. */
  shapeAt: number;
  /** Statements after `let rank` / `var rem = i` and before the loop (e.g. the accumulators). */
  before?: string;
  /** The loop body per axis, with `k` (the axis) and `c` (thread `i`'s coordinate along it) in scope. */
  body: string;
}

/**
 * The walk of thread `i`'s flat row-major index over a shape, from the last axis to the first: binds `rank`
 * and `rem`, then for each axis `k` its coordinate `c` (`rem` is divided down as it goes) and runs `body`.
 * The broadcasting, strided and gather/scatter kernels all turn an output index into offsets with it.
 */
export function coordWalkWgsl(w: CoordWalk): string {
  return `
  let rank = ${w.rank};
  var rem = i;${w.before ? `\n  ${w.before}` : ""}
  for (var d = rank; d > 0u; d--) {
    let k = d - 1u;
    let s = params[${w.shapeAt}u + k];
    let c = rem % s;
    rem = rem / s;
    ${w.body}
  }`;
}
