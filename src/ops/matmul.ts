/** Differentiable batched matmul with transpose flags and a fused bias + activation epilogue. */
import { defineOp } from '../autograd/op.ts';
import { runtime } from '../kernels/runtime/runtime.ts';
import { matmulGrid, matmulKernel, type Activation } from '../kernels/matmul/matmul.ts';
import { matmulBlockedGrid, matmulBlockedKernel, matmulBlockedShape } from '../kernels/matmul/matmul-blocked.ts';
import { matmulTiledGrid, matmulTiledKernel } from '../kernels/matmul/matmul-tiled.ts';
import { Tensor, shapeString, viewAs } from '../tensor/tensor.ts';
import { unaryGrad } from './elementwise.ts';
import { sum, sumToShape } from './reduce.ts';

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  bias?: Tensor;
  activation?: Activation;
}

interface Dims {
  batch: number;
  M: number;
  N: number;
  K: number;
  aBatched: boolean;
  bBatched: boolean;
}

function matmulDims(a: Tensor, b: Tensor, transA: boolean, transB: boolean): Dims {
  if (a.rank < 2 || a.rank > 3 || b.rank < 2 || b.rank > 3) {
    throw new Error(`matmul: operands must be 2-D or 3-D, got ${shapeString(a.shape)} and ${shapeString(b.shape)}`);
  }
  const [aRows, aCols] = a.shape.slice(-2);
  const [bRows, bCols] = b.shape.slice(-2);
  const M = transA ? aCols : aRows;
  const K = transA ? aRows : aCols;
  const Kb = transB ? bCols : bRows;
  const N = transB ? bRows : bCols;
  if (K !== Kb) {
    throw new Error(
      `matmul: inner dimensions differ: ${shapeString(a.shape)}${transA ? 'ᵀ' : ''} · ${shapeString(b.shape)}${transB ? 'ᵀ' : ''}`,
    );
  }
  const aBatch = a.rank === 3 ? a.shape[0] : 1;
  const bBatch = b.rank === 3 ? b.shape[0] : 1;
  if (aBatch !== bBatch && aBatch !== 1 && bBatch !== 1) {
    throw new Error(`matmul: batch sizes ${aBatch} and ${bBatch} differ`);
  }
  return { batch: Math.max(aBatch, bBatch), M, N, K, aBatched: aBatch > 1, bBatched: bBatch > 1 };
}

/**
 * Which matmul kernel runs: 'blocked' (register-blocked, no workgroup memory: CPU adapters such as lavapipe),
 * 'tiled' (workgroup-memory tiles: real GPUs) or 'generic' (the original 4×4-per-thread kernel).
 */
export type MatmulKernelKind = 'generic' | 'blocked' | 'tiled';

let forcedKind: MatmulKernelKind | null = null;

/** Forces one matmul kernel for every later matmul (tests, benchmarks); null restores the per-adapter choice. */
export function forceMatmulKernel(kind: MatmulKernelKind | null): void {
  forcedKind = kind;
}

/**
 * The kernel matmul uses on this adapter unless forced: register blocking on CPU adapters, tiles on GPUs. Given N
 * (columns of C), CPU adapters take the generic kernel for N < 8: the blocked one gives each 8-lane workgroup
 * 32+ columns, so a 3-column output would leave 7 of 8 lanes idle (measured ~2× slower than generic at N = 3, 4).
 */
export function matmulKernelKind(N = Infinity): MatmulKernelKind {
  if (forcedKind) return forcedKind;
  if (!runtime().gpu.isSoftware) return 'tiled';
  return N < 8 ? 'generic' : 'blocked';
}

/** Queues C = act(op(A)·op(B) + bias) without recording. */
export function matmulRaw(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  const activation = opts.activation ?? 'none';
  const d = matmulDims(a, b, transA, transB);
  if (opts.bias && (opts.bias.size !== d.N)) {
    throw new Error(`matmul: bias ${shapeString(opts.bias.shape)} must have N = ${d.N} elements`);
  }
  const outShape = a.rank === 3 || b.rank === 3 ? [d.batch, d.M, d.N] : [d.M, d.N];
  const c = Tensor.empty(outShape);
  if (c.size === 0) return c;
  const params = {
    M: d.M,
    N: d.N,
    K: d.K,
    a_batch: d.aBatched ? d.M * d.K : 0,
    a_row: transA ? 1 : d.K,
    a_col: transA ? d.M : 1,
    b_batch: d.bBatched ? d.K * d.N : 0,
    b_row: transB ? 1 : d.N,
    b_col: transB ? d.K : 1,
  };
  const buffers = [a.view, b.view, (opts.bias ?? a).view, c.view];
  const hasBias = opts.bias !== undefined;
  const kind = matmulKernelKind(d.N);
  const checkGrid = (grid: [number, number, number]): [number, number, number] => {
    const limit = runtime().device.limits.maxComputeWorkgroupsPerDimension;
    if (grid.some((g) => g > limit)) {
      throw new Error(
        `matmul: ${shapeString(a.shape)} · ${shapeString(b.shape)} needs a ${grid.join('×')} grid for the '${kind}' kernel; ` +
          `the device allows ${limit} workgroups per dimension (split the batch or the rows)`,
      );
    }
    return grid;
  };
  if (kind === 'blocked') {
    // B as vec4s needs 16-byte aligned, contiguous rows (see matmul-blocked.ts); else four strided loads per group.
    const bVec4 = params.b_col === 1 && d.N % 4 === 0 && params.b_batch % 4 === 0;
    const consts = { activation, bias: hasBias, ...matmulBlockedShape(d.M, d.N), bVec4 };
    runtime().dispatch(matmulBlockedKernel, consts, buffers, params, checkGrid(matmulBlockedGrid(d.M, d.N, d.batch, consts)));
  } else if (kind === 'tiled') {
    runtime().dispatch(matmulTiledKernel, { activation, bias: hasBias }, buffers, params, checkGrid(matmulTiledGrid(d.M, d.N, d.batch)));
  } else {
    runtime().dispatch(matmulKernel, { activation, bias: hasBias }, buffers, params, checkGrid(matmulGrid(d.M, d.N, d.batch)));
  }
  return c;
}

/** The activation's derivative expressed through its output y (all our epilogue activations allow that). */
const ACTIVATION_GRAD = { relu: 'relu', sigmoid: 'sigmoid', tanh: 'tanh' } as const;

const matmulOp = defineOp({
  name: 'matmul',
  forward(ctx, a: Tensor, b: Tensor, bias: Tensor | undefined, flags: { transA: boolean; transB: boolean; activation: Activation }) {
    const y = matmulRaw(a, b, { ...flags, bias });
    ctx.save(a, b, y);
    return y;
  },
  backward(ctx, dy) {
    const [a, b, y] = ctx.saved;
    const { transA, transB, activation } = ctx.attrs.find((x) => typeof x === 'object' && x !== null && 'transA' in x) as {
      transA: boolean;
      transB: boolean;
      activation: Activation;
    };
    const hasBias = ctx.needsGrad.length === 3;
    // dZ: the gradient before the activation. relu'(z) = [y > 0], sigmoid' = y(1 − y), tanh' = 1 − y².
    let dZ = dy;
    if (activation !== 'none') {
      dZ = unaryGrad(ACTIVATION_GRAD[activation], y, y, dy);
      ctx.own(dZ);
    }
    const dA = (): Tensor => {
      // Z = op(A)·op(B): d op(A) = dZ·op(B)ᵀ, and dA is its transpose when A was transposed.
      const g = transA ? matmulRaw(b, dZ, { transA: transB, transB: true }) : matmulRaw(dZ, b, { transB: !transB });
      return reduceBatch(g, a);
    };
    const dB = (): Tensor => {
      const g = transB ? matmulRaw(dZ, a, { transA: true, transB: transA }) : matmulRaw(a, dZ, { transA: !transA });
      return reduceBatch(g, b);
    };
    const grads = [dA, dB];
    if (hasBias) {
      grads.push(() => {
        const n = dZ.shape[dZ.rank - 1];
        const rows = viewAs(dZ, [dZ.size / n, n]);
        const dBias = sum(rows, 0);
        rows.dispose();
        return dBias;
      });
    }
    return grads;
  },
});

/** Sums a batched gradient over the batch when the operand was shared across it, then matches its shape. */
function reduceBatch(g: Tensor, operand: Tensor): Tensor {
  if (g.rank === operand.rank) return g;
  const reduced = sumToShape(g, operand.shape);
  g.dispose();
  return reduced;
}

/**
 * op(A)·op(B) (+ bias) (→ activation), for A [M, K] or [batch, M, K] and B likewise (a 2-D operand is shared
 * across the batch). `transA`/`transB` read an operand transposed at no cost.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const flags = { transA: opts.transA ?? false, transB: opts.transB ?? false, activation: opts.activation ?? 'none' };
  return opts.bias ? matmulOp(a, b, opts.bias, flags) : matmulOp(a, b, undefined, flags);
}
