/**
 * Real spherical harmonics of a direction up to degree 4 (16 values): the view-direction encoding of
 * instant-ngp / torch-ngp / ER-NeRF. The input is taken as given (callers pass unit directions); the constants
 * are those of tcnn's `sh_enc` (the normalised real SH basis with its sign convention).
 *
 * Thread mapping: one thread per direction. Layout: dir [N, 3]; y [N, degree²]; backward dL_dy [N, degree²] →
 * dL_ddir [N, 3] (the polynomials' partial derivatives, written out beside each basis function).
 */
import { defineKernel } from '../runtime/kernel.ts';

const WORKGROUP = 64;

// Each row: value, ∂/∂x, ∂/∂y, ∂/∂z as WGSL/TS-compatible expressions of x, y, z (same text serves both).
export const SH_BASIS: readonly [string, string, string, string][] = [
  ['0.28209479177387814', '0.0', '0.0', '0.0'],
  ['-0.48860251190291987 * y', '0.0', '-0.48860251190291987', '0.0'],
  ['0.48860251190291987 * z', '0.0', '0.0', '0.48860251190291987'],
  ['-0.48860251190291987 * x', '-0.48860251190291987', '0.0', '0.0'],
  ['1.0925484305920792 * x * y', '1.0925484305920792 * y', '1.0925484305920792 * x', '0.0'],
  ['-1.0925484305920792 * y * z', '0.0', '-1.0925484305920792 * z', '-1.0925484305920792 * y'],
  ['0.94617469575755997 * z * z - 0.31539156525251999', '0.0', '0.0', '1.8923493915151199 * z'],
  ['-1.0925484305920792 * x * z', '-1.0925484305920792 * z', '0.0', '-1.0925484305920792 * x'],
  ['0.54627421529603959 * (x * x - y * y)', '1.0925484305920792 * x', '-1.0925484305920792 * y', '0.0'],
  ['0.59004358992664352 * y * (3.0 * x * x - y * y) * -1.0', '-3.5402615395598611 * x * y', '1.7701307697799305 * (y * y - x * x)', '0.0'],
  ['2.8906114426405538 * x * y * z', '2.8906114426405538 * y * z', '2.8906114426405538 * x * z', '2.8906114426405538 * x * y'],
  ['0.45704579946446572 * y * (1.0 - 5.0 * z * z)', '0.0', '0.45704579946446572 * (1.0 - 5.0 * z * z)', '-4.5704579946446572 * y * z'],
  ['0.3731763325901154 * z * (5.0 * z * z - 3.0)', '0.0', '0.0', '0.3731763325901154 * (15.0 * z * z - 3.0)'],
  ['0.45704579946446572 * x * (1.0 - 5.0 * z * z)', '0.45704579946446572 * (1.0 - 5.0 * z * z)', '0.0', '-4.5704579946446572 * x * z'],
  ['1.4453057213202769 * z * (x * x - y * y)', '2.8906114426405538 * x * z', '-2.8906114426405538 * y * z', '1.4453057213202769 * (x * x - y * y)'],
  ['0.59004358992664352 * x * (3.0 * y * y - x * x)', '1.7701307697799305 * (y * y - x * x)', '3.5402615395598611 * x * y', '0.0'],
];

export const shEncodeForward = defineKernel({
  name: 'sh_encode_forward',
  bindings: [
    { name: 'dir', access: 'read' },
    { name: 'y', access: 'rw' },
  ],
  params: [
    { name: 'points', type: 'u32' },
    { name: 'degree', type: 'u32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: () => /* wgsl */ `
// sh_encode_forward: y[n, k] = Y_k(dir[n]) for k < degree² (degree ≤ 4)
struct Params { points: u32, degree: u32 }
@group(0) @binding(0) var<storage, read> dir: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let n = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (n >= p.points) { return; }
  let x = dir[n * 3u];
  let y_ = dir[n * 3u + 1u];
  let z = dir[n * 3u + 2u];
  let count = p.degree * p.degree;
  // Written out per basis function with a uniform guard: a private array indexed by a loop counter would live in
  // per-lane memory on lavapipe (123,595 directions: 2.9–4.9 ms this way, 5.2–5.8 ms with the array).
${SH_BASIS.map(([v], k) => `  if (${k}u < count) { y[n * count + ${k}u] = ${v.replace(/\by\b/g, 'y_')}; }`).join('\n')}
}
`,
});

export const shEncodeBackward = defineKernel({
  name: 'sh_encode_backward',
  bindings: [
    { name: 'dir', access: 'read' },
    { name: 'dL_dy', access: 'read' },
    { name: 'dL_ddir', access: 'rw' },
  ],
  params: [
    { name: 'points', type: 'u32' },
    { name: 'degree', type: 'u32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: () => /* wgsl */ `
// sh_encode_backward: dL_ddir[n] = Σ_k dL_dy[n, k] ∇Y_k(dir[n])
struct Params { points: u32, degree: u32 }
@group(0) @binding(0) var<storage, read> dir: array<f32>;
@group(0) @binding(1) var<storage, read> dL_dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dL_ddir: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let n = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (n >= p.points) { return; }
  let x = dir[n * 3u];
  let y_ = dir[n * 3u + 1u];
  let z = dir[n * 3u + 2u];
  let count = p.degree * p.degree;
  var total = vec3f(0.0);
${SH_BASIS.map(([, dx, dy, dz], k) => `  if (${k}u < count) { total += dL_dy[n * count + ${k}u] * vec3f(${[dx, dy, dz].map((e) => e.replace(/\by\b/g, 'y_')).join(', ')}); }`).join('\n')}
  dL_ddir[n * 3u] = total.x;
  dL_ddir[n * 3u + 1u] = total.y;
  dL_ddir[n * 3u + 2u] = total.z;
}
`,
});

/** float64 reference: the same basis written as TS functions (independent of the WGSL string evaluation). */
const SH_REF: ((x: number, y: number, z: number) => number)[] = [
  () => 0.28209479177387814,
  (_x, y) => -0.48860251190291987 * y,
  (_x, _y, z) => 0.48860251190291987 * z,
  (x) => -0.48860251190291987 * x,
  (x, y) => 1.0925484305920792 * x * y,
  (_x, y, z) => -1.0925484305920792 * y * z,
  (_x, _y, z) => 0.94617469575755997 * z * z - 0.31539156525251999,
  (x, _y, z) => -1.0925484305920792 * x * z,
  (x, y) => 0.54627421529603959 * (x * x - y * y),
  (x, y) => 0.59004358992664352 * y * (-3 * x * x + y * y),
  (x, y, z) => 2.8906114426405538 * x * y * z,
  (_x, y, z) => 0.45704579946446572 * y * (1 - 5 * z * z),
  (_x, _y, z) => 0.3731763325901154 * z * (5 * z * z - 3),
  (x, _y, z) => 0.45704579946446572 * x * (1 - 5 * z * z),
  (x, y, z) => 1.4453057213202769 * z * (x * x - y * y),
  (x, y) => 0.59004358992664352 * x * (-x * x + 3 * y * y),
];

export function shEncodeReference(dir: Float64Array, degree: number): Float64Array {
  const points = dir.length / 3;
  const count = degree * degree;
  const y = new Float64Array(points * count);
  for (let n = 0; n < points; n++) {
    for (let k = 0; k < count; k++) y[n * count + k] = SH_REF[k](dir[n * 3], dir[n * 3 + 1], dir[n * 3 + 2]);
  }
  return y;
}
