/**
 * The fused gate stage of a GRU cell (torch.nn.GRUCell), after the two input projections:
 *   gi = x·W_ihᵀ + b_ih  [B, 3H],   gh = h·W_hhᵀ + b_hh  [B, 3H]   (gate column blocks r, z, n in that order)
 *   r = σ(gi_r + gh_r),  z = σ(gi_z + gh_z),  n = tanh(gi_n + r ⊙ gh_n),  h' = (1 − z) ⊙ n + z ⊙ h
 *
 * gru_gates_backward recomputes r, z, n from gi and gh (nothing else is saved) and, given dL/dh', writes
 *   dL/dn = dL/dh' ⊙ (1 − z),  dL/dz = dL/dh' ⊙ (h − n),  dL/dh (direct part) = dL/dh' ⊙ z
 *   d_gi_n = dL/dn ⊙ (1 − n²),  d_gh_n = d_gi_n ⊙ r,  dL/dr = d_gi_n ⊙ gh_n
 *   d_gi_r = d_gh_r = dL/dr ⊙ r(1 − r),  d_gi_z = d_gh_z = dL/dz ⊙ z(1 − z)
 *
 * Thread mapping (both kernels): one thread per (b, j) of the hidden state, i = b·H + j (folded into y past 65535
 * workgroups). Layout: gi, gh, d_gi, d_gh [B, 3H] row-major (r at column j, z at H + j, n at 2H + j); h, h_new, dL_dh
 * and dL_dh_new [B, H].
 */
import { defineKernel } from '../runtime/kernel.ts';

const WORKGROUP = 64;

/** WGSL: the thread's (b, j), its three gate columns and the gate values r, z, n. */
const GATES_WGSL = /* wgsl */ `
  let i = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (i >= p.batch * p.hidden) { return; }
  let b = i / p.hidden;
  let j = i % p.hidden;
  let col_r = b * 3u * p.hidden + j;
  let col_z = col_r + p.hidden;
  let col_n = col_z + p.hidden;
  let r = 1.0 / (1.0 + exp(-(gi[col_r] + gh[col_r])));
  let z = 1.0 / (1.0 + exp(-(gi[col_z] + gh[col_z])));
  let n = tanh(gi[col_n] + r * gh[col_n]);`;

export const gruGatesKernel = defineKernel({
  name: 'gru_gates',
  bindings: [
    { name: 'gi', access: 'read' },
    { name: 'gh', access: 'read' },
    { name: 'h', access: 'read' },
    { name: 'h_new', access: 'rw' },
  ],
  params: [
    { name: 'batch', type: 'u32' },
    { name: 'hidden', type: 'u32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: () => /* wgsl */ `
// gru_gates: h' = (1 − z) ⊙ n + z ⊙ h from the two gate projections; one thread per hidden unit.
struct Params { batch: u32, hidden: u32 }
@group(0) @binding(0) var<storage, read> gi: array<f32>;
@group(0) @binding(1) var<storage, read> gh: array<f32>;
@group(0) @binding(2) var<storage, read> h: array<f32>;
@group(0) @binding(3) var<storage, read_write> h_new: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {${GATES_WGSL}
  h_new[i] = (1.0 - z) * n + z * h[i];
}
`,
});

export const gruGatesBackwardKernel = defineKernel({
  name: 'gru_gates_backward',
  bindings: [
    { name: 'gi', access: 'read' },
    { name: 'gh', access: 'read' },
    { name: 'h', access: 'read' },
    { name: 'dL_dh_new', access: 'read' },
    { name: 'd_gi', access: 'rw' },
    { name: 'd_gh', access: 'rw' },
    { name: 'dL_dh', access: 'rw' },
  ],
  params: [
    { name: 'batch', type: 'u32' },
    { name: 'hidden', type: 'u32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: () => /* wgsl */ `
// gru_gates_backward: gradients of the gate stage w.r.t. gi, gh and h (direct part); one thread per hidden unit.
struct Params { batch: u32, hidden: u32 }
@group(0) @binding(0) var<storage, read> gi: array<f32>;
@group(0) @binding(1) var<storage, read> gh: array<f32>;
@group(0) @binding(2) var<storage, read> h: array<f32>;
@group(0) @binding(3) var<storage, read> dL_dh_new: array<f32>;
@group(0) @binding(4) var<storage, read_write> d_gi: array<f32>;
@group(0) @binding(5) var<storage, read_write> d_gh: array<f32>;
@group(0) @binding(6) var<storage, read_write> dL_dh: array<f32>;
@group(0) @binding(7) var<uniform> p: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {${GATES_WGSL}
  let g = dL_dh_new[i];
  let d_n = g * (1.0 - z) * (1.0 - n * n);       // through tanh
  let d_r = d_n * gh[col_n] * r * (1.0 - r);     // through r ⊙ gh_n, then σ
  let d_z = g * (h[i] - n) * z * (1.0 - z);      // through σ
  d_gi[col_r] = d_r;
  d_gh[col_r] = d_r;
  d_gi[col_z] = d_z;
  d_gh[col_z] = d_z;
  d_gi[col_n] = d_n;
  d_gh[col_n] = d_n * r;
  dL_dh[i] = g * z;
}
`,
});
