/**
 * Volume rendering over packed (ragged) samples from the ray marcher, forward and backward, with the photometric
 * loss fusable (torch-ngp's composite_rays_train, instant-ngp's compute_loss_kernel_train_nerf). The math and its
 * float64 reference: composite-ragged.ref.ts.
 *
 * Thread mapping: one thread per ray, walking its run of samples front to back.
 * Rendering (inference) composites in rounds instead, with the same arithmetic: composite-rounds.ts.
 * Buffer layout (f32 unless said):
 *   runs [R, 2] u32 (offset, count)    sigma_raw [N]   rgb_raw [N, 3]   z [N] (depth)   delta [N] (interval)
 *   background [R, 3]: takes the transmittance left after the last sample (an empty ray renders it exactly)
 *   target [R, 3] (when consts.loss)   out [R, 5] (r, g, b, depth, acc)   loss [R] = Σ_c (C_c − target_c)²
 *   dL_dout [R, 5] (render mode) or [R] (loss mode)   dL_dsigma_raw [N], dL_drgb_raw [N, 3]
 * N is the capacity of the packed arrays; samples outside every run are neither read nor written (the op zeroes
 * their gradients, so padding rows contribute nothing to the field's gradients).
 *
 * The backward keeps nothing per sample: it re-walks the run and gets Σ_{k>i} w_k v_k + T_end·bg as total − prefix,
 * with the totals from the forward's `out` (whose colour already includes T_end·bg: so the background term of
 * ∂C/∂σ_i comes for free — the term torch-ngp's issue #77 was about). Early termination (T < t_threshold) stops
 * forward and backward at the same sample.
 */
import { defineKernel } from '../runtime/kernel.ts';
import type { DensityActivation } from './composite.ref.ts';

export interface RaggedCompositeConsts {
  activation: DensityActivation;
  loss: boolean;
}

const WORKGROUP = 64;

const DENSITY_WGSL: Record<DensityActivation, { value: string; derivative: string }> = {
  relu: { value: 'max(raw, 0.0) + 1e-6', derivative: 'select(0.0, 1.0, raw > 0.0)' },
  softplus: { value: 'select(log(1.0 + exp(raw)), raw, raw > 20.0)', derivative: '1.0 / (1.0 + exp(-raw))' },
  exp: { value: 'exp(raw)', derivative: 'exp(raw)' },
};

const DENSITY_FN = (activation: DensityActivation): string => `fn density(raw: f32) -> f32 { return ${DENSITY_WGSL[activation].value}; }`;

/** α of sample s (needs the density function and the sigma_raw, delta bindings). */
const SAMPLE_ALPHA_FN = /* wgsl */ `fn sample_alpha(s: u32) -> f32 { return 1.0 - exp(-density(sigma_raw[s]) * delta[s]); }`;

const SAMPLE_COLOUR_FN = /* wgsl */ `fn sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
fn sample_colour(s: u32) -> vec3f { return vec3f(sigmoid(rgb_raw[s * 3u]), sigmoid(rgb_raw[s * 3u + 1u]), sigmoid(rgb_raw[s * 3u + 2u])); }`;

/** One front-to-back compositing step (needs the above and the rgb_raw, z bindings). */
const COMPOSITE_SAMPLE_FN = /* wgsl */ `struct Composite { colour: vec3f, depth: f32, acc: f32, transmittance: f32 }

// Adds sample s to a ray's running composite: w = T·α into colour, depth and acc, then T ← T·(1 − α).
fn composite_sample(c: ptr<function, Composite>, s: u32) {
  let alpha = sample_alpha(s);
  let weight = (*c).transmittance * alpha;
  (*c).colour += weight * sample_colour(s);
  (*c).depth += weight * z[s];
  (*c).acc += weight;
  (*c).transmittance *= 1.0 - alpha;
}`;

/**
 * WGSL shared with composite-rounds.ts, whose rounds must reproduce this file's forward exactly: the density
 * activation, α of a sample, and the compositing step itself.
 */
export const RAGGED_COMPOSITE_HELPERS = {
  alpha: (activation: DensityActivation): string => `${DENSITY_FN(activation)}\n${SAMPLE_ALPHA_FN}`,
  composite: (activation: DensityActivation): string => `${DENSITY_FN(activation)}\n${SAMPLE_ALPHA_FN}\n${SAMPLE_COLOUR_FN}\n${COMPOSITE_SAMPLE_FN}`,
};

const COMMON = (c: RaggedCompositeConsts): string => /* wgsl */ `
${DENSITY_FN(c.activation)}
fn density_derivative(raw: f32) -> f32 { return ${DENSITY_WGSL[c.activation].derivative}; }
${SAMPLE_ALPHA_FN}
${SAMPLE_COLOUR_FN}
${COMPOSITE_SAMPLE_FN}
fn background_of(ray: u32) -> vec3f { return vec3f(background[ray * 3u], background[ray * 3u + 1u], background[ray * 3u + 2u]); }`;

export const compositeRaggedForward = defineKernel<RaggedCompositeConsts>({
  name: 'composite_ragged_forward',
  variants: [
    { activation: 'exp', loss: true },
    { activation: 'relu', loss: false },
  ],
  bindings: [
    { name: 'runs', access: 'read' },
    { name: 'sigma_raw', access: 'read' },
    { name: 'rgb_raw', access: 'read' },
    { name: 'z', access: 'read' },
    { name: 'delta', access: 'read' },
    { name: 'background', access: 'read' },
    { name: 'target', access: 'read' },
    { name: 'out', access: 'rw' },
    { name: 'loss', access: 'rw' },
  ],
  params: [
    { name: 'rays', type: 'u32' },
    { name: 't_threshold', type: 'f32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: (c) => /* wgsl */ `
// composite_ragged_forward(σ: ${c.activation}${c.loss ? ', fused loss' : ''})
struct Params { rays: u32, t_threshold: f32 }
@group(0) @binding(0) var<storage, read> runs: array<u32>;
@group(0) @binding(1) var<storage, read> sigma_raw: array<f32>;
@group(0) @binding(2) var<storage, read> rgb_raw: array<f32>;
@group(0) @binding(3) var<storage, read> z: array<f32>;
@group(0) @binding(4) var<storage, read> delta: array<f32>;
@group(0) @binding(5) var<storage, read> background: array<f32>;
@group(0) @binding(6) var<storage, read> target_rgb: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;
@group(0) @binding(8) var<storage, read_write> loss: array<f32>;
@group(0) @binding(9) var<uniform> p: Params;
${COMMON(c)}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let ray = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (ray >= p.rays) { return; }
  let offset = runs[ray * 2u];
  let count = runs[ray * 2u + 1u];
  var c = Composite(vec3f(0.0), 0.0, 0.0, 1.0);
  for (var i = 0u; i < count; i++) {
    if (c.transmittance < p.t_threshold) { break; }
    composite_sample(&c, offset + i);
  }
  let colour = c.colour + c.transmittance * background_of(ray);
  out[ray * 5u] = colour.x;
  out[ray * 5u + 1u] = colour.y;
  out[ray * 5u + 2u] = colour.z;
  out[ray * 5u + 3u] = c.depth;
  out[ray * 5u + 4u] = c.acc;
  ${
    c.loss
      ? `let error = colour - vec3f(target_rgb[ray * 3u], target_rgb[ray * 3u + 1u], target_rgb[ray * 3u + 2u]);
  loss[ray] = dot(error, error);`
      : ''
  }
}
`,
});

export const compositeRaggedBackward = defineKernel<RaggedCompositeConsts>({
  name: 'composite_ragged_backward',
  variants: [
    { activation: 'exp', loss: true },
    { activation: 'softplus', loss: false },
  ],
  bindings: [
    { name: 'runs', access: 'read' },
    { name: 'sigma_raw', access: 'read' },
    { name: 'rgb_raw', access: 'read' },
    { name: 'z', access: 'read' },
    { name: 'delta', access: 'read' },
    { name: 'background', access: 'read' },
    { name: 'target', access: 'read' },
    { name: 'out', access: 'read' },
    { name: 'dL_dout', access: 'read' },
    { name: 'dL_dsigma_raw', access: 'rw' },
    { name: 'dL_drgb_raw', access: 'rw' },
  ],
  params: [
    { name: 'rays', type: 'u32' },
    { name: 't_threshold', type: 'f32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: (c) => /* wgsl */ `
// composite_ragged_backward(σ: ${c.activation}${c.loss ? ', from the fused loss' : ''})
struct Params { rays: u32, t_threshold: f32 }
@group(0) @binding(0) var<storage, read> runs: array<u32>;
@group(0) @binding(1) var<storage, read> sigma_raw: array<f32>;
@group(0) @binding(2) var<storage, read> rgb_raw: array<f32>;
@group(0) @binding(3) var<storage, read> z: array<f32>;
@group(0) @binding(4) var<storage, read> delta: array<f32>;
@group(0) @binding(5) var<storage, read> background: array<f32>;
@group(0) @binding(6) var<storage, read> target_rgb: array<f32>;
@group(0) @binding(7) var<storage, read> out: array<f32>;
@group(0) @binding(8) var<storage, read> dL_dout: array<f32>;
@group(0) @binding(9) var<storage, read_write> dL_dsigma_raw: array<f32>;
@group(0) @binding(10) var<storage, read_write> dL_drgb_raw: array<f32>;
@group(0) @binding(11) var<uniform> p: Params;
${COMMON(c)}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let ray = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (ray >= p.rays) { return; }
  let offset = runs[ray * 2u];
  let count = runs[ray * 2u + 1u];
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
  for (var i = 0u; i < count; i++) {
    if (transmittance < p.t_threshold) { break; }
    let s = offset + i;
    let raw = sigma_raw[s];
    let dt = delta[s];
    let alpha = 1.0 - exp(-density(raw) * dt);
    let weight = transmittance * alpha;
    let next = transmittance * (1.0 - alpha);
    let colour = sample_colour(s);
    prefix_colour += weight * colour;
    prefix_depth += weight * z[s];
    prefix_acc += weight;
    // Later sums Σ_{k>i} w_k v_k (+ T_end·bg for colour, inside total_colour) = total − prefix.
    let dL_dsigma = dt * (dot(dL_dcolour, next * colour - (total_colour - prefix_colour))
                        + dL_ddepth * (next * z[s] - (total_depth - prefix_depth))
                        + dL_dacc * (next - (total_acc - prefix_acc)));
    dL_dsigma_raw[s] = dL_dsigma * density_derivative(raw);
    let dL_dc = dL_dcolour * weight * colour * (vec3f(1.0) - colour);
    dL_drgb_raw[s * 3u] = dL_dc.x;
    dL_drgb_raw[s * 3u + 1u] = dL_dc.y;
    dL_drgb_raw[s * 3u + 2u] = dL_dc.z;
    transmittance = next;
  }
}
`,
});
