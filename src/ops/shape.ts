/** Shape ops: reshape (free: shares storage), permute/transpose and expand (materialised by a strided copy). */
import { defineOp } from '../autograd/op.ts';
import { Tensor, shapeString, sizeOf, stridesOf, viewAs, type Shape } from '../tensor/tensor.ts';
import { broadcastStrides, stridedCopy } from './elementwise.ts';
import { sumToShape } from './reduce.ts';

const reshapeOp = defineOp({
  name: 'reshape',
  forward(ctx, x: Tensor, shape: number[]) {
    ctx.save(x);
    return viewAs(x, shape);
  },
  backward(ctx, dy) {
    return [() => viewAs(dy, ctx.saved[0].shape)];
  },
});

/** A new shape with the same number of elements; one dimension may be -1 (inferred). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const inferred = [...shape];
  const unknown = inferred.indexOf(-1);
  if (unknown >= 0) {
    const known = inferred.reduce((p, d, i) => (i === unknown ? p : p * d), 1);
    inferred[unknown] = known === 0 ? 0 : x.size / known;
  }
  if (sizeOf(inferred) !== x.size || inferred.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`reshape: cannot view ${shapeString(x.shape)} as ${shapeString(shape)}`);
  }
  return reshapeOp(x, inferred);
}

const permuteOp = defineOp({
  name: 'permute',
  forward(_ctx, x: Tensor, order: number[]) {
    const strides = stridesOf(x.shape);
    return stridedCopy(x, order.map((k) => x.shape[k]), order.map((k) => strides[k]));
  },
  backward(ctx, dy) {
    const order = ctx.attrs[0] as number[];
    const inverse = new Array<number>(order.length);
    order.forEach((k, i) => (inverse[k] = i));
    return [() => permute(dy, inverse)];
  },
});

export function permute(x: Tensor, order: readonly number[]): Tensor {
  const sorted = [...order].sort((a, b) => a - b);
  if (order.length !== x.rank || sorted.some((k, i) => k !== i)) {
    throw new Error(`permute: [${order}] is not a permutation of the ${x.rank} axes of ${shapeString(x.shape)}`);
  }
  return permuteOp(x, [...order]);
}

/** Swaps two axes (default: the last two). */
export function transpose(x: Tensor, axisA = -2, axisB = -1): Tensor {
  const a = axisA < 0 ? axisA + x.rank : axisA;
  const b = axisB < 0 ? axisB + x.rank : axisB;
  const order = Array.from({ length: x.rank }, (_, k) => k);
  order[a] = b;
  order[b] = a;
  return permute(x, order);
}

const expandOp = defineOp({
  name: 'expand',
  forward(ctx, x: Tensor, shape: number[]) {
    ctx.save(x);
    return stridedCopy(x, shape, broadcastStrides(x.shape, shape));
  },
  backward(ctx, dy) {
    return [() => sumToShape(dy, ctx.saved[0].shape)];
  },
});

/** Broadcasts x to `shape` (NumPy rules), materialised. */
export function expand(x: Tensor, shape: Shape): Tensor {
  const offset = shape.length - x.rank;
  if (offset < 0 || x.shape.some((d, k) => d !== 1 && d !== shape[k + offset])) {
    throw new Error(`expand: ${shapeString(x.shape)} does not broadcast to ${shapeString(shape)}`);
  }
  return expandOp(x, [...shape]);
}
