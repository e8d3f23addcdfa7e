/**
 * Frequency (positional) encoding, NeRF's γ(x), in AD-NeRF/DFRF's `get_embedder` layout:
 *   γ(x) = [x, sin(2⁰x), cos(2⁰x), sin(2¹x), cos(2¹x), …, sin(2^{L−1}x), cos(2^{L−1}x)]
 * where each entry is a D-vector, so one point encodes to D·(1 + 2L) values (3-D, L = 10 → 63; L = 4 → 27).
 * (No π factor, as in the NeRF reference code.)
 *
 * Forward thread mapping: one thread per output value (point n, column j); layout x [N, D], y [N, D(1+2L)].
 * Backward thread mapping: one thread per input value (n, d):
 *   dL/dx[n,d] = dL/dy[n, d] + Σ_k 2^k (cos(2^k x) · dL/dy_sin_k − sin(2^k x) · dL/dy_cos_k)
 */
import { defineKernel } from '../runtime/kernel.ts';

const WORKGROUP = 64;

export const frequencyEncodeForward = defineKernel({
  name: 'frequency_encode_forward',
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'y', access: 'rw' },
  ],
  params: [
    { name: 'points', type: 'u32' },
    { name: 'dims', type: 'u32' },
    { name: 'frequencies', type: 'u32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: () => /* wgsl */ `
// frequency_encode_forward: y[n, j] for j = block·D + d, block 0 = x, block 1+2k = sin(2^k x), 2+2k = cos(2^k x)
struct Params { points: u32, dims: u32, frequencies: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  let width = p.dims * (1u + 2u * p.frequencies);
  if (i >= p.points * width) { return; }
  let n = i / width;
  let j = i % width;
  let block = j / p.dims;
  let value = x[n * p.dims + j % p.dims];
  if (block == 0u) {
    y[i] = value;
    return;
  }
  let k = (block - 1u) / 2u;
  let scaled = exp2(f32(k)) * value;
  y[i] = select(cos(scaled), sin(scaled), (block - 1u) % 2u == 0u);
}
`,
});

export const frequencyEncodeBackward = defineKernel({
  name: 'frequency_encode_backward',
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'dL_dy', access: 'read' },
    { name: 'dL_dx', access: 'rw' },
  ],
  params: [
    { name: 'points', type: 'u32' },
    { name: 'dims', type: 'u32' },
    { name: 'frequencies', type: 'u32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: () => /* wgsl */ `
// frequency_encode_backward: dL_dx[n, d] = dL_dy[n, d] + Σ_k 2^k (cos(2^k x) dL_dy_sin_k − sin(2^k x) dL_dy_cos_k)
struct Params { points: u32, dims: u32, frequencies: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dL_dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dL_dx: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (i >= p.points * p.dims) { return; }
  let n = i / p.dims;
  let d = i % p.dims;
  let width = p.dims * (1u + 2u * p.frequencies);
  let row = n * width;
  let value = x[i];
  var grad = dL_dy[row + d];
  for (var k = 0u; k < p.frequencies; k++) {
    let frequency = exp2(f32(k));
    let scaled = frequency * value;
    let sin_column = row + (1u + 2u * k) * p.dims + d;
    grad += frequency * (cos(scaled) * dL_dy[sin_column] - sin(scaled) * dL_dy[sin_column + p.dims]);
  }
  dL_dx[i] = grad;
}
`,
});

/** float64 reference of γ(x) for x [N, D]. */
export function frequencyEncodeReference(x: Float64Array, dims: number, frequencies: number): Float64Array {
  const points = x.length / dims;
  const width = dims * (1 + 2 * frequencies);
  const y = new Float64Array(points * width);
  for (let n = 0; n < points; n++) {
    for (let d = 0; d < dims; d++) {
      const v = x[n * dims + d];
      y[n * width + d] = v;
      for (let k = 0; k < frequencies; k++) {
        y[n * width + (1 + 2 * k) * dims + d] = Math.sin(2 ** k * v);
        y[n * width + (2 + 2 * k) * dims + d] = Math.cos(2 ** k * v);
      }
    }
  }
  return y;
}

/** float64 reference of dL/dx. */
export function frequencyEncodeBackwardReference(x: Float64Array, dims: number, frequencies: number, dL_dy: Float64Array): Float64Array {
  const width = dims * (1 + 2 * frequencies);
  return x.map((v, i) => {
    const n = Math.floor(i / dims);
    const d = i % dims;
    let g = dL_dy[n * width + d];
    for (let k = 0; k < frequencies; k++) {
      const f = 2 ** k;
      g += f * Math.cos(f * v) * dL_dy[n * width + (1 + 2 * k) * dims + d] - f * Math.sin(f * v) * dL_dy[n * width + (2 + 2 * k) * dims + d];
    }
    return g;
  });
}
