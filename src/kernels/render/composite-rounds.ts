/**
 * Volume rendering in rounds, for inference (instant-ngp's iterative march: march_rays + composite_rays; no
 * gradient). A frame is marched a few samples per ray at a time, each round resuming every ray where the last
 * one stopped and only while the ray is still transparent, so that fewer samples behind surfaces reach the field:
 * on fit-scene about 45% of the samples one march emits lie past T < 1e-4 (inside the solids), and each would go
 * through the hash grid and the density MLP; rounds of 16 samples and then the rest cut a 128² frame's density
 * evaluations from 124,597 to 89,907 (the rays still transparent after 16 samples march the rest in full).
 * The math and its float64 reference: composite-rounds.ref.ts.
 *
 * Per ray the running state is [R, 6] f32 = (r, g, b, depth, acc, T), starting at (0, 0, 0, 0, 0, 1). Each round
 * continues the exact arithmetic of composite_ragged_forward from that state, so the image after the last round
 * equals the one-march image bit for bit (tested).
 *
 * composite_rounds_walked — thread per ray; after the round's density is known, before its colour:
 *   walks the round's run from the state's T (not writing it) as long as T ≥ t_threshold; lists the walked
 *   samples in `walked` (one atomicAdd on `counter` reserves the ray's span, so the order of rays in the list
 *   varies from run to run while a sample's entry and the image do not; the colour MLP then runs on those alone),
 *   and writes next_start[ray] for the next round's march: the march's end_step, or DONE (0xFFFFFFFF) when
 *   the ray terminated here or left its range.
 * composite_rounds_accumulate — thread per ray; after the round's colour:
 *   walks the same samples and adds them to the state; with `finish` (the last round) also writes
 *   out [R, 5] = (colour + T·background, depth, acc), composite_ragged_forward's layout.
 * Buffer layout (f32 unless said): runs [R, 2] u32 (offset, count) into the round's packed samples;
 *   sigma_raw [N], rgb_raw [N, 3], z [N], delta [N]; end_step [R] u32 (the march's); state [R, 6];
 *   counter [1] u32 (starts at 0); walked [N] i32; next_start [R] u32; background [R, 3]; out [R, 5].
 */
import { defineKernel } from '../runtime/kernel.ts';
import type { DensityActivation } from './composite.ref.ts';
import { RAGGED_COMPOSITE_HELPERS } from './composite-ragged.ts';

const WORKGROUP = 64;

/** Floats per ray in the running state. */
export const ROUND_STATE = 6;

export const compositeRoundsWalked = defineKernel<{ activation: DensityActivation }>({
  name: 'composite_rounds_walked',
  variants: [{ activation: 'exp' }],
  bindings: [
    { name: 'runs', access: 'read' },
    { name: 'sigma_raw', access: 'read' },
    { name: 'delta', access: 'read' },
    { name: 'state', access: 'read' },
    { name: 'end_step', access: 'read' },
    { name: 'counter', access: 'rw' },
    { name: 'walked', access: 'rw' },
    { name: 'next_start', access: 'rw' },
  ],
  params: [
    { name: 'rays', type: 'u32' },
    { name: 't_threshold', type: 'f32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: ({ activation }) => /* wgsl */ `
// composite_rounds_walked(σ: ${activation}): this round's samples compositing will read, and where each ray resumes.
struct Params { rays: u32, t_threshold: f32 }
@group(0) @binding(0) var<storage, read> runs: array<u32>;
@group(0) @binding(1) var<storage, read> sigma_raw: array<f32>;
@group(0) @binding(2) var<storage, read> delta: array<f32>;
@group(0) @binding(3) var<storage, read> state: array<f32>;
@group(0) @binding(4) var<storage, read> end_step: array<u32>;
@group(0) @binding(5) var<storage, read_write> counter: array<atomic<u32>>;
@group(0) @binding(6) var<storage, read_write> walked: array<i32>;
@group(0) @binding(7) var<storage, read_write> next_start: array<u32>;
@group(0) @binding(8) var<uniform> p: Params;
${RAGGED_COMPOSITE_HELPERS.alpha(activation)}
const DONE: u32 = 0xffffffffu;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let ray = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (ray >= p.rays) { return; }
  let offset = runs[ray * 2u];
  let count = runs[ray * 2u + 1u];
  var transmittance = state[ray * ${ROUND_STATE}u + 5u];
  var n = 0u;
  for (var i = 0u; i < count; i++) {
    if (transmittance < p.t_threshold) { break; }
    let s = offset + i;
    // composite_sample's arithmetic for T, so walk and accumulation stop at the same sample.
    transmittance *= 1.0 - sample_alpha(s);
    n += 1u;
  }
  next_start[ray] = select(end_step[ray], DONE, transmittance < p.t_threshold);
  if (n == 0u) { return; }
  let first = atomicAdd(&counter[0], n);
  for (var i = 0u; i < n; i++) { walked[first + i] = i32(offset + i); }
}
`,
});

export const compositeRoundsAccumulate = defineKernel<{ activation: DensityActivation }>({
  name: 'composite_rounds_accumulate',
  variants: [{ activation: 'exp' }],
  bindings: [
    { name: 'runs', access: 'read' },
    { name: 'sigma_raw', access: 'read' },
    { name: 'rgb_raw', access: 'read' },
    { name: 'z', access: 'read' },
    { name: 'delta', access: 'read' },
    { name: 'background', access: 'read' },
    { name: 'state', access: 'rw' },
    { name: 'out', access: 'rw' },
  ],
  params: [
    { name: 'rays', type: 'u32' },
    { name: 't_threshold', type: 'f32' },
    { name: 'finish', type: 'u32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: ({ activation }) => /* wgsl */ `
// composite_rounds_accumulate(σ: ${activation}): adds this round's samples to each ray's running state.
struct Params { rays: u32, t_threshold: f32, finish: u32 }
@group(0) @binding(0) var<storage, read> runs: array<u32>;
@group(0) @binding(1) var<storage, read> sigma_raw: array<f32>;
@group(0) @binding(2) var<storage, read> rgb_raw: array<f32>;
@group(0) @binding(3) var<storage, read> z: array<f32>;
@group(0) @binding(4) var<storage, read> delta: array<f32>;
@group(0) @binding(5) var<storage, read> background: array<f32>;
@group(0) @binding(6) var<storage, read_write> state: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;
@group(0) @binding(8) var<uniform> p: Params;
${RAGGED_COMPOSITE_HELPERS.composite(activation)}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let ray = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (ray >= p.rays) { return; }
  let offset = runs[ray * 2u];
  let count = runs[ray * 2u + 1u];
  let base = ray * ${ROUND_STATE}u;
  var c = Composite(vec3f(state[base], state[base + 1u], state[base + 2u]), state[base + 3u], state[base + 4u], state[base + 5u]);
  // composite_ragged_forward's loop, continued from the state.
  for (var i = 0u; i < count; i++) {
    if (c.transmittance < p.t_threshold) { break; }
    composite_sample(&c, offset + i);
  }
  state[base] = c.colour.x;
  state[base + 1u] = c.colour.y;
  state[base + 2u] = c.colour.z;
  state[base + 3u] = c.depth;
  state[base + 4u] = c.acc;
  state[base + 5u] = c.transmittance;
  if (p.finish == 0u) { return; }
  let colour = c.colour + c.transmittance * vec3f(background[ray * 3u], background[ray * 3u + 1u], background[ray * 3u + 2u]);
  out[ray * 5u] = colour.x;
  out[ray * 5u + 1u] = colour.y;
  out[ray * 5u + 2u] = colour.z;
  out[ray * 5u + 3u] = c.depth;
  out[ray * 5u + 4u] = c.acc;
}
`,
});
