/**
 * Batched matrix multiply with transposes, bias and activation fused into the epilogue:
 *   C[b, m, n] = act( Σ_k A[b, m, k] · B[b, k, n] + bias[n] )
 *
 * Thread mapping: workgroup 8×8 threads; each thread owns a 4×4 block of C held in four vec4 registers, so a
 * workgroup covers a 32×32 tile. Grid = (⌈N/32⌉, ⌈M/32⌉, batch). No workgroup memory and no barriers: on lavapipe
 * (Vulkan on the CPU) barriers are expensive and register blocking wins (see shared research notes); a
 * shared-memory variant for real GPUs belongs beside this one, chosen per adapter.
 *
 * Layout: A, B, C contiguous row-major buffers. A and B are read through strides, so transposes cost nothing:
 *   A[b, m, k] = a[b·a_batch + m·a_row + k·a_col]   (transposed A: a_row = 1, a_col = M)
 *   B[b, k, n] = b[b·b_batch + k·b_row + n·b_col]   (a batch stride of 0 shares one matrix across the batch)
 * C is [batch, M, N] contiguous. Out-of-range rows and columns are loaded from a clamped index and not stored,
 * which keeps the inner loop free of branches.
 */
import { defineKernel, type BindingSpec, type ParamSpec } from '../runtime/kernel.ts';

export type Activation = 'none' | 'relu' | 'sigmoid' | 'tanh';

export const ACTIVATION_WGSL: Record<Activation, (v: string) => string> = {
  none: (v) => v,
  relu: (v) => `max(${v}, vec4f(0.0))`,
  sigmoid: (v) => `1.0 / (1.0 + exp(-${v}))`,
  tanh: (v) => `tanh(${v})`,
};

export const ACTIVATION_REF: Record<Activation, (v: number) => number> = {
  none: (v) => v,
  relu: (v) => Math.max(v, 0),
  sigmoid: (v) => 1 / (1 + Math.exp(-v)),
  tanh: Math.tanh,
};

/**
 * The binding table and scalar parameters shared by every matmul variant (generic, blocked, tiled): the op binds
 * the same buffers and packs the same Params whichever kernel it picks.
 */
export const MATMUL_BINDINGS = [
  { name: 'a', access: 'read' },
  { name: 'b', access: 'read' },
  { name: 'bias', access: 'read' },
  { name: 'c', access: 'rw' },
] as const satisfies readonly BindingSpec[];

export const MATMUL_PARAMS = [
  { name: 'M', type: 'u32' },
  { name: 'N', type: 'u32' },
  { name: 'K', type: 'u32' },
  { name: 'a_batch', type: 'u32' },
  { name: 'a_row', type: 'u32' },
  { name: 'a_col', type: 'u32' },
  { name: 'b_batch', type: 'u32' },
  { name: 'b_row', type: 'u32' },
  { name: 'b_col', type: 'u32' },
] as const satisfies readonly ParamSpec[];

const TILE = 32;

export const matmulKernel = defineKernel<{ activation: Activation; bias: boolean }>({
  name: 'matmul',
  variants: [{ activation: 'none', bias: false }, { activation: 'relu', bias: true }],
  bindings: MATMUL_BINDINGS,
  params: MATMUL_PARAMS,
  workgroupSize: 64,
  wgsl: ({ activation, bias }) => /* wgsl */ `
// matmul: C = ${ACTIVATION_WGSL[activation]('(A·B' + (bias ? ' + bias' : '') + ')')}; 4×4 outputs per thread.
struct Params { M: u32, N: u32, K: u32, a_batch: u32, a_row: u32, a_col: u32, b_batch: u32, b_row: u32, b_col: u32 }
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let batch = wg.z;
  let row0 = wg.y * ${TILE}u + lid.y * 4u;
  let col0 = wg.x * ${TILE}u + lid.x * 4u;
  if (row0 >= p.M || col0 >= p.N) { return; }

  // Clamped row/column indices: loads stay in range, stores below are guarded.
  let rows = min(vec4u(row0) + vec4u(0u, 1u, 2u, 3u), vec4u(p.M - 1u));
  let cols = min(vec4u(col0) + vec4u(0u, 1u, 2u, 3u), vec4u(p.N - 1u));
  let a_rows = batch * p.a_batch + rows * p.a_row;
  let b_cols = batch * p.b_batch + cols * p.b_col;

  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var k = 0u; k < p.K; k++) {
    let a_k = a_rows + vec4u(k * p.a_col);
    let b_k = b_cols + vec4u(k * p.b_row);
    let b_row = vec4f(b[b_k.x], b[b_k.y], b[b_k.z], b[b_k.w]);
    acc0 += a[a_k.x] * b_row;
    acc1 += a[a_k.y] * b_row;
    acc2 += a[a_k.z] * b_row;
    acc3 += a[a_k.w] * b_row;
  }

  ${bias ? 'let bias_row = vec4f(bias[cols.x], bias[cols.y], bias[cols.z], bias[cols.w]);' : 'let bias_row = vec4f(0.0);'}
  var out = array<vec4f, 4>(acc0 + bias_row, acc1 + bias_row, acc2 + bias_row, acc3 + bias_row);
  let c_base = batch * p.M * p.N;
  for (var i = 0u; i < 4u; i++) {
    let row = row0 + i;
    if (row >= p.M) { break; }
    let v = ${ACTIVATION_WGSL[activation]('out[i]')};
    for (var j = 0u; j < 4u; j++) {
      if (col0 + j < p.N) { c[c_base + row * p.N + col0 + j] = v[j]; }
    }
  }
}
`,
});

export function matmulGrid(M: number, N: number, batch: number): [number, number, number] {
  return [Math.ceil(N / TILE), Math.ceil(M / TILE), batch];
}

/**
 * float64 reference: C = act(op(A)·op(B) + bias) for A [batch|1, M, K] (or [K, M] transposed), B likewise.
 * Inputs are given as already-materialised row-major matrices per batch.
 */
export function matmulReference(
  a: Float64Array,
  b: Float64Array,
  dims: { batch: number; M: number; N: number; K: number; transA: boolean; transB: boolean; aBatched: boolean; bBatched: boolean },
  bias: Float64Array | null = null,
  activation: Activation = 'none',
): Float64Array {
  const { batch, M, N, K, transA, transB, aBatched, bBatched } = dims;
  const c = new Float64Array(batch * M * N);
  for (let s = 0; s < batch; s++) {
    const aOff = aBatched ? s * M * K : 0;
    const bOff = bBatched ? s * K * N : 0;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let sum = bias ? bias[n] : 0;
        for (let k = 0; k < K; k++) {
          const av = transA ? a[aOff + k * M + m] : a[aOff + m * K + k];
          const bv = transB ? b[bOff + n * K + k] : b[bOff + k * N + n];
          sum += av * bv;
        }
        c[s * M * N + m * N + n] = ACTIVATION_REF[activation](sum);
      }
    }
  }
  return c;
}
