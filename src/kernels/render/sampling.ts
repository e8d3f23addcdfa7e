/**
 * Sample depths along rays: stratified (coarse) and importance (fine, by inverse CDF), as in NeRF/AD-NeRF.
 *
 * Random numbers come from a counter-based hash of (seed, ray, sample) — PCG-style — so sampling is reproducible
 * for a seed and needs no RNG state on the GPU. Its float64 reference uses the same hash (the hash is the spec of
 * the random stream; the references check the sampling math around it).
 *
 * stratified_samples — thread per (ray, sample); z [R, S]:
 *   z_i = near + (far − near) · (i + u_i) / S,   u_i ∈ [0, 1) random, or 0.5 when `perturb` is 0
 *   (AD-NeRF: linspace then jitter within each bin; the same distribution with bins of equal width).
 *
 * importance_samples — thread per ray; inputs z_coarse [R, S] (sorted), weights [R, S] (coarse rendering weights);
 * output z_all [R, S + Nf]: the coarse depths merged in order with Nf fine depths drawn from the piecewise-constant
 * PDF over the bins between coarse mid-points (NeRF's sample_pdf: bins = mids of z, weights[1:−1] + 1e-5,
 * u sorted: evenly spaced when `perturb` is 0, otherwise sorted stratified random). No gradient flows through
 * sampling (NeRF detaches z_samples).
 */
import { defineKernel } from '../runtime/kernel.ts';

const WORKGROUP = 64;

/** A 32-bit hash of three integers (PCG output permutation over a combined key). WGSL and TS versions agree (the occupancy grid and ray marcher reuse it). */
export const HASH_WGSL = /* wgsl */ `
fn pcg_hash(key: u32) -> u32 {
  let state = key * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}
fn random01(seed: u32, ray: u32, index: u32) -> f32 {
  let h = pcg_hash(seed ^ pcg_hash(ray ^ pcg_hash(index)));
  return f32(h >> 8u) * (1.0 / 16777216.0);
}`;

export function pcgHash(key: number): number {
  const state = (Math.imul(key >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

export function random01(seed: number, ray: number, index: number): number {
  const h = pcgHash((seed ^ pcgHash((ray ^ pcgHash(index)) >>> 0)) >>> 0);
  return (h >>> 8) / 16777216;
}

export const stratifiedSamples = defineKernel({
  name: 'stratified_samples',
  bindings: [
    { name: 'near', access: 'read' },
    { name: 'far', access: 'read' },
    { name: 'z', access: 'rw' },
  ],
  params: [
    { name: 'rays', type: 'u32' },
    { name: 'samples', type: 'u32' },
    { name: 'seed', type: 'u32' },
    { name: 'perturb', type: 'u32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: () => /* wgsl */ `
// stratified_samples: z[r, i] = near[r] + (far[r] − near[r]) · (i + u) / S
struct Params { rays: u32, samples: u32, seed: u32, perturb: u32 }
@group(0) @binding(0) var<storage, read> near: array<f32>;
@group(0) @binding(1) var<storage, read> far: array<f32>;
@group(0) @binding(2) var<storage, read_write> z: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
${HASH_WGSL}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let t = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (t >= p.rays * p.samples) { return; }
  let ray = t / p.samples;
  let i = t % p.samples;
  let u = select(0.5, random01(p.seed, ray, i), p.perturb != 0u);
  z[t] = near[ray] + (far[ray] - near[ray]) * (f32(i) + u) / f32(p.samples);
}
`,
});

export const importanceSamples = defineKernel({
  name: 'importance_samples',
  bindings: [
    { name: 'z_coarse', access: 'read' },
    { name: 'weights', access: 'read' },
    { name: 'z_all', access: 'rw' },
  ],
  params: [
    { name: 'rays', type: 'u32' },
    { name: 'coarse', type: 'u32' },
    { name: 'fine', type: 'u32' },
    { name: 'seed', type: 'u32' },
    { name: 'perturb', type: 'u32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: () => /* wgsl */ `
// importance_samples: inverse-CDF fine samples over the coarse bins, merged with the coarse depths in order
struct Params { rays: u32, coarse: u32, fine: u32, seed: u32, perturb: u32 }
@group(0) @binding(0) var<storage, read> z_coarse: array<f32>;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> z_all: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
${HASH_WGSL}

// Bin edges are the mid-points of consecutive coarse depths: edge e in [0, S−2].
fn edge(base: u32, e: u32) -> f32 { return 0.5 * (z_coarse[base + e] + z_coarse[base + e + 1u]); }
// Bin b (between edges b and b+1, b in [0, S−3]) has weight weights[b + 1] + 1e-5.
fn bin_weight(base: u32, b: u32) -> f32 { return weights[base + b + 1u] + 1e-5; }

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let ray = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (ray >= p.rays) { return; }
  let base = ray * p.coarse;
  let out_base = ray * (p.coarse + p.fine);
  let bins = p.coarse - 2u;
  var total = 0.0;
  for (var b = 0u; b < bins; b++) { total += bin_weight(base, b); }

  // Walk the fine samples (sorted u) and the CDF together; merge with the coarse depths as we go.
  var next_coarse = 0u;
  var written = 0u;
  var b = 0u;
  var cdf_below = 0.0;                       // CDF at the lower edge of bin b
  var cdf_above = bin_weight(base, 0u) / total; // CDF at its upper edge
  for (var j = 0u; j < p.fine; j++) {
    let u = select((f32(j) + 0.5) / f32(p.fine), (f32(j) + random01(p.seed, ray, j)) / f32(p.fine), p.perturb != 0u);
    while (b + 1u < bins && cdf_above <= u) {
      b++;
      cdf_below = cdf_above;
      cdf_above += bin_weight(base, b) / total;
    }
    let span = cdf_above - cdf_below;
    let t = select(clamp((u - cdf_below) / span, 0.0, 1.0), 0.0, span < 1e-5);
    let z_fine = edge(base, b) + t * (edge(base, b + 1u) - edge(base, b));
    while (next_coarse < p.coarse && z_coarse[base + next_coarse] <= z_fine) {
      z_all[out_base + written] = z_coarse[base + next_coarse];
      written++;
      next_coarse++;
    }
    z_all[out_base + written] = z_fine;
    written++;
  }
  while (next_coarse < p.coarse) {
    z_all[out_base + written] = z_coarse[base + next_coarse];
    written++;
    next_coarse++;
  }
}
`,
});

/** float64 reference of stratified sampling. */
export function stratifiedSamplesReference(near: Float64Array, far: Float64Array, samples: number, seed: number, perturb: boolean): Float64Array {
  const z = new Float64Array(near.length * samples);
  for (let r = 0; r < near.length; r++) {
    for (let i = 0; i < samples; i++) {
      const u = perturb ? random01(seed, r, i) : 0.5;
      z[r * samples + i] = near[r] + ((far[r] - near[r]) * (i + u)) / samples;
    }
  }
  return z;
}

/**
 * float64 reference of importance sampling, NeRF's sample_pdf written directly: PDF over the bins between coarse
 * mid-points, CDF, inverse by search for each u, then a sort of coarse ∪ fine.
 */
export function importanceSamplesReference(zCoarse: Float64Array, weights: Float64Array, coarse: number, fine: number, seed: number, perturb: boolean): Float64Array {
  const rays = zCoarse.length / coarse;
  const out = new Float64Array(rays * (coarse + fine));
  for (let r = 0; r < rays; r++) {
    const z = zCoarse.subarray(r * coarse, (r + 1) * coarse);
    const edges = Array.from({ length: coarse - 1 }, (_, e) => 0.5 * (z[e] + z[e + 1]));
    const pdf = Array.from({ length: coarse - 2 }, (_, b) => weights[r * coarse + b + 1] + 1e-5);
    const total = pdf.reduce((a, b) => a + b, 0);
    const cdf = [0];
    for (const w of pdf) cdf.push(cdf[cdf.length - 1] + w / total);
    const samples: number[] = [...z];
    for (let j = 0; j < fine; j++) {
      const u = perturb ? (j + random01(seed, r, j)) / fine : (j + 0.5) / fine;
      let b = 0;
      while (b + 1 < pdf.length && cdf[b + 1] <= u) b++;
      const span = cdf[b + 1] - cdf[b];
      const t = span < 1e-5 ? 0 : Math.min(Math.max((u - cdf[b]) / span, 0), 1);
      samples.push(edges[b] + t * (edges[b + 1] - edges[b]));
    }
    samples.sort((a, b) => a - b);
    out.set(samples, r * (coarse + fine));
  }
  return out;
}
