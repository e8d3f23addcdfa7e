/**
 * Volume rendering (compositing) of S samples per ray, forward and backward, with the photometric loss fusable.
 * The math and its float64 reference: composite.ref.ts.
 *
 * Thread mapping: one thread per ray (R threads), each walking its S samples front to back.
 * Buffer layout (all f32, row-major):
 *   sigma_raw [R, S]   rgb_raw [R, S, 3]   z [R, S] (increasing)   dir_norm [R]
 *   background [R, 3]  (the torso/background pixel taken by the last sample, when consts.background)
 *   target [R, 3]      (ground-truth colour, when consts.loss)
 *   out [R, 5]         (r, g, b, depth, acc), written by the forward and read back by the backward
 *   loss [R]           Σ_c (C_c − target_c)², when consts.loss
 *   dL_dout            [R, 5] (render mode) or [R] (loss mode: dL/dloss per ray)
 *   dL_dsigma_raw [R, S], dL_drgb_raw [R, S, 3]
 *
 * The backward stores nothing per sample: it re-walks the ray and gets each "later" sum Σ_{k>i} w_k v_k as
 * total − prefix (torch-ngp's composite_rays_train_backward, instant-ngp's suffix trick), with the totals taken
 * from the forward's `out`. For the last sample the later sum is exactly zero and is set so: its interval is 1e10,
 * and multiplying it by the rounding error of total − prefix would give garbage.
 *
 * Early termination: once transmittance T < t_threshold the remaining samples are skipped (weights < threshold);
 * t_threshold = 0 renders exactly. Forward and backward use the same test, so they stop at the same sample.
 */
import { defineKernel } from '../runtime/kernel.ts';
import type { DensityActivation } from './composite.ref.ts';

export interface CompositeConsts {
  activation: DensityActivation;
  background: boolean;
  loss: boolean;
}

const WORKGROUP = 64;

const DENSITY_WGSL: Record<DensityActivation, { value: string; derivative: string }> = {
  relu: { value: 'max(raw, 0.0) + 1e-6', derivative: 'select(0.0, 1.0, raw > 0.0)' },
  softplus: { value: 'select(log(1.0 + exp(raw)), raw, raw > 20.0)', derivative: '1.0 / (1.0 + exp(-raw))' },
  exp: { value: 'exp(raw)', derivative: 'exp(raw)' },
};

const COMMON = (c: CompositeConsts): string => /* wgsl */ `
const LAST_INTERVAL: f32 = 1e10;

fn density(raw: f32) -> f32 { return ${DENSITY_WGSL[c.activation].value}; }
fn density_derivative(raw: f32) -> f32 { return ${DENSITY_WGSL[c.activation].derivative}; }
fn sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }

fn interval(ray: u32, i: u32) -> f32 {
  let base = ray * p.samples;
  let dz = select(z[base + i + 1u] - z[base + i], LAST_INTERVAL, i + 1u == p.samples);
  return dz * dir_norm[ray];
}

// (r, g, b) of sample i: sigmoid of the network output, or the background pixel for the last sample.
fn sample_colour(ray: u32, i: u32) -> vec3f {
  ${c.background ? `if (i + 1u == p.samples) { return vec3f(background[ray * 3u], background[ray * 3u + 1u], background[ray * 3u + 2u]); }` : ''}
  let k = (ray * p.samples + i) * 3u;
  return vec3f(sigmoid(rgb_raw[k]), sigmoid(rgb_raw[k + 1u]), sigmoid(rgb_raw[k + 2u]));
}`;

export const compositeForward = defineKernel<CompositeConsts>({
  name: 'composite_forward',
  variants: [
    { activation: 'relu', background: true, loss: true },
    { activation: 'exp', background: false, loss: false },
  ],
  bindings: [
    { name: 'sigma_raw', access: 'read' },
    { name: 'rgb_raw', access: 'read' },
    { name: 'z', access: 'read' },
    { name: 'dir_norm', access: 'read' },
    { name: 'background', access: 'read' },
    { name: 'target', access: 'read' },
    { name: 'out', access: 'rw' },
    { name: 'loss', access: 'rw' },
  ],
  params: [
    { name: 'rays', type: 'u32' },
    { name: 'samples', type: 'u32' },
    { name: 't_threshold', type: 'f32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: (c) => /* wgsl */ `
// composite_forward(σ: ${c.activation}${c.background ? ', background last sample' : ''}${c.loss ? ', fused loss' : ''})
struct Params { rays: u32, samples: u32, t_threshold: f32 }
@group(0) @binding(0) var<storage, read> sigma_raw: array<f32>;
@group(0) @binding(1) var<storage, read> rgb_raw: array<f32>;
@group(0) @binding(2) var<storage, read> z: array<f32>;
@group(0) @binding(3) var<storage, read> dir_norm: array<f32>;
@group(0) @binding(4) var<storage, read> background: array<f32>;
@group(0) @binding(5) var<storage, read> target_rgb: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
@group(0) @binding(7) var<storage, read_write> loss: array<f32>;
@group(0) @binding(8) var<uniform> p: Params;
${COMMON(c)}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let ray = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (ray >= p.rays) { return; }
  var transmittance = 1.0;
  var colour = vec3f(0.0);
  var depth = 0.0;
  var acc = 0.0;
  for (var i = 0u; i < p.samples; i++) {
    if (transmittance < p.t_threshold) { break; }
    let alpha = 1.0 - exp(-density(sigma_raw[ray * p.samples + i]) * interval(ray, i));
    let weight = transmittance * alpha;
    colour += weight * sample_colour(ray, i);
    depth += weight * z[ray * p.samples + i];
    acc += weight;
    transmittance *= 1.0 - alpha;
  }
  out[ray * 5u] = colour.x;
  out[ray * 5u + 1u] = colour.y;
  out[ray * 5u + 2u] = colour.z;
  out[ray * 5u + 3u] = depth;
  out[ray * 5u + 4u] = acc;
  ${
    c.loss
      ? `let error = colour - vec3f(target_rgb[ray * 3u], target_rgb[ray * 3u + 1u], target_rgb[ray * 3u + 2u]);
  loss[ray] = dot(error, error);`
      : ''
  }
}
`,
});

export const compositeBackward = defineKernel<CompositeConsts>({
  name: 'composite_backward',
  variants: [
    { activation: 'relu', background: true, loss: true },
    { activation: 'softplus', background: false, loss: false },
  ],
  bindings: [
    { name: 'sigma_raw', access: 'read' },
    { name: 'rgb_raw', access: 'read' },
    { name: 'z', access: 'read' },
    { name: 'dir_norm', access: 'read' },
    { name: 'background', access: 'read' },
    { name: 'target', access: 'read' },
    { name: 'out', access: 'read' },
    { name: 'dL_dout', access: 'read' },
    { name: 'dL_dsigma_raw', access: 'rw' },
    { name: 'dL_drgb_raw', access: 'rw' },
  ],
  params: [
    { name: 'rays', type: 'u32' },
    { name: 'samples', type: 'u32' },
    { name: 't_threshold', type: 'f32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: (c) => /* wgsl */ `
// composite_backward(σ: ${c.activation}${c.background ? ', background last sample' : ''}${c.loss ? ', from the fused loss' : ''})
struct Params { rays: u32, samples: u32, t_threshold: f32 }
@group(0) @binding(0) var<storage, read> sigma_raw: array<f32>;
@group(0) @binding(1) var<storage, read> rgb_raw: array<f32>;
@group(0) @binding(2) var<storage, read> z: array<f32>;
@group(0) @binding(3) var<storage, read> dir_norm: array<f32>;
@group(0) @binding(4) var<storage, read> background: array<f32>;
@group(0) @binding(5) var<storage, read> target_rgb: array<f32>;
@group(0) @binding(6) var<storage, read> out: array<f32>;
@group(0) @binding(7) var<storage, read> dL_dout: array<f32>;
@group(0) @binding(8) var<storage, read_write> dL_dsigma_raw: array<f32>;
@group(0) @binding(9) var<storage, read_write> dL_drgb_raw: array<f32>;
@group(0) @binding(10) var<uniform> p: Params;
${COMMON(c)}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let ray = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (ray >= p.rays) { return; }
  let total_colour = vec3f(out[ray * 5u], out[ray * 5u + 1u], out[ray * 5u + 2u]);
  let total_depth = out[ray * 5u + 3u];
  let total_acc = out[ray * 5u + 4u];
  ${
    c.loss
      ? `// L_ray = |C − target|², so dL/dC = 2 (C − target) · dL/dL_ray; depth and acc do not enter the loss.
  let target_colour = vec3f(target_rgb[ray * 3u], target_rgb[ray * 3u + 1u], target_rgb[ray * 3u + 2u]);
  let dL_dcolour = 2.0 * (total_colour - target_colour) * dL_dout[ray];
  let dL_ddepth = 0.0;
  let dL_dacc = 0.0;`
      : `let dL_dcolour = vec3f(dL_dout[ray * 5u], dL_dout[ray * 5u + 1u], dL_dout[ray * 5u + 2u]);
  let dL_ddepth = dL_dout[ray * 5u + 3u];
  let dL_dacc = dL_dout[ray * 5u + 4u];`
  }

  var transmittance = 1.0;
  var prefix_colour = vec3f(0.0);
  var prefix_depth = 0.0;
  var prefix_acc = 0.0;
  for (var i = 0u; i < p.samples; i++) {
    let s = ray * p.samples + i;
    if (transmittance < p.t_threshold) {
      dL_dsigma_raw[s] = 0.0;
      dL_drgb_raw[s * 3u] = 0.0;
      dL_drgb_raw[s * 3u + 1u] = 0.0;
      dL_drgb_raw[s * 3u + 2u] = 0.0;
      continue;
    }
    let raw = sigma_raw[s];
    let delta = interval(ray, i);
    let alpha = 1.0 - exp(-density(raw) * delta);
    let weight = transmittance * alpha;
    let next = transmittance * (1.0 - alpha);
    let colour = sample_colour(ray, i);
    let depth = z[s];
    prefix_colour += weight * colour;
    prefix_depth += weight * depth;
    prefix_acc += weight;

    // Later sums Σ_{k>i} w_k v_k = total − prefix; exactly zero after the last sample.
    let is_last = i + 1u == p.samples;
    let later_colour = select(total_colour - prefix_colour, vec3f(0.0), is_last);
    let later_depth = select(total_depth - prefix_depth, 0.0, is_last);
    let later_acc = select(total_acc - prefix_acc, 0.0, is_last);
    let dL_dsigma = delta * (dot(dL_dcolour, next * colour - later_colour)
                           + dL_ddepth * (next * depth - later_depth)
                           + dL_dacc * (next - later_acc));
    dL_dsigma_raw[s] = dL_dsigma * density_derivative(raw);

    // Colour through the sigmoid: dc/draw = c (1 − c). The background sample has no network colour.
    var dL_dc = dL_dcolour * weight * colour * (vec3f(1.0) - colour);
    ${c.background ? 'if (is_last) { dL_dc = vec3f(0.0); }' : ''}
    dL_drgb_raw[s * 3u] = dL_dc.x;
    dL_drgb_raw[s * 3u + 1u] = dL_dc.y;
    dL_drgb_raw[s * 3u + 2u] = dL_dc.z;
    transmittance = next;
  }
}
`,
});

/**
 * The per-sample weights w_i = T_i α_i of each ray (no gradient: they only steer importance sampling).
 * Thread mapping: one thread per ray; sigma_raw, z [R, S], dir_norm [R] → weights [R, S].
 */
export const compositeWeights = defineKernel<{ activation: DensityActivation }>({
  name: 'composite_weights',
  variants: [{ activation: 'relu' }],
  bindings: [
    { name: 'sigma_raw', access: 'read' },
    { name: 'z', access: 'read' },
    { name: 'dir_norm', access: 'read' },
    { name: 'weights', access: 'rw' },
  ],
  params: [
    { name: 'rays', type: 'u32' },
    { name: 'samples', type: 'u32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: ({ activation }) => /* wgsl */ `
// composite_weights(σ: ${activation}): weights[r, i] = T_i · α_i
struct Params { rays: u32, samples: u32 }
@group(0) @binding(0) var<storage, read> sigma_raw: array<f32>;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read> dir_norm: array<f32>;
@group(0) @binding(3) var<storage, read_write> weights: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
const LAST_INTERVAL: f32 = 1e10;
fn density(raw: f32) -> f32 { return ${DENSITY_WGSL[activation].value}; }

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let ray = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (ray >= p.rays) { return; }
  var transmittance = 1.0;
  for (var i = 0u; i < p.samples; i++) {
    let s = ray * p.samples + i;
    let dz = select(z[s + 1u] - z[s], LAST_INTERVAL, i + 1u == p.samples);
    let alpha = 1.0 - exp(-density(sigma_raw[s]) * dz * dir_norm[ray]);
    weights[s] = transmittance * alpha;
    transmittance *= 1.0 - alpha;
  }
}
`,
});
