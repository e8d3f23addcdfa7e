/**
 * Softmax and log-softmax along one axis, fused: one thread per row does the whole row, or (const `cooperative`,
 * for few long rows) one workgroup per row, its threads striding the row and combining their partial max/sums by a
 * fixed-order tree (src/kernels/common/workgroup-reduce.ts).
 *
 * Rows along any axis, through strides rather than a permute: a tensor of shape [..outer, len, ..inner] has
 * rows = outer · inner rows of `len` elements; row r starts at base(r) = (r / inner) · len · inner + r % inner and
 * its j-th element is at base(r) + j · inner. (A permute to the last axis would cost two extra full copies in the
 * forward and two in the backward.) Threads of neighbouring rows read neighbouring addresses when inner > 1; for
 * the last axis (inner = 1) each thread streams its own contiguous row, which suits lavapipe's CPU threads.
 *
 *   softmax_forward    y = exp(x − max) / Σ exp(x − max)        (log: y = x − max − log Σ exp(x − max))
 *                      Subtracting the row max keeps every exp ≤ 1: no overflow, and the sum is ≥ 1.
 *   softmax_backward   softmax: dx = y ⊙ (dy − Σ_j dy_j y_j)      log: dx = dy − exp(y) · Σ_j dy_j
 *                      from the saved output y alone (x is not needed).
 *
 * Layout: x, y, dy, dx contiguous in the same shape. A row of only −∞ gives NaN, as in torch.
 */
import { defineKernel } from '../runtime/kernel.ts';
import { workgroupReduceWgsl } from '../common/workgroup-reduce.ts';

const WORKGROUP = 64;

export interface SoftmaxConsts {
  log: boolean;
  /** One workgroup per row (long rows, few of them) instead of one thread per row. */
  cooperative: boolean;
}

/**
 * The row mapping shared by both kernels. Per row: `base`, `end` and the loop `first`/`stride` (a thread walks the
 * whole row, or in cooperative mode every WORKGROUP-th element from its lane); `reduce_*` combine per-thread
 * values into the row's value (the identity for one thread per row).
 */
function rowMapping(cooperative: boolean): { header: string; start: string; sum: (v: string) => string; max: (v: string) => string } {
  return {
    header: `struct Params { rows: u32, len: u32, inner: u32 }${cooperative ? workgroupReduceWgsl(WORKGROUP) : ''}`,
    start: /* wgsl */ `
  let r = ${cooperative ? 'wid.x + wid.y * groups.x' : `gid.x + gid.y * groups.x * ${WORKGROUP}u`};
  if (r >= p.rows) { return; }
  let base = (r / p.inner) * p.len * p.inner + r % p.inner;
  let end = base + p.len * p.inner;
  let first = base${cooperative ? ' + lid * p.inner' : ''};
  let stride = ${cooperative ? `${WORKGROUP}u * p.inner` : 'p.inner'};`,
    sum: (v) => (cooperative ? `wg_sum(${v}, lid)` : v),
    max: (v) => (cooperative ? `wg_max(${v}, lid)` : v),
  };
}

const entry = `@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(local_invocation_index) lid: u32,
        @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u)`;

const VARIANTS: SoftmaxConsts[] = [
  { log: false, cooperative: false },
  { log: true, cooperative: false },
  { log: false, cooperative: true },
  { log: true, cooperative: true },
];

export const softmaxForward = defineKernel<SoftmaxConsts>({
  name: 'softmax_forward',
  variants: VARIANTS,
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'y', access: 'rw' },
  ],
  params: [
    { name: 'rows', type: 'u32' },
    { name: 'len', type: 'u32' },
    { name: 'inner', type: 'u32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: ({ log, cooperative }) => {
    const m = rowMapping(cooperative);
    return /* wgsl */ `
// softmax_forward(${log ? 'log' : 'softmax'}, ${cooperative ? 'one workgroup' : 'one thread'} per row); see softmax.ts.
${m.header}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

${entry} {
  ${m.start}
  var own_max = -3.402823e38;
  for (var i = first; i < end; i += stride) { own_max = max(own_max, x[i]); }
  let row_max = ${m.max('own_max')};
  var own_total = 0.0;
${
  log
    ? `  for (var i = first; i < end; i += stride) { own_total += exp(x[i] - row_max); }
  let log_normaliser = row_max + log(${m.sum('own_total')});
  for (var i = first; i < end; i += stride) { y[i] = x[i] - log_normaliser; }`
    : `  for (var i = first; i < end; i += stride) {
    let e = exp(x[i] - row_max);
    y[i] = e;
    own_total += e;
  }
  let inv_total = 1.0 / ${m.sum('own_total')};
  for (var i = first; i < end; i += stride) { y[i] *= inv_total; }`
}
}
`;
  },
});

export const softmaxBackward = defineKernel<SoftmaxConsts>({
  name: 'softmax_backward',
  variants: VARIANTS,
  bindings: [
    { name: 'y', access: 'read' },
    { name: 'dL_dy', access: 'read' },
    { name: 'dL_dx', access: 'rw' },
  ],
  params: [
    { name: 'rows', type: 'u32' },
    { name: 'len', type: 'u32' },
    { name: 'inner', type: 'u32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: ({ log, cooperative }) => {
    const m = rowMapping(cooperative);
    return /* wgsl */ `
// softmax_backward(${log ? 'log' : 'softmax'}, ${cooperative ? 'one workgroup' : 'one thread'} per row):
// ${log ? 'dx = dy - exp(y) * sum(dy)' : 'dx = y * (dy - sum(dy * y))'}
${m.header}
@group(0) @binding(0) var<storage, read> y: array<f32>;
@group(0) @binding(1) var<storage, read> dL_dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dL_dx: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

${entry} {
  ${m.start}
${
  log
    ? `  var own_sum = 0.0;
  for (var i = first; i < end; i += stride) { own_sum += dL_dy[i]; }
  let sum_dy = ${m.sum('own_sum')};
  for (var i = first; i < end; i += stride) { dL_dx[i] = dL_dy[i] - exp(y[i]) * sum_dy; }`
    : `  var own_sum = 0.0;
  for (var i = first; i < end; i += stride) { own_sum += dL_dy[i] * y[i]; }
  let sum_dy_y = ${m.sum('own_sum')};
  for (var i = first; i < end; i += stride) { dL_dx[i] = y[i] * (dL_dy[i] - sum_dy_y); }`
}
}
`;
  },
});

// ---------------------------------------------------------------------------------------------------------------
// float64 references

/** [outer, len, inner] of a shape split at `axis`. */
export function rowSplit(shape: readonly number[], axis: number): [number, number, number] {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  return [outer, shape[axis], inner];
}

/** softmax (or log-softmax) of x along `axis`, row by row, straight from the definition. */
export function softmaxReference(x: Float64Array, shape: readonly number[], axis: number, log: boolean): Float64Array {
  const [outer, len, inner] = rowSplit(shape, axis);
  const y = new Float64Array(x.length);
  for (let o = 0; o < outer; o++) {
    for (let q = 0; q < inner; q++) {
      const at = (j: number): number => (o * len + j) * inner + q;
      let m = -Infinity;
      for (let j = 0; j < len; j++) m = Math.max(m, x[at(j)]);
      let total = 0;
      for (let j = 0; j < len; j++) total += Math.exp(x[at(j)] - m);
      for (let j = 0; j < len; j++) y[at(j)] = log ? x[at(j)] - m - Math.log(total) : Math.exp(x[at(j)] - m) / total;
    }
  }
  return y;
}

/** dL/dx from the Jacobian: softmax ∂y_i/∂x_j = y_i(δ_ij − y_j); log-softmax ∂y_i/∂x_j = δ_ij − s_j. */
export function softmaxBackwardReference(x: Float64Array, shape: readonly number[], axis: number, log: boolean, dL_dy: Float64Array): Float64Array {
  const [outer, len, inner] = rowSplit(shape, axis);
  const s = softmaxReference(x, shape, axis, false);
  const dx = new Float64Array(x.length);
  for (let o = 0; o < outer; o++) {
    for (let q = 0; q < inner; q++) {
      const at = (j: number): number => (o * len + j) * inner + q;
      for (let j = 0; j < len; j++) {
        let g = 0;
        for (let i = 0; i < len; i++) {
          const delta = i === j ? 1 : 0;
          const jacobian = log ? delta - s[at(j)] : s[at(i)] * (delta - s[at(j)]);
          g += dL_dy[at(i)] * jacobian;
        }
        dx[at(j)] = g;
      }
    }
  }
  return dx;
}
