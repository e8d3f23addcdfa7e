/**
 * Convolution modules over the conv ops (torch.nn semantics and parameter names/layouts, no groups):
 *   Conv1d:          weight [C_out, C_in, k],       bias [C_out]; x [N, C_in, L]
 *   Conv2d:          weight [C_out, C_in, kh, kw],  bias [C_out]; x [N, C_in, H, W]
 *   ConvTranspose2d: weight [C_in, C_out, kh, kw],  bias [C_out]; x [N, C_in, H, W]
 * torch's default init: weight kaiming-uniform(a = √5), i.e. uniform(±1/√fan_in), and bias uniform(±1/√fan_in), with
 * fan_in = weight.shape[1] · kh · kw (for ConvTranspose2d that is C_out · kh · kw, as in torch).
 */
import { conv1d, conv2d, convTranspose2d, type Pair } from '../ops/conv.ts';
import type { Rng } from '../tensor/random.ts';
import { Tensor, shapeString } from '../tensor/tensor.ts';
import { calculateFans, defaultGenerator, kaimingUniform, uniformInit } from './init.ts';
import { Module } from './module.ts';

export interface ConvModuleOptions<P> {
  stride?: P;
  padding?: P;
  dilation?: P;
  /** Default true. */
  bias?: boolean;
  rng?: Rng;
}

const asPair = (p: Pair): [number, number] => (typeof p === 'number' ? [p, p] : [p[0], p[1]]);

function checkChannels(module: string, values: Record<string, number>): void {
  for (const [name, n] of Object.entries(values)) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`${module}: ${name} must be a positive integer, got ${n}`);
  }
}

function checkInput(module: string, x: Tensor, rank: number, channels: number): void {
  if (x.rank !== rank || x.shape[1] !== channels) {
    const layout = rank === 3 ? '[N, C, L]' : '[N, C, H, W]';
    throw new Error(`${module}: input ${shapeString(x.shape)} must be ${layout} with C = ${channels}`);
  }
}

abstract class ConvBase extends Module<[Tensor], Tensor> {
  /** Creates and registers weight and bias with torch's default init. */
  protected initWeights(weightShape: number[], outChannels: number, bias: boolean, rng: Rng): [Tensor, Tensor | null] {
    const { fanIn } = calculateFans(weightShape);
    const weight = this.addParameter('weight', kaimingUniform(weightShape, Math.sqrt(5), rng, fanIn));
    const b = bias ? this.addParameter('bias', uniformInit([outChannels], 1 / Math.sqrt(fanIn), rng)) : null;
    return [weight, b];
  }
}

export class Conv1d extends ConvBase {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly stride: number;
  readonly padding: number;
  readonly dilation: number;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    options: ConvModuleOptions<number> = {},
  ) {
    super();
    checkChannels('Conv1d', { inChannels, outChannels, kernelSize });
    this.stride = options.stride ?? 1;
    this.padding = options.padding ?? 0;
    this.dilation = options.dilation ?? 1;
    [this.weight, this.bias] = this.initWeights([outChannels, inChannels, kernelSize], outChannels, options.bias ?? true, options.rng ?? defaultGenerator());
  }

  protected override describe(): string {
    return `Conv1d(${this.inChannels} → ${this.outChannels}, k=${this.kernelSize}, stride=${this.stride}, padding=${this.padding})`;
  }

  forward(x: Tensor): Tensor {
    checkInput(this.describe(), x, 3, this.inChannels);
    return conv1d(x, this.weight, this.bias ?? undefined, { stride: this.stride, padding: this.padding, dilation: this.dilation });
  }
}

export class Conv2d extends ConvBase {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly kernelSize: [number, number];
  readonly stride: Pair;
  readonly padding: Pair;
  readonly dilation: Pair;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    options: ConvModuleOptions<Pair> = {},
  ) {
    super();
    this.kernelSize = asPair(kernelSize);
    checkChannels('Conv2d', { inChannels, outChannels, kernelHeight: this.kernelSize[0], kernelWidth: this.kernelSize[1] });
    this.stride = options.stride ?? 1;
    this.padding = options.padding ?? 0;
    this.dilation = options.dilation ?? 1;
    [this.weight, this.bias] = this.initWeights([outChannels, inChannels, ...this.kernelSize], outChannels, options.bias ?? true, options.rng ?? defaultGenerator());
  }

  protected override describe(): string {
    return `Conv2d(${this.inChannels} → ${this.outChannels}, k=${this.kernelSize.join('×')}, stride=${this.stride}, padding=${this.padding})`;
  }

  forward(x: Tensor): Tensor {
    checkInput(this.describe(), x, 4, this.inChannels);
    return conv2d(x, this.weight, this.bias ?? undefined, { stride: this.stride, padding: this.padding, dilation: this.dilation });
  }
}

export interface ConvTranspose2dOptions extends ConvModuleOptions<Pair> {
  outputPadding?: Pair;
}

export class ConvTranspose2d extends ConvBase {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly kernelSize: [number, number];
  readonly stride: Pair;
  readonly padding: Pair;
  readonly dilation: Pair;
  readonly outputPadding: Pair;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    options: ConvTranspose2dOptions = {},
  ) {
    super();
    this.kernelSize = asPair(kernelSize);
    checkChannels('ConvTranspose2d', { inChannels, outChannels, kernelHeight: this.kernelSize[0], kernelWidth: this.kernelSize[1] });
    this.stride = options.stride ?? 1;
    this.padding = options.padding ?? 0;
    this.dilation = options.dilation ?? 1;
    this.outputPadding = options.outputPadding ?? 0;
    [this.weight, this.bias] = this.initWeights([inChannels, outChannels, ...this.kernelSize], outChannels, options.bias ?? true, options.rng ?? defaultGenerator());
  }

  protected override describe(): string {
    return `ConvTranspose2d(${this.inChannels} → ${this.outChannels}, k=${this.kernelSize.join('×')}, stride=${this.stride}, padding=${this.padding})`;
  }

  forward(x: Tensor): Tensor {
    checkInput(this.describe(), x, 4, this.inChannels);
    return convTranspose2d(x, this.weight, this.bias ?? undefined, {
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      outputPadding: this.outputPadding,
    });
  }
}
