/**
 * Gather and scatter-add along one axis (torch semantics), in two indexing flavours chosen by a compile-time const:
 *
 *   'gather'  torch.gather / scatter_add: index has the rank of the data; element c of the index-shaped grid reads
 *             (or adds to) the data at c with coordinate `axis` replaced by index[c].
 *   'select'  torch.index_select: index is a 1-D list [K]; element c of the output grid (the data's shape with
 *             dim `axis` = K) reads (or adds to) the data at c with coordinate `axis` replaced by index[c_axis].
 *
 * gather_axis   out[i] = x[Σ_{k≠axis} c_k · x_stride_k + idx · x_stride_axis], c = coordinates of i in the output
 *               shape (dim0..). Thread mapping: one thread per output element; out contiguous, x read through its
 *               own strides (so x may be larger than the index grid on the other axes, as torch allows).
 *
 * scatter_add_axis  acc[Σ_{k≠axis} c_k · dst_stride_k + idx · dst_stride_axis] += src[Σ_k c_k · src_stride_k] for
 *               every c of the contribution grid (dim0..: the index's shape for 'gather', src's for 'select').
 *               Thread mapping: one thread per contribution. Adds follow the atomics policy (const `mode`, see
 *               src/kernels/common/atomics.ts): 'float-cas' or deterministic 'fixed-point' (scale in Params).
 *               acc must be zeroed first, and converted with fixedPointToF32 afterwards in fixed-point mode.
 *
 * Indices are i32. An index outside [0, axis_size) reads 0 and adds nothing (torch raises; we cannot without a
 * readback). Rank ≤ 6; unused trailing dimensions have dim 1 and stride 0.
 */
import { defineKernel } from '../runtime/kernel.ts';
import { walkCoordinates } from '../common/coordinates.ts';
import { atomicAddF32, atomicArrayType, type AtomicMode } from '../common/atomics.ts';

export type Indexing = 'gather' | 'select';
export const GATHER_MAX_RANK = 6;
const WORKGROUP = 64;

const names = (prefix: string): string[] => Array.from({ length: GATHER_MAX_RANK }, (_, k) => `${prefix}${k}`);
const u32Params = (prefix: string) => names(prefix).map((name) => ({ name, type: 'u32' as const }));
const members = (prefix: string): string => names(prefix).map((m) => `${m}: u32`).join(', ');

/** WGSL reading the index that element i (coordinate `c_axis` on the axis) uses. */
const indexRead = (indexing: Indexing): string => (indexing === 'gather' ? 'index[i]' : 'index[c_axis]');

export const gatherAxis = defineKernel<{ indexing: Indexing }>({
  name: 'gather_axis',
  variants: [{ indexing: 'gather' }, { indexing: 'select' }],
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'index', access: 'read' },
    { name: 'out', access: 'rw' },
  ],
  params: [
    { name: 'n', type: 'u32' },
    { name: 'rank', type: 'u32' },
    { name: 'axis', type: 'u32' },
    { name: 'axis_size', type: 'u32' },
    ...u32Params('dim'),
    ...u32Params('x_stride'),
  ],
  workgroupSize: WORKGROUP,
  wgsl: ({ indexing }) => /* wgsl */ `
// gather_axis(${indexing}): out[c] = x[c with coordinate axis := ${indexRead(indexing)}]; see gather.ts.
struct Params {
  n: u32, rank: u32, axis: u32, axis_size: u32,
  ${members('dim')},
  ${members('x_stride')},
}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> index: array<i32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (i >= p.n) { return; }
  var x_index = 0u;
  var c_axis = 0u;
  var axis_stride = 0u;
  ${walkCoordinates(GATHER_MAX_RANK, 'i', (k, c) => `if (${k}u == p.axis) { c_axis = ${c}; axis_stride = p.x_stride${k}; } else { x_index += ${c} * p.x_stride${k}; }`)}
  let idx = ${indexRead(indexing)};
  if (idx < 0 || u32(idx) >= p.axis_size) { out[i] = 0.0; return; }
  out[i] = x[x_index + u32(idx) * axis_stride];
}
`,
});

export const scatterAddAxis = defineKernel<{ indexing: Indexing; mode: AtomicMode }>({
  name: 'scatter_add_axis',
  variants: [
    { indexing: 'gather', mode: 'float-cas' },
    { indexing: 'select', mode: 'fixed-point' },
  ],
  bindings: [
    { name: 'index', access: 'read' },
    { name: 'src', access: 'read' },
    { name: 'acc', access: 'rw' },
  ],
  params: [
    { name: 'n', type: 'u32' },
    { name: 'rank', type: 'u32' },
    { name: 'axis', type: 'u32' },
    { name: 'axis_size', type: 'u32' },
    ...u32Params('dim'),
    ...u32Params('src_stride'),
    ...u32Params('dst_stride'),
    { name: 'fixed_scale', type: 'f32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: ({ indexing, mode }) => /* wgsl */ `
// scatter_add_axis(${indexing}, ${mode}): acc[c with coordinate axis := ${indexRead(indexing)}] += src[c]; see gather.ts.
struct Params {
  n: u32, rank: u32, axis: u32, axis_size: u32,
  ${members('dim')},
  ${members('src_stride')},
  ${members('dst_stride')},
  fixed_scale: f32,
}
@group(0) @binding(0) var<storage, read> index: array<i32>;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> acc: ${atomicArrayType(mode)};
@group(0) @binding(3) var<uniform> p: Params;
${atomicAddF32(mode, 'acc', 'p.fixed_scale')}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (i >= p.n) { return; }
  var src_index = 0u;
  var dst_index = 0u;
  var c_axis = 0u;
  var axis_stride = 0u;
  ${walkCoordinates(GATHER_MAX_RANK, 'i', (k, c) => `src_index += ${c} * p.src_stride${k}; if (${k}u == p.axis) { c_axis = ${c}; axis_stride = p.dst_stride${k}; } else { dst_index += ${c} * p.dst_stride${k}; }`)}
  let idx = ${indexRead(indexing)};
  if (idx < 0 || u32(idx) >= p.axis_size) { return; }
  acc_add(dst_index + u32(idx) * axis_stride, src[src_index]);
}
`,
});

// ---------------------------------------------------------------------------------------------------------------
// float64 references (torch's loops, written with coordinates)

function coordsOf(i: number, shape: readonly number[]): number[] {
  const coord = new Array<number>(shape.length);
  for (let k = shape.length - 1; k >= 0; k--) {
    coord[k] = i % shape[k];
    i = Math.floor(i / shape[k]);
  }
  return coord;
}

function flatIndex(coord: readonly number[], shape: readonly number[]): number {
  let index = 0;
  for (let k = 0; k < shape.length; k++) index = index * shape[k] + coord[k];
  return index;
}

/** The index a grid element uses, or -1 when it is out of range. */
function indexFor(indexing: Indexing, index: ArrayLike<number>, i: number, c: readonly number[], axis: number, size: number): number {
  const idx = indexing === 'gather' ? index[i] : index[c[axis]];
  return idx >= 0 && idx < size ? idx : -1;
}

/** gather (torch.gather) or index_select: the output has `gridShape` (index's shape, or x's with dim axis = K). */
export function gatherReference(
  indexing: Indexing,
  x: Float64Array,
  xShape: readonly number[],
  axis: number,
  index: ArrayLike<number>,
  gridShape: readonly number[],
): Float64Array {
  const out = new Float64Array(gridShape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < out.length; i++) {
    const c = coordsOf(i, gridShape);
    const idx = indexFor(indexing, index, i, c, axis, xShape[axis]);
    if (idx < 0) continue;
    c[axis] = idx;
    out[i] = x[flatIndex(c, xShape)];
  }
  return out;
}

/** zeros(shape) with src[c] added at c (axis := index) for every c of `gridShape`; src has shape `srcShape` ⊇ grid. */
export function scatterAddReference(
  indexing: Indexing,
  shape: readonly number[],
  axis: number,
  index: ArrayLike<number>,
  gridShape: readonly number[],
  src: Float64Array,
  srcShape: readonly number[],
): Float64Array {
  const out = new Float64Array(shape.reduce((a, b) => a * b, 1));
  const n = gridShape.reduce((a, b) => a * b, 1);
  for (let i = 0; i < n; i++) {
    const c = coordsOf(i, gridShape);
    const value = src[flatIndex(c, srcShape)];
    const idx = indexFor(indexing, index, i, c, axis, shape[axis]);
    if (idx < 0) continue;
    c[axis] = idx;
    out[flatIndex(c, shape)] += value;
  }
  return out;
}
