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
 * Thread mapping: each thread owns one tap (ky, kx) and a 4×4 block of channel pairs (a0..a0+3) × (b0..b0+3), in
 * four vec4 registers. With the tap fixed per thread, B's coordinate depends only on (oy, ox): a row outside B is
 * skipped whole, and the range of ox whose tap lands inside B is computed once, so the inner loop has no bounds
 * checks (4 A loads, 4 B loads, 16 FMAs). Workgroup 8×8 threads: x runs over (tap, b-block) pairs, y over a-blocks;
 * grid = (⌈kh·kw·⌈b_chans/4⌉ / 8⌉, ⌈a_chans/32⌉, chunks).
 *
 * The reduction (N·H·W) is long while the weight can be tiny (a first layer has 3·32·9 weights), so it is split:
 * workgroup z sums rows r = (n, oy) in [z·rows_per_chunk, (z+1)·rows_per_chunk) into its own slice of `partial`,
 * and the caller sums the slices (a deterministic two-pass reduction: no atomics).
 *
 * Layout: A, B contiguous NCHW; partial [chunks, a_chans, b_chans, kh, kw] contiguous.
 */
import { defineKernel } from '../runtime/kernel.ts';

const GROUP = 8;

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
  workgroupSize: GROUP * GROUP,
  wgsl: () => /* wgsl */ `
// conv2d_weight_grad: dw[a, b, ky, kx] = Σ A[n, a, oy, ox] · B[n, b, tap(oy, ky), tap(ox, kx)], one row chunk per z.
struct Params { n: u32, a_chans: u32, a_h: u32, a_w: u32, b_chans: u32, b_h: u32, b_w: u32, kh: u32, kw: u32, stride_h: i32, stride_w: i32, pad_h: i32, pad_w: i32, dil_h: i32, dil_w: i32, rows_per_chunk: u32 }
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

// ⌈num / den⌉ for den > 0 (WGSL's i32 division truncates toward zero).
fn ceil_div(num: i32, den: i32) -> i32 {
  let q = num / den;
  return select(q, q + 1, q * den < num);
}

@compute @workgroup_size(${GROUP}, ${GROUP}, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let taps = p.kh * p.kw;
  let b_blocks = (p.b_chans + 3u) / 4u;
  let column = wg.x * ${GROUP}u + lid.x;
  let tap = column / b_blocks;
  let b0 = (column % b_blocks) * 4u;
  let a0 = (wg.y * ${GROUP}u + lid.y) * 4u;
  if (tap >= taps || a0 >= p.a_chans) { return; }

  // Clamped channel indices: loads stay in range, stores below are guarded.
  let a_chan = min(vec4u(a0) + vec4u(0u, 1u, 2u, 3u), vec4u(p.a_chans - 1u));
  let b_chan = min(vec4u(b0) + vec4u(0u, 1u, 2u, 3u), vec4u(p.b_chans - 1u));
  // B's coordinate for A's (oy, ox) is (oy·s_h + off_y, ox·s_w + off_x).
  let off_y = i32(tap / p.kw) * p.dil_h - p.pad_h;
  let off_x = i32(tap % p.kw) * p.dil_w - p.pad_w;
  let b_h = i32(p.b_h);
  let b_w = i32(p.b_w);
  // The ox whose tap lands inside B: 0 ≤ ox·s_w + off_x < b_w.
  let ox_begin = u32(max(0, ceil_div(-off_x, p.stride_w)));
  let ox_end = u32(clamp(ceil_div(b_w - off_x, p.stride_w), 0, i32(p.a_w)));
  let a_hw = p.a_h * p.a_w;
  let b_hw = p.b_h * p.b_w;

  let row_begin = wg.z * p.rows_per_chunk;
  let row_end = min(row_begin + p.rows_per_chunk, p.n * p.a_h);
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var r = row_begin; r < row_end; r++) {
    let batch = r / p.a_h;
    let oy = r % p.a_h;
    let iy = i32(oy) * p.stride_h + off_y;
    if (iy < 0 || iy >= b_h) { continue; }
    var a_at = (vec4u(batch * p.a_chans) + a_chan) * a_hw + vec4u(oy * p.a_w + ox_begin);
    var b_at = (vec4u(batch * p.b_chans) + b_chan) * b_hw + vec4u(u32(iy * b_w + i32(ox_begin) * p.stride_w + off_x));
    let b_step = vec4u(u32(p.stride_w));
    for (var ox = ox_begin; ox < ox_end; ox++) {
      let bv = vec4f(b[b_at.x], b[b_at.y], b[b_at.z], b[b_at.w]);
      acc0 += a[a_at.x] * bv;
      acc1 += a[a_at.y] * bv;
      acc2 += a[a_at.z] * bv;
      acc3 += a[a_at.w] * bv;
      a_at += vec4u(1u);
      b_at += b_step;
    }
  }

  // partial[z, a, b, tap]
  var out = array<vec4f, 4>(acc0, acc1, acc2, acc3);
  let chunk_base = wg.z * p.a_chans * p.b_chans * taps;
  for (var i = 0u; i < 4u; i++) {
    let row = a0 + i;
    if (row >= p.a_chans) { break; }
    for (var j = 0u; j < 4u; j++) {
      if (b0 + j < p.b_chans) { partial[chunk_base + (row * p.b_chans + b0 + j) * taps + tap] = out[i][j]; }
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
  bChans: number,
  taps: number,
  rows: number,
): { grid: [number, number, number]; chunks: number; rowsPerChunk: number } {
  const gridX = Math.ceil((taps * Math.ceil(bChans / 4)) / GROUP);
  const gridY = Math.ceil(aChans / (4 * GROUP));
  const wanted = Math.max(1, Math.min(Math.ceil(64 / (gridX * gridY)), Math.ceil(rows / 4), 65535));
  const rowsPerChunk = Math.max(1, Math.ceil(rows / wanted));
  const chunks = Math.max(1, Math.ceil(rows / rowsPerChunk));
  return { grid: [gridX, gridY, chunks], chunks, rowsPerChunk };
}
