/**
 * Occupancy grid (cell points, EMA-max update, packed bitfield), ray marching with sample compaction (GPU-side
 * counts, indirect dispatch) and ragged volume rendering: GPU vs float64 references, references vs finite
 * differences, and the edge cases (empty rays, rays that miss the box, early termination, the max-samples cap,
 * capacity overflow, points on cell boundaries, all-empty and all-full grids).
 */
import { describe, expect, it, vi } from 'vitest';
import * as nd from '../src/index.ts';
import { runtime } from '../src/kernels/runtime/runtime.ts';
import { sampleDispatchArgs } from '../src/kernels/render/march.ts';
import { occupancyCellPointsRef, occupancyPackRef, occupancyUpdateRef, updateSlots } from '../src/kernels/render/occupancy.ref.ts';
import { DONE, marchRayRef, type MarchSettings } from '../src/kernels/render/march.ref.ts';
import {
  compositeRaggedBackwardReference,
  compositeRaggedLossReference,
  compositeRaggedReference,
  raggedLossCotangent,
  type RaggedInputs,
} from '../src/kernels/render/composite-ragged.ref.ts';
import type { DensityActivation } from '../src/kernels/render/composite.ref.ts';
import { compositeRoundReference, finishRoundsReference, initialRoundState } from '../src/kernels/render/composite-rounds.ref.ts';
import { checkOp, expectClose } from './helpers/check-op.ts';

function bitfieldOf(cells: number, occupied: (c: number) => boolean): Uint32Array {
  const bits = new Uint32Array(Math.ceil(cells / 32));
  for (let c = 0; c < cells; c++) if (occupied(c)) bits[c >>> 5] |= 1 << (c & 31);
  return bits;
}

function keepAll(m: nd.MarchResult): nd.MarchResult {
  for (const t of Object.values(m)) nd.keep(t);
  return m;
}

/** A grid whose bitfield is set directly (the march tests do not need the EMA). */
function gridWithBits(resolution: number, bound: number, bits: Uint32Array): nd.OccupancyGrid {
  const grid = new nd.OccupancyGrid({ resolution, bound });
  runtime().upload(grid.bitfield.view, bits);
  return grid;
}

describe('occupancy grid', () => {
  for (const { resolution, all, phase } of [
    { resolution: 5, all: true, phase: 0 },
    { resolution: 7, all: false, phase: 2 },
  ]) {
    it(`cell points and EMA update (G=${resolution}, ${all ? 'all cells' : `quarter, phase ${phase}`})`, async () => {
      const bound = 0.7;
      const cells = resolution ** 3;
      const rng = new nd.Rng(resolution);
      const initial = Float64Array.from({ length: cells }, () => Math.fround(3 * rng.uniform()));
      const grid = new nd.OccupancyGrid({ resolution, bound, decay: 0.9, activation: 'exp', densityScale: 0.3 });
      runtime().upload(grid.grid.view, Float32Array.from(initial));
      // Advance the rotating phase to the one under test.
      const seen: Float64Array[] = [];
      for (let i = 0; i <= (all ? 0 : phase); i++) {
        let captured: nd.Tensor | null = null;
        const raw = new Float64Array(updateSlots(cells, all ? 1 : 4, all ? 0 : i)).map(() => Math.fround(rng.normal()));
        if (i === (all ? 0 : phase)) {
          grid.update(
            (points) => {
              captured = nd.keep(nd.mul(points, 1));
              return nd.tensor(raw, [points.shape[0]]);
            },
            { seed: 11, all },
          );
          const points = await captured!.data();
          expectClose(points, occupancyCellPointsRef(resolution, bound, all ? 1 : 4, all ? 0 : phase, 11, true), 1e-6, 1e-6, 'cell points');
          captured!.dispose();
          seen.push(occupancyUpdateRef(initial, raw, all ? 1 : 4, all ? 0 : phase, 0.9, 'exp', 0.3));
        } else {
          runtime().upload(grid.grid.view, Float32Array.from(initial));
          grid.update((points) => nd.full([points.shape[0]], -30), { seed: 1, all });
          runtime().upload(grid.grid.view, Float32Array.from(initial));
        }
      }
      const expected = seen[0];
      expectClose(await grid.grid.data(), expected, 1e-5, 1e-6, 'grid after update');
      expect(Array.from(await grid.bitfield.data())).toEqual(Array.from(occupancyPackRef(Float64Array.from(await grid.grid.data()), 0.01)));
      grid.dispose();
    });
  }

  it('cell points stay inside their cells (boundaries: the lower face belongs to the cell)', () => {
    const points = occupancyCellPointsRef(4, 1, 1, 0, 3, true);
    for (let k = 0; k < 64; k++) {
      const cell = [k % 4, (k >> 2) % 4, k >> 4];
      for (let a = 0; a < 3; a++) expect(Math.floor((points[k * 3 + a] + 1) / 0.5)).toBe(cell[a]);
    }
  });

  it('pack: all-empty, all-full and mixed grids, threshold = min(mean, clip)', async () => {
    const cells = 125; // not a multiple of 32: the last word is partial
    const cases: [string, (c: number) => number][] = [
      ['all empty (zeros)', () => 0],
      ['all full', () => 5],
      ['mixed below the clip', (c) => (c % 3 === 0 ? 0.004 : 0)],
      ['mixed', (c) => (c % 7) * 0.01],
    ];
    for (const [what, value] of cases) {
      const values = Float64Array.from({ length: cells }, (_, c) => Math.fround(value(c)));
      const grid = new nd.OccupancyGrid({ resolution: 5, bound: 1 });
      runtime().upload(grid.grid.view, Float32Array.from(values));
      grid.pack();
      const bits = Array.from(await grid.bitfield.data());
      const expected = Array.from(occupancyPackRef(values, 0.01));
      expect(bits, what).toEqual(expected);
      if (what === 'all empty (zeros)') expect(bits.every((b) => b === 0)).toBe(true);
      if (what === 'all full') expect(bits).toEqual([0xffffffff, 0xffffffff, 0xffffffff, (1 << 29) - 1]);
      grid.dispose();
    }
  });
});

describe('ray marching with sample compaction', () => {
  it('indirect dispatch arguments follow the GPU counter', async () => {
    for (const [counter, capacity, expected] of [
      [0, 100, [0, 1, 1, 0]],
      [1, 100, [1, 1, 1, 1]],
      [64, 100, [1, 1, 1, 64]],
      [65, 100, [2, 1, 1, 65]],
      [500, 100, [2, 1, 1, 100]],
      [64 * 70000, 64 * 80000, [35000, 2, 1, 64 * 70000]],
    ] as const) {
      const c = nd.tensor([counter], [1], 'u32');
      const args = nd.Tensor.empty([3], 'u32');
      const count = nd.Tensor.empty([1], 'u32');
      runtime().dispatch(sampleDispatchArgs, undefined, [c.view, args.view, count.view], { capacity, workgroup_size: 64 }, [1, 1, 1]);
      expect([...(await args.data()), ...(await count.data())]).toEqual([...expected]);
      for (const t of [c, args, count]) t.dispose();
    }
  });

  interface Case {
    name: string;
    resolution: number;
    bits: (c: number) => boolean;
    settings: Partial<MarchSettings>;
    capacity?: number;
  }
  const bound = 0.6;
  /** Rays from a ring of cameras at distance 2 towards jittered points near the box; some miss it. */
  function rayBatch(R: number, seed: number) {
    const rng = new nd.Rng(seed);
    const origin = new Float64Array(R * 3);
    const direction = new Float64Array(R * 3);
    for (let r = 0; r < R; r++) {
      const phi = 2 * Math.PI * rng.uniform();
      const o = [2 * Math.cos(phi), 0.8 * (rng.uniform() - 0.5), 2 * Math.sin(phi)];
      const aim = [1.6 * (rng.uniform() - 0.5), 1.6 * (rng.uniform() - 0.5), 1.6 * (rng.uniform() - 0.5)];
      const scale = 0.8 + 0.5 * rng.uniform(); // unnormalised directions, as generateRays gives
      for (let a = 0; a < 3; a++) {
        origin[r * 3 + a] = Math.fround(o[a]);
        direction[r * 3 + a] = Math.fround((aim[a] - o[a]) * scale);
      }
    }
    return { origin, direction };
  }

  const cases: Case[] = [
    { name: 'random grid', resolution: 8, bits: (c) => (c * 2654435761) % 7 < 3, settings: { dt: 0.031, maxSamples: 200, jitter: true, seed: 5 } },
    { name: 'all-full grid, no jitter', resolution: 6, bits: () => true, settings: { dt: 0.05, maxSamples: 200, jitter: false } },
    { name: 'all-empty grid', resolution: 8, bits: () => false, settings: { dt: 0.02, maxSamples: 200, jitter: true, seed: 2 } },
    { name: 'max-samples cap', resolution: 5, bits: () => true, settings: { dt: 0.013, maxSamples: 7, jitter: true, seed: 9 } },
    { name: 'capacity overflow drops whole rays', resolution: 4, bits: () => true, settings: { dt: 0.04, maxSamples: 200, jitter: true, seed: 3 }, capacity: 300 },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const R = 77;
      const { origin, direction } = rayBatch(R, c.resolution * 13 + 1);
      const settings: MarchSettings = { resolution: c.resolution, bound, dt: 0.05, maxSamples: 64, seed: 0, jitter: false, ...c.settings };
      const bits = bitfieldOf(c.resolution ** 3, c.bits);
      const near = 0.5;
      const far = 3.5;
      const expected = Array.from({ length: R }, (_, r) =>
        marchRayRef(origin.subarray(r * 3, r * 3 + 3), direction.subarray(r * 3, r * 3 + 3), near, far, r, bits, settings),
      );
      const totalExpected = expected.reduce((s, e) => s + e.z.length, 0);
      const capacity = c.capacity ?? Math.max(1, totalExpected + 13);
      const grid = gridWithBits(c.resolution, bound, bits);
      // Poison the pool: the march's sample_ray buffer (the next of this size class) starts as out-of-range indices,
      // as a reused buffer can; rows of overflowing rays must still come out finite.
      nd.full([capacity], 0xffffffff, 'u32').dispose();
      const result = nd.scope(() => {
        const rays = { origin: nd.tensor(origin, [R, 3]), direction: nd.tensor(direction, [R, 3]), dirNorm: nd.zeros([R]) };
        const m = nd.marchRays(rays, nd.full([R], near), nd.full([R], far), grid, { ...settings, capacity });
        return keepAll(m);
      });
      const runs = await result.runs.data();
      const z = await result.z.data();
      const delta = await result.delta.data();
      const points = await result.points.data();
      const dirs = await result.dirs.data();
      const [count] = await result.count.data();
      const [requested] = await result.requested.data();
      expect(requested).toBe(totalExpected);
      expect(count).toBe(Math.min(totalExpected, capacity));

      // Runs are disjoint and inside [0, count); each ray's run matches the reference (or is dropped on overflow).
      const used = new Uint8Array(capacity);
      let dropped = 0;
      for (let r = 0; r < R; r++) {
        const [offset, n] = [runs[r * 2], runs[r * 2 + 1]];
        const e = expected[r];
        if (n === 0 && e.z.length > 0) {
          dropped += 1;
          expect(c.capacity, `ray ${r} lost its ${e.z.length} samples without an overflow`).toBeDefined();
          continue;
        }
        expect(n, `ray ${r} sample count`).toBe(e.z.length);
        expect(n).toBeLessThanOrEqual(settings.maxSamples);
        expect(offset + n).toBeLessThanOrEqual(count);
        for (let i = 0; i < n; i++) {
          expect(used[offset + i], `sample ${offset + i} claimed twice`).toBe(0);
          used[offset + i] = 1;
        }
        expectClose(z.subarray(offset, offset + n), e.z, 1e-5, 1e-5, `ray ${r} depths`);
        expectClose(delta.subarray(offset, offset + n), e.delta, 1e-6, 1e-7, `ray ${r} intervals`);
        const norm = Math.hypot(direction[r * 3], direction[r * 3 + 1], direction[r * 3 + 2]);
        for (let i = 0; i < n; i++) {
          for (let a = 0; a < 3; a++) {
            expect(points[(offset + i) * 3 + a]).toBeCloseTo(origin[r * 3 + a] + e.z[i] * direction[r * 3 + a], 4);
            expect(dirs[(offset + i) * 3 + a]).toBeCloseTo(direction[r * 3 + a] / norm, 5);
          }
        }
      }
      // Every row is finite (the field runs over all of them), including rows reserved by overflowing rays.
      expect(points.every(Number.isFinite) && dirs.every(Number.isFinite), 'non-finite sample rows').toBe(true);
      // Padding rows past the count stay zero (finite inputs for the field).
      for (let s = count; s < capacity; s++) expect(points[s * 3] === 0 && dirs[s * 3] === 0 && z[s] === 0).toBe(true);
      if (c.capacity) {
        expect(requested).toBeGreaterThan(capacity);
        expect(dropped).toBeGreaterThan(0);
      }
      if (c.name === 'all-empty grid') expect(requested).toBe(0);
      // Some rays miss the box entirely and get no samples, in the reference and on the GPU.
      expect(expected.some((e) => e.z.length === 0)).toBe(true);
      if (c.name === 'all-full grid, no jitter') expect(expected.filter((e) => e.z.length > 0).length).toBeGreaterThan(R / 3);
      nd.disposeMarch(result);
      grid.dispose();
    });
  }

  it('a march resumed from end_step continues the same lattice (the iterative render)', async () => {
    const R = 40;
    const { origin, direction } = rayBatch(R, 77);
    const bits = bitfieldOf(8 ** 3, (c) => (c * 2654435761) % 5 < 3);
    const settings: MarchSettings = { resolution: 8, bound, dt: 0.02, maxSamples: 1000, seed: 0, jitter: false };
    const whole = Array.from({ length: R }, (_, r) => marchRayRef(origin.subarray(r * 3, r * 3 + 3), direction.subarray(r * 3, r * 3 + 3), 0.5, 3.5, r, bits, settings));
    const grid = gridWithBits(8, bound, bits);
    const rays = { origin: nd.keep(nd.tensor(origin, [R, 3])), direction: nd.keep(nd.tensor(direction, [R, 3])), dirNorm: nd.keep(nd.zeros([R])) };
    const near = nd.keep(nd.full([R], 0.5));
    const far = nd.keep(nd.full([R], 3.5));
    const pieces: number[][] = Array.from({ length: R }, () => []);
    let start = new Uint32Array(R);
    let rounds = 0;
    while (start.some((k) => k !== DONE) && rounds < 100) {
      const startStep = nd.keep(nd.tensor(start, [R], 'u32'));
      const m = keepAll(nd.marchRays(rays, near, far, grid, { ...settings, maxSamples: 3, capacity: R * 3, startStep }));
      const runs = await m.runs.data();
      const z = await m.z.data();
      for (let r = 0; r < R; r++) pieces[r].push(...z.subarray(runs[r * 2], runs[r * 2] + runs[r * 2 + 1]));
      const next = Uint32Array.from(await m.endStep.data());
      // The reference agrees on where each ray stops.
      for (let r = 0; r < R; r++) {
        const ref = marchRayRef(origin.subarray(r * 3, r * 3 + 3), direction.subarray(r * 3, r * 3 + 3), 0.5, 3.5, r, bits, { ...settings, maxSamples: 3 }, start[r]);
        expect(next[r], `ray ${r} round ${rounds}`).toBe(ref.next);
      }
      start = next;
      nd.disposeMarch(m);
      startStep.dispose();
      rounds += 1;
    }
    expect(rounds).toBeGreaterThan(3);
    for (let r = 0; r < R; r++) expectClose(pieces[r], whole[r].z, 1e-5, 1e-5, `ray ${r} resumed samples`);
    for (const t of [rays.origin, rays.direction, rays.dirNorm, near, far]) t.dispose();
    grid.dispose();
  });

  it('zeroPadding false skips the clears: rows below the count are the same, row 0 is still zero', async () => {
    const R = 40;
    const maxSamples = 6;
    const capacity = R * maxSamples;
    const { origin, direction } = rayBatch(R, 91);
    const settings: MarchSettings = { resolution: 8, bound, dt: 0.02, maxSamples, seed: 0, jitter: false };
    const rays = { origin: nd.keep(nd.tensor(origin, [R, 3])), direction: nd.keep(nd.tensor(direction, [R, 3])), dirNorm: nd.keep(nd.zeros([R])) };
    const near = nd.keep(nd.full([R], 0.5));
    const far = nd.keep(nd.full([R], 3.5));
    // Buffers of the march's sizes, filled with 7s, go back to the pool: the unzeroed march reuses them.
    const dirtyPool = () => {
      for (let k = 0; k < 6; k++) for (const shape of [[capacity], [capacity, 3]]) nd.full(shape, 7).dispose();
    };
    const march = (grid: ReturnType<typeof gridWithBits>, zeroPadding: boolean) => keepAll(nd.marchRays(rays, near, far, grid, { ...settings, capacity, zeroPadding }));
    const grid = gridWithBits(8, bound, bitfieldOf(8 ** 3, (c) => (c * 2654435761) % 7 < 3));
    const zeroed = march(grid, true);
    dirtyPool();
    const unzeroed = march(grid, false);
    const [count] = await zeroed.count.data();
    expect(count).toBeGreaterThan(R);
    expect((await unzeroed.count.data())[0]).toBe(count);
    for (const [name, columns] of [['points', 3], ['dirs', 3], ['z', 1], ['delta', 1]] as const) {
      const a = (await zeroed[name].data()).subarray(0, count * columns);
      const b = (await unzeroed[name].data()).subarray(0, count * columns);
      expect(Array.from(b), name).toEqual(Array.from(a));
    }
    // No sample at all: the one padding row a caller evaluates is zero.
    const empty = gridWithBits(8, bound, bitfieldOf(8 ** 3, () => false));
    dirtyPool();
    const none = march(empty, false);
    expect((await none.count.data())[0]).toBe(0);
    for (const [name, columns] of [['points', 3], ['dirs', 3], ['z', 1], ['delta', 1]] as const) {
      expect(Array.from((await none[name].data()).subarray(0, columns)), `${name} row 0`).toEqual(new Array(columns).fill(0));
    }
    expect(() => nd.marchRays(rays, near, far, grid, { ...settings, capacity: capacity - 1, zeroPadding: false })).toThrow(/needs capacity ≥ rays · maxSamples \(40 · 6\), got 239/);
    for (const m of [zeroed, unzeroed, none]) nd.disposeMarch(m);
    for (const t of [rays.origin, rays.direction, rays.dirNorm, near, far]) t.dispose();
    grid.dispose();
    empty.dispose();
  });

  it('points exactly on cell boundaries belong to the upper cell', async () => {
    // bound 1, G 4 (cells of 0.5); a ray along +x at y = z = 0.25 enters at t = 2; with dt = 1 and no jitter the
    // lattice is t = 2.5, 3.5 → x = −0.5, 0.5: both exactly on boundaries (cells 1 and 3 along x).
    const R = 1;
    const row = (x: number) => x + 4 * (2 + 4 * 2);
    const marchWith = async (occupiedX: number[]) => {
      const grid = gridWithBits(4, 1, bitfieldOf(64, (c) => occupiedX.some((x) => row(x) === c)));
      const m = nd.scope(() =>
        keepAll(
          nd.marchRays({ origin: nd.tensor([-3, 0.25, 0.25], [1, 3]), direction: nd.tensor([1, 0, 0], [1, 3]), dirNorm: nd.ones([1]) }, nd.zeros([R]), nd.full([R], 10), grid, {
            dt: 1,
            maxSamples: 10,
            capacity: 8,
            jitter: false,
          }),
        ),
      );
      const runs = Array.from(await m.runs.data());
      const z = Array.from(await m.z.data()).slice(runs[0], runs[0] + runs[1]);
      nd.disposeMarch(m);
      grid.dispose();
      return z;
    };
    expect(await marchWith([1])).toEqual([2.5]);
    expect(await marchWith([3])).toEqual([3.5]);
    expect(await marchWith([0, 2])).toEqual([]);
    expect(await marchWith([0, 1, 2, 3])).toEqual([2.5, 3.5]);
    const ref = (x: number[]) => marchRayRef([-3, 0.25, 0.25], [1, 0, 0], 0, 10, 0, bitfieldOf(64, (c) => x.some((v) => row(v) === c)), { resolution: 4, bound: 1, dt: 1, maxSamples: 10, seed: 0, jitter: false }).z;
    expect(ref([1])).toEqual([2.5]);
    expect(ref([0, 2])).toEqual([]);
  });
});

describe('ragged volume rendering', () => {
  // Runs over 20 packed samples: an empty ray, a 1-sample ray, uneven runs, and samples 17..19 in no run (padding).
  const runs = [0, 0, 0, 1, 1, 5, 6, 3, 9, 8, 17, 0];
  const rays = runs.length / 2;
  const N = 20;
  const rng = new nd.Rng(21);
  const z = Float64Array.from({ length: N }, (_, s) => Math.fround(1 + 0.05 * s));
  const delta = Float64Array.from({ length: N }, () => Math.fround(0.05 + 0.1 * rng.uniform()));
  const background = Float64Array.from({ length: rays * 3 }, () => Math.fround(rng.uniform()));
  const target = Float64Array.from({ length: rays * 3 }, () => Math.fround(rng.uniform()));
  const gpuData = () => ({ runs: nd.tensor(runs, [rays, 2], 'u32'), z: nd.tensor(z, [N]), delta: nd.tensor(delta, [N]), background: nd.tensor(background, [rays, 3]) });
  const refInputs = (sigmaRaw: Float64Array, rgbRaw: Float64Array, activation: DensityActivation, threshold: number): RaggedInputs => ({
    rays, runs, sigmaRaw, rgbRaw, z, delta, background, activation, threshold,
  });
  const domain = (activation: DensityActivation) => (activation === 'exp' ? (r: nd.Rng) => r.range(-1, 3) : (r: nd.Rng) => (r.uniform() < 0.3 ? -1 : 1) * (0.2 + 8 * r.uniform()));

  for (const activation of ['exp', 'relu'] as const) {
    it(`render (${activation}): GPU vs reference vs finite differences`, async () => {
      await checkOp({
        name: 'volumeRenderRagged',
        inputs: [{ shape: [N], domain: domain(activation) }, { shape: [N, 3] }],
        gpu: (sigmaRaw, rgbRaw) => {
          const d = gpuData();
          return nd.volumeRenderRagged(sigmaRaw, rgbRaw, d.runs, d.z, d.delta, d.background, { activation });
        },
        ref: (sigmaRaw, rgbRaw) => compositeRaggedReference(refInputs(sigmaRaw, rgbRaw, activation, 0)),
        refBackward: ([sigmaRaw, rgbRaw], dL_dout) => {
          const g = compositeRaggedBackwardReference(refInputs(sigmaRaw, rgbRaw, activation, 0), dL_dout);
          return [g.dL_dsigmaRaw, g.dL_drgbRaw];
        },
        rtol: 2e-5,
        atol: 2e-6,
        gradRtol: 2e-4,
        gradAtol: 2e-5,
      });
    });

    it(`fused loss (${activation}): GPU vs reference vs finite differences`, async () => {
      await checkOp({
        name: 'volumeRenderRaggedLoss',
        inputs: [{ shape: [N], domain: domain(activation) }, { shape: [N, 3] }],
        gpu: (sigmaRaw, rgbRaw) => {
          const d = gpuData();
          return nd.volumeRenderRaggedLoss(sigmaRaw, rgbRaw, d.runs, d.z, d.delta, d.background, nd.tensor(target, [rays, 3]), { activation });
        },
        ref: (sigmaRaw, rgbRaw) => compositeRaggedLossReference(refInputs(sigmaRaw, rgbRaw, activation, 0), target),
        refBackward: ([sigmaRaw, rgbRaw], dL_dloss) => {
          const inp = refInputs(sigmaRaw, rgbRaw, activation, 0);
          const g = compositeRaggedBackwardReference(inp, raggedLossCotangent(inp, target, dL_dloss));
          return [g.dL_dsigmaRaw, g.dL_drgbRaw];
        },
        rtol: 5e-5,
        atol: 5e-6,
        gradRtol: 5e-4,
        gradAtol: 5e-5,
      });
    });
  }

  it('empty rays give the background; padding and terminated samples get zero gradient', async () => {
    const sigma = Float64Array.from({ length: N }, () => Math.fround(3 + 2 * rng.uniform())); // exp: σ ≈ 20…150
    const rgb = Float64Array.from({ length: N * 3 }, () => Math.fround(rng.normal()));
    for (const threshold of [0, 1e-2]) {
      const s = nd.keep(nd.tensor(sigma, [N]));
      const c = nd.keep(nd.tensor(rgb, [N, 3]));
      const { out, dSigma, dRgb } = nd.scope(() => {
        s.requiresGrad = true;
        c.requiresGrad = true;
        const d = gpuData();
        const o = nd.volumeRenderRagged(s, c, d.runs, d.z, d.delta, d.background, { activation: 'exp', transmittanceThreshold: threshold });
        nd.backward(nd.sum(o));
        return { out: nd.keep(o), dSigma: s.grad!, dRgb: c.grad! };
      });
      const inp = refInputs(sigma, rgb, 'exp', threshold);
      const values = await out.data();
      expectClose(values, compositeRaggedReference(inp), 2e-5, 2e-6, `forward, threshold ${threshold}`);
      for (const empty of [0, 5]) {
        expectClose(values.subarray(empty * 5, empty * 5 + 3), background.subarray(empty * 3, empty * 3 + 3), 1e-6, 1e-7, `empty ray ${empty}`);
        expect(values[empty * 5 + 4]).toBe(0);
      }
      const dOut = new Float64Array(rays * 5).fill(1);
      const g = compositeRaggedBackwardReference(inp, dOut);
      const gs = await dSigma.data();
      expectClose(gs, g.dL_dsigmaRaw, 5e-4, 5e-5, `dσ, threshold ${threshold}`);
      expectClose(await dRgb.data(), g.dL_drgbRaw, 5e-4, 5e-5, `dc, threshold ${threshold}`);
      for (let s = 17; s < N; s++) expect(gs[s], `padding sample ${s}`).toBe(0);
      if (threshold > 0) {
        // Densities this high make rays opaque within a few samples: the rest are skipped, gradient exactly 0.
        const skipped = g.dL_dsigmaRaw.reduce((n, v, s) => n + (v === 0 && s < 17 ? 1 : 0), 0);
        expect(skipped).toBeGreaterThan(3);
        const exact = compositeRaggedReference(refInputs(sigma, rgb, 'exp', 0));
        for (let i = 0; i < values.length; i++) if (i % 5 < 3) expect(Math.abs(values[i] - exact[i])).toBeLessThan(threshold * 1.01);
      }
      for (const t of [out, s, c]) t.dispose();
    }
  });

  it('the walked samples are those compositing reads; colour on them alone renders the same image', async () => {
    const sigma = Float64Array.from({ length: N }, () => Math.fround(rng.range(-1, 4))); // some rays terminate early
    const rgb = Float64Array.from({ length: N * 3 }, () => Math.fround(rng.normal()));
    for (const threshold of [0, 1e-2, 0.5]) {
      const made: nd.Tensor[] = [];
      const t = <T extends nd.Tensor>(x: T): T => (made.push(x), x);
      const d = gpuData();
      made.push(...Object.values(d));
      const s = t(nd.tensor(sigma, [N]));
      // One round from the initial state lists what one compositing walk reads.
      const walked = nd.roundWalkedSamples(s, d.runs, d.delta, t(nd.initialRoundState(rays)), t(nd.tensor(new Uint32Array(rays).fill(DONE), [rays], 'u32')), { activation: 'exp', transmittanceThreshold: threshold });
      made.push(walked.index, walked.count, walked.nextStart);
      const [count] = await walked.count.data();
      const { walked: expected } = compositeRoundReference({ rays, runs, sigmaRaw: sigma, rgbRaw: rgb, z, delta, endStep: new Array(rays).fill(DONE), activation: 'exp', threshold }, initialRoundState(rays));
      expect(count, `count, threshold ${threshold}`).toBe(expected.length);
      const listed = [...(await walked.index.data()).subarray(0, count)].sort((a, b) => a - b);
      expect(listed, `walked samples, threshold ${threshold}`).toEqual([...expected].sort((a, b) => a - b));
      if (threshold === 0.5) expect(count).toBeLessThan(17); // early termination really skipped samples
      // Colour rows at the walked samples only, NaN at every other row: a read of any of those would show.
      const index = t(nd.narrow(walked.index, 0, 0, count));
      const picked = t(nd.indexSelect(t(nd.tensor(rgb, [N, 3])), 0, index));
      const unread = t(nd.tensor(Float64Array.from({ length: N * 3 }, (_, i) => (listed.includes(Math.floor(i / 3)) ? 0 : NaN)), [N, 3]));
      const colour = t(nd.add(t(nd.indexAdd([N, 3], 0, index, picked)), unread));
      const out = t(nd.volumeRenderRagged(s, colour, d.runs, d.z, d.delta, d.background, { activation: 'exp', transmittanceThreshold: threshold }));
      expectClose(await out.data(), compositeRaggedReference(refInputs(sigma, rgb, 'exp', threshold)), 2e-5, 2e-6, `render from walked colour, threshold ${threshold}`);
      for (const x of made) x.dispose();
    }
  });

  it('compositing in rounds continues one walk: GPU vs reference, and the rounds add up to the one-walk image', async () => {
    const sigma = Float64Array.from({ length: N }, () => Math.fround(rng.range(-1, 4)));
    const rgb = Float64Array.from({ length: N * 3 }, () => Math.fround(rng.normal()));
    // Each ray's run cut into rounds of 2, then 3, then the rest; each round's samples packed in ray order.
    const cuts = [2, 3, Infinity];
    const rounds = cuts.map(() => ({ runs: [] as number[], source: [] as number[], endStep: [] as number[] }));
    for (let r = 0; r < rays; r++) {
      const [offset, count] = [runs[2 * r], runs[2 * r + 1]];
      let taken = 0;
      cuts.forEach((k, q) => {
        const n = Math.min(k, count - taken);
        rounds[q].runs.push(rounds[q].source.length, n);
        for (let i = 0; i < n; i++) rounds[q].source.push(offset + taken + i);
        taken += n;
        // The march's end step: a lattice index to resume from while samples remain, DONE after the last.
        rounds[q].endStep.push(taken < count ? 1000 + taken : DONE);
      });
    }
    const pick = (values: ArrayLike<number>, source: number[], width = 1): Float64Array =>
      Float64Array.from({ length: Math.max(1, source.length) * width }, (_, i) => (i < source.length * width ? values[source[Math.floor(i / width)] * width + (i % width)] : 0));
    for (const threshold of [0, 1e-2, 0.5]) {
      const made: nd.Tensor[] = [];
      const t = <T extends nd.Tensor>(x: T): T => (made.push(x), x);
      const state = t(nd.initialRoundState(rays));
      const stateRef = initialRoundState(rays);
      const bg = t(nd.tensor(background, [rays, 3]));
      let out: nd.Tensor | null = null;
      let stoppedEarly = 0;
      for (const [q, round] of rounds.entries()) {
        const inputs = { rays, runs: round.runs, sigmaRaw: pick(sigma, round.source), rgbRaw: pick(rgb, round.source, 3), z: pick(z, round.source), delta: pick(delta, round.source), endStep: round.endStep, activation: 'exp' as const, threshold };
        const M = inputs.z.length;
        const g = { runs: t(nd.tensor(round.runs, [rays, 2], 'u32')), sigma: t(nd.tensor(inputs.sigmaRaw, [M])), rgb: t(nd.tensor(inputs.rgbRaw, [M, 3])), z: t(nd.tensor(inputs.z, [M])), delta: t(nd.tensor(inputs.delta, [M])), end: t(nd.tensor(round.endStep, [rays], 'u32')) };
        const walked = nd.roundWalkedSamples(g.sigma, g.runs, g.delta, state, g.end, { activation: 'exp', transmittanceThreshold: threshold });
        made.push(walked.index, walked.count, walked.nextStart);
        const expected = compositeRoundReference(inputs, stateRef);
        stoppedEarly += expected.nextStart.filter((next, r) => next === DONE && round.endStep[r] !== DONE).length;
        const [count] = await walked.count.data();
        expect([...(await walked.index.data()).subarray(0, count)].sort((a, b) => a - b), `round ${q} walked, threshold ${threshold}`).toEqual(expected.walked);
        expect([...(await walked.nextStart.data())], `round ${q} next start, threshold ${threshold}`).toEqual(expected.nextStart);
        const last = q === rounds.length - 1;
        out = nd.accumulateRound(g.sigma, g.rgb, g.runs, g.z, g.delta, state, bg, last, { activation: 'exp', transmittanceThreshold: threshold });
        expectClose(await state.data(), stateRef, 2e-5, 2e-6, `round ${q} state, threshold ${threshold}`);
        expect(out === null).toBe(!last);
        if (out) made.push(out);
      }
      // The rounds' image is the one-walk image over all samples (and the references agree with each other).
      const oneWalk = compositeRaggedReference(refInputs(sigma, rgb, 'exp', threshold));
      expectClose(finishRoundsReference(stateRef, background), oneWalk, 1e-12, 1e-12, `reference rounds vs one walk, threshold ${threshold}`);
      expectClose(await out!.data(), oneWalk, 2e-5, 2e-6, `GPU rounds vs one walk, threshold ${threshold}`);
      // At 0.5 some rays turn opaque before their last round and leave the rounds.
      if (threshold === 0.5) expect(stoppedEarly).toBeGreaterThan(0);
      if (threshold === 0) expect(stoppedEarly).toBe(0);
      for (const x of made) x.dispose();
    }
  });

  it('rejects mismatched shapes with a clear error', () => {
    nd.scope(() => {
      const d = gpuData();
      expect(() => nd.volumeRenderRagged(nd.zeros([N]), nd.zeros([N, 2]), d.runs, d.z, d.delta, d.background)).toThrow(/volumeRenderRagged: rgbRaw must be \[N, 3\]/);
      expect(() => nd.volumeRenderRagged(nd.zeros([N]), nd.zeros([N, 3]), nd.zeros([rays, 2]), d.z, d.delta, d.background)).toThrow(/runs must be u32/);
    });
  });
});

describe('fitting with the occupancy sampler', () => {
  it('a fit checkpointed and restored (fields, Adam, occupancy grid, sampler state) continues bit-identically', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { HashField } = await import('../src/models/nerf/field.ts');
    const { NerfFitter, PosedImages } = await import('../src/models/nerf/fit.ts');
    const { BOUND, FAR, NEAR, makeViews, renderGroundTruth } = await import('../src/models/nerf/scene.ts');
    const train = makeViews(3, 8, 5);
    const data = new PosedImages(train, train.map((v) => renderGroundTruth(v, 48)));
    const build = (seed: number) => {
      const field = new HashField({ grid: { levels: 2, features: 2, log2TableSize: 10, baseResolution: 8, maxResolution: 16, atomics: 'fixed-point' }, width: 16, bound: BOUND, rng: new nd.Rng(seed) });
      const fitter = new NerfFitter(field, null, data, {
        raysPerStep: 32, coarseSamples: 16, fineSamples: 0, near: NEAR, far: FAR, activation: 'exp', background: [1, 1, 1], seed,
        sampler: 'occupancy', occupancy: { bound: BOUND, resolution: 8, stepsPerDiagonal: 24, maxSamples: 24, updateEvery: 2, warmupSteps: 4, initialSamplesPerRay: 24 },
      });
      const optimizer = new nd.Adam(field.parameters(), { lr: 1e-2, betas: [0.9, 0.99], eps: 1e-15 });
      const parts = (): nd.CheckpointParts => ({ model: field, optimizer, tensors: fitter.checkpointTensors() });
      return { field, fitter, optimizer, parts };
    };
    const losses = async (run: ReturnType<typeof build>, from: number, to: number): Promise<number[]> => {
      const out: number[] = [];
      for (let step = from; step <= to; step++) {
        const loss = run.fitter.trainStep(step, run.optimizer);
        out.push(await loss.item());
        loss.dispose();
        if (step % 3 === 0) await run.fitter.adaptCapacity();
      }
      return out;
    };
    const dir = mkdtempSync(join(tmpdir(), 'nerfad-fit-resume-'));
    const original = build(1);
    const restored = build(2); // other weights and another sampler seed: all must come from the checkpoint
    try {
      await losses(original, 1, 7);
      await nd.saveCheckpoint(join(dir, 'fit.safetensors'), { ...original.parts(), step: 7 });
      const state = JSON.parse(JSON.stringify(original.fitter.checkpointData()));
      await nd.loadCheckpoint(join(dir, 'fit.safetensors'), restored.parts());
      restored.fitter.restoreData(state);
      // Steps 8–12 cross an occupancy update (every 2 steps, rotating quarters) and a capacity change.
      expect(await losses(restored, 8, 12)).toEqual(await losses(original, 8, 12));
      expect(() => restored.fitter.restoreData({ rng: [0, 0, 0, 0] })).toThrow(/Rng.setState/);
      expect(() => restored.fitter.restoreData({ rng: [1, 2, 3, 4] })).toThrow(/no occupancy sampler state/);
    } finally {
      for (const run of [original, restored]) {
        run.fitter.dispose();
        run.optimizer.dispose();
        run.field.dispose();
      }
      data.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('trains a hash field with no readback per step; held-out renders improve', async () => {
    const { HashField } = await import('../src/models/nerf/field.ts');
    const { NerfFitter, PosedImages, psnr } = await import('../src/models/nerf/fit.ts');
    const { BOUND, FAR, NEAR, makeViews, renderGroundTruth } = await import('../src/models/nerf/scene.ts');
    const size = 12;
    const train = makeViews(6, size, 21);
    const images = train.map((v) => renderGroundTruth(v, 96));
    const field = new HashField({
      grid: { levels: 4, features: 2, log2TableSize: 12, baseResolution: 8, maxResolution: 64, atomics: 'fixed-point' },
      width: 16,
      bound: BOUND,
      rng: new nd.Rng(4),
    });
    const data = new PosedImages(train, images);
    const fitter = new NerfFitter(field, null, data, {
      raysPerStep: 128, coarseSamples: 24, fineSamples: 0, near: NEAR, far: FAR, activation: 'exp', background: [1, 1, 1], seed: 8,
      sampler: 'occupancy',
      occupancy: { bound: BOUND, resolution: 16, stepsPerDiagonal: 48, maxSamples: 48, updateEvery: 4, warmupSteps: 16, decay: 0.8, initialSamplesPerRay: 48 },
    });
    const optimizer = new nd.Adam(field.parameters(), { lr: 2e-2, betas: [0.9, 0.99], eps: 1e-15 });
    const before = psnr(await fitter.renderView(train[0]), images[0]);
    const losses: number[] = [];
    const readbacks = runtime().stats.readbacks;
    const queued: nd.Tensor[] = [];
    for (let step = 1; step <= 8; step++) queued.push(fitter.trainStep(step, optimizer));
    expect(runtime().stats.readbacks, 'training steps read nothing back').toBe(readbacks);
    for (const loss of queued) {
      losses.push(await loss.item());
      loss.dispose();
    }
    let samples = { requested: 0, capacity: 0 };
    for (let step = 9; step <= 80; step++) {
      const loss = fitter.trainStep(step, optimizer);
      if (step > 75) losses.push(await loss.item());
      if (step % 20 === 0) samples = (await fitter.adaptCapacity())!;
      loss.dispose();
    }
    const after = psnr(await fitter.renderView(train[0]), images[0]);
    const early = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
    const late = losses.slice(-5).reduce((a, b) => a + b) / 5;
    expect(late).toBeLessThan(early * 0.6);
    expect(after).toBeGreaterThan(before + 3);
    // The grid holds σ·dt of the field (the white background leaves empty space unconstrained this early, so it
    // need not prune yet); the packed arrays track the observed count.
    const grid = await fitter.occupancy!.grid.grid.data();
    expect(grid.every((v) => Number.isFinite(v) && v > 0)).toBe(true);
    expect(samples.requested).toBeGreaterThan(0);
    expect(samples.requested / 128).toBeLessThanOrEqual(48);
    expect(samples.capacity).toBeGreaterThanOrEqual(samples.requested);

    // Rendering colours only the samples compositing reads (HashField splits density and colour): the same image
    // as the field's whole forward on every sample, which a wrapper without the split falls back to.
    const whole = { forward: (points: nd.Tensor, dirs: nd.Tensor) => field.forward(points, dirs) } as unknown as typeof field;
    const plain = new NerfFitter(whole, null, data, fitter.options);
    plain.occupancy!.grid.dispose(); // it marches through the trained grid instead of its own
    (plain as unknown as { occupancy: unknown }).occupancy = fitter.occupancy;
    // (The whole forward reads the f32 table: so does this comparison.)
    fitter.options.renderTable = 'f32';
    const [split, full] = [await fitter.renderView(train[1]), await plain.renderView(train[1])];
    expectClose(split, full, 1e-5, 1e-6, 'render with colour on walked samples only vs the whole forward');
    // The default f16 copy of the table: within f16 rounding of the f32 render, packed once for any number of
    // frames and again after the table changes.
    fitter.options.renderTable = undefined;
    const dispatch = vi.spyOn(runtime(), 'dispatch');
    const packs = () => dispatch.mock.calls.filter(([kernel]) => kernel.name === 'hashgrid_pack_f16').length;
    const halfImage = await fitter.renderView(train[1]);
    await fitter.renderView(train[2]);
    expect(packs(), 'the copy made for the frame after training is still current').toBe(0);
    const rewriteTable = async () => runtime().upload(field.table.view, await field.table.data()); // same values
    await rewriteTable();
    await fitter.renderView(train[1]);
    await fitter.renderView(train[2]);
    expect(packs()).toBe(1);
    expectClose(halfImage, split, 2e-3, 0, 'render with the f16 table vs the f32 table');
    expect(Array.from(halfImage)).not.toEqual(Array.from(split)); // it is read, not the f32 table
    await rewriteTable();
    await fitter.renderView(train[1]);
    expect(packs()).toBe(2);
    dispatch.mockRestore();
    fitter.options.renderTable = 'f32'; // the frames below are compared with `split`
    // Rendering in rounds (rays leave once opaque) gives the image of one march over the whole budget, bit for bit,
    // and evaluates no more samples.
    const occupancyOptions = fitter.occupancy!.options;
    const schedule = occupancyOptions.renderRoundSamples;
    const renders: { image: Float32Array; stats: typeof fitter.lastRenderStats }[] = [];
    for (const rounds of [[], [2, 3], schedule]) {
      occupancyOptions.renderRoundSamples = rounds;
      renders.push({ image: await fitter.renderView(train[1]), stats: fitter.lastRenderStats });
    }
    occupancyOptions.renderRoundSamples = schedule;
    expect(renders[0].stats!.rounds).toBe(1);
    expect(renders[1].stats!.rounds).toBeGreaterThan(1);
    for (const r of renders.slice(1)) {
      expect(Array.from(r.image)).toEqual(Array.from(renders[0].image));
      expect(r.stats!.densitySamples).toBeLessThanOrEqual(renders[0].stats!.densitySamples);
    }
    expect(Array.from(split)).toEqual(Array.from(renders[2].image));
    // Rendering gives every buffer back: another frame allocates nothing new.
    const bytesBefore = runtime().pool.getStats().bytesAllocated;
    await fitter.renderView(train[1]);
    expect(runtime().pool.getStats().bytesAllocated).toBe(bytesBefore);
    // An all-empty grid marches no sample at all: the frame is the background.
    const bits = await fitter.occupancy!.grid.bitfield.data();
    runtime().upload(fitter.occupancy!.grid.bitfield.view, new Uint32Array(bits.length));
    const empty = await fitter.renderView(train[1]);
    expect(fitter.lastRenderStats).toEqual({ rounds: 1, densitySamples: 0, colourSamples: 0 });
    expect(empty.every((v) => v === 1)).toBe(true);
    runtime().upload(fitter.occupancy!.grid.bitfield.view, bits);
    // An optimizer step writes the table: the next f16 frame packs a new copy.
    fitter.options.renderTable = 'f16';
    await fitter.renderView(train[1]);
    const packCalls = vi.spyOn(runtime(), 'dispatch');
    fitter.trainStep(81, optimizer).dispose();
    await fitter.renderView(train[1]);
    expect(packCalls.mock.calls.filter(([kernel]) => kernel.name === 'hashgrid_pack_f16').length).toBe(1);
    packCalls.mockRestore();
    fitter.dispose();
    data.dispose();
    optimizer.dispose();
    field.dispose();
  }, 120_000);
});
