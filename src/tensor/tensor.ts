/**
 * `Tensor`: a contiguous, row-major array on the GPU with a shape and a dtype.
 *
 * Tensors are views of `Storage` (a byte range of a pooled buffer, or of a flat parameter arena). `reshape` shares
 * storage; everything else produces new storage through a kernel. Data leaves the GPU only through the async
 * `data()` / `item()`. Lifetimes are explicit: `dispose()`, or the enclosing `scope()`.
 */
import { runtime, type BufferView } from '../kernels/runtime/runtime.ts';
import { track, type Disposable } from './scope.ts';

export type DType = 'f32' | 'i32' | 'u32';
export type Shape = readonly number[];
export type TypedArrayFor<D extends DType> = D extends 'f32' ? Float32Array : D extends 'i32' ? Int32Array : Uint32Array;

/** A byte range on the GPU with a reference count; `onFree` returns it to its owner. */
export class Storage {
  private refs = 1;
  constructor(
    readonly view: BufferView,
    private readonly onFree: (() => void) | null,
  ) {}

  retain(): this {
    this.refs += 1;
    return this;
  }

  release(): void {
    this.refs -= 1;
    if (this.refs === 0) this.onFree?.();
  }
}

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function stridesOf(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

export function shapeString(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

function checkShape(shape: Shape): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`invalid tensor shape ${shapeString(shape)}`);
  }
}

/** Allocates pooled storage for `count` 4-byte elements. */
export function allocStorage(count: number): Storage {
  const rt = runtime();
  const bytes = Math.max(4, count * 4);
  const pooled = rt.pool.acquire(bytes);
  return new Storage({ pooled, offset: 0, size: bytes }, () => rt.pool.release(pooled));
}

let nextTensorId = 1;

/** What the autograd tape attaches to the tensors it produced (defined in src/autograd). */
export interface GradNode {
  readonly name: string;
}

export class Tensor implements Disposable {
  readonly id = nextTensorId++;
  readonly shape: Shape;
  readonly dtype: DType;
  readonly size: number;
  requiresGrad = false;
  /** Accumulated gradient (leaves only). */
  grad: Tensor | null = null;
  /** The tape node that produced this tensor, or null for a leaf. */
  node: GradNode | null = null;
  /** Optional label used in error messages and checkpoints. */
  name: string | undefined;
  private storageRef: Storage | null;

  constructor(storage: Storage, shape: Shape, dtype: DType = 'f32') {
    checkShape(shape);
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = sizeOf(shape);
    if (this.size * 4 > storage.view.size && this.size > 0) {
      throw new Error(`storage of ${storage.view.size} bytes is too small for ${shapeString(shape)} ${dtype}`);
    }
    this.storageRef = storage;
    track(this);
  }

  /** A new tensor with fresh, uninitialised storage. */
  static empty(shape: Shape, dtype: DType = 'f32'): Tensor {
    return new Tensor(allocStorage(sizeOf(shape)), shape, dtype);
  }

  get rank(): number {
    return this.shape.length;
  }

  get isDisposed(): boolean {
    return this.storageRef === null;
  }

  get storage(): Storage {
    if (!this.storageRef) {
      throw new Error(`Tensor #${this.id}${this.name ? ` '${this.name}'` : ''} ${shapeString(this.shape)} was used after dispose()`);
    }
    return this.storageRef;
  }

  /** The bound byte range: exactly this tensor's elements. */
  get view(): BufferView {
    const v = this.storage.view;
    return { pooled: v.pooled, offset: v.offset, size: Math.max(4, this.size * 4) };
  }

  /**
   * Moves this tensor onto `storage` (which must be large enough), copying its current contents there first, and
   * releases the old storage. Used by optimizers to pack parameters into one flat arena so that a single dispatch
   * updates them all; the tensor object (and every reference users hold to it) stays the same. Tensors that shared
   * the old storage through `viewAs` keep the old storage and no longer alias this one.
   */
  moveToStorage(storage: Storage): void {
    const old = this.storage;
    if (this.size * 4 > storage.view.size && this.size > 0) {
      throw new Error(`moveToStorage: ${storage.view.size} bytes are too small for ${this}`);
    }
    if (this.size > 0) runtime().copy(this.view, { ...storage.view, size: this.size * 4 }, this.size * 4);
    this.storageRef = storage;
    old.release();
  }

  dispose(): void {
    if (!this.storageRef) return;
    this.storageRef.release();
    this.storageRef = null;
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /** Copies the data to the host (submits pending GPU work). */
  async data(): Promise<TypedArrayFor<this['dtype']>> {
    const bytes = await runtime().read(this.view);
    const out = this.dtype === 'f32' ? new Float32Array(bytes) : this.dtype === 'i32' ? new Int32Array(bytes) : new Uint32Array(bytes);
    return out.subarray(0, this.size) as TypedArrayFor<this['dtype']>;
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item() needs a one-element tensor, got ${shapeString(this.shape)}`);
    return (await this.data())[0];
  }

  /** A float64 copy on the host (tests and references). */
  async toFloat64(): Promise<Float64Array> {
    return Float64Array.from(await this.data());
  }

  toString(): string {
    return `Tensor#${this.id}${this.name ? `(${this.name})` : ''}${shapeString(this.shape)}:${this.dtype}`;
  }
}

/** A tensor of the first sizeOf(shape) elements of `source`, sharing its storage. */
export function viewPrefix(source: Tensor, shape: Shape): Tensor {
  if (sizeOf(shape) > source.size) {
    throw new Error(`cannot view the first ${sizeOf(shape)} elements of ${shapeString(source.shape)} (${source.size} elements)`);
  }
  return new Tensor(source.storage.retain(), shape, source.dtype);
}

/** A tensor that shares `source`'s storage with another shape of the same size. */
export function viewAs(source: Tensor, shape: Shape): Tensor {
  if (sizeOf(shape) !== source.size) {
    throw new Error(`cannot reshape ${shapeString(source.shape)} (${source.size} elements) to ${shapeString(shape)}`);
  }
  return new Tensor(source.storage.retain(), shape, source.dtype);
}
