/**
 * GRUCell (torch.nn.GRUCell semantics and parameter names): weight_ih [3H, I], weight_hh [3H, H], bias_ih and
 * bias_hh [3H], gate rows ordered (r, z, n). torch's init: every parameter uniform(±1/√H).
 * forward(x [B, I], h? [B, H]) → h' [B, H]; a missing h is zeros.
 */
import { gruCell } from '../ops/rnn.ts';
import { zeros } from '../tensor/create.ts';
import type { Rng } from '../tensor/random.ts';
import { Tensor, shapeString } from '../tensor/tensor.ts';
import { defaultGenerator, uniformInit } from './init.ts';
import { Module } from './module.ts';

export class GRUCell extends Module<[Tensor, Tensor?], Tensor> {
  readonly weightIh: Tensor;
  readonly weightHh: Tensor;
  readonly biasIh: Tensor | null;
  readonly biasHh: Tensor | null;

  constructor(
    readonly inputSize: number,
    readonly hiddenSize: number,
    options: { bias?: boolean; rng?: Rng } = {},
  ) {
    super();
    for (const [what, n] of [['inputSize', inputSize], ['hiddenSize', hiddenSize]] as const) {
      if (!Number.isInteger(n) || n < 1) throw new Error(`GRUCell: ${what} must be a positive integer, got ${n}`);
    }
    const rng = options.rng ?? defaultGenerator();
    const bound = 1 / Math.sqrt(hiddenSize);
    const bias = options.bias ?? true;
    this.weightIh = this.addParameter('weight_ih', uniformInit([3 * hiddenSize, inputSize], bound, rng));
    this.weightHh = this.addParameter('weight_hh', uniformInit([3 * hiddenSize, hiddenSize], bound, rng));
    this.biasIh = bias ? this.addParameter('bias_ih', uniformInit([3 * hiddenSize], bound, rng)) : null;
    this.biasHh = bias ? this.addParameter('bias_hh', uniformInit([3 * hiddenSize], bound, rng)) : null;
  }

  protected override describe(): string {
    return `GRUCell(${this.inputSize}, ${this.hiddenSize}${this.biasIh ? '' : ', no bias'})`;
  }

  forward(x: Tensor, h?: Tensor): Tensor {
    if (x.rank !== 2 || x.shape[1] !== this.inputSize) {
      throw new Error(`${this.describe()}: input ${shapeString(x.shape)} must be [B, ${this.inputSize}]`);
    }
    const state = h ?? zeros([x.shape[0], this.hiddenSize]);
    return gruCell(x, state, this.weightIh, this.weightHh, this.biasIh ?? undefined, this.biasHh ?? undefined);
  }
}
