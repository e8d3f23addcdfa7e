import { describe, expect, it } from 'vitest';
import * as nd from '../src/index.ts';
import { compositeBackwardReference, compositeReference, type CompositeInputs, type DensityActivation } from '../src/kernels/render/composite.ref.ts';
import { checkOp, expectClose } from './helpers/check-op.ts';

/** Seeded, f32-rounded ray data: increasing depths, direction norms, background pixels. */
function rayData(rays: number, samples: number, seed: number) {
  const rng = new nd.Rng(seed);
  const z = new Float64Array(rays * samples);
  const dirNorm = new Float64Array(rays);
  const background = new Float64Array(rays * 3);
  for (let r = 0; r < rays; r++) {
    let depth = 0.3 + 0.05 * rng.uniform();
    for (let i = 0; i < samples; i++) {
      z[r * samples + i] = Math.fround(depth);
      depth += 0.6 / samples * (0.5 + rng.uniform());
    }
    dirNorm[r] = Math.fround(1 + 0.3 * rng.uniform());
    for (let c = 0; c < 3; c++) background[r * 3 + c] = Math.fround(rng.uniform());
  }
  return { z, dirNorm, background };
}

// Densities away from relu's kink at 0, large enough that rays become opaque part-way.
const densityDomain = (rng: nd.Rng): number => (rng.uniform() < 0.4 ? -1 : 1) * (0.2 + 8 * rng.uniform());

describe('volume rendering', () => {
  const cases: { rays: number; samples: number; activation: DensityActivation; background: boolean }[] = [
    { rays: 1, samples: 1, activation: 'relu', background: false },
    { rays: 1, samples: 1, activation: 'relu', background: true },
    { rays: 7, samples: 13, activation: 'relu', background: true },
    { rays: 70, samples: 5, activation: 'relu', background: false },
    { rays: 9, samples: 16, activation: 'softplus', background: true },
    { rays: 5, samples: 8, activation: 'exp', background: false },
  ];
  for (const c of cases) {
    const { rays, samples } = c;
    const data = rayData(rays, samples, rays * 31 + samples);
    const refInputs = (sigmaRaw: Float64Array, rgbRaw: Float64Array): CompositeInputs => ({
      rays,
      samples,
      sigmaRaw,
      rgbRaw,
      z: data.z,
      dirNorm: data.dirNorm,
      background: c.background ? data.background : null,
      activation: c.activation,
    });
    const gpuData = () => ({
      z: nd.tensor(data.z, [rays, samples]),
      dirNorm: nd.tensor(data.dirNorm, [rays]),
      background: c.background ? nd.tensor(data.background, [rays, 3]) : undefined,
    });
    const sigmaDomain = c.activation === 'exp' ? (rng: nd.Rng) => rng.range(-2, 2.5) : densityDomain;

    it(`render ${JSON.stringify(c)}`, async () => {
      await checkOp({
        name: 'volumeRender',
        inputs: [{ shape: [rays, samples], domain: sigmaDomain }, { shape: [rays, samples, 3] }],
        gpu: (sigmaRaw, rgbRaw) => {
          const d = gpuData();
          return nd.volumeRender(sigmaRaw, rgbRaw, d.z, d.dirNorm, { activation: c.activation, background: d.background });
        },
        ref: (sigmaRaw, rgbRaw) => compositeReference(refInputs(sigmaRaw, rgbRaw)),
        refBackward: ([sigmaRaw, rgbRaw], dL_dout) => {
          const g = compositeBackwardReference(refInputs(sigmaRaw, rgbRaw), dL_dout);
          return [g.dL_dsigmaRaw, g.dL_drgbRaw];
        },
        rtol: 2e-5,
        atol: 2e-6,
        gradRtol: 2e-4,
        gradAtol: 2e-5,
      });
    });

    it(`fused loss ${JSON.stringify(c)}`, async () => {
      const rng = new nd.Rng(99);
      const target = Float64Array.from({ length: rays * 3 }, () => Math.fround(rng.uniform()));
      const lossRef = (sigmaRaw: Float64Array, rgbRaw: Float64Array): Float64Array => {
        const out = compositeReference(refInputs(sigmaRaw, rgbRaw));
        return Float64Array.from({ length: rays }, (_, r) => {
          let s = 0;
          for (let ch = 0; ch < 3; ch++) s += (out[r * 5 + ch] - target[r * 3 + ch]) ** 2;
          return s;
        });
      };
      await checkOp({
        name: 'volumeRenderLoss',
        inputs: [{ shape: [rays, samples], domain: sigmaDomain }, { shape: [rays, samples, 3] }],
        gpu: (sigmaRaw, rgbRaw) => {
          const d = gpuData();
          return nd.volumeRenderLoss(sigmaRaw, rgbRaw, d.z, d.dirNorm, nd.tensor(target, [rays, 3]), {
            activation: c.activation,
            background: d.background,
          });
        },
        ref: lossRef,
        refBackward: ([sigmaRaw, rgbRaw], dL_dloss) => {
          // Chain rule through the reference renderer: dL/dout = (2 (C − target) dL/dloss, 0, 0).
          const out = compositeReference(refInputs(sigmaRaw, rgbRaw));
          const dL_dout = new Float64Array(rays * 5);
          for (let r = 0; r < rays; r++) for (let ch = 0; ch < 3; ch++) dL_dout[r * 5 + ch] = 2 * (out[r * 5 + ch] - target[r * 3 + ch]) * dL_dloss[r];
          const g = compositeBackwardReference(refInputs(sigmaRaw, rgbRaw), dL_dout);
          return [g.dL_dsigmaRaw, g.dL_drgbRaw];
        },
        rtol: 5e-5,
        atol: 5e-6,
        gradRtol: 5e-4,
        gradAtol: 5e-5,
      });
    });
  }

  it('the infinite last interval hands leftover transmittance to the background', async () => {
    // Transparent samples: everything lands on the background pixel, acc = 1.
    const rays = 3;
    const samples = 4;
    const data = rayData(rays, samples, 5);
    const out = nd.scope(() =>
      nd.volumeRender(nd.full([rays, samples], -5), nd.zeros([rays, samples, 3]), nd.tensor(data.z, [rays, samples]), nd.tensor(data.dirNorm, [rays]), {
        background: nd.tensor(data.background, [rays, 3]),
      }),
    );
    const values = await out.data();
    for (let r = 0; r < rays; r++) {
      expectClose([values[r * 5], values[r * 5 + 1], values[r * 5 + 2]], [...data.background.slice(r * 3, r * 3 + 3)], 1e-5, 1e-5, 'background colour');
      expect(values[r * 5 + 4]).toBeCloseTo(1, 5);
    }
    out.dispose();
  });

  it('early termination changes colour by less than the threshold and stops the gradient at the same sample', async () => {
    const rays = 16;
    const samples = 32;
    const data = rayData(rays, samples, 8);
    const rng = new nd.Rng(4);
    const sigma = Float64Array.from({ length: rays * samples }, () => Math.fround(5 + 20 * rng.uniform()));
    const rgb = Float64Array.from({ length: rays * samples * 3 }, () => Math.fround(rng.normal()));
    const render = (threshold: number) =>
      nd.scope(() => nd.volumeRender(nd.tensor(sigma, [rays, samples]), nd.tensor(rgb, [rays, samples, 3]), nd.tensor(data.z, [rays, samples]), nd.tensor(data.dirNorm, [rays]), { transmittanceThreshold: threshold }));
    const exact = render(0);
    const early = render(1e-3);
    expectClose(await early.data(), await exact.data(), 0, 2e-3, 'terminated vs exact');
    exact.dispose();
    early.dispose();
  });

  it('rejects mismatched shapes by name', () => {
    nd.scope(() => {
      expect(() => nd.volumeRender(nd.zeros([2, 3]), nd.zeros([2, 3, 3]), nd.zeros([2, 4]), nd.zeros([2]))).toThrow(/volumeRender: z must be \[2, 3\], got \[2, 4\]/);
    });
  });
});
