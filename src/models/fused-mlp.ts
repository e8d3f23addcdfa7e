/**
 * `FusedMLP`: an MLP of small widths (each ≤ 64) run by the fused kernels (src/kernels/mlp/fused-mlp.ts): one
 * dispatch for the forward through every layer (see there for where it stands against MLP). It owns one flat parameter
 * 'weights' (per layer W [out, in] row-major, then b [out]; `mlpLayout(widths)` gives the offsets) and initialises
 * each layer exactly as `Linear` does (torch's kaiming-uniform(a = √5) weight, uniform(±1/√in) bias, drawn in the
 * same order), so `new FusedMLP(widths, { rng })` and `new MLP(widths, { rng })` start from the same function.
 * Hidden activation relu; output activation none or sigmoid.
 */
import { mlpLayout, fusedMlp, mlpInfer, mlpInferSupported, type MlpOutputActivation } from '../ops/mlp.ts';
import { isGradEnabled } from '../autograd/tape.ts';
import { reshape } from '../ops/shape.ts';
import { runtime } from '../kernels/runtime/runtime.ts';
import { checkMlpWidths } from '../kernels/mlp/fused-mlp.ts';
import type { Rng } from '../tensor/random.ts';
import { Tensor, shapeString } from '../tensor/tensor.ts';
import { defaultGenerator, kaimingUniform, uniformInit } from './init.ts';
import { Module } from './module.ts';

export interface FusedMLPOptions {
  /** Activation after the last layer. Default 'none'. */
  outputActivation?: MlpOutputActivation;
  rng?: Rng;
}

export class FusedMLP extends Module {
  readonly weights: Tensor;
  readonly outputActivation: MlpOutputActivation;

  /** widths = [in, hidden…, out]; layer k maps widths[k] → widths[k+1], relu after every hidden layer. */
  constructor(
    readonly widths: readonly number[],
    options: FusedMLPOptions = {},
  ) {
    super();
    checkMlpWidths(widths, 'FusedMLP');
    this.outputActivation = options.outputActivation ?? 'none';
    const rng = options.rng ?? defaultGenerator();
    const layout = mlpLayout(widths);
    const flat = Tensor.empty([layout.params]);
    const place = (t: Tensor, offset: number): void => {
      runtime().copy(t.view, { ...flat.view, offset: flat.view.offset + 4 * offset, size: 4 * t.size }, 4 * t.size);
      t.dispose();
    };
    for (let l = 0; l + 1 < widths.length; l++) {
      const [n_in, n_out] = [widths[l], widths[l + 1]];
      place(kaimingUniform([n_out, n_in], Math.sqrt(5), rng), layout.weight[l]);
      place(uniformInit([n_out], 1 / Math.sqrt(n_in), rng), layout.bias[l]);
    }
    this.weights = this.addParameter('weights', flat);
  }

  protected override describe(): string {
    return `FusedMLP([${this.widths.join(', ')}]${this.outputActivation === 'none' ? '' : `, ${this.outputActivation}`})`;
  }

  forward(x: Tensor): Tensor {
    const n_in = this.widths[0];
    if (x.rank < 1 || x.shape[x.rank - 1] !== n_in) {
      throw new Error(`${this.describe()}: input ${shapeString(x.shape)} must end in ${n_in} features`);
    }
    // Where nothing is recorded, CPU adapters take the unrolled forward-only kernel (mlp-infer.ts: 3–5× on lavapipe).
    const recording = isGradEnabled() && (x.requiresGrad || this.weights.requiresGrad);
    const shape = { widths: this.widths, outputActivation: this.outputActivation };
    const run = (rows: Tensor): Tensor =>
      !recording && mlpInferSupported(this.widths)
        ? mlpInfer(rows, this.weights, { widths: this.widths, activation: 'relu', outputActivation: this.outputActivation })
        : fusedMlp(rows, this.weights, shape);
    if (x.rank === 2) return run(x);
    const y = run(reshape(x, [-1, n_in]));
    return reshape(y, [...x.shape.slice(0, -1), this.widths[this.widths.length - 1]]);
  }
}
