/**
 * Neural-network ops with fused kernels: softmax / logSoftmax along any axis, layerNorm, instanceNorm.
 *
 * softmax runs one fused kernel per row, reading the row through strides (no permute to the last axis); forward
 * saves y and backward needs only y. The norms share one row-normalisation kernel family (src/kernels/norm):
 * forward saves the per-row mean and 1/std; backward computes dx and the parameter gradients without atomics.
 */
import { defineOp } from '../autograd/op.ts';
import { runtime } from '../kernels/runtime/runtime.ts';
import { softmaxBackward, softmaxForward, rowSplit } from '../kernels/softmax/softmax.ts';
import { rowNormBackward, rowNormForward, rowNormParamGrad, type NormAffine } from '../kernels/norm/norm.ts';
import { Tensor, shapeString, sizeOf, viewAs, type Shape } from '../tensor/tensor.ts';
import { zeros } from '../tensor/create.ts';
import { sum } from './reduce.ts';

function checkF32(op: string, t: Tensor, what: string): void {
  if (t.dtype !== 'f32') throw new Error(`${op}: ${what} must be f32, got ${t}`);
}

const sameShape = (a: Shape, b: Shape): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

// ---------------------------------------------------------------------------------------------------------------
// softmax / logSoftmax

function rowParams(shape: Shape, axis: number): { rows: number; len: number; inner: number } {
  const [outer, len, inner] = rowSplit(shape, axis);
  return { rows: outer * inner, len, inner };
}

/**
 * How row kernels (softmax, norms) map rows to threads: 'auto' picks by adapter and row length; 'thread' /
 * 'workgroup' force one thread per row / one workgroup per row (tests, benchmarks).
 */
export const rowKernelPolicy: { mapping: 'auto' | 'thread' | 'workgroup' } = { mapping: 'auto' };

/** Threads of a cooperative row workgroup (the kernels' WORKGROUP). */
const ROW_WORKGROUP = 64;

/**
 * On lavapipe one thread per row was as fast or faster at every shape measured (softmax and layerNorm forward
 * of 1 M elements: a tie within noise at [64, 16384]; 1.3–13× faster from [256, 4096] to [16384, 64]), since
 * a workgroup's barriers are costly on a CPU (2 shared cores under load, so the figures are rough).
 * On a GPU a workgroup per row reads a row coalesced and keeps the device busy with few rows; the switch at
 * 64 elements per row is the usual rule of thumb, not measured here.
 */
function cooperativeRows(_rows: number, len: number): boolean {
  if (rowKernelPolicy.mapping !== 'auto') return rowKernelPolicy.mapping === 'workgroup';
  return !runtime().gpu.isSoftware && len >= 64;
}

/** The thread count to dispatch for `rows` rows: a workgroup each, or a thread each. */
const rowThreads = (rows: number, cooperative: boolean): number => (cooperative ? rows * ROW_WORKGROUP : rows);

const makeSoftmax = (log: boolean) =>
  defineOp({
    name: log ? 'logSoftmax' : 'softmax',
    forward(ctx, x: Tensor, axis: number) {
      const y = Tensor.empty(x.shape);
      const params = rowParams(x.shape, axis);
      const cooperative = cooperativeRows(params.rows, params.len);
      if (x.size > 0) runtime().dispatch(softmaxForward, { log, cooperative }, [x.view, y.view], params, rowThreads(params.rows, cooperative));
      ctx.save(y);
      return y;
    },
    backward(ctx, dy) {
      const [y] = ctx.saved;
      const axis = ctx.attrs[0] as number;
      return [
        () => {
          const dx = Tensor.empty(y.shape);
          const params = rowParams(y.shape, axis);
          const cooperative = cooperativeRows(params.rows, params.len);
          if (y.size > 0) {
            runtime().dispatch(softmaxBackward, { log, cooperative }, [y.view, dy.view, dx.view], params, rowThreads(params.rows, cooperative));
          }
          return dx;
        },
      ];
    },
  });

const softmaxOp = makeSoftmax(false);
const logSoftmaxOp = makeSoftmax(true);

function softmaxAxis(op: string, x: Tensor, axis: number): number {
  checkF32(op, x, 'x');
  const a = axis < 0 ? axis + x.rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= x.rank) throw new Error(`${op}: axis ${axis} is out of range for ${shapeString(x.shape)}`);
  return a;
}

/** exp(x) / Σ exp(x) along `axis`, numerically stable (the row max is subtracted first). */
export const softmax = (x: Tensor, axis = -1): Tensor => softmaxOp(x, softmaxAxis('softmax', x, axis));
/** x − log Σ exp(x) along `axis`, numerically stable. */
export const logSoftmax = (x: Tensor, axis = -1): Tensor => logSoftmaxOp(x, softmaxAxis('logSoftmax', x, axis));

// ---------------------------------------------------------------------------------------------------------------
// layerNorm / instanceNorm

interface NormConfig {
  affine: NormAffine;
  rows: number;
  len: number;
  channels: number;
  eps: number;
  /** Shape of weight and bias. */
  paramShape: number[];
  hasWeight: boolean;
  hasBias: boolean;
}

const makeRowNormOp = (name: string) => defineOp({
  name,
  forward(ctx, x: Tensor, weight: Tensor | null, bias: Tensor | null, cfg: NormConfig) {
    const y = Tensor.empty(x.shape);
    const mean = Tensor.empty([cfg.rows]);
    const rstd = Tensor.empty([cfg.rows]);
    if (x.size > 0) {
      const cooperative = cooperativeRows(cfg.rows, cfg.len);
      runtime().dispatch(
        rowNormForward,
        { affine: cfg.affine, weight: cfg.hasWeight, bias: cfg.hasBias, cooperative },
        // An absent weight or bias is not read: x stands in for its binding.
        [x.view, (weight ?? x).view, (bias ?? x).view, y.view, mean.view, rstd.view],
        { rows: cfg.rows, len: cfg.len, channels: cfg.channels, eps: cfg.eps },
        rowThreads(cfg.rows, cooperative),
      );
    }
    ctx.save(x, ...(weight ? [weight] : []));
    ctx.own(mean, rstd);
    return y;
  },
  backward(ctx, dy) {
    const [x, weight] = ctx.saved;
    const [mean, rstd] = ctx.owned;
    const cfg = ctx.attrs[ctx.attrs.length - 1] as NormConfig;
    const [needX, ...needParams] = ctx.needsGrad;
    const needWeight = cfg.hasWeight && needParams[0];
    const needBias = cfg.hasBias && needParams[cfg.hasWeight ? 1 : 0];
    let dx: Tensor | null = null;
    let dweight: Tensor | null = null;
    let dbias: Tensor | null = null;

    if (x.size === 0) {
      if (needX) dx = zeros(x.shape);
      if (needWeight) dweight = zeros(cfg.paramShape);
      if (needBias) dbias = zeros(cfg.paramShape);
    } else {
      const channelParams = cfg.affine === 'channel' && (needWeight || needBias);
      if (needX || channelParams) {
        dx = Tensor.empty(x.shape);
        const sumDy = Tensor.empty([cfg.rows]);
        const sumDyXhat = Tensor.empty([cfg.rows]);
        const cooperative = cooperativeRows(cfg.rows, cfg.len);
        runtime().dispatch(
          rowNormBackward,
          { affine: cfg.affine, weight: cfg.hasWeight, cooperative },
          [x.view, (weight ?? x).view, mean.view, rstd.view, dy.view, dx.view, sumDy.view, sumDyXhat.view],
          { rows: cfg.rows, len: cfg.len, channels: cfg.channels },
          rowThreads(cfg.rows, cooperative),
        );
        if (channelParams) {
          // rows = N · C: the channel gradient sums the row sums over N.
          const perChannel = (rowSums: Tensor): Tensor => {
            const grid = viewAs(rowSums, [cfg.rows / cfg.channels, cfg.channels]);
            const total = sum(grid, 0);
            grid.dispose();
            return total;
          };
          if (needWeight) dweight = perChannel(sumDyXhat);
          if (needBias) dbias = perChannel(sumDy);
        }
        sumDy.dispose();
        sumDyXhat.dispose();
        if (!needX) {
          dx.dispose();
          dx = null;
        }
      }
      if (cfg.affine === 'element' && (needWeight || needBias)) {
        // Enough (chunk, column) threads to keep the device busy, each summing a run of rows in order.
        const chunks = Math.max(1, Math.min(Math.ceil(cfg.rows / 16), Math.ceil(4096 / cfg.len)));
        const chunkRows = Math.ceil(cfg.rows / chunks);
        const used = Math.ceil(cfg.rows / chunkRows);
        const dwPartial = Tensor.empty([used, cfg.len]);
        const dbPartial = Tensor.empty([used, cfg.len]);
        runtime().dispatch(
          rowNormParamGrad,
          undefined,
          [x.view, mean.view, rstd.view, dy.view, dwPartial.view, dbPartial.view],
          { rows: cfg.rows, len: cfg.len, chunks: used, chunk_rows: chunkRows },
          used * cfg.len,
        );
        const fold = (partial: Tensor): Tensor => {
          const total = used === 1 ? viewAs(partial, [cfg.len]) : sum(partial, 0);
          const shaped = viewAs(total, cfg.paramShape);
          total.dispose();
          return shaped;
        };
        if (needWeight) dweight = fold(dwPartial);
        if (needBias) dbias = fold(dbPartial);
        dwPartial.dispose();
        dbPartial.dispose();
      }
    }
    return [dx, ...(cfg.hasWeight ? [dweight] : []), ...(cfg.hasBias ? [dbias] : [])];
  },
});

const layerNormOp = makeRowNormOp('layerNorm');
const instanceNormOp = makeRowNormOp('instanceNorm');

function checkParam(op: string, param: Tensor | undefined, shape: Shape, what: string): void {
  if (!param) return;
  checkF32(op, param, what);
  if (!sameShape(param.shape, shape)) {
    throw new Error(`${op}: ${what} ${shapeString(param.shape)} must have shape ${shapeString(shape)}`);
  }
}

/**
 * Layer normalisation over the last `normalizedDims` axes (torch.nn.functional.layer_norm with normalized_shape =
 * x.shape.slice(-normalizedDims)): biased variance, optional elementwise weight and bias of that shape.
 */
export function layerNorm(x: Tensor, normalizedDims: number, weight?: Tensor, bias?: Tensor, eps = 1e-5): Tensor {
  checkF32('layerNorm', x, 'x');
  if (!Number.isInteger(normalizedDims) || normalizedDims < 1 || normalizedDims > x.rank) {
    throw new Error(`layerNorm: normalizedDims ${normalizedDims} must be in 1..${x.rank} for ${shapeString(x.shape)}`);
  }
  const paramShape = x.shape.slice(x.rank - normalizedDims);
  checkParam('layerNorm', weight, paramShape, 'weight');
  checkParam('layerNorm', bias, paramShape, 'bias');
  const len = sizeOf(paramShape);
  const rows = len === 0 ? 0 : x.size / len;
  const cfg: NormConfig = { affine: 'element', rows, len, channels: 1, eps, paramShape, hasWeight: !!weight, hasBias: !!bias };
  return layerNormOp(x, weight ?? null, bias ?? null, cfg);
}

/**
 * Instance normalisation (torch InstanceNorm1d/2d/3d semantics without running statistics): x is [N, C, ...spatial]
 * and every (n, c) plane is normalised over its spatial elements; optional per-channel weight and bias [C].
 */
export function instanceNorm(x: Tensor, weight?: Tensor, bias?: Tensor, eps = 1e-5): Tensor {
  checkF32('instanceNorm', x, 'x');
  if (x.rank < 3) throw new Error(`instanceNorm: x must be [N, C, ...spatial] (rank ≥ 3), got ${shapeString(x.shape)}`);
  const channels = x.shape[1];
  checkParam('instanceNorm', weight, [channels], 'weight');
  checkParam('instanceNorm', bias, [channels], 'bias');
  const rows = x.shape[0] * channels;
  const len = sizeOf(x.shape.slice(2));
  const cfg: NormConfig = {
    affine: 'channel',
    rows,
    len,
    channels: Math.max(1, channels),
    eps,
    paramShape: [channels],
    hasWeight: !!weight,
    hasBias: !!bias,
  };
  return instanceNormOp(x, weight ?? null, bias ?? null, cfg);
}
