/**
 * Window kernels: the adjoints of slicing. A "window" of a tensor is the box start_k ≤ coord_k < start_k + size_k.
 *
 *   pad_window    out (shape dim0..) = zeros, except out[start + c] = src[c] for c inside the window's shape
 *                 (src_dim0..). The backward of slice, in one pass with no separate clear.
 *                 Thread mapping: one thread per output element i; its coordinates c(i) in the output shape;
 *                 src index = Σ_k (c_k − start_k) · src_stride_k when every c_k is inside the window, else 0 is
 *                 written. src and out contiguous.
 *
 *   write_window  dst[dst_offset + Σ_k c_k · dst_stride_k] = src[i] for every element i of src (c(i) its
 *                 coordinates in src's shape dim0..). Writes src into a box of a larger tensor and leaves the rest
 *                 alone: concat is one write_window per input. Thread mapping: one thread per src element; src
 *                 contiguous, dst contiguous in its own shape (its strides in Params).
 *
 * Rank ≤ 6; unused trailing dimensions have dim 1 and stride 0.
 */
import { defineKernel } from '../runtime/kernel.ts';
import { walkCoordinates } from '../common/coordinates.ts';

export const WINDOW_MAX_RANK = 6;
const WORKGROUP = 64;

const names = (prefix: string): string[] => Array.from({ length: WINDOW_MAX_RANK }, (_, k) => `${prefix}${k}`);
const u32Params = (prefix: string) => names(prefix).map((name) => ({ name, type: 'u32' as const }));
const members = (prefix: string): string => names(prefix).map((m) => `${m}: u32`).join(', ');

export const padWindow = defineKernel({
  name: 'pad_window',
  bindings: [
    { name: 'src', access: 'read' },
    { name: 'out', access: 'rw' },
  ],
  params: [{ name: 'n', type: 'u32' }, { name: 'rank', type: 'u32' }, ...u32Params('dim'), ...u32Params('start'), ...u32Params('src_dim'), ...u32Params('src_stride')],
  workgroupSize: WORKGROUP,
  wgsl: () => /* wgsl */ `
// pad_window: out = zeros with src written at the box [start, start + src_dim); see window.ts.
struct Params {
  n: u32, rank: u32,
  ${members('dim')},
  ${members('start')},
  ${members('src_dim')},
  ${members('src_stride')},
}
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (i >= p.n) { return; }
  var src_index = 0u;
  var inside = true;
  // c - start wraps to a huge u32 when c < start, so one comparison tests both ends of the box.
  ${walkCoordinates(WINDOW_MAX_RANK, 'i', (k, c) => `let local = ${c} - p.start${k}; inside = inside && local < p.src_dim${k}; src_index += local * p.src_stride${k};`)}
  if (inside) { out[i] = src[src_index]; } else { out[i] = 0.0; }
}
`,
});

export const writeWindow = defineKernel({
  name: 'write_window',
  bindings: [
    { name: 'src', access: 'read' },
    { name: 'dst', access: 'rw' },
  ],
  params: [{ name: 'n', type: 'u32' }, { name: 'rank', type: 'u32' }, { name: 'dst_offset', type: 'u32' }, ...u32Params('dim'), ...u32Params('dst_stride')],
  workgroupSize: WORKGROUP,
  wgsl: () => /* wgsl */ `
// write_window: dst[dst_offset + Σ c_k · dst_stride_k] = src[i]; see window.ts.
struct Params {
  n: u32, rank: u32, dst_offset: u32,
  ${members('dim')},
  ${members('dst_stride')},
}
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (i >= p.n) { return; }
  var dst_index = p.dst_offset;
  ${walkCoordinates(WINDOW_MAX_RANK, 'i', (k, c) => `dst_index += ${c} * p.dst_stride${k};`)}
  dst[dst_index] = src[i];
}
`,
});

// ---------------------------------------------------------------------------------------------------------------
// float64 references, written with coordinates rather than the kernels' stride arithmetic

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

/** x[starts_0:ends_0, starts_1:ends_1, ...] (starts/ends already normalised: 0 ≤ start ≤ end ≤ dim). */
export function sliceReference(x: Float64Array, shape: readonly number[], starts: readonly number[], ends: readonly number[]): Float64Array {
  const outShape = shape.map((_, k) => ends[k] - starts[k]);
  const out = new Float64Array(outShape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < out.length; i++) {
    const c = coordsOf(i, outShape).map((v, k) => v + starts[k]);
    out[i] = x[flatIndex(c, shape)];
  }
  return out;
}

/** The adjoint of slicing: zeros of `shape` with `src` placed at `starts`. */
export function padReference(src: Float64Array, srcShape: readonly number[], shape: readonly number[], starts: readonly number[]): Float64Array {
  const out = new Float64Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < src.length; i++) {
    const c = coordsOf(i, srcShape).map((v, k) => v + starts[k]);
    out[flatIndex(c, shape)] = src[i];
  }
  return out;
}

/** Concatenation along `axis` of row-major arrays. */
export function concatReference(parts: readonly Float64Array[], shapes: readonly (readonly number[])[], axis: number): Float64Array {
  const outShape = [...shapes[0]];
  outShape[axis] = shapes.reduce((s, sh) => s + sh[axis], 0);
  const out = new Float64Array(outShape.reduce((a, b) => a * b, 1));
  let offset = 0;
  parts.forEach((part, j) => {
    for (let i = 0; i < part.length; i++) {
      const c = coordsOf(i, shapes[j]);
      c[axis] += offset;
      out[flatIndex(c, outShape)] = part[i];
    }
    offset += shapes[j][axis];
  });
  return out;
}
