/**
 * Exponential moving average of a flat parameter buffer (tiny-cuda-nn's `Ema` optimizer wrapper):
 *   shadow = decay · shadow + (1 − decay) · param
 *
 * Layout: `param` and `shadow` are flat f32 arrays of the same length, read as vec4; `n_vec4` = length / 4
 * (the parameter arena pads every segment to the storage-offset alignment, so the length is a multiple of 4).
 * Thread mapping: one thread per vec4, the 1-D index folded into y past 65535 workgroups.
 */
import { defineKernel } from '../runtime/kernel.ts';

const WORKGROUP = 64;

export const emaKernel = defineKernel({
  name: 'ema_update',
  bindings: [
    { name: 'param', access: 'read' },
    { name: 'shadow', access: 'rw' },
  ],
  params: [
    { name: 'n_vec4', type: 'u32' },
    { name: 'decay', type: 'f32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: () => /* wgsl */ `
// ema_update: shadow = decay * shadow + (1 - decay) * param, one vec4 per thread.
struct Params { n_vec4: u32, decay: f32 }
@group(0) @binding(0) var<storage, read> param: array<vec4f>;
@group(0) @binding(1) var<storage, read_write> shadow: array<vec4f>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (i >= p.n_vec4) { return; }
  shadow[i] = p.decay * shadow[i] + (1.0 - p.decay) * param[i];
}
`,
});

/** float64 reference: one EMA update of `shadow` in place. */
export function emaReference(shadow: Float64Array, param: ArrayLike<number>, decay: number): void {
  for (let i = 0; i < shadow.length; i++) shadow[i] = decay * shadow[i] + (1 - decay) * param[i];
}
