/**
 * Normalisation modules over the norm ops (torch.nn semantics and parameter names).
 *   LayerNorm(normalizedShape): normalises over the last normalizedShape.length axes; weight (ones) and bias
 *     (zeros) of that shape when elementwiseAffine (default true).
 *   InstanceNorm2d(numFeatures): normalises each (n, c) plane of [N, C, H, W]; per-channel weight (ones) and bias
 *     (zeros) only when affine (default false, as in torch). No running statistics (torch's default
 *     track_running_stats = False), so train and eval behave the same.
 */
import { layerNorm, instanceNorm } from '../ops/nn.ts';
import { ones, zeros } from '../tensor/create.ts';
import { Tensor, shapeString } from '../tensor/tensor.ts';
import { Module } from './module.ts';

export class LayerNorm extends Module {
  readonly normalizedShape: readonly number[];
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;

  constructor(
    normalizedShape: number | readonly number[],
    readonly options: { eps?: number; elementwiseAffine?: boolean; bias?: boolean } = {},
  ) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    if (this.normalizedShape.length === 0 || this.normalizedShape.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new Error(`LayerNorm: normalizedShape ${shapeString(this.normalizedShape)} must be positive integers`);
    }
    const affine = options.elementwiseAffine ?? true;
    this.weight = affine ? this.addParameter('weight', ones(this.normalizedShape)) : null;
    this.bias = affine && (options.bias ?? true) ? this.addParameter('bias', zeros(this.normalizedShape)) : null;
  }

  get eps(): number {
    return this.options.eps ?? 1e-5;
  }

  protected override describe(): string {
    return `LayerNorm(${shapeString(this.normalizedShape)}, eps=${this.eps})`;
  }

  forward(x: Tensor): Tensor {
    const k = this.normalizedShape.length;
    if (x.rank < k || x.shape.slice(x.rank - k).some((d, i) => d !== this.normalizedShape[i])) {
      throw new Error(`${this.describe()}: input ${shapeString(x.shape)} must end in ${shapeString(this.normalizedShape)}`);
    }
    return layerNorm(x, k, this.weight ?? undefined, this.bias ?? undefined, this.eps);
  }
}

export class InstanceNorm2d extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;

  constructor(
    readonly numFeatures: number,
    readonly options: { eps?: number; affine?: boolean } = {},
  ) {
    super();
    if (!Number.isInteger(numFeatures) || numFeatures < 1) {
      throw new Error(`InstanceNorm2d: numFeatures must be a positive integer, got ${numFeatures}`);
    }
    const affine = options.affine ?? false;
    this.weight = affine ? this.addParameter('weight', ones([numFeatures])) : null;
    this.bias = affine ? this.addParameter('bias', zeros([numFeatures])) : null;
  }

  get eps(): number {
    return this.options.eps ?? 1e-5;
  }

  protected override describe(): string {
    return `InstanceNorm2d(${this.numFeatures}, eps=${this.eps}${this.weight ? ', affine' : ''})`;
  }

  forward(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.numFeatures) {
      throw new Error(`${this.describe()}: input ${shapeString(x.shape)} must be [N, C, H, W] with C = ${this.numFeatures}`);
    }
    return instanceNorm(x, this.weight ?? undefined, this.bias ?? undefined, this.eps);
  }
}
