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
