import { describe, expect, it } from 'vitest';
import * as nd from '../src/index.ts';
import { Adam } from '../src/optim/index.ts';
import { HashField, NerfMLP } from '../src/models/nerf/field.ts';
import { NerfFitter, PosedImages, psnr, samplePoints } from '../src/models/nerf/fit.ts';
import { BOUND, FAR, NEAR, makeViews, renderGroundTruth, sceneField } from '../src/models/nerf/scene.ts';

describe('procedural scene', () => {
  it('has the solids where it says, and a white background around them', () => {
    expect(sceneField([0, 0, 0]).sigma).toBeGreaterThan(190); // inside the sphere
    expect(sceneField([0.5, 0.5, 0.5]).sigma).toBeLessThan(1e-6); // empty space
    const [view] = makeViews(1, 16, 3);
    const image = renderGroundTruth(view, 128);
    // The corner pixel misses everything: white. The centre pixel looks at the sphere: not white.
    expect([...image.slice(0, 3)].every((v) => v > 0.999)).toBe(true);
    const centre = (8 * 16 + 8) * 3;
    expect(Math.min(...image.slice(centre, centre + 3))).toBeLessThan(0.9);
  });
});

describe('fitting a radiance field', () => {
  it('samples points along rays at o + z·d with unit view directions', async () => {
    const rays = { origin: nd.tensor([0, 0, 1, 1, 2, 3], [2, 3]), direction: nd.tensor([0, 0, -2, 3, 0, 4], [2, 3]), dirNorm: nd.tensor([2, 5], [2]) };
    const { points, dirs } = nd.scope(() => samplePoints(rays, nd.tensor([1, 2, 0.5, 1], [2, 2])));
    expect([...(await points.data())]).toEqual([0, 0, -1, 0, 0, -3, 2.5, 2, 5, 4, 2, 7]);
    expect([...(await dirs.data())].map((v) => Math.round(v * 1000) / 1000)).toEqual([0, 0, -1, 0, 0, -1, 0.6, 0, 0.8, 0.6, 0, 0.8]);
    for (const t of [points, dirs, rays.origin, rays.direction, rays.dirNorm]) t.dispose();
  });

  for (const backbone of ['hash', 'mlp'] as const) {
    it(`${backbone} backbone: the training loss falls and held-out renders improve (tiny scene, few steps)`, async () => {
      const size = 12;
      const train = makeViews(6, size, 21);
      const images = train.map((v) => renderGroundTruth(v, 96));
      const rng = new nd.Rng(4);
      const field =
        backbone === 'hash'
          ? new HashField({ grid: { levels: 4, features: 2, log2TableSize: 12, baseResolution: 8, maxResolution: 64, atomics: 'fixed-point' }, width: 16, bound: BOUND, rng })
          : new NerfMLP({ depth: 2, width: 32, skip: 0, positionFrequencies: 4, directionFrequencies: 2, bound: BOUND, rng });
      const data = new PosedImages(train, images);
      const fitter = new NerfFitter(field, null, data, {
        raysPerStep: 128,
        coarseSamples: 24,
        fineSamples: 0,
        near: NEAR,
        far: FAR,
        activation: backbone === 'hash' ? 'exp' : 'relu',
        background: [1, 1, 1],
        seed: 8,
      });
      const optimizer = new Adam(field.parameters(), { lr: backbone === 'hash' ? 2e-2 : 5e-3, betas: [0.9, 0.99], eps: 1e-15 });
      const before = psnr(await fitter.renderView(train[0]), images[0]);
      const losses: number[] = [];
      for (let step = 1; step <= 60; step++) {
        const loss = fitter.trainStep(step, optimizer);
        if (step <= 5 || step > 55) losses.push(await loss.item());
        loss.dispose();
      }
      const after = psnr(await fitter.renderView(train[0]), images[0]);
      const early = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
      const late = losses.slice(5).reduce((a, b) => a + b) / 5;
      expect(late).toBeLessThan(early * 0.6);
      expect(after).toBeGreaterThan(before + 3);
      fitter.dispose();
      data.dispose();
      optimizer.dispose();
      field.dispose();
    });
  }

  it('refuses a renderTable that is neither f32 nor f16', () => {
    const [view] = makeViews(1, 4, 1);
    const data = new PosedImages([view], [new Float64Array(4 * 4 * 3)]);
    const field = new NerfMLP({ depth: 1, width: 8, skip: 0, positionFrequencies: 1, directionFrequencies: 1, bound: BOUND, rng: new nd.Rng(1) });
    const options = { raysPerStep: 4, coarseSamples: 4, fineSamples: 0, near: NEAR, far: FAR, activation: 'relu' as const, background: [1, 1, 1] as [number, number, number], seed: 1 };
    expect(() => new NerfFitter(field, null, data, { ...options, renderTable: 'f64' as 'f32' })).toThrow(/renderTable must be 'f32' or 'f16', got "f64"/);
    data.dispose();
    field.dispose();
  });

  it('experiments/fit-scene.ts runs end to end (tiny): metrics with both table precisions, held-out PNG, checkpoint', async () => {
    const { mkdtempSync, readFileSync, existsSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { runExperiment } = await import('../src/cli/run.ts');
    const fitScene = (await import('../experiments/fit-scene.ts')).default;
    const out = join(mkdtempSync(join(tmpdir(), 'nerfad-fit-scene-')), 'run');
    const set = ['minutes=0.05', 'size=16', 'trainViews=4', 'testViews=2', 'renderSize=16', 'groundTruthSamples=64'];
    const result = await runExperiment(fitScene, { out, variant: 'quick', set, experimentFile: 'experiments/fit-scene.ts', write: () => {} });
    expect(result.status).toBe('completed');
    const summary = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')).summary;
    expect(summary.backbone).toBe('hash');
    expect(summary.render_table).toBe('f16');
    expect(Number.isFinite(summary.heldout_psnr)).toBe(true);
    expect(Math.abs(summary.heldout_psnr - summary.heldout_psnr_f32_table)).toBeLessThan(0.05);
    expect(summary.render_ms_per_frame_16).toBeGreaterThan(0);
    expect(summary.render_ms_per_frame_16_f32_table).toBeGreaterThan(0);
    expect(summary.steps).toBeGreaterThan(0);
    for (const file of ['heldout.png', 'psnr-vs-time.json', 'checkpoint']) expect(existsSync(join(out, file)), file).toBe(true);
    rmSync(join(out, '..'), { recursive: true, force: true });
  }, 120_000);
});
