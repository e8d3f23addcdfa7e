/**
 * Multiresolution hash-grid encoding (Müller et al. 2022; tiny-cuda-nn `kernel_grid`, torch-ngp `gridencoder`):
 * forward, backward into the table, and the input gradient. Geometry, layout and config: `hashgrid-layout.ts`;
 * float64 reference: `hashgrid.ref.ts`.
 *
 * Buffers (all f32 unless said):
 *   x           [N, x_stride] rows; the grid's D axes are columns axis0, axis1(, axis2) of each row. A plain 3-D
 *               grid reads x [N, 3] with axes 0, 1, 2; a tri-plane's YZ plane reads x [N, 3] with axes 1, 2.
 *   grid_table  [total_entries, F]: level l's entries are rows offset_l … offset_l + size_l − 1.
 *   level_info  one LevelInfo per level {offset, size, vertices, hashed, scale} (5 × 4 bytes; scale is f32).
 *   y / dy      [N, out_stride] rows; level l's F features at columns out_offset + l·F + f (so a tri-plane's three
 *               grids write straight into their slices of one [N, 3·L·F] buffer, with no concat or transpose).
 *
 * Thread mapping:
 *   hashgrid_forward, hashgrid_backward: one thread per (point, level), level = workgroup_id.y (as tiny-cuda-nn and
 *     torch-ngp): the threads of a workgroup share one level's table block. Points n = (wid.x + wid.z · groups.x) ·
 *     64 + lid.x, so more than 65535 · 64 points fold into z.
 *   hashgrid_backward_input: one thread per point, looping over the levels, so it owns its row of dL/dx and adds
 *     without atomics (deterministic).
 *
 * The backward recomputes cells and weights (nothing is saved from the forward) and scatter-adds w · dL/dy into the
 * table gradient with the atomics policy of `src/kernels/common/atomics.ts` (compile-time const `atomics`).
 */
import { defineKernel } from '../runtime/kernel.ts';
import { atomicAddF32, atomicArrayType, type AtomicMode } from '../common/atomics.ts';
import { HASH_PRIMES } from './hashgrid-layout.ts';

export interface HashGridConsts {
  dims: 2 | 3;
  features: 1 | 2 | 4;
}

export interface HashGridBackwardConsts extends HashGridConsts {
  atomics: AtomicMode;
}

/** Threads per workgroup along the points axis. */
export const HASHGRID_WORKGROUP = 64;
const WG = HASHGRID_WORKGROUP;

/** 4-byte words per LevelInfo record (offset, size, vertices, hashed: u32; scale: f32). */
export const LEVEL_INFO_WORDS = 5;

/** The parts every kernel of the family shares: constants, LevelInfo, locating a point, indexing a corner. */
function gridCommon(dims: number, features: number): string {
  return /* wgsl */ `
const D: u32 = ${dims}u;        // input dimensions
const F: u32 = ${features}u;        // features per level
const CORNERS: u32 = ${2 ** dims}u;  // 2^D

struct LevelInfo { offset: u32, size: u32, vertices: u32, hashed: u32, scale: f32 }

// Where point n falls in a level: the cell (lower vertex), the fraction within it, and 1.0 per coordinate that
// was inside [0, 1] before clamping (the clamp passes no derivative from outside).
struct Located { cell: array<u32, 3>, frac: array<f32, 3>, inside: array<f32, 3> }

fn locate(n: u32, info: LevelInfo) -> Located {
  let axes = array<u32, 3>(p.axis0, p.axis1, p.axis2);
  var at: Located;
  for (var d = 0u; d < D; d++) {
    let x = x_in[n * p.x_stride + axes[d]];
    let pos = clamp(x, 0.0, 1.0) * info.scale + p.shift;
    // A point on the grid's upper face uses the last cell with fraction 1.
    let cell = min(u32(floor(pos)), info.vertices - 2u);
    at.cell[d] = cell;
    at.frac[d] = pos - f32(cell);
    at.inside[d] = select(0.0, 1.0, x >= 0.0 && x <= 1.0);
  }
  return at;
}

// tiny-cuda-nn's coherent prime hash primes: ${HASH_PRIMES.join(', ')}.
fn prime(d: u32) -> u32 {
  return select(select(${HASH_PRIMES[2]}u, ${HASH_PRIMES[1]}u, d == 1u), ${HASH_PRIMES[0]}u, d == 0u);
}

// Table row of corner \`corner\` (bit d set = upper vertex along axis d) of the cell: dense (x fastest) or hashed.
fn corner_entry(info: LevelInfo, cell: array<u32, 3>, corner: u32) -> u32 {
  var index = 0u;
  if (info.hashed == 0u) {
    var stride = 1u;
    for (var d = 0u; d < D; d++) {
      index += (cell[d] + ((corner >> d) & 1u)) * stride;
      stride *= info.vertices;
    }
  } else {
    for (var d = 0u; d < D; d++) {
      index ^= (cell[d] + ((corner >> d) & 1u)) * prime(d);
    }
    index = index % info.size;
  }
  return info.offset + index;
}

// D-linear interpolation weight of a corner: Π_d (bit_d ? frac_d : 1 − frac_d).
fn corner_weight(frac: array<f32, 3>, corner: u32) -> f32 {
  var w = 1.0;
  for (var d = 0u; d < D; d++) {
    w *= select(1.0 - frac[d], frac[d], ((corner >> d) & 1u) == 1u);
  }
  return w;
}
`;
}

const POINT_LEVEL_MAIN = `@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let n = (wid.x + wid.z * groups.x) * ${WG}u + lid.x;
  let level = wid.y;
  if (n >= p.n) { return; }
  let info = level_info[level];
  let at = locate(n, info);`;

const VARIANTS: HashGridConsts[] = [
  { dims: 3, features: 2 },
  { dims: 2, features: 1 },
  { dims: 3, features: 4 },
];

/** y[n, out_offset + l·F + f] = Σ_corners w · table[entry, f]. */
export const hashGridForward = defineKernel<HashGridConsts>({
  name: 'hashgrid_forward',
  variants: VARIANTS,
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'grid_table', access: 'read' },
    { name: 'level_info', access: 'read' },
    { name: 'y', access: 'rw' },
  ],
  params: [
    { name: 'n', type: 'u32' },
    { name: 'x_stride', type: 'u32' },
    { name: 'axis0', type: 'u32' },
    { name: 'axis1', type: 'u32' },
    { name: 'axis2', type: 'u32' },
    { name: 'out_stride', type: 'u32' },
    { name: 'out_offset', type: 'u32' },
    { name: 'shift', type: 'f32' },
  ],
  workgroupSize: WG,
  wgsl: ({ dims, features }) => /* wgsl */ `
// hashgrid_forward (D = ${dims}, F = ${features}): one thread per (point, level = workgroup_id.y).
struct Params { n: u32, x_stride: u32, axis0: u32, axis1: u32, axis2: u32, out_stride: u32, out_offset: u32, shift: f32 }
@group(0) @binding(0) var<storage, read> x_in: array<f32>;
@group(0) @binding(1) var<storage, read> grid_table: array<f32>;
@group(0) @binding(2) var<storage, read> level_info: array<LevelInfo>;
@group(0) @binding(3) var<storage, read_write> y_out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
${gridCommon(dims, features)}
${POINT_LEVEL_MAIN}
  var acc: array<f32, F>;
  for (var corner = 0u; corner < CORNERS; corner++) {
    let w = corner_weight(at.frac, corner);
    let entry = corner_entry(info, at.cell, corner);
    for (var f = 0u; f < F; f++) {
      acc[f] += w * grid_table[entry * F + f];
    }
  }
  let row = n * p.out_stride + p.out_offset + level * F;
  for (var f = 0u; f < F; f++) {
    y_out[row + f] = acc[f];
  }
}
`,
});

/** grad_table[entry, f] += w · dy[n, out_offset + l·F + f] for every corner (atomically). grad_table starts at 0. */
export const hashGridBackward = defineKernel<HashGridBackwardConsts>({
  name: 'hashgrid_backward',
  variants: [
    { dims: 3, features: 2, atomics: 'float-cas' },
    { dims: 2, features: 1, atomics: 'fixed-point' },
    { dims: 3, features: 4, atomics: 'fixed-point' },
  ],
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'level_info', access: 'read' },
    { name: 'dy', access: 'read' },
    { name: 'grad_table', access: 'rw' },
  ],
  params: [
    { name: 'n', type: 'u32' },
    { name: 'x_stride', type: 'u32' },
    { name: 'axis0', type: 'u32' },
    { name: 'axis1', type: 'u32' },
    { name: 'axis2', type: 'u32' },
    { name: 'dy_stride', type: 'u32' },
    { name: 'dy_offset', type: 'u32' },
    { name: 'shift', type: 'f32' },
    { name: 'fixed_scale', type: 'f32' },
  ],
  workgroupSize: WG,
  wgsl: ({ dims, features, atomics }) => /* wgsl */ `
// hashgrid_backward (D = ${dims}, F = ${features}, atomics ${atomics}): one thread per (point, level); recomputes
// the corners and weights and scatter-adds w · dL/dy into grid_table (${atomics === 'fixed-point' ? 'i32 sums of round(v · fixed_scale)' : 'f32 bits, compare-exchange'}).
struct Params { n: u32, x_stride: u32, axis0: u32, axis1: u32, axis2: u32, dy_stride: u32, dy_offset: u32, shift: f32, fixed_scale: f32 }
@group(0) @binding(0) var<storage, read> x_in: array<f32>;
@group(0) @binding(1) var<storage, read> level_info: array<LevelInfo>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad_table: ${atomicArrayType(atomics)};
@group(0) @binding(4) var<uniform> p: Params;
${gridCommon(dims, features)}
${atomicAddF32(atomics, 'grad_table', 'p.fixed_scale')}

${POINT_LEVEL_MAIN}
  var dL_dy: array<f32, F>;
  let row = n * p.dy_stride + p.dy_offset + level * F;
  for (var f = 0u; f < F; f++) {
    dL_dy[f] = dy[row + f];
  }
  for (var corner = 0u; corner < CORNERS; corner++) {
    let w = corner_weight(at.frac, corner);
    if (w == 0.0) { continue; }  // a point on a cell face adds nothing to the far corners: skip the atomics
    let entry = corner_entry(info, at.cell, corner);
    for (var f = 0u; f < F; f++) {
      let contribution = w * dL_dy[f];
      if (contribution != 0.0) {
        grad_table_add(entry * F + f, contribution);
      }
    }
  }
}
`,
});

/**
 * dx[n, axis_d] (+)= Σ_levels scale_l · inside_d · Σ_corners ∂w/∂frac_d · Σ_f table[entry, f] · dy[n, l·F + f].
 * With accumulate = 1 it adds to dx (tri-planes: three grids add into one dL/dx [N, 3], cleared first).
 */
export const hashGridBackwardInput = defineKernel<HashGridConsts>({
  name: 'hashgrid_backward_input',
  variants: VARIANTS,
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'grid_table', access: 'read' },
    { name: 'level_info', access: 'read' },
    { name: 'dy', access: 'read' },
    { name: 'dx', access: 'rw' },
  ],
  params: [
    { name: 'n', type: 'u32' },
    { name: 'x_stride', type: 'u32' },
    { name: 'axis0', type: 'u32' },
    { name: 'axis1', type: 'u32' },
    { name: 'axis2', type: 'u32' },
    { name: 'dy_stride', type: 'u32' },
    { name: 'dy_offset', type: 'u32' },
    { name: 'levels', type: 'u32' },
    { name: 'shift', type: 'f32' },
    { name: 'accumulate', type: 'u32' },
  ],
  workgroupSize: WG,
  wgsl: ({ dims, features }) => /* wgsl */ `
// hashgrid_backward_input (D = ${dims}, F = ${features}): one thread per point, looping over the levels.
struct Params { n: u32, x_stride: u32, axis0: u32, axis1: u32, axis2: u32, dy_stride: u32, dy_offset: u32, levels: u32, shift: f32, accumulate: u32 }
@group(0) @binding(0) var<storage, read> x_in: array<f32>;
@group(0) @binding(1) var<storage, read> grid_table: array<f32>;
@group(0) @binding(2) var<storage, read> level_info: array<LevelInfo>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;
${gridCommon(dims, features)}

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let n = gid.x + gid.y * groups.x * ${WG}u;
  if (n >= p.n) { return; }
  var dL_dx = array<f32, 3>(0.0, 0.0, 0.0);
  for (var level = 0u; level < p.levels; level++) {
    let info = level_info[level];
    let at = locate(n, info);
    let row = n * p.dy_stride + p.dy_offset + level * F;
    for (var corner = 0u; corner < CORNERS; corner++) {
      // Σ_f table[entry, f] · dL/dy[f]: how much this corner's value moves the loss.
      let entry = corner_entry(info, at.cell, corner);
      var dL_dvalue = 0.0;
      for (var f = 0u; f < F; f++) {
        dL_dvalue += grid_table[entry * F + f] * dy[row + f];
      }
      for (var d = 0u; d < D; d++) {
        // ∂w/∂frac_d: ±1 along d times the other axes' weights.
        var dw = select(-1.0, 1.0, ((corner >> d) & 1u) == 1u);
        for (var e = 0u; e < D; e++) {
          if (e != d) { dw *= select(1.0 - at.frac[e], at.frac[e], ((corner >> e) & 1u) == 1u); }
        }
        dL_dx[d] += dw * dL_dvalue * info.scale * at.inside[d];
      }
    }
  }
  let axes = array<u32, 3>(p.axis0, p.axis1, p.axis2);
  for (var d = 0u; d < D; d++) {
    let index = n * p.x_stride + axes[d];
    dx[index] = select(0.0, dx[index], p.accumulate == 1u) + dL_dx[d];
  }
}
`,
});
