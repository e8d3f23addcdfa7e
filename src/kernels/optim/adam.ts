/**
 * Adam / AdamW over flat buffers: one dispatch updates every parameter of every group (tiny-cuda-nn's `adam_step`).
 *
 *   g  = grad_scale · grad                         (+ weight_decay · w      for Adam's L2 form)
 *   w  = w · (1 − lr · weight_decay)               (AdamW's decoupled decay, instead of the L2 term)
 *   m  = β1 · m + (1 − β1) · g
 *   v  = β2 · v + (1 − β2) · g²
 *   w  = w − (lr / bias_correction1) · m / (√v / √bias_correction2 + ε)
 * with bias_correction1 = 1 − β1^t and bias_correction2 = 1 − β2^t for step t (1-based), exactly torch.optim.Adam's
 * arithmetic order.
 *
 * Layout: `grad`, `param`, `m`, `v` are flat f32 arrays of the same length `n`, read as vec4. The elements are split
 * into `group_count` ≤ 16 consecutive groups: group k covers [group_end(k−1), group_end(k)) with group_end(−1) = 0,
 * and has its own learning rate `lr<k>` and weight decay `weight_decay<k>`. n and every group end must be multiples
 * of 4 (the arena pads each parameter to the storage-offset alignment, so they are).
 *
 * Thread mapping: one thread per vec4 (4 consecutive elements, always within one group); the 1-D index is folded
 * into y past 65535 workgroups. Each thread finds its group by scanning the ≤ 16 ends.
 */
import { defineKernel } from '../runtime/kernel.ts';

export const ADAM_MAX_GROUPS = 16;
const WORKGROUP = 64;

const perGroup = (prefix: string, type: 'u32' | 'f32') =>
  Array.from({ length: ADAM_MAX_GROUPS }, (_, k) => ({ name: `${prefix}${k}`, type }));
const memberList = (prefix: string): string => Array.from({ length: ADAM_MAX_GROUPS }, (_, k) => `p.${prefix}${k}`).join(', ');
const structMembers = (prefix: string, type: string): string =>
  Array.from({ length: ADAM_MAX_GROUPS }, (_, k) => `${prefix}${k}: ${type}`).join(', ');

export interface AdamConsts {
  /** true: AdamW (decay applied to the weights directly); false: Adam with L2 decay added to the gradient. */
  decoupled: boolean;
}

export const adamKernel = defineKernel<AdamConsts>({
  name: 'adam_step',
  variants: [{ decoupled: false }, { decoupled: true }],
  bindings: [
    { name: 'grad', access: 'read' },
    { name: 'param', access: 'rw' },
    { name: 'm', access: 'rw' },
    { name: 'v', access: 'rw' },
  ],
  params: [
    { name: 'n_vec4', type: 'u32' },
    { name: 'group_count', type: 'u32' },
    { name: 'beta1', type: 'f32' },
    { name: 'beta2', type: 'f32' },
    { name: 'eps', type: 'f32' },
    { name: 'bias_correction1', type: 'f32' },
    { name: 'bias_correction2_sqrt', type: 'f32' },
    { name: 'grad_scale', type: 'f32' },
    ...perGroup('group_end', 'u32'),
    ...perGroup('lr', 'f32'),
    ...perGroup('weight_decay', 'f32'),
  ],
  workgroupSize: WORKGROUP,
  wgsl: ({ decoupled }) => /* wgsl */ `
// adam_step (${decoupled ? 'AdamW: decoupled weight decay' : 'Adam: L2 weight decay in the gradient'}), one vec4 per thread.
struct Params {
  n_vec4: u32, group_count: u32,
  beta1: f32, beta2: f32, eps: f32, bias_correction1: f32, bias_correction2_sqrt: f32, grad_scale: f32,
  ${structMembers('group_end', 'u32')},
  ${structMembers('lr', 'f32')},
  ${structMembers('weight_decay', 'f32')},
}
@group(0) @binding(0) var<storage, read> grad: array<vec4f>;
@group(0) @binding(1) var<storage, read_write> param: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> m: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> v: array<vec4f>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (i >= p.n_vec4) { return; }
  let element = i * 4u;

  let group_ends = array<u32, ${ADAM_MAX_GROUPS}>(${memberList('group_end')});
  let lrs = array<f32, ${ADAM_MAX_GROUPS}>(${memberList('lr')});
  let weight_decays = array<f32, ${ADAM_MAX_GROUPS}>(${memberList('weight_decay')});
  var group = 0u;
  while (group + 1u < p.group_count && element >= group_ends[group]) { group++; }
  let lr = lrs[group];
  let weight_decay = weight_decays[group];

  var w = param[i];
  var g = grad[i] * p.grad_scale;
  ${decoupled ? 'w = w * (1.0 - lr * weight_decay);' : 'g = g + weight_decay * w;'}
  let m_new = p.beta1 * m[i] + (1.0 - p.beta1) * g;
  let v_new = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
  let denom = sqrt(v_new) / p.bias_correction2_sqrt + vec4f(p.eps);
  m[i] = m_new;
  v[i] = v_new;
  param[i] = w - (lr / p.bias_correction1) * m_new / denom;
}
`,
});

// ---------------------------------------------------------------------------------------------------------------
// float64 reference

export interface AdamGroupRef {
  /** One past the group's last element (groups are consecutive, the first starts at 0). */
  end: number;
  lr: number;
  weightDecay: number;
}

export interface AdamHyperRef {
  beta1: number;
  beta2: number;
  eps: number;
  /** The 1-based step being taken. */
  step: number;
  decoupled: boolean;
  gradScale?: number;
}

/** One Adam(W) step in float64, updating `param`, `m`, `v` in place (torch.optim.Adam / AdamW, elementwise). */
export function adamReference(
  param: Float64Array,
  m: Float64Array,
  v: Float64Array,
  grad: ArrayLike<number>,
  groups: readonly AdamGroupRef[],
  hyper: AdamHyperRef,
): void {
  const { beta1, beta2, eps, step, decoupled } = hyper;
  const biasCorrection1 = 1 - beta1 ** step;
  const biasCorrection2 = 1 - beta2 ** step;
  let start = 0;
  for (const { end, lr, weightDecay } of groups) {
    for (let i = start; i < end; i++) {
      let g = grad[i] * (hyper.gradScale ?? 1);
      if (decoupled) param[i] *= 1 - lr * weightDecay;
      else g += weightDecay * param[i];
      m[i] = beta1 * m[i] + (1 - beta1) * g;
      v[i] = beta2 * v[i] + (1 - beta2) * g * g;
      const mHat = m[i] / biasCorrection1;
      const vHat = v[i] / biasCorrection2;
      param[i] -= (lr * mHat) / (Math.sqrt(vHat) + eps);
    }
    start = end;
  }
}
