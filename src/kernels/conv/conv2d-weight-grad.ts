/**
 * The weight gradient of both convolutions, as one correlation of two activations:
 *
 *   dw[a, b, ky, kx] = Σ_{n, oy, ox} A[n, a, oy, ox] · B[n, b, oy·s_h − p_h + ky·d_h, ox·s_w − p_w + kx·d_w]
 *
 * (B taps outside the image contribute 0; the sum runs over A's spatial extent a_h × a_w).
 *   conv2d:          A = dL/dy [N, C_out, H_out, W_out], B = x [N, C_in, H, W]  → dw [C_out, C_in, kh, kw]
 *   convTranspose2d: A = x [N, C_in, H, W], B = dL/dy [N, C_out, H_out, W_out]  → dw [C_in, C_out, kh, kw]
 * (both are torch's weight layouts, so the result needs no permute).
 *
 * As a GEMM: rows = A channels a (M = a_chans), columns q = (b, ky, kx) flattened (Q = b_chans·kh·kw), reduction over
 * the rows r = (n, oy) of A and the columns ox within a row. The reduction is long (N·H·W) while M×Q can be tiny (a
 * first layer has 3·32·9 weights), so it is split: workgroup z sums rows [z·rows_per_chunk, (z+1)·rows_per_chunk)
 * into its own slice of `partial`, and the caller sums the slices (a deterministic two-pass reduction: no atomics).
 *
 * Thread mapping: workgroup 8×8 threads, each owns 4 A-channels × 4 columns in four vec4 registers; grid =
 * (⌈Q/32⌉, ⌈a_chans/32⌉, chunks). Layout: A, B contiguous NCHW; partial [chunks, a_chans, Q] contiguous.
 */
import { defineKernel } from '../runtime/kernel.ts';

const TILE = 32;

export const conv2dWeightGradKernel = defineKernel({
  name: 'conv2d_weight_grad',
  bindings: [
    { name: 'a', access: 'read' },
    { name: 'b', access: 'read' },
    { name: 'partial', access: 'rw' },
  ],
  params: [
    { name: 'n', type: 'u32' },
    { name: 'a_chans', type: 'u32' },
    { name: 'a_h', type: 'u32' },
    { name: 'a_w', type: 'u32' },
    { name: 'b_chans', type: 'u32' },
    { name: 'b_h', type: 'u32' },
    { name: 'b_w', type: 'u32' },
    { name: 'kh', type: 'u32' },
    { name: 'kw', type: 'u32' },
    { name: 'stride_h', type: 'i32' },
    { name: 'stride_w', type: 'i32' },
    { name: 'pad_h', type: 'i32' },
    { name: 'pad_w', type: 'i32' },
    { name: 'dil_h', type: 'i32' },
    { name: 'dil_w', type: 'i32' },
    { name: 'rows_per_chunk', type: 'u32' },
  ],
  workgroupSize: 64,
  wgsl: () => /* wgsl */ `
// conv2d_weight_grad: dw[a, b, ky, kx] = Σ A[n, a, oy, ox] · B[n, b, tap(oy, ky), tap(ox, kx)], one row chunk per z.
struct Params { n: u32, a_chans: u32, a_h: u32, a_w: u32, b_chans: u32, b_h: u32, b_w: u32, kh: u32, kw: u32, stride_h: i32, stride_w: i32, pad_h: i32, pad_w: i32, dil_h: i32, dil_w: i32, rows_per_chunk: u32 }
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let taps = p.kh * p.kw;
  let cols = p.b_chans * taps;
  let a0 = wg.y * ${TILE}u + lid.y * 4u;
  let q0 = wg.x * ${TILE}u + lid.x * 4u;
  if (a0 >= p.a_chans || q0 >= cols) { return; }

  // Clamped channel/column indices: loads stay in range, stores below are guarded.
  let a_chan = min(vec4u(a0) + vec4u(0u, 1u, 2u, 3u), vec4u(p.a_chans - 1u));
  let q = min(vec4u(q0) + vec4u(0u, 1u, 2u, 3u), vec4u(cols - 1u));
  let b_chan = q / vec4u(taps);
  let tap = q % vec4u(taps);
  let ky = vec4i(tap / vec4u(p.kw));
  let kx = vec4i(tap % vec4u(p.kw));
  // B's coordinate for A's (oy, ox) is (oy·s + off_y, ox·s + off_x) per column.
  let off_y = ky * p.dil_h - vec4i(p.pad_h);
  let off_x = kx * p.dil_w - vec4i(p.pad_w);
  let a_hw = p.a_h * p.a_w;
  let b_hw = p.b_h * p.b_w;
  let b_h = i32(p.b_h);
  let b_w = i32(p.b_w);

  let rows = p.n * p.a_h;
  let row_begin = wg.z * p.rows_per_chunk;
  let row_end = min(row_begin + p.rows_per_chunk, rows);
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var r = row_begin; r < row_end; r++) {
    let batch = r / p.a_h;
    let oy = r % p.a_h;
    let a_row = (vec4u(batch * p.a_chans) + a_chan) * a_hw + vec4u(oy * p.a_w);
    let iy = vec4i(i32(oy) * p.stride_h) + off_y;
    let ok_y = (iy >= vec4i(0)) & (iy < vec4i(b_h));
    let b_row = (vec4u(batch * p.b_chans) + b_chan) * b_hw + vec4u(clamp(iy, vec4i(0), vec4i(b_h - 1)) * b_w);
    for (var ox = 0u; ox < p.a_w; ox++) {
      let ix = vec4i(i32(ox) * p.stride_w) + off_x;
      let ok = ok_y & (ix >= vec4i(0)) & (ix < vec4i(b_w));
      let b_at = b_row + vec4u(clamp(ix, vec4i(0), vec4i(b_w - 1)));
      let bv = select(vec4f(0.0), vec4f(b[b_at.x], b[b_at.y], b[b_at.z], b[b_at.w]), ok);
      let a_at = a_row + vec4u(ox);
      acc0 += a[a_at.x] * bv;
      acc1 += a[a_at.y] * bv;
      acc2 += a[a_at.z] * bv;
      acc3 += a[a_at.w] * bv;
    }
  }

  var out = array<vec4f, 4>(acc0, acc1, acc2, acc3);
  let chunk_base = wg.z * p.a_chans * cols;
  for (var i = 0u; i < 4u; i++) {
    let row = a0 + i;
    if (row >= p.a_chans) { break; }
    for (var j = 0u; j < 4u; j++) {
      if (q0 + j < cols) { partial[chunk_base + row * cols + q0 + j] = out[i][j]; }
    }
  }
}
`,
});

/**
 * Grid and row chunking: enough workgroups to keep every core busy (the reduction is split when the weight tensor
 * alone gives few), but chunks of at least a few rows so the partial sums stay small.
 */
export function conv2dWeightGradLaunch(
  aChans: number,
  cols: number,
  rows: number,
): { grid: [number, number, number]; chunks: number; rowsPerChunk: number } {
  const base = Math.ceil(cols / TILE) * Math.ceil(aChans / TILE);
  const wanted = Math.max(1, Math.min(Math.ceil(64 / base), Math.ceil(rows / 4), 65535));
  const rowsPerChunk = Math.max(1, Math.ceil(rows / wanted));
  const chunks = Math.max(1, Math.ceil(rows / rowsPerChunk));
  return { grid: [Math.ceil(cols / TILE), Math.ceil(aChans / TILE), chunks], chunks, rowsPerChunk };
}
