/**
 * Reductions (sum, max, min) over any set of axes, deterministic: each output is reduced in a fixed order.
 *
 * Thread mapping: one thread per (output element, chunk). The reduced elements of an output are numbered
 * r = 0..reduce_n-1 (row-major over the reduced axes) and split into `chunks` contiguous ranges of `chunk_len`;
 * the thread folds its range in order. With chunks > 1 a second dispatch of the same kernel folds the partials
 * (laid out [out_n, chunks]), so a full reduction of millions of elements uses many threads, not one.
 *
 * Layout: input contiguous in its own shape. The output element's kept coordinates and the reduced coordinates
 * reach the input through strides in Params (out_dim/out_stride for kept axes, red_dim/red_stride for reduced
 * axes; rank ≤ 6 each). Output: partial[out_i * chunks + chunk] (contiguous), times `scale` (mean = sum · 1/n).
 */
import { defineKernel } from '../runtime/kernel.ts';

export type ReduceOp = 'sum' | 'max' | 'min';
export const REDUCE_MAX_RANK = 6;
const WORKGROUP = 64;

/** `prefix0, prefix1, …` (with `suffix` after each: struct members `out_dim0: u32, …`). */
const list = (prefix: string, suffix = ''): string => Array.from({ length: REDUCE_MAX_RANK }, (_, k) => `${prefix}${k}${suffix}`).join(', ');
const u32s = (prefix: string) => Array.from({ length: REDUCE_MAX_RANK }, (_, k) => ({ name: `${prefix}${k}`, type: 'u32' as const }));

const IDENTITY: Record<ReduceOp, string> = { sum: '0.0', max: '-3.402823e38', min: '3.402823e38' };
const COMBINE: Record<ReduceOp, string> = { sum: 'acc + v', max: 'max(acc, v)', min: 'min(acc, v)' };

export const reduceKernel = defineKernel<{ op: ReduceOp }>({
  name: 'reduce',
  variants: [{ op: 'sum' }, { op: 'max' }],
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'partial', access: 'rw' },
  ],
  params: [
    { name: 'out_n', type: 'u32' },
    { name: 'chunks', type: 'u32' },
    { name: 'chunk_len', type: 'u32' },
    { name: 'reduce_n', type: 'u32' },
    { name: 'out_rank', type: 'u32' },
    { name: 'red_rank', type: 'u32' },
    ...u32s('out_dim'),
    ...u32s('out_stride'),
    ...u32s('red_dim'),
    ...u32s('red_stride'),
    { name: 'scale', type: 'f32' },
  ],
  workgroupSize: WORKGROUP,
  wgsl: ({ op }) => /* wgsl */ `
// reduce(${op}) over a set of axes; see the header of reduce.ts for the mapping.
struct Params {
  out_n: u32, chunks: u32, chunk_len: u32, reduce_n: u32, out_rank: u32, red_rank: u32,
  ${list('out_dim', ': u32')},
  ${list('out_stride', ': u32')},
  ${list('red_dim', ': u32')},
  ${list('red_stride', ': u32')},
  scale: f32,
}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> partial: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let t = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (t >= p.out_n * p.chunks) { return; }
  let out_i = t / p.chunks;
  let chunk = t % p.chunks;

  let out_dims = array<u32, ${REDUCE_MAX_RANK}>(${list('p.out_dim')});
  let out_strides = array<u32, ${REDUCE_MAX_RANK}>(${list('p.out_stride')});
  let red_dims = array<u32, ${REDUCE_MAX_RANK}>(${list('p.red_dim')});
  let red_strides = array<u32, ${REDUCE_MAX_RANK}>(${list('p.red_stride')});

  var base = 0u;
  var rest = out_i;
  for (var k = i32(p.out_rank) - 1; k >= 0; k--) {
    base += (rest % out_dims[k]) * out_strides[k];
    rest /= out_dims[k];
  }

  let r_begin = chunk * p.chunk_len;
  let r_end = min(r_begin + p.chunk_len, p.reduce_n);
  var acc = ${IDENTITY[op]};
  for (var r = r_begin; r < r_end; r++) {
    var offset = base;
    var q = r;
    for (var k = i32(p.red_rank) - 1; k >= 0; k--) {
      offset += (q % red_dims[k]) * red_strides[k];
      q /= red_dims[k];
    }
    let v = x[offset];
    acc = ${COMBINE[op]};
  }
  partial[t] = acc * p.scale;
}
`,
});

/** float64 reference: reduce `x` (shape `shape`) over `axes`, keeping reduced axes as size 1. */
export function reduceReference(op: ReduceOp, x: Float64Array, shape: readonly number[], axes: readonly number[], scale = 1): Float64Array {
  const outShape = shape.map((d, k) => (axes.includes(k) ? 1 : d));
  const outN = outShape.reduce((a, b) => a * b, 1);
  const out = new Float64Array(outN).fill(op === 'sum' ? 0 : op === 'max' ? -Infinity : Infinity);
  for (let i = 0; i < x.length; i++) {
    // Coordinates of i, then the output index with the reduced axes collapsed.
    let rest = i;
    let outIndex = 0;
    let outStride = 1;
    for (let k = shape.length - 1; k >= 0; k--) {
      const c = rest % shape[k];
      rest = Math.floor(rest / shape[k]);
      if (!axes.includes(k)) outIndex += c * outStride;
      outStride *= outShape[k];
    }
    const v = x[i];
    out[outIndex] = op === 'sum' ? out[outIndex] + v : op === 'max' ? Math.max(out[outIndex], v) : Math.min(out[outIndex], v);
  }
  return out.map((v) => v * scale);
}
