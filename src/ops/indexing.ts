/**
 * Index and shape ops: slice/narrow, concat, indexSelect, gather (torch semantics) and scatterAdd.
 *
 * Forward and backward are adjoint pairs of one kernel family each: slice ↔ pad_window, concat ↔ slices,
 * gather/indexSelect ↔ scatter_add. Scatter-adds follow the atomics policy of src/kernels/common/atomics.ts:
 * `scatterPolicy` sets the mode used by scatterAdd and by the backward of gather/indexSelect ('float-cas' by
 * default: exact f32 adds in a scheduling-dependent order; 'fixed-point' for bitwise-deterministic sums).
 *
 * Indices are i32 tensors. An index outside [0, size) selects 0 and receives no gradient (torch raises instead;
 * checking would need a readback, which ops never do).
 */
import { defineOp } from '../autograd/op.ts';
import { runtime } from '../kernels/runtime/runtime.ts';
import { padWindow, writeWindow, WINDOW_MAX_RANK } from '../kernels/indexing/window.ts';
import { gatherAxis, scatterAddAxis, GATHER_MAX_RANK, type Indexing } from '../kernels/indexing/gather.ts';
import { DEFAULT_FIXED_POINT_BITS, fixedPointScale, fixedPointToF32, type AtomicMode } from '../kernels/common/atomics.ts';
import { Tensor, shapeString, sizeOf, stridesOf, viewPrefix, type Shape } from '../tensor/tensor.ts';
import { zeros } from '../tensor/create.ts';
import { stridedCopy } from './elementwise.ts';

export type { AtomicMode } from '../kernels/common/atomics.ts';

/** The atomics mode (and fixed-point resolution) of scatter-adds that are not given one explicitly. */
export const scatterPolicy: { mode: AtomicMode; fixedPointBits: number } = {
  mode: 'float-cas',
  fixedPointBits: DEFAULT_FIXED_POINT_BITS,
};

export interface ScatterOptions {
  mode?: AtomicMode;
  /** Fractional bits of the fixed-point mode: range ±2^(31−bits), resolution 2^−bits. */
  fixedPointBits?: number;
}

function normaliseAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw new Error(`${op}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}

function checkF32(op: string, t: Tensor, what: string): void {
  if (t.dtype !== 'f32') throw new Error(`${op}: ${what} must be f32, got ${t}`);
}

function checkIndex(op: string, index: Tensor): void {
  if (index.dtype !== 'i32') throw new Error(`${op}: index must be an i32 tensor, got ${index}`);
}

function checkRank(op: string, shape: Shape, maxRank: number): void {
  if (shape.length > maxRank) throw new Error(`${op}: rank ${shape.length} of ${shapeString(shape)} exceeds the supported ${maxRank}`);
}

// ---------------------------------------------------------------------------------------------------------------
// slice / narrow

/** zeros(shape) with src placed at `starts` (the adjoint of slicing); not recorded. */
function padRaw(src: Tensor, shape: Shape, starts: readonly number[]): Tensor {
  const out = Tensor.empty(shape);
  const n = sizeOf(shape);
  if (n === 0) return out;
  if (src.size === 0) {
    runtime().clear(out.view);
    return out;
  }
  const srcStrides = stridesOf(src.shape);
  const params: Record<string, number> = { n, rank: shape.length };
  for (let k = 0; k < WINDOW_MAX_RANK; k++) {
    params[`dim${k}`] = shape[k] ?? 1;
    params[`start${k}`] = starts[k] ?? 0;
    params[`src_dim${k}`] = src.shape[k] ?? 1;
    params[`src_stride${k}`] = srcStrides[k] ?? 0;
  }
  runtime().dispatch(padWindow, undefined, [src.view, out.view], params, n);
  return out;
}

/**
 * Whether the box [starts, starts + shape) of x is its first sizeOf(shape) elements: every start 0, the axes
 * before some axis k of size 1, the axes after k whole (a prefix of rows, the common `narrow(x, 0, 0, n)`).
 */
function isPrefix(x: Tensor, starts: readonly number[], shape: Shape): boolean {
  if (starts.some((s) => s !== 0)) return false;
  const k = shape.findIndex((d, j) => d !== x.shape[j]);
  if (k < 0) return true;
  return x.shape.slice(0, k).every((d) => d === 1) && shape.slice(k + 1).every((d, j) => d === x.shape[k + 1 + j]);
}

/** The element box [starts, starts + shape) of x (materialised, or shared when it is a prefix); not recorded. */
function sliceRaw(x: Tensor, starts: readonly number[], shape: Shape): Tensor {
  // A prefix shares x's storage (as reshape does): no copy. Tensors are not written in place once made.
  if (isPrefix(x, starts, shape)) return viewPrefix(x, shape);
  const strides = stridesOf(x.shape);
  const offset = starts.reduce((s, start, k) => s + start * strides[k], 0);
  return stridedCopy(x, shape, strides, offset);
}

const sliceOp = defineOp({
  name: 'slice',
  forward(ctx, x: Tensor, starts: number[], shape: number[]) {
    ctx.save(x);
    return sliceRaw(x, starts, shape);
  },
  backward(ctx, dy) {
    const starts = ctx.attrs[0] as number[];
    return [() => padRaw(dy, ctx.saved[0].shape, starts)];
  },
});

/**
 * x[starts_0:ends_0, starts_1:ends_1, ...] like Python slicing (step 1): missing trailing axes are taken whole,
 * negative positions count from the end, positions are clamped to [0, dim], and an end before its start gives an
 * empty axis.
 */
export function slice(x: Tensor, starts: readonly number[], ends: readonly number[]): Tensor {
  checkRank('slice', x.shape, WINDOW_MAX_RANK);
  if (starts.length > x.rank || ends.length > x.rank) {
    throw new Error(`slice: ${starts.length} starts / ${ends.length} ends for ${shapeString(x.shape)} (rank ${x.rank})`);
  }
  const position = (v: number, dim: number): number => {
    if (!Number.isInteger(v)) throw new Error(`slice: positions must be integers, got ${v} for ${shapeString(x.shape)}`);
    return Math.min(Math.max(v < 0 ? v + dim : v, 0), dim);
  };
  const begin = x.shape.map((d, k) => position(starts[k] ?? 0, d));
  const shape = x.shape.map((d, k) => Math.max(0, position(ends[k] ?? d, d) - begin[k]));
  // Integer tensors (index lists) slice as prefixes, which share storage; a copy would go through f32 lanes.
  if (x.dtype !== 'f32' && !isPrefix(x, begin, shape)) {
    throw new Error(`slice: ${x} is ${x.dtype}; only a prefix of an integer tensor can be sliced (e.g. narrow(x, 0, 0, n)), got [${begin}] + [${shape}]`);
  }
  return sliceOp(x, begin, shape);
}

/** `length` elements of x along `axis` from `start` (torch.narrow; no clamping: the range must fit). */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const a = normaliseAxis('narrow', axis, x.rank);
  const dim = x.shape[a];
  const s = start < 0 ? start + dim : start;
  if (!Number.isInteger(s) || !Number.isInteger(length) || s < 0 || length < 0 || s + length > dim) {
    throw new Error(`narrow: start ${start}, length ${length} do not fit axis ${axis} (size ${dim}) of ${shapeString(x.shape)}`);
  }
  const starts = x.shape.map((_, k) => (k === a ? s : 0));
  const ends = x.shape.map((d, k) => (k === a ? s + length : d));
  return slice(x, starts, ends);
}

// ---------------------------------------------------------------------------------------------------------------
// concat

const concatOp = defineOp({
  name: 'concat',
  // The input shapes travel as an attribute, so backward needs no saved tensors.
  forward(_ctx, axis: number, _shapes: number[][], ...parts: Tensor[]) {
    const outShape = [...parts[0].shape];
    outShape[axis] = parts.reduce((s, t) => s + t.shape[axis], 0);
    const out = Tensor.empty(outShape);
    const dstStrides = stridesOf(outShape);
    let offset = 0;
    for (const part of parts) {
      if (part.size > 0) {
        const params: Record<string, number> = { n: part.size, rank: outShape.length, dst_offset: offset * dstStrides[axis] };
        for (let k = 0; k < WINDOW_MAX_RANK; k++) {
          params[`dim${k}`] = part.shape[k] ?? 1;
          params[`dst_stride${k}`] = dstStrides[k] ?? 0;
        }
        runtime().dispatch(writeWindow, undefined, [part.view, out.view], params, part.size);
      }
      offset += part.shape[axis];
    }
    return out;
  },
  backward(ctx, dy) {
    const [axis, shapes] = ctx.attrs as [number, number[][]];
    let offset = 0;
    return shapes.map((shape) => {
      const starts = shape.map((_, k) => (k === axis ? offset : 0));
      offset += shape[axis];
      return () => sliceRaw(dy, starts, shape);
    });
  },
});

/** Joins tensors along an existing axis; all other dimensions must agree. */
export function concat(tensors: readonly Tensor[], axis: number): Tensor {
  if (tensors.length === 0) throw new Error('concat: needs at least one tensor');
  const first = tensors[0];
  const a = normaliseAxis('concat', axis, first.rank);
  checkRank('concat', first.shape, WINDOW_MAX_RANK);
  tensors.forEach((t, j) => {
    checkF32('concat', t, `tensor ${j}`);
    if (t.rank !== first.rank || t.shape.some((d, k) => k !== a && d !== first.shape[k])) {
      throw new Error(
        `concat: tensor ${j} ${shapeString(t.shape)} does not match tensor 0 ${shapeString(first.shape)} outside axis ${a}`,
      );
    }
  });
  return concatOp(a, tensors.map((t) => [...t.shape]), ...tensors);
}

// ---------------------------------------------------------------------------------------------------------------
// gather / indexSelect / scatterAdd

/** out[c] = x[c with axis := index]; `grid` is the output shape; not recorded. */
function gatherRaw(indexing: Indexing, x: Tensor, axis: number, index: Tensor, grid: Shape): Tensor {
  const out = Tensor.empty(grid);
  const n = sizeOf(grid);
  if (n === 0) return out;
  const xStrides = stridesOf(x.shape);
  const params: Record<string, number> = { n, rank: grid.length, axis, axis_size: x.shape[axis] };
  for (let k = 0; k < GATHER_MAX_RANK; k++) {
    params[`dim${k}`] = grid[k] ?? 1;
    params[`x_stride${k}`] = xStrides[k] ?? 0;
  }
  runtime().dispatch(gatherAxis, { indexing }, [x.view, index.view, out.view], params, n);
  return out;
}

/** zeros(shape) with src[c] added at (c with axis := index) for c in `grid`; not recorded. */
function scatterRaw(indexing: Indexing, shape: Shape, axis: number, index: Tensor, grid: Shape, src: Tensor, options: ScatterOptions = {}): Tensor {
  const mode = options.mode ?? scatterPolicy.mode;
  const bits = options.fixedPointBits ?? scatterPolicy.fixedPointBits;
  const scale = fixedPointScale(bits);
  const out = zeros(shape);
  const n = sizeOf(grid);
  if (n === 0 || out.size === 0) return out;
  const srcStrides = stridesOf(src.shape);
  const dstStrides = stridesOf(shape);
  const params: Record<string, number> = { n, rank: grid.length, axis, axis_size: shape[axis], fixed_scale: scale };
  for (let k = 0; k < GATHER_MAX_RANK; k++) {
    params[`dim${k}`] = grid[k] ?? 1;
    params[`src_stride${k}`] = srcStrides[k] ?? 0;
    params[`dst_stride${k}`] = dstStrides[k] ?? 0;
  }
  runtime().dispatch(scatterAddAxis, { indexing, mode }, [index.view, src.view, out.view], params, n);
  if (mode === 'fixed-point') {
    runtime().dispatch(fixedPointToF32, undefined, [out.view], { n: out.size, inv_scale: 1 / scale }, out.size);
  }
  return out;
}

const indexSelectOp = defineOp({
  name: 'indexSelect',
  forward(ctx, x: Tensor, axis: number, index: Tensor) {
    ctx.save(x, index);
    const grid = x.shape.map((d, k) => (k === axis ? index.size : d));
    return gatherRaw('select', x, axis, index, grid);
  },
  backward(ctx, dy) {
    const [x, index] = ctx.saved;
    const axis = ctx.attrs[0] as number;
    return [() => scatterRaw('select', x.shape, axis, index, dy.shape, dy), null];
  },
});

/** torch.index_select: the slices x[..., index[k], ...] along `axis`, for an i32 index list [K]. */
export function indexSelect(x: Tensor, axis: number, index: Tensor): Tensor {
  checkF32('indexSelect', x, 'x');
  checkIndex('indexSelect', index);
  checkRank('indexSelect', x.shape, GATHER_MAX_RANK);
  const a = normaliseAxis('indexSelect', axis, x.rank);
  if (index.rank !== 1) throw new Error(`indexSelect: index must be 1-D, got ${shapeString(index.shape)}`);
  return indexSelectOp(x, a, index);
}

const indexAddOp = defineOp({
  name: 'indexAdd',
  forward(ctx, shape: number[], axis: number, index: Tensor, src: Tensor, options: ScatterOptions) {
    ctx.save(index);
    return scatterRaw('select', shape, axis, index, src.shape, src, options);
  },
  backward(ctx, dOut) {
    const [index] = ctx.saved;
    const axis = ctx.attrs[1] as number;
    return [null, () => gatherRaw('select', dOut, axis, index, dOut.shape.map((d, k) => (k === axis ? index.size : d)))];
  },
});

/**
 * torch's zeros(shape).index_add_(axis, index, src): the slices of src [..., K, ...] added at positions index[k]
 * along `axis` (the adjoint of indexSelect). With distinct indices it puts rows in place (a scatter of rows).
 * Adds follow `options.mode` (default `scatterPolicy.mode`).
 */
export function indexAdd(shape: readonly number[], axis: number, index: Tensor, src: Tensor, options: ScatterOptions = {}): Tensor {
  checkF32('indexAdd', src, 'src');
  checkIndex('indexAdd', index);
  checkRank('indexAdd', shape, GATHER_MAX_RANK);
  const a = normaliseAxis('indexAdd', axis, shape.length);
  if (index.rank !== 1 || src.rank !== shape.length || src.shape.some((d, k) => (k === a ? d !== index.size : d !== shape[k]))) {
    throw new Error(`indexAdd: src ${shapeString(src.shape)} must be ${shapeString(shape)} with axis ${a} of index's length (index ${shapeString(index.shape)})`);
  }
  return indexAddOp([...shape], a, index, src, { ...options });
}

const gatherOp = defineOp({
  name: 'gather',
  forward(ctx, x: Tensor, axis: number, index: Tensor) {
    ctx.save(x, index);
    return gatherRaw('gather', x, axis, index, index.shape);
  },
  backward(ctx, dy) {
    const [x, index] = ctx.saved;
    const axis = ctx.attrs[0] as number;
    return [() => scatterRaw('gather', x.shape, axis, index, index.shape, dy), null];
  },
});

/**
 * torch.gather: out[c] = x[c with coordinate `axis` replaced by index[c]]. index is i32 with x's rank and
 * index.shape[d] ≤ x.shape[d] for d ≠ axis; the output has index's shape.
 */
export function gather(x: Tensor, axis: number, index: Tensor): Tensor {
  checkF32('gather', x, 'x');
  checkIndex('gather', index);
  checkRank('gather', x.shape, GATHER_MAX_RANK);
  const a = normaliseAxis('gather', axis, x.rank);
  if (index.rank !== x.rank || index.shape.some((d, k) => k !== a && d > x.shape[k])) {
    throw new Error(
      `gather: index ${shapeString(index.shape)} must have the rank of x ${shapeString(x.shape)} and fit it outside axis ${a}`,
    );
  }
  return gatherOp(x, a, index);
}

const scatterAddOp = defineOp({
  name: 'scatterAdd',
  forward(ctx, shape: number[], axis: number, index: Tensor, src: Tensor, options: ScatterOptions) {
    ctx.save(index, src);
    return scatterRaw('gather', shape, axis, index, index.shape, src, options);
  },
  backward(ctx, dOut) {
    const [index, src] = ctx.saved;
    const axis = ctx.attrs[1] as number;
    return [
      null,
      () => {
        const picked = gatherRaw('gather', dOut, axis, index, index.shape);
        if (picked.shape.every((d, k) => d === src.shape[k])) return picked;
        // src is larger than index: the elements no index reaches got no gradient.
        const padded = padRaw(picked, src.shape, src.shape.map(() => 0));
        picked.dispose();
        return padded;
      },
    ];
  },
});

/**
 * A new zero tensor of `shape` with src added at index along `axis` (torch's zeros(shape).scatter_add_(axis,
 * index, src)): out[c with axis := index[c]] += src[c] for every c of index's shape. index is i32 with the rank of
 * src, index.shape[d] ≤ src.shape[d] for all d and ≤ shape[d] for d ≠ axis. Adds follow `options.mode`
 * (default `scatterPolicy.mode`): 'fixed-point' is deterministic, 'float-cas' is not (see atomics.ts).
 */
export function scatterAdd(shape: readonly number[], axis: number, index: Tensor, src: Tensor, options: ScatterOptions = {}): Tensor {
  checkF32('scatterAdd', src, 'src');
  checkIndex('scatterAdd', index);
  checkRank('scatterAdd', shape, GATHER_MAX_RANK);
  const a = normaliseAxis('scatterAdd', axis, shape.length);
  if (index.rank !== shape.length || src.rank !== shape.length) {
    throw new Error(`scatterAdd: index ${shapeString(index.shape)} and src ${shapeString(src.shape)} must have the rank of ${shapeString(shape)}`);
  }
  if (index.shape.some((d, k) => d > src.shape[k] || (k !== a && d > shape[k]))) {
    throw new Error(
      `scatterAdd: index ${shapeString(index.shape)} must fit src ${shapeString(src.shape)} and, outside axis ${a}, ${shapeString(shape)}`,
    );
  }
  return scatterAddOp([...shape], a, index, src, { ...options });
}
