/** Tensor factories: from host data, constants, seeded random initialisation. */
import { runtime } from '../kernels/runtime/runtime.ts';
import { Rng } from './random.ts';
import { Tensor, sizeOf, shapeString, type DType, type Shape } from './tensor.ts';

export type HostData = ArrayLike<number>;

export function tensor(data: HostData, shape: Shape = [data.length], dtype: DType = 'f32'): Tensor {
  if (sizeOf(shape) !== data.length) {
    throw new Error(`tensor(): ${data.length} values do not fill shape ${shapeString(shape)}`);
  }
  const t = Tensor.empty(shape, dtype);
  const typed = dtype === 'f32' ? Float32Array.from(data) : dtype === 'i32' ? Int32Array.from(data) : Uint32Array.from(data);
  if (typed.length > 0) runtime().upload(t.view, typed);
  return t;
}

export function scalar(value: number): Tensor {
  return tensor([value], []);
}

export function full(shape: Shape, value: number, dtype: DType = 'f32'): Tensor {
  const n = sizeOf(shape);
  const t = Tensor.empty(shape, dtype);
  if (n === 0) return t;
  if (value === 0) {
    runtime().clear(t.view);
    return t;
  }
  const typed = dtype === 'f32' ? new Float32Array(n) : dtype === 'i32' ? new Int32Array(n) : new Uint32Array(n);
  typed.fill(value);
  runtime().upload(t.view, typed);
  return t;
}

export const zeros = (shape: Shape, dtype: DType = 'f32'): Tensor => full(shape, 0, dtype);
export const ones = (shape: Shape, dtype: DType = 'f32'): Tensor => full(shape, 1, dtype);

export function randn(shape: Shape, rng: Rng, std = 1, mean = 0): Tensor {
  const data = new Float32Array(sizeOf(shape));
  for (let i = 0; i < data.length; i++) data[i] = mean + std * rng.normal();
  return tensor(data, shape);
}

export function rand(shape: Shape, rng: Rng, lo = 0, hi = 1): Tensor {
  const data = new Float32Array(sizeOf(shape));
  for (let i = 0; i < data.length; i++) data[i] = rng.range(lo, hi);
  return tensor(data, shape);
}

export function arange(n: number, dtype: DType = 'f32'): Tensor {
  return tensor(Array.from({ length: n }, (_, i) => i), [n], dtype);
}
