/** Differentiable elementwise ops (unary and broadcasting binary) on top of the elementwise kernels. */
import { defineOp } from '../autograd/op.ts';
import { gradKernels } from '../autograd/tape.ts';
import { runtime } from '../kernels/runtime/runtime.ts';
import {
  MAX_RANK,
  elementwiseVec4Grid,
  unaryBackward,
  unaryBackwardVec4,
  unaryForward,
  unaryForwardVec4,
  type UnaryOpName,
} from '../kernels/elementwise/unary.ts';
import {
  accumulateKernel,
  accumulateVec4Kernel,
  binaryBackward,
  binaryBackwardVec4,
  binaryForward,
  binaryForwardVec4,
  broadcastShapes,
  type BinaryOpName,
} from '../kernels/elementwise/binary.ts';
import { Tensor, shapeString, stridesOf, sizeOf, type Shape } from '../tensor/tensor.ts';
import { full } from '../tensor/create.ts';
import { sumToShape } from './reduce.ts';

function checkFloat(op: string, ...ts: Tensor[]): void {
  for (const t of ts) if (t.dtype !== 'f32') throw new Error(`${op}: expected an f32 tensor, got ${t}`);
}

function checkRank(op: string, shape: Shape): void {
  if (shape.length > MAX_RANK) throw new Error(`${op}: rank ${shape.length} exceeds the supported ${MAX_RANK}`);
}

/**
 * Materialises a strided view of x's storage: out[coord] = x[offset + Σ coord_k · strides_k], out contiguous in
 * `shape`. Permutes, broadcasts (stride 0) and slices are all this one kernel.
 */
export function stridedCopy(x: Tensor, shape: Shape, strides: readonly number[], offset = 0): Tensor {
  checkRank('stridedCopy', shape);
  const out = Tensor.empty(shape, x.dtype);
  const n = sizeOf(shape);
  if (n === 0) return out;
  const params: Record<string, number> = { n, rank: shape.length, x_offset: offset, a: 0, b: 0 };
  for (let k = 0; k < MAX_RANK; k++) {
    params[`dim${k}`] = shape[k] ?? 1;
    params[`x_stride${k}`] = strides[k] ?? 0;
  }
  runtime().dispatch(unaryForward, { op: 'identity' as const, strided: true }, [x.view, out.view], params, n);
  return out;
}

/** Contiguous elementwise work over n elements takes the vec4 kernels when n is a multiple of 4. */
const vec4Grid = (n: number): [number, number, number] | null =>
  n % 4 === 0 ? elementwiseVec4Grid(n / 4, runtime().gpu.isSoftware) : null;

function unaryRaw(op: UnaryOpName, x: Tensor, a: number, b: number): Tensor {
  const out = Tensor.empty(x.shape);
  if (x.size === 0) return out;
  const grid = vec4Grid(x.size);
  if (grid) {
    runtime().dispatch(unaryForwardVec4, { op }, [x.view, out.view], { n4: x.size / 4, a, b }, grid);
    return out;
  }
  const params: Record<string, number> = { n: x.size, rank: 0, x_offset: 0, a, b };
  for (let k = 0; k < MAX_RANK; k++) {
    params[`dim${k}`] = 1;
    params[`x_stride${k}`] = 0;
  }
  runtime().dispatch(unaryForward, { op, strided: false }, [x.view, out.view], params, x.size);
  return out;
}

/** dL/dx = dL/dy · f'(x, y), contiguous. Exposed for fused ops (matmul's activation). */
export function unaryGrad(op: UnaryOpName, x: Tensor, y: Tensor, dy: Tensor, a = 0, b = 0): Tensor {
  const dx = Tensor.empty(x.shape);
  if (x.size === 0) return dx;
  const grid = vec4Grid(x.size);
  if (grid) runtime().dispatch(unaryBackwardVec4, { op }, [x.view, y.view, dy.view, dx.view], { n4: x.size / 4, a, b }, grid);
  else runtime().dispatch(unaryBackward, { op }, [x.view, y.view, dy.view, dx.view], { n: x.size, a, b }, x.size);
  return dx;
}

function makeUnary(op: UnaryOpName, differentiable = true) {
  return defineOp({
    name: op,
    forward(ctx, x: Tensor, a: number, b: number) {
      checkFloat(op, x);
      const y = unaryRaw(op, x, a, b);
      ctx.save(x, y);
      return y;
    },
    backward: differentiable
      ? (ctx, dy) => {
          const [x, y] = ctx.saved;
          const [a, b] = ctx.attrs as [number, number];
          return [() => unaryGrad(op, x, y, dy, a, b)];
        }
      : undefined,
  });
}

// The scalar attributes travel on the context (see defineOp: non-tensor arguments are attributes).
const unaryOps = {
  identity: makeUnary('identity'),
  neg: makeUnary('neg'),
  exp: makeUnary('exp'),
  log: makeUnary('log'),
  sqrt: makeUnary('sqrt'),
  abs: makeUnary('abs'),
  relu: makeUnary('relu'),
  leaky_relu: makeUnary('leaky_relu'),
  sigmoid: makeUnary('sigmoid'),
  tanh: makeUnary('tanh'),
  softplus: makeUnary('softplus'),
  clamp: makeUnary('clamp'),
  pow_scalar: makeUnary('pow_scalar'),
  affine: makeUnary('affine'),
  reciprocal: makeUnary('reciprocal'),
  square: makeUnary('square'),
  sin: makeUnary('sin'),
  cos: makeUnary('cos'),
  sign: makeUnary('sign', false),
  step: makeUnary('step', false),
} satisfies Record<UnaryOpName, unknown>;

export const copy = (x: Tensor): Tensor => unaryOps.identity(x, 0, 0);
export const neg = (x: Tensor): Tensor => unaryOps.neg(x, 0, 0);
export const exp = (x: Tensor): Tensor => unaryOps.exp(x, 0, 0);
export const log = (x: Tensor): Tensor => unaryOps.log(x, 0, 0);
export const sqrt = (x: Tensor): Tensor => unaryOps.sqrt(x, 0, 0);
export const abs = (x: Tensor): Tensor => unaryOps.abs(x, 0, 0);
export const relu = (x: Tensor): Tensor => unaryOps.relu(x, 0, 0);
export const leakyRelu = (x: Tensor, slope = 0.01): Tensor => unaryOps.leaky_relu(x, slope, 0);
export const sigmoid = (x: Tensor): Tensor => unaryOps.sigmoid(x, 0, 0);
export const tanh = (x: Tensor): Tensor => unaryOps.tanh(x, 0, 0);
export const softplus = (x: Tensor): Tensor => unaryOps.softplus(x, 0, 0);
export const clamp = (x: Tensor, lo: number, hi: number): Tensor => unaryOps.clamp(x, lo, hi);
export const square = (x: Tensor): Tensor => unaryOps.square(x, 0, 0);
export const reciprocal = (x: Tensor): Tensor => unaryOps.reciprocal(x, 0, 0);
export const sin = (x: Tensor): Tensor => unaryOps.sin(x, 0, 0);
export const cos = (x: Tensor): Tensor => unaryOps.cos(x, 0, 0);
export const sign = (x: Tensor): Tensor => unaryOps.sign(x, 0, 0);
/** a·x + b with scalars a and b. */
export const affine = (x: Tensor, scale: number, shift = 0): Tensor => unaryOps.affine(x, scale, shift);

/** Strides of `shape` aligned to the `out` shape's dimensions, 0 where `shape` broadcasts. */
export function broadcastStrides(shape: Shape, out: Shape): number[] {
  const own = stridesOf(shape);
  const offset = out.length - shape.length;
  return out.map((d, k) => {
    const j = k - offset;
    if (j < 0 || shape[j] === 1) return 0;
    return own[j];
  });
}

function binaryParams(aShape: Shape, bShape: Shape, outShape: Shape): Record<string, number> {
  checkRank('binary op', outShape);
  const aStrides = broadcastStrides(aShape, outShape);
  const bStrides = broadcastStrides(bShape, outShape);
  const params: Record<string, number> = { n: sizeOf(outShape), rank: outShape.length };
  for (let k = 0; k < MAX_RANK; k++) {
    params[`dim${k}`] = outShape[k] ?? 1;
    params[`a_stride${k}`] = aStrides[k] ?? 0;
    params[`b_stride${k}`] = bStrides[k] ?? 0;
  }
  return params;
}

const sameShape = (a: Shape, b: Shape): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

function makeBinary(op: BinaryOpName, differentiable = true) {
  return defineOp({
    name: op,
    forward(ctx, a: Tensor, b: Tensor) {
      checkFloat(op, a, b);
      let outShape: number[];
      try {
        outShape = broadcastShapes(a.shape, b.shape);
      } catch {
        throw new Error(`${op}: shapes ${shapeString(a.shape)} and ${shapeString(b.shape)} do not broadcast`);
      }
      const y = Tensor.empty(outShape);
      const broadcast = !(sameShape(a.shape, outShape) && sameShape(b.shape, outShape));
      const grid = broadcast ? null : vec4Grid(y.size);
      if (grid) {
        runtime().dispatch(binaryForwardVec4, { op }, [a.view, b.view, y.view], { n4: y.size / 4 }, grid);
      } else if (y.size > 0) {
        runtime().dispatch(binaryForward, { op, broadcast }, [a.view, b.view, y.view], binaryParams(a.shape, b.shape, outShape), y.size);
      }
      ctx.save(a, b, y);
      return y;
    },
    backward: differentiable
      ? (ctx, dy) => {
          const [a, b, y] = ctx.saved;
          const broadcast = !(sameShape(a.shape, y.shape) && sameShape(b.shape, y.shape));
          const partial = (wrt: 'a' | 'b', target: Tensor) => (): Tensor => {
            if ((op === 'add' || (op === 'sub' && wrt === 'a')) && sameShape(target.shape, y.shape)) return dy;
            const full = Tensor.empty(y.shape);
            const buffers = [a.view, b.view, y.view, dy.view, full.view];
            const grid = broadcast ? null : vec4Grid(y.size);
            if (grid) runtime().dispatch(binaryBackwardVec4, { op, wrt }, buffers, { n4: y.size / 4 }, grid);
            else runtime().dispatch(binaryBackward, { op, broadcast, wrt }, buffers, binaryParams(a.shape, b.shape, y.shape), y.size);
            if (sameShape(target.shape, y.shape)) return full;
            const reduced = sumToShape(full, target.shape);
            full.dispose();
            return reduced;
          };
          return [partial('a', a), partial('b', b)];
        }
      : undefined,
  });
}

const binaryOps = {
  add: makeBinary('add'),
  sub: makeBinary('sub'),
  mul: makeBinary('mul'),
  div: makeBinary('div'),
  pow: makeBinary('pow'),
  maximum: makeBinary('maximum'),
  minimum: makeBinary('minimum'),
  eq: makeBinary('eq', false),
  gt: makeBinary('gt', false),
  ge: makeBinary('ge', false),
  lt: makeBinary('lt', false),
} satisfies Record<BinaryOpName, unknown>;

export type Operand = Tensor | number;

export const add = (a: Tensor, b: Operand): Tensor => (typeof b === 'number' ? affine(a, 1, b) : binaryOps.add(a, b));
export const sub = (a: Tensor, b: Operand): Tensor => (typeof b === 'number' ? affine(a, 1, -b) : binaryOps.sub(a, b));
export const mul = (a: Tensor, b: Operand): Tensor => (typeof b === 'number' ? affine(a, b, 0) : binaryOps.mul(a, b));
export const div = (a: Tensor, b: Operand): Tensor => (typeof b === 'number' ? affine(a, 1 / b, 0) : binaryOps.div(a, b));
/** a^b; a scalar exponent also accepts negative bases with integer exponents. */
export const pow = (a: Tensor, b: Operand): Tensor => (typeof b === 'number' ? unaryOps.pow_scalar(a, b, 0) : binaryOps.pow(a, b));
export const maximum = (a: Tensor, b: Operand): Tensor => (typeof b === 'number' ? clamp(a, b, Infinity) : binaryOps.maximum(a, b));
export const minimum = (a: Tensor, b: Operand): Tensor => (typeof b === 'number' ? clamp(a, -Infinity, b) : binaryOps.minimum(a, b));
/** 1 where a == b, else 0 (no gradient). */
export const eq = (a: Tensor, b: Tensor): Tensor => binaryOps.eq(a, b);
export const gt = (a: Tensor, b: Tensor): Tensor => binaryOps.gt(a, b);
export const ge = (a: Tensor, b: Tensor): Tensor => binaryOps.ge(a, b);
export const lt = (a: Tensor, b: Tensor): Tensor => binaryOps.lt(a, b);

/** target += addend in place (same shape); used for gradient accumulation. */
export function accumulate(target: Tensor, addend: Tensor): void {
  if (!sameShape(target.shape, addend.shape)) {
    throw new Error(`accumulate: ${shapeString(addend.shape)} into ${shapeString(target.shape)}`);
  }
  if (target.size === 0) return;
  const grid = vec4Grid(target.size);
  if (grid) runtime().dispatch(accumulateVec4Kernel, undefined, [addend.view, target.view], { n4: target.size / 4 }, grid);
  else runtime().dispatch(accumulateKernel, undefined, [addend.view, target.view], { n: target.size }, target.size);
}

gradKernels.add = (a, b) => binaryOps.add(a, b);
gradKernels.accumulate = accumulate;
gradKernels.full = (shape, value) => full(shape, value);
gradKernels.copy = (t) => unaryRaw('identity', t, 0, 0);
