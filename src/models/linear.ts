/**
 * Fully connected layers.
 *
 * `Linear` keeps torch's layout: weight [out, in], bias [out], y = x · Wᵀ + b, computed by one matmul with
 * `transB` (free: the kernel reads W through strides) and the bias (and an optional activation) fused into its
 * epilogue. Inputs are [..., in]: 2-D and 3-D go to matmul as they are, other ranks are flattened to [-1, in].
 * `MLP` is a `Sequential` of such layers, each with its activation fused: one dispatch per layer. Where no
 * gradient is recorded on a CPU adapter, an MLP whose weights fit workgroup memory instead runs every layer in one
 * unrolled dispatch (`mlpInfer`, src/kernels/mlp/mlp-infer.ts: 3–5× faster on lavapipe).
 */
import type { Activation } from '../kernels/matmul/matmul.ts';
import { matmul } from '../ops/matmul.ts';
import { MAX_INFER_INPUT_PARTS, mlpInfer, mlpInferSupported, mlpLayout, type ColumnWindow, type RowsAt } from '../ops/mlp.ts';
import { concat, indexAdd, indexSelect, narrow } from '../ops/indexing.ts';
import { reshape } from '../ops/shape.ts';
import { isGradEnabled } from '../autograd/tape.ts';
import { runtime } from '../kernels/runtime/runtime.ts';
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
  private readonly linears: readonly Linear[];
  private readonly hiddenActivation: Activation;
  private readonly outputActivation: Activation;
  private readonly hasBias: boolean;

  constructor(
    readonly widths: readonly number[],
    options: MLPOptions = {},
  ) {
    if (widths.length < 2) throw new Error(`MLP: widths [${widths}] need at least an input and an output width`);
    const rng = options.rng ?? defaultGenerator();
    const hiddenActivation = options.activation ?? 'relu';
    const outputActivation = options.outputActivation ?? 'none';
    const layers = widths.slice(1).map(
      (out, k) =>
        new Linear(widths[k], out, {
          bias: options.bias,
          activation: k === widths.length - 2 ? outputActivation : hiddenActivation,
          rng,
        }),
    );
    super(...layers);
    this.linears = layers;
    this.hiddenActivation = hiddenActivation;
    this.outputActivation = outputActivation;
    this.hasBias = options.bias !== false;
  }

  protected override describe(): string {
    return `MLP([${this.widths.join(', ')}])`;
  }

  override forward(x: Tensor): Tensor {
    const n_in = this.widths[0];
    if (!this.inferenceApplies([x])) return super.forward(x);
    if (x.rank < 1 || x.shape[x.rank - 1] !== n_in) {
      throw new Error(`${this.describe()}: input ${shapeString(x.shape)} must end in ${n_in} features`);
    }
    const rows = x.rank === 2 ? x : reshape(x, [-1, n_in]);
    const y = this.infer([rows]);
    return x.rank === 2 ? y : reshape(y, [...x.shape.slice(0, -1), this.widths[this.widths.length - 1]]);
  }

  /**
   * forward(concat(parts, 1)) for 2-D parts, each a whole tensor or a column window `{ tensor, start, length }`.
   * Where the unrolled kernel applies (no gradient recorded, CPU adapter) it reads up to two parts in place: no
   * concat and no narrow copies. With `at` = { index, rows }, only the rows index[k] are computed, into the same
   * rows of a [rows, out] result that is 0 elsewhere (in place too, where the kernel applies).
   */
  forwardColumns(parts: readonly ColumnWindow[], at?: RowsAt): Tensor {
    const tensors = parts.map((part) => (part instanceof Tensor ? part : part.tensor));
    if (parts.length <= MAX_INFER_INPUT_PARTS && this.inferenceApplies(tensors)) return this.infer(parts, at);
    const columns = parts.map((part) => (part instanceof Tensor ? part : narrow(part.tensor, 1, part.start, part.length)));
    const x = columns.length === 1 ? columns[0] : concat(columns, 1);
    if (!at) return super.forward(x);
    // Only the rows at `at.index`, into a [rows, out] result of zeros elsewhere (what mlpInfer does in place).
    return indexAdd([at.rows, this.widths[this.widths.length - 1]], 0, at.index, super.forward(indexSelect(x, 0, at.index)));
  }

  private infer(parts: readonly ColumnWindow[], at?: RowsAt): Tensor {
    const weights = this.packedWeights();
    const y = mlpInfer(parts, weights, { widths: this.widths, activation: this.hiddenActivation, outputActivation: this.outputActivation }, at);
    weights.dispose();
    return y;
  }

  /** No gradient wanted (nothing would be recorded), biases present, and the one-dispatch path serves the widths. */
  private inferenceApplies(inputs: readonly Tensor[]): boolean {
    if (!this.hasBias) return false;
    if (isGradEnabled() && [...inputs, ...this.parameters()].some((t) => t.requiresGrad)) return false;
    return mlpInferSupported(this.widths);
  }

  /** Every layer's weight and bias copied into one flat tensor in `mlpLayout` order (queued copies, no readback). */
  private packedWeights(): Tensor {
    const layout = mlpLayout(this.widths);
    const flat = Tensor.empty([layout.params]);
    const place = (t: Tensor, offset: number): void =>
      runtime().copy(t.view, { ...flat.view, offset: flat.view.offset + 4 * offset, size: 4 * t.size }, 4 * t.size);
    this.linears.forEach((layer, l) => {
      place(layer.weight, layout.weight[l]);
      place(layer.bias!, layout.bias[l]);
    });
    return flat;
  }
}
