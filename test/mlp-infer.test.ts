import { describe, expect, it } from 'vitest';
import * as nd from '../src/index.ts';
import { mlpInferReference, mlpMacs, inferRowsPerThread, type InferActivation } from '../src/kernels/mlp/mlp-infer.ts';
import { mlpLayout } from '../src/kernels/mlp/fused-mlp.ts';
import { FusedMLP } from '../src/models/fused-mlp.ts';
import { checkOp, expectClose } from './helpers/check-op.ts';

// Weights of torch's Linear scale (±1/√in) keep activations O(1) through the layers.
function weightDomain(widths: number[]): (rng: nd.Rng) => number {
  const bound = 1 / Math.sqrt(Math.max(...widths.slice(0, -1)));
  return (rng) => (2 * rng.uniform() - 1) * 1.5 * bound;
}

/** Rows of concat([a, b[:, 2:6]]) for a [rows, 3] and b [rows, 7]: the two-part input of the tests below. */
function concatAB(a: Float64Array, b: Float64Array, rows: number): Float64Array {
  const x = new Float64Array(rows * 7);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < 3; c++) x[r * 7 + c] = a[r * 3 + c];
    for (let c = 0; c < 4; c++) x[r * 7 + 3 + c] = b[r * 7 + 2 + c];
  }
  return x;
}

describe('mlpInfer (forward-only, unrolled; no backward by design: it runs only where nothing is recorded)', () => {
  const cases: { rows: number; widths: number[]; activation: InferActivation; out: InferActivation }[] = [
    { rows: 1, widths: [3, 1], activation: 'relu', out: 'none' },
    { rows: 67, widths: [1, 3], activation: 'relu', out: 'sigmoid' },
    // Around the workgroup (256 rows) and two-rows-per-thread (512 rows) boundaries.
    { rows: 255, widths: [5, 7, 2], activation: 'tanh', out: 'sigmoid' },
    { rows: 513, widths: [4, 9, 9, 3], activation: 'sigmoid', out: 'tanh' },
    { rows: 300, widths: [6, 1, 5], activation: 'none', out: 'relu' },
    { rows: 257, widths: [32, 64, 16], activation: 'relu', out: 'none' },
  ];
  for (const { rows, widths, activation, out } of cases) {
    const options = { widths, activation, outputActivation: out };
    it(`rows ${rows}, widths [${widths}], ${activation} / ${out} (${inferRowsPerThread(widths)} row(s) per thread)`, async () => {
      await checkOp({
        name: 'mlpInfer',
        inputs: [{ shape: [rows, widths[0]] }, { shape: [mlpLayout(widths).params], domain: weightDomain(widths) }],
        gpu: (x, w) => nd.mlpInfer(x, w, options),
        ref: (x, w) => mlpInferReference(x, w, rows, options),
        grad: false,
        rtol: 1e-4,
        atol: 1e-5,
      });
    });
  }

  it('reads two column windows in place: concat([a, b[:, 2:6]]) with a [131, 3], b [131, 7]', async () => {
    const rows = 131;
    const options = { widths: [7, 9, 2], activation: 'relu' as const, outputActivation: 'none' as const };
    await checkOp({
      name: 'mlpInfer (parts)',
      inputs: [{ shape: [rows, 3] }, { shape: [rows, 7] }, { shape: [mlpLayout(options.widths).params], domain: weightDomain(options.widths) }],
      gpu: (a, b, w) => nd.mlpInfer([a, { tensor: b, start: 2, length: 4 }], w, options),
      ref: (a, b, w) => mlpInferReference(concatAB(a, b, rows), w, rows, options),
      grad: false,
      rtol: 1e-4,
      atol: 1e-5,
    });
  });

  it('computes only the rows of an index, in place: row index[k] of [a, b[:, 2:6]] into row index[k] of y (0 elsewhere)', async () => {
    const rows = 300;
    const options = { widths: [7, 9, 2], activation: 'tanh' as const, outputActivation: 'sigmoid' as const };
    // Distinct rows in scrambled order, fewer than the rows (every third row, shuffled), and 0 rows.
    const rng = new nd.Rng(17);
    const picked = Array.from({ length: 100 }, (_, k) => 3 * k).sort(() => rng.uniform() - 0.5);
    for (const list of [picked, []]) {
      await checkOp({
        name: `mlpInfer (indexed, ${list.length} rows)`,
        inputs: [{ shape: [rows, 3] }, { shape: [rows, 7] }, { shape: [mlpLayout(options.widths).params], domain: weightDomain(options.widths) }],
        gpu: (a, b, w) => nd.mlpInfer([a, { tensor: b, start: 2, length: 4 }], w, options, { index: nd.tensor(Int32Array.from(list), [list.length], 'i32'), rows }),
        ref: (a, b, w) => {
          const all = mlpInferReference(concatAB(a, b, rows), w, rows, options);
          const y = new Float64Array(rows * 2);
          for (const r of list) y.set(all.subarray(r * 2, r * 2 + 2), r * 2);
          return y;
        },
        grad: false,
        rtol: 1e-4,
        atol: 1e-5,
      });
    }
  });

  it('takes 0 rows', async () => {
    const y = nd.mlpInfer(nd.zeros([0, 3]), nd.zeros([mlpLayout([3, 2]).params]), { widths: [3, 2], activation: 'relu', outputActivation: 'none' });
    expect(y.shape).toEqual([0, 2]);
    y.dispose();
  });

  it('refuses an input that requires a gradient while recording, and a shape that does not fit', () => {
    const w = nd.zeros([mlpLayout([3, 2]).params]);
    w.requiresGrad = true;
    const options = { widths: [3, 2], activation: 'relu', outputActivation: 'none' } as const;
    expect(() => nd.mlpInfer(nd.zeros([4, 3]), w, options)).toThrow(/no backward/);
    expect(() => nd.noGrad(() => nd.mlpInfer(nd.zeros([4, 3]), w, options)).dispose()).not.toThrow();
    expect(() => nd.noGrad(() => nd.mlpInfer(nd.zeros([4, 2]), w, options))).toThrow(/give 2 columns, not 3/);
    expect(() => nd.noGrad(() => nd.mlpInfer(nd.zeros([4, 3]), nd.zeros([7]), options))).toThrow(/must hold 8 f32 values/);
    expect(() => nd.noGrad(() => nd.mlpInfer([nd.zeros([4, 2]), { tensor: nd.zeros([4, 2]), start: 1, length: 2 }], w, options))).toThrow(/columns 1…2/);
    expect(() => nd.noGrad(() => nd.mlpInfer([nd.zeros([4, 2]), nd.zeros([4, 2])], w, options))).toThrow(/give 4 columns, not 3/);
    expect(nd.mlpInferSupported([128, 128])).toBe(false); // 16,512 parameters: more than workgroup memory holds
    w.dispose();
  });

  it('rows per thread follow the multiply-add count', () => {
    expect(mlpMacs([32, 64, 16])).toBe(32 * 64 + 64 * 16);
    expect(inferRowsPerThread([32, 64, 16])).toBe(2);
    expect(inferRowsPerThread([31, 64, 64, 3])).toBe(1);
  });
});

describe('MLP and FusedMLP take the unrolled path under noGrad and match their recorded forward', () => {
  it('MLP([12, 16, 16, 3], tanh, sigmoid) on a [2, 70, 12] input', async () => {
    const rng = new nd.Rng(11);
    const mlp = new nd.MLP([12, 16, 16, 3], { activation: 'tanh', outputActivation: 'sigmoid', rng });
    const x = nd.randn([2, 70, 12], rng);
    const recorded = mlp.forward(x); // parameters require grad: the matmul per layer
    const before = nd.runtime().stats.dispatches;
    const inferred = nd.noGrad(() => mlp.forward(x));
    const dispatches = nd.runtime().stats.dispatches - before;
    expect(inferred.shape).toEqual([2, 70, 3]);
    if (nd.runtime().gpu.isSoftware) expect(dispatches).toBe(1); // one kernel for three layers (plus queued copies)
    expectClose(await inferred.data(), await recorded.data(), 1e-5, 1e-6, 'MLP noGrad vs recorded');
    for (const t of [x, recorded, inferred]) t.dispose();
    mlp.dispose();
  });

  it('MLP.forwardColumns reads [a, b[:, 1:]] in place and equals forward(concat) with gradients', async () => {
    const rng = new nd.Rng(14);
    const mlp = new nd.MLP([16 + 15, 64, 64, 3], { rng });
    const a = nd.randn([50, 16], rng);
    const b = nd.randn([50, 16], rng);
    const recorded = mlp.forwardColumns([a, { tensor: b, start: 1, length: 15 }]);
    const reference = mlp.forward(nd.concat([a, nd.narrow(b, 1, 1, 15)], 1));
    const before = nd.runtime().stats.dispatches;
    const inferred = nd.noGrad(() => mlp.forwardColumns([a, { tensor: b, start: 1, length: 15 }]));
    if (nd.runtime().gpu.isSoftware) expect(nd.runtime().stats.dispatches - before).toBe(1);
    expectClose(await recorded.data(), await reference.data(), 1e-6, 1e-7, 'forwardColumns recorded vs forward(concat)');
    expectClose(await inferred.data(), await reference.data(), 1e-5, 1e-6, 'forwardColumns noGrad vs forward(concat)');
    for (const t of [a, b, recorded, reference, inferred]) t.dispose();
    mlp.dispose();
  });

  it('MLP.forwardColumns at an index: the unrolled path equals the recorded one (indexSelect, forward, indexAdd)', async () => {
    const rng = new nd.Rng(15);
    const mlp = new nd.MLP([16 + 15, 64, 64, 3], { rng });
    const a = nd.randn([40, 16], rng);
    const b = nd.randn([40, 16], rng);
    const at = { index: nd.tensor(new Int32Array([5, 0, 39, 17]), [4], 'i32'), rows: 40 };
    const recorded = mlp.forwardColumns([a, { tensor: b, start: 1, length: 15 }], at);
    const inferred = nd.noGrad(() => mlp.forwardColumns([a, { tensor: b, start: 1, length: 15 }], at));
    const values = await recorded.data();
    expectClose(await inferred.data(), values, 1e-5, 1e-6, 'forwardColumns at an index, noGrad vs recorded');
    expect(values.subarray(3, 6).every((v) => v === 0)).toBe(true); // row 1 is not in the index
    for (const t of [a, b, at.index, recorded, inferred]) t.dispose();
    mlp.dispose();
  });

  it('MLP without biases keeps the matmul path and still gives the same result', async () => {
    const rng = new nd.Rng(12);
    const mlp = new nd.MLP([5, 8, 2], { bias: false, rng });
    const x = nd.randn([9, 5], rng);
    const a = mlp.forward(x);
    const b = nd.noGrad(() => mlp.forward(x));
    expectClose(await b.data(), await a.data(), 1e-6, 1e-7, 'MLP without bias');
    for (const t of [x, a, b]) t.dispose();
    mlp.dispose();
  });

  it('FusedMLP([31, 64, 64, 3], sigmoid)', async () => {
    const rng = new nd.Rng(13);
    const mlp = new FusedMLP([31, 64, 64, 3], { outputActivation: 'sigmoid', rng });
    const x = nd.randn([300, 31], rng);
    const recorded = mlp.forward(x);
    const inferred = nd.noGrad(() => mlp.forward(x));
    expectClose(await inferred.data(), await recorded.data(), 1e-5, 1e-6, 'FusedMLP noGrad vs recorded');
    for (const t of [x, recorded, inferred]) t.dispose();
    mlp.dispose();
  });
});
