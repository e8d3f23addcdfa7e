/**
 * Multiresolution hash-grid encoding (Müller et al. 2022; tiny-cuda-nn `kernel_grid`, torch-ngp `gridencoder`):
 * forward, backward into the table, and the input gradient. Geometry, layout and config: `hashgrid-layout.ts`;
 * float64 reference: `hashgrid.ref.ts`.
 *
 * Buffers (f32 unless said; a `Feature` is one table row of F floats: f32, vec2f or vec4f):
 *   x           [N, x_stride] rows; the grid's D axes are columns axis0, axis1(, axis2) of each row. A plain 3-D
 *               grid reads x [N, 3] with axes 0, 1, 2; a tri-plane's YZ plane reads x [N, 3] with axes 1, 2.
 *   grid_table  [total_entries] Features: level l's entries are rows offset_l … offset_l + size_l − 1. The
 *               forward also reads an f16 copy (`table` = 'f16', made by hashgrid_pack_f16): one u32 per row for
 *               F = 2 (pack2x16float of the two features), one vec2u for F = 4.
 *   level_info  one LevelInfo per level {offset, size, vertices, hashed: u32; scale: f32} (5 words each).
 *   y / dy      [N, out_stride] floats per row; level l's Feature at float column out_offset + l·F (so a tri-plane's
 *               three grids write straight into their slices of one [N, 3·L·F] buffer, with no concat or
 *               transpose). out_stride and out_offset are multiples of F, so the Feature is read/written whole.
 *   grad_table  [total_entries · F] scalar atomic cells (the backward's accumulator; see the atomics policy).
 *   dx          [N, x_stride]: the input gradient, written (or added, `accumulate` = 1) at the axis columns.
 *
 * Thread mapping:
 *   hashgrid_forward, hashgrid_backward: one thread per (point, level), level = workgroup_id.y (as tiny-cuda-nn and
 *     torch-ngp): the threads of a workgroup share one level's table block. Points n = (wid.x + wid.z · groups.x) ·
 *     64 + lid.x, so more than 65535 · 64 points fold into z.
 *   hashgrid_backward_input: one thread per point, looping over the levels, so it owns its row of dL/dx and adds
 *     without atomics (deterministic).
 *   hashgrid_pack_f16: one thread per table row (rows past 65535 · 64 fold into the grid's y).
 *
 * Why an f16 table for rendering: lavapipe turns each load whose address differs across lanes into one
 * bounds-checked scalar load per lane and per 32-bit component, and a forward's 2^D corner reads are most of its
 * time. Two f16 features in one u32 halve those table loads. Measured (2-core lavapipe, interleaved medians):
 * fit-scene's grid (16 levels × 2, 2^17), 131,072 uniform points: 101 ms / 183 CPU-ms against 130 / 235
 * (`npm run bench -- --only hashgrid`); a trained model's 128² frame's 123,575 sample points: 114 CPU-ms against
 * 157. The features round to f16 (relative error ≤ 2^-11; instant-ngp stores its whole table in f16): that
 * model's held-out PSNR was unchanged to 4 decimals (32.5613 dB) and no pixel moved by more than 1.8e-4.
 * Training reads f32 only.
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

/** How the forward reads the table: f32 rows, or the f16 copy of `hashGridPackF16` (F = 2 or 4). */
export type HashTablePrecision = 'f32' | 'f16';

export interface HashGridForwardConsts extends HashGridConsts {
  table: HashTablePrecision;
}

export interface HashGridBackwardConsts extends HashGridConsts {
  atomics: AtomicMode;
}

/** Threads per workgroup along the points axis. */
export const HASHGRID_WORKGROUP = 64;
const WG = HASHGRID_WORKGROUP;

/** 4-byte words per LevelInfo record (offset, size, vertices, hashed: u32; scale: f32). */
export const LEVEL_INFO_WORDS = 5;

const AXES = ['x', 'y', 'z'];

/** WGSL type of one table row / one level's output: F features. */
const featureType = (features: number): string => (features === 1 ? 'f32' : `vec${features}f`);
/** Component accessors of a Feature value ('' for a scalar). */
const featureComponents = (features: number): string[] => (features === 1 ? [''] : AXES.concat('w').slice(0, features).map((c) => `.${c}`));

/** The D-linear weight of a corner: the product of its per-axis weights. */
const product = (weights: string, dims: number): string => AXES.slice(0, dims).map((a) => `${weights}.${a}`).join(' * ');

/** Σ_f a[f] · b[f] of two Feature values (WGSL's dot takes vectors only). */
const featureDot = (a: string, b: string, features: number): string => (features === 1 ? `${a} * ${b}` : `dot(${a}, ${b})`);

/**
 * The parts every kernel of the family shares: types, LevelInfo, locating a point, indexing a corner. Everything
 * D-dependent is written out for the given D with vector types (vecDu / vecDf), so no private array is indexed
 * dynamically (lavapipe would keep such arrays in memory).
 */
function gridCommon(dims: number, features: number): string {
  const axes = AXES.slice(0, dims);
  const hashTerms = axes.map((a, d) => `(vertex.${a} * ${HASH_PRIMES[d]}u)`).join(' ^ ');
  let denseIndex = `vertex.${axes[dims - 1]}`;
  for (let d = dims - 2; d >= 0; d--) denseIndex = `vertex.${axes[d]} + info.vertices * (${denseIndex})`;
  // Product of all weights but axis d, for each d: ∂w/∂frac_d up to its sign.
  const others = axes.map((_, d) => axes.filter((__, e) => e !== d).map((a) => `weights.${a}`).join(' * ')).join(', ');
  return /* wgsl */ `
const F: u32 = ${features}u;          // features per level
const CORNERS: u32 = ${2 ** dims}u;    // 2^D corners of a cell
alias Feature = ${featureType(features)};   // the F features of one table row
alias VecU = vec${dims}u;        // one per input dimension
alias VecF = vec${dims}f;

struct LevelInfo { offset: u32, size: u32, vertices: u32, hashed: u32, scale: f32 }

// The grid's D coordinates of point n: columns axis0, axis1(, axis2) of row n of x.
fn point_coords(n: u32) -> VecF {
  let row = n * p.x_stride;
  return VecF(${axes.map((_, d) => `x_in[row + p.axis${d}]`).join(', ')});
}

// Where a point falls in a level: the cell (its lower vertex) and the fraction within it, in [0, 1]^D.
struct Located { cell: VecU, frac: VecF }

fn locate(x: VecF, info: LevelInfo) -> Located {
  let pos = clamp(x, VecF(0.0), VecF(1.0)) * info.scale + p.shift;
  // A point on the grid's upper face uses the last cell, with fraction 1.
  let cell = min(VecU(floor(pos)), VecU(info.vertices - 2u));
  return Located(cell, pos - VecF(cell));
}

// Corner \`corner\` of a cell: bit d set = the upper vertex along axis d.
fn corner_offset(corner: u32) -> VecU {
  return (VecU(corner) >> VecU(${axes.map((_, d) => `${d}u`).join(', ')})) & VecU(1u);
}

// Per-axis interpolation weights of a corner: frac_d on the upper side, 1 − frac_d on the lower.
fn axis_weights(frac: VecF, upper: VecU) -> VecF {
  return select(1.0 - frac, frac, upper == VecU(1u));
}

// Table row of a vertex: dense (x fastest) when the level fits, else tiny-cuda-nn's coherent prime hash mod 2^T.
fn vertex_entry(info: LevelInfo, vertex: VecU) -> u32 {
  if (info.hashed == 0u) {
    return info.offset + ${denseIndex};
  }
  return info.offset + ((${hashTerms}) & (info.size - 1u));  // hashed levels hold 2^T entries: mod is a mask
}

// ∂w/∂frac_d of a corner for every d: ±1 (upper/lower side) times the other axes' weights.
fn weight_gradient(weights: VecF, upper: VecU) -> VecF {
  return select(VecF(-1.0), VecF(1.0), upper == VecU(1u)) * VecF(${others});
}
`;
}

const POINT_LEVEL_MAIN = `@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let n = (wid.x + wid.z * groups.x) * ${WG}u + lid.x;
  let level = wid.y;
  if (n >= p.n) { return; }
  let info = level_info[level];
  let at = locate(point_coords(n), info);`;

const VARIANTS: HashGridConsts[] = [
  { dims: 3, features: 2 },
  { dims: 2, features: 1 },
  { dims: 3, features: 4 },
];

/** WGSL element type of an f16 table row: F halves packed two per u32. */
const packedRowType = (features: number): string => (features === 2 ? 'u32' : 'vec2u');

/** The table row reader of the forward: a Feature from f32 storage, or unpacked from the f16 copy. */
function tableRowReader(table: HashTablePrecision, features: number): string {
  if (table === 'f32') return `fn table_row(entry: u32) -> Feature { return grid_table[entry]; }`;
  if (features === 2) return `fn table_row(entry: u32) -> Feature { return unpack2x16float(grid_table[entry]); }`;
  return `fn table_row(entry: u32) -> Feature {
  let halves = grid_table[entry];  // features 0, 1 in .x; 2, 3 in .y
  return Feature(unpack2x16float(halves.x), unpack2x16float(halves.y));
}`;
}

/** y[n, out_offset + l·F + f] = Σ_corners w · table[entry, f]. */
export const hashGridForward = defineKernel<HashGridForwardConsts>({
  name: 'hashgrid_forward',
  variants: [
    ...VARIANTS.map((v) => ({ ...v, table: 'f32' as const })),
    { dims: 3, features: 2, table: 'f16' },
    { dims: 3, features: 4, table: 'f16' },
  ],
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
  wgsl: ({ dims, features, table }) => {
    if (table === 'f16' && features === 1) throw new Error('hashgrid_forward: an f16 table needs F = 2 or 4 (F = 1 saves no loads)');
    return /* wgsl */ `
// hashgrid_forward (D = ${dims}, F = ${features}, ${table} table): one thread per (point, level = workgroup_id.y).
struct Params { n: u32, x_stride: u32, axis0: u32, axis1: u32, axis2: u32, out_stride: u32, out_offset: u32, shift: f32 }
@group(0) @binding(0) var<storage, read> x_in: array<f32>;
@group(0) @binding(1) var<storage, read> grid_table: array<${table === 'f32' ? 'Feature' : packedRowType(features)}>;
@group(0) @binding(2) var<storage, read> level_info: array<LevelInfo>;
@group(0) @binding(3) var<storage, read_write> y_out: array<Feature>;
@group(0) @binding(4) var<uniform> p: Params;
${gridCommon(dims, features)}
${tableRowReader(table, features)}

${POINT_LEVEL_MAIN}
  var acc = Feature(0.0);
  for (var corner = 0u; corner < CORNERS; corner++) {
    let upper = corner_offset(corner);
    let weights = axis_weights(at.frac, upper);
    acc += ${product('weights', dims)} * table_row(vertex_entry(info, at.cell + upper));
  }
  // out_stride and out_offset count floats and are multiples of F.
  y_out[(n * p.out_stride + p.out_offset) / F + level] = acc;
}
`;
  },
});

/** Largest finite f16: pack2x16float of anything beyond it is undefined in WGSL, so rows are clamped first. */
export const F16_MAX = 65504;

/**
 * packed[e] = the f16 copy of table row e, for the forward's `table: 'f16'` (F = 2: one u32 = pack2x16float(f0, f1),
 * f0 in the low half; F = 4: a vec2u, features 0–1 then 2–3). Each value is clamped to ±F16_MAX and rounded to an
 * f16 neighbour (lavapipe rounds to nearest even; WGSL lets an implementation take either neighbour).
 */
export const hashGridPackF16 = defineKernel<{ features: 2 | 4 }>({
  name: 'hashgrid_pack_f16',
  variants: [{ features: 2 }, { features: 4 }],
  bindings: [
    { name: 'table', access: 'read' },
    { name: 'packed', access: 'rw' },
  ],
  params: [{ name: 'rows', type: 'u32' }],
  workgroupSize: WG,
  wgsl: ({ features }) => /* wgsl */ `
// hashgrid_pack_f16 (F = ${features}): one thread per table row.
struct Params { rows: u32 }
@group(0) @binding(0) var<storage, read> table: array<vec${features}f>;
@group(0) @binding(1) var<storage, read_write> packed: array<${packedRowType(features)}>;
@group(0) @binding(2) var<uniform> p: Params;

fn half_pair(v: vec2f) -> u32 { return pack2x16float(clamp(v, vec2f(-${F16_MAX}.0), vec2f(${F16_MAX}.0))); }

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let row = gid.x + gid.y * groups.x * ${WG}u;
  if (row >= p.rows) { return; }
  let v = table[row];
  packed[row] = ${features === 2 ? 'half_pair(v)' : 'vec2u(half_pair(v.xy), half_pair(v.zw))'};
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
@group(0) @binding(2) var<storage, read> dy: array<Feature>;
@group(0) @binding(3) var<storage, read_write> grad_table: ${atomicArrayType(atomics)};
@group(0) @binding(4) var<uniform> p: Params;
${gridCommon(dims, features)}
${atomicAddF32(atomics, 'grad_table', 'p.fixed_scale')}

${POINT_LEVEL_MAIN}
  let dL_dy = dy[(n * p.dy_stride + p.dy_offset) / F + level];
  for (var corner = 0u; corner < CORNERS; corner++) {
    let upper = corner_offset(corner);
    let weights = axis_weights(at.frac, upper);
    let w = ${product('weights', dims)};
    if (w == 0.0) { continue; }  // a point on a cell face adds nothing to the far corners: skip the atomics
    let first = vertex_entry(info, at.cell + upper) * F;
    let contribution = w * dL_dy;
${featureComponents(features)
  .map((c, f) => `    if (contribution${c} != 0.0) { grad_table_add(first + ${f}u, contribution${c}); }`)
  .join('\n')}
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
@group(0) @binding(1) var<storage, read> grid_table: array<Feature>;
@group(0) @binding(2) var<storage, read> level_info: array<LevelInfo>;
@group(0) @binding(3) var<storage, read> dy: array<Feature>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;
${gridCommon(dims, features)}

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let n = gid.x + gid.y * groups.x * ${WG}u;
  if (n >= p.n) { return; }
  let x = point_coords(n);
  var dL_dx = VecF(0.0);
  for (var level = 0u; level < p.levels; level++) {
    let info = level_info[level];
    let at = locate(x, info);
    let dL_dy = dy[(n * p.dy_stride + p.dy_offset) / F + level];
    var dL_dfrac = VecF(0.0);
    for (var corner = 0u; corner < CORNERS; corner++) {
      let upper = corner_offset(corner);
      // How much this corner's value moves the loss: Σ_f table[entry, f] · dL/dy[f].
      let dL_dvalue = ${featureDot('grid_table[vertex_entry(info, at.cell + upper)]', 'dL_dy', features)};
      dL_dfrac += weight_gradient(axis_weights(at.frac, upper), upper) * dL_dvalue;
    }
    dL_dx += dL_dfrac * info.scale;
  }
  // The clamp to [0, 1] passes no derivative from outside.
  dL_dx *= select(VecF(0.0), VecF(1.0), (x >= VecF(0.0)) & (x <= VecF(1.0)));
${Array.from({ length: dims }, (_, d) => `  dx[n * p.x_stride + p.axis${d}] = select(0.0, dx[n * p.x_stride + p.axis${d}], p.accumulate == 1u) + dL_dx.${AXES[d]};`).join('\n')}
}
`,
});
