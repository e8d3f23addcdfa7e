import { afterEach, describe, expect, it } from 'vitest';
import * as nd from '../src/index.ts';
import { concatReference, padReference, sliceReference } from '../src/kernels/indexing/window.ts';
import { gatherReference, scatterAddReference } from '../src/kernels/indexing/gather.ts';
import { fixedPointQuantise } from '../src/kernels/common/atomics.ts';
import { checkOp } from './helpers/check-op.ts';

/** An index domain: integers in [lo, hi). */
const indices = (lo: number, hi: number) => (rng: nd.Rng) => lo + rng.int(hi - lo);

afterEach(() => {
  nd.scatterPolicy.mode = 'float-cas';
  nd.scatterPolicy.fixedPointBits = 16;
});

describe('slice / narrow', () => {
  const cases: { shape: number[]; starts: number[]; ends: number[]; begin: number[]; end: number[] }[] = [
    { shape: [1], starts: [0], ends: [1], begin: [0], end: [1] },
    { shape: [7], starts: [2], ends: [-1], begin: [2], end: [6] },
    { shape: [5, 70], starts: [1, 3], ends: [4, 69], begin: [1, 3], end: [4, 69] },
    { shape: [3, 4, 5], starts: [1], ends: [3], begin: [1, 0, 0], end: [3, 4, 5] }, // trailing axes whole
    { shape: [2, 3, 4, 5, 2, 3], starts: [0, 1, 1, 2, 1, 0], ends: [2, 3, 4, 99, 2, 2], begin: [0, 1, 1, 2, 1, 0], end: [2, 3, 4, 5, 2, 2] },
    // Prefixes of the storage (shared, no copy): leading rows; size-1 axes before the first cut one.
    { shape: [9, 4], starts: [0], ends: [5], begin: [0, 0], end: [5, 4] },
    { shape: [1, 6, 3], starts: [0, 0], ends: [1, 2], begin: [0, 0, 0], end: [1, 2, 3] },
    // Not prefixes: a cut inside rows, a cut after a whole leading axis.
    { shape: [9, 4], starts: [0, 0], ends: [5, 3], begin: [0, 0], end: [5, 3] },
    { shape: [2, 6, 3], starts: [0, 0], ends: [2, 2], begin: [0, 0, 0], end: [2, 2, 3] },
  ];
  for (const c of cases) {
    it(`slice ${JSON.stringify(c.shape)} [${c.starts}]:[${c.ends}]`, async () => {
      const outShape = c.begin.map((b, k) => c.end[k] - b);
      await checkOp({
        name: 'slice',
        inputs: [{ shape: c.shape }],
        gpu: (x) => nd.slice(x, c.starts, c.ends),
        ref: (x) => sliceReference(x, c.shape, c.begin, c.end),
        refBackward: (_x, dy) => [padReference(dy, outShape, c.shape, c.begin)],
      });
    });
  }

  it('narrow is slice along one axis; an empty slice gives zero gradient', async () => {
    await checkOp({
      name: 'narrow',
      inputs: [{ shape: [4, 6, 3] }],
      gpu: (x) => nd.narrow(x, -2, 2, 3),
      ref: (x) => sliceReference(x, [4, 6, 3], [0, 2, 0], [4, 5, 3]),
      refBackward: (_x, dy) => [padReference(dy, [4, 3, 3], [4, 6, 3], [0, 2, 0])],
    });
    const x = nd.tensor([1, 2, 3], [3]);
    x.requiresGrad = true;
    const empty = nd.slice(x, [2], [1]);
    expect(empty.shape).toEqual([0]);
    nd.scope(() => nd.backward(nd.sum(nd.concat([empty, nd.slice(x, [1], [2])], 0))));
    expect([...(await x.grad!.data())]).toEqual([0, 1, 0]);
    x.dispose();
    empty.dispose();
  });

  it('a prefix (narrow(x, 0, 0, n)) shares the storage and dispatches nothing; other slices copy', () => {
    const x = nd.randn([9, 4], new nd.Rng(3));
    const before = nd.runtime().stats.dispatches;
    const rows = nd.narrow(x, 0, 0, 5);
    expect(nd.runtime().stats.dispatches).toBe(before);
    expect(rows.view.pooled).toBe(x.view.pooled);
    expect(rows.view.offset).toBe(x.view.offset);
    expect(rows.view.size).toBe(5 * 4 * 4);
    const cols = nd.narrow(x, 1, 0, 3);
    expect(nd.runtime().stats.dispatches).toBe(before + 1);
    // The shared storage outlives the source's own reference.
    x.dispose();
    expect(() => rows.view).not.toThrow();
    rows.dispose();
    cols.dispose();
  });

  it('rejects bad arguments with clear messages', () => {
    const x = nd.zeros([2, 3]);
    expect(() => nd.narrow(x, 1, 2, 2)).toThrow(/narrow: start 2, length 2 do not fit axis 1 \(size 3\) of \[2, 3\]/);
    expect(() => nd.slice(x, [0, 0, 0], [1, 1, 1])).toThrow(/slice: 3 starts/);
    expect(() => nd.slice(x, [0.5], [1])).toThrow(/integers/);
    x.dispose();
  });
});

describe('concat', () => {
  const cases: { shapes: number[][]; axis: number }[] = [
    { shapes: [[1], [1]], axis: 0 },
    { shapes: [[3, 5], [3, 1], [3, 67]], axis: 1 },
    { shapes: [[2, 3, 4], [1, 3, 4]], axis: 0 },
    { shapes: [[2, 3, 4], [2, 5, 4], [2, 0, 4], [2, 1, 4]], axis: -2 },
  ];
  for (const c of cases) {
    it(`concat ${JSON.stringify(c.shapes)} axis ${c.axis}`, async () => {
      const rank = c.shapes[0].length;
      const axis = c.axis < 0 ? c.axis + rank : c.axis;
      await checkOp({
        name: 'concat',
        inputs: c.shapes.map((shape) => ({ shape })),
        gpu: (...parts) => nd.concat(parts, c.axis),
        ref: (...parts) => concatReference(parts, c.shapes, axis),
        refBackward: (_parts, dy) => {
          const outShape = [...c.shapes[0]];
          outShape[axis] = c.shapes.reduce((s, sh) => s + sh[axis], 0);
          let offset = 0;
          return c.shapes.map((shape) => {
            const begin = shape.map((_, k) => (k === axis ? offset : 0));
            offset += shape[axis];
            return sliceReference(dy, outShape, begin, shape.map((d, k) => begin[k] + d));
          });
        },
      });
    });
  }

  it('rejects mismatched shapes', () => {
    const a = nd.zeros([2, 3]);
    const b = nd.zeros([3, 3]);
    expect(() => nd.concat([a, b], 1)).toThrow(/concat: tensor 1 \[3, 3\] does not match tensor 0 \[2, 3\] outside axis 1/);
    expect(() => nd.concat([], 0)).toThrow(/at least one/);
    a.dispose();
    b.dispose();
  });
});

describe('indexSelect / gather', () => {
  const selectCases: { shape: number[]; axis: number; k: number; lo?: number; hi?: number }[] = [
    { shape: [1], axis: 0, k: 1 },
    { shape: [6, 3], axis: 0, k: 9 }, // repeats: the backward accumulates
    { shape: [4, 70], axis: 1, k: 5 },
    { shape: [2, 5, 3], axis: -2, k: 7, lo: -2, hi: 7 }, // out-of-range indices select 0, get no gradient
  ];
  for (const mode of ['fixed-point', 'float-cas'] as const) {
    for (const c of selectCases) {
      it(`indexSelect ${JSON.stringify(c)} (${mode} backward)`, async () => {
        nd.scatterPolicy.mode = mode;
        nd.scatterPolicy.fixedPointBits = 20;
        const axis = c.axis < 0 ? c.axis + c.shape.length : c.axis;
        const grid = c.shape.map((d, k) => (k === axis ? c.k : d));
        await checkOp({
          name: 'indexSelect',
          inputs: [{ shape: c.shape }, { shape: [c.k], dtype: 'i32', noGrad: true, domain: indices(c.lo ?? 0, c.hi ?? c.shape[axis]) }],
          gpu: (x, index) => nd.indexSelect(x, c.axis, index),
          ref: (x, index) => gatherReference('select', x, c.shape, axis, index, grid),
          refBackward: ([, index], dy) => [scatterAddReference('select', c.shape, axis, index, grid, dy, grid), null],
        });
      });
    }
  }

  // indexAdd: the adjoint of indexSelect (its forward is indexSelect's backward, and the other way round).
  const addCases: { shape: number[]; axis: number; k: number }[] = [
    { shape: [1], axis: 0, k: 1 },
    { shape: [6, 3], axis: 0, k: 9 }, // repeats: adds accumulate
    { shape: [4, 70], axis: 1, k: 5 },
  ];
  for (const c of addCases) {
    it(`indexAdd ${JSON.stringify(c)} (fixed-point)`, async () => {
      nd.scatterPolicy.mode = 'fixed-point';
      nd.scatterPolicy.fixedPointBits = 20;
      const grid = c.shape.map((d, k) => (k === c.axis ? c.k : d));
      await checkOp({
        name: 'indexAdd',
        inputs: [{ shape: grid }, { shape: [c.k], dtype: 'i32', noGrad: true, domain: indices(0, c.shape[c.axis]) }],
        gpu: (src, index) => nd.indexAdd(c.shape, c.axis, index, src),
        ref: (src, index) => scatterAddReference('select', c.shape, c.axis, index, grid, src, grid),
        refBackward: ([, index], dOut) => [gatherReference('select', dOut, c.shape, c.axis, index, grid), null],
        atol: 1e-5,
      });
    });
  }
  it('indexAdd rejects a src that does not fit', () => {
    const index = nd.tensor(new Int32Array([0, 1]), [2], 'i32');
    expect(() => nd.indexAdd([4, 3], 0, index, nd.zeros([3, 3]))).toThrow(/src \[3, 3\] must be \[4, 3\] with axis 0 of index's length/);
    index.dispose();
  });

  const gatherCases: { shape: number[]; index: number[]; axis: number }[] = [
    { shape: [1], index: [3], axis: 0 },
    { shape: [5, 4], index: [7, 4], axis: 0 },
    { shape: [5, 4], index: [3, 9], axis: 1 }, // index smaller than x on the other axis
    { shape: [3, 4, 66], index: [2, 6, 65], axis: 1 },
  ];
  for (const c of gatherCases) {
    it(`gather ${JSON.stringify(c)}`, async () => {
      nd.scatterPolicy.mode = 'fixed-point';
      nd.scatterPolicy.fixedPointBits = 20;
      await checkOp({
        name: 'gather',
        inputs: [{ shape: c.shape }, { shape: c.index, dtype: 'i32', noGrad: true, domain: indices(0, c.shape[c.axis]) }],
        gpu: (x, index) => nd.gather(x, c.axis, index),
        ref: (x, index) => gatherReference('gather', x, c.shape, c.axis, index, c.index),
        refBackward: ([, index], dy) => [scatterAddReference('gather', c.shape, c.axis, index, c.index, dy, c.index), null],
      });
    });
  }

  it('rejects bad indices', () => {
    const x = nd.zeros([3, 4]);
    const f = nd.zeros([2]);
    const i = nd.tensor([0, 1], [2], 'i32');
    expect(() => nd.indexSelect(x, 0, f)).toThrow(/indexSelect: index must be an i32 tensor/);
    expect(() => nd.indexSelect(x, 2, i)).toThrow(/indexSelect: axis 2 is out of range for rank 2/);
    expect(() => nd.gather(x, 0, i)).toThrow(/gather: index \[2\] must have the rank of x \[3, 4\]/);
    for (const t of [x, f, i]) t.dispose();
  });
});

describe('scatterAdd', () => {
  const cases: { shape: number[]; src: number[]; index: number[]; axis: number }[] = [
    { shape: [1], src: [1], index: [1], axis: 0 },
    { shape: [4], src: [50], index: [50], axis: 0 }, // heavy contention: 50 adds into 4 cells
    { shape: [3, 5], src: [6, 5], index: [6, 5], axis: 0 },
    { shape: [4, 3, 2], src: [4, 7, 3], index: [3, 7, 2], axis: 1 }, // src larger than index
  ];
  for (const mode of ['fixed-point', 'float-cas'] as const) {
    for (const c of cases) {
      it(`scatterAdd ${JSON.stringify(c)} (${mode})`, async () => {
        const n = c.src.reduce((a, b) => a * b, 1);
        await checkOp({
          name: 'scatterAdd',
          inputs: [{ shape: c.index, dtype: 'i32', noGrad: true, domain: indices(0, c.shape[c.axis]) }, { shape: c.src }],
          gpu: (index, src) => nd.scatterAdd(c.shape, c.axis, index, src, { mode, fixedPointBits: 20 }),
          ref: (index, src) => scatterAddReference('gather', c.shape, c.axis, index, c.index, src, c.src),
          refBackward: ([index], dy) => {
            const picked = gatherReference('gather', dy, c.shape, c.axis, index, c.index);
            return [null, padReference(picked, c.index, c.src, c.src.map(() => 0))];
          },
          // Sums of up to n terms: f32 (float-cas, any order) or 2^-21 per term (fixed-point, 20 bits).
          rtol: 1e-6 * Math.sqrt(n),
          atol: 2e-6 * Math.sqrt(n),
        });
      });
    }
  }

  it('fixed-point mode is bitwise deterministic and rounds each contribution to 2^-bits', async () => {
    const rng = new nd.Rng(7);
    const count = 3000;
    const values = Array.from({ length: count }, () => rng.normal());
    const index = nd.tensor(Array.from({ length: count }, () => rng.int(3)), [count], 'i32');
    const src = nd.tensor(values, [count]);
    const bits = 12;
    const sums = [0, 1, 2].map(() => nd.scatterAdd([3], 0, index, src, { mode: 'fixed-point', fixedPointBits: bits }));
    const runs = await Promise.all(sums.map((t) => t.data()));
    for (const t of sums) t.dispose();
    expect([...runs[1]]).toEqual([...runs[0]]);
    expect([...runs[2]]).toEqual([...runs[0]]);
    const indexData = await index.data();
    const expected = [0, 0, 0];
    values.forEach((v, i) => (expected[indexData[i]] += fixedPointQuantise(Math.fround(v), bits)));
    // The only difference left is f32 rounding of the final conversion.
    expected.forEach((e, k) => expect(Math.abs(runs[0][k] - e)).toBeLessThanOrEqual(Math.abs(e) * 2 ** -23));
    index.dispose();
    src.dispose();
  });

  it('rejects index shapes that do not fit', () => {
    const i = nd.tensor([0, 1, 0], [3], 'i32');
    const s = nd.zeros([2]);
    expect(() => nd.scatterAdd([4], 0, i, s)).toThrow(/scatterAdd: index \[3\] must fit src \[2\]/);
    i.dispose();
    s.dispose();
  });
});
