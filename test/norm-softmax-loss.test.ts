import { afterEach, describe, expect, it } from 'vitest';
import * as nd from '../src/index.ts';
import { softmaxBackwardReference, softmaxReference } from '../src/kernels/softmax/softmax.ts';
import { rowNormBackwardReference, rowNormReference, type RowNormLayout } from '../src/kernels/norm/norm.ts';
import { pointwiseLossBackwardReference, pointwiseLossReference, type PointwiseLossName } from '../src/kernels/loss/pointwise-loss.ts';
import { checkOp, type InputSpec } from './helpers/check-op.ts';

const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

// Every row kernel runs with both mappings: one thread per row and one workgroup per row.
const MAPPINGS = ['thread', 'workgroup'] as const;
afterEach(() => {
  nd.rowKernelPolicy.mapping = 'auto';
});

describe('softmax / logSoftmax', () => {
  const cases: { shape: number[]; axis: number }[] = [
    { shape: [1], axis: 0 },
    { shape: [7], axis: -1 },
    { shape: [3, 70], axis: 1 },
    { shape: [5, 4], axis: 0 },
    { shape: [2, 6, 3, 5], axis: 1 },
    { shape: [65, 1], axis: -1 },
    { shape: [2, 300], axis: 1 }, // rows longer than the cooperative workgroup
  ];
  for (const log of [false, true]) {
    for (const c of cases) for (const mapping of MAPPINGS) {
      const name = log ? 'logSoftmax' : 'softmax';
      it(`${name} ${JSON.stringify(c.shape)} axis ${c.axis} (${mapping} per row)`, async () => {
        nd.rowKernelPolicy.mapping = mapping;
        const axis = c.axis < 0 ? c.axis + c.shape.length : c.axis;
        await checkOp({
          name,
          inputs: [{ shape: c.shape, domain: (rng) => 3 * rng.normal() }],
          gpu: (x) => (log ? nd.logSoftmax(x, c.axis) : nd.softmax(x, c.axis)),
          ref: (x) => softmaxReference(x, c.shape, axis, log),
          refBackward: ([x], dy) => [softmaxBackwardReference(x, c.shape, axis, log, dy)],
          rtol: 2e-5,
          atol: 2e-6,
        });
      });
    }
  }

  it('is stable for large logits and rows sum to 1', async () => {
    const x = nd.tensor([1000, 999, -1000, 88, 89, 90], [2, 3]);
    const y = nd.softmax(x);
    const ly = nd.logSoftmax(x);
    const values = await y.data();
    const logs = await ly.data();
    expect(values.every(Number.isFinite)).toBe(true);
    expect(values[0] + values[1] + values[2]).toBeCloseTo(1, 6);
    expect(values[3] + values[4] + values[5]).toBeCloseTo(1, 6);
    expect(logs[2]).toBeCloseTo(-2000 - Math.log1p(Math.exp(-1)), 3);
    for (const t of [x, y, ly]) t.dispose();
  });

  it('rejects a bad axis', () => {
    const x = nd.zeros([2, 3]);
    expect(() => nd.softmax(x, 2)).toThrow(/softmax: axis 2 is out of range for \[2, 3\]/);
    x.dispose();
  });
});

describe('layerNorm', () => {
  const cases: { shape: number[]; dims: number; weight: boolean; bias: boolean }[] = [
    { shape: [1, 1], dims: 1, weight: true, bias: true },
    { shape: [4, 7], dims: 1, weight: true, bias: true },
    { shape: [3, 2, 65], dims: 1, weight: true, bias: false },
    { shape: [3, 4, 5], dims: 2, weight: false, bias: true },
    { shape: [70, 3], dims: 1, weight: false, bias: false },
    { shape: [300, 5], dims: 1, weight: true, bias: true }, // several row chunks in the parameter gradient
    { shape: [3, 150], dims: 1, weight: true, bias: true }, // rows longer than the cooperative workgroup
  ];
  for (const c of cases) for (const mapping of MAPPINGS) {
    it(`layerNorm ${JSON.stringify(c)} (${mapping} per row)`, async () => {
      nd.rowKernelPolicy.mapping = mapping;
      const paramShape = c.shape.slice(c.shape.length - c.dims);
      const len = size(paramShape);
      const layout: RowNormLayout = { rows: size(c.shape) / len, len, paramIndex: (_r, j) => j, paramCount: len };
      const inputs: InputSpec[] = [{ shape: c.shape, domain: (rng) => 2 + 3 * rng.normal() }];
      if (c.weight) inputs.push({ shape: paramShape });
      if (c.bias) inputs.push({ shape: paramShape });
      const split = <T>(xs: T[]) => ({ x: xs[0], w: c.weight ? xs[1] : null, b: c.bias ? xs[c.weight ? 2 : 1] : null });
      await checkOp({
        name: 'layerNorm',
        inputs,
        gpu: (...ts) => {
          const { x, w, b } = split(ts);
          return nd.layerNorm(x, c.dims, w ?? undefined, b ?? undefined);
        },
        ref: (...xs) => {
          const { x, w, b } = split(xs);
          return rowNormReference(x, layout, w, b, 1e-5);
        },
        refBackward: (xs, dy) => {
          const { x, w } = split(xs);
          const g = rowNormBackwardReference(x, layout, w, c.bias, 1e-5, dy);
          return [g.dx, ...(c.weight ? [g.dweight] : []), ...(c.bias ? [g.dbias] : [])];
        },
        rtol: 1e-4,
        atol: 1e-5,
        gradRtol: 2e-4,
        gradAtol: 5e-5,
        fdStep: 1e-5,
      });
    });
  }

  it('only weight and bias require grad: their gradients still come out', async () => {
    const rng = new nd.Rng(5);
    const x = nd.randn([40, 6], rng);
    const w = nd.randn([6], rng);
    const b = nd.randn([6], rng);
    w.requiresGrad = true;
    b.requiresGrad = true;
    nd.scope(() => nd.backward(nd.sum(nd.mul(nd.layerNorm(x, 1, w, b), x))));
    const xs = Float64Array.from(await x.data());
    const layout: RowNormLayout = { rows: 40, len: 6, paramIndex: (_r, j) => j, paramCount: 6 };
    const expected = rowNormBackwardReference(xs, layout, Float64Array.from(await w.data()), true, 1e-5, xs);
    const gotW = await w.grad!.data();
    const gotB = await b.grad!.data();
    expected.dweight!.forEach((e, k) => expect(gotW[k]).toBeCloseTo(e, 4));
    expected.dbias!.forEach((e, k) => expect(gotB[k]).toBeCloseTo(e, 4));
    for (const t of [x, w, b]) t.dispose();
  });

  it('rejects mismatched parameters', () => {
    const x = nd.zeros([2, 3]);
    const w = nd.zeros([2]);
    expect(() => nd.layerNorm(x, 1, w)).toThrow(/layerNorm: weight \[2\] must have shape \[3\]/);
    expect(() => nd.layerNorm(x, 3)).toThrow(/normalizedDims 3 must be in 1..2/);
    x.dispose();
    w.dispose();
  });
});

describe('instanceNorm', () => {
  const cases: { shape: number[]; weight: boolean; bias: boolean }[] = [
    { shape: [1, 1, 2], weight: true, bias: true },
    { shape: [2, 3, 4, 5], weight: true, bias: true },
    { shape: [3, 2, 67], weight: false, bias: true },
    { shape: [2, 4, 3, 3], weight: true, bias: false },
    { shape: [1, 2, 2, 3, 3], weight: false, bias: false },
    { shape: [2, 3, 9, 11], weight: true, bias: true }, // planes longer than the cooperative workgroup
  ];
  for (const c of cases) for (const mapping of MAPPINGS) {
    it(`instanceNorm ${JSON.stringify(c)} (${mapping} per row)`, async () => {
      nd.rowKernelPolicy.mapping = mapping;
      const channels = c.shape[1];
      const len = size(c.shape.slice(2));
      const layout: RowNormLayout = { rows: c.shape[0] * channels, len, paramIndex: (r) => r % channels, paramCount: channels };
      const inputs: InputSpec[] = [{ shape: c.shape, domain: (rng) => -1 + 2 * rng.normal() }];
      if (c.weight) inputs.push({ shape: [channels] });
      if (c.bias) inputs.push({ shape: [channels] });
      const split = <T>(xs: T[]) => ({ x: xs[0], w: c.weight ? xs[1] : null, b: c.bias ? xs[c.weight ? 2 : 1] : null });
      await checkOp({
        name: 'instanceNorm',
        inputs,
        gpu: (...ts) => {
          const { x, w, b } = split(ts);
          return nd.instanceNorm(x, w ?? undefined, b ?? undefined);
        },
        ref: (...xs) => {
          const { x, w, b } = split(xs);
          return rowNormReference(x, layout, w, b, 1e-5);
        },
        refBackward: (xs, dy) => {
          const { x, w } = split(xs);
          const g = rowNormBackwardReference(x, layout, w, c.bias, 1e-5, dy);
          return [g.dx, ...(c.weight ? [g.dweight] : []), ...(c.bias ? [g.dbias] : [])];
        },
        rtol: 1e-4,
        atol: 1e-5,
        gradRtol: 2e-4,
        gradAtol: 5e-5,
        fdStep: 1e-5,
      });
    });
  }

  it('only the weight requires grad: its gradient still comes out', async () => {
    const rng = new nd.Rng(3);
    const x = nd.randn([2, 3, 4], rng);
    const w = nd.randn([3], rng);
    w.requiresGrad = true;
    nd.scope(() => nd.backward(nd.sum(nd.mul(nd.instanceNorm(x, w), x))));
    const xs = Float64Array.from(await x.data());
    const layout: RowNormLayout = { rows: 6, len: 4, paramIndex: (r) => r % 3, paramCount: 3 };
    const expected = rowNormBackwardReference(xs, layout, Float64Array.from(await w.data()), false, 1e-5, xs).dweight!;
    const got = await w.grad!.data();
    expected.forEach((e, k) => expect(got[k]).toBeCloseTo(e, 4));
    x.dispose();
    w.dispose();
  });

  it('rejects rank < 3', () => {
    const x = nd.zeros([2, 3]);
    expect(() => nd.instanceNorm(x)).toThrow(/instanceNorm: x must be \[N, C, \.\.\.spatial\]/);
    x.dispose();
  });
});

describe('losses', () => {
  const ops: { name: string; loss: PointwiseLossName; fn: typeof nd.mseLoss; pred: InputSpec['domain']; target: InputSpec['domain'] }[] = [
    { name: 'mseLoss', loss: 'mse', fn: nd.mseLoss, pred: 'normal', target: 'normal' },
    // |p − t| ≥ 0.05 keeps finite differences away from the kink at 0.
    { name: 'l1Loss', loss: 'l1', fn: nd.l1Loss, pred: (rng) => rng.int(2) * 2 + 0.05 + 0.9 * rng.uniform(), target: (rng) => 1 + rng.uniform() },
    { name: 'bceLoss', loss: 'bce', fn: nd.bceLoss, pred: (rng) => 0.02 + 0.96 * rng.uniform(), target: 'unit' },
    { name: 'bceWithLogitsLoss', loss: 'bce_logits', fn: nd.bceWithLogitsLoss, pred: (rng) => 4 * rng.normal(), target: 'unit' },
  ];
  const shapes = [[1], [5, 13], [67]];
  for (const op of ops) {
    for (const reduction of ['mean', 'sum', 'none'] as const) {
      for (const shape of shapes) {
        it(`${op.name} ${JSON.stringify(shape)} ${reduction}`, async () => {
          const n = size(shape);
          const scale = reduction === 'mean' ? 1 / n : 1;
          const reduce = (terms: Float64Array): Float64Array =>
            reduction === 'none' ? terms : Float64Array.of(terms.reduce((s, v) => s + v, 0) * scale);
          await checkOp({
            name: op.name,
            inputs: [{ shape, domain: op.pred }, { shape, domain: op.target }],
            gpu: (p, t) => op.fn(p, t, reduction),
            ref: (p, t) => reduce(pointwiseLossReference(op.loss, p, t)),
            refBackward: ([p, t], dy) => {
              const dTerms = reduction === 'none' ? dy : new Float64Array(n).fill(dy[0] * scale);
              return pointwiseLossBackwardReference(op.loss, p, t, dTerms);
            },
            rtol: 2e-5 * Math.sqrt(n),
            atol: 2e-6 * Math.sqrt(n),
            gradRtol: 1e-4,
            gradAtol: 1e-5,
          });
        });
      }
    }
  }

  it('bce clamps its logs at -100 like torch; bceWithLogits is stable for large logits', async () => {
    const [bceTerms, logitTerms] = nd.scope(() => [
      nd.keep(nd.bceLoss(nd.tensor([0, 1, 0.5], [3]), nd.tensor([1, 0, 1], [3]), 'none')),
      nd.keep(nd.bceWithLogitsLoss(nd.tensor([200, -200, 0], [3]), nd.tensor([0, 0, 1], [3]), 'none')),
    ]);
    const bce = await bceTerms.data();
    expect([...bce].map((v) => Math.round(v * 1e4) / 1e4)).toEqual([100, 100, 0.6931]);
    const bl = await logitTerms.data();
    expect(bl[0]).toBeCloseTo(200, 4);
    expect(bl[1]).toBeCloseTo(0, 6);
    expect(bl[2]).toBeCloseTo(Math.LN2, 6);
    bceTerms.dispose();
    logitTerms.dispose();
  });

  it('rejects mismatched shapes and bad reductions', () => {
    const a = nd.zeros([2, 3]);
    const b = nd.zeros([3, 2]);
    expect(() => nd.mseLoss(a, b)).toThrow(/mseLoss: input \[2, 3\] and target \[3, 2\] must have the same shape/);
    expect(() => nd.l1Loss(a, a, 'avg' as never)).toThrow(/reduction must be/);
    a.dispose();
    b.dispose();
  });
});
