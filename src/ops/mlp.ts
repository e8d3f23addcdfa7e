/**
 * The fused small MLP as a differentiable op: one dispatch for the forward through every layer, one for the
 * backward through every layer (dZ of each layer, and dX when the input wants it), and split-K GEMMs for the
 * weight gradient (one dispatch per layer into per-chunk partials, one deterministic sum). See
 * src/kernels/mlp/fused-mlp.ts for the kernels and the flat weight layout.
 */
import { defineOp } from '../autograd/op.ts';
import { runtime } from '../kernels/runtime/runtime.ts';
import {
  checkMlpWidths,
  fusedMlpBackward,
  fusedMlpForward,
  fusedMlpParams,
  fusedMlpThreads,
  fusedMlpPartialSum,
  fusedMlpWeightPartial,
  mlpLayout,
  splitKChunkRows,
  splitKSlices,
  weightPartialGrid,
  type FusedMlpShape,
} from '../kernels/mlp/fused-mlp.ts';
import {
  MAX_INFER_PARAMS,
  MAX_INPUT_PARTS,
  inferRowsPerThread,
  mlpInferKernel,
  mlpInferThreads,
  type InferActivation,
} from '../kernels/mlp/mlp-infer.ts';
import { Tensor, shapeString } from '../tensor/tensor.ts';

export type { FusedMlpShape, MlpOutputActivation } from '../kernels/mlp/fused-mlp.ts';
export { mlpLayout } from '../kernels/mlp/fused-mlp.ts';

function checkInputs(x: Tensor, weights: Tensor, shape: FusedMlpShape): void {
  checkMlpWidths(shape.widths, 'fusedMlp');
  if (x.rank !== 2 || x.shape[1] !== shape.widths[0]) {
    throw new Error(`fusedMlp: input ${shapeString(x.shape)} must be [rows, ${shape.widths[0]}] for widths [${shape.widths}]`);
  }
  const params = mlpLayout(shape.widths).params;
  if (weights.size !== params) {
    throw new Error(`fusedMlp: weights ${shapeString(weights.shape)} must hold ${params} values for widths [${shape.widths}]`);
  }
  if (x.dtype !== 'f32' || weights.dtype !== 'f32') throw new Error('fusedMlp: input and weights must be f32');
}

/** The weight gradient [params] from every layer's dZ (feature-major) and inputs: split-K, then a fixed-order sum. */
function weightGradient(x: Tensor, hidden: Tensor, dz: Tensor, shape: FusedMlpShape): Tensor {
  const rows = x.shape[0];
  const { widths } = shape;
  const layout = mlpLayout(widths);
  const chunkRows = splitKChunkRows(rows);
  const chunks = Math.max(1, Math.ceil(rows / chunkRows));
  const slices = splitKSlices(rows);
  const grad = Tensor.empty([layout.params]);
  const partial = Tensor.empty([slices, layout.params]);
  for (let l = 0; l + 1 < widths.length; l++) {
    const [n_in, n_out] = [widths[l], widths[l + 1]];
    // Layer l's input, feature-major in \`hidden\` (x transposed at its head).
    const inputAddress = { h_offset: l === 0 ? 0 : layout.hidden[l - 1] * rows, h_row: 1, h_col: rows };
    runtime().dispatch(
      fusedMlpWeightPartial,
      undefined,
      [dz.view, hidden.view, partial.view],
      {
        rows,
        chunk_rows: chunkRows,
        n_out,
        n_in,
        dz_offset: layout.dz[l] * rows,
        ...inputAddress,
        w_offset: layout.weight[l],
        b_offset: layout.bias[l],
        param_count: layout.params,
      },
      weightPartialGrid(n_out, n_in, chunks),
    );
  }
  runtime().dispatch(fusedMlpPartialSum, undefined, [partial.view, grad.view], { count: layout.params, chunks: slices }, layout.params);
  partial.dispose();
  return grad;
}

const fusedMlpOp = defineOp({
  name: 'fusedMlp',
  forward(ctx, x: Tensor, weights: Tensor, shape: FusedMlpShape) {
    checkInputs(x, weights, shape);
    const rows = x.shape[0];
    const { widths, outputActivation } = shape;
    const y = Tensor.empty([rows, widths[widths.length - 1]]);
    const layout = mlpLayout(widths);
    // The hidden activations: the forward's scratch, kept for backward when recording.
    const hidden = Tensor.empty([layout.hiddenFeatures, rows]);
    const layers = widths.length - 1;
    runtime().dispatch(
      fusedMlpForward,
      { layers, outputActivation },
      [x.view, weights.view, y.view, hidden.view],
      fusedMlpParams(rows, widths),
      fusedMlpThreads(rows),
    );
    ctx.save(x, weights, y);
    ctx.own(hidden);
    return y;
  },
  backward(ctx, dy) {
    const [x, weights, y] = ctx.saved;
    const shape = ctx.attrs[0] as FusedMlpShape;
    const { widths, outputActivation } = shape;
    const rows = x.shape[0];
    const layout = mlpLayout(widths);
    const hidden = ctx.owned[0];
    const [inputGrad, weightGrad] = ctx.needsGrad;
    const dz = Tensor.empty([layout.dzFeatures, rows]);
    const dx = Tensor.empty(inputGrad ? x.shape : [1]);
    runtime().dispatch(
      fusedMlpBackward,
      { layers: widths.length - 1, outputActivation, inputGrad },
      [weights.view, y.view, dy.view, hidden.view, dz.view, dx.view],
      fusedMlpParams(rows, widths),
      fusedMlpThreads(rows),
    );
    if (!inputGrad) dx.dispose();
    if (!weightGrad) dz.dispose();
    return [
      inputGrad ? dx : null,
      () => {
        const g = weightGradient(x, hidden, dz, shape);
        dz.dispose();
        return g;
      },
    ];
  },
});

/**
 * A fully fused MLP of small widths (each ≤ 64): x [rows, widths[0]] → [rows, widths.at(-1)], relu after every
 * hidden layer, `outputActivation` after the last. `weights` is the flat parameter tensor (per layer W [out, in]
 * row-major, then b [out]; `mlpLayout(widths)` gives the offsets). Training stores each hidden layer's
 * activations for backward.
 */
export function fusedMlp(x: Tensor, weights: Tensor, shape: FusedMlpShape): Tensor {
  return fusedMlpOp(x, weights, { widths: [...shape.widths], outputActivation: shape.outputActivation });
}

export type { InferActivation } from '../kernels/mlp/mlp-infer.ts';
/** How many input parts `mlpInfer` reads in place. */
export const MAX_INFER_INPUT_PARTS = MAX_INPUT_PARTS;

export interface MlpInferOptions {
  /** [in, hidden…, out]. */
  widths: readonly number[];
  /** After every hidden layer. */
  activation: InferActivation;
  /** After the last layer. */
  outputActivation: InferActivation;
}

/**
 * Whether `mlpInfer` serves these widths on this adapter: CPU adapters only (src/kernels/mlp/mlp-infer.ts says
 * why it wins there; real GPUs keep a matmul per layer), and the weights must fit workgroup memory.
 */
export function mlpInferSupported(widths: readonly number[]): boolean {
  const rt = runtime();
  if (!rt.gpu.isSoftware || widths.length < 2 || widths.some((w) => !Number.isInteger(w) || w < 1)) return false;
  const params = mlpLayout(widths).params;
  return params <= MAX_INFER_PARAMS && 4 * params <= rt.device.limits.maxComputeWorkgroupStorageSize;
}

/** A column window of a 2-D tensor: columns [start, start + length) of every row (a whole tensor: all of them). */
export type ColumnWindow = Tensor | { tensor: Tensor; start: number; length: number };

function windowOf(part: ColumnWindow): { tensor: Tensor; start: number; length: number } {
  return part instanceof Tensor ? { tensor: part, start: 0, length: part.shape[part.rank - 1] } : part;
}

const mlpInferOp = defineOp({
  name: 'mlpInfer',
  // No backward: an input that requires a gradient (with recording on) is an error, raised by defineOp.
  forward(_ctx, weights: Tensor, options: MlpInferOptions, at: { rows: number } | null, starts: number[], lengths: number[], index: Tensor | null, ...parts: Tensor[]) {
    const { widths } = options;
    const layout = mlpLayout(widths);
    const what = `mlpInfer (widths [${widths}])`;
    if (layout.params > MAX_INFER_PARAMS) {
      throw new Error(`${what}: ${layout.params} parameters; at most ${MAX_INFER_PARAMS} fit workgroup memory`);
    }
    if (parts.length < 1 || parts.length > MAX_INPUT_PARTS) throw new Error(`${what}: takes 1 to ${MAX_INPUT_PARTS} input parts, got ${parts.length}`);
    const rows = parts[0].shape[0];
    parts.forEach((x, j) => {
      if (x.rank !== 2 || x.shape[0] !== rows || starts[j] < 0 || starts[j] + lengths[j] > x.shape[1] || !Number.isInteger(starts[j])) {
        throw new Error(`${what}: input part ${j} ${shapeString(x.shape)} must be [${rows}, ≥ ${starts[j] + lengths[j]}] (columns ${starts[j]}…${starts[j] + lengths[j] - 1})`);
      }
      if (x.dtype !== 'f32') throw new Error(`${what}: input part ${j} must be f32`);
    });
    const inputs = lengths.reduce((a, b) => a + b, 0);
    if (inputs !== widths[0]) throw new Error(`${what}: the input parts give ${inputs} columns, not ${widths[0]}`);
    if (weights.size !== layout.params || weights.dtype !== 'f32') {
      throw new Error(`${what}: weights ${shapeString(weights.shape)} must hold ${layout.params} f32 values`);
    }
    if (index && (index.dtype !== 'i32' || index.rank !== 1)) throw new Error(`${what}: the row index must be 1-D i32, got ${index}`);
    const y = Tensor.empty([at ? at.rows : rows, widths[widths.length - 1]]);
    if (at) runtime().clear(y.view);
    const computed = index ? index.size : rows;
    if (computed === 0 || y.size === 0) return y;
    const rowsPerThread = inferRowsPerThread(widths);
    const second = parts[1] ?? parts[0];
    runtime().dispatch(
      mlpInferKernel,
      { widths: [...widths], parts: lengths, activation: options.activation, outputActivation: options.outputActivation, rowsPerThread, indexed: index !== null },
      [parts[0].view, second.view, weights.view, (index ?? weights).view, y.view],
      { rows: computed, x0_stride: parts[0].shape[1], x0_offset: starts[0], x1_stride: second.shape[1], x1_offset: starts[1] ?? 0 },
      mlpInferThreads(computed, rowsPerThread),
    );
    return y;
  },
});

/**
 * Forward-only MLP, every layer unrolled in one dispatch: the input [rows, widths[0]] is `x` or the concatenation
 * of up to two column windows, read in place (`[a, { tensor: b, start: 1, length: 15 }]` is concat([a, b[:, 1:16]])
 * without the copies). Weights flat in `mlpLayout(widths)` order. Records no gradient (use it where none is wanted:
 * rendering, grid queries); `MLP` and `FusedMLP` take this path by themselves under `noGrad` where
 * `mlpInferSupported`.
 */
export function mlpInfer(x: ColumnWindow | readonly ColumnWindow[], weights: Tensor, options: MlpInferOptions, at?: RowsAt): Tensor {
  const windows = (Array.isArray(x) ? x : [x]).map(windowOf);
  if (at && !(Number.isInteger(at.rows) && at.rows >= 0)) throw new Error(`mlpInfer: rows must be a count, got ${at.rows}`);
  return mlpInferOp(
    weights,
    { widths: [...options.widths], activation: options.activation, outputActivation: options.outputActivation },
    at ? { rows: at.rows } : null,
    windows.map((w) => w.start),
    windows.map((w) => w.length),
    at?.index ?? null,
    ...windows.map((w) => w.tensor),
  );
}

/**
 * Computes only some rows, in place: for each entry k of `index` (i32, [K]), input row index[k] of every part goes
 * through the MLP into row index[k] of a [rows, out] result whose other rows are 0. Entries must be below `rows`
 * and the parts' row count (they are read on the GPU, unchecked).
 */
export interface RowsAt {
  index: Tensor;
  rows: number;
}
