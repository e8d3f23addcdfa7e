/**
 * An exponential moving average of an optimizer's parameters, kept as one more flat buffer of the arena's layout
 * (tiny-cuda-nn's `Ema`; RAD-NeRF evaluates with EMA weights, decay 0.95). `update()` is one dispatch:
 *   shadow ← decay · shadow + (1 − decay) · params
 * The shadow starts as a copy of the parameters. `withAverage(fn)` runs fn (evaluation) with the averaged weights
 * in place and restores the trained weights afterwards.
 */
import { emaKernel } from '../kernels/optim/ema.ts';
import { runtime } from '../kernels/runtime/runtime.ts';
import { Storage, Tensor, allocStorage } from '../tensor/tensor.ts';
import type { Adam } from './adam.ts';

export class Ema {
  readonly shadowBuffer: Storage;
  private disposed = false;

  constructor(
    readonly optimizer: Adam,
    public decay = 0.95,
  ) {
    if (!(decay >= 0 && decay <= 1)) throw new Error(`Ema: decay must be in [0, 1], got ${decay}`);
    if (optimizer.isDisposed) throw new Error('Ema: the optimizer was disposed');
    this.shadowBuffer = allocStorage(optimizer.layout.totalElements);
    runtime().copy(optimizer.paramBuffer.view, this.shadowBuffer.view);
  }

  private checkAlive(what: string): void {
    if (this.disposed || this.optimizer.isDisposed) throw new Error(`Ema.${what}: the EMA or its optimizer was disposed`);
  }

  /** Queues one averaging step (call after `optimizer.step()`). */
  update(): void {
    this.checkAlive('update');
    runtime().dispatch(
      emaKernel,
      undefined,
      [this.optimizer.paramBuffer.view, this.shadowBuffer.view],
      { n_vec4: this.optimizer.layout.totalElements / 4, decay: this.decay },
      this.optimizer.layout.totalElements / 4,
    );
  }

  /** A view of the averaged value of one parameter (caller disposes it). */
  averageOf(param: Tensor): Tensor {
    this.checkAlive('averageOf');
    const segment = this.optimizer.layout.segmentOf(param);
    if (!segment) throw new Error(`Ema.averageOf: ${param} is not one of the optimizer's parameters`);
    return this.optimizer.layout.sliceTensor(this.shadowBuffer, segment);
  }

  /** Runs fn with the averaged weights in the parameters, then puts the trained weights back (even if fn throws). */
  async withAverage<T>(fn: () => T | Promise<T>): Promise<T> {
    this.checkAlive('withAverage');
    const rt = runtime();
    const params = this.optimizer.paramBuffer.view;
    const backup = allocStorage(this.optimizer.layout.totalElements);
    rt.copy(params, backup.view);
    rt.copy(this.shadowBuffer.view, params);
    try {
      return await fn();
    } finally {
      rt.copy(backup.view, params);
      backup.release();
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.shadowBuffer.release();
  }
}
