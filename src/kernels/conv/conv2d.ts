/**
 * 2-D convolution as an implicit GEMM, in two index mappings (the `mode` const):
 *
 *   'direct'      y[n, o, oy, ox] = bias[o] + Σ_{i, ky, kx} W(o, i, ky, kx) · x[n, i, oy·s_h − p_h + ky·d_h, ox·s_w − p_w + kx·d_w]
 *   'transposed'  y[n, o, oy, ox] = bias[o] + Σ_{i, ky, kx} W(o, i, ky, kx) · x[n, i, iy, ix]
 *                 where oy = iy·s_h − p_h + ky·d_h (likewise ox), i.e. iy = (oy + p_h − ky·d_h) / s_h when that divides
 *
 * (taps that fall outside x, or do not divide, contribute 0). 'direct' is conv2d's forward and convTranspose2d's grad
 * input; 'transposed' is convTranspose2d's forward and conv2d's grad input. W is read through two strides, so both
 * torch layouts serve without a copy:
 *   W(o, i, ky, kx) = weight[o·w_out_stride + i·w_in_stride + ky·kw + kx]
 *   conv layout [C_out, C_in, kh, kw]: w_out_stride = C_in·kh·kw, w_in_stride = kh·kw
 *   transposed layout [C_in, C_out, kh, kw]: w_out_stride = kh·kw, w_in_stride = C_out·kh·kw
 *
 * As a GEMM: rows = output channels o (M = c_out), columns = output positions p = (n, oy, ox) flattened
 * (P = n·h_out·w_out), reduction over (i, ky, kx). Thread mapping as in matmul.ts: workgroup 8×8 threads, each owns
 * 4 output channels × 4 consecutive positions in four vec4 registers, so a workgroup covers 32 channels × 32
 * positions. Grid = (⌈P/32⌉, ⌈c_out/32⌉, 1). No workgroup memory (barriers are slow on lavapipe). Loop order: taps
 * (ky, kx) outside, input channels inside, so each tap's coordinates and bounds are computed once and the innermost
 * loop is 4 x loads, 4 weight loads and 16 FMAs (3× faster than channels outside on lavapipe).
 *
 * Layout: x [n, c_in, h_in, w_in], y [n, c_out, h_out, w_out], bias [c_out], all contiguous row-major. Out-of-range
 * channels/positions load from clamped indices and are not stored; out-of-image taps are loaded clamped and zeroed
 * with `select`, which keeps the inner loop free of branches.
 */
import { defineKernel } from '../runtime/kernel.ts';

export type ConvMode = 'direct' | 'transposed';

const TILE = 32;

/** Per-thread tap coordinates and validity for the 4 positions: WGSL for each mode. */
const TAP_WGSL: Record<ConvMode, { y: string; x: string }> = {
  direct: {
    y: `let iy = oy * p.stride_h - p.pad_h + i32(ky) * p.dil_h;
      let ok_y = (iy >= vec4i(0)) & (iy < vec4i(h_in));`,
    x: `let ix = ox * p.stride_w - p.pad_w + i32(kx) * p.dil_w;
        let ok = ok_y & (ix >= vec4i(0)) & (ix < vec4i(w_in));`,
  },
  // oy = iy·s − p + ky·d ⇒ iy·s = oy + p − ky·d, which must be a non-negative multiple of s.
  transposed: {
    y: `let sy = oy + p.pad_h - i32(ky) * p.dil_h;
      let iy = sy / vec4i(p.stride_h);
      let ok_y = (sy >= vec4i(0)) & (sy % vec4i(p.stride_h) == vec4i(0)) & (iy < vec4i(h_in));`,
    x: `let sx = ox + p.pad_w - i32(kx) * p.dil_w;
        let ix = sx / vec4i(p.stride_w);
        let ok = ok_y & (sx >= vec4i(0)) & (sx % vec4i(p.stride_w) == vec4i(0)) & (ix < vec4i(w_in));`,
  },
};

export const conv2dKernel = defineKernel<{ mode: ConvMode; bias: boolean }>({
  name: 'conv2d',
  variants: [
    { mode: 'direct', bias: true },
    { mode: 'transposed', bias: false },
  ],
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'weight', access: 'read' },
    { name: 'bias', access: 'read' },
    { name: 'y', access: 'rw' },
  ],
  params: [
    { name: 'n', type: 'u32' },
    { name: 'c_in', type: 'u32' },
    { name: 'h_in', type: 'u32' },
    { name: 'w_in', type: 'u32' },
    { name: 'c_out', type: 'u32' },
    { name: 'h_out', type: 'u32' },
    { name: 'w_out', type: 'u32' },
    { name: 'kh', type: 'u32' },
    { name: 'kw', type: 'u32' },
    { name: 'stride_h', type: 'i32' },
    { name: 'stride_w', type: 'i32' },
    { name: 'pad_h', type: 'i32' },
    { name: 'pad_w', type: 'i32' },
    { name: 'dil_h', type: 'i32' },
    { name: 'dil_w', type: 'i32' },
    { name: 'w_out_stride', type: 'u32' },
    { name: 'w_in_stride', type: 'u32' },
  ],
  workgroupSize: 64,
  wgsl: ({ mode, bias }) => /* wgsl */ `
// conv2d (${mode}${bias ? ', bias' : ''}): implicit GEMM, 4 output channels × 4 output positions per thread.
struct Params { n: u32, c_in: u32, h_in: u32, w_in: u32, c_out: u32, h_out: u32, w_out: u32, kh: u32, kw: u32, stride_h: i32, stride_w: i32, pad_h: i32, pad_w: i32, dil_h: i32, dil_w: i32, w_out_stride: u32, w_in_stride: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let positions = p.n * p.h_out * p.w_out;
  let o0 = wg.y * ${TILE}u + lid.y * 4u;
  let pos0 = wg.x * ${TILE}u + lid.x * 4u;
  if (o0 >= p.c_out || pos0 >= positions) { return; }

  // Clamped channel/position indices: loads stay in range, stores below are guarded.
  let outs = min(vec4u(o0) + vec4u(0u, 1u, 2u, 3u), vec4u(p.c_out - 1u));
  let pos = min(vec4u(pos0) + vec4u(0u, 1u, 2u, 3u), vec4u(positions - 1u));
  let hw_out = p.h_out * p.w_out;
  let batch = pos / vec4u(hw_out);
  let pixel = pos % vec4u(hw_out);
  let oy = vec4i(pixel / vec4u(p.w_out));
  let ox = vec4i(pixel % vec4u(p.w_out));
  let h_in = i32(p.h_in);
  let w_in = i32(p.w_in);
  let hw_in = p.h_in * p.w_in;
  let x_batch = batch * (p.c_in * hw_in);
  let w_outs = outs * p.w_out_stride;

  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  // Taps outside, channels inside: a tap's coordinates and bounds do not depend on the channel, so the innermost
  // loop is just loads, FMAs and two pointer increments.
  for (var ky = 0u; ky < p.kh; ky++) {
    ${TAP_WGSL[mode].y}
    let row = vec4u(clamp(iy, vec4i(0), vec4i(h_in - 1)) * w_in);
    for (var kx = 0u; kx < p.kw; kx++) {
      ${TAP_WGSL[mode].x}
      if (!any(ok)) { continue; }  // e.g. the taps a strided transposed conv skips for this row
      var x_at = x_batch + row + vec4u(clamp(ix, vec4i(0), vec4i(w_in - 1)));
      var w_at = w_outs + vec4u(ky * p.kw + kx);
      for (var i = 0u; i < p.c_in; i++) {
        let xv = select(vec4f(0.0), vec4f(x[x_at.x], x[x_at.y], x[x_at.z], x[x_at.w]), ok);
        acc0 += weight[w_at.x] * xv;
        acc1 += weight[w_at.y] * xv;
        acc2 += weight[w_at.z] * xv;
        acc3 += weight[w_at.w] * xv;
        x_at += vec4u(hw_in);
        w_at += vec4u(p.w_in_stride);
      }
    }
  }

  var out = array<vec4f, 4>(acc0, acc1, acc2, acc3);
  for (var r = 0u; r < 4u; r++) {
    let o = o0 + r;
    if (o >= p.c_out) { break; }
    let b = ${bias ? 'bias[o]' : '0.0'};
    for (var c = 0u; c < 4u; c++) {
      if (pos0 + c < positions) { y[(batch[c] * p.c_out + o) * hw_out + pixel[c]] = out[r][c] + b; }
    }
  }
}
`,
});

export function conv2dGrid(cOut: number, positions: number): [number, number, number] {
  return [Math.ceil(positions / TILE), Math.ceil(cOut / TILE), 1];
}

/** torch's output size of a convolution along one axis. */
export function convOutputSize(size: number, kernel: number, stride: number, padding: number, dilation: number): number {
  return Math.floor((size + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1;
}

/** torch's output size of a transposed convolution along one axis. */
export function convTransposeOutputSize(
  size: number,
  kernel: number,
  stride: number,
  padding: number,
  dilation: number,
  outputPadding: number,
): number {
  return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + outputPadding + 1;
}
