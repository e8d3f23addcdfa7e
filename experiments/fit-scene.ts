/**
 * Fit a radiance field to a procedural scene with exact ground truth (src/models/nerf/scene.ts): ~50 posed training
 * views and 10 held-out views rendered by the float64 reference renderer. Proves the NeRF building blocks end to
 * end: rays, sampling, encodings, the field's MLPs, the fused render-and-loss kernel and Adam.
 *
 *   hash — the fast backbone: a 3-D multiresolution hash grid + small MLPs (instant-ngp / RAD-NeRF style), sampled
 *          by marching through an occupancy grid (samples only where the field has density, packed; `sampler`)
 *   mlp  — the faithful backbone: γ(x) + ReLU MLP with a skip + view branch (NeRF / AD-NeRF / DFRF style),
 *          coarse + fine fields with importance sampling; `mlp-faithful` is NeRF-AD's 8×256 size (slow on a CPU)
 *
 * Writes metrics.json (held-out PSNR, steps, seconds, rays/s, render ms per frame, adapter), loss/PSNR plots, and
 * heldout.png: each held-out view's render above its ground truth, and checkpoint/ (every
 * `checkpointEverySeconds` of training and at the end: `npx nerfad run experiments/fit-scene.ts --resume DIR`
 * continues an interrupted run, or a finished one given a larger `--set minutes=`).
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import * as nd from '../src/index.ts';
import { Adam } from '../src/optim/index.ts';
import { HashField, NerfMLP } from '../src/models/nerf/field.ts';
import { NerfFitter, PosedImages, psnr, type FitterState, type RadianceField } from '../src/models/nerf/fit.ts';
import { BOUND, FAR, NEAR, makeViews, renderGroundTruth, renderGroundTruthAlpha, type View } from '../src/models/nerf/scene.ts';

export default nd.defineExperiment({
  name: 'fit-scene',
  description: 'fit a radiance field (hash-grid or MLP backbone) to a procedural scene; held-out PSNR vs wall time',
  config: {
    backbone: 'hash',
    /** Wall-clock budget for training (evaluation excluded). */
    minutes: 5,
    /** Upper bound on steps (the budget usually ends training first). */
    steps: 100000,
    size: 64,
    trainViews: 50,
    testViews: 10,
    /** Samples per ray of the float64 ground-truth renderer. */
    groundTruthSamples: 384,
    raysPerStep: 1024,
    coarseSamples: 64,
    fineSamples: 0,
    /** 'stratified' (coarseSamples per ray) or 'occupancy' (instant-ngp marching; hash backbone). */
    sampler: 'occupancy',
    occupancy: { resolution: 64, stepsPerDiagonal: 128, maxSamples: 128, updateEvery: 16, warmupSteps: 256, decay: 0.8 },
    /** Train over random background colours (targets recomposited from ground-truth alpha), as instant-ngp. */
    randomBackground: true,
    /** Adam's learning rate (the hash backbone's table; its MLPs take lr × mlpLrScale). */
    lr: 1e-2,
    mlpLrScale: 0.1,
    seed: 1,
    /**
     * How occupancy rendering reads the hash table: 'f16' (an f16 copy: half the loads on a CPU adapter) or 'f32'.
     * With 'f16' the summary also gives held-out PSNR and the big frame's time with the f32 table.
     */
    renderTable: 'f16',
    /** After training, a held-out pose is also rendered at this size (median of 5, after one untimed frame) for the render-time target. */
    renderSize: 128,
    /** Held-out PSNR is measured every this many seconds of training. */
    evalEverySeconds: 60,
    /** A checkpoint every this many seconds of training, and at the end (`--resume DIR` continues; 0: only at the end). */
    checkpointEverySeconds: 60,
    logEvery: 20,
    hash: { levels: 16, features: 2, log2TableSize: 17, baseResolution: 16, maxResolution: 512, width: 64 },
    mlp: { depth: 4, width: 128, skip: 2, positionFrequencies: 10, directionFrequencies: 4 },
  },
  variants: {
    hash: { backbone: 'hash' },
    'hash-stratified': { backbone: 'hash', sampler: 'stratified' },
    mlp: { backbone: 'mlp', sampler: 'stratified', lr: 5e-4, raysPerStep: 512, coarseSamples: 64, fineSamples: 64 },
    'mlp-faithful': { backbone: 'mlp', sampler: 'stratified', lr: 5e-4, raysPerStep: 512, coarseSamples: 64, fineSamples: 128, mlp: { depth: 8, width: 256, skip: 4 } },
    quick: { minutes: 0.5, size: 32, trainViews: 12, testViews: 2, groundTruthSamples: 192, raysPerStep: 256, coarseSamples: 32, evalEverySeconds: 1000, renderSize: 32 },
  },
  plots: [
    { name: 'loss', title: 'training loss (MSE, coarse + fine)', series: ['loss'], logY: true },
    { name: 'psnr', title: 'held-out PSNR', series: ['heldout_psnr'], yLabel: 'PSNR (dB)' },
    { name: 'samples', title: 'marched samples per ray (occupancy sampler)', series: ['samples_per_ray'] },
  ],
  async run(ctx) {
    const c = ctx.config;
    const train = makeViews(c.trainViews, c.size, c.seed);
    const test = makeViews(c.testViews, c.size, c.seed + 1000);
    const started = performance.now();
    const trainImages = groundTruth(train, c.groundTruthSamples, `train-${c.seed}`, ctx.log);
    const trainAlpha = c.randomBackground ? groundTruth(train, c.groundTruthSamples, `train-alpha-${c.seed}`, ctx.log, renderGroundTruthAlpha, 1) : undefined;
    const testImages = groundTruth(test, c.groundTruthSamples, `test-${c.seed + 1000}`, ctx.log);
    ctx.log(`ground truth: ${train.length} + ${test.length} views at ${c.size}² in ${((performance.now() - started) / 1000).toFixed(1)} s`);

    const rng = new nd.Rng(c.seed);
    const hierarchical = c.backbone === 'mlp' && c.fineSamples > 0;
    const makeField = (): RadianceField => {
      if (c.backbone === 'hash') {
        const { levels, features, log2TableSize, baseResolution, maxResolution, width } = c.hash;
        const grid = { levels, features: features as 1 | 2 | 4, log2TableSize, baseResolution, maxResolution };
        return new HashField({ grid, width, bound: BOUND, rng });
      }
      if (c.backbone === 'mlp') return new NerfMLP({ ...c.mlp, bound: BOUND, rng });
      throw new Error(`fit-scene: backbone must be 'hash' or 'mlp', got '${c.backbone}'`);
    };
    const coarse = makeField();
    const fine = hierarchical ? makeField() : null;
    const params = [...coarse.parameters(), ...(fine?.parameters() ?? [])];
    // The small MLPs of the hash backbone take a smaller step than its table (instant-ngp's grid/network split).
    // (A one-step collapse to a constant colour seen in early runs was NaN view directions on rows of overflowing
    // rays, fixed in marchRays; with it fixed a 5-minute run reached 32.8 dB held-out.)
    const groups = c.backbone === 'hash'
      ? [coarse, ...(fine ? [fine] : [])].flatMap((field) => {
          const table = (field as HashField).table;
          return [{ params: [table], lr: c.lr }, { params: field.parameters().filter((p) => p !== table), lr: c.lr * c.mlpLrScale }];
        })
      : [{ params, lr: c.lr }];
    const optimizer = new Adam(groups, { betas: [0.9, 0.99], eps: 1e-15 });
    const data = new PosedImages(train, trainImages, trainAlpha);
    const fitter = new NerfFitter(coarse, fine, data, {
      raysPerStep: c.raysPerStep,
      coarseSamples: c.coarseSamples,
      fineSamples: hierarchical ? c.fineSamples : 0,
      near: NEAR,
      far: FAR,
      activation: c.backbone === 'hash' ? 'exp' : 'relu',
      background: [1, 1, 1],
      seed: c.seed,
      sampler: c.sampler === 'occupancy' && c.backbone === 'hash' ? 'occupancy' : 'stratified',
      occupancy: { ...c.occupancy, bound: BOUND },
      randomBackground: c.randomBackground,
      renderTable: c.renderTable as 'f16' | 'f32',
    });
    const parameterCount = params.reduce((n, p) => n + p.size, 0);
    ctx.log(`${coarse}${fine ? ' (coarse + fine)' : ''}: ${parameterCount} parameters; ${c.raysPerStep} rays × ${fitter.occupancy ? 'occupancy-marched' : c.coarseSamples}${hierarchical ? `+${c.fineSamples}` : ''} samples per step`);

    const evaluate = async (): Promise<{ psnr: number; renderMs: number; images: Float32Array[] }> => {
      const images: Float32Array[] = [];
      const t0 = performance.now();
      for (const view of test) images.push(await fitter.renderView(view));
      const renderMs = (performance.now() - t0) / test.length;
      const mean = images.reduce((s, img, k) => s + psnr(img, testImages[k]), 0) / test.length;
      return { psnr: mean, renderMs, images };
    };

    const budgetMs = c.minutes * 60_000;
    let trainMs = 0;
    let step = 0;
    let nextEval = c.evalEverySeconds * 1000;
    ctx.setTotalSteps(c.steps);
    let curve: { step: number; seconds: number; psnr: number }[] = [];

    // Checkpoints: both fields, Adam's moments, the occupancy grid, and the clock, sampler and curve as JSON.
    const checkpointParts = (): nd.CheckpointParts => ({
      model: coarse,
      optimizer,
      tensors: { ...Object.fromEntries(fine?.stateEntries('fine.') ?? []), ...fitter.checkpointTensors() },
    });
    const checkpoint = (): Promise<void> => ctx.checkpoint({ step, ...checkpointParts(), data: { trainMs, nextEval, curve, fitter: fitter.checkpointData() } });
    const resumed = await ctx.resume(checkpointParts());
    if (resumed) {
      const data = resumed.data as { trainMs: number; nextEval: number; curve: typeof curve; fitter: FitterState };
      ({ trainMs, nextEval, curve } = data);
      fitter.restoreData(data.fitter);
      step = resumed.step;
      ctx.log(`resumed at step ${step} after ${(trainMs / 1000).toFixed(1)} s of training`);
    }
    let nextCheckpoint = c.checkpointEverySeconds > 0 ? trainMs + c.checkpointEverySeconds * 1000 : Infinity;
    let lastSync = { step, at: performance.now() };
    let msPerStep = Infinity; // measured between syncs
    const synced = (at: number): void => {
      const now = performance.now();
      if (at > lastSync.step) msPerStep = (now - lastSync.at) / (at - lastSync.step);
      lastSync = { step: at, at: now };
    };
    while (step < c.steps && trainMs < budgetMs && !ctx.stopRequested) {
      const t0 = performance.now();
      step += 1;
      const loss = fitter.trainStep(step, optimizer);
      if (step % c.logEvery === 0 || step === 1) {
        const value = await loss.item();
        if (!Number.isFinite(value)) throw new Error(`fit-scene: the loss is ${value} at step ${step}; lower --set lr=...`);
        // The packed sample arrays follow the observed sample count (read here, where the loss is read anyway).
        const samples = await fitter.adaptCapacity();
        synced(step);
        trainMs += performance.now() - t0;
        ctx.record(step, { loss: value, ...(samples ? { samples_per_ray: samples.requested / c.raysPerStep } : {}) });
      } else {
        // Steps are queued, so the host's clock runs ahead of the GPU: syncing once about a second of work is
        // queued keeps the training clock (and the budget) honest (an 8×256 step takes ~8 s here, a hash step 0.2).
        if ((step - lastSync.step) * msPerStep > 1000) {
          await nd.runtime().sync();
          synced(step);
        } else nd.flush();
        trainMs += performance.now() - t0;
        ctx.tick(step);
      }
      loss.dispose();
      if (trainMs >= nextEval) {
        nextEval += c.evalEverySeconds * 1000;
        const e = await evaluate();
        curve.push({ step, seconds: trainMs / 1000, psnr: e.psnr });
        ctx.record(step, { heldout_psnr: e.psnr });
        ctx.log(`step ${step}, ${(trainMs / 1000).toFixed(0)} s: held-out PSNR ${e.psnr.toFixed(2)} dB`);
      }
      if (trainMs >= nextCheckpoint) {
        nextCheckpoint = trainMs + c.checkpointEverySeconds * 1000;
        await checkpoint();
      }
    }
    // A checkpoint at the end too: `--resume DIR --set minutes=M` continues a finished run.
    await checkpoint();
    const final = await evaluate();
    curve.push({ step, seconds: trainMs / 1000, psnr: final.psnr });
    ctx.record(step, { heldout_psnr: final.psnr });
    writeFileSync(ctx.path('psnr-vs-time.json'), JSON.stringify(curve, null, 1));

    // Held-out renders (top) above ground truth (bottom).
    const tile = (img: ArrayLike<number>): nd.FloatImage => ({ width: c.size, height: c.size, channels: 3, data: Float32Array.from(img) });
    const renders = nd.sideBySide(final.images.map(tile));
    const truths = nd.sideBySide(testImages.map(tile));
    nd.writeImagePng(ctx.path('heldout.png'), stackVertically(renders, truths));

    // The big frame: one untimed frame first (it allocates the frame's buffers), then the median of 5. With the f16
    // table the f32 table's frames alternate with them, so that both see the same machine (it is shared).
    const [bigView] = makeViews(1, c.renderSize, c.seed + 1000);
    // Only the hash backbone's occupancy rendering reads the f16 copy; anything else renders from f32.
    const renderTable = c.backbone === 'hash' && fitter.occupancy !== null ? (c.renderTable as 'f16' | 'f32') : 'f32';
    const compareTables = renderTable === 'f16';
    const tables = compareTables ? (['f16', 'f32'] as const) : ([renderTable] as const);
    const frameMs: Record<string, number[]> = { f16: [], f32: [] };
    for (let k = 0; k < 6; k++) {
      for (const table of tables) {
        fitter.options.renderTable = table;
        const t0 = performance.now();
        await fitter.renderView(bigView);
        if (k > 0) frameMs[table].push(performance.now() - t0);
      }
    }
    fitter.options.renderTable = renderTable;
    const medianOf = (v: number[]): number => [...v].sort((a, b) => a - b)[v.length >> 1];
    const renderBigMs = medianOf(frameMs[tables[0]]);
    // The held-out views from the f32 table too, to show what the f16 copy changes.
    let f32Table: Record<string, number> = {};
    if (compareTables) {
      fitter.options.renderTable = 'f32';
      const exact = await evaluate();
      fitter.options.renderTable = 'f16';
      const bigF32 = medianOf(frameMs.f32);
      f32Table = { heldout_psnr_f32_table: Number(exact.psnr.toFixed(4)), [`render_ms_per_frame_${c.renderSize}_f32_table`]: Number(bigF32.toFixed(1)) };
      ctx.log(`with the f32 table: held-out PSNR ${exact.psnr.toFixed(4)} dB (f16 copy: ${final.psnr.toFixed(4)}), ${c.renderSize}² frame ${bigF32.toFixed(0)} ms (f16: ${renderBigMs.toFixed(0)} ms; medians of 5, alternating)`);
    }

    const rays = step * c.raysPerStep;
    ctx.summary({
      backbone: c.backbone,
      heldout_psnr: Number(final.psnr.toFixed(4)),
      steps: step,
      train_seconds: Number((trainMs / 1000).toFixed(2)),
      rays_per_second: Math.round(rays / (trainMs / 1000)),
      render_ms_per_frame: Number(final.renderMs.toFixed(1)),
      frame_size: `${c.size}x${c.size}`,
      [`render_ms_per_frame_${c.renderSize}`]: Number(renderBigMs.toFixed(1)),
      render_table: renderTable,
      ...f32Table,
      parameters: parameterCount,
      dispatches_per_step: Math.round(nd.runtime().stats.dispatches / Math.max(1, step)),
      bytes_allocated: nd.runtime().pool.getStats().bytesAllocated,
      adapter: ctx.adapter,
    });
    ctx.log(`final held-out PSNR ${final.psnr.toFixed(2)} dB after ${step} steps (${(trainMs / 1000).toFixed(1)} s); render ${final.renderMs.toFixed(0)} ms/frame (${c.renderSize}²: ${renderBigMs.toFixed(0)} ms)`);
    fitter.dispose();
    data.dispose();
    optimizer.dispose();
    coarse.dispose();
    fine?.dispose();
  },
});

/** Ground-truth images, cached under .cache/ (they take about a second per 64² view to render in float64). */
function groundTruth(
  views: View[],
  samples: number,
  key: string,
  log: (m: string) => void,
  render: (view: View, samples: number) => Float64Array = renderGroundTruth,
  channels = 3,
): Float64Array[] {
  const size = views[0].width;
  const dir = join(process.cwd(), '.cache', 'fit-scene');
  const file = join(dir, `${key}-${views.length}x${size}-${samples}.f64`);
  const pixels = size * size * channels;
  if (existsSync(file)) {
    const bytes = readFileSync(file);
    if (bytes.byteLength === views.length * pixels * 8) {
      const all = new Float64Array(bytes.buffer, bytes.byteOffset, views.length * pixels);
      return views.map((_, k) => all.slice(k * pixels, (k + 1) * pixels));
    }
  }
  log(`rendering ${views.length} ground-truth views (cached in ${file})`);
  const images = views.map((v) => render(v, samples));
  mkdirSync(dir, { recursive: true });
  const all = new Float64Array(views.length * pixels);
  images.forEach((img, k) => all.set(img, k * pixels));
  writeFileSync(`${file}.tmp`, all);
  renameSync(`${file}.tmp`, file);
  return images;
}

function stackVertically(top: nd.FloatImage, bottom: nd.FloatImage, gap = 4): nd.FloatImage {
  const width = Math.max(top.width, bottom.width);
  const height = top.height + gap + bottom.height;
  const data = new Float32Array(width * height * 3).fill(1);
  for (let y = 0; y < top.height; y++) data.set(top.data.subarray(y * top.width * 3, (y + 1) * top.width * 3), y * width * 3);
  for (let y = 0; y < bottom.height; y++) data.set(bottom.data.subarray(y * bottom.width * 3, (y + 1) * bottom.width * 3), (y + top.height + gap) * width * 3);
  return { width, height, channels: 3, data };
}
