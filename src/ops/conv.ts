/**
 * Differentiable convolutions with torch semantics: conv1d, conv2d, convTranspose2d.
 *
 * Two kernels do all the work (src/kernels/conv): `conv2d` in its 'direct' and 'transposed' index mappings, and
 * `conv2d_weight_grad`. The gradient of a convolution w.r.t. its input is the transposed convolution of dL/dy with
 * the same weight (and vice versa), so:
 *   conv2d:          y = direct(x, w)      dx = transposed(dy, w)   dw = weightGrad(A = dy, B = x)
 *   convTranspose2d: y = transposed(x, w)  dx = direct(dy, w)       dw = weightGrad(A = x, B = dy)
 * and the bias gradient is dL/dy summed over batch and pixels. conv1d is conv2d with H = 1.
 */
import { defineOp } from '../autograd/op.ts';
import { runtime } from '../kernels/runtime/runtime.ts';
import { conv2dGrid, conv2dKernel, convOutputSize, convTransposeOutputSize, type ConvMode } from '../kernels/conv/conv2d.ts';
import { conv2dWeightGradKernel, conv2dWeightGradLaunch } from '../kernels/conv/conv2d-weight-grad.ts';
import { Tensor, shapeString, viewAs, type Shape } from '../tensor/tensor.ts';
import { sumToShape } from './reduce.ts';
import { reshape } from './shape.ts';

export type Pair = number | [number, number];

export interface Conv1dOptions {
  stride?: number;
  padding?: number;
  dilation?: number;
}

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  /** Spacing between kernel taps (torch's `dilation`); 1 by default. */
  dilation?: Pair;
}

export interface ConvTranspose2dOptions extends Conv2dOptions {
  /** Extra rows/columns added to one side of the output (torch's `output_padding`); each < max(stride, dilation). */
  outputPadding?: Pair;
}

/** Stride, padding and dilation as (height, width) pairs. */
interface Geometry {
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
}

function pair(op: string, name: string, value: Pair | undefined, fallback: number, min: number): [number, number] {
  const p: [number, number] = value === undefined ? [fallback, fallback] : typeof value === 'number' ? [value, value] : [value[0], value[1]];
  if (!p.every((v) => Number.isInteger(v) && v >= min)) {
    throw new Error(`${op}: ${name} must be an integer ≥ ${min} or a pair of them, got ${JSON.stringify(value)}`);
  }
  return p;
}

function geometry(op: string, opts: Conv2dOptions): Geometry {
  return {
    stride: pair(op, 'stride', opts.stride, 1, 1),
    padding: pair(op, 'padding', opts.padding, 0, 0),
    dilation: pair(op, 'dilation', opts.dilation, 1, 1),
  };
}

function checkOperands(op: string, x: Tensor, weight: Tensor, bias: Tensor | undefined, inChannelsAxis: number, outChannelsAxis: number): void {
  for (const t of [x, weight, ...(bias ? [bias] : [])]) {
    if (t.dtype !== 'f32') throw new Error(`${op}: expected f32 tensors, got ${t}`);
  }
  if (x.rank !== 4 || weight.rank !== 4) {
    throw new Error(`${op}: x must be [N, C, H, W] and weight 4-D, got x ${shapeString(x.shape)} and weight ${shapeString(weight.shape)}`);
  }
  if (x.shape[1] !== weight.shape[inChannelsAxis]) {
    throw new Error(
      `${op}: x ${shapeString(x.shape)} has ${x.shape[1]} channels but weight ${shapeString(weight.shape)} expects ` +
        `${weight.shape[inChannelsAxis]} (weight axis ${inChannelsAxis})`,
    );
  }
  if (weight.shape[2] < 1 || weight.shape[3] < 1) throw new Error(`${op}: empty kernel ${shapeString(weight.shape)}`);
  const outChannels = weight.shape[outChannelsAxis];
  if (bias && (bias.rank !== 1 || bias.size !== outChannels)) {
    throw new Error(`${op}: bias ${shapeString(bias.shape)} must be [${outChannels}] (one per output channel)`);
  }
}

function checkOutput(op: string, x: Tensor, weight: Tensor, out: Shape, g: Geometry): void {
  if (out[2] < 1 || out[3] < 1) {
    throw new Error(
      `${op}: output would be empty (${out[2]}×${out[3]}) for x ${shapeString(x.shape)}, weight ${shapeString(weight.shape)}, ` +
        `stride [${g.stride}], padding [${g.padding}], dilation [${g.dilation}]`,
    );
  }
}

/**
 * Queues one conv2d-kernel launch: out [N, c_out, h_out, w_out] from input [N, c_in, h_in, w_in], reading the weight
 * as W(o, i, ky, kx) = weight[o·wOutStride + i·wInStride + ky·kw + kx]. Not recorded.
 */
function launchConv(
  mode: ConvMode,
  input: Tensor,
  weight: Tensor,
  kernelSize: [number, number],
  weightStrides: { out: number; in: number },
  bias: Tensor | undefined,
  outShape: Shape,
  g: Geometry,
): Tensor {
  const out = Tensor.empty(outShape);
  if (out.size === 0) return out;
  const [n, cIn, hIn, wIn] = input.shape;
  const [, cOut, hOut, wOut] = outShape;
  const grid = conv2dGrid(cOut, n * hOut * wOut);
  if (grid[0] > 65535) throw new Error(`conv2d: ${n}×${hOut}×${wOut} output positions exceed one dispatch; split the batch`);
  const params = {
    n,
    c_in: cIn,
    h_in: hIn,
    w_in: wIn,
    c_out: cOut,
    h_out: hOut,
    w_out: wOut,
    kh: kernelSize[0],
    kw: kernelSize[1],
    stride_h: g.stride[0],
    stride_w: g.stride[1],
    pad_h: g.padding[0],
    pad_w: g.padding[1],
    dil_h: g.dilation[0],
    dil_w: g.dilation[1],
    w_out_stride: weightStrides.out,
    w_in_stride: weightStrides.in,
  };
  runtime().dispatch(conv2dKernel, { mode, bias: bias !== undefined }, [input.view, weight.view, (bias ?? weight).view, out.view], params, grid);
  return out;
}

/**
 * dw[a, b, ky, kx] = Σ A[n, a, oy, ox] · B[n, b, oy·s − p + ky·d, ox·s − p + kx·d], shaped [A channels, B channels,
 * kh, kw]. Split over row chunks when the weight alone gives few workgroups; the chunks are summed after.
 */
function weightGrad(a: Tensor, b: Tensor, kernelSize: [number, number], g: Geometry): Tensor {
  const [n, aChans, aH, aW] = a.shape;
  const [, bChans, bH, bW] = b.shape;
  const [kh, kw] = kernelSize;
  const cols = bChans * kh * kw;
  const launch = conv2dWeightGradLaunch(aChans, bChans, kh * kw, n * aH);
  const partial = Tensor.empty([launch.chunks, aChans * cols]);
  const params = {
    n,
    a_chans: aChans,
    a_h: aH,
    a_w: aW,
    b_chans: bChans,
    b_h: bH,
    b_w: bW,
    kh,
    kw,
    stride_h: g.stride[0],
    stride_w: g.stride[1],
    pad_h: g.padding[0],
    pad_w: g.padding[1],
    dil_h: g.dilation[0],
    dil_w: g.dilation[1],
    rows_per_chunk: launch.rowsPerChunk,
  };
  runtime().dispatch(conv2dWeightGradKernel, undefined, [a.view, b.view, partial.view], params, launch.grid);
  const summed = launch.chunks === 1 ? partial : sumToShape(partial, [aChans * cols]);
  const dw = viewAs(summed, [aChans, bChans, kh, kw]);
  summed.dispose();
  if (summed !== partial) partial.dispose();
  return dw;
}

/** dL/dbias: dL/dy [N, C, H, W] summed over N, H and W. */
function biasGrad(dy: Tensor): Tensor {
  const channels = dy.shape[1];
  const kept = sumToShape(dy, [1, channels, 1, 1]);
  const db = viewAs(kept, [channels]);
  kept.dispose();
  return db;
}

const conv2dOp = defineOp({
  name: 'conv2d',
  forward(ctx, g: Geometry, x: Tensor, weight: Tensor, bias?: Tensor) {
    checkOperands('conv2d', x, weight, bias, 1, 0);
    const [cOut, cIn, kh, kw] = weight.shape;
    const outShape = [
      x.shape[0],
      cOut,
      convOutputSize(x.shape[2], kh, g.stride[0], g.padding[0], g.dilation[0]),
      convOutputSize(x.shape[3], kw, g.stride[1], g.padding[1], g.dilation[1]),
    ];
    checkOutput('conv2d', x, weight, outShape, g);
    ctx.save(x, weight);
    return launchConv('direct', x, weight, [kh, kw], { out: cIn * kh * kw, in: kh * kw }, bias, outShape, g);
  },
  backward(ctx, dy) {
    const [x, weight] = ctx.saved;
    const g = ctx.attrs[0] as Geometry;
    const [, cIn, kh, kw] = weight.shape;
    // dx[n, ci] = Σ_co dy[n, co] ⋆ᵀ w[co, ci]: the transposed mapping with W(o = ci, i = co) = w[co, ci].
    const dx = (): Tensor => launchConv('transposed', dy, weight, [kh, kw], { out: kh * kw, in: cIn * kh * kw }, undefined, x.shape, g);
    const dw = (): Tensor => weightGrad(dy, x, [kh, kw], g);
    return ctx.needsGrad.length === 3 ? [dx, dw, () => biasGrad(dy)] : [dx, dw];
  },
});

const convTranspose2dOp = defineOp({
  name: 'convTranspose2d',
  forward(ctx, g: Geometry, outputPadding: [number, number], x: Tensor, weight: Tensor, bias?: Tensor) {
    checkOperands('convTranspose2d', x, weight, bias, 0, 1);
    const [, cOut, kh, kw] = weight.shape;
    const outShape = [
      x.shape[0],
      cOut,
      convTransposeOutputSize(x.shape[2], kh, g.stride[0], g.padding[0], g.dilation[0], outputPadding[0]),
      convTransposeOutputSize(x.shape[3], kw, g.stride[1], g.padding[1], g.dilation[1], outputPadding[1]),
    ];
    checkOutput('convTranspose2d', x, weight, outShape, g);
    ctx.save(x, weight);
    return launchConv('transposed', x, weight, [kh, kw], { out: kh * kw, in: cOut * kh * kw }, bias, outShape, g);
  },
  backward(ctx, dy) {
    const [x, weight] = ctx.saved;
    const g = ctx.attrs[0] as Geometry;
    const [, cOut, kh, kw] = weight.shape;
    // dx[n, ci] = Σ_co w[ci, co] ⋆ dy[n, co]: the direct mapping with W(o = ci, i = co) = w[ci, co].
    const dx = (): Tensor => launchConv('direct', dy, weight, [kh, kw], { out: cOut * kh * kw, in: kh * kw }, undefined, x.shape, g);
    const dw = (): Tensor => weightGrad(x, dy, [kh, kw], g);
    return ctx.needsGrad.length === 3 ? [dx, dw, () => biasGrad(dy)] : [dx, dw];
  },
});

/** torch.nn.functional.conv2d (no groups): x [N, C_in, H, W], weight [C_out, C_in, kh, kw] → [N, C_out, H_out, W_out]. */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor, opts: Conv2dOptions = {}): Tensor {
  const g = geometry('conv2d', opts);
  return bias ? conv2dOp(g, x, weight, bias) : conv2dOp(g, x, weight);
}

/** torch.nn.functional.conv1d (no groups): x [N, C_in, L], weight [C_out, C_in, k] → [N, C_out, L_out]. */
export function conv1d(x: Tensor, weight: Tensor, bias?: Tensor, opts: Conv1dOptions = {}): Tensor {
  if (x.rank !== 3 || weight.rank !== 3) {
    throw new Error(`conv1d: x must be [N, C, L] and weight [C_out, C_in, k], got ${shapeString(x.shape)} and ${shapeString(weight.shape)}`);
  }
  const g = geometry('conv1d', { stride: [1, opts.stride ?? 1], padding: [0, opts.padding ?? 0], dilation: [1, opts.dilation ?? 1] });
  const [n, cIn, length] = x.shape;
  const [cOut, wIn, k] = weight.shape;
  const x4 = reshape(x, [n, cIn, 1, length]);
  const w4 = reshape(weight, [cOut, wIn, 1, k]);
  const y4 = bias ? conv2dOp(g, x4, w4, bias) : conv2dOp(g, x4, w4);
  // The 4-D views stay alive with the enclosing scope: the tape's conv2d node reads them in backward.
  return reshape(y4, [n, cOut, y4.shape[3]]);
}

/**
 * torch.nn.functional.conv_transpose2d (no groups): x [N, C_in, H, W], weight [C_in, C_out, kh, kw] →
 * [N, C_out, (H − 1)·s − 2p + d·(kh − 1) + outputPadding + 1, …].
 */
export function convTranspose2d(x: Tensor, weight: Tensor, bias?: Tensor, opts: ConvTranspose2dOptions = {}): Tensor {
  const g = geometry('convTranspose2d', opts);
  const outputPadding = pair('convTranspose2d', 'outputPadding', opts.outputPadding, 0, 0);
  for (let k = 0; k < 2; k++) {
    if (outputPadding[k] >= Math.max(g.stride[k], g.dilation[k])) {
      throw new Error(
        `convTranspose2d: outputPadding [${outputPadding}] must be smaller than max(stride, dilation) per axis ` +
          `(stride [${g.stride}], dilation [${g.dilation}])`,
      );
    }
  }
  return bias ? convTranspose2dOp(g, outputPadding, x, weight, bias) : convTranspose2dOp(g, outputPadding, x, weight);
}
