import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as nd from '../src/index.ts';
import { reduceReference } from '../src/kernels/reduce/reduce.ts';
import { matmulReference, type Activation } from '../src/kernels/matmul/matmul.ts';
import { checkOp } from './helpers/check-op.ts';

describe('reductions', () => {
  const cases: [number[], number[] | undefined][] = [
    [[1], undefined],
    [[7], [0]],
    [[3, 5], [1]],
    [[3, 5], [0]],
    [[2, 3, 4], [0, 2]],
    [[4, 3, 5, 2], [1, 3]],
    [[5000], undefined], // chunked two-pass path
    [[3, 4100], [1]],
  ];
  for (const [shape, axes] of cases) {
    const axisList = axes ?? shape.map((_, k) => k);
    const n = axisList.reduce((p, k) => p * shape[k], 1);
    it(`sum ${JSON.stringify(shape)} over ${JSON.stringify(axes)}`, async () => {
      await checkOp({
        name: 'sum',
        inputs: [{ shape }],
        gpu: (x) => nd.sum(x, axes),
        ref: (x) => reduceReference('sum', x, shape, axisList),
        refBackward: ([x], dy) => [x.map((_, i) => dy[outIndex(i, shape, axisList)])],
        rtol: 1e-5 * Math.sqrt(n),
        atol: 1e-5 * Math.sqrt(n),
      });
    });
    it(`mean ${JSON.stringify(shape)} over ${JSON.stringify(axes)}`, async () => {
      await checkOp({
        name: 'mean',
        inputs: [{ shape }],
        gpu: (x) => nd.mean(x, axes, true),
        ref: (x) => reduceReference('sum', x, shape, axisList, 1 / n),
        refBackward: ([x], dy) => [x.map((_, i) => dy[outIndex(i, shape, axisList)] / n)],
        rtol: 1e-5 * Math.sqrt(n),
        atol: 1e-6 * Math.sqrt(n),
      });
    });
    for (const op of ['max', 'min'] as const) {
      it(`${op} ${JSON.stringify(shape)} over ${JSON.stringify(axes)}`, async () => {
        await checkOp({
          name: op,
          inputs: [{ shape }],
          gpu: (x) => (op === 'max' ? nd.max(x, axes) : nd.min(x, axes)),
          ref: (x) => reduceReference(op, x, shape, axisList),
          refBackward: ([x], dy) => {
            const best = reduceReference(op, x, shape, axisList);
            return [x.map((v, i) => (v === best[outIndex(i, shape, axisList)] ? dy[outIndex(i, shape, axisList)] : 0))];
          },
          fdStep: 1e-7,
        });
      });
    }
  }

  it('max shares the gradient equally among ties', async () => {
    const x = nd.tensor([1, 3, 3, 2], [4]);
    x.requiresGrad = true;
    nd.scope(() => nd.backward(nd.max(x)));
    expect([...(await x.grad!.data())]).toEqual([0, 0.5, 0.5, 0]);
    x.dispose();
  });
});

/** Index of element i's reduction output (reduced axes collapsed). */
function outIndex(i: number, shape: number[], axes: number[]): number {
  let index = 0;
  let stride = 1;
  for (let k = shape.length - 1; k >= 0; k--) {
    const c = i % shape[k];
    i = Math.floor(i / shape[k]);
    if (!axes.includes(k)) {
      index += c * stride;
      stride *= shape[k];
    }
  }
  return index;
}

// Every matmul kernel is forced in turn, whatever this adapter would choose: generic (4×4 per thread), blocked
// (register-blocked for CPU adapters; vec4 and strided B paths, 4, 8 or 12 rows, 1, 2 or 4 vec4 groups per thread) and
// tiled (workgroup memory, for GPUs). The forward and both backward matmuls run on the forced kernel.
describe.each(['generic', 'blocked', 'tiled'] as const)('matmul (%s kernel)', (kind) => {
  beforeAll(() => nd.forceMatmulKernel(kind));
  afterAll(() => nd.forceMatmulKernel(null));

  const cases: { M: number; N: number; K: number; batch?: number; transA?: boolean; transB?: boolean; bias?: boolean; act?: Activation; shareB?: boolean }[] = [
    { M: 1, N: 1, K: 1 },
    { M: 5, N: 7, K: 3 },
    { M: 33, N: 37, K: 35 },
    { M: 17, N: 9, K: 13, transA: true },
    { M: 17, N: 9, K: 13, transB: true },
    { M: 6, N: 11, K: 10, transA: true, transB: true },
    { M: 9, N: 40, K: 8, bias: true, act: 'relu' },
    { M: 9, N: 5, K: 8, bias: true, act: 'sigmoid' },
    { M: 4, N: 6, K: 5, bias: true, act: 'tanh' },
    { M: 5, N: 6, K: 4, batch: 3 },
    { M: 5, N: 6, K: 4, batch: 3, shareB: true, transB: true, bias: true },
    // blocked: 4 vec4 groups, two workgroups across N with a ragged edge, vec4 B
    { M: 9, N: 132, K: 20 },
    // blocked: 2 vec4 groups, vec4 B, fused epilogue, 12 rows per thread with a ragged last block
    { M: 19, N: 48, K: 7, bias: true, act: 'relu' },
    // blocked: 4 rows per thread (M < 8), vec4 B with a batch stride
    { M: 3, N: 8, K: 5, batch: 2 },
    // blocked: strided B although N is a multiple of 4
    { M: 12, N: 20, K: 9, transB: true },
    // tiled: several 64×64 tiles and 16-deep K steps with ragged edges everywhere
    { M: 70, N: 67, K: 40, transA: true },
  ];
  for (const c of cases) {
    const { M, N, K } = c;
    const batch = c.batch ?? 1;
    const batched = c.batch !== undefined;
    const aShape = c.transA ? [K, M] : [M, K];
    const bShape = c.transB ? [N, K] : [K, N];
    const aFull = batched ? [batch, ...aShape] : aShape;
    const bFull = batched && !c.shareB ? [batch, ...bShape] : bShape;
    it(`${kind} ${JSON.stringify(c)}`, async () => {
      const dims = { batch, M, N, K, transA: !!c.transA, transB: !!c.transB, aBatched: batched, bBatched: batched && !c.shareB };
      await checkOp({
        name: 'matmul',
        inputs: [{ shape: aFull }, { shape: bFull }, ...(c.bias ? [{ shape: [N] }] : [])],
        gpu: (a, b, bias) => nd.matmul(a, b, { transA: c.transA, transB: c.transB, bias, activation: c.act }),
        ref: (a, b, bias) => matmulReference(a, b, dims, bias ?? null, c.act ?? 'none'),
        rtol: 1e-5 * Math.sqrt(K),
        atol: 1e-5 * Math.sqrt(K),
        gradRtol: 1e-4,
        gradAtol: 1e-4,
      });
    });
  }
});

describe('matmul limits', () => {
  it('names the grid limit instead of failing at submit when the rows need too many workgroups', () => {
    nd.forceMatmulKernel('blocked');
    try {
      const rows = 12 * 65535 + 1; // 12 rows per workgroup → 65536 workgroups along y
      const x = nd.zeros([rows, 1]);
      const w = nd.zeros([1, 16]);
      expect(() => nd.matmul(x, w)).toThrow(/matmul: \[786421, 1\] · \[1, 16\] needs a 1×65536×1 grid .* allows \d+ workgroups per dimension/);
      x.dispose();
      w.dispose();
    } finally {
      nd.forceMatmulKernel(null);
    }
  });
});

describe('shape ops', () => {
  it('reshape shares storage and routes gradients', async () => {
    await checkOp({
      name: 'reshape',
      inputs: [{ shape: [2, 6] }],
      gpu: (x) => nd.mul(nd.reshape(x, [3, -1]), nd.reshape(x, [3, 4])),
      ref: (x) => x.map((v) => v * v),
      refBackward: ([x], dy) => [x.map((v, i) => 2 * v * dy[i])],
    });
  });
  it('permute [2,3,4] → (2,0,1)', async () => {
    const shape = [2, 3, 4];
    await checkOp({
      name: 'permute',
      inputs: [{ shape }],
      gpu: (x) => nd.permute(x, [2, 0, 1]),
      ref: (x) => {
        const out = new Float64Array(24);
        for (let k = 0; k < 4; k++) for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) out[k * 6 + i * 3 + j] = x[i * 12 + j * 4 + k];
        return out;
      },
    });
  });
  it('transpose of a matrix', async () => {
    await checkOp({
      name: 'transpose',
      inputs: [{ shape: [3, 70] }],
      gpu: (x) => nd.transpose(x),
      ref: (x) => {
        const out = new Float64Array(210);
        for (let i = 0; i < 3; i++) for (let j = 0; j < 70; j++) out[j * 3 + i] = x[i * 70 + j];
        return out;
      },
    });
  });
  it('expand [3,1] → [2,3,4]', async () => {
    await checkOp({
      name: 'expand',
      inputs: [{ shape: [3, 1] }],
      gpu: (x) => nd.expand(x, [2, 3, 4]),
      ref: (x) => Float64Array.from({ length: 24 }, (_, i) => x[Math.floor(i / 4) % 3]),
      refBackward: (_x, dy) => [Float64Array.from({ length: 3 }, (_, r) => {
        let s = 0;
        for (let b = 0; b < 2; b++) for (let c = 0; c < 4; c++) s += dy[b * 12 + r * 4 + c];
        return s;
      })],
    });
  });
  it('rejects bad shapes with a clear message', () => {
    const x = nd.zeros([2, 3]);
    expect(() => nd.reshape(x, [4, 2])).toThrow(/cannot view \[2, 3\] as \[4, 2\]/);
    expect(() => nd.add(x, nd.zeros([4]))).toThrow(/do not broadcast/);
    expect(() => nd.matmul(x, nd.zeros([2, 3]))).toThrow(/inner dimensions differ/);
    x.dispose();
  });
});
