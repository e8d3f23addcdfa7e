/** Differentiable reductions: sum, mean, max, min over axes, and sumToShape (the adjoint of broadcasting). */
import { defineOp } from '../autograd/op.ts';
import { runtime } from '../kernels/runtime/runtime.ts';
import { REDUCE_MAX_RANK, reduceKernel, type ReduceOp } from '../kernels/reduce/reduce.ts';
import { Tensor, shapeString, stridesOf, sizeOf, viewAs, type Shape } from '../tensor/tensor.ts';
import { full } from '../tensor/create.ts';
import { broadcastStrides, stridedCopy, mul, div, eq } from './elementwise.ts';

export type Axes = number | readonly number[] | undefined;

export function normaliseAxes(axes: Axes, rank: number, op = 'reduce'): number[] {
  const list = axes === undefined ? Array.from({ length: rank }, (_, k) => k) : typeof axes === 'number' ? [axes] : [...axes];
  const out = list.map((a) => (a < 0 ? a + rank : a));
  for (const a of out) if (a < 0 || a >= rank) throw new Error(`${op}: axis ${a} out of range for rank ${rank}`);
  return [...new Set(out)].sort((x, y) => x - y);
}

/** Queues the reduction; returns the result with reduced axes kept as size 1. */
function reduceRaw(op: ReduceOp, x: Tensor, axes: number[], scale: number): Tensor {
  const shape = x.shape;
  const strides = stridesOf(shape);
  const kept = shape.map((_, k) => k).filter((k) => !axes.includes(k));
  if (kept.length > REDUCE_MAX_RANK || axes.length > REDUCE_MAX_RANK) throw new Error(`${op}: rank too high`);
  const keptShape = shape.map((d, k) => (axes.includes(k) ? 1 : d));
  const outN = sizeOf(keptShape);
  const reduceN = axes.reduce((n, k) => n * shape[k], 1);
  if (reduceN === 0 || outN === 0) return full(keptShape, op === 'sum' ? 0 : NaN);
  // Split long reductions into chunks folded by a second pass, so they use many threads.
  const chunks = reduceN >= 4096 && outN < 4096 ? Math.min(256, Math.ceil(reduceN / 1024)) : 1;
  const chunkLen = Math.ceil(reduceN / chunks);
  const params: Record<string, number> = {
    out_n: outN,
    chunks,
    chunk_len: chunkLen,
    reduce_n: reduceN,
    out_rank: kept.length,
    red_rank: axes.length,
    scale: chunks === 1 ? scale : 1,
  };
  for (let k = 0; k < REDUCE_MAX_RANK; k++) {
    params[`out_dim${k}`] = k < kept.length ? shape[kept[k]] : 1;
    params[`out_stride${k}`] = k < kept.length ? strides[kept[k]] : 0;
    params[`red_dim${k}`] = k < axes.length ? shape[axes[k]] : 1;
    params[`red_stride${k}`] = k < axes.length ? strides[axes[k]] : 0;
  }
  const partial = Tensor.empty([outN * chunks]);
  runtime().dispatch(reduceKernel, { op }, [x.view, partial.view], params, outN * chunks);
  if (chunks === 1) {
    const out = viewAs(partial, keptShape);
    partial.dispose();
    return out;
  }
  const partialRows = viewAs(partial, [outN, chunks]);
  partial.dispose();
  const folded = reduceRaw(op, partialRows, [1], scale);
  partialRows.dispose();
  const out = viewAs(folded, keptShape);
  folded.dispose();
  return out;
}

function reducedShape(shape: Shape, axes: number[], keepDims: boolean): number[] {
  return keepDims ? shape.map((d, k) => (axes.includes(k) ? 1 : d)) : shape.filter((_, k) => !axes.includes(k));
}

/** Broadcasts a keep-dims-shaped tensor back to `shape` (materialised). */
export function expandTo(x: Tensor, shape: Shape): Tensor {
  return stridedCopy(x, shape, broadcastStrides(x.shape, shape));
}

const reduceOp = (op: ReduceOp) =>
  defineOp({
    name: op,
    forward(ctx, x: Tensor, axes: number[], keepDims: boolean, scale: number) {
      const kept = reduceRaw(op, x, axes, scale);
      const y = viewAs(kept, reducedShape(x.shape, axes, keepDims));
      kept.dispose();
      ctx.save(x, y);
      return y;
    },
    backward(ctx, dy) {
      const [x, y] = ctx.saved;
      const [axes, , scale] = ctx.attrs as [number[], boolean, number];
      const keptShape = reducedShape(x.shape, axes, true);
      return [
        () => {
          const dyKept = viewAs(dy, keptShape);
          const spread = expandTo(dyKept, x.shape);
          dyKept.dispose();
          if (op === 'sum') {
            if (scale === 1) return spread;
            const scaled = mul(spread, scale);
            spread.dispose();
            return scaled;
          }
          // max/min: the gradient is shared equally among the elements equal to the extremum.
          const yKept = viewAs(y, keptShape);
          const yFull = expandTo(yKept, x.shape);
          const mask = eq(x, yFull);
          const count = reduceRaw('sum', mask, axes, 1);
          const countFull = expandTo(count, x.shape);
          const share = mul(spread, mask);
          const result = div(share, countFull);
          for (const t of [yKept, yFull, mask, count, countFull, share, spread]) t.dispose();
          return result;
        },
      ];
    },
  });

const sumOp = reduceOp('sum');
const maxOp = reduceOp('max');
const minOp = reduceOp('min');

export const sum = (x: Tensor, axes?: Axes, keepDims = false): Tensor => sumOp(x, normaliseAxes(axes, x.rank, 'sum'), keepDims, 1);
export function mean(x: Tensor, axes?: Axes, keepDims = false): Tensor {
  const list = normaliseAxes(axes, x.rank, 'mean');
  const n = list.reduce((p, k) => p * x.shape[k], 1);
  return sumOp(x, list, keepDims, 1 / n);
}
export const max = (x: Tensor, axes?: Axes, keepDims = false): Tensor => maxOp(x, normaliseAxes(axes, x.rank, 'max'), keepDims, 1);
export const min = (x: Tensor, axes?: Axes, keepDims = false): Tensor => minOp(x, normaliseAxes(axes, x.rank, 'min'), keepDims, 1);

/** Sums a broadcast result down to `shape` (the adjoint of broadcasting); not recorded on the tape. */
export function sumToShape(x: Tensor, shape: Shape): Tensor {
  const offset = x.rank - shape.length;
  if (offset < 0) throw new Error(`sumToShape: cannot sum ${shapeString(x.shape)} to ${shapeString(shape)}`);
  const axes: number[] = [];
  for (let k = 0; k < x.rank; k++) if (k < offset || shape[k - offset] !== x.shape[k]) axes.push(k);
  if (axes.length === 0) return viewAs(x, shape);
  const kept = reduceRaw('sum', x, axes, 1);
  const out = viewAs(kept, shape);
  kept.dispose();
  return out;
}
