/**
 * Register-blocked batched matmul for CPU adapters (lavapipe/llvmpipe), same contract as `matmul.ts`:
 *   C[b, m, n] = act( Σ_k A[b, m, k] · B[b, k, n] + bias[n] )
 *
 * Why this shape: lavapipe runs 8 invocations as the lanes of one SIMD register, and a load whose address differs
 * per lane is a gather, the expensive part; a load whose address is the same in every invocation of the workgroup
 * ("uniform") can be issued once and broadcast. So the lanes split the columns of C and share its rows: every A
 * load is uniform and each per-lane B vec4 feeds ROWS × 4 FMAs. There is no workgroup memory and no barrier (barriers are
 * slow on lavapipe: it suspends and resumes every invocation). Measured on lavapipe (GFLOP per CPU-second, see
 * `npm run bench`): 12 rows × 4 vec4 per thread was best (8×4: −15–25%, 16×4 equal, 24×4 or 12×6: −30%); the
 * accumulators spill, which still beats more loads. Loads go before FMAs in the K loop (interleaved: ~1.6× slower).
 *
 * Thread mapping: workgroup = 8 threads (one SIMD register on lavapipe); grid = (⌈N / (32·VECS)⌉, ⌈M / ROWS⌉, batch).
 * The workgroup covers ROWS rows (row0 = wg.y·ROWS) × 32·VECS columns. Thread t owns, for each row, the VECS
 * vec4 column groups col_j = wg.x·32·VECS + j·32 + 4t (j < VECS): consecutive lanes read consecutive vec4s.
 *
 * Layout: as in `matmul.ts`, A and B are read through strides (transposes cost nothing):
 *   A[b, m, k] = a[b·a_batch + m·a_row + k·a_col],  B[b, k, n] = b[b·b_batch + k·b_row + n·b_col]
 * C is [batch, M, N] contiguous. With `bVec4` (B rows contiguous: b_col = 1, and N, b_row, b_batch multiples of 4)
 * a B group is one vec4 load from `b` viewed as array<vec4f>; otherwise four strided scalar loads. Out-of-range
 * rows and columns are loaded from clamped indices and not stored, so the K loop has no branches.
 */
import { defineKernel } from '../runtime/kernel.ts';
import { ACTIVATION_WGSL, MATMUL_BINDINGS, MATMUL_PARAMS, type Activation } from './matmul.ts';

export interface MatmulBlockedConsts {
  activation: Activation;
  bias: boolean;
  /** Rows of C per thread (uniform A loads per k). */
  rows: 4 | 8 | 12;
  /** vec4 column groups of C per thread. */
  vecs: 1 | 2 | 4;
  /** B rows are contiguous and 16-byte aligned: load each group as one vec4. */
  bVec4: boolean;
}

/** Threads per workgroup: one lavapipe SIMD register of 8 f32 lanes. */
const THREADS = 8;

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function wgsl({ activation, bias, rows, vecs, bVec4 }: MatmulBlockedConsts): string {
  const R = range(rows);
  const V = range(vecs);
  const bBinding = bVec4 ? 'var<storage, read> b: array<vec4f>;' : 'var<storage, read> b: array<f32>;';
  // B group j at row k: one vec4 (bVec4: b_row, b_batch and the column are multiples of 4) or four strided scalars.
  const loadB = (j: number): string =>
    bVec4
      ? `let b_${j} = b[(b_k + col_${j}) / 4u];`
      : `let b_${j} = vec4f(b[b_k + b_cols_${j}.x], b[b_k + b_cols_${j}.y], b[b_k + b_cols_${j}.z], b[b_k + b_cols_${j}.w]);`;
  return /* wgsl */ `
// matmul_blocked: C = ${ACTIVATION_WGSL[activation]('(A·B' + (bias ? ' + bias' : '') + ')')}; ${rows} rows × ${vecs} vec4 per thread, B ${bVec4 ? 'vec4' : 'strided'}.
struct Params { M: u32, N: u32, K: u32, a_batch: u32, a_row: u32, a_col: u32, b_batch: u32, b_row: u32, b_col: u32 }
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) ${bBinding}
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(${THREADS}, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let batch = wg.z;
  let row0 = wg.y * ${rows}u;
  let first_col = wg.x * ${THREADS * 4 * vecs}u + lid.x * 4u;

  // Uniform across the workgroup: where each of this block's rows of A starts (clamped into range).
  ${R.map((i) => `let a_${i} = batch * p.a_batch + min(row0 + ${i}u, p.M - 1u) * p.a_row;`).join('\n  ')}

  // This thread's column groups, clamped into range (stores below are guarded).
  ${V.map((j) =>
    bVec4
      ? `let col_${j} = min(first_col + ${j * THREADS * 4}u, p.N - 4u);`
      : `let b_cols_${j} = min(vec4u(first_col + ${j * THREADS * 4}u) + vec4u(0u, 1u, 2u, 3u), vec4u(p.N - 1u)) * p.b_col;`,
  ).join('\n  ')}
  let b_batch = batch * p.b_batch;

  ${R.flatMap((i) => V.map((j) => `var acc_${i}_${j} = vec4f(0.0);`)).join('\n  ')}
  for (var k = 0u; k < p.K; k++) {
    // Every load first, then every FMA: interleaving them runs ~1.6× slower on lavapipe (measured).
    let a_k = k * p.a_col;
    ${R.map((i) => `let a_${i}k = vec4f(a[a_${i} + a_k]);`).join('\n    ')}
    let b_k = b_batch + k * p.b_row;
    ${V.map(loadB).join('\n    ')}
    ${R.map((i) => V.map((j) => `acc_${i}_${j} = fma(a_${i}k, b_${j}, acc_${i}_${j});`).join(' ')).join('\n    ')}
  }

  let c_base = batch * p.M * p.N;
  ${V.map(
    (j) => `{
    let col = first_col + ${j * THREADS * 4}u;
    let bias_cols = min(vec4u(col) + vec4u(0u, 1u, 2u, 3u), vec4u(p.N - 1u));
    ${bias ? 'let bias_j = vec4f(bias[bias_cols.x], bias[bias_cols.y], bias[bias_cols.z], bias[bias_cols.w]);' : 'let bias_j = vec4f(0.0);'}
    ${R.map((i) => `store(c_base, row0 + ${i}u, col, ${ACTIVATION_WGSL[activation](`(acc_${i}_${j} + bias_j)`)});`).join('\n    ')}
  }`,
  ).join('\n  ')}
}

/** Writes the in-range elements of the 4 columns starting at col of one row. */
fn store(c_base: u32, row: u32, col: u32, v: vec4f) {
  if (row >= p.M) { return; }
  let base = c_base + row * p.N;
  for (var j = 0u; j < 4u; j++) {
    if (col + j < p.N) { c[base + col + j] = v[j]; }
  }
}
`;
}

export const matmulBlockedKernel = defineKernel<MatmulBlockedConsts>({
  name: 'matmul_blocked',
  variants: [
    { activation: 'none', bias: false, rows: 12, vecs: 4, bVec4: true },
    { activation: 'relu', bias: true, rows: 4, vecs: 1, bVec4: false },
  ],
  bindings: MATMUL_BINDINGS,
  params: MATMUL_PARAMS,
  workgroupSize: THREADS,
  wgsl,
});

/** Structural choices for a problem size: fewer rows/columns per thread when C is narrow, to waste fewer lanes. */
export function matmulBlockedShape(M: number, N: number): Pick<MatmulBlockedConsts, 'rows' | 'vecs'> {
  return { rows: M >= 12 ? 12 : M >= 8 ? 8 : 4, vecs: N > 64 ? 4 : N > 32 ? 2 : 1 };
}

export function matmulBlockedGrid(M: number, N: number, batch: number, consts: Pick<MatmulBlockedConsts, 'rows' | 'vecs'>): [number, number, number] {
  return [Math.ceil(N / (THREADS * 4 * consts.vecs)), Math.ceil(M / consts.rows), batch];
}
