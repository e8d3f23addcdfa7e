import { describe, expect, it } from 'vitest';
import * as nd from '../src/index.ts';
import {
  conv2dBackwardReference,
  conv2dReference,
  convTranspose2dBackwardReference,
  convTranspose2dReference,
  type ConvGeometry,
} from '../src/kernels/conv/conv.ref.ts';
import { checkOp } from './helpers/check-op.ts';

type P = [number, number];
const geometry = (stride: P = [1, 1], padding: P = [0, 0], dilation: P = [1, 1]): ConvGeometry => ({ stride, padding, dilation });

interface Conv2dCase {
  x: number[];
  w: number[];
  bias: boolean;
  g: ConvGeometry;
}

// Awkward shapes: sizes 1, channel and position counts that are not multiples of the 4×4 thread block or the
// 32×32 workgroup tile, strides that skip input rows, asymmetric padding, dilation.
const CONV2D_CASES: Conv2dCase[] = [
  { x: [1, 1, 1, 1], w: [1, 1, 1, 1], bias: false, g: geometry() },
  { x: [2, 3, 7, 6], w: [5, 3, 3, 3], bias: true, g: geometry([1, 1], [1, 1]) },
  { x: [1, 2, 9, 8], w: [3, 2, 3, 2], bias: true, g: geometry([2, 3], [1, 0]) },
  { x: [2, 3, 8, 7], w: [4, 3, 3, 3], bias: false, g: geometry([2, 2], [2, 2], [2, 2]) },
  { x: [1, 5, 5, 7], w: [37, 5, 1, 1], bias: true, g: geometry() },
  { x: [3, 2, 12, 11], w: [2, 2, 5, 4], bias: true, g: geometry([1, 2], [2, 1]) },
];

const tolerances = { rtol: 1e-5, atol: 2e-5, gradRtol: 1e-4, gradAtol: 1e-4 };

describe('conv2d: GPU vs f64 reference, backward vs finite differences', () => {
  for (const c of CONV2D_CASES) {
    const { stride, padding, dilation } = c.g;
    it(`x ${JSON.stringify(c.x)} w ${JSON.stringify(c.w)} stride [${stride}] padding [${padding}] dilation [${dilation}]${c.bias ? ' + bias' : ''}`, async () => {
      await checkOp({
        name: 'conv2d',
        inputs: [{ shape: c.x }, { shape: c.w }, ...(c.bias ? [{ shape: [c.w[0]] }] : [])],
        gpu: (x, w, b) => nd.conv2d(x, w, b, { stride, padding, dilation }),
        ref: (x, w, b) => conv2dReference(x, c.x, w, c.w, b ?? null, c.g),
        refBackward: ([x, w], dy) => {
          const { dx, dw, db } = conv2dBackwardReference(x, c.x, w, c.w, dy, c.g);
          return c.bias ? [dx, dw, db] : [dx, dw];
        },
        seed: c.x.reduce((a, b) => a * 7 + b, 1),
        ...tolerances,
      });
    });
  }

  it('computes only the gradients asked for (weight only, input constant)', async () => {
    const c = CONV2D_CASES[1];
    await checkOp({
      name: 'conv2d (weight grad only)',
      inputs: [{ shape: c.x, noGrad: true }, { shape: c.w }],
      gpu: (x, w) => nd.conv2d(x, w, undefined, { padding: 1 }),
      ref: (x, w) => conv2dReference(x, c.x, w, c.w, null, c.g),
      refBackward: ([x, w], dy) => [null, conv2dBackwardReference(x, c.x, w, c.w, dy, c.g).dw],
      ...tolerances,
    });
  });

  it('rejects bad shapes with a message naming the op and the shapes', () => {
    nd.scope(() => {
      const x = nd.zeros([1, 3, 5, 5]);
      expect(() => nd.conv2d(x, nd.zeros([4, 2, 3, 3]))).toThrow(/conv2d: x \[1, 3, 5, 5\] has 3 channels but weight \[4, 2, 3, 3\]/);
      expect(() => nd.conv2d(x, nd.zeros([4, 3, 7, 7]))).toThrow(/conv2d: output would be empty/);
      expect(() => nd.conv2d(x, nd.zeros([4, 3, 3, 3]), nd.zeros([3]))).toThrow(/conv2d: bias \[3\] must be \[4\]/);
      expect(() => nd.conv2d(x, nd.zeros([4, 3, 3, 3]), undefined, { stride: 0 })).toThrow(/conv2d: stride/);
      expect(() => nd.conv2d(nd.zeros([3, 5, 5]), nd.zeros([4, 3, 3, 3]))).toThrow(/conv2d: x must be \[N, C, H, W\]/);
    });
  });
});

describe('conv1d (conv2d with H = 1)', () => {
  const cases: { x: number[]; w: number[]; bias: boolean; stride?: number; padding?: number; dilation?: number }[] = [
    { x: [1, 1, 1], w: [1, 1, 1], bias: true },
    { x: [2, 3, 10], w: [4, 3, 3], bias: true, stride: 2, padding: 1, dilation: 2 },
    { x: [3, 29, 16], w: [6, 29, 3], bias: false, padding: 1 },
  ];
  for (const c of cases) {
    it(`x ${JSON.stringify(c.x)} w ${JSON.stringify(c.w)} stride ${c.stride ?? 1} padding ${c.padding ?? 0} dilation ${c.dilation ?? 1}`, async () => {
      const g = geometry([1, c.stride ?? 1], [0, c.padding ?? 0], [1, c.dilation ?? 1]);
      const x4 = [c.x[0], c.x[1], 1, c.x[2]];
      const w4 = [c.w[0], c.w[1], 1, c.w[2]];
      await checkOp({
        name: 'conv1d',
        inputs: [{ shape: c.x }, { shape: c.w }, ...(c.bias ? [{ shape: [c.w[0]] }] : [])],
        gpu: (x, w, b) => {
          const y = nd.conv1d(x, w, b, { stride: c.stride, padding: c.padding, dilation: c.dilation });
          expect(y.rank).toBe(3);
          return y;
        },
        ref: (x, w, b) => conv2dReference(x, x4, w, w4, b ?? null, g),
        refBackward: ([x, w], dy) => {
          const { dx, dw, db } = conv2dBackwardReference(x, x4, w, w4, dy, g);
          return c.bias ? [dx, dw, db] : [dx, dw];
        },
        seed: 77 + c.x[2],
        ...tolerances,
      });
    });
  }
});

describe('convTranspose2d: GPU vs f64 reference, backward vs finite differences', () => {
  const cases: (Conv2dCase & { outputPadding: P })[] = [
    { x: [1, 1, 1, 1], w: [1, 1, 1, 1], bias: false, g: geometry(), outputPadding: [0, 0] },
    { x: [1, 2, 3, 4], w: [2, 3, 3, 3], bias: true, g: geometry([2, 2], [1, 1]), outputPadding: [1, 1] },
    { x: [2, 3, 4, 3], w: [3, 2, 2, 2], bias: true, g: geometry([2, 2]), outputPadding: [0, 0] },
    { x: [2, 2, 5, 4], w: [2, 3, 3, 2], bias: false, g: geometry([1, 2], [0, 1], [2, 2]), outputPadding: [1, 1] },
    { x: [1, 4, 3, 3], w: [4, 35, 4, 4], bias: true, g: geometry([2, 2], [1, 1]), outputPadding: [0, 0] },
  ];
  for (const c of cases) {
    const { stride, padding, dilation } = c.g;
    const outputPadding = c.outputPadding;
    it(`x ${JSON.stringify(c.x)} w ${JSON.stringify(c.w)} stride [${stride}] padding [${padding}] dilation [${dilation}] outputPadding [${outputPadding}]${c.bias ? ' + bias' : ''}`, async () => {
      await checkOp({
        name: 'convTranspose2d',
        inputs: [{ shape: c.x }, { shape: c.w }, ...(c.bias ? [{ shape: [c.w[1]] }] : [])],
        gpu: (x, w, b) => nd.convTranspose2d(x, w, b, { stride, padding, dilation, outputPadding }),
        ref: (x, w, b) => convTranspose2dReference(x, c.x, w, c.w, b ?? null, c.g, outputPadding),
        refBackward: ([x, w], dy) => {
          const { dx, dw, db } = convTranspose2dBackwardReference(x, c.x, w, c.w, dy, c.g, outputPadding);
          return c.bias ? [dx, dw, db] : [dx, dw];
        },
        seed: c.x.reduce((a, b) => a * 5 + b, 3),
        ...tolerances,
      });
    });
  }

  it('is the adjoint of conv2d: <conv2d(x), y> = <x, convTranspose2d(y)> with the same weight', async () => {
    const rng = new nd.Rng(5);
    const g = { stride: 2, padding: 1 };
    const sums = nd.scope(() => {
      const x = nd.randn([2, 3, 9, 8], rng);
      const w = nd.randn([4, 3, 3, 3], rng);
      const y = nd.randn([2, 4, 5, 4], rng);
      const left = nd.sum(nd.mul(nd.conv2d(x, w, undefined, g), y));
      const right = nd.sum(nd.mul(x, nd.convTranspose2d(y, w, undefined, { ...g, outputPadding: [0, 1] })));
      return [left, right];
    });
    const [left, right] = [await sums[0].item(), await sums[1].item()];
    expect(Math.abs(left - right)).toBeLessThan(1e-4 * Math.max(1, Math.abs(left)));
    for (const t of sums) t.dispose();
  });

  it('rejects an output padding not smaller than the stride', () => {
    nd.scope(() => {
      expect(() => nd.convTranspose2d(nd.zeros([1, 2, 3, 3]), nd.zeros([2, 2, 3, 3]), undefined, { stride: 2, outputPadding: 2 })).toThrow(
        /convTranspose2d: outputPadding \[2,2\] must be smaller than max\(stride, dilation\)/,
      );
    });
  });
});

describe('conv layers composed (encoder → tanh → decoder), gradients through the tape', () => {
  it('conv2d (stride 2) → tanh → convTranspose2d (stride 2) matches the composed references', async () => {
    const xShape = [2, 3, 8, 6];
    const w1Shape = [5, 3, 3, 3];
    const w2Shape = [5, 2, 4, 4];
    const down = geometry([2, 2], [1, 1]);
    const up = geometry([2, 2], [1, 1]);
    await checkOp({
      name: 'encoder-decoder',
      inputs: [{ shape: xShape }, { shape: w1Shape }, { shape: [5] }, { shape: w2Shape }],
      gpu: (x, w1, b1, w2) => nd.convTranspose2d(nd.tanh(nd.conv2d(x, w1, b1, { stride: 2, padding: 1 })), w2, undefined, { stride: 2, padding: 1 }),
      ref: (x, w1, b1, w2) => {
        const h = conv2dReference(x, xShape, w1, w1Shape, b1, down).map(Math.tanh);
        return convTranspose2dReference(h, [2, 5, 4, 3], w2, w2Shape, null, up, [0, 0]);
      },
      // No refBackward: finite differences of the composed reference are the reference.
      rtol: 1e-5,
      atol: 2e-5,
      gradRtol: 1e-4,
      gradAtol: 1e-4,
    });
  });
});
