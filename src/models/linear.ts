/**
 * Fully connected layers.
 *
 * `Linear` keeps torch's layout: weight [out, in], bias [out], y = x · Wᵀ + b, computed by one matmul with
 * `transB` (free: the kernel reads W through strides) and the bias (and an optional activation) fused into its
 * epilogue. Inputs are [..., in]: 2-D and 3-D go to matmul as they are, other ranks are flattened to [-1, in].
 * `MLP` is a `Sequential` of such layers, each with its activation fused: one dispatch per layer.
 */
import type { Activation } from '../kernels/matmul/matmul.ts';
import { matmul } from '../ops/matmul.ts';
import { reshape } from '../ops/shape.ts';
import type { Rng } from '../tensor/random.ts';
import { Tensor, shapeString } from '../tensor/tensor.ts';
import { defaultGenerator, kaimingUniform, uniformInit } from './init.ts';
import { Module, Sequential } from './module.ts';

export type { Activation } from '../kernels/matmul/matmul.ts';

export interface LinearOptions {
  /** Default true. */
  bias?: boolean;
  /** Applied in matmul's epilogue. Default 'none'. */
  activation?: Activation;
  rng?: Rng;
}

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly activation: Activation;

  /** torch's default init: weight kaiming-uniform(a = √5), bias uniform(±1/√in). */
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: LinearOptions = {},
  ) {
    super();
    for (const [what, n] of [['inFeatures', inFeatures], ['outFeatures', outFeatures]] as const) {
      if (!Number.isInteger(n) || n < 1) throw new Error(`Linear: ${what} must be a positive integer, got ${n}`);
    }
    const rng = options.rng ?? defaultGenerator();
    this.activation = options.activation ?? 'none';
    this.weight = this.addParameter('weight', kaimingUniform([outFeatures, inFeatures], Math.sqrt(5), rng));
    this.bias = options.bias === false ? null : this.addParameter('bias', uniformInit([outFeatures], 1 / Math.sqrt(inFeatures), rng));
  }

  protected override describe(): string {
    const act = this.activation === 'none' ? '' : `, ${this.activation}`;
    return `Linear(${this.inFeatures} → ${this.outFeatures}${this.bias ? '' : ', no bias'}${act})`;
  }

  forward(x: Tensor): Tensor {
    if (x.rank < 1 || x.shape[x.rank - 1] !== this.inFeatures) {
      throw new Error(`${this.describe()}: input ${shapeString(x.shape)} must end in ${this.inFeatures} features`);
    }
    const opts = { transB: true, bias: this.bias ?? undefined, activation: this.activation };
    if (x.rank === 2 || x.rank === 3) return matmul(x, this.weight, opts);
    const rows = reshape(x, [-1, this.inFeatures]);
    const y = matmul(rows, this.weight, opts);
    return reshape(y, [...x.shape.slice(0, -1), this.outFeatures]);
  }
}

export interface MLPOptions {
  /** Activation after every hidden layer. Default 'relu'. */
  activation?: Activation;
  /** Activation after the last layer. Default 'none'. */
  outputActivation?: Activation;
  bias?: boolean;
  rng?: Rng;
}

/** widths = [in, hidden..., out]; layer k maps widths[k] → widths[k+1]. Parameters: '0.weight', '0.bias', ... */
export class MLP extends Sequential {
  constructor(
    readonly widths: readonly number[],
    options: MLPOptions = {},
  ) {
    if (widths.length < 2) throw new Error(`MLP: widths [${widths}] need at least an input and an output width`);
    const rng = options.rng ?? defaultGenerator();
    const layers = widths.slice(1).map(
      (out, k) =>
        new Linear(widths[k], out, {
          bias: options.bias,
          activation: k === widths.length - 2 ? (options.outputActivation ?? 'none') : (options.activation ?? 'relu'),
          rng,
        }),
    );
    super(...layers);
  }

  protected override describe(): string {
    return `MLP([${this.widths.join(', ')}])`;
  }
}
