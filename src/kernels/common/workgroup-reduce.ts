/**
 * WGSL snippet for cooperative row kernels: one workgroup of `size` threads (a power of two) per row, each thread
 * folding the elements lid, lid + size, ... and the workgroup combining the per-thread values by a tree in
 * workgroup memory. The order of every sum is fixed, so results are deterministic.
 *
 * Call the functions from uniform control flow only (they contain barriers): the row index must come from
 * workgroup_id, and any early return must be taken by the whole workgroup.
 *
 *   wg_sum(v, lid) -> f32       Σ of v over the workgroup
 *   wg_max(v, lid) -> f32       max of v over the workgroup
 *   wg_sum4(v, lid) -> vec4f    four sums at once (one tree, four lanes)
 */
export function workgroupReduceWgsl(size: number): string {
  if (!Number.isInteger(Math.log2(size))) throw new Error(`workgroupReduceWgsl: size ${size} is not a power of two`);
  return /* wgsl */ `
var<workgroup> wg_scratch: array<vec4f, ${size}>;

fn wg_sum4(v: vec4f, lid: u32) -> vec4f {
  wg_scratch[lid] = v;
  workgroupBarrier();
  for (var half = ${size / 2}u; half > 0u; half >>= 1u) {
    if (lid < half) { wg_scratch[lid] += wg_scratch[lid + half]; }
    workgroupBarrier();
  }
  let total = wg_scratch[0];
  workgroupBarrier(); // nobody may overwrite the scratch before everyone has read the total
  return total;
}

fn wg_sum(v: f32, lid: u32) -> f32 {
  return wg_sum4(vec4f(v, 0.0, 0.0, 0.0), lid).x;
}

fn wg_max(v: f32, lid: u32) -> f32 {
  wg_scratch[lid] = vec4f(v, 0.0, 0.0, 0.0);
  workgroupBarrier();
  for (var half = ${size / 2}u; half > 0u; half >>= 1u) {
    if (lid < half) { wg_scratch[lid].x = max(wg_scratch[lid].x, wg_scratch[lid + half].x); }
    workgroupBarrier();
  }
  let total = wg_scratch[0].x;
  workgroupBarrier();
  return total;
}`;
}
