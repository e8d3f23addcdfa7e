import { describe, expect, it } from 'vitest';
import * as nd from '../src/index.ts';
import { frequencyEncodeBackwardReference, frequencyEncodeReference } from '../src/kernels/encoding/frequency.ts';
import { shEncodeReference } from '../src/kernels/encoding/spherical-harmonics.ts';
import { generateRaysReference } from '../src/kernels/render/rays.ts';
import { importanceSamplesReference, stratifiedSamplesReference } from '../src/kernels/render/sampling.ts';
import { compositeReference } from '../src/kernels/render/composite.ref.ts';
import { checkOp, expectClose } from './helpers/check-op.ts';

describe('frequency encoding', () => {
  for (const [points, dims, frequencies] of [[1, 3, 10], [67, 3, 4], [5, 2, 6], [3, 1, 0]]) {
    it(`${points}×${dims}, ${frequencies} frequencies`, async () => {
      await checkOp({
        name: 'frequencyEncode',
        inputs: [{ shape: [points, dims], domain: (r) => r.range(-1, 1) }],
        gpu: (x) => nd.frequencyEncode(x, frequencies),
        ref: (x) => frequencyEncodeReference(x, dims, frequencies),
        refBackward: ([x], dy) => [frequencyEncodeBackwardReference(x, dims, frequencies, dy)],
        // sin/cos of 2⁹·x in f32: the argument itself carries ~2⁹·6e-8 absolute error.
        rtol: 1e-5,
        atol: 1e-4,
        gradAtol: 2e-3,
        gradRtol: 1e-3,
      });
    });
  }
  it('has the AD-NeRF widths: 63 for positions (10 frequencies), 27 for directions (4)', () => {
    nd.scope(() => {
      expect(nd.frequencyEncode(nd.zeros([2, 3]), 10).shape).toEqual([2, 63]);
      expect(nd.frequencyEncode(nd.zeros([2, 3]), 4).shape).toEqual([2, 27]);
    });
  });
});

describe('spherical harmonics', () => {
  const unit = (rng: nd.Rng): number => rng.range(-1, 1);
  for (const degree of [1, 2, 4]) {
    it(`degree ${degree}`, async () => {
      await checkOp({
        name: 'shEncode',
        inputs: [{ shape: [37, 3], domain: unit }],
        gpu: (d) => nd.shEncode(d, degree),
        ref: (d) => shEncodeReference(d, degree),
        rtol: 1e-5,
        atol: 1e-6,
      });
    });
  }
  it('is orthonormal on the sphere (Monte Carlo, f64 reference)', () => {
    // ∫ Y_j Y_k dΩ = δ_jk: a check of the constants themselves, independent of the kernels.
    const rng = new nd.Rng(5);
    const n = 20000;
    const dirs = new Float64Array(n * 3);
    for (let i = 0; i < n; i++) {
      const v = [rng.normal(), rng.normal(), rng.normal()];
      const len = Math.hypot(...v);
      for (let c = 0; c < 3; c++) dirs[i * 3 + c] = v[c] / len;
    }
    const y = shEncodeReference(dirs, 4);
    for (const [j, k] of [[0, 0], [3, 3], [6, 6], [12, 12], [15, 15], [4, 9], [2, 12]]) {
      let s = 0;
      for (let i = 0; i < n; i++) s += y[i * 16 + j] * y[i * 16 + k];
      expect(Math.abs((4 * Math.PI * s) / n - (j === k ? 1 : 0))).toBeLessThan(0.06);
    }
  });
});

describe('rays and sampling', () => {
  it('generates rays in the AD-NeRF convention', async () => {
    const width = 7;
    const height = 5;
    const k = { fx: 6, fy: 5.5, cx: 3.4, cy: 2.6 };
    // Two camera-to-world matrices: identity and a rotation about y with a translation.
    const a = 0.3;
    const c2w = Float64Array.from([
      1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0,
      Math.cos(a), 0, Math.sin(a), 0.1, 0, 1, 0, -0.2, -Math.sin(a), 0, Math.cos(a), 1.5,
    ].map(Math.fround));
    const pixel = Array.from({ length: width * height }, (_, i) => i);
    const frame = pixel.map((i) => i % 2);
    const expected = generateRaysReference(pixel, frame, c2w, width, k);
    const rays = nd.generateRays(nd.tensor(pixel, [pixel.length], 'u32'), nd.tensor(frame, [frame.length], 'u32'), nd.tensor(c2w, [2, 3, 4]), width, k);
    expectClose(await rays.origin.data(), expected.origin, 1e-6, 1e-6, 'origin');
    expectClose(await rays.direction.data(), expected.direction, 1e-6, 1e-6, 'direction');
    expectClose(await rays.dirNorm.data(), expected.dirNorm, 1e-6, 1e-6, 'dirNorm');
    // The centre pixel of the identity camera looks down −z.
    const centre = generateRaysReference([2 * width + 3], [0], c2w, width, { ...k, cx: 3.5, cy: 2.5 });
    expect([...centre.direction].map((v) => v + 0)).toEqual([0, 0, -1]);
    for (const t of [rays.origin, rays.direction, rays.dirNorm]) t.dispose();
  });

  it('stratified samples: bins of equal width, jittered reproducibly by seed', async () => {
    const near = Float64Array.from([0.3, 0.5, 0.1]);
    const far = Float64Array.from([0.9, 1.5, 0.2]);
    for (const perturb of [false, true]) {
      const z = nd.scope(() => nd.stratifiedSamples(nd.tensor(near), nd.tensor(far), 64, { seed: 11, perturb }));
      const values = await z.data();
      expectClose(values, stratifiedSamplesReference(near, far, 64, 11, perturb), 1e-6, 1e-6, `stratified perturb=${perturb}`);
      for (let r = 0; r < 3; r++) for (let i = 0; i < 64; i++) {
        const lo = near[r] + ((far[r] - near[r]) * i) / 64;
        expect(values[r * 64 + i]).toBeGreaterThanOrEqual(Math.fround(lo) - 1e-6);
        expect(values[r * 64 + i]).toBeLessThanOrEqual(Math.fround(lo + (far[r] - near[r]) / 64) + 1e-6);
      }
      z.dispose();
    }
  });

  it('importance samples follow the coarse weights and merge in order', async () => {
    const rays = 4;
    const coarse = 16;
    const fine = 32;
    const rng = new nd.Rng(2);
    const near = Float64Array.from({ length: rays }, () => 0.3);
    const far = Float64Array.from({ length: rays }, () => 0.9);
    const zCoarse = stratifiedSamplesReference(near, far, coarse, 3, true).map(Math.fround);
    // A density spike in the middle of each ray: weights concentrate there.
    const sigma = Float64Array.from({ length: rays * coarse }, (_, i) => Math.fround((i % coarse === 8 ? 60 : -1) + 0.1 * rng.uniform()));
    const dirNorm = new Float64Array(rays).fill(1);
    for (const perturb of [false, true]) {
      const result = nd.scope(() => {
        const zT = nd.tensor(zCoarse, [rays, coarse]);
        const w = nd.sampleWeights(nd.tensor(sigma, [rays, coarse]), zT, nd.tensor(dirNorm, [rays]));
        return { w, z: nd.importanceSamples(zT, w, fine, { seed: 9, perturb }) };
      });
      const weights = Float64Array.from(await result.w.data());
      // Weights agree with the renderer's reference (acc = Σ w).
      const out = compositeReference({ rays, samples: coarse, sigmaRaw: sigma, rgbRaw: new Float64Array(rays * coarse * 3), z: zCoarse, dirNorm, background: null, activation: 'relu' });
      for (let r = 0; r < rays; r++) expect(weights.slice(r * coarse, (r + 1) * coarse).reduce((a, b) => a + b, 0)).toBeCloseTo(out[r * 5 + 4], 5);
      const z = await result.z.data();
      expectClose(z, importanceSamplesReference(zCoarse, weights, coarse, fine, 9, perturb), 1e-5, 1e-5, `importance perturb=${perturb}`);
      for (let r = 0; r < rays; r++) {
        const row = z.slice(r * (coarse + fine), (r + 1) * (coarse + fine));
        for (let i = 1; i < row.length; i++) expect(row[i]).toBeGreaterThanOrEqual(row[i - 1]);
        // Most fine samples fall in the bins around the spike (coarse samples 7..9).
        const lo = 0.5 * (zCoarse[r * coarse + 6] + zCoarse[r * coarse + 7]);
        const hi = 0.5 * (zCoarse[r * coarse + 9] + zCoarse[r * coarse + 10]);
        const inside = [...row].filter((v) => v >= lo && v <= hi).length - 3;
        expect(inside).toBeGreaterThan(fine * 0.8);
      }
      result.w.dispose();
      result.z.dispose();
    }
  });
});
