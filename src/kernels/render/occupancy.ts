/**
 * Occupancy grid (instant-ngp / torch-ngp, one cascade): a G³ grid of density values over the scene box
 * [−bound, bound]³, kept up to date by an exponential moving maximum of the field's density, and a packed
 * bitfield that the ray marcher reads to skip empty space. The float64 reference: occupancy.ref.ts.
 *
 * Cells: cell (x, y, z), x,y,z ∈ [0, G), has linear index c = x + G·(y + G·z) (no Morton order) and spans
 * [−bound + x·s, −bound + (x+1)·s) along x, s = 2·bound / G. A point belongs to cell floor((p + bound) / s) —
 * a point on a boundary belongs to the upper cell.
 *
 * An update touches the cells c = phase + k·stride (k < slots): stride 1 updates every cell (torch-ngp's warm-up);
 * stride 4 with a rotating phase updates a quarter per call, so each cell is refreshed every 4 updates.
 *   occupancy_cell_points — thread per slot k: a point in cell c, jittered uniformly (or its centre) → points [slots, 3]
 *   occupancy_update      — thread per slot k: grid[c] = max(grid[c] · decay, scale · σ(σ_raw[k])) (the field's
 *                           density at that point, activated as the renderer does; instant-ngp stores the optical
 *                           thickness σ·dt of one minimal step, scale = dt, so the 0.01 threshold means "α < 1%";
 *                           torch-ngp stores σ, scale = 1)
 *   occupancy_pack        — thread per 32-cell word w: bit b of bitfield[w] = grid[32w + b] > min(mean, threshold)
 *                           with mean = mean_density[0], the grid's mean computed on the GPU (torch-ngp clips the
 *                           threshold at `density_thresh` = 0.01 from above, so a mostly-dense grid stays usable)
 */
import { defineKernel } from '../runtime/kernel.ts';
import { HASH_WGSL } from './sampling.ts';
import type { DensityActivation } from './composite.ref.ts';

const WORKGROUP = 64;

const DENSITY_WGSL: Record<DensityActivation, string> = {
  relu: 'max(raw, 0.0) + 1e-6',
  softplus: 'select(log(1.0 + exp(raw)), raw, raw > 20.0)',
  exp: 'exp(raw)',
};

export const occupancyCellPoints = defineKernel({
  name: 'occupancy_cell_points',
  bindings: [{ name: 'points', access: 'rw' }],
  params: [
    { name: 'resolution', type: 'u32' },
    { name: 'bound', type: 'f32' },
    { name: 'slots', type: 'u32' },
    { name: 'stride', type: 'u32' },
    { name: 'phase', type: 'u32' },
    { name: 'seed', type: 'u32' },
    { name: 'jitter', type: 'u32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: () => /* wgsl */ `
// occupancy_cell_points: points[k] = −bound + (cell(c) + u) · 2·bound / G, c = phase + k·stride
struct Params { resolution: u32, bound: f32, slots: u32, stride: u32, phase: u32, seed: u32, jitter: u32 }
@group(0) @binding(0) var<storage, read_write> points: array<f32>;
@group(0) @binding(1) var<uniform> p: Params;
${HASH_WGSL}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let k = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (k >= p.slots) { return; }
  let c = p.phase + k * p.stride;
  let g = p.resolution;
  let cell = vec3f(f32(c % g), f32((c / g) % g), f32(c / (g * g)));
  var u = vec3f(0.5);
  if (p.jitter != 0u) { u = vec3f(random01(p.seed, c, 0u), random01(p.seed, c, 1u), random01(p.seed, c, 2u)); }
  let size = 2.0 * p.bound / f32(g);
  let point = -vec3f(p.bound) + (cell + u) * size;
  points[k * 3u] = point.x;
  points[k * 3u + 1u] = point.y;
  points[k * 3u + 2u] = point.z;
}
`,
});

export const occupancyUpdate = defineKernel<{ activation: DensityActivation }>({
  name: 'occupancy_update',
  variants: [{ activation: 'exp' }, { activation: 'relu' }],
  bindings: [
    { name: 'sigma_raw', access: 'read' },
    { name: 'grid', access: 'rw' },
  ],
  params: [
    { name: 'slots', type: 'u32' },
    { name: 'stride', type: 'u32' },
    { name: 'phase', type: 'u32' },
    { name: 'decay', type: 'f32' },
    { name: 'scale', type: 'f32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: ({ activation }) => /* wgsl */ `
// occupancy_update(σ: ${activation}): grid[c] = max(grid[c] · decay, scale · σ(σ_raw[k])), c = phase + k·stride
struct Params { slots: u32, stride: u32, phase: u32, decay: f32, scale: f32 }
@group(0) @binding(0) var<storage, read> sigma_raw: array<f32>;
@group(0) @binding(1) var<storage, read_write> grid: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

fn density(raw: f32) -> f32 { return ${DENSITY_WGSL[activation]}; }

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let k = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (k >= p.slots) { return; }
  let c = p.phase + k * p.stride;
  grid[c] = max(grid[c] * p.decay, p.scale * density(sigma_raw[k]));
}
`,
});

export const occupancyPack = defineKernel({
  name: 'occupancy_pack',
  bindings: [
    { name: 'grid', access: 'read' },
    { name: 'mean_density', access: 'read' },
    { name: 'bitfield', access: 'rw' },
  ],
  params: [
    { name: 'cells', type: 'u32' },
    { name: 'words', type: 'u32' },
    { name: 'threshold', type: 'f32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: () => /* wgsl */ `
// occupancy_pack: bitfield[w] bit b = grid[32w + b] > min(mean_density, threshold)
struct Params { cells: u32, words: u32, threshold: f32 }
@group(0) @binding(0) var<storage, read> grid: array<f32>;
@group(0) @binding(1) var<storage, read> mean_density: array<f32>;
@group(0) @binding(2) var<storage, read_write> bitfield: array<u32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let w = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (w >= p.words) { return; }
  let cutoff = min(mean_density[0], p.threshold);
  var bits = 0u;
  for (var b = 0u; b < 32u; b++) {
    let c = w * 32u + b;
    if (c < p.cells && grid[c] > cutoff) { bits |= 1u << b; }
  }
  bitfield[w] = bits;
}
`,
});
