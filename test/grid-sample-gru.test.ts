import { describe, expect, it } from 'vitest';
import * as nd from '../src/index.ts';
import { gridSampleBackwardReference, gridSampleReference, type GridSampleOptions } from '../src/kernels/sample/grid-sample.ref.ts';
import { gruCellBackwardReference, gruCellReference, type GruDims } from '../src/kernels/rnn/gru.ref.ts';
import { checkOp, expectClose } from './helpers/check-op.ts';

const MODES: GridSampleOptions[] = [
  { alignCorners: false, paddingMode: 'zeros' },
  { alignCorners: true, paddingMode: 'zeros' },
  { alignCorners: false, paddingMode: 'border' },
  { alignCorners: true, paddingMode: 'border' },
];

const modeName = (o: GridSampleOptions): string => `alignCorners ${o.alignCorners}, ${o.paddingMode}`;

// Grid coordinates mostly inside [−1, 1], some outside (−1.3 … 1.3) so that zero padding and border clamping act.
const gridDomain = (rng: nd.Rng): number => rng.range(-1.3, 1.3);

describe('gridSample: GPU vs f64 reference, backward vs finite differences', () => {
  const shapes: { input: number[]; grid: number[] }[] = [
    { input: [1, 1, 1, 1], grid: [1, 1, 1, 2] },
    { input: [2, 3, 5, 7], grid: [2, 4, 6, 2] },
    { input: [1, 2, 6, 4], grid: [1, 9, 13, 2] }, // 117 locations: not a multiple of the workgroup
  ];
  for (const opts of MODES) {
    for (const s of shapes) {
      it(`input ${JSON.stringify(s.input)} grid ${JSON.stringify(s.grid)}, ${modeName(opts)}`, async () => {
        await checkOp({
          name: 'gridSample',
          inputs: [{ shape: s.input }, { shape: s.grid, domain: gridDomain }],
          gpu: (input, grid) => nd.gridSample(input, grid, { ...opts, atomics: 'float-cas' }),
          ref: (input, grid) => gridSampleReference(input, s.input, grid, s.grid, opts),
          refBackward: ([input, grid], dy) => {
            const { dInput, dGrid } = gridSampleBackwardReference(input, s.input, grid, s.grid, dy, opts);
            return [dInput, dGrid];
          },
          seed: s.grid[1] * 31 + s.grid[2] + (opts.alignCorners ? 1000 : 0) + (opts.paddingMode === 'border' ? 2000 : 0),
          rtol: 1e-5,
          atol: 1e-5,
          gradRtol: 1e-4,
          gradAtol: 1e-4,
        });
      });
    }
  }

  it('fixed-point atomics: input gradient matches the reference and repeats bit for bit', async () => {
    const s = { input: [2, 3, 5, 7], grid: [2, 8, 8, 2] };
    const opts: GridSampleOptions = { alignCorners: false, paddingMode: 'zeros' };
    await checkOp({
      name: 'gridSample (fixed-point)',
      inputs: [{ shape: s.input }, { shape: s.grid, domain: gridDomain }],
      gpu: (input, grid) => nd.gridSample(input, grid, { ...opts, atomics: 'fixed-point' }),
      ref: (input, grid) => gridSampleReference(input, s.input, grid, s.grid, opts),
      refBackward: ([input, grid], dy) => {
        const { dInput, dGrid } = gridSampleBackwardReference(input, s.input, grid, s.grid, dy, opts);
        return [dInput, dGrid];
      },
      rtol: 1e-5,
      atol: 1e-5,
      gradRtol: 1e-4,
      gradAtol: 2e-4, // each add is rounded to 2^-16
    });
    const runs: Buffer[] = [];
    for (let run = 0; run < 2; run++) {
      const input = nd.keep(nd.randn(s.input, new nd.Rng(1)));
      input.requiresGrad = true;
      nd.scope(() => {
        const grid = nd.rand(s.grid, new nd.Rng(2), -1, 1);
        nd.backward(nd.gridSample(input, grid, { ...opts, atomics: 'fixed-point' }), nd.randn([2, 3, 8, 8], new nd.Rng(3)));
      });
      runs.push(Buffer.from((await input.grad!.data()).buffer));
      input.dispose();
    }
    expect(runs[0].equals(runs[1])).toBe(true);
  });

  // Points on a lattice that hits pixel centres, cell edges, the image border and beyond exactly (every value is
  // exact in f32): ix = k/4 + 1.5 for 4 pixels (alignCorners false), k/4 + 2 for 5 pixels (true), k = −12 … 12.
  for (const opts of MODES) {
    it(`exact pixel positions, borders and outside points, ${modeName(opts)}`, async () => {
      const size = opts.alignCorners ? 5 : 4;
      const inShape = [1, 2, size, size];
      const ks = [-12, -10, -9, -8, -6, -5, -2, 0, 1, 2, 6, 8, 9, 10, 12];
      const gridShape = [1, ks.length, ks.length, 2];
      const lattice = (): Float64Array => {
        const g = new Float64Array(ks.length * ks.length * 2);
        ks.forEach((ky, row) => ks.forEach((kx, col) => g.set([kx / 8, ky / 8], (row * ks.length + col) * 2)));
        return g;
      };
      // Input gradient (linear in the input, so finite differences hold even at kinks); the grid is held fixed.
      await checkOp({
        name: 'gridSample on the lattice',
        inputs: [{ shape: inShape }, { shape: gridShape, noGrad: true, domain: () => 0 }],
        gpu: (input) => {
          const grid = nd.tensor(lattice(), gridShape);
          return nd.gridSample(input, grid, { ...opts, atomics: 'float-cas' });
        },
        ref: (input) => gridSampleReference(input, inShape, lattice(), gridShape, opts),
        refBackward: ([input], dy) => [gridSampleBackwardReference(input, inShape, lattice(), gridShape, dy, opts).dInput, null],
        rtol: 1e-6,
        atol: 1e-6,
        gradAtol: 1e-5,
      });
      // Grid gradient at the kinks: torch's one-sided convention (the cell right/below, border clamps count as
      // outside), compared with the reference directly, since finite differences straddle the kink.
      const rng = new nd.Rng(17);
      const inputData = Float64Array.from({ length: size * size * 2 }, () => Math.fround(rng.normal()));
      const dy = Float64Array.from({ length: 2 * ks.length * ks.length }, () => Math.fround(rng.normal()));
      const grid = nd.tensor(lattice(), gridShape);
      grid.requiresGrad = true;
      nd.scope(() => nd.backward(nd.gridSample(nd.tensor(inputData, inShape), grid, opts), nd.tensor(dy, [1, 2, ks.length, ks.length])));
      const expected = gridSampleBackwardReference(inputData, inShape, lattice(), gridShape, dy, opts).dGrid;
      expectClose(await grid.grad!.data(), expected, 1e-5, 1e-5, `gridSample grid gradient on the lattice (${modeName(opts)})`);
      grid.dispose();
    });
  }

  it('rejects a grid that does not match the input', () => {
    nd.scope(() => {
      expect(() => nd.gridSample(nd.zeros([2, 3, 4, 4]), nd.zeros([1, 5, 5, 2]))).toThrow(/gridSample: grid must be \[N, H_out, W_out, 2\] with N = 2/);
      expect(() => nd.gridSample(nd.zeros([2, 3, 4, 4]), nd.zeros([2, 5, 5, 3]))).toThrow(/gridSample: grid must be/);
      expect(() => nd.gridSample(nd.zeros([3, 4, 4]), nd.zeros([3, 5, 5, 2]))).toThrow(/gridSample: input must be \[N, C, H, W\]/);
    });
  });
});

describe('gruCell: GPU vs f64 reference GRU cell, backward vs finite differences', () => {
  const cases: (GruDims & { bias: boolean })[] = [
    { batch: 1, input: 1, hidden: 1, bias: true },
    { batch: 3, input: 5, hidden: 7, bias: true },
    { batch: 2, input: 33, hidden: 19, bias: false },
    { batch: 3, input: 16, hidden: 45, bias: true }, // 3H = 135 columns: several matmul tiles, 135 gate threads
  ];
  for (const d of cases) {
    it(`B ${d.batch}, I ${d.input}, H ${d.hidden}${d.bias ? ', with biases' : ', no biases'}`, async () => {
      const H3 = 3 * d.hidden;
      // Weights at torch's init scale (U(−1/√H, 1/√H)) keep the gates away from saturation.
      const scale = 1 / Math.sqrt(d.hidden);
      const weight = (rng: nd.Rng): number => rng.range(-scale, scale) * 2;
      await checkOp({
        name: 'gruCell',
        inputs: [
          { shape: [d.batch, d.input] },
          { shape: [d.batch, d.hidden] },
          { shape: [H3, d.input], domain: weight },
          { shape: [H3, d.hidden], domain: weight },
          ...(d.bias ? [{ shape: [H3], domain: weight }, { shape: [H3], domain: weight }] : []),
        ],
        gpu: (x, h, wIh, wHh, bIh, bHh) => nd.gruCell(x, h, wIh, wHh, bIh, bHh),
        ref: (x, h, wIh, wHh, bIh, bHh) => gruCellReference(x, h, wIh, wHh, bIh ?? null, bHh ?? null, d),
        refBackward: ([x, h, wIh, wHh, bIh, bHh], dy) => {
          const g = gruCellBackwardReference(x, h, wIh, wHh, bIh ?? null, bHh ?? null, d, dy);
          return d.bias ? [g.dx, g.dh, g.dwIh, g.dwHh, g.dbIh, g.dbHh] : [g.dx, g.dh, g.dwIh, g.dwHh];
        },
        seed: d.batch * 1000 + d.input * 10 + d.hidden,
        rtol: 1e-5,
        atol: 1e-5,
        gradRtol: 1e-4,
        gradAtol: 1e-4,
      });
    });
  }

  it('matches torch.nn.GRUCell at a hand-computed point', async () => {
    // B = 1, I = 1, H = 1, all weights 0.5, biases 0.1, x = 1, h = −1:
    // r = σ(0.5 + 0.1 − 0.5 + 0.1) = σ(0.2), z = σ(0.2), n = tanh(0.6 + r·(−0.4)), h' = (1 − z)n − z.
    const sig = 1 / (1 + Math.exp(-0.2));
    const n = Math.tanh(0.6 - 0.4 * sig);
    const expected = (1 - sig) * n - sig;
    const y = nd.scope(() =>
      nd.gruCell(nd.tensor([1], [1, 1]), nd.tensor([-1], [1, 1]), nd.full([3, 1], 0.5), nd.full([3, 1], 0.5), nd.full([3], 0.1), nd.full([3], 0.1)),
    );
    expect(await y.item()).toBeCloseTo(expected, 6);
    y.dispose();
  });

  it('rejects mismatched weights with a message naming the shapes', () => {
    nd.scope(() => {
      expect(() => nd.gruCell(nd.zeros([2, 3]), nd.zeros([2, 4]), nd.zeros([12, 4]), nd.zeros([12, 4]))).toThrow(
        /gruCell: wIh must be \[3H, I\] = \[12, 3\], got x \[2, 3\], h \[2, 4\], wIh \[12, 4\]/,
      );
      expect(() => nd.gruCell(nd.zeros([2, 3]), nd.zeros([1, 4]), nd.zeros([12, 3]), nd.zeros([12, 4]))).toThrow(/gruCell: x and h batch sizes differ/);
      expect(() => nd.gruCell(nd.zeros([2, 3]), nd.zeros([2, 4]), nd.zeros([12, 3]), nd.zeros([12, 4]), nd.zeros([4]))).toThrow(
        /gruCell: bIh must be \[3H\] = \[12\]/,
      );
    });
  });
});
