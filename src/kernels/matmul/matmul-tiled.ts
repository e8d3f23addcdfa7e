/**
 * Workgroup-memory tiled batched matmul for real GPUs, same contract as `matmul.ts`:
 *   C[b, m, n] = act( Σ_k A[b, m, k] · B[b, k, n] + bias[n] )
 *
 * Why: on a GPU, global loads are the cost and workgroup memory plus barriers are cheap, so each workgroup stages
 * a 64×16 slab of A and a 16×64 slab of B in workgroup memory and every staged value is reused 64 times. (On
 * lavapipe the opposite holds, see `matmul-blocked.ts`; this kernel is still tested there by forcing it.)
 *
 * Thread mapping: workgroup 16×16 threads covers a 64×64 tile of C; grid = (⌈N/64⌉, ⌈M/64⌉, batch).
 * Thread (x, y) owns the 4×4 block rows 4y..4y+3, columns 4x..4x+3 of the tile, in four vec4 accumulators.
 * Staging: per 16-deep K step, each of the 256 threads loads 4 elements of the A slab and 4 of the B slab
 * (flat index e = t + 256q): A element (m = e / 16, k = e % 16), B element (k = e / 64, n = e % 64), so
 * neighbouring threads read neighbouring addresses when A and B are row-major. Out-of-range elements stage as 0.
 *
 * Layout: as in `matmul.ts`, A and B are read through strides (transposes cost nothing):
 *   A[b, m, k] = a[b·a_batch + m·a_row + k·a_col],  B[b, k, n] = b[b·b_batch + k·b_row + n·b_col]
 * C is [batch, M, N] contiguous. Workgroup memory: tile_a[k][m] (A transposed, so a thread reads its 4 rows as
 * one run) and tile_b[k][n], 2 × 16 × 64 f32 = 8 KiB.
 */
import { defineKernel } from '../runtime/kernel.ts';
import { ACTIVATION_WGSL, MATMUL_BINDINGS, MATMUL_PARAMS, type Activation } from './matmul.ts';

const TILE = 64;
const DEPTH = 16;

export const matmulTiledKernel = defineKernel<{ activation: Activation; bias: boolean }>({
  name: 'matmul_tiled',
  variants: [{ activation: 'none', bias: false }, { activation: 'tanh', bias: true }],
  bindings: MATMUL_BINDINGS,
  params: MATMUL_PARAMS,
  workgroupSize: 256,
  wgsl: ({ activation, bias }) => /* wgsl */ `
// matmul_tiled: C = ${ACTIVATION_WGSL[activation]('(A·B' + (bias ? ' + bias' : '') + ')')}; ${TILE}×${TILE} tiles, ${DEPTH}-deep K steps.
struct Params { M: u32, N: u32, K: u32, a_batch: u32, a_row: u32, a_col: u32, b_batch: u32, b_row: u32, b_col: u32 }
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

var<workgroup> tile_a: array<f32, ${DEPTH * TILE}>; // [k][m]
var<workgroup> tile_b: array<f32, ${DEPTH * TILE}>; // [k][n]

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let batch = wg.z;
  let tile_row = wg.y * ${TILE}u;
  let tile_col = wg.x * ${TILE}u;
  let t = lid.y * 16u + lid.x;
  let a_base = batch * p.a_batch;
  let b_base = batch * p.b_batch;

  var acc = array<vec4f, 4>(vec4f(0.0), vec4f(0.0), vec4f(0.0), vec4f(0.0));
  for (var k0 = 0u; k0 < p.K; k0 += ${DEPTH}u) {
    for (var q = 0u; q < 4u; q++) {
      let e = t + q * 256u;
      let am = e / ${DEPTH}u;
      let ak = e % ${DEPTH}u;
      let a_ok = tile_row + am < p.M && k0 + ak < p.K;
      tile_a[ak * ${TILE}u + am] = select(0.0, a[a_base + (tile_row + am) * p.a_row + (k0 + ak) * p.a_col], a_ok);
      let bk = e / ${TILE}u;
      let bn = e % ${TILE}u;
      let b_ok = k0 + bk < p.K && tile_col + bn < p.N;
      tile_b[bk * ${TILE}u + bn] = select(0.0, b[b_base + (k0 + bk) * p.b_row + (tile_col + bn) * p.b_col], b_ok);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${DEPTH}u; kk++) {
      let ai = kk * ${TILE}u + lid.y * 4u;
      let bi = kk * ${TILE}u + lid.x * 4u;
      let a_col = vec4f(tile_a[ai], tile_a[ai + 1u], tile_a[ai + 2u], tile_a[ai + 3u]);
      let b_row = vec4f(tile_b[bi], tile_b[bi + 1u], tile_b[bi + 2u], tile_b[bi + 3u]);
      acc[0] = fma(vec4f(a_col.x), b_row, acc[0]);
      acc[1] = fma(vec4f(a_col.y), b_row, acc[1]);
      acc[2] = fma(vec4f(a_col.z), b_row, acc[2]);
      acc[3] = fma(vec4f(a_col.w), b_row, acc[3]);
    }
    workgroupBarrier();
  }

  let row0 = tile_row + lid.y * 4u;
  let col0 = tile_col + lid.x * 4u;
  let cols = min(vec4u(col0) + vec4u(0u, 1u, 2u, 3u), vec4u(p.N - 1u));
  ${bias ? 'let bias_row = vec4f(bias[cols.x], bias[cols.y], bias[cols.z], bias[cols.w]);' : 'let bias_row = vec4f(0.0);'}
  let c_base = batch * p.M * p.N;
  for (var i = 0u; i < 4u; i++) {
    let row = row0 + i;
    if (row >= p.M) { break; }
    let v = ${ACTIVATION_WGSL[activation]('(acc[i] + bias_row)')};
    for (var j = 0u; j < 4u; j++) {
      if (col0 + j < p.N) { c[c_base + row * p.N + col0 + j] = v[j]; }
    }
  }
}
`,
});

export function matmulTiledGrid(M: number, N: number, batch: number): [number, number, number] {
  return [Math.ceil(N / TILE), Math.ceil(M / TILE), batch];
}
