/**
 * Row normalisation, the common core of layer norm and instance norm: the data is `rows` contiguous rows of `len`
 * elements, each normalised to zero mean and unit (biased) variance, then optionally scaled and shifted:
 *
 *   y[r, j] = (x[r, j] − μ_r) · σ_r · w + b,   μ_r = mean_j x[r, j],   σ_r = 1 / sqrt(var_j x[r, j] + eps)
 *
 * The affine parameters are indexed per element of the row ('element': w[j], b[j]; layer norm) or per channel of
 * the row ('channel': w[r % channels], b[r % channels]; instance norm, rows = N·C). The variance is two-pass
 * (Σ (x − μ)² after μ), which stays accurate when |μ| ≫ σ.
 *
 *   row_norm_forward     thread per row (or, const `cooperative`, one workgroup per row for few long rows: the
 *                        lanes stride the row and combine their sums by a fixed-order tree): writes y, and μ_r, σ_r
 *                        (saved for backward).
 *   row_norm_backward    same mapping, with g = dy · w:
 *                          dx = σ_r · (g − mean_j g − x̂ · mean_j(g · x̂)),  x̂ = (x − μ_r) · σ_r,
 *                        and the row sums Σ_j dy and Σ_j dy · x̂ (the per-channel weight/bias gradients are sums of
 *                        these over N).
 *   row_norm_param_grad  per-element weight/bias gradients (layer norm): thread per (chunk of rows, column j),
 *                        dw_partial[chunk, j] = Σ_{r in chunk} dy[r, j] · x̂[r, j], db_partial likewise with dy; the
 *                        op sums the partials over chunks (deterministic, fixed order: no atomics).
 *
 * Layout: x, y, dy, dx contiguous [rows, len]; mean, rstd, sum_dy, sum_dy_xhat [rows]. weight/bias [len] or
 * [channels]; when absent (consts weight/bias false) any buffer may be bound in their place and is not read.
 */
import { defineKernel } from '../runtime/kernel.ts';
import { workgroupReduceWgsl } from '../common/workgroup-reduce.ts';

export type NormAffine = 'element' | 'channel';
const WORKGROUP = 64;

/**
 * Row mapping: one thread per row, or (cooperative) one workgroup per row whose lanes take every WORKGROUP-th
 * element and combine their sums by wg_sum/wg_sum4 (fixed order, deterministic).
 */
function rowMapping(cooperative: boolean) {
  return {
    reduceWgsl: cooperative ? workgroupReduceWgsl(WORKGROUP) : '',
    row: cooperative ? 'wid.x + wid.y * groups.x' : `gid.x + gid.y * groups.x * ${WORKGROUP}u`,
    first: cooperative ? 'lid' : '0u',
    stride: cooperative ? `${WORKGROUP}u` : '1u',
    sum: (v: string) => (cooperative ? `wg_sum(${v}, lid)` : v),
    sum4: (v: string) => (cooperative ? `wg_sum4(${v}, lid)` : v),
  };
}

const entry = `@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(local_invocation_index) lid: u32,
        @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u)`;

const weightIndex = (affine: NormAffine): string => (affine === 'element' ? 'j' : 'r % p.channels');

export const rowNormForward = defineKernel<{ affine: NormAffine; weight: boolean; bias: boolean; cooperative: boolean }>({
  name: 'row_norm_forward',
  variants: [
    { affine: 'element', weight: true, bias: true, cooperative: false },
    { affine: 'channel', weight: true, bias: false, cooperative: false },
    { affine: 'element', weight: false, bias: false, cooperative: true },
    { affine: 'channel', weight: true, bias: true, cooperative: true },
  ],
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'weight', access: 'read' },
    { name: 'bias', access: 'read' },
    { name: 'y', access: 'rw' },
    { name: 'mean', access: 'rw' },
    { name: 'rstd', access: 'rw' },
  ],
  params: [
    { name: 'rows', type: 'u32' },
    { name: 'len', type: 'u32' },
    { name: 'channels', type: 'u32' },
    { name: 'eps', type: 'f32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: ({ affine, weight, bias, cooperative }) => {
    const m = rowMapping(cooperative);
    return /* wgsl */ `
// row_norm_forward(${affine}${weight ? ', weight' : ''}${bias ? ', bias' : ''}, ${cooperative ? 'one workgroup' : 'one thread'} per row); see norm.ts.
struct Params { rows: u32, len: u32, channels: u32, eps: f32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;
${m.reduceWgsl}

${entry} {
  let r = ${m.row};
  if (r >= p.rows) { return; }
  let base = r * p.len;
  let count = f32(p.len);
  var own_total = 0.0;
  for (var j = ${m.first}; j < p.len; j += ${m.stride}) { own_total += x[base + j]; }
  let mu = ${m.sum('own_total')} / count;
  var own_squares = 0.0;
  for (var j = ${m.first}; j < p.len; j += ${m.stride}) {
    let d = x[base + j] - mu;
    own_squares += d * d;
  }
  let inv_std = inverseSqrt(${m.sum('own_squares')} / count + p.eps);
  if (${m.first} == 0u) {
    mean[r] = mu;
    rstd[r] = inv_std;
  }
  for (var j = ${m.first}; j < p.len; j += ${m.stride}) {
    var v = (x[base + j] - mu) * inv_std;
    ${weight ? `v *= weight[${weightIndex(affine)}];` : ''}
    ${bias ? `v += bias[${weightIndex(affine)}];` : ''}
    y[base + j] = v;
  }
}
`;
  },
});

export const rowNormBackward = defineKernel<{ affine: NormAffine; weight: boolean; cooperative: boolean }>({
  name: 'row_norm_backward',
  variants: [
    { affine: 'element', weight: true, cooperative: false },
    { affine: 'channel', weight: true, cooperative: false },
    { affine: 'channel', weight: false, cooperative: true },
    { affine: 'element', weight: true, cooperative: true },
  ],
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'weight', access: 'read' },
    { name: 'mean', access: 'read' },
    { name: 'rstd', access: 'read' },
    { name: 'dL_dy', access: 'read' },
    { name: 'dL_dx', access: 'rw' },
    { name: 'sum_dy', access: 'rw' },
    { name: 'sum_dy_xhat', access: 'rw' },
  ],
  params: [
    { name: 'rows', type: 'u32' },
    { name: 'len', type: 'u32' },
    { name: 'channels', type: 'u32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: ({ affine, weight, cooperative }) => {
    const m = rowMapping(cooperative);
    return /* wgsl */ `
// row_norm_backward(${affine}${weight ? ', weight' : ''}, ${cooperative ? 'one workgroup' : 'one thread'} per row); see norm.ts.
struct Params { rows: u32, len: u32, channels: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> rstd: array<f32>;
@group(0) @binding(4) var<storage, read> dL_dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> dL_dx: array<f32>;
@group(0) @binding(6) var<storage, read_write> sum_dy: array<f32>;
@group(0) @binding(7) var<storage, read_write> sum_dy_xhat: array<f32>;
@group(0) @binding(8) var<uniform> p: Params;
${m.reduceWgsl}

fn scale_of(r: u32, j: u32) -> f32 {
  ${weight ? `return weight[${weightIndex(affine)}];` : 'return 1.0;'}
}

${entry} {
  let r = ${m.row};
  if (r >= p.rows) { return; }
  let base = r * p.len;
  let mu = mean[r];
  let inv_std = rstd[r];
  // (Σ g, Σ g·x̂, Σ dy, Σ dy·x̂) with g = dy · w
  var own = vec4f(0.0);
  for (var j = ${m.first}; j < p.len; j += ${m.stride}) {
    let xhat = (x[base + j] - mu) * inv_std;
    let dy = dL_dy[base + j];
    let g = dy * scale_of(r, j);
    own += vec4f(g, g * xhat, dy, dy * xhat);
  }
  let sums = ${m.sum4('own')};
  let mean_g = sums.x / f32(p.len);
  let mean_g_xhat = sums.y / f32(p.len);
  for (var j = ${m.first}; j < p.len; j += ${m.stride}) {
    let xhat = (x[base + j] - mu) * inv_std;
    let g = dL_dy[base + j] * scale_of(r, j);
    dL_dx[base + j] = inv_std * (g - mean_g - xhat * mean_g_xhat);
  }
  if (${m.first} == 0u) {
    sum_dy[r] = sums.z;
    sum_dy_xhat[r] = sums.w;
  }
}
`;
  },
});

export const rowNormParamGrad = defineKernel({
  name: 'row_norm_param_grad',
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'mean', access: 'read' },
    { name: 'rstd', access: 'read' },
    { name: 'dL_dy', access: 'read' },
    { name: 'dweight_partial', access: 'rw' },
    { name: 'dbias_partial', access: 'rw' },
  ],
  params: [
    { name: 'rows', type: 'u32' },
    { name: 'len', type: 'u32' },
    { name: 'chunks', type: 'u32' },
    { name: 'chunk_rows', type: 'u32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: () => /* wgsl */ `
// row_norm_param_grad: per-column sums of dy * xhat and dy over a chunk of rows; see norm.ts.
struct Params { rows: u32, len: u32, chunks: u32, chunk_rows: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> mean: array<f32>;
@group(0) @binding(2) var<storage, read> rstd: array<f32>;
@group(0) @binding(3) var<storage, read> dL_dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dweight_partial: array<f32>;
@group(0) @binding(5) var<storage, read_write> dbias_partial: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let t = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (t >= p.chunks * p.len) { return; }
  let chunk = t / p.len;
  let j = t % p.len;
  let r_end = min((chunk + 1u) * p.chunk_rows, p.rows);
  var dw = 0.0;
  var db = 0.0;
  for (var r = chunk * p.chunk_rows; r < r_end; r++) {
    let i = r * p.len + j;
    let dy = dL_dy[i];
    dw += dy * (x[i] - mean[r]) * rstd[r];
    db += dy;
  }
  dweight_partial[t] = dw;
  dbias_partial[t] = db;
}
`,
});

// ---------------------------------------------------------------------------------------------------------------
// float64 references

export interface RowNormLayout {
  rows: number;
  len: number;
  /** Which affine parameter element (r, j) uses. */
  paramIndex: (r: number, j: number) => number;
  /** Number of affine parameters. */
  paramCount: number;
}

export function rowNormReference(
  x: Float64Array,
  layout: RowNormLayout,
  weight: Float64Array | null,
  bias: Float64Array | null,
  eps: number,
): Float64Array {
  const { rows, len, paramIndex } = layout;
  const y = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * len, (r + 1) * len);
    const mu = row.reduce((s, v) => s + v, 0) / len;
    const variance = row.reduce((s, v) => s + (v - mu) ** 2, 0) / len;
    for (let j = 0; j < len; j++) {
      const k = paramIndex(r, j);
      y[r * len + j] = ((row[j] - mu) / Math.sqrt(variance + eps)) * (weight ? weight[k] : 1) + (bias ? bias[k] : 0);
    }
  }
  return y;
}

/** Gradients of x, weight and bias (the latter two null when absent). */
export function rowNormBackwardReference(
  x: Float64Array,
  layout: RowNormLayout,
  weight: Float64Array | null,
  hasBias: boolean,
  eps: number,
  dL_dy: Float64Array,
): { dx: Float64Array; dweight: Float64Array | null; dbias: Float64Array | null } {
  const { rows, len, paramIndex, paramCount } = layout;
  const dx = new Float64Array(x.length);
  const dweight = weight ? new Float64Array(paramCount) : null;
  const dbias = hasBias ? new Float64Array(paramCount) : null;
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * len, (r + 1) * len);
    const mu = row.reduce((s, v) => s + v, 0) / len;
    const inv = 1 / Math.sqrt(row.reduce((s, v) => s + (v - mu) ** 2, 0) / len + eps);
    const xhat = Array.from(row, (v) => (v - mu) * inv);
    const g = xhat.map((_, j) => dL_dy[r * len + j] * (weight ? weight[paramIndex(r, j)] : 1));
    const meanG = g.reduce((s, v) => s + v, 0) / len;
    const meanGXhat = g.reduce((s, v, j) => s + v * xhat[j], 0) / len;
    for (let j = 0; j < len; j++) {
      dx[r * len + j] = inv * (g[j] - meanG - xhat[j] * meanGXhat);
      const k = paramIndex(r, j);
      if (dweight) dweight[k] += dL_dy[r * len + j] * xhat[j];
      if (dbias) dbias[k] += dL_dy[r * len + j];
    }
  }
  return { dx, dweight, dbias };
}
