/**
 * Bilinear grid_sample (torch.nn.functional.grid_sample, mode 'bilinear', 2-D) and its two gradients.
 *
 *   out[n, c, oy, ox] = Σ_{corners (y, x) of the cell holding (iy, ix)} w(y, x) · in[n, c, y, x]   (0 outside the image)
 *   (ix, iy) = unnormalise(grid[n, oy, ox, 0], W), unnormalise(grid[n, oy, ox, 1], H)
 *   unnormalise(g, S) = ((g + 1) / 2) · (S − 1)   when align_corners (−1, +1 are the centres of the corner pixels)
 *                     = ((g + 1) · S − 1) / 2     otherwise           (−1, +1 are the outer edges of the corner pixels)
 * padding 'zeros' reads 0 outside the image; 'border' first clamps (ix, iy) into [0, S − 1] (and, as torch does,
 * treats the clamped coordinate as constant, including exactly on the border, where its gradient is 0).
 * The corner weights are w(x0, y0) = (1 − tx)(1 − ty), w(x0 + 1, y0) = tx(1 − ty), …, with x0 = ⌊ix⌋, tx = ix − x0.
 *
 * Thread mapping (all three kernels): one thread per output location (n, oy, ox), i = flat index over
 * N·H_out·W_out (folded into y past 65535 workgroups); it computes the coordinates and weights once and loops over
 * the channels.
 * Layout (contiguous, row-major): input [N, C, H, W], grid [N, H_out, W_out, 2] holding (x, y), out and dL_dout
 * [N, C, H_out, W_out], dL_dgrid [N, H_out, W_out, 2], dL_dinput [N, C, H, W].
 *
 * grid_sample_grad_grid: per location, dL/d(ix, iy) = Σ_c dL/dout · ∂out/∂(ix, iy), times d(ix, iy)/d(grid): no atomics.
 * grid_sample_grad_input: a scatter: every location adds w · dL/dout into its 4 corners, which neighbouring locations
 * share, so the adds are atomic, following the atomics policy (const `mode`, src/kernels/common/atomics.ts). The
 * caller zeroes dL_dinput first, and in 'fixed-point' mode converts it to f32 after.
 */
import { atomicAddF32, atomicArrayType, type AtomicMode } from '../common/atomics.ts';
import { defineKernel } from '../runtime/kernel.ts';

export type PaddingMode = 'zeros' | 'border';

const WORKGROUP = 64;

const PARAMS = [
  { name: 'n', type: 'u32' },
  { name: 'c', type: 'u32' },
  { name: 'h_in', type: 'u32' },
  { name: 'w_in', type: 'u32' },
  { name: 'h_out', type: 'u32' },
  { name: 'w_out', type: 'u32' },
  { name: 'align_corners', type: 'u32' },
] as const;

const PARAMS_STRUCT = 'n: u32, c: u32, h_in: u32, w_in: u32, h_out: u32, w_out: u32, align_corners: u32';

/**
 * WGSL shared by the three kernels: the thread's location, its source coordinates and the bilinear cell.
 * Defines `fn cell(i) -> Cell` for output location i.
 */
function cellWgsl(padding: PaddingMode): string {
  const clip =
    padding === 'border'
      ? `
  // border: clamp into [0, size − 1]; the clamped coordinate is constant (gradient 0), also exactly on the border.
  if (raw <= 0.0) { return vec2f(0.0, 0.0); }
  if (raw >= size - 1.0) { return vec2f(size - 1.0, 0.0); }`
      : '';
  return /* wgsl */ `
// Source pixel coordinate of a normalised grid coordinate, and its derivative d(index)/d(coord).
fn source_index(coord: f32, size_u: u32) -> vec2f {
  let size = f32(size_u);
  var raw: f32;
  var scale: f32;
  if (p.align_corners != 0u) {
    raw = ((coord + 1.0) / 2.0) * (size - 1.0);
    scale = (size - 1.0) / 2.0;
  } else {
    raw = ((coord + 1.0) * size - 1.0) / 2.0;
    scale = size / 2.0;
  }${clip}
  // Far outside the image every corner is out of range; clamping keeps the integer conversion below defined.
  return vec2f(clamp(raw, -2.0, size + 1.0), scale);
}

struct Cell {
  x0: i32, y0: i32,            // top-left corner
  tx: f32, ty: f32,            // fractional position inside the cell
  dix: f32, diy: f32,          // d(ix)/d(grid x), d(iy)/d(grid y)
  batch: u32, pixel: u32,      // n, and oy·W_out + ox
}

fn cell(i: u32) -> Cell {
  let hw_out = p.h_out * p.w_out;
  let batch = i / hw_out;
  let pixel = i % hw_out;
  let sx = source_index(grid[2u * i], p.w_in);
  let sy = source_index(grid[2u * i + 1u], p.h_in);
  let fx = floor(sx.x);
  let fy = floor(sy.x);
  return Cell(i32(fx), i32(fy), sx.x - fx, sy.x - fy, sx.y, sy.y, batch, pixel);
}

fn inside(y: i32, x: i32) -> bool {
  return y >= 0 && y < i32(p.h_in) && x >= 0 && x < i32(p.w_in);
}

// Flat offset of (y, x) in one channel plane, clamped into range (callers mask out-of-image corners).
fn plane_index(y: i32, x: i32) -> u32 {
  return u32(clamp(y, 0, i32(p.h_in) - 1)) * p.w_in + u32(clamp(x, 0, i32(p.w_in) - 1));
}`;
}

const MAIN_HEADER = /* wgsl */ `@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (i >= p.n * p.h_out * p.w_out) { return; }
  let k = cell(i);
  // Corners: (y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1); out-of-image ones are masked.
  let in_nw = inside(k.y0, k.x0);
  let in_ne = inside(k.y0, k.x0 + 1);
  let in_sw = inside(k.y0 + 1, k.x0);
  let in_se = inside(k.y0 + 1, k.x0 + 1);
  let at_nw = plane_index(k.y0, k.x0);
  let at_ne = plane_index(k.y0, k.x0 + 1);
  let at_sw = plane_index(k.y0 + 1, k.x0);
  let at_se = plane_index(k.y0 + 1, k.x0 + 1);
  let hw_in = p.h_in * p.w_in;
  let hw_out = p.h_out * p.w_out;`;

export const gridSampleKernel = defineKernel<{ padding: PaddingMode }>({
  name: 'grid_sample',
  variants: [{ padding: 'zeros' }, { padding: 'border' }],
  bindings: [
    { name: 'input', access: 'read' },
    { name: 'grid', access: 'read' },
    { name: 'out', access: 'rw' },
  ],
  params: PARAMS,
  workgroupSize: WORKGROUP,
  wgsl: ({ padding }) => /* wgsl */ `
// grid_sample (bilinear, padding ${padding}): one thread per output location, looping over channels.
struct Params { ${PARAMS_STRUCT} }
@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read> grid: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
${cellWgsl(padding)}

${MAIN_HEADER}
  let w_nw = select(0.0, (1.0 - k.tx) * (1.0 - k.ty), in_nw);
  let w_ne = select(0.0, k.tx * (1.0 - k.ty), in_ne);
  let w_sw = select(0.0, (1.0 - k.tx) * k.ty, in_sw);
  let w_se = select(0.0, k.tx * k.ty, in_se);
  for (var c = 0u; c < p.c; c++) {
    let plane = (k.batch * p.c + c) * hw_in;
    out[(k.batch * p.c + c) * hw_out + k.pixel] =
      w_nw * input[plane + at_nw] + w_ne * input[plane + at_ne] + w_sw * input[plane + at_sw] + w_se * input[plane + at_se];
  }
}
`,
});

export const gridSampleGradGridKernel = defineKernel<{ padding: PaddingMode }>({
  name: 'grid_sample_grad_grid',
  variants: [{ padding: 'zeros' }, { padding: 'border' }],
  bindings: [
    { name: 'input', access: 'read' },
    { name: 'grid', access: 'read' },
    { name: 'dL_dout', access: 'read' },
    { name: 'dL_dgrid', access: 'rw' },
  ],
  params: PARAMS,
  workgroupSize: WORKGROUP,
  wgsl: ({ padding }) => /* wgsl */ `
// grid_sample_grad_grid (bilinear, padding ${padding}): dL/dgrid per output location, looping over channels.
struct Params { ${PARAMS_STRUCT} }
@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read> grid: array<f32>;
@group(0) @binding(2) var<storage, read> dL_dout: array<f32>;
@group(0) @binding(3) var<storage, read_write> dL_dgrid: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
${cellWgsl(padding)}

${MAIN_HEADER}
  // out = Σ w · v with w_nw = (1 − tx)(1 − ty), w_ne = tx(1 − ty), w_sw = (1 − tx)ty, w_se = tx·ty, so
  // ∂out/∂ix = (1 − ty)(v_ne − v_nw) + ty(v_se − v_sw) and ∂out/∂iy = (1 − tx)(v_sw − v_nw) + tx(v_se − v_ne).
  var d_ix = 0.0;
  var d_iy = 0.0;
  for (var c = 0u; c < p.c; c++) {
    let plane = (k.batch * p.c + c) * hw_in;
    let v_nw = select(0.0, input[plane + at_nw], in_nw);
    let v_ne = select(0.0, input[plane + at_ne], in_ne);
    let v_sw = select(0.0, input[plane + at_sw], in_sw);
    let v_se = select(0.0, input[plane + at_se], in_se);
    let g = dL_dout[(k.batch * p.c + c) * hw_out + k.pixel];
    d_ix += g * ((1.0 - k.ty) * (v_ne - v_nw) + k.ty * (v_se - v_sw));
    d_iy += g * ((1.0 - k.tx) * (v_sw - v_nw) + k.tx * (v_se - v_ne));
  }
  dL_dgrid[2u * i] = d_ix * k.dix;
  dL_dgrid[2u * i + 1u] = d_iy * k.diy;
}
`,
});

export const gridSampleGradInputKernel = defineKernel<{ padding: PaddingMode; mode: AtomicMode }>({
  name: 'grid_sample_grad_input',
  variants: [
    { padding: 'zeros', mode: 'float-cas' },
    { padding: 'border', mode: 'fixed-point' },
  ],
  bindings: [
    { name: 'grid', access: 'read' },
    { name: 'dL_dout', access: 'read' },
    { name: 'acc', access: 'rw' },
  ],
  params: [...PARAMS, { name: 'fixed_scale', type: 'f32' }],
  workgroupSize: WORKGROUP,
  wgsl: ({ padding, mode }) => /* wgsl */ `
// grid_sample_grad_input (bilinear, padding ${padding}, ${mode} atomics): each location scatters w · dL/dout into
// its 4 corners, for every channel.
struct Params { ${PARAMS_STRUCT}, fixed_scale: f32 }
@group(0) @binding(0) var<storage, read> grid: array<f32>;
@group(0) @binding(1) var<storage, read> dL_dout: array<f32>;
@group(0) @binding(2) var<storage, read_write> acc: ${atomicArrayType(mode)};
@group(0) @binding(3) var<uniform> p: Params;
${cellWgsl(padding)}
${atomicAddF32(mode, 'acc', 'p.fixed_scale')}

${MAIN_HEADER}
  let w_nw = (1.0 - k.tx) * (1.0 - k.ty);
  let w_ne = k.tx * (1.0 - k.ty);
  let w_sw = (1.0 - k.tx) * k.ty;
  let w_se = k.tx * k.ty;
  for (var c = 0u; c < p.c; c++) {
    let g = dL_dout[(k.batch * p.c + c) * hw_out + k.pixel];
    let plane = (k.batch * p.c + c) * hw_in;
    // Zero weights (a coordinate exactly on a pixel) add nothing: skip their atomics.
    if (in_nw && w_nw != 0.0) { acc_add(plane + at_nw, w_nw * g); }
    if (in_ne && w_ne != 0.0) { acc_add(plane + at_ne, w_ne * g); }
    if (in_sw && w_sw != 0.0) { acc_add(plane + at_sw, w_sw * g); }
    if (in_se && w_se != 0.0) { acc_add(plane + at_se, w_se * g); }
  }
}
`,
});
