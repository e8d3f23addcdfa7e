/**
 * Multiresolution hash grid (3-D and 2-D) and the tri-plane: GPU forward vs the float64 reference, reference
 * backward vs finite differences, GPU backward (table and input) vs reference backward; cell boundaries, the clamp
 * outside [0, 1], hash collisions, both atomics modes, determinism, and that dL/dx runs only when asked.
 */
import { describe, expect, it, vi } from 'vitest';
import * as nd from '../src/index.ts';
import { hashGrid, hashGridF16, hashGridPackF16, hashGridTable, pointLevelGrid, triPlane } from '../src/ops/encoding.ts';
import { hashGridForward } from '../src/kernels/encoding/hashgrid.ts';
import { hashGridLayout, levelEntryIndex, type HashGridConfig } from '../src/kernels/encoding/hashgrid-layout.ts';
import {
  decodeF16,
  f16Neighbours,
  hashGridInputGradReference,
  hashGridReference,
  hashGridTableGradReference,
  triPlaneGradReference,
  triPlaneReference,
} from '../src/kernels/encoding/hashgrid.ref.ts';
import { checkOp, expectClose, type InputDomain } from './helpers/check-op.ts';

/** A small grid whose coarse levels are dense and whose fine levels are hashed (2^T entries). */
function smallConfig(dims: 2 | 3, features: 1 | 2 | 4, extra: Partial<HashGridConfig> = {}): HashGridConfig {
  return {
    dims,
    features,
    levels: 4,
    log2TableSize: dims === 3 ? 9 : 7,
    baseResolution: 4,
    perLevelScale: 1.8,
    atomics: 'fixed-point',
    fixedPointBits: 22,
    ...extra,
  };
}

function hashGridCheck(config: HashGridConfig, points: number, opts: { xDomain?: InputDomain; xGrad?: boolean; seed?: number } = {}) {
  const { totalEntries } = hashGridLayout(config);
  return checkOp({
    name: `hashGrid D=${config.dims} F=${config.features} N=${points}`,
    inputs: [
      { shape: [points, config.dims], domain: opts.xDomain ?? 'unit', noGrad: opts.xGrad === false },
      { shape: [totalEntries, config.features], domain: 'normal' },
    ],
    gpu: (x, table) => hashGrid(x, table, config),
    ref: (x, table) => hashGridReference(x, table, config),
    refBackward: ([x, table], dL_dy) => [
      opts.xGrad === false ? null : hashGridInputGradReference(x, table, dL_dy, config),
      hashGridTableGradReference(x, dL_dy, config),
    ],
    // f32 positions (x · scale) differ from the f64 ones by ~scale · 2^-24 of a cell.
    atol: 2e-5,
    rtol: 1e-5,
    gradAtol: 2e-4,
    gradRtol: 1e-4,
    seed: opts.seed ?? points * 10 + config.dims * 3 + config.features,
  });
}

describe('hash grid layout', () => {
  it('dense levels while V^D fits 2^T, hashed above; offsets are cumulative', () => {
    // RAD-NeRF's 3-D grid: 16 levels × 2 features, base 16, 2^16 entries, finest resolution 2048.
    const rad = hashGridLayout({ dims: 3, features: 2, levels: 16, log2TableSize: 16, baseResolution: 16, maxResolution: 2048 });
    expect(rad.levels[0]).toMatchObject({ offset: 0, vertices: 17, size: 17 ** 3, hashed: false }); // scale 15 + half-cell
    expect(rad.levels.filter((l) => !l.hashed).length).toBe(3);
    expect(rad.levels.every((l) => (l.hashed ? l.size === 2 ** 16 : l.size === l.vertices ** 3 && l.size <= 2 ** 16))).toBe(true);
    expect(Math.abs(rad.levels[15].scale - 2047)).toBeLessThan(1e-3);
    for (let l = 1; l < 16; l++) expect(rad.levels[l].offset).toBe(rad.levels[l - 1].offset + rad.levels[l - 1].size);
    expect(rad.outputDims).toBe(32);
    // ER-NeRF's tri-plane grid: 12 levels × 1 feature, base 64, 2^14, max 512, aligned corners: 64 vertices on level 0.
    const er = hashGridLayout({ dims: 2, features: 1, levels: 12, log2TableSize: 14, baseResolution: 64, maxResolution: 512, alignCorners: true });
    expect(er.levels[0]).toMatchObject({ vertices: 64, size: 4096, hashed: false });
    expect(er.levels.map((l) => l.hashed)).toEqual([false, false, false, false, ...Array(8).fill(true)]); // 113² ≤ 2^14 < 137²
    expect(er.levels[11].vertices).toBe(512);
    expect(er.shift).toBe(0);
    expect(er.outputDims).toBe(12);
  });

  it('rejects bad configs and tables with errors that say what is wrong', async () => {
    expect(() => hashGridLayout({ ...smallConfig(3, 2), levels: 17 })).toThrow(/levels must be an integer in 1..16/);
    expect(() => hashGridLayout({ ...smallConfig(3, 2), features: 3 as 2 })).toThrow(/features must be 1, 2 or 4/);
    const config = smallConfig(3, 2);
    nd.scope(() => {
      const x = nd.zeros([5, 3]);
      expect(() => hashGrid(x, nd.zeros([7, 2]), config)).toThrow(/hashGrid: the table must be f32 \[\d+, 2\].*got f32 \[7, 2\]/);
      expect(() => hashGrid(nd.zeros([5, 2]), hashGridTable(config, new nd.Rng(1)), config)).toThrow(/hashGrid: x must be an f32 tensor \[N, 3\]/);
      const planeConfig = smallConfig(2, 1);
      const t = hashGridTable(planeConfig, new nd.Rng(1));
      expect(() => triPlane(nd.zeros([5, 2]), t, t, t, planeConfig)).toThrow(/triPlane: x must be an f32 tensor \[N, 3\]/);
      expect(() => triPlane(x, t, t, t, smallConfig(3, 1))).toThrow(/triPlane: config.dims must be 2/);
    });
  });
});

describe('hashGrid: forward, table gradient, input gradient', () => {
  for (const dims of [2, 3] as const) {
    for (const features of [1, 2, 4] as const) {
      for (const points of [1, 67, 130]) {
        it(`D=${dims} F=${features} N=${points}`, async () => {
          await hashGridCheck(smallConfig(dims, features), points);
        });
      }
    }
  }

  it('aligned corners, D=3 F=2, table-only gradient (x does not require one)', async () => {
    await hashGridCheck(smallConfig(3, 2, { alignCorners: true }), 65, { xGrad: false });
  });

  it('float-cas atomics agree with the reference (within tolerance)', async () => {
    await hashGridCheck(smallConfig(3, 2, { atomics: 'float-cas' }), 129);
    await hashGridCheck(smallConfig(2, 4, { atomics: 'float-cas' }), 64);
  });

  it('points outside [0, 1] are clamped: same encoding as the clamped point, dL/dx 0 along clamped axes', async () => {
    // Values land outside, inside, and exactly on 0 and 1; finite differences skip the clamp's kinks at 0 and 1.
    const domain: InputDomain = (rng) => {
      const v = rng.range(-0.6, 1.6);
      return Math.abs(v) < 0.01 || Math.abs(v - 1) < 0.01 ? 0.5 : v;
    };
    await hashGridCheck(smallConfig(3, 2), 50, { xDomain: domain });
    const config = smallConfig(2, 1);
    const x = new Float64Array([-0.5, 0.25, 1.5, 2, 0, 1, -3, 0.75]);
    const clamped = x.map((v) => Math.min(Math.max(v, 0), 1));
    const table = hashGridTable(config, new nd.Rng(3), 1);
    const y = nd.scope(() => hashGrid(nd.tensor(x, [4, 2]), table, config));
    const yClamped = nd.scope(() => hashGrid(nd.tensor(clamped, [4, 2]), table, config));
    expect(Array.from(await y.data())).toEqual(Array.from(await yClamped.data()));
    y.dispose();
    yClamped.dispose();
    table.dispose();
  });
});

describe('cell boundaries', () => {
  // Two levels with scales 8 and 16 (base 9, growth 17/9), aligned corners: x = k/16 lies on a face of the level-1
  // grid for every k and of the level-0 grid for even k, exactly in f32 and in f64; 0 and 1 are the grid's faces.
  const config: HashGridConfig = {
    dims: 3,
    features: 2,
    levels: 2,
    log2TableSize: 12,
    baseResolution: 9,
    perLevelScale: 17 / 9,
    alignCorners: true,
    atomics: 'fixed-point',
    fixedPointBits: 22,
  };
  const onFaces: InputDomain = (rng) => rng.int(17) / 16;

  it('the levels really have integer scales', () => {
    expect(hashGridLayout(config).levels.map((l) => l.scale)).toEqual([8, 16]);
  });

  it('forward and table gradient on faces, at 0 and at 1', async () => {
    await hashGridCheck(config, 70, { xDomain: onFaces, xGrad: false });
    // The same without aligned corners: x = (2k + 1)/32 puts x·16 + 0.5 on integers.
    const shifted = { ...config, alignCorners: false };
    await hashGridCheck(shifted, 70, { xDomain: (rng) => (2 * rng.int(16) + 1) / 32, xGrad: false });
  });

  it('dL/dx on faces is the derivative of the cell on the + side (the − side on the upper face x = 1)', async () => {
    const rng = new nd.Rng(5);
    const N = 40;
    const { totalEntries } = hashGridLayout(config);
    const x = Float64Array.from({ length: N * 3 }, () => onFaces(rng));
    x.set([0, 0, 0, 1, 1, 1], 0);
    const table = Float64Array.from({ length: totalEntries * 2 }, () => Math.fround(rng.normal()));
    const dL_dy = Float64Array.from({ length: N * 4 }, () => Math.fround(rng.normal()));
    const reference = hashGridInputGradReference(x, table, dL_dy, config);

    // The convention, checked on the reference with one-sided differences (the function is multilinear in a cell).
    const loss = (xs: Float64Array): number => hashGridReference(xs, table, config).reduce((s, v, i) => s + v * dL_dy[i], 0);
    const h = 1e-7;
    for (const j of [0, 3, 5, 7, 10, 20, 33, 50, 77, 100]) {
      const side = x[j] === 1 ? -1 : 1;
      const moved = x.slice();
      moved[j] += side * h;
      const oneSided = (loss(moved) - loss(x)) / (side * h);
      expect(Math.abs(oneSided - reference[j]), `coordinate ${j} at x=${x[j]}`).toBeLessThan(1e-5 * (1 + Math.abs(reference[j])));
    }

    const xt = nd.keep(nd.tensor(x, [N, 3]));
    xt.requiresGrad = true;
    const tt = nd.keep(nd.tensor(table, [totalEntries, 2]));
    nd.scope(() => nd.backward(hashGrid(xt, tt, config), nd.tensor(dL_dy, [N, 4])));
    expectClose(await xt.grad!.data(), reference, 1e-5, 1e-4, 'GPU dL/dx on faces');
    xt.dispose();
    tt.dispose();
  });
});

describe('hash collisions (deliberately tiny table)', () => {
  for (const dims of [2, 3] as const) {
    it(`D=${dims}: 2^3 entries per level for up to ${dims === 3 ? '~1000' : '~100'} vertices`, async () => {
      const config: HashGridConfig = { ...smallConfig(dims, 2), log2TableSize: 3, baseResolution: 6 };
      const layout = hashGridLayout(config);
      expect(layout.levels.every((l) => l.hashed && l.size === 8)).toBe(true);
      // Distinct vertices do share entries: e.g. the vertices of level 0 map onto only 8 rows.
      const level = layout.levels[0];
      const rows = new Set<number>();
      for (let i = 0; i < level.vertices ** dims; i++) {
        const coords = Array.from({ length: dims }, (_, d) => Math.floor(i / level.vertices ** d) % level.vertices);
        rows.add(levelEntryIndex(level, coords));
      }
      expect(rows.size).toBe(8);
      await hashGridCheck(config, 97);
    });
  }
});

describe('atomics', () => {
  it('fixed-point scatter-add is bitwise deterministic; float-cas matches it within tolerance', async () => {
    // Many points on a coarse grid: every cell receives many contributions.
    const config: HashGridConfig = { dims: 3, features: 2, levels: 2, log2TableSize: 10, baseResolution: 3, perLevelScale: 2 };
    const rng = new nd.Rng(11);
    const N = 3000;
    const x = nd.keep(nd.rand([N, 3], rng));
    const table = nd.keep(hashGridTable(config, rng, 1));
    table.requiresGrad = true;
    const dy = nd.keep(nd.randn([N, 4], rng, 1e-2));
    const gradOf = async (atomics: 'fixed-point' | 'float-cas'): Promise<Float32Array> => {
      nd.scope(() => nd.backward(hashGrid(x, table, { ...config, atomics }), dy));
      const g = Float32Array.from(await table.grad!.data());
      table.grad!.dispose();
      table.grad = null;
      return g;
    };
    const first = await gradOf('fixed-point');
    const second = await gradOf('fixed-point');
    expect(Buffer.from(first.buffer).equals(Buffer.from(second.buffer))).toBe(true);
    const cas = await gradOf('float-cas');
    const reference = hashGridTableGradReference(await x.toFloat64(), await dy.toFloat64(), config);
    // Fixed point: each of the ≤ 8·N contributions per cell rounds by ≤ 2^-25.
    expectClose(first, reference, 1e-5, 3000 * 2 ** -25, 'fixed-point grad');
    expectClose(cas, reference, 1e-4, 1e-6, 'float-cas grad');
    x.dispose();
    table.dispose();
    dy.dispose();
  });
});

describe('triPlane (XY, YZ, XZ 2-D grids)', () => {
  for (const features of [1, 2] as const) {
    for (const points of [1, 70]) {
      it(`F=${features} N=${points}`, async () => {
        const config: HashGridConfig = { ...smallConfig(2, features), alignCorners: true };
        const { totalEntries } = hashGridLayout(config);
        const table = { shape: [totalEntries, features], domain: 'normal' as const };
        await checkOp({
          name: `triPlane F=${features} N=${points}`,
          inputs: [{ shape: [points, 3], domain: 'unit' }, table, table, table],
          gpu: (x, a, b, c) => triPlane(x, a, b, c, config),
          ref: (x, a, b, c) => triPlaneReference(x, [a, b, c], config),
          refBackward: ([x, a, b, c], dL_dy) => triPlaneGradReference(x, [a, b, c], dL_dy, config),
          atol: 2e-5,
          gradAtol: 2e-4,
          gradRtol: 1e-4,
          seed: 40 + points + features,
        });
      });
    }
  }

  it('each plane reads its own two columns (a table that is nonzero only in one plane moves only its slice)', async () => {
    const config: HashGridConfig = { ...smallConfig(2, 1), levels: 2 };
    const { totalEntries } = hashGridLayout(config);
    const rng = new nd.Rng(2);
    const x = nd.keep(nd.rand([9, 3], rng));
    const xs = await x.toFloat64();
    const zero = nd.keep(nd.zeros([totalEntries, 1]));
    const ones = nd.keep(nd.randn([totalEntries, 1], rng));
    const onesHost = await ones.toFloat64();
    for (let k = 0; k < 3; k++) {
      const tables = [zero, zero, zero];
      tables[k] = ones;
      const y = nd.scope(() => triPlane(x, tables[0], tables[1], tables[2], config));
      const yHost = await y.data();
      const axes = [[0, 1], [1, 2], [0, 2]][k];
      const plane = hashGridReference(Float64Array.from({ length: 18 }, (_, i) => xs[Math.floor(i / 2) * 3 + axes[i % 2]]), onesHost, config);
      for (let n = 0; n < 9; n++) {
        for (let j = 0; j < 6; j++) {
          const expected = Math.floor(j / 2) === k ? plane[n * 2 + (j % 2)] : 0;
          expect(Math.abs(yHost[n * 6 + j] - expected)).toBeLessThan(1e-5);
        }
      }
      y.dispose();
    }
    x.dispose();
    zero.dispose();
    ones.dispose();
  });
});

describe('dL/dx runs only when x requires a gradient', () => {
  it('hashGrid and triPlane dispatch hashgrid_backward_input only then', async () => {
    const rt = nd.runtime();
    const names: string[] = [];
    const spy = vi.spyOn(rt, 'dispatch').mockImplementation(function (this: nd.Runtime, kernel, ...rest) {
      names.push(kernel.name);
      return nd.Runtime.prototype.dispatch.call(this, kernel, ...rest);
    });
    try {
      const config = smallConfig(2, 1);
      const table = nd.keep(hashGridTable(config, new nd.Rng(4)));
      table.requiresGrad = true;
      const x2 = nd.keep(nd.rand([10, 2], new nd.Rng(5)));
      const x3 = nd.keep(nd.rand([10, 3], new nd.Rng(6)));
      const run = (requiresGrad: boolean): string[] => {
        names.length = 0;
        x2.requiresGrad = requiresGrad;
        x3.requiresGrad = requiresGrad;
        nd.scope(() => {
          nd.backward(nd.sum(hashGrid(x2, table, config)));
          nd.backward(nd.sum(triPlane(x3, table, table, table, config)));
        });
        return [...names];
      };
      const without = run(false);
      expect(without).toContain('hashgrid_backward');
      expect(without).not.toContain('hashgrid_backward_input');
      const withGrad = run(true);
      expect(withGrad.filter((n) => n === 'hashgrid_backward_input').length).toBe(1 + 3);
      await rt.sync();
      for (const t of [table, x2, x3]) t.dispose();
    } finally {
      spy.mockRestore();
    }
  });

});

describe('workgroup grid and empty input', () => {
  it('points folded into workgroup_id.z (as past 65535 · 64 points) are indexed right', async () => {
    // Forcing the fold with a small limit: 300 points = 5 groups of 64 → grid [2, L, 3] (one group idle).
    const config = smallConfig(3, 2);
    const layout = hashGridLayout(config);
    const grid = pointLevelGrid(300, config.levels, 2);
    expect(grid).toEqual([2, 4, 3]);
    const rng = new nd.Rng(8);
    const x = nd.rand([300, 3], rng);
    const table = hashGridTable(config, rng, 1);
    const y = nd.zeros([300, 8]);
    const words = new Uint32Array(config.levels * 5);
    layout.levels.forEach((l, i) => {
      words.set([l.offset, l.size, l.vertices, l.hashed ? 1 : 0], i * 5);
      new Float32Array(words.buffer)[i * 5 + 4] = l.scale;
    });
    const levelInfo = nd.tensor(words, [words.length], 'u32');
    nd.runtime().dispatch(
      hashGridForward,
      { dims: 3, features: 2, table: 'f32' } as const,
      [x.view, table.view, levelInfo.view, y.view],
      { n: 300, x_stride: 3, axis0: 0, axis1: 1, axis2: 2, out_stride: 8, out_offset: 0, shift: layout.shift },
      grid,
    );
    const expected = hashGridReference(await x.toFloat64(), await table.toFloat64(), config);
    expectClose(await y.data(), expected, 1e-5, 2e-5, 'folded forward');
    for (const t of [x, table, y, levelInfo]) t.dispose();
  });

  it('zero points: an empty [0, L·F] encoding and nothing dispatched', async () => {
    const config = smallConfig(3, 2);
    const table = hashGridTable(config, new nd.Rng(1));
    const before = nd.runtime().stats.dispatches;
    const y = nd.scope(() => hashGrid(nd.zeros([0, 3]), table, config));
    expect(y.shape).toEqual([0, 8]);
    expect(nd.runtime().stats.dispatches).toBe(before);
    y.dispose();
    table.dispose();
  });
});

describe('f16 table copy for rendering (hashGridPackF16, hashGridF16)', () => {
  /** The packed table decoded in f64: [rows, F], feature 2k in the low half of u32 word k. */
  async function decodePacked(packed: nd.Tensor, features: number): Promise<Float64Array> {
    const words = await packed.data();
    const out = new Float64Array(words.length * 2);
    words.forEach((w, i) => {
      out[2 * i] = decodeF16(w & 0xffff);
      out[2 * i + 1] = decodeF16(w >>> 16);
    });
    expect(out.length).toBe(packed.shape[0] * features);
    return out;
  }

  it('the f64 f16 rounding: exact values, ties to even, subnormals, clamp', () => {
    expect(f16Neighbours(1).nearest).toBe(1);
    expect(f16Neighbours(1 + 2 ** -11).nearest).toBe(1); // tie between 1 and 1 + 2^-10: even is 1
    expect(f16Neighbours(1 + 3 * 2 ** -11).nearest).toBe(1 + 2 * 2 ** -10); // tie: the even one above
    expect(f16Neighbours(-(1 + 2 ** -12))).toEqual({ below: -(1 + 2 ** -10), above: -1, nearest: -1 });
    expect(f16Neighbours(3 * 2 ** -26).nearest).toBe(2 ** -24); // subnormal spacing 2^-24
    expect(f16Neighbours(1e6).nearest).toBe(65504);
    expect(f16Neighbours(-1e6).nearest).toBe(-65504);
    expect(decodeF16(0x3c00)).toBe(1);
    expect(decodeF16(0xc000)).toBe(-2);
    expect(decodeF16(0x0001)).toBe(2 ** -24);
    expect(decodeF16(0x7bff)).toBe(65504);
  });

  for (const features of [2, 4] as const) {
    it(`F=${features}: every packed value is an f16 neighbour of its f32 row value, in feature order`, async () => {
      const config = smallConfig(3, features);
      const { totalEntries } = hashGridLayout(config);
      const rng = new nd.Rng(40 + features);
      // Values over many binades, subnormals, exact f16 values and ones past the f16 range.
      const values = new Float32Array(totalEntries * features);
      for (let i = 0; i < values.length; i++) {
        const kind = i % 5;
        values[i] = kind === 0 ? rng.normal() : kind === 1 ? rng.normal() * 1e-6 : kind === 2 ? rng.normal() * 3e4 : kind === 3 ? Math.round(rng.normal() * 64) / 16 : rng.normal() * 1e6;
      }
      const table = nd.tensor(values, [totalEntries, features]);
      const packed = hashGridPackF16(table, config);
      expect(packed.dtype).toBe('u32');
      expect(packed.shape).toEqual([totalEntries, features / 2]);
      const decoded = await decodePacked(packed, features);
      let nearest = 0;
      for (let i = 0; i < values.length; i++) {
        const { below, above, nearest: n } = f16Neighbours(values[i]);
        if (decoded[i] !== below && decoded[i] !== above) throw new Error(`row value ${i}: ${values[i]} packed as ${decoded[i]}, not ${below} or ${above}`);
        if (decoded[i] === n) nearest++;
      }
      // WGSL lets either neighbour be taken; lavapipe rounds to nearest, and most values are far from a tie anyway.
      expect(nearest / values.length).toBeGreaterThan(0.9);
      for (const t of [table, packed]) t.dispose();
    });
  }

  for (const [dims, features] of [[3, 2], [3, 4], [2, 2]] as const) {
    it(`D=${dims} F=${features}: the forward on the f16 copy is the reference forward on the rounded table`, async () => {
      const config = smallConfig(dims, features);
      const rng = new nd.Rng(50 + dims * 4 + features);
      const x = nd.rand([301, dims], rng);
      const table = hashGridTable(config, rng, 1);
      const packed = hashGridPackF16(table, config);
      const y = hashGridF16(x, packed, config);
      const expected = hashGridReference(await x.toFloat64(), await decodePacked(packed, features), config);
      expectClose(await y.data(), expected, 1e-5, 2e-5, `f16 forward D=${dims} F=${features}`);
      // ... and within f16 rounding of the f32 forward.
      expectClose(await y.data(), await hashGrid(x, table, config).data(), 0, 4e-3, 'f16 vs f32 forward');
      for (const t of [x, table, packed, y]) t.dispose();
    });
  }

  it('refuses F = 1, a table of the wrong shape, and a gradient', () => {
    const config = smallConfig(3, 2);
    const table = hashGridTable(config, new nd.Rng(3));
    expect(() => hashGridPackF16(hashGridTable(smallConfig(3, 1), new nd.Rng(3)), smallConfig(3, 1))).toThrow(/needs 2 or 4 features per level/);
    expect(() => hashGridF16(nd.zeros([4, 3]), nd.zeros([7, 1], 'u32'), smallConfig(3, 1))).toThrow(/needs 2 or 4 features per level; got 1/);
    expect(() => hashGridF16(nd.zeros([4, 3]), nd.zeros([7, 1], 'u32'), config)).toThrow(/must be hashGridPackF16's u32 \[\d+, 1\]/);
    expect(() => hashGridF16(nd.zeros([4, 3]), table, config)).toThrow(/hashGridPackF16's u32/);
    // Zero points: an empty encoding, nothing dispatched.
    const packed = hashGridPackF16(table, config);
    const before = nd.runtime().stats.dispatches;
    const empty = hashGridF16(nd.zeros([0, 3]), packed, config);
    expect(empty.shape).toEqual([0, 8]);
    expect(nd.runtime().stats.dispatches).toBe(before);
    empty.dispose();
    packed.dispose();
    table.requiresGrad = true;
    expect(() => hashGridPackF16(table, config)).toThrow(/no backward/);
    expect(() => nd.noGrad(() => hashGridPackF16(table, config)).dispose()).not.toThrow();
    table.dispose();
  });
});
