import { describe, expect, it } from 'vitest';
import * as nd from '../src/index.ts';
import {
  fusedMlpBackwardReference,
  fusedMlpReference,
  mlpLayout,
  splitKChunkRows,
  type FusedMlpShape,
} from '../src/kernels/mlp/fused-mlp.ts';
import { FusedMLP } from '../src/models/fused-mlp.ts';
import { checkOp, expectClose } from './helpers/check-op.ts';

// Weights of torch's Linear scale (±1/√in) keep activations O(1) through the layers.
function weightDomain(widths: number[]): (rng: nd.Rng) => number {
  const bound = 1 / Math.sqrt(Math.max(...widths.slice(0, -1)));
  return (rng) => (2 * rng.uniform() - 1) * 1.5 * bound;
}

describe('fusedMlp', () => {
  const cases: { rows: number; widths: number[]; out: FusedMlpShape['outputActivation']; xGrad?: boolean }[] = [
    { rows: 1, widths: [3, 1], out: 'none' },
    { rows: 67, widths: [1, 3], out: 'sigmoid' },
    { rows: 67, widths: [3, 16, 1], out: 'none' },
    { rows: 1, widths: [16, 64, 3], out: 'sigmoid' },
    { rows: 67, widths: [32, 64, 16], out: 'none' },
    { rows: 67, widths: [31, 64, 64, 3], out: 'sigmoid' },
    { rows: 67, widths: [5, 3, 64, 1, 7], out: 'none' },
    { rows: 67, widths: [64, 64, 64, 64, 64], out: 'none', xGrad: false },
    // More rows than one split-K chunk: partials over several chunks, then the fixed-order sum.
    { rows: 2 * splitKChunkRows(1) + 5, widths: [3, 4, 2], out: 'sigmoid' },
  ];
  for (const { rows, widths, out, xGrad } of cases) {
    const shape: FusedMlpShape = { widths, outputActivation: out };
    const params = mlpLayout(widths).params;
    it(`rows ${rows}, widths [${widths}], output ${out}${xGrad === false ? ', no input gradient' : ''}`, async () => {
      await checkOp({
        name: 'fusedMlp',
        inputs: [{ shape: [rows, widths[0]], noGrad: xGrad === false }, { shape: [params], domain: weightDomain(widths) }],
        gpu: (x, w) => nd.fusedMlp(x, w, shape),
        ref: (x, w) => fusedMlpReference(x, w, rows, shape).y,
        refBackward: ([x, w], dy) => {
          const { dx, dweights } = fusedMlpBackwardReference(x, w, dy, rows, shape);
          return [xGrad === false ? null : dx, dweights];
        },
        rtol: 1e-4,
        atol: 1e-5,
        gradRtol: 1e-4,
        gradAtol: 1e-4,
        fdSamples: 24,
      });
    });
  }

  it('gives the input gradient alone when the weights are frozen', async () => {
    const shape: FusedMlpShape = { widths: [4, 8, 2], outputActivation: 'sigmoid' };
    const rng = new nd.Rng(3);
    const xs = Float64Array.from({ length: 5 * 4 }, () => Math.fround(rng.normal()));
    const ws = Float64Array.from({ length: mlpLayout(shape.widths).params }, () => Math.fround(rng.normal() * 0.5));
    const dy = Float64Array.from({ length: 5 * 2 }, () => Math.fround(rng.normal()));
    const x = nd.tensor(xs, [5, 4]);
    const w = nd.tensor(ws, [ws.length]);
    x.requiresGrad = true;
    nd.scope(() => nd.backward(nd.fusedMlp(x, w, shape), nd.tensor(dy, [5, 2])));
    expect(w.grad).toBeNull();
    expectClose(await x.grad!.data(), fusedMlpBackwardReference(xs, ws, dy, 5, shape).dx, 1e-4, 1e-5, 'dx');
    x.dispose();
    w.dispose();
  });

  it('takes zero rows: empty output, zero weight gradient', async () => {
    const shape: FusedMlpShape = { widths: [3, 4, 2], outputActivation: 'none' };
    const x = nd.zeros([0, 3]);
    const w = nd.ones([mlpLayout(shape.widths).params]);
    x.requiresGrad = true;
    w.requiresGrad = true;
    const y = nd.scope(() => {
      const out = nd.fusedMlp(x, w, shape);
      nd.backward(out, nd.zeros([0, 2]));
      return out;
    });
    expect(y.shape).toEqual([0, 2]);
    expect(Array.from(await w.grad!.data())).toEqual(new Array(mlpLayout(shape.widths).params).fill(0));
    for (const t of [x, w, y]) t.dispose();
  });

  it('names the op, the shapes and the problem on bad input', () => {
    const shape: FusedMlpShape = { widths: [3, 4, 2], outputActivation: 'none' };
    nd.scope(() => {
      const w = nd.zeros([mlpLayout(shape.widths).params]);
      expect(() => nd.fusedMlp(nd.zeros([5, 4]), w, shape)).toThrow(/fusedMlp: input \[5, 4\] must be \[rows, 3\]/);
      expect(() => nd.fusedMlp(nd.zeros([5, 3]), nd.zeros([7]), shape)).toThrow(/fusedMlp: weights \[7\] must hold 26/);
      expect(() => nd.fusedMlp(nd.zeros([5, 3]), w, { widths: [3, 65, 2], outputActivation: 'none' })).toThrow(/1…64/);
      expect(() => nd.fusedMlp(nd.zeros([5, 3]), w, { widths: [3], outputActivation: 'none' })).toThrow(/at least/);
      expect(() => nd.fusedMlp(nd.zeros([5, 3]), w, { widths: [3, 2, 2, 2, 2, 2, 2, 2, 2, 2], outputActivation: 'none' })).toThrow(
        /more than 8 layers/,
      );
    });
  });
});

describe('FusedMLP module', () => {
  it('initialises each layer like Linear (same draws) and matches MLP', async () => {
    const widths = [5, 16, 16, 3];
    const fused = new FusedMLP(widths, { rng: new nd.Rng(11), outputActivation: 'sigmoid' });
    const mlp = new nd.MLP(widths, { rng: new nd.Rng(11), outputActivation: 'sigmoid' });
    const flat = await fused.weights.data();
    const layout = mlpLayout(widths);
    const named = new Map(mlp.namedParameters());
    for (let l = 0; l < widths.length - 1; l++) {
      const wl = await named.get(`${l}.weight`)!.data();
      const bl = await named.get(`${l}.bias`)!.data();
      expect(Array.from(flat.subarray(layout.weight[l], layout.weight[l] + wl.length))).toEqual(Array.from(wl));
      expect(Array.from(flat.subarray(layout.bias[l], layout.bias[l] + bl.length))).toEqual(Array.from(bl));
    }
    const rng = new nd.Rng(5);
    const x = nd.randn([2, 3, 5], rng);
    const [a, b] = nd.noGrad(() => [fused.forward(x), mlp.forward(x)]);
    expect(a.shape).toEqual([2, 3, 3]);
    expectClose(await a.data(), await b.data(), 1e-5, 1e-6, 'FusedMLP vs MLP');
    for (const t of [x, a, b]) t.dispose();
  });
});
