/**
 * Adam and AdamW over the flat parameter arena: `step()` is ONE dispatch for every parameter of every group.
 *
 *   const opt = new Adam([{ params: grid.parameters(), lr: 1e-2 }, { params: net.parameters(), lr: 1e-3 }],
 *                        { betas: [0.9, 0.99], eps: 1e-15, schedule: exponentialDecay(0.1, 250_000) });
 *   scope(() => { backward(loss(...)); opt.step(); opt.zeroGrad(); });
 *
 * Construction moves every parameter's data into one flat f32 buffer (`Tensor.moveToStorage`; the tensor objects
 * stay the same, so modules keep working) and gives each parameter a `.grad` that is a view of one flat gradient
 * buffer; autograd's `backward` accumulates into an existing `.grad` in place, so gradients land in the arena
 * directly. `zeroGrad()` is one clearBuffer. Moments m and v are two more flat buffers of the same layout.
 *
 * The optimizer owns `param.grad`: replacing or disposing it is an error at the next `step()`. A parameter can
 * belong to one optimizer at a time (dispose the first before building another over the same parameters).
 * Learning rates: group.lr × schedule(stepsTaken) (see schedule.ts); group.lr and group.weightDecay may be changed
 * between steps.
 */
import { adamKernel, ADAM_MAX_GROUPS } from '../kernels/optim/adam.ts';
import { runtime } from '../kernels/runtime/runtime.ts';
import { Storage, Tensor } from '../tensor/tensor.ts';
import { FlatLayout, type ArenaSegment } from './arena.ts';
import type { Schedule } from './schedule.ts';

export interface ParamGroupSpec {
  params: Iterable<Tensor>;
  /** Base learning rate (defaults to the optimizer's). */
  lr?: number;
  weightDecay?: number;
  /** Overrides the optimizer's schedule for this group. */
  schedule?: Schedule;
  /** A label for error messages and logs. */
  name?: string;
}

export interface AdamOptions {
  /** Base learning rate of groups that do not set their own. Default 1e-3. */
  lr?: number;
  /** (β1, β2). Default (0.9, 0.999). */
  betas?: readonly [number, number];
  /** Default 1e-8 (instant-ngp uses 1e-15). */
  eps?: number;
  /** Default 0 for Adam, 1e-2 for AdamW. */
  weightDecay?: number;
  /** Multiplies every group's learning rate; evaluated at the number of steps already taken. Default constant 1. */
  schedule?: Schedule;
  /** Gradients are multiplied by this before use (e.g. 1/loss_scale). Default 1. */
  gradScale?: number;
}

export interface ParamGroup {
  readonly name: string;
  readonly params: readonly Tensor[];
  lr: number;
  weightDecay: number;
  schedule: Schedule | undefined;
}

/** Which optimizer manages a parameter (one at a time: the arena moved its storage). */
const managers = new WeakMap<Tensor, Adam>();

function checkRange(what: string, value: number, lo: number, hi: number, hiInclusive = false): void {
  if (!(value >= lo && (hiInclusive ? value <= hi : value < hi))) {
    throw new Error(`${what} must be in [${lo}, ${hi}${hiInclusive ? ']' : ')'}, got ${value}`);
  }
}

export class Adam {
  readonly groups: readonly ParamGroup[];
  beta1: number;
  beta2: number;
  eps: number;
  gradScale: number;
  schedule: Schedule | undefined;
  /** Updates taken so far (t − 1 of the next update's bias correction). Restored by checkpoints. */
  stepCount = 0;
  readonly layout: FlatLayout;
  /** The flat buffers (element layout: `layout`). Exposed for EMA and checkpoints; do not release them. */
  readonly paramBuffer: Storage;
  readonly gradBuffer: Storage;
  readonly mBuffer: Storage;
  readonly vBuffer: Storage;
  private readonly grads: Tensor[];
  private disposed = false;

  /** True for AdamW (decoupled weight decay). */
  get decoupled(): boolean {
    return false;
  }

  get kind(): string {
    return this.decoupled ? 'AdamW' : 'Adam';
  }

  constructor(params: Iterable<Tensor> | readonly ParamGroupSpec[], options: AdamOptions = {}) {
    const kind = this.kind;
    const lr = options.lr ?? 1e-3;
    const [beta1, beta2] = options.betas ?? [0.9, 0.999];
    const defaultDecay = options.weightDecay ?? (this.decoupled ? 1e-2 : 0);
    checkRange(`${kind}: lr`, lr, 0, Infinity);
    checkRange(`${kind}: beta1`, beta1, 0, 1);
    checkRange(`${kind}: beta2`, beta2, 0, 1);
    checkRange(`${kind}: eps`, options.eps ?? 1e-8, 0, Infinity);
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.eps = options.eps ?? 1e-8;
    this.gradScale = options.gradScale ?? 1;
    this.schedule = options.schedule;

    const list = Array.isArray(params) ? (params as unknown[]) : [...(params as Iterable<Tensor>)];
    const specs: ParamGroupSpec[] = list.every((item) => item instanceof Tensor)
      ? [{ params: list as Tensor[] }]
      : (list as ParamGroupSpec[]);
    if (specs.length > ADAM_MAX_GROUPS) {
      throw new Error(`${kind}: ${specs.length} parameter groups given; at most ${ADAM_MAX_GROUPS} are supported`);
    }
    this.groups = specs.map((spec, k) => {
      if (!spec || typeof spec !== 'object' || !('params' in spec)) {
        throw new Error(`${kind}: argument must be tensors or groups { params, lr?, weightDecay? }; item ${k} is neither`);
      }
      const group: ParamGroup = {
        name: spec.name ?? `group ${k}`,
        params: [...spec.params],
        lr: spec.lr ?? lr,
        weightDecay: spec.weightDecay ?? defaultDecay,
        schedule: spec.schedule,
      };
      checkRange(`${kind}: lr of ${group.name}`, group.lr, 0, Infinity);
      checkRange(`${kind}: weightDecay of ${group.name}`, group.weightDecay, 0, Infinity);
      return group;
    });
    const all = this.groups.flatMap((g) => g.params);
    if (all.length === 0) throw new Error(`${kind}: got an empty parameter list`);
    for (const p of all) {
      const other = managers.get(p);
      if (other && !other.disposed) {
        throw new Error(`${kind}: parameter ${p} is already managed by another optimizer; dispose() that one first`);
      }
    }

    this.layout = new FlatLayout(this.groups.map((g) => g.params), runtime().storageAlignment / 4, kind);
    this.paramBuffer = this.layout.allocateZeroed();
    this.gradBuffer = this.layout.allocateZeroed();
    this.mBuffer = this.layout.allocateZeroed();
    this.vBuffer = this.layout.allocateZeroed();
    this.grads = this.layout.segments.map((segment) => {
      const p = segment.tensor;
      p.moveToStorage(this.layout.sliceStorage(this.paramBuffer, segment));
      const gradStorage = this.layout.sliceStorage(this.gradBuffer, segment);
      if (p.grad && !p.grad.isDisposed) {
        p.grad.moveToStorage(gradStorage); // keeps a gradient accumulated before the optimizer existed
      } else {
        gradStorage.release();
        p.grad = this.layout.sliceTensor(this.gradBuffer, segment);
      }
      managers.set(p, this);
      return p.grad;
    });
  }

  get parameters(): Tensor[] {
    return this.layout.segments.map((s) => s.tensor);
  }

  /** The learning rate each group's next update will use (base rate × schedule). */
  learningRates(): number[] {
    return this.groups.map((g) => g.lr * (g.schedule ?? this.schedule ?? (() => 1))(this.stepCount));
  }

  private checkAlive(what: string): void {
    if (this.disposed) throw new Error(`${this.kind}.${what}: the optimizer was disposed`);
  }

  /** Queues one update of every parameter (one dispatch). */
  step(): void {
    this.checkAlive('step');
    this.layout.segments.forEach((segment, k) => this.checkSegment(segment, this.grads[k]));
    const t = this.stepCount + 1;
    const lrs = this.learningRates();
    const params: Record<string, number> = {
      n_vec4: this.layout.totalElements / 4,
      group_count: this.groups.length,
      beta1: this.beta1,
      beta2: this.beta2,
      eps: this.eps,
      bias_correction1: 1 - this.beta1 ** t,
      bias_correction2_sqrt: Math.sqrt(1 - this.beta2 ** t),
      grad_scale: this.gradScale,
    };
    for (let k = 0; k < ADAM_MAX_GROUPS; k++) {
      const group = this.groups[k];
      params[`group_end${k}`] = this.layout.groupEnds[k] ?? this.layout.totalElements;
      params[`lr${k}`] = group ? lrs[k] : 0;
      params[`weight_decay${k}`] = group ? group.weightDecay : 0;
    }
    runtime().dispatch(
      adamKernel,
      { decoupled: this.decoupled },
      [this.gradBuffer.view, this.paramBuffer.view, this.mBuffer.view, this.vBuffer.view],
      params,
      this.layout.totalElements / 4,
    );
    this.stepCount = t;
  }

  private checkSegment(segment: ArenaSegment, grad: Tensor): void {
    const p = segment.tensor;
    if (p.isDisposed) throw new Error(`${this.kind}.step: parameter ${p} was disposed; dispose the optimizer with its model`);
    if (p.storage.view.pooled !== this.paramBuffer.view.pooled) {
      throw new Error(`${this.kind}.step: parameter ${p} no longer lives in this optimizer's arena (its storage was moved)`);
    }
    if (p.grad !== grad || grad.isDisposed) {
      throw new Error(
        `${this.kind}.step: the gradient of ${p} was replaced or disposed; the optimizer owns param.grad ` +
          '(clear gradients with optimizer.zeroGrad())',
      );
    }
  }

  /** Clears every gradient with one clearBuffer. */
  zeroGrad(): void {
    this.checkAlive('zeroGrad');
    runtime().clear(this.gradBuffer.view);
  }

  /** Views of a parameter's first and second moments (caller disposes the views). */
  state(param: Tensor): { m: Tensor; v: Tensor } {
    this.checkAlive('state');
    const segment = this.layout.segmentOf(param);
    if (!segment) throw new Error(`${this.kind}.state: ${param} is not one of this optimizer's parameters`);
    return { m: this.layout.sliceTensor(this.mBuffer, segment), v: this.layout.sliceTensor(this.vBuffer, segment) };
  }

  /** Clears the moments and the step count (the parameters stay). */
  resetState(): void {
    this.checkAlive('resetState');
    runtime().clear(this.mBuffer.view);
    runtime().clear(this.vBuffer.view);
    this.stepCount = 0;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /**
   * Frees the moments and gradients (param.grad becomes null). The parameters stay valid: they keep the parameter
   * arena alive until they are disposed.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.layout.segments.forEach((segment, k) => {
      const p = segment.tensor;
      if (p.grad === this.grads[k]) p.grad = null;
      this.grads[k].dispose();
      if (managers.get(p) === this) managers.delete(p);
    });
    for (const buffer of [this.paramBuffer, this.gradBuffer, this.mBuffer, this.vBuffer]) buffer.release();
  }
}

/** Adam with decoupled weight decay (Loshchilov & Hutter): w ← w·(1 − lr·λ) before the Adam update. */
export class AdamW extends Adam {
  override get decoupled(): boolean {
    return true;
  }
}
