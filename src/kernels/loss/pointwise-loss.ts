/**
 * Elementwise loss terms ℓ(p, t) of a prediction p and a target t, and their partial derivatives; the op layer
 * reduces them ('mean' / 'sum') with the reduction ops. One table row per loss:
 *
 *   mse          (p − t)²
 *   l1           |p − t|                                   (∂/∂p at p = t is 0, like torch's sign)
 *   bce          −(t · max(log p, −100) + (1 − t) · max(log(1 − p), −100))     p a probability; torch's clamp
 *                ∂/∂p = (p − t) / max(p (1 − p), 1e-12)   (torch's backward formula, also finite at p ∈ {0, 1})
 *                ∂/∂t = max(log(1 − p), −100) − max(log p, −100)   (torch: −logit(p), unclamped; they differ only
 *                where a log is below −100, i.e. p within 4e-44 of 0 or 1)
 *   bce_logits   max(x, 0) − x · t + log(1 + exp(−|x|))   x a logit: the stable form of bce(sigmoid(x), t)
 *                ∂/∂x = sigmoid(x) − t,  ∂/∂t = −x
 *
 *   pointwise_loss_forward   out[i] = ℓ(pred[i], target[i])
 *   pointwise_loss_backward  grad[i] = dL_dout[i] · ∂ℓ/∂(pred or target)   (const `wrt`)
 *
 * Thread mapping: one thread per element; all buffers contiguous, same size.
 */
import { defineKernel } from '../runtime/kernel.ts';

export interface PointwiseLoss {
  /** ℓ as a WGSL expression of p and t. */
  wgsl: string;
  dpred: string;
  dtarget: string;
  ref: (p: number, t: number) => number;
  dpredRef: (p: number, t: number) => number;
  dtargetRef: (p: number, t: number) => number;
}

const clampedLog = (v: number): number => Math.max(Math.log(v), -100);

export const POINTWISE_LOSSES = {
  mse: {
    wgsl: '(p - t) * (p - t)',
    dpred: '2.0 * (p - t)',
    dtarget: '-2.0 * (p - t)',
    ref: (p, t) => (p - t) ** 2,
    dpredRef: (p, t) => 2 * (p - t),
    dtargetRef: (p, t) => -2 * (p - t),
  },
  l1: {
    wgsl: 'abs(p - t)',
    dpred: 'sign(p - t)',
    dtarget: '-sign(p - t)',
    ref: (p, t) => Math.abs(p - t),
    dpredRef: (p, t) => Math.sign(p - t),
    dtargetRef: (p, t) => -Math.sign(p - t),
  },
  bce: {
    wgsl: '-(t * max(log(p), -100.0) + (1.0 - t) * max(log(1.0 - p), -100.0))',
    dpred: '(p - t) / max(p * (1.0 - p), 1e-12)',
    dtarget: 'max(log(1.0 - p), -100.0) - max(log(p), -100.0)',
    ref: (p, t) => -(t * clampedLog(p) + (1 - t) * clampedLog(1 - p)),
    dpredRef: (p, t) => (p - t) / Math.max(p * (1 - p), 1e-12),
    dtargetRef: (p) => clampedLog(1 - p) - clampedLog(p),
  },
  bce_logits: {
    wgsl: 'max(p, 0.0) - p * t + log(1.0 + exp(-abs(p)))',
    dpred: '1.0 / (1.0 + exp(-p)) - t',
    dtarget: '-p',
    ref: (x, t) => Math.max(x, 0) - x * t + Math.log1p(Math.exp(-Math.abs(x))),
    dpredRef: (x, t) => 1 / (1 + Math.exp(-x)) - t,
    dtargetRef: (x) => -x,
  },
} satisfies Record<string, PointwiseLoss>;

export type PointwiseLossName = keyof typeof POINTWISE_LOSSES;
const WORKGROUP = 64;

export const pointwiseLossForward = defineKernel<{ loss: PointwiseLossName }>({
  name: 'pointwise_loss_forward',
  variants: [{ loss: 'bce' }, { loss: 'bce_logits' }],
  bindings: [
    { name: 'pred', access: 'read' },
    { name: 'target', access: 'read' },
    { name: 'out', access: 'rw' },
  ],
  params: [{ name: 'n', type: 'u32' }],
  workgroupSize: WORKGROUP,
  wgsl: ({ loss }) => /* wgsl */ `
// pointwise_loss_forward(${loss}): out[i] = ${POINTWISE_LOSSES[loss].wgsl}
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read> pred: array<f32>;
@group(0) @binding(1) var<storage, read> target_values: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p_: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (i >= p_.n) { return; }
  let p = pred[i];
  let t = target_values[i];
  out[i] = ${POINTWISE_LOSSES[loss].wgsl};
}
`,
});

export const pointwiseLossBackward = defineKernel<{ loss: PointwiseLossName; wrt: 'pred' | 'target' }>({
  name: 'pointwise_loss_backward',
  variants: [{ loss: 'mse', wrt: 'pred' }, { loss: 'bce', wrt: 'target' }],
  bindings: [
    { name: 'pred', access: 'read' },
    { name: 'target', access: 'read' },
    { name: 'dL_dout', access: 'read' },
    { name: 'grad', access: 'rw' },
  ],
  params: [{ name: 'n', type: 'u32' }],
  workgroupSize: WORKGROUP,
  wgsl: ({ loss, wrt }) => {
    const partial = wrt === 'pred' ? POINTWISE_LOSSES[loss].dpred : POINTWISE_LOSSES[loss].dtarget;
    return /* wgsl */ `
// pointwise_loss_backward(${loss}, d/d${wrt}): grad[i] = dL_dout[i] * (${partial})
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read> pred: array<f32>;
@group(0) @binding(1) var<storage, read> target_values: array<f32>;
@group(0) @binding(2) var<storage, read> dL_dout: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<uniform> p_: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (i >= p_.n) { return; }
  let p = pred[i];
  let t = target_values[i];
  grad[i] = dL_dout[i] * (${partial});
}
`;
  },
});

/** float64 reference: the elementwise loss terms. */
export function pointwiseLossReference(loss: PointwiseLossName, pred: Float64Array, target: Float64Array): Float64Array {
  const row: PointwiseLoss = POINTWISE_LOSSES[loss];
  return pred.map((p, i) => row.ref(p, target[i]));
}

/** float64 reference: [dL/dpred, dL/dtarget] of L = Σ dL_dout ⊙ ℓ. */
export function pointwiseLossBackwardReference(
  loss: PointwiseLossName,
  pred: Float64Array,
  target: Float64Array,
  dL_dout: Float64Array,
): [Float64Array, Float64Array] {
  const row: PointwiseLoss = POINTWISE_LOSSES[loss];
  return [pred.map((p, i) => dL_dout[i] * row.dpredRef(p, target[i])), pred.map((p, i) => dL_dout[i] * row.dtargetRef(p, target[i]))];
}
